"""GamePot: CCU history, the GamePot-compatible CCU inquiry served on the listener, and its client."""

from ._client import GamePotClient
from ._history import (
    CcuHistorySource,
    DeliveryHealth,
    HistorySlot,
    MemoryCcuHistory,
    ReporterHistory,
    ServerHealth,
)
from ._inquiry import INQUIRY_PATH, GamePotInquiry
from ._protocol import CcuRow, GamePotError, HistorySample

__all__ = [
    "INQUIRY_PATH",
    "CcuHistorySource",
    "CcuRow",
    "DeliveryHealth",
    "GamePotClient",
    "GamePotError",
    "GamePotInquiry",
    "HistorySample",
    "HistorySlot",
    "MemoryCcuHistory",
    "ReporterHistory",
    "ServerHealth",
]
