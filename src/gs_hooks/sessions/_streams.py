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
themselves), so no untracked connection outlives its session. Every close is bounded: one that waits for the peer
(output queued for a peer that stopped reading, a close handshake it does not answer) is aborted after the
adapter's ``close_timeout_s`` (:data:`~gs_hooks.sessions._tracking.CLOSE_TIMEOUT_S`), and a connection's
``closing`` is True only once it is gone (see :class:`~gs_hooks.sessions.Connection`).

One contract for a failing handler on every adapter: an exception escaping the game's handler is logged to
``gs_hooks.sessions`` (rate-limited: the first of a kind at once, then one summary per 10 s) and the connection is
closed (websockets and ASGI: code 1011); the server, its listener and every other connection carry on. A cancelled
handler's connection is closed and the cancellation propagates. None of the adapters imports its server library:
they only use the objects the server hands them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.abc

from ._registry import SessionRegistry
from ._tracking import CLOSE_TIMEOUT_S, CURRENT, abort_transport, log_failure, new_failure_log, remote_of

__all__ = ["track_anyio", "track_asyncio_streams"]


# -- asyncio streams -----------------------------------------------------------------------------------------------


class _StreamConnection:
    """:class:`~gs_hooks.sessions.Connection` of an asyncio streams connection: the writer.

    asyncio keeps a closed transport open until its write buffer drains, which never happens when the peer stopped
    reading: so :attr:`closing` is True only once the connection is gone (closed with nothing left to send, or
    lost), and a close with output queued is bounded: the transport is aborted after ``timeout`` seconds.
    """

    __slots__ = ("_timeout", "_timer", "_writer")

    def __init__(self, writer: Any, timeout: float) -> None:
        self._writer = writer
        self._timeout = timeout
        self._timer: asyncio.TimerHandle | None = None  # the abort of a close that had output queued

    @property
    def closing(self) -> bool:
        return _stream_gone(self._writer)

    def close(self) -> None:
        writer = self._writer
        writer.close()
        if self._timer is None and not _stream_gone(writer):  # output queued: the close waits for the peer
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop here to wait on: abort now
                self.abort()
                return
            self._timer = loop.call_later(self._timeout, self.abort)

    def abort(self) -> None:
        """Close now: an orderly close when nothing waits for the peer, else the output the peer has not taken is
        dropped and the connection reset."""
        writer = self._writer
        if _stream_lost(writer):
            return
        transport = writer.transport
        if not transport.get_write_buffer_size() and transport.get_extra_info("sslcontext") is None:
            writer.close()  # nothing queued: the close is done at the next loop iteration
        else:
            abort_transport(transport)

    async def aclose(self) -> None:
        self.close()
        for step in (None, self.abort):
            if step is not None:
                step()
            if _stream_lost(self._writer):
                return
            with anyio.move_on_after(self._timeout), contextlib.suppress(Exception):
                # reset by the peer on the way out: gone all the same
                await _wait_lost(self._writer)


def _close_waiter(writer: Any) -> asyncio.Future[None] | None:
    """The future asyncio's ``StreamReaderProtocol`` resolves in ``connection_lost`` (what ``wait_closed()``
    awaits), or None for another kind of writer or once something cancelled it (``wait_closed()`` awaits it
    unshielded: a cancelled ``wait_for(writer.wait_closed(), ...)`` cancels it)."""
    try:
        waiter = writer._protocol._get_close_waiter(writer)
    except AttributeError:
        return None
    return None if not isinstance(waiter, asyncio.Future) or waiter.cancelled() else waiter


async def _wait_lost(writer: Any) -> None:
    """Wait until the connection is lost; cancelling the wait leaves the close waiter alone."""
    waiter = _close_waiter(writer)
    if waiter is not None:
        await asyncio.shield(waiter)
    else:
        while not _stream_lost(writer):
            await asyncio.sleep(0.05)


def _stream_lost(writer: Any) -> bool:
    """The connection is lost (``connection_lost`` ran); without the close waiter, the transport's word: closing
    with nothing left to send (an aborted transport has dropped its buffer)."""
    waiter = _close_waiter(writer)
    if waiter is not None:
        return waiter.done()
    transport = writer.transport
    return bool(transport.is_closing()) and not transport.get_write_buffer_size()


def _stream_gone(writer: Any) -> bool:
    """Lost, or closing with nothing left to send (over plain TCP the loss follows at the next loop iteration;
    TLS still has its close to exchange, so only the loss counts)."""
    if _stream_lost(writer):
        return True
    transport = writer.transport
    return (
        bool(transport.is_closing())
        and not transport.get_write_buffer_size()
        and transport.get_extra_info("sslcontext") is None
    )


def track_asyncio_streams(
    registry: SessionRegistry,
    handler: Callable[[Any, Any], Awaitable[None]],
    *,
    server_id: str | None = None,
    channel: str = "",
    close_timeout_s: float = CLOSE_TIMEOUT_S,
) -> Callable[[Any, Any], Awaitable[None]]:
    """Wrap an ``asyncio.start_server`` handler ``(reader, writer)`` so every connection is a tracked session.

    An exception escaping the handler is logged (logger ``gs_hooks.sessions``, rate-limited) and the connection
    closed, as asyncio itself would; a cancelled handler's connection is closed and the cancellation propagates.
    The writer is closed whenever the handler ends. ``session.close()`` closes the writer; when output is queued
    that the peer does not take, the connection is aborted ``close_timeout_s`` later (asyncio would otherwise
    keep it open until the peer reads).

    Args:
        registry: where sessions are registered.
        handler: the game's ``async def handle(reader, writer)``.
        server_id: server id the sessions count towards (the registry's default when None).
        channel: game channel of the sessions.
        close_timeout_s: how long a close waits for the peer to take queued output before the connection is
            aborted (also the bound of ``session.aclose()``).

    Returns:
        The wrapped handler, to pass to ``asyncio.start_server``.
    """
    failures = new_failure_log()

    @functools.wraps(handler)
    async def tracked(reader: Any, writer: Any) -> None:
        connection = _StreamConnection(writer, close_timeout_s)
        session = registry.open_nowait(server_id, channel, remote_of(writer.get_extra_info("peername")), connection)
        token = CURRENT.set(session)
        try:
            await handler(reader, writer)
        except Exception as exc:
            # What asyncio would do with it, minus the loop-level error report: log it, close the connection.
            log_failure(failures, handler, session, exc)
        finally:  # returned, failed or cancelled (the cancellation goes on): the session and the connection end
            CURRENT.reset(token)
            registry.close_nowait(session)
            connection.close()  # bounded: aborted later if the peer does not take what is queued

    return tracked


# -- anyio -------------------------------------------------------------------------------------------------------------


class _AnyioConnection:
    """:class:`~gs_hooks.sessions.Connection` of an anyio stream: the handler's cancel scope.

    Closing cancels the handler; the adapter then closes the stream forcefully (anyio's close of a socket stream
    does not wait for the peer), so the connection is gone when the handler has unwound (:attr:`closing`).
    """

    __slots__ = ("_closed", "_ended", "_scope", "_timeout")

    def __init__(self, scope: anyio.CancelScope, timeout: float) -> None:
        self._scope = scope
        self._timeout = timeout
        self._ended = False  # the handler is over and the stream closed
        self._closed: anyio.Event | None = None  # created by the first aclose() that has to wait

    @property
    def closing(self) -> bool:
        return self._ended

    def close(self) -> None:
        self._scope.cancel()

    def abort(self) -> None:
        """As :meth:`close`: the stream is closed forcefully once the handler has unwound."""
        self._scope.cancel()

    async def aclose(self) -> None:
        self._scope.cancel()
        if self._ended:
            return
        if self._closed is None:
            self._closed = anyio.Event()
        with anyio.move_on_after(self._timeout):  # a handler that shields itself from the cancellation
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
    close_timeout_s: float = CLOSE_TIMEOUT_S,
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
        close_timeout_s: the most ``session.aclose()`` waits for the handler to unwind (one that shields itself
            from the cancellation).

    Returns:
        The wrapped handler, to pass to ``listener.serve``.
    """
    failures = new_failure_log()

    @functools.wraps(handler)
    async def tracked(stream: Any) -> None:
        scope = anyio.CancelScope()
        connection = _AnyioConnection(scope, close_timeout_s)
        session = registry.open_nowait(server_id, channel, remote_of(_extra_remote(stream)), connection)
        token = CURRENT.set(session)
        try:
            with scope:
                await handler(stream)
        except Exception as exc:
            log_failure(failures, handler, session, exc)
        finally:
            CURRENT.reset(token)
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
