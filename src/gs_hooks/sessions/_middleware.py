"""Connection-tracking adapters: each registers a session on connect and unregisters it on exit, also on
exceptions and cancellation, and gives the session a default kick that closes the connection.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from ._registry import Session, SessionRegistry

__all__ = ["current_session", "track_asyncio_streams"]

_current: contextvars.ContextVar[Session | None] = contextvars.ContextVar("gs_hooks_session", default=None)


def current_session() -> Session | None:
    """The session of the connection the calling task is handling (inside a tracked handler), else None."""
    return _current.get()


def _remote(peer: Any) -> tuple[str, int] | None:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return (str(peer[0]), int(peer[1]))
    return None


def track_asyncio_streams(
    registry: SessionRegistry,
    handler: Callable[[Any, Any], Awaitable[None]],
    *,
    server_id: str | None = None,
    channel: str = "",
) -> Callable[[Any, Any], Awaitable[None]]:
    """Wrap an ``asyncio.start_server`` handler ``(reader, writer)`` so every connection is tracked."""

    @functools.wraps(handler)
    async def tracked(reader: Any, writer: Any) -> None:
        session = registry.open_nowait(
            server_id=server_id,
            channel=channel,
            remote=_remote(writer.get_extra_info("peername")),
            closer=writer.close,
        )
        token = _current.set(session)
        try:
            await handler(reader, writer)
        finally:
            _current.reset(token)
            registry.close_nowait(session)

    return tracked
