"""The connection loop: one admitted connection's requests, from its first byte to its close.

Per connection: the TLS handshake (when on) and the first request line must arrive within the request-line
deadline; later requests' first bytes within the keep-alive timeout, and their request lines within the
request-line deadline of that first byte. Once a request's first byte is in, its head and body must complete
within the absolute request deadline (slow senders are cut with 408 and closed). The request is read by
:class:`~._request.RequestReader`; the handler runs; the response goes out. Any response sent before the body was
fully read closes the connection, as does every framing error; a connection closed with request bytes unread
lingers a moment (half-closed, draining) so the peer can read the answer.

At the connection cap, the connection that has been idle between requests the longest gives way to the new one
(:meth:`Connections.evict_idle`, called by admission): a kept-alive connection that has been answered holds its
slot only while nobody else needs it. A connection still waiting for its first request line is never closed for
this: it keeps its slot until that line is due.

Timeouts cost nothing per request: each connection runs in one cancel scope, and one watchdog task per server
cancels the scopes whose deadline (a float the connection moves as it changes phase) has passed. Every deadline
is on the server's clock (injectable, so tests move time instead of waiting for it).
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc
import h11
from anyio.streams.tls import TLSStream

from .._ratelog import RateLimitedLog
from ._app import DropConnection, Request, Response, Router
from ._connection import (
    HANDLING,
    IDLE,
    MESSAGES,
    READING,
    RECEIVE_BYTES,
    WRITING,
    Close,
    Connection,
    Reject,
    fmt_peer,
    new_parser,
)
from ._head import encode_head
from ._limits import HttpLimits, ServerCounters
from ._policy import HANDLER_TIMED_OUT, call_handler
from ._request import RequestReader

__all__ = ["Connections", "close_stream"]

log = logging.getLogger("gs_hooks.http")

_READ_ALL = (h11.DONE, h11.MUST_CLOSE, h11.CLOSED)
_LINGER_S = 1.0  # how long a closing connection drains what the peer still sends
_LINGER_BYTES = 1 << 20
_LAST_ANSWER_S = 5.0  # at most this long for a timeout's answer (or the request deadline when shorter)
_STREAM_ERRORS = (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, ssl.SSLError, OSError)


class Connections:
    """The live connections of one server: each one's request loop, their deadlines, and the drain.

    Args:
        router: the routes.
        limits: the listener's limits.
        counters: the server's counters (responses sent; ``draining`` makes every answer close its connection).
        log: the server's rate-limited log.
        now: the clock's current time (seconds; only differences matter).
        sleep: sleeps on the same clock.
        ssl_context: serve TLS when given.
        release: called once a connection is over (its admission slot comes back).
    """

    def __init__(
        self,
        router: Router,
        limits: HttpLimits,
        counters: ServerCounters,
        log: RateLimitedLog,
        *,
        now: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        ssl_context: ssl.SSLContext | None,
        release: Callable[[tuple[str, int] | None], None],
    ) -> None:
        self._limits = limits
        self._counters = counters
        self._log = log
        self._now = now
        self._sleep = sleep
        self._tls = ssl_context
        self._release = release
        self._reader = RequestReader(router, limits, log)
        self.live: set[Connection] = set()
        self.idle: dict[Connection, None] = {}  # answered, waiting for their next request: oldest first

    async def serve(self, stream: anyio.abc.ByteStream, client: tuple[str, int] | None) -> None:
        """Serve an admitted connection until it closes (its slot released at the end)."""
        limits = self._limits
        c = Connection(stream, client, new_parser(limits.max_header_bytes))
        try:
            now = self._now()
            c.line_by = now + limits.request_line_deadline_s
            c.deadline = min(c.line_by, now + limits.request_deadline_s)
            self.live.add(c)
            with anyio.CancelScope() as scope:
                c.scope = scope
                if self._tls is not None:
                    c.stream = await TLSStream.wrap(
                        stream, server_side=True, ssl_context=self._tls, standard_compatible=False
                    )
                await self._loop(c)
            answer = self._timeout_answer(c) if scope.cancelled_caught else None
            if answer is not None:
                await self._within(
                    c, min(limits.request_deadline_s, _LAST_ANSWER_S), self._send(c, answer, head_only=False)
                )
            if c.linger:
                await self._within(c, _LINGER_S, _linger(c))
        except (*_STREAM_ERRORS, Close):
            pass
        except Exception:  # a bug must cost one connection, never the server
            log.exception("connection from %s failed", fmt_peer(client))
        finally:
            self.live.discard(c)
            self.idle.pop(c, None)
            if not c.released:
                self._release(client)
            await close_stream(c.stream)

    async def _within(self, c: Connection, seconds: float, step: Awaitable[None]) -> None:
        """Run a closing step under the watchdog, cut after ``seconds`` on the server's clock."""
        c.deadline = self._now() + seconds
        with anyio.CancelScope() as c.scope:
            await step

    async def _loop(self, c: Connection) -> None:
        while await self._await_request(c):
            exchanged = await self._exchange(c)
            if exchanged is None:
                return
            request, response = exchanged
            c.phase = WRITING
            c.deadline = self._now() + self._limits.request_deadline_s
            if c.conn.their_state is not h11.DONE or self._counters.draining:
                response.close = True
            await self._send(c, response, head_only=request is not None and request.method == "HEAD")
            if response.close:  # also when the request asked to close (h11 then says MUST_CLOSE, not DONE)
                return
            self._next_cycle(c)

    async def _await_request(self, c: Connection) -> bool:
        """Idle: wait for the first bytes of the next request and start its deadlines (False: the peer left)."""
        c.phase = IDLE
        pending = c.conn.trailing_data[0]
        if pending:
            c.capture = [pending]
        else:
            c.capture = []
            kept_alive = c.line_by is None  # answered before: it may give way at the cap while it waits
            if kept_alive:
                self.idle[c] = None
            try:
                await c.receive()
            finally:
                if kept_alive:
                    self.idle.pop(c, None)
            if not c.capture[0]:
                return False
        limits = self._limits
        now = self._now()
        c.head_deadline = now + limits.request_deadline_s
        if c.line_by is None:  # a later request: its line is due a short while after its first byte
            c.line_by = now + limits.request_line_deadline_s
        if b"\n" in c.capture[0]:
            c.deadline = c.head_deadline
        else:  # until the request line is complete (see Connection.receive), the shorter deadline holds
            c.line_pending = True
            c.deadline = min(c.line_by, c.head_deadline)
        return True

    async def _exchange(self, c: Connection) -> tuple[Request | None, Response] | None:
        """Read a request and run its handler: (request, response), or None to close without an answer."""
        c.phase = READING
        try:
            event = c.conn.next_event()
            if event is h11.NEED_DATA:
                event = await c.next_event()
            if type(event) is not h11.Request:
                return None  # ConnectionClosed
            request, route, response = await self._reader.read(c, event)
        except h11.RemoteProtocolError as exc:
            status = exc.error_status_hint if exc.error_status_hint in MESSAGES else 400
            peer, kind = fmt_peer(c.client), type(exc).__name__
            self._log.log(logging.INFO, status, "rejected malformed request from %s (%d, %s)", peer, status, kind)
            return None, Response.error(status, MESSAGES[status], close=True)
        except Reject as exc:
            peer, status = fmt_peer(c.client), exc.status
            self._log.log(logging.INFO, status, "rejected request from %s (%d): %s", peer, status, exc.message)
            return None, Response.error(status, exc.message, close=True)
        finally:
            c.capture = None
        if route is None:
            assert response is not None
            return request, response
        c.phase = HANDLING
        c.deadline = self._now() + self._limits.handler_timeout_s
        try:
            return request, await call_handler(route, request)
        except DropConnection:
            return None  # the handler asked to close without an answer (the sandbox's "drop" fault)

    def _next_cycle(self, c: Connection) -> None:
        """The next request cycle. h11 never saw our response, so instead of start_next_cycle() a fresh parser
        takes over what the client sent beyond this request (a pipelined request)."""
        pending, closed = c.conn.trailing_data
        conn = c.conn = new_parser(self._limits.max_header_bytes)
        if pending:
            conn.receive_data(pending)
        if closed:
            conn.receive_data(b"")
        c.responded = False
        c.line_by = None
        c.deadline = self._now() + self._limits.keepalive_s

    def evict_idle(self, host: str | None = None) -> bool:
        """Close the connection idle between requests the longest (of ``host`` when given) to make room for a new
        one; its admission slot is released now. False when there is none.

        Only a connection that has been answered and waits for its next request qualifies: closing it loses no
        request (an HTTP client resends on a fresh connection when a kept-alive one is closed under it).
        """
        for c in self.idle:
            if host is None or (c.client[0] if c.client else "") == host:
                del self.idle[c]
                if c.scope is not None:
                    c.scope.cancel()
                c.released = True
                self._release(c.client)
                self._counters.idle_closed_at_cap += 1
                return True
        return False

    def _timeout_answer(self, c: Connection) -> Response | None:
        limits = self._limits
        if c.phase == READING:
            if c.line_pending:
                self._log.log(
                    logging.INFO,
                    408,
                    "request from %s cut (408): no complete request line within %.1fs",
                    fmt_peer(c.client),
                    limits.request_line_deadline_s,
                )
            else:
                self._log.log(
                    logging.INFO,
                    408,
                    "request from %s cut (408) at the %.1fs deadline",
                    fmt_peer(c.client),
                    limits.request_deadline_s,
                )
            return Response.error(408, MESSAGES[408], close=True)
        if c.phase == HANDLING:
            log.error("handler timed out after %.1fs (peer %s)", limits.handler_timeout_s, fmt_peer(c.client))
            return Response.error(500, HANDLER_TIMED_OUT, close=True)
        return None

    async def _send(self, c: Connection, response: Response, *, head_only: bool) -> None:
        if c.responded:
            raise Close
        head = encode_head(response)
        if head is None:
            # e.g. a header value with CR/LF from a handler: never put it on the wire (response splitting)
            log.error("a handler returned an invalid response head (status %s); sent 500", response.status)
            response = Response.error(500, "internal error", close=response.close)
            head = encode_head(response)
            assert head is not None
        c.responded = True
        await c.stream.send(head if head_only or not response.body else head + response.body)
        self._counters.requests_served += 1
        if response.close and c.conn.their_state not in _READ_ALL:
            c.linger = True

    async def watchdog(self) -> None:
        """Cancel the connections whose deadline has passed (runs for the server's life).

        It wakes every ``tick`` (a tenth of the shortest limit, 5 to 250 ms), or at the earliest deadline due
        sooner, so a cut is never late by more than the clock's own delay.
        """
        limits = self._limits
        shortest = min(
            limits.request_deadline_s, limits.request_line_deadline_s, limits.keepalive_s, limits.handler_timeout_s
        )
        tick = min(max(shortest / 10, 0.005), 0.25)
        while True:
            now = self._now()
            wake = now + tick  # a new connection's deadline is seen within a tick
            for c in self.live:
                if c.deadline <= now:
                    if c.scope is not None:
                        c.scope.cancel()
                elif c.deadline < wake:  # and one due sooner is cut on time
                    wake = c.deadline
            await self._sleep(wake - now)

    async def drain(self, grace_s: float) -> None:
        """Close idle connections, then wait up to ``grace_s`` for those in a request (their answers close)."""
        for c in self.live:
            if c.phase == IDLE and c.scope is not None:
                c.scope.cancel()
        deadline = self._now() + grace_s
        while any(c.phase != IDLE for c in self.live) and self._now() < deadline:
            await self._sleep(0.01)


async def _linger(c: Connection) -> None:
    """Half-close, then discard what the peer still sends (1 MiB at most, until the deadline) before closing.

    Closing a socket with unread input makes the kernel send a reset, which can destroy the error answer
    before the client reads it; a short drain lets a 408/413/400 arrive.
    """
    try:
        with contextlib.suppress(NotImplementedError):
            await c.stream.send_eof()
        drained = 0
        while drained < _LINGER_BYTES:
            drained += len(await c.stream.receive(RECEIVE_BYTES))
    except _STREAM_ERRORS:
        return


async def close_stream(stream: anyio.abc.ByteStream) -> None:
    """Close a stream, shielded from cancellation, one second at most."""
    with anyio.CancelScope(shield=True), anyio.move_on_after(1):
        await stream.aclose()
