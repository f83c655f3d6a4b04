"""The library's own HTTP/1.1 client for the platform calls on asyncio: :class:`FastHttpClient`.

Why: the platform calls run on the game's loop, and the client's CPU per request is the bulk of a token
verification's. Measured on one sandbox (16 concurrent keep-alive GETs of the Gamebase token URL), a plain aiohttp
session costs ~90 µs of client CPU per request, httpx ~1,060, and an ``asyncio.Protocol`` with httptools' parser
~30: the shape this module keeps, with what a product needs around it (a bounded pool, deadlines, checks).

Strategy: a request parses its URL's origin once (cached), checks and serializes its head, takes a connection
(:class:`~gs_hooks._fast_http_conn.Connection`) from the origin's idle stack (last in, first out) or opens one
within ``max_connections`` (or waits for one, first come first served), writes the request and awaits the
connection's future. One ``loop.call_at`` timer per request holds the whole deadline (connect, send, answer): it
fails the awaited future and closes the connection. A connection goes back to the pool only after a complete
answer that keeps it alive; a request that finds a reused connection closed by the server before any answer byte
is sent again once on a new connection when its method is idempotent (GET, PUT, DELETE). Every error is an
:class:`~gs_hooks.HttpTransportError` that chains nothing and names no URL.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import OrderedDict
from collections.abc import Mapping
from typing import Final

from ._fast_http_conn import Answer, Connection, ConnectionClosedError
from ._fast_http_wire import Origin, RemoteProtocolError, RequestWriter, decode_answer
from ._http_base import DEFAULT_MAX_CONNECTIONS, HttpAnswer, HttpClient, transport_error

__all__ = ["DEFAULT_KEEPALIVE_S", "FastHttpClient"]

DEFAULT_KEEPALIVE_S: Final = 15.0
"""An idle connection older than this is closed instead of reused (aiohttp's default)."""

_IDEMPOTENT = frozenset({"GET", "PUT", "DELETE"})


class _Call:
    """One request's moving parts, for its deadline timer."""

    __slots__ = ("conn", "deadline", "expired", "fut")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.fut: asyncio.Future[Answer] | asyncio.Future[Connection | None] | None = None
        self.conn: Connection | None = None
        self.expired = False


def _expire(call: _Call) -> None:
    call.expired = True
    fut = call.fut
    if fut is not None and not fut.done():
        fut.set_exception(TimeoutError("no complete answer before the deadline"))
    if call.conn is not None:
        call.conn.close()


class FastHttpClient(HttpClient):
    """:class:`~gs_hooks.HttpClient` on ``asyncio.Protocol`` and httptools: HTTP/1.1 keep-alive, asyncio only
    (uvloop's loop included), no proxies, no redirects followed.

    The URL is sent as given (already percent-encoded); no ``Accept-Encoding`` is sent, and a gzip or deflate
    answer is still decoded. An answer's head may take 64 KiB, its body 16 MiB (decoded too): past either, or for
    a malformed or cut-short answer, the request raises. ``HEAD`` is not supported.

    The connections belong to the loop that opened them: used from another loop, the client starts a new pool and
    abandons the old one's (closed only when collected): call :meth:`aclose` on a loop before that loop ends, as
    ``setup()``'s hooks do at shutdown.

    Args:
        max_connections: connections open at most (all hosts together); requests beyond wait, first come first
            served.
        keepalive_s: an idle connection older than this is closed instead of reused.
        ssl_context: the TLS settings of ``https`` URLs (default: ``ssl.create_default_context()``).
    """

    __slots__ = (
        "_closed",
        "_conns",
        "_gen",
        "_idle",
        "_loop",
        "_ssl",
        "_used",
        "_waiters",
        "_wire",
        "keepalive_s",
        "max_connections",
    )

    def __init__(
        self,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        keepalive_s: float = DEFAULT_KEEPALIVE_S,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.max_connections = max_connections
        self.keepalive_s = keepalive_s
        self._ssl = ssl_context
        self._wire = RequestWriter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._gen = 0
        self._reset()

    def _reset(self) -> None:
        self._gen += 1
        self._idle: dict[str, list[Connection]] = {}
        self._conns: set[Connection] = set()
        self._used = 0  # connections open or being opened
        # waiting requests, oldest first: future -> origin key (one that gives up leaves at once: O(1))
        self._waiters: OrderedDict[asyncio.Future[Connection | None], str] = OrderedDict()

    # -- the request -------------------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        timeout_s: float,
    ) -> HttpAnswer:
        """See :meth:`gs_hooks.HttpClient.request`."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._reset()  # another loop's connections cannot be used (nor closed) here
        self._closed = False
        call = _Call(loop.time() + timeout_s)
        timer = loop.call_at(call.deadline, _expire, call)
        try:
            origin, payload = self._wire.prepare(method, url, headers, content)
            status, raw, body = await self._send(loop, origin, method, payload, call)
            headers, data = decode_answer(raw, body)
            return HttpAnswer(status, headers, data)
        except (OSError, ValueError, RemoteProtocolError) as exc:  # TimeoutError is an OSError
            raise transport_error(exc) from None
        finally:
            timer.cancel()

    async def _send(
        self, loop: asyncio.AbstractEventLoop, origin: Origin, method: str, payload: bytes, call: _Call
    ) -> Answer:
        fresh = False
        while True:
            conn, reused = await self._acquire(loop, origin, call, fresh)
            if call.expired or loop.time() >= call.deadline:
                # handed over in the loop turn its deadline passed (the timer found nothing to fail then): with
                # no timer left, the request must not start
                self._release(conn, loop)
                raise TimeoutError("no connection before the deadline")
            call.conn = conn
            fut: asyncio.Future[Answer] = loop.create_future()
            call.fut = fut
            try:
                conn.begin(fut, payload)
                answer = await fut
            except BaseException as exc:
                self._discard(conn)
                stale = isinstance(exc, ConnectionClosedError) and not conn.got_bytes
                if conn.gen != self._gen:  # aclose() (or a loop change) ended it: in-flight requests fail
                    raise ConnectionAbortedError("the client was closed") from None
                if reused and stale and not fresh and not call.expired and method in _IDEMPOTENT:
                    fresh = True  # the server closed it meanwhile: once more, on a new connection
                    continue
                raise
            finally:
                call.conn = call.fut = None
            self._release(conn, loop)
            return answer

    # -- the pool ----------------------------------------------------------------------------------------------

    async def _acquire(
        self, loop: asyncio.AbstractEventLoop, origin: Origin, call: _Call, fresh: bool
    ) -> tuple[Connection, bool]:
        stack = self._idle.get(origin.key)
        now = loop.time()
        while stack and not fresh:
            conn = stack.pop()
            if now - conn.idle_since >= self.keepalive_s:
                for old in (conn, *stack):  # the rest of the stack is older still
                    self._discard(old)
                stack.clear()
            elif conn.open:
                return conn, True
            else:  # closing (the peer's FIN not handled yet): never reused
                self._discard(conn)
        if self._used < self.max_connections:
            self._used += 1
        elif self._waiters or not self._evict_idle():  # others wait first; else an idle connection makes room
            got = await self._wait(loop, origin, call)
            if got is not None:
                return got, True
        return await self._connect(loop, origin, call.deadline), False

    async def _wait(self, loop: asyncio.AbstractEventLoop, origin: Origin, call: _Call) -> Connection | None:
        """Wait for a connection of ``origin`` (returned) or a free slot (None: the caller opens one)."""
        fut: asyncio.Future[Connection | None] = loop.create_future()
        self._waiters[fut] = origin.key
        call.fut = fut
        gen = self._gen
        try:
            got = await fut
        except BaseException:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                given = fut.result()  # handed over just as the wait ended: pass it on
                if given is None:
                    self._free_slot(gen)
                else:
                    self._release(given, loop)
            elif gen == self._gen:
                self._waiters.pop(fut, None)  # gone already if the queue was read meanwhile
            raise
        finally:
            call.fut = None
        if gen != self._gen:  # aclose() (or a loop change) came between the hand-over and this wake-up
            if got is not None:
                got.close()  # the old pool's: its slot is not counted in the new one
            raise ConnectionAbortedError("the client was closed")
        return got

    async def _connect(self, loop: asyncio.AbstractEventLoop, origin: Origin, deadline: float) -> Connection:
        """Open a connection in a slot already counted (freed again if this fails)."""
        gen = self._gen
        conn = Connection(origin.key, self._lost)
        tls = None
        if origin.tls:
            tls = self._ssl = self._ssl or ssl.create_default_context()
        try:
            # the request's timer cannot reach a connect in progress: the same deadline, on the connect only
            async with asyncio.timeout_at(deadline):
                await loop.create_connection(
                    lambda: conn, origin.host, origin.port, ssl=tls, server_hostname=origin.host if tls else None
                )
        except BaseException:
            conn.close()
            self._free_slot(gen)
            raise
        conn.gen = gen
        if gen == self._gen:
            self._conns.add(conn)
        return conn

    def _release(self, conn: Connection, loop: asyncio.AbstractEventLoop) -> None:
        """Put back a connection whose exchange ended: to the oldest waiter, to the pool, or closed."""
        conn.waiter = None
        if conn not in self._conns:  # opened before aclose() or a loop change: not this pool's
            conn.close()
            return
        if not conn.reusable or conn.closed:
            self._discard(conn)
            return
        while self._waiters:
            fut, key = self._waiters.popitem(last=False)
            if fut.done():
                continue
            if key == conn.key:
                fut.set_result(conn)
            else:  # another origin waits: this connection's slot goes to it
                self._conns.discard(conn)
                conn.close()
                fut.set_result(None)
            return
        conn.idle_since = loop.time()
        self._idle.setdefault(conn.key, []).append(conn)

    def _discard(self, conn: Connection) -> None:
        conn.close()
        if conn in self._conns:
            self._conns.discard(conn)
            stack = self._idle.get(conn.key)
            if stack and conn in stack:
                stack.remove(conn)
            self._free_slot(self._gen)

    def _free_slot(self, gen: int) -> None:
        if gen != self._gen:
            return
        while self._waiters:
            fut, _ = self._waiters.popitem(last=False)
            if not fut.done():
                fut.set_result(None)  # the slot passes to the oldest waiter
                return
        self._used -= 1

    def _evict_idle(self) -> bool:
        """Close the oldest idle connection of any origin to reuse its slot; False when none is idle."""
        for stack in self._idle.values():
            if stack:
                self._conns.discard(stack[0])
                stack.pop(0).close()
                return True
        return False

    def _lost(self, conn: Connection) -> None:
        if conn.waiter is None and conn in self._conns:  # idle: the peer closed it
            self._discard(conn)

    # -- closing -----------------------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close every connection (requests in flight fail); a later request opens new ones."""
        conns, waiters = self._conns, self._waiters
        self._closed = True
        self._reset()
        try:
            here = asyncio.get_running_loop() is self._loop
        except RuntimeError:  # not on asyncio: the connections' loop is gone
            here = False
        if not here:
            return
        for conn in conns:
            conn.close()
        for fut in waiters:
            if not fut.done():
                fut.set_exception(ConnectionAbortedError("the client was closed"))

    @property
    def is_closed(self) -> bool:
        """True before the first request and after :meth:`aclose` (until the next request)."""
        return self._loop is None or self._closed

    def __repr__(self) -> str:
        idle = sum(len(stack) for stack in self._idle.values())
        return f"FastHttpClient(max_connections={self.max_connections}, open={len(self._conns)}, idle={idle})"
