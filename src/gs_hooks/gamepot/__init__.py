"""GamePot: CCU history, the GamePot-compatible CCU inquiry served on the listener, its client, the dashboard."""

from ._client import GamePotClient
from ._dashboard import Dashboard, DashboardView, render_dashboard
from ._history import CcuHistorySource, DeliveryHealth, MemoryCcuHistory, ReporterHistory, ServerHealth
from ._inquiry import INQUIRY_PATH, GamePotInquiry
from ._protocol import CcuRow, CcuSample, GamePotError

__all__ = [
    "INQUIRY_PATH",
    "CcuHistorySource",
    "CcuRow",
    "CcuSample",
    "Dashboard",
    "DashboardView",
    "DeliveryHealth",
    "GamePotClient",
    "GamePotError",
    "GamePotInquiry",
    "MemoryCcuHistory",
    "ReporterHistory",
    "ServerHealth",
    "render_dashboard",
]
