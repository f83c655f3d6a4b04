"""Connection-tracking adapters.

Each adapter wraps the server's per-connection handler: it registers a session when the connection arrives,
sets :func:`current_session` for the handler, and unregisters the session in a ``finally`` (so also when the
handler raises or is cancelled, and when the peer vanishes). Each gives the session its
:class:`~gs_hooks.sessions.Connection`, so ``session.close()`` (sync: starts the close, returns at once) and
``await session.aclose()`` (returns once closed) work the same whatever the server; a kick without ``on_kick``
calls ``session.close()``:

==================  ===============================  ==========================================================
adapter             wraps                            ``session.close()``
==================  ===============================  ==========================================================
asyncio streams     ``asyncio.start_server`` cb      ``writer.close()``: the handler's next read sees EOF
anyio               ``Listener.serve`` handler       cancels the handler, then closes the stream (no error
                                                     reaches ``serve``, which would otherwise stop serving)
websockets (≥13)    ``websockets.asyncio.server``    starts the close handshake (code 1000, reason ``kicked``)
                                                     in a task on the running loop: the handler's ``async
                                                     for`` ends cleanly
ASGI WebSocket      the ASGI app                     sends ``websocket.close`` (1000, ``kicked``) from a task
                                                     on the running loop (asyncio, or trio under a trio ASGI
                                                     server): the app's next ``receive()`` gets
                                                     ``websocket.disconnect``
==================  ===============================  ==========================================================

The stream adapters close the connection whenever the handler ends (the websockets and ASGI servers do it
themselves), so no untracked connection outlives its session. One contract for a failing handler on every
adapter: an exception escaping the game's handler is logged to ``gs_hooks.sessions`` (rate-limited: the first of
a kind at once, then one summary per 10 s) and the connection is closed (websockets and ASGI: code 1011); the
server, its listener and every other connection carry on. A cancelled handler's connection is closed and the
cancellation propagates. None of the adapters imports its server library: they only use the objects the server
hands them.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from typing import Any

import anyio
import anyio.abc
import sniffio

from .._ratelog import RateLimitedLog
from ._registry import Remote, Session, SessionRegistry

__all__ = [
    "FAILED_CLOSE_CODE",
    "KICK_CLOSE_CODE",
    "KICK_CLOSE_REASON",
    "TrackWebSocketsMiddleware",
    "current_session",
    "track_anyio",
    "track_asyncio_streams",
    "track_websockets",
]

KICK_CLOSE_CODE = 1000
"""WebSocket close code of ``session.close()`` (normal closure, so handlers iterating messages end cleanly)."""
KICK_CLOSE_REASON = "kicked"
"""WebSocket close reason of ``session.close()``."""
FAILED_CLOSE_CODE = 1011
"""WebSocket close code when the game's handler raised (internal error), as the servers themselves use."""

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


def _failures() -> RateLimitedLog:
    """The rate-limited log of one adapter instance's failing handlers (a buggy handler under load storms)."""
    return RateLimitedLog(log, interval_s=10.0)


def _log_failure(failures: RateLimitedLog, handler: object, session: Session, exc: BaseException) -> None:
    failures.log(
        logging.ERROR,
        (_name(handler), type(exc)),
        "connection handler %s failed (%r); closed the connection",
        _name(handler),
        session,
        exc_info=exc,
    )


_closing: set[asyncio.Task[None]] = set()  # close handshakes running as asyncio tasks (strong references)


def _spawn(close: Callable[[], Coroutine[Any, Any, None]]) -> bool:
    """Run ``close()`` as a task of the running loop, from sync code: an asyncio task, or a trio system task.

    Returns:
        False when no loop that can spawn from sync code is running here (the caller falls back).
    """
    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return False
    if library == "asyncio":
        task = asyncio.get_running_loop().create_task(close())
        _closing.add(task)
        task.add_done_callback(_closing.discard)
        return True
    if library == "trio":
        import trio  # optional: present whenever a trio loop runs

        trio.lowlevel.spawn_system_task(close)  # close() never raises (a system task's error ends the run)
        return True
    return False


# -- asyncio streams -----------------------------------------------------------------------------------------------


class _StreamConnection:
    """:class:`~gs_hooks.sessions.Connection` of an asyncio streams connection: the writer."""

    __slots__ = ("_writer",)

    def __init__(self, writer: Any) -> None:
        self._writer = writer

    @property
    def closing(self) -> bool:
        return bool(self._writer.is_closing())

    def close(self) -> None:
        self._writer.close()

    async def aclose(self) -> None:
        self._writer.close()
        with contextlib.suppress(Exception):  # reset by the peer on the way out: closed all the same
            await self._writer.wait_closed()


def track_asyncio_streams(
    registry: SessionRegistry,
    handler: Callable[[Any, Any], Awaitable[None]],
    *,
    server_id: str | None = None,
    channel: str = "",
) -> Callable[[Any, Any], Awaitable[None]]:
    """Wrap an ``asyncio.start_server`` handler ``(reader, writer)`` so every connection is a tracked session.

    An exception escaping the handler is logged (logger ``gs_hooks.sessions``, rate-limited) and the connection
    closed, as asyncio itself would; a cancelled handler's connection is closed and the cancellation propagates.
    The writer is closed whenever the handler ends. ``session.close()`` closes the writer.

    Args:
        registry: where sessions are registered.
        handler: the game's ``async def handle(reader, writer)``.
        server_id: server id the sessions count towards (the registry's default when None).
        channel: game channel of the sessions.

    Returns:
        The wrapped handler, to pass to ``asyncio.start_server``.
    """
    failures = _failures()

    @functools.wraps(handler)
    async def tracked(reader: Any, writer: Any) -> None:
        session = registry.open_nowait(
            server_id, channel, _remote(writer.get_extra_info("peername")), _StreamConnection(writer)
        )
        token = _current.set(session)
        try:
            await handler(reader, writer)
        except Exception as exc:
            # What asyncio would do with it, minus the loop-level error report: log it, close the connection.
            _log_failure(failures, handler, session, exc)
        finally:  # returned, failed or cancelled (the cancellation goes on): the session and the connection end
            _current.reset(token)
            registry.close_nowait(session)
            writer.close()

    return tracked


# -- anyio -------------------------------------------------------------------------------------------------------------


class _AnyioConnection:
    """:class:`~gs_hooks.sessions.Connection` of an anyio stream: the handler's cancel scope."""

    __slots__ = ("_closed", "_ended", "_scope")

    def __init__(self, scope: anyio.CancelScope) -> None:
        self._scope = scope
        self._ended = False  # the handler is over and the stream closed
        self._closed: anyio.Event | None = None  # created by the first aclose() that has to wait

    @property
    def closing(self) -> bool:
        return self._ended or self._scope.cancel_called

    def close(self) -> None:
        self._scope.cancel()

    async def aclose(self) -> None:
        self._scope.cancel()
        if self._ended:
            return
        if self._closed is None:
            self._closed = anyio.Event()
        await self._closed.wait()

    def _end(self) -> None:
        self._ended = True
        if self._closed is not None:
            self._closed.set()


def track_anyio(
    registry: SessionRegistry,
    handler: Callable[[Any], Awaitable[None]],
    *,
    server_id: str | None = None,
    channel: str = "",
) -> Callable[[Any], Awaitable[None]]:
    """Wrap an anyio ``Listener.serve`` handler ``(stream)`` so every connection is a tracked session.

    ``session.close()`` cancels the handler (it unwinds like any cancelled task) and then closes the stream, so
    a kick never surfaces as an error in ``serve``. The stream is closed whenever the handler ends (no untracked
    connection outlives its session). An exception escaping the handler is logged (logger
    ``gs_hooks.sessions``, rate-limited) and the stream closed: it never reaches ``serve``, whose task group
    would otherwise end the listener and everything running beside it. Works on asyncio and trio.

    Args:
        registry: where sessions are registered.
        handler: the game's ``async def handle(stream)``.
        server_id: server id the sessions count towards (the registry's default when None).
        channel: game channel of the sessions.

    Returns:
        The wrapped handler, to pass to ``listener.serve``.
    """
    failures = _failures()

    @functools.wraps(handler)
    async def tracked(stream: Any) -> None:
        scope = anyio.CancelScope()
        connection = _AnyioConnection(scope)
        session = registry.open_nowait(server_id, channel, _remote(_extra_remote(stream)), connection)
        token = _current.set(session)
        try:
            with scope:
                await handler(stream)
        except Exception as exc:
            _log_failure(failures, handler, session, exc)
        finally:
            _current.reset(token)
            registry.close_nowait(session)
            # whatever way the handler ended (returned, kicked, failed, cancelled), the session is gone: so is the
            # connection (a no-op when the handler closed the stream itself)
            with anyio.CancelScope(shield=True):
                await anyio.aclose_forcefully(stream)
            connection._end()

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
            self._started = _spawn(self._close_quietly)

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
    failures = _failures()

    @functools.wraps(handler)
    async def tracked(websocket: Any) -> None:
        connection = _WebSocketConnection(websocket)
        session = registry.open_nowait(
            server_id, channel, _remote(getattr(websocket, "remote_address", None)), connection
        )
        token = _current.set(session)
        try:
            await handler(websocket)
        except Exception as exc:
            _log_failure(failures, handler, session, exc)
            with contextlib.suppress(Exception):
                await websocket.close(FAILED_CLOSE_CODE, "internal error")
        finally:
            connection._ended = True
            _current.reset(token)
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
        self.kick_started = _spawn(self._kick)
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
        self._failures = _failures()

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

        session = registry.open_nowait(self.server_id, self.channel, _remote(scope.get("client")), connection)
        token = _current.set(session)
        try:
            with app_scope:
                await self.app(scope, tracked_receive, tracked_send)
        except Exception as exc:
            if connection.closing:  # e.g. the app's send raced the kick's close: the connection is gone anyway
                log.debug("ASGI app %s raised after its connection closed", _name(self.app), exc_info=True)
            else:
                _log_failure(self._failures, self.app, session, exc)
                with anyio.CancelScope(shield=True):
                    await connection.send_close(FAILED_CLOSE_CODE, "internal error")
        finally:
            _current.reset(token)
            registry.close_nowait(session)
            if app_scope.cancel_called:  # kicked where no task could be spawned: close from this task
                with anyio.CancelScope(shield=True):
                    await connection.send_close(KICK_CLOSE_CODE, KICK_CLOSE_REASON)
            connection.ended = True
            connection._done()
