"""Connection tracking for WebSocket servers: ``websockets`` (≥ 13) handlers and any ASGI app.

``session.close()`` starts the close handshake (code 1000, reason ``kicked``) from a task on the running loop;
a failing handler's connection is closed with code 1011. See :mod:`gs_hooks.sessions._streams` for the contract
every adapter keeps.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from ._registry import SessionRegistry
from ._tracking import (
    CURRENT,
    FAILED_CLOSE_CODE,
    KICK_CLOSE_CODE,
    KICK_CLOSE_REASON,
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    handler_name,
    log_failure,
    new_failure_log,
    remote_of,
    spawn_close,
)

__all__ = ["TrackWebSocketsMiddleware", "track_websockets"]

log = logging.getLogger("gs_hooks.sessions")


# -- websockets --------------------------------------------------------------------------------------------------------


class _WebSocketConnection:
    """:class:`~gs_hooks.sessions.Connection` of a ``websockets`` connection (asyncio only, as the server)."""

    __slots__ = ("_ended", "_started", "_websocket")

    def __init__(self, websocket: Any) -> None:
        self._websocket = websocket
        self._started = False  # close() started the close handshake
        self._ended = False

    @property
    def closing(self) -> bool:
        if self._ended or self._started:
            return True
        state = getattr(self._websocket, "state", None)
        return state is not None and int(state) >= 2  # websockets' State: CLOSING = 2, CLOSED = 3

    def close(self) -> None:
        if not self.closing:
            self._started = spawn_close(self._close_quietly)

    async def aclose(self) -> None:
        self._started = True
        # idempotent in websockets: a call after the handshake started waits until the connection is closed
        await self._close_quietly()

    async def _close_quietly(self) -> None:
        try:
            await self._websocket.close(KICK_CLOSE_CODE, KICK_CLOSE_REASON)
        except Exception:  # the transport failed on the way out: closed all the same
            log.debug("closing a websocket failed", exc_info=True)


def track_websockets(
    registry: SessionRegistry,
    handler: Callable[[Any], Awaitable[None]],
    *,
    server_id: str | None = None,
    channel: str = "",
) -> Callable[[Any], Awaitable[None]]:
    """Wrap a ``websockets`` (≥ 13, ``websockets.asyncio.server.serve``) handler so each connection is tracked.

    ``session.close()`` starts the closing handshake (code 1000, reason ``kicked``) in a task on the running
    loop. An exception escaping the handler is logged (logger ``gs_hooks.sessions``, rate-limited) and the
    connection closed with code 1011.

    Args:
        registry: where sessions are registered.
        handler: the game's ``async def handle(websocket)``.
        server_id: server id the sessions count towards (the registry's default when None).
        channel: game channel of the sessions.

    Returns:
        The wrapped handler, to pass to ``serve``.
    """
    failures = new_failure_log()

    @functools.wraps(handler)
    async def tracked(websocket: Any) -> None:
        connection = _WebSocketConnection(websocket)
        session = registry.open_nowait(
            server_id, channel, remote_of(getattr(websocket, "remote_address", None)), connection
        )
        token = CURRENT.set(session)
        try:
            await handler(websocket)
        except Exception as exc:
            log_failure(failures, handler, session, exc)
            with contextlib.suppress(Exception):
                await websocket.close(FAILED_CLOSE_CODE, "internal error")
        finally:
            connection._ended = True
            CURRENT.reset(token)
            registry.close_nowait(session)

    return tracked


# -- ASGI --------------------------------------------------------------------------------------------------------------


class _AsgiConnection:
    """:class:`~gs_hooks.sessions.Connection` of an ASGI WebSocket: the app's ``send`` and its cancel scope."""

    __slots__ = ("_app_scope", "_closed", "_send", "close_sent", "ended", "kick_started", "peer_gone")

    def __init__(self, send: Send, app_scope: anyio.CancelScope) -> None:
        self._send = send
        self._app_scope = app_scope
        self.kick_started = False  # close() started sending websocket.close in a task
        self._closed: anyio.Event | None = None  # created by the first aclose() that has to wait
        self.close_sent = False  # a websocket.close went to the server (ours, done; or the app's)
        self.peer_gone = False  # the app's receive() returned websocket.disconnect
        self.ended = False  # the app returned, raised or was cancelled

    @property
    def closing(self) -> bool:
        return self.kick_started or self.close_sent or self.peer_gone or self.ended

    def close(self) -> None:
        if self.closing or self._app_scope.cancel_called:
            return
        self.kick_started = spawn_close(self._kick)
        if not self.kick_started:  # no loop to spawn on: cancel the app, its own task sends the close on the way out
            self._app_scope.cancel()

    async def aclose(self) -> None:
        self.close()
        if self.close_sent or self.peer_gone or self.ended:
            return
        if self._closed is None:
            self._closed = anyio.Event()
        await self._closed.wait()

    async def _kick(self) -> None:
        await self.send_close(KICK_CLOSE_CODE, KICK_CLOSE_REASON)

    async def send_close(self, code: int, reason: str) -> None:
        """Send ``websocket.close`` once (ours or the app's, whichever comes first); never raises."""
        if self.close_sent or self.peer_gone:
            self._done()
            return
        try:
            await self._send({"type": "websocket.close", "code": code, "reason": reason})
        except Exception:  # the server has closed it already
            log.debug("sending websocket.close failed", exc_info=True)
        finally:
            self.close_sent = True
            self._done()

    def _done(self) -> None:
        if self._closed is not None:
            self._closed.set()


class TrackWebSocketsMiddleware:
    """ASGI middleware that tracks every WebSocket connection as a session (Starlette, FastAPI, any ASGI app).

    HTTP and lifespan scopes pass through untouched. A WebSocket session is registered when the connection
    arrives and unregistered as soon as it ends: when the app sends ``websocket.close``, when the app's
    ``receive()`` returns ``websocket.disconnect``, or at the latest when the app returns, raises or is
    cancelled. Inside the app, :func:`current_session` returns the connection's session. ``session.close()``
    sends ``websocket.close`` (1000, ``kicked``); an exception escaping the app is logged (rate-limited) and the
    connection closed with code 1011.

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
        self._failures = new_failure_log()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app for one ASGI connection, tracking it when it is a WebSocket."""
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        registry = self.registry
        app_scope = anyio.CancelScope()
        connection = _AsgiConnection(send, app_scope)

        async def tracked_send(message: Message) -> None:
            if message["type"] == "websocket.close":
                registry.close_nowait(session)
                if connection.kick_started or connection.close_sent:  # a close went (or is going) out already
                    return
                connection.close_sent = True
            await send(message)

        async def tracked_receive() -> Message:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                connection.peer_gone = True
                registry.close_nowait(session)
            return message

        session = registry.open_nowait(self.server_id, self.channel, remote_of(scope.get("client")), connection)
        token = CURRENT.set(session)
        try:
            with app_scope:
                await self.app(scope, tracked_receive, tracked_send)
        except Exception as exc:
            if connection.closing:  # e.g. the app's send raced the kick's close: the connection is gone anyway
                log.debug("ASGI app %s raised after its connection closed", handler_name(self.app), exc_info=True)
            else:
                log_failure(self._failures, self.app, session, exc)
                with anyio.CancelScope(shield=True):
                    await connection.send_close(FAILED_CLOSE_CODE, "internal error")
        finally:
            CURRENT.reset(token)
            registry.close_nowait(session)
            if app_scope.cancel_called:  # kicked where no task could be spawned: close from this task
                with anyio.CancelScope(shield=True):
                    await connection.send_close(KICK_CLOSE_CODE, KICK_CLOSE_REASON)
            connection.ended = True
            connection._done()
