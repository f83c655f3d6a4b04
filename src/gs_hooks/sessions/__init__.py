"""Session registry and connection-tracking middleware."""

from ._middleware import (
    KICK_CLOSE_CODE,
    KICK_CLOSE_REASON,
    TrackWebSocketsMiddleware,
    current_session,
    track_anyio,
    track_asyncio_streams,
    track_websockets,
)
from ._registry import Closer, Remote, Session, SessionEvent, SessionRegistry

__all__ = [
    "KICK_CLOSE_CODE",
    "KICK_CLOSE_REASON",
    "Closer",
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
