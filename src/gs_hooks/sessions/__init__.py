"""Session registry and connection-tracking middleware."""

from ._middleware import (
    FAILED_CLOSE_CODE,
    KICK_CLOSE_CODE,
    KICK_CLOSE_REASON,
    TrackWebSocketsMiddleware,
    current_session,
    track_anyio,
    track_asyncio_streams,
    track_websockets,
)
from ._registry import Connection, Remote, Session, SessionEvent, SessionRegistry

__all__ = [
    "FAILED_CLOSE_CODE",
    "KICK_CLOSE_CODE",
    "KICK_CLOSE_REASON",
    "Connection",
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
