"""Session registry, connection-tracking adapters and the kick engine."""

from ._kicker import KickRequest, OnKick
from ._registry import SessionRegistry
from ._session import Connection, Remote, Session, SessionEvent
from ._streams import track_anyio, track_asyncio_streams
from ._tracking import FAILED_CLOSE_CODE, KICK_CLOSE_CODE, KICK_CLOSE_REASON, current_session
from ._websockets import TrackWebSocketsMiddleware, track_websockets

__all__ = [
    "FAILED_CLOSE_CODE",
    "KICK_CLOSE_CODE",
    "KICK_CLOSE_REASON",
    "Connection",
    "KickRequest",
    "OnKick",
    "Remote",
    "Session",
    "SessionEvent",
    "SessionRegistry",
    "TrackWebSocketsMiddleware",
    "current_session",
    "track_anyio",
    "track_asyncio_streams",
    "track_websockets",
]
