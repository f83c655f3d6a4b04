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

import contextlib
import functools
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.abc

from ._registry import SessionRegistry
from ._tracking import CURRENT, log_failure, new_failure_log, remote_of

__all__ = ["track_anyio", "track_asyncio_streams"]


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
    failures = new_failure_log()

    @functools.wraps(handler)
    async def tracked(reader: Any, writer: Any) -> None:
        session = registry.open_nowait(
            server_id, channel, remote_of(writer.get_extra_info("peername")), _StreamConnection(writer)
        )
        token = CURRENT.set(session)
        try:
            await handler(reader, writer)
        except Exception as exc:
            # What asyncio would do with it, minus the loop-level error report: log it, close the connection.
            log_failure(failures, handler, session, exc)
        finally:  # returned, failed or cancelled (the cancellation goes on): the session and the connection end
            CURRENT.reset(token)
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
    failures = new_failure_log()

    @functools.wraps(handler)
    async def tracked(stream: Any) -> None:
        scope = anyio.CancelScope()
        connection = _AnyioConnection(scope)
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
