"""GamePot: CCU history, the GamePot-compatible CCU inquiry served on the listener, its client, the dashboard."""

from ._client import GamePotClient
from ._dashboard import Dashboard, DashboardView, render_dashboard
from ._history import CcuHistorySource, DeliveryHealth, MemoryCcuHistory, ReporterHistory, ServerHealth
from ._inquiry import INQUIRY_PATH, GamePotInquiry
from ._protocol import CcuRow, GamePotError, HistorySample

__all__ = [
    "INQUIRY_PATH",
    "CcuHistorySource",
    "CcuRow",
    "Dashboard",
    "DashboardView",
    "DeliveryHealth",
    "GamePotClient",
    "GamePotError",
    "GamePotInquiry",
    "HistorySample",
    "MemoryCcuHistory",
    "ReporterHistory",
    "ServerHealth",
    "render_dashboard",
]
