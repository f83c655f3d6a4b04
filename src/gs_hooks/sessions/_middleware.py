"""Connection-tracking adapters.

Each adapter wraps the server's per-connection handler: it registers a session when the connection arrives,
sets :func:`current_session` for the handler, and unregisters the session in a ``finally`` (so also when the
handler raises or is cancelled, and when the peer vanishes). Each gives the session a default kick, its
``closer``, used by :meth:`gs_hooks.Hooks.kick` when the game gives no ``on_kick``:

==================  ===============================  ==========================================================
adapter             wraps                            default kick
==================  ===============================  ==========================================================
asyncio streams     ``asyncio.start_server`` cb      ``writer.close()``: the handler's next read sees EOF
anyio               ``Listener.serve`` handler       cancels the handler, then closes the stream (no error
                                                     reaches ``serve``, which would otherwise stop serving)
websockets (≥13)    ``websockets.asyncio.server``    close handshake, code 1000 reason ``kicked``: the
                                                     handler's ``async for`` ends cleanly
ASGI WebSocket      the ASGI app                     sends ``websocket.close`` (1000, ``kicked``); the app's
                                                     next ``receive()`` gets ``websocket.disconnect``
==================  ===============================  ==========================================================

The stream adapters (asyncio, anyio) also close the connection when the handler dies (raises or is cancelled),
so no untracked connection outlives its session; the websockets and ASGI servers close theirs themselves.
None of the adapters imports its server library: they only use the objects the server hands them.
"""

from __future__ import annotations

import contextvars
import functools
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio
import anyio.abc

from ._registry import Remote, Session, SessionRegistry

__all__ = [
    "KICK_CLOSE_CODE",
    "KICK_CLOSE_REASON",
    "TrackWebSocketsMiddleware",
    "current_session",
    "track_anyio",
    "track_asyncio_streams",
    "track_websockets",
]

KICK_CLOSE_CODE = 1000
"""WebSocket close code of a default kick (normal closure, so handlers iterating messages end cleanly)."""
KICK_CLOSE_REASON = "kicked"
"""WebSocket close reason of a default kick."""

log = logging.getLogger("gs_hooks.sessions")

_current: contextvars.ContextVar[Session | None] = contextvars.ContextVar("gs_hooks_session", default=None)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def current_session() -> Session | None:
    """The session of the connection the calling task is handling (inside a tracked handler), else None."""
    return _current.get()


def _name(handler: object) -> str:
    return getattr(handler, "__qualname__", None) or repr(handler)


def _remote(peer: object) -> Remote | None:
    if type(peer) is tuple:
        return peer
    if isinstance(peer, tuple | list) and len(peer) >= 2:  # ASGI servers may give a list
        return tuple(peer)
    return None


# -- asyncio streams -----------------------------------------------------------------------------------------------


def track_asyncio_streams(
    registry: SessionRegistry,
    handler: Callable[[Any, Any], Awaitable[None]],
    *,
    server_id: str | None = None,
    channel: str = "",
) -> Callable[[Any, Any], Awaitable[None]]:
    """Wrap an ``asyncio.start_server`` handler ``(reader, writer)`` so every connection is a tracked session.

    An exception escaping the handler is logged (logger ``gs_hooks.sessions``) and the connection closed, as
    asyncio itself would; a cancelled handler's connection is closed and the cancellation propagates.

    Args:
        registry: where sessions are registered.
        handler: the game's ``async def handle(reader, writer)``.
        server_id: server id the sessions count towards (the registry's default when None).
        channel: game channel of the sessions.

    Returns:
        The wrapped handler, to pass to ``asyncio.start_server``.
    """

    @functools.wraps(handler)
    async def tracked(reader: Any, writer: Any) -> None:
        session = registry.open_nowait(server_id, channel, _remote(writer.get_extra_info("peername")), writer.close)
        token = _current.set(session)
        try:
            await handler(reader, writer)
        except Exception:
            # What asyncio would do with it, minus the loop-level error report: log it, close the connection.
            log.exception("connection handler %s failed (%r)", _name(handler), session)
            writer.close()
        except BaseException:  # cancelled: close the connection, let the cancellation go on
            writer.close()
            raise
        finally:
            _current.reset(token)
            registry.close_nowait(session)

    return tracked


# -- anyio -------------------------------------------------------------------------------------------------------------


def track_anyio(
    registry: SessionRegistry,
    handler: Callable[[Any], Awaitable[None]],
    *,
    server_id: str | None = None,
    channel: str = "",
) -> Callable[[Any], Awaitable[None]]:
    """Wrap an anyio ``Listener.serve`` handler ``(stream)`` so every connection is a tracked session.

    The default kick cancels the handler (it unwinds like any cancelled task) and then closes the stream, so
    a kick never surfaces as an error in ``serve``. Works on asyncio and trio.

    Args:
        registry: where sessions are registered.
        handler: the game's ``async def handle(stream)``.
        server_id: server id the sessions count towards (the registry's default when None).
        channel: game channel of the sessions.

    Returns:
        The wrapped handler, to pass to ``listener.serve``.
    """

    @functools.wraps(handler)
    async def tracked(stream: Any) -> None:
        scope = anyio.CancelScope()
        session = registry.open_nowait(server_id, channel, _remote(_extra_remote(stream)), scope.cancel)
        token = _current.set(session)
        ended_normally = False
        try:
            with scope:
                await handler(stream)
            ended_normally = not scope.cancel_called
        finally:
            _current.reset(token)
            registry.close_nowait(session)
            if not ended_normally:  # kicked, failed or cancelled: don't leave the connection open
                with anyio.CancelScope(shield=True):
                    await anyio.aclose_forcefully(stream)

    return tracked


def _extra_remote(stream: Any) -> object:
    extra = getattr(stream, "extra", None)
    if extra is None:
        return None
    try:
        return extra(anyio.abc.SocketAttribute.remote_address, None)
    except Exception:  # a stream type without socket attributes
        return None


# -- websockets --------------------------------------------------------------------------------------------------------


def track_websockets(
    registry: SessionRegistry,
    handler: Callable[[Any], Awaitable[None]],
    *,
    server_id: str | None = None,
    channel: str = "",
) -> Callable[[Any], Awaitable[None]]:
    """Wrap a ``websockets`` (≥ 13, ``websockets.asyncio.server.serve``) handler so each connection is tracked.

    The default kick runs the closing handshake with code 1000, reason ``kicked``.

    Args:
        registry: where sessions are registered.
        handler: the game's ``async def handle(websocket)``.
        server_id: server id the sessions count towards (the registry's default when None).
        channel: game channel of the sessions.

    Returns:
        The wrapped handler, to pass to ``serve``.
    """

    @functools.wraps(handler)
    async def tracked(websocket: Any) -> None:
        async def close() -> None:
            await websocket.close(KICK_CLOSE_CODE, KICK_CLOSE_REASON)

        session = registry.open_nowait(server_id, channel, _remote(getattr(websocket, "remote_address", None)), close)
        token = _current.set(session)
        try:
            await handler(websocket)
        finally:
            _current.reset(token)
            registry.close_nowait(session)

    return tracked


# -- ASGI --------------------------------------------------------------------------------------------------------------


class TrackWebSocketsMiddleware:
    """ASGI middleware that tracks every WebSocket connection as a session (Starlette, FastAPI, any ASGI app).

    HTTP and lifespan scopes pass through untouched. A WebSocket session is registered when the connection
    arrives and unregistered as soon as it ends: when the app sends ``websocket.close``, when the app's
    ``receive()`` returns ``websocket.disconnect``, or at the latest when the app returns, raises or is
    cancelled. Inside the app, :func:`current_session` returns the connection's session.

    Use with Starlette: ``app.add_middleware(TrackWebSocketsMiddleware, registry=hooks.registry)``; or wrap
    any ASGI app: ``TrackWebSocketsMiddleware(app, registry=hooks.registry)``.

    Args:
        app: the ASGI application.
        registry: where sessions are registered.
        server_id: server id the sessions count towards (the registry's default when None).
        channel: game channel of the sessions.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        registry: SessionRegistry,
        server_id: str | None = None,
        channel: str = "",
    ) -> None:
        self.app = app
        self.registry = registry
        self.server_id = server_id
        self.channel = channel

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app for one ASGI connection, tracking it when it is a WebSocket."""
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        registry = self.registry
        closed = False  # the app or the client ended the connection, or we sent a kick

        async def tracked_send(message: Message) -> None:
            nonlocal closed
            if message["type"] == "websocket.close":
                closed = True
                registry.close_nowait(session)
            await send(message)

        async def tracked_receive() -> Message:
            nonlocal closed
            message = await receive()
            if message["type"] == "websocket.disconnect":
                closed = True
                registry.close_nowait(session)
            return message

        async def kick() -> None:
            nonlocal closed
            if closed:
                return
            closed = True
            await send({"type": "websocket.close", "code": KICK_CLOSE_CODE, "reason": KICK_CLOSE_REASON})

        session = registry.open_nowait(self.server_id, self.channel, _remote(scope.get("client")), kick)
        token = _current.set(session)
        try:
            await self.app(scope, tracked_receive, tracked_send)
        finally:
            _current.reset(token)
            registry.close_nowait(session)
