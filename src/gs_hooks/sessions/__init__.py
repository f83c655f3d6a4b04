"""Session registry and connection-tracking middleware."""

from ._middleware import current_session, track_asyncio_streams
from ._registry import Session, SessionEvent, SessionRegistry

__all__ = ["Session", "SessionEvent", "SessionRegistry", "current_session", "track_asyncio_streams"]
