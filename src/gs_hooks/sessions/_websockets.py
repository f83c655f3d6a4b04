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
    CLOSE_TIMEOUT_S,
    CURRENT,
    FAILED_CLOSE_CODE,
    KICK_CLOSE_CODE,
    KICK_CLOSE_REASON,
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    abort_transport,
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
    """:class:`~gs_hooks.sessions.Connection` of a ``websockets`` connection (asyncio only, as the server).

    Gone (:attr:`closing`) once websockets' state is ``CLOSED`` (the TCP connection terminated). websockets' own
    ``close()`` waits without limit for a peer that does not read to take the close frame, and up to its
    ``close_timeout`` (10 s) for a peer that does not answer the handshake: ours gives it ``timeout`` seconds, then
    aborts the transport.
    """

    __slots__ = ("_started", "_timeout", "_websocket")

    def __init__(self, websocket: Any, timeout: float) -> None:
        self._websocket = websocket
        self._timeout = timeout
        self._started = False  # close() started the close handshake

    @property
    def closing(self) -> bool:
        state = getattr(self._websocket, "state", None)
        return state is not None and int(state) >= 3  # websockets' State.CLOSED: the connection terminated

    def close(self) -> None:
        if not self._started and not self.closing:
            self._started = spawn_close(self._close_bounded)

    def abort(self) -> None:
        """Close by force: start the close handshake when none was started (itself bounded by the timeout), else
        abort the transport now (the handshake under way waits for a peer that does not read or answer)."""
        if self.closing:
            return
        if not self._started:
            self._started = spawn_close(self._close_bounded)
            if self._started:
                return
        abort_transport(getattr(self._websocket, "transport", None))

    async def aclose(self) -> None:
        self._started = True
        await self._close_bounded()

    async def _close_bounded(self, code: int = KICK_CLOSE_CODE, reason: str = KICK_CLOSE_REASON) -> None:
        """The close handshake for up to the timeout, then the abort; returns once gone (bounded). Never raises."""
        with anyio.move_on_after(self._timeout):
            try:
                # idempotent in websockets: a call after the handshake started waits until the connection is closed
                await self._websocket.close(code, reason)
            except Exception:  # the transport failed on the way out: closed all the same
                log.debug("closing a websocket failed", exc_info=True)
        if self.closing:
            return
        self.abort()
        with anyio.move_on_after(self._timeout), contextlib.suppress(Exception):
            await self._websocket.wait_closed()


def track_websockets(
    registry: SessionRegistry,
    handler: Callable[[Any], Awaitable[None]],
    *,
    server_id: str | None = None,
    channel: str = "",
    close_timeout_s: float = CLOSE_TIMEOUT_S,
) -> Callable[[Any], Awaitable[None]]:
    """Wrap a ``websockets`` (≥ 13, ``websockets.asyncio.server.serve``) handler so each connection is tracked.

    ``session.close()`` starts the closing handshake (code 1000, reason ``kicked``) in a task on the running
    loop; when the peer has not completed it ``close_timeout_s`` later (it stopped reading, or does not answer),
    the connection is aborted. An exception escaping the handler is logged (logger ``gs_hooks.sessions``,
    rate-limited) and the connection closed with code 1011.

    Args:
        registry: where sessions are registered.
        handler: the game's ``async def handle(websocket)``.
        server_id: server id the sessions count towards (the registry's default when None).
        channel: game channel of the sessions.
        close_timeout_s: how long a kick's close handshake may take before the connection is aborted (also the
            bound of ``session.aclose()``).

    Returns:
        The wrapped handler, to pass to ``serve``.
    """
    failures = new_failure_log()

    @functools.wraps(handler)
    async def tracked(websocket: Any) -> None:
        connection = _WebSocketConnection(websocket, close_timeout_s)
        session = registry.open_nowait(
            server_id, channel, remote_of(getattr(websocket, "remote_address", None)), connection
        )
        token = CURRENT.set(session)
        try:
            await handler(websocket)
        except Exception as exc:
            log_failure(failures, handler, session, exc)
            await connection._close_bounded(FAILED_CLOSE_CODE, "internal error")
        finally:
            CURRENT.reset(token)
            registry.close_nowait(session)

    return tracked


# -- ASGI --------------------------------------------------------------------------------------------------------------


class _AsgiConnection:
    """:class:`~gs_hooks.sessions.Connection` of an ASGI WebSocket: the app's ``send`` and its cancel scope.

    The server owns the transport, so gone (:attr:`closing`) means what the app can see: the server took our
    ``websocket.close`` (its ``send`` returned), the peer's ``websocket.disconnect`` arrived, or the app ended (the
    server closes the connection then). Forcing it (:meth:`abort`) ends the app: the server closes the connection
    by its own means and timeouts; ASGI gives an app no way to abort a transport.
    """

    __slots__ = ("_app_scope", "_closed", "_send", "_timeout", "close_sent", "ended", "kick_started", "peer_gone")

    def __init__(self, send: Send, app_scope: anyio.CancelScope, timeout: float) -> None:
        self._send = send
        self._app_scope = app_scope
        self._timeout = timeout
        self.kick_started = False  # close() started sending websocket.close in a task
        self._closed: anyio.Event | None = None  # created by the first aclose() that has to wait
        self.close_sent = False  # a websocket.close went to the server (ours, done; or the app's)
        self.peer_gone = False  # the app's receive() returned websocket.disconnect
        self.ended = False  # the app returned, raised or was cancelled

    @property
    def closing(self) -> bool:
        return self.close_sent or self.peer_gone or self.ended

    def close(self) -> None:
        if self.kick_started or self.closing or self._app_scope.cancel_called:
            return
        self.kick_started = spawn_close(self._kick)
        if not self.kick_started:  # no loop to spawn on: cancel the app, its own task sends the close on the way out
            self._app_scope.cancel()

    def abort(self) -> None:
        """End the app (cancelled): the server closes the connection once the app has returned."""
        if not self.closing:
            self._app_scope.cancel()

    async def aclose(self) -> None:
        self.close()
        for step in (None, self.abort):
            if step is not None:
                step()
            if self.closing:
                return
            if self._closed is None:
                self._closed = anyio.Event()
            with anyio.move_on_after(self._timeout):
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
        close_timeout_s: the most ``session.aclose()`` waits for the server to take the close before it ends the
            app, and again for the app to end.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        registry: SessionRegistry,
        server_id: str | None = None,
        channel: str = "",
        close_timeout_s: float = CLOSE_TIMEOUT_S,
    ) -> None:
        self.app = app
        self.registry = registry
        self.server_id = server_id
        self.channel = channel
        self.close_timeout_s = close_timeout_s
        self._failures = new_failure_log()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app for one ASGI connection, tracking it when it is a WebSocket."""
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        registry = self.registry
        app_scope = anyio.CancelScope()
        connection = _AsgiConnection(send, app_scope, self.close_timeout_s)

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
                connection._done()
            return message

        session = registry.open_nowait(self.server_id, self.channel, remote_of(scope.get("client")), connection)
        token = CURRENT.set(session)
        try:
            with app_scope:
                await self.app(scope, tracked_receive, tracked_send)
        except Exception as exc:
            if connection.kick_started or connection.closing:  # e.g. the app's send raced the kick's close
                log.debug("ASGI app %s raised after its connection closed", handler_name(self.app), exc_info=True)
            else:
                log_failure(self._failures, self.app, session, exc)
                with anyio.move_on_after(self.close_timeout_s, shield=True):
                    await connection.send_close(FAILED_CLOSE_CODE, "internal error")
        finally:
            CURRENT.reset(token)
            registry.close_nowait(session)
            if app_scope.cancel_called and not connection.kick_started:
                # kicked where no task could be spawned, or forced: close from this task
                with anyio.move_on_after(self.close_timeout_s, shield=True):
                    await connection.send_close(KICK_CLOSE_CODE, KICK_CLOSE_REASON)
            connection.ended = True
            connection._done()
