"""The embedded HTTP/1.1 server: h11 over anyio.

Strategy: h11 parses (we never split a request ourselves); :mod:`._strict` looks again at the raw bytes where
h11 is lenient; this module moves bytes and enforces limits. Responses are written here (:func:`_encode_head`:
h11's checks and h11's bytes, without h11 rebuilding and re-validating the header list on every send), so h11
only ever sees the client's side of a request cycle; the next cycle gets a fresh parser fed what was left over.

Admission, when a connection is accepted and before anything is read (:meth:`HttpServer._admit`): a peer that
every route's allowlist excludes is answered 403 and closed without being counted; past the per-address limit, or
past the cap, the answer is 503. Peers inside some route's allowlist may open ``reserved_connections`` beyond the
cap, so a flood from elsewhere cannot lock them out. Refusals on the asyncio fast path cost a write and a close:
no transport, no task.

Per connection: the TLS handshake (when on) and the first request line must arrive within the request-line
deadline; later requests' first bytes within the keep-alive timeout, and their request lines within the
request-line deadline of that first byte. Once a request's first byte is in, its head and body must complete
within the absolute request deadline (slow senders are cut with 408 and closed). The head is routed; the
allowlist and the route's guard run *before* any body byte is read (``100 Continue`` is only sent after them);
the body is read up to the route's limit (413 past it); the handler runs; the response goes out. Any response
sent before the body was fully read closes the connection, as does every framing error.

Timeouts cost nothing per request: each connection runs in one cancel scope, and one watchdog task per server
cancels the scopes whose deadline (a float the connection moves as it changes phase) has passed.

On asyncio without TLS the bytes move through a small protocol-backed stream (:class:`_AsyncioStream`) instead
of anyio's socket stream, which pauses and resumes reading around every receive and yields on every send; the
connection logic is the same code on both paths (trio and TLS use anyio's streams). The transports are driven by
their documented methods only, so any asyncio loop's transports (uvloop's) work.

Accepting is our own loop on both paths, so that running out of file descriptors (or memory) costs one rate-limited
log line per interval and a short back-off, instead of asyncio's record per failed accept (thousands a second) or
anyio's listener failing; the same rate limit applies to the refusals a flood causes (401/403/408/413/431/503).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import re
import socket
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote

import anyio
import anyio.abc
import h11
import sniffio
from anyio.streams.tls import TLSStream

from .._ratelog import RateLimitedLog
from ._app import DropConnection, Request, Response, Route, Router, safe_for_log
from ._strict import ChunkedFramingError, ChunkedScanner, head_is_strict

__all__ = ["HttpLimits", "HttpServer", "serve_http"]

log = logging.getLogger("gs_hooks.http")

_RECEIVE_BYTES = 65_536
# accept() failing for want of descriptors or memory: back off (doubling up to 1 s) and retry, one log line per 10 s.
_ACCEPT_STARVED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# Errors of one pending connection that Linux reports from accept() (accept(2)): skip it and go on.
_ACCEPT_SKIP = frozenset(
    getattr(errno, name)
    for name in (
        *("ECONNABORTED", "EPROTO", "EPERM", "ENETDOWN", "ENOPROTOOPT", "EHOSTDOWN", "ENONET"),
        *("EHOSTUNREACH", "EOPNOTSUPP", "ENETUNREACH", "ECONNRESET", "EAGAIN"),
    )
    if hasattr(errno, name)
)
_ACCEPT_BACKOFF_S = (0.05, 1.0)
_LOG_INTERVAL_S = 10.0
# Trailer fields that would change framing, routing or authorization if anyone merged them into the head.
_FORBIDDEN_TRAILERS = frozenset(
    {b"content-length", b"transfer-encoding", b"host", b"authorization", b"content-type", b"trailer", b"connection"}
)
_MESSAGES = {
    400: "malformed HTTP request",
    408: "request not completed within the deadline",
    413: "request body too large",
    414: "request target too long",
    431: "request header block too large",
    501: "transfer coding not supported",
    505: "HTTP version not supported",
}

# Response heads are written here, not by h11: h11 validates and rebuilds the header list twice per response,
# which costs more than the rest of our per-request path. The checks are h11's own (its token and field-value
# grammar, a final status code), so a handler still cannot put CR/LF on the wire; the status line has h11's form.
_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
_FIELD_VALUE = re.compile(rb"(?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?")
_FRAMING_FIELDS = frozenset({b"content-length", b"connection"})  # the server sets these itself
_REFUSED_FIELDS = frozenset({b"transfer-encoding"})  # bodies go out with a Content-Length: never beside one
# Only fields whose values repeat (not per-request ids, cookies or locations that may carry a token) are cached.
_CACHED_FIELDS = frozenset({"content-type", "allow", "www-authenticate", "retry-after", "cache-control"})
_SKIP = b""
_NO_BODY = frozenset({204, 304})
_status_lines: dict[int, bytes] = {}
_field_lines: dict[tuple[str, str], bytes] = {}  # validated (name, value) -> encoded line, for repeated headers
_FIELD_CACHE_SIZE = 256
_FIELD_CACHE_VALUE = 128  # values longer than this are checked every time, never kept


def _ascii(text: object) -> bytes | None:
    if isinstance(text, str):
        return text.encode("ascii") if text.isascii() else None
    return bytes(text) if isinstance(text, bytes | bytearray) else None


def _field_line(field: object) -> bytes | None:
    """``name: value\r\n``, ``_SKIP`` for a framing field the server sets itself, None when invalid."""
    if not isinstance(field, tuple | list) or len(field) != 2:
        return None
    raw_name, raw_value = _ascii(field[0]), _ascii(field[1])
    if raw_name is None or raw_value is None:
        return None
    if _TOKEN.fullmatch(raw_name) is None or _FIELD_VALUE.fullmatch(raw_value) is None:
        return None
    lowered = raw_name.lower()
    if lowered in _FRAMING_FIELDS:
        return _SKIP
    if lowered in _REFUSED_FIELDS:
        return None
    return b"%s: %s\r\n" % (raw_name, raw_value)


def _encode_head(response: Response) -> bytes | None:
    """The response's status line and header block (Content-Length and Connection added), or None when the
    handler gave a status or header field that must not go on the wire."""
    status = response.status
    line = _status_lines.get(status) if type(status) is int else None
    if line is None:
        if not isinstance(status, int) or not 200 <= status < 1000:  # an IntEnum such as HTTPStatus is fine
            return None
        line = b"HTTP/1.1 %d \r\n" % status
        _status_lines[int(status)] = line
    parts = [line]
    for field in response.headers:
        try:
            parts.append(_field_lines[field])
        except (KeyError, TypeError):  # not seen yet, or unhashable (a list pair): check it
            encoded = _field_line(field)
            if encoded is None:
                return None
            parts.append(encoded)
            if (
                len(_field_lines) < _FIELD_CACHE_SIZE
                and len(encoded) <= _FIELD_CACHE_VALUE
                and type(field) is tuple
                and type(field[0]) is str
                and field[0].lower() in _CACHED_FIELDS
            ):
                with contextlib.suppress(TypeError):
                    _field_lines[field] = encoded
    if status not in _NO_BODY:
        parts.append(b"content-length: %d\r\n" % len(response.body))
    elif response.body:  # a 204/304 has no body (RFC 9110 8.6: and no Content-Length)
        return None
    parts.append(b"connection: close\r\n\r\n" if response.close else b"\r\n")
    return b"".join(parts)


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Listener limits.

    Attributes:
        max_header_bytes: largest request head (431 past it).
        max_body_bytes: largest body unless the route sets its own (413 past it).
        request_deadline_s: absolute deadline for a request's head and body, counted from its first byte
            (408 past it, then close).
        request_line_deadline_s: a new connection's TLS handshake and first request line, and a later request's
            line counted from its first byte, must arrive within this (408 when bytes came, else a silent close).
        keepalive_s: idle time allowed between requests on a connection.
        max_connections: concurrent connections; more get 503 and are closed.
        max_connections_per_address: concurrent connections from one IP address; more get 503 and are closed.
        reserved_connections: connections beyond ``max_connections`` that only peers inside some route's
            allowlist may open (a flood from other addresses cannot lock them out).
        handler_timeout_s: a handler that runs longer gets 500 (and the connection is closed).
    """

    max_header_bytes: int = 16_384
    max_body_bytes: int = 65_536
    request_deadline_s: float = 10.0
    request_line_deadline_s: float = 3.0
    keepalive_s: float = 30.0
    max_connections: int = 512
    max_connections_per_address: int = 64
    reserved_connections: int = 64
    handler_timeout_s: float = 30.0


class _Close(Exception):
    """Internal: stop serving this connection without an answer."""


class _Reject(Exception):
    """Internal: answer with an error response and close."""

    def __init__(self, status: int, message: str | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.message = message or _MESSAGES.get(status, "request refused")


_READ_ALL = (h11.DONE, h11.MUST_CLOSE, h11.CLOSED)

# Connection phases, as the watchdog and the timeout handling see them.
_IDLE = 0  # waiting for the first byte of a request (nothing to answer when cut)
_READING = 1  # head or body in progress (408 when cut)
_HANDLING = 2  # the handler runs (500 when cut)
_WRITING = 3  # the response goes out (just close when cut)


class _Connection:
    """Per-connection state shared with the watchdog."""

    __slots__ = (
        "capture",
        "client",
        "conn",
        "deadline",
        "fed",
        "head_deadline",
        "line_by",
        "line_pending",
        "linger",
        "phase",
        "responded",
        "scanner",
        "scope",
        "stream",
    )

    def __init__(self, stream: anyio.abc.ByteStream, client: tuple[str, int] | None, conn: h11.Connection) -> None:
        self.stream = stream
        self.client = client
        self.conn = conn
        self.scope: anyio.CancelScope | None = None
        self.deadline = 0.0
        self.head_deadline = 0.0  # the request deadline of the request being read
        self.line_by: float | None = None  # when the request line must be complete (None: from the first byte)
        self.line_pending = False  # bytes of a request came, its request line not yet complete
        self.phase = _IDLE
        self.capture: list[bytes] | None = None  # raw bytes of the request head phase
        self.scanner: ChunkedScanner | None = None  # strict framing check of a chunked body
        self.fed = 0  # bytes fed to the scanner
        self.linger = False  # closing with request bytes possibly unread: drain before closing
        self.responded = False  # this cycle's response has gone out (h11 does not see our responses)

    async def receive(self) -> None:
        try:
            data = await self.stream.receive(_RECEIVE_BYTES)
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            data = b""
        if self.capture is not None:
            self.capture.append(data)
        if self.line_pending and b"\n" in data:
            self.line_pending = False
            self.deadline = self.head_deadline
        if self.scanner is not None:
            self.feed_scanner(data)
        self.conn.receive_data(data)

    def feed_scanner(self, data: bytes) -> None:
        assert self.scanner is not None
        self.fed += len(data)
        try:
            self.scanner.feed(data)
        except ChunkedFramingError as exc:
            raise _Reject(exc.status, str(exc)) from None

    async def next_event(self) -> Any:
        conn = self.conn
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                await self.receive()
                continue
            return event


class _AsyncioProtocol(asyncio.Protocol):
    """asyncio side of :class:`_AsyncioStream`: buffers what arrives, wakes the reader, tracks write pressure."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer: deque[bytes] = deque()
        self.buffered = 0
        self.eof = False
        self.lost = False
        self.exc: Exception | None = None
        self.reader: asyncio.Future[None] | None = None
        self.drain: asyncio.Future[None] | None = None
        self.reading_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Duck-typed: a server transport has the documented read/write methods whatever its class (uvloop's
        # TCPTransport is no asyncio.Transport subclass).
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer.append(data)
        self.buffered += len(data)
        if self.buffered > _RECEIVE_BYTES * 4 and not self.reading_paused and self.transport is not None:
            self.transport.pause_reading()
            self.reading_paused = True
        self._wake_reader()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_reader()
        return True  # keep the transport open: the answer may still go out

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.exc = exc
        self._wake_reader()
        if self.drain is not None and not self.drain.done():
            self.drain.set_result(None)

    def pause_writing(self) -> None:
        if self.drain is None or self.drain.done():
            self.drain = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self.drain is not None and not self.drain.done():
            self.drain.set_result(None)

    def _wake_reader(self) -> None:
        if self.reader is not None and not self.reader.done():
            self.reader.set_result(None)


class _AsyncioStream(anyio.abc.ByteStream):
    """A byte stream straight on an asyncio transport (the server's fast path on asyncio, plain TCP)."""

    def __init__(self, protocol: _AsyncioProtocol, transport: asyncio.Transport) -> None:
        self._p = protocol
        self._transport = transport
        self._eager = 0

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return {anyio.abc.SocketAttribute.remote_address: lambda: self._transport.get_extra_info("peername")}

    async def receive(self, max_bytes: int = _RECEIVE_BYTES) -> bytes:
        p = self._p
        if p.buffer:
            self._eager += 1
            if self._eager >= 16:  # a peer that keeps the buffer full must not starve other connections
                self._eager = 0
                await asyncio.sleep(0)
        while not p.buffer:
            self._eager = 0
            if p.lost:
                if p.exc is not None:
                    raise anyio.BrokenResourceError from p.exc
                raise anyio.EndOfStream
            if p.eof:
                raise anyio.EndOfStream
            if p.reading_paused:
                self._transport.resume_reading()
                p.reading_paused = False
            p.reader = asyncio.get_running_loop().create_future()
            try:
                await p.reader
            finally:
                p.reader = None
        data = p.buffer.popleft()
        if len(data) > max_bytes:
            p.buffer.appendleft(data[max_bytes:])
            data = data[:max_bytes]
        p.buffered -= len(data)
        if p.reading_paused and p.buffered <= _RECEIVE_BYTES:
            self._transport.resume_reading()
            p.reading_paused = False
        return data

    async def send(self, item: bytes) -> None:
        p = self._p
        if p.lost or self._transport.is_closing():
            raise anyio.BrokenResourceError
        self._transport.write(item)
        if p.drain is not None and not p.drain.done():
            await p.drain
            if p.lost:
                raise anyio.BrokenResourceError

    async def send_eof(self) -> None:
        if not self._transport.is_closing() and self._transport.can_write_eof():
            self._transport.write_eof()

    async def aclose(self) -> None:
        self._transport.close()
        await asyncio.sleep(0)


class HttpServer:
    """Serves a :class:`Router` over HTTP/1.1 (optionally TLS).

    Args:
        router: the routes.
        host / port: where to bind (port 0 picks a free port; see :attr:`port` after start).
        limits: :class:`HttpLimits`.
        ssl_context: serve TLS when given.

    Attributes:
        port: the bound port (after :meth:`run` has started).
        active_connections: connections open now (refused ones are not counted).
        requests_served: responses sent (errors included).
        rejected_connections: connections refused with 503 at the cap or the per-address limit.
        forbidden_connections: connections refused with 403 at accept (every route's allowlist excludes the peer).
        accept_failures: accepts that failed for want of file descriptors or memory (each retried).
        draining: set by :meth:`drain`; new connections get 503 and answers close their connection.
    """

    def __init__(
        self,
        router: Router,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: HttpLimits | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.router = router
        self.host = host
        self.requested_port = port
        self.limits = limits or HttpLimits()
        self.ssl_context = ssl_context
        self.port: int = 0
        self.active_connections = 0
        self.requests_served = 0
        self.rejected_connections = 0
        self.forbidden_connections = 0
        self.accept_failures = 0
        self._connections: set[_Connection] = set()
        self._per_address: dict[str, int] = {}
        self._refusing = 0  # refusals being answered on the task path (TLS, trio)
        self._log = RateLimitedLog(log, interval_s=_LOG_INTERVAL_S)
        self.draining = False

    @property
    def url(self) -> str:
        """Base URL of the running server."""
        scheme = "https" if self.ssl_context else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    async def run(self, *, task_status: anyio.abc.TaskStatus[Any] = anyio.TASK_STATUS_IGNORED) -> None:
        """Bind and serve until cancelled. ``task_status.started`` gets the server once bound.

        Raises:
            OSError: the address cannot be bound.
        """
        listener = await anyio.create_tcp_listener(local_host=self.host, local_port=self.requested_port, backlog=1024)
        listeners = [cast(anyio.abc.SocketListener, sub) for sub in listener.listeners]
        # On asyncio without TLS: the protocol API (no per-read reader toggling, no per-write checkpoint).
        fast = self.ssl_context is None and sniffio.current_async_library() == "asyncio"
        try:
            async with listener, anyio.create_task_group() as tg:
                self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
                tg.start_soon(self._watchdog)
                for sub in listeners:
                    if fast:
                        tg.start_soon(self._accept_asyncio, sub.extra(anyio.abc.SocketAttribute.raw_socket), tg)
                    else:
                        tg.start_soon(self._accept_streams, sub, tg)
                task_status.started(self)
        finally:
            self._log.flush()

    def _accept_failed(self, exc: BaseException) -> bool:
        """Whether a failed accept is to be retried (True; after a back-off when starved) or raised."""
        code = _errno_of(exc)
        if code in _ACCEPT_SKIP:
            return True
        if code is None or code not in _ACCEPT_STARVED:
            return False
        self.accept_failures += 1
        self._log.log(
            logging.ERROR,
            ("accept", code),
            "listener on %s cannot accept connections: %s; retrying (pending connections wait in the backlog)",
            self.url,
            os.strerror(code),
        )
        return True

    async def _accept_asyncio(self, sock: socket.socket, tg: anyio.abc.TaskGroup) -> None:
        """Accept on asyncio's socket API; admitted connections get a task, refusals are answered in place."""
        loop = asyncio.get_running_loop()
        delay = _ACCEPT_BACKOFF_S[0]
        try:
            while True:
                try:
                    conn, _ = await loop.sock_accept(sock)
                except OSError as exc:
                    if not self._accept_failed(exc):
                        raise
                    if _errno_of(exc) in _ACCEPT_STARVED:
                        await anyio.sleep(delay)
                        delay = min(delay * 2, _ACCEPT_BACKOFF_S[1])
                    continue
                delay = _ACCEPT_BACKOFF_S[0]
                client = _peer_of_socket(conn)
                refusal = self._admit(client)
                if refusal is not None:
                    with contextlib.suppress(OSError):
                        conn.send(refusal)  # non-blocking: a small answer fits the empty send buffer
                    conn.close()
                    continue
                tg.start_soon(self._serve_asyncio, conn, client)
        finally:
            with contextlib.suppress(ValueError, NotImplementedError, OSError):
                loop.remove_reader(sock)  # a cancelled sock_accept may leave its reader behind

    async def _serve_asyncio(self, conn: socket.socket, client: tuple[str, int] | None) -> None:
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as anyio's and asyncio's servers do
            loop = asyncio.get_running_loop()
            transport, protocol = await loop.connect_accepted_socket(_AsyncioProtocol, conn)
        except BaseException as exc:
            conn.close()
            self._release(client)
            if isinstance(exc, OSError):
                return  # the peer is already gone
            raise
        await self._serve_connection(_AsyncioStream(protocol, transport), client)

    async def _accept_streams(self, listener: anyio.abc.SocketListener, tg: anyio.abc.TaskGroup) -> None:
        """Accept through anyio's listener (TLS, trio)."""
        delay = _ACCEPT_BACKOFF_S[0]
        while True:
            try:
                stream = await listener.accept()
            except (OSError, anyio.BrokenResourceError) as exc:
                if not self._accept_failed(exc):
                    raise
                if _errno_of(exc) in _ACCEPT_STARVED:
                    await anyio.sleep(delay)
                    delay = min(delay * 2, _ACCEPT_BACKOFF_S[1])
                continue
            delay = _ACCEPT_BACKOFF_S[0]
            client = _peer(stream)
            refusal = self._admit(client)
            if refusal is None:
                tg.start_soon(self._serve_connection, stream, client)
            elif self._refusing < self.limits.max_connections:
                tg.start_soon(self._refuse, stream, refusal)
            else:  # too many refusals in progress: close without an answer
                await _close(stream)

    def _admit(self, client: tuple[str, int] | None) -> bytes | None:
        """Count a new connection in, or say no: the answer to send (then close) when it is refused."""
        limits = self.limits
        if self.draining:
            return _busy_answer("shutting down; retry later")
        admitted, allowlisted = self.router.screen(client)
        if not admitted:
            self.forbidden_connections += 1
            self._log.log(
                logging.INFO,
                "forbidden",
                "refused a connection from %s (403): no route allows this address",
                _fmt_peer(client),
            )
            return _FORBIDDEN_ANSWER
        host = client[0] if client else ""
        count = self._per_address.get(host, 0)
        if count >= limits.max_connections_per_address:
            self.rejected_connections += 1
            self._log.log(
                logging.WARNING,
                "per-address",
                "%s holds %d connections, the per-address limit; refusing more (503)",
                _fmt_peer(client),
                count,
            )
            return _busy_answer("too many connections from this address; retry later")
        cap = limits.max_connections + (limits.reserved_connections if allowlisted else 0)
        if self.active_connections >= cap:
            self.rejected_connections += 1
            self._log.log(
                logging.WARNING,
                ("cap", allowlisted),
                "connection cap %d reached; refusing new connections (503, %d so far)",
                cap,
                self.rejected_connections,
            )
            return _busy_answer("too many connections; retry later")
        self.active_connections += 1
        self._per_address[host] = count + 1
        return None

    def _release(self, client: tuple[str, int] | None) -> None:
        self.active_connections -= 1
        host = client[0] if client else ""
        count = self._per_address.pop(host, 1) - 1
        if count > 0:
            self._per_address[host] = count

    async def _refuse(self, stream: anyio.abc.ByteStream, answer: bytes) -> None:
        """Send a refusal without reading the request (one second at most, handshake included), then close."""
        self._refusing += 1
        try:
            with anyio.move_on_after(1):
                if self.ssl_context is not None:
                    stream = await TLSStream.wrap(
                        stream, server_side=True, ssl_context=self.ssl_context, standard_compatible=False
                    )
                await stream.send(answer)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, ssl.SSLError, OSError):
            pass
        finally:
            self._refusing -= 1
            await _close(stream)

    async def drain(self, grace_s: float = 5.0) -> None:
        """Graceful stop, step one: refuse new connections (503), close idle ones, let requests in progress
        finish (their answers carry ``Connection: close``) for up to ``grace_s``. Cancel :meth:`run` after it.
        """
        self.draining = True
        for c in self._connections:
            if c.phase == _IDLE and c.scope is not None:
                c.scope.cancel()
        with anyio.move_on_after(grace_s):
            while any(c.phase != _IDLE for c in self._connections):
                await anyio.sleep(0.01)

    async def _watchdog(self) -> None:
        limits = self.limits
        shortest = min(
            limits.request_deadline_s, limits.request_line_deadline_s, limits.keepalive_s, limits.handler_timeout_s
        )
        tick = min(max(shortest / 10, 0.005), 0.25)
        while True:
            await anyio.sleep(tick)
            now = time.monotonic()
            for c in self._connections:
                if c.deadline <= now and c.scope is not None:
                    c.scope.cancel()

    def _new_h11(self) -> h11.Connection:
        return h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.max_header_bytes)

    async def _serve_connection(self, stream: anyio.abc.ByteStream, client: tuple[str, int] | None) -> None:
        """Serve an admitted connection (counted in by :meth:`_admit`) until it closes."""
        c = _Connection(stream, client, self._new_h11())
        try:
            now = time.monotonic()
            c.line_by = now + self.limits.request_line_deadline_s
            c.deadline = min(c.line_by, now + self.limits.request_deadline_s)
            self._connections.add(c)
            answer: Response | None = None
            with anyio.CancelScope() as scope:
                c.scope = scope
                if self.ssl_context is not None:
                    c.stream = await TLSStream.wrap(
                        stream, server_side=True, ssl_context=self.ssl_context, standard_compatible=False
                    )
                await self._connection_loop(c)
            if scope.cancelled_caught:
                answer = self._timeout_answer(c)
            if answer is not None:
                await self._send_last(c, answer)
            if c.linger:
                await self._linger(c)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, ssl.SSLError, OSError):
            pass
        except _Close:
            pass
        except Exception:  # a bug must cost one connection, never the server
            log.exception("connection from %s failed", _fmt_peer(client))
        finally:
            self._connections.discard(c)
            self._release(client)
            await _close(c.stream)

    def _timeout_answer(self, c: _Connection) -> Response | None:
        if c.phase == _READING:
            if c.line_pending:
                self._log.log(
                    logging.INFO,
                    408,
                    "request from %s cut (408): no complete request line within %.1fs",
                    _fmt_peer(c.client),
                    self.limits.request_line_deadline_s,
                )
            else:
                self._log.log(
                    logging.INFO,
                    408,
                    "request from %s cut (408) at the %.1fs deadline",
                    _fmt_peer(c.client),
                    self.limits.request_deadline_s,
                )
            return Response.error(408, _MESSAGES[408], close=True)
        if c.phase == _HANDLING:
            log.error("handler timed out after %.1fs (peer %s)", self.limits.handler_timeout_s, _fmt_peer(c.client))
            return Response.error(500, "handler timed out", close=True)
        return None

    async def _send_last(self, c: _Connection, response: Response) -> None:
        """Send a final answer outside the connection scope, bounded by its own short deadline."""
        with anyio.move_on_after(min(self.limits.request_deadline_s, 5.0)):
            try:
                await self._send(c, response, head_only=False)
            except h11.LocalProtocolError:
                return

    async def _linger(self, c: _Connection) -> None:
        """Half-close, then discard what the peer still sends (1 s, 1 MiB at most) before closing.

        Closing a socket with unread input makes the kernel send a reset, which can destroy the error answer
        before the client reads it; a short drain lets a 408/413/400 arrive.
        """
        with anyio.move_on_after(1.0):
            try:
                with contextlib.suppress(NotImplementedError):
                    await c.stream.send_eof()
                drained = 0
                while drained < 1 << 20:
                    drained += len(await c.stream.receive(_RECEIVE_BYTES))
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                return

    async def _connection_loop(self, c: _Connection) -> None:
        limits = self.limits
        conn = c.conn
        while True:
            # Idle: wait for the first bytes of the next request.
            c.phase = _IDLE
            pending = conn.trailing_data[0]
            if pending:
                c.capture = [pending]
            else:
                c.capture = []
                await c.receive()
                if not c.capture[0]:
                    return
            now = time.monotonic()
            c.head_deadline = now + limits.request_deadline_s
            if c.line_by is None:  # a later request: its line is due a short while after its first byte
                c.line_by = now + limits.request_line_deadline_s
            if b"\n" in c.capture[0]:
                c.deadline = c.head_deadline
            else:  # until the request line is complete (see _Connection.receive), the shorter deadline holds
                c.line_pending = True
                c.deadline = min(c.line_by, c.head_deadline)
            c.phase = _READING
            request: Request | None = None
            try:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    event = await c.next_event()
                if type(event) is not h11.Request:
                    return  # ConnectionClosed
                request, route, response = await self._read_request(c, event)
            except h11.RemoteProtocolError as exc:
                status = exc.error_status_hint if exc.error_status_hint in _MESSAGES else 400
                self._log.log(
                    logging.INFO,
                    status,
                    "rejected malformed request from %s (%d, %s)",
                    _fmt_peer(c.client),
                    status,
                    type(exc).__name__,
                )
                response, route = Response.error(status, _MESSAGES[status], close=True), None
            except _Reject as exc:
                self._log.log(
                    logging.INFO,
                    exc.status,
                    "rejected request from %s (%d): %s",
                    _fmt_peer(c.client),
                    exc.status,
                    exc.message,
                )
                response, route = Response.error(exc.status, exc.message, close=True), None
            c.capture = None
            if response is None and route is not None and request is not None:
                c.phase = _HANDLING
                c.deadline = time.monotonic() + limits.handler_timeout_s
                try:
                    response = await route.handler(request)
                except DropConnection:
                    return  # the handler asked to close without an answer (the sandbox's "drop" fault)
                except Exception:
                    log.exception("handler for %s %s failed", request.method, request.raw_path)
                    response = Response.error(500, "internal error")
            assert response is not None
            c.phase = _WRITING
            c.deadline = time.monotonic() + limits.request_deadline_s
            if conn.their_state is not h11.DONE or self.draining:
                response.close = True
            await self._send(c, response, head_only=request is not None and request.method == "HEAD")
            if response.close:  # also when the request asked to close (h11 then says MUST_CLOSE, not DONE)
                return
            # The next request cycle. h11 never saw our response, so instead of start_next_cycle() a fresh parser
            # takes over what the client sent beyond this request (a pipelined request).
            pending, closed = conn.trailing_data
            conn = c.conn = self._new_h11()
            if pending:
                conn.receive_data(pending)
            if closed:
                conn.receive_data(b"")
            c.responded = False
            c.line_by = None
            c.deadline = time.monotonic() + limits.keepalive_s

    async def _read_request(
        self, c: _Connection, event: h11.Request
    ) -> tuple[Request | None, Route | None, Response | None]:
        """Check the head, route it, run allowlist and guard, then read the body.

        Returns:
            (request, route, None) to run the handler, or (request, None, response) to answer without it.

        Raises:
            _Reject: framing or limit violation (answer and close).
        """
        limits = self.limits
        conn = c.conn
        capture = c.capture
        assert capture is not None
        raw = capture[0] if len(capture) == 1 else b"".join(capture)
        if not head_is_strict(raw):
            raise _Reject(400, "malformed request head (bare LF/CR or obsolete line folding)")
        if event.http_version != b"1.1" and event.http_version != b"1.0":
            raise _Reject(505)
        target = event.target
        headers = _header_list(event.headers)
        head_size = len(target)
        content_length: bytes | None = None
        chunked = expect = False
        for name, value in headers:
            head_size += len(name) + len(value) + 4
            if name == b"content-length":
                content_length = value
            elif name == b"transfer-encoding":
                chunked = True
            elif name == b"expect":
                expect = True
        if head_size > limits.max_header_bytes:
            raise _Reject(431)
        if chunked and content_length is not None:
            raise _Reject(400, "both Content-Length and Transfer-Encoding: refusing an ambiguous body")
        if chunked and event.http_version != b"1.1":
            raise _Reject(400, "Transfer-Encoding in an HTTP/1.0 request")
        path_part, _, query = bytes(target).partition(b"?")
        try:
            text = path_part.decode("ascii")
            path = unquote(text, errors="strict") if "%" in text else text
        except (UnicodeDecodeError, ValueError):
            raise _Reject(400, "request target is not valid") from None
        method = event.method.decode("ascii")
        request = Request(
            method=method,
            path=path,
            query_string=query.decode("latin-1") if query else "",
            headers=headers,
            client=c.client,
            raw_path=safe_for_log(text),
        )
        route, params, allowed = self.router.resolve(method, path, text)
        if route is None:
            if allowed:
                r = Response.error(405, f"method {method} not allowed here; allowed: {', '.join(allowed)}")
                r.headers.append(("allow", ", ".join(allowed)))
            else:
                r = Response.error(404, "no such route")
            return request, None, await self._drain_small(c, r, content_length)
        if params:
            request.path_params = params
        if not route.allows(c.client):
            self._log.log(
                logging.INFO,
                403,
                "refused %s %s from %s (403): address not allowed",
                method,
                request.raw_path,
                _fmt_peer(c.client),
            )
            return request, None, await self._drain_small(c, Response.error(403, "address not allowed"), content_length)
        if route.guard is not None:
            rejected = route.guard(request)
            if rejected is not None:
                rejected.close = True
                return request, None, rejected
        limit = route.max_body if route.max_body is not None else limits.max_body_bytes
        if content_length is not None and int(content_length) > limit:
            raise _Reject(413, f"body larger than {limit} bytes")
        if expect and conn.they_are_waiting_for_100_continue:
            await c.stream.send(conn.send(h11.InformationalResponse(status_code=100, headers=[])) or b"")
        c.capture = None
        if chunked:
            c.scanner = ChunkedScanner(limit)
            c.fed = 0
            c.feed_scanner(raw[raw.find(b"\r\n\r\n") + 4 :])
        try:
            body = await self._read_body(c, limit)
        finally:
            scanner, c.scanner = c.scanner, None
        if scanner is not None and (not scanner.done or scanner.consumed != c.fed - len(conn.trailing_data[0])):
            raise _Reject(400, "malformed chunked body")
        request.body = body
        return request, route, None

    async def _read_body(self, c: _Connection, limit: int) -> bytes:
        conn = c.conn
        chunks: list[bytes] = []
        size = 0
        while True:
            ev = conn.next_event()
            if ev is h11.NEED_DATA:
                await c.receive()
                continue
            if type(ev) is h11.Data:
                size += len(ev.data)
                if size > limit:
                    raise _Reject(413, f"body larger than {limit} bytes")
                chunks.append(ev.data)
            elif type(ev) is h11.EndOfMessage:
                for name, _ in ev.headers:
                    if name in _FORBIDDEN_TRAILERS:
                        raise _Reject(400, "forbidden field in the chunked trailer")
                break
            else:
                raise _Close
        if len(chunks) == 1:
            return bytes(chunks[0])
        return b"".join(chunks)

    async def _drain_small(self, c: _Connection, response: Response, content_length: bytes | None) -> Response:
        """Read and discard a small body so an error answer can keep the connection (else close it)."""
        if c.conn.they_are_waiting_for_100_continue or (
            content_length is not None and int(content_length) > self.limits.max_body_bytes
        ):
            response.close = True  # not worth waiting for
            return response
        c.capture = None
        size = 0
        while True:
            ev = await c.next_event()
            if type(ev) is h11.Data:
                size += len(ev.data)
                if size > self.limits.max_body_bytes:
                    response.close = True
                    return response
            else:
                if type(ev) is not h11.EndOfMessage:
                    response.close = True
                return response

    async def _send(self, c: _Connection, response: Response, *, head_only: bool) -> None:
        if c.responded:
            raise _Close
        head = _encode_head(response)
        if head is None:
            # e.g. a header value with CR/LF from a handler: never put it on the wire (response splitting)
            log.error("a handler returned an invalid response head (status %s); sent 500", response.status)
            response = Response.error(500, "internal error", close=response.close)
            head = _encode_head(response)
            assert head is not None
        c.responded = True
        await c.stream.send(head if head_only or not response.body else head + response.body)
        self.requests_served += 1
        if response.close and c.conn.their_state not in _READ_ALL:
            c.linger = True


def _header_list(headers: Any) -> list[tuple[bytes, bytes]]:
    """h11's headers as a plain list of (lower-case name, value) (one pass over h11's internal list if it has one)."""
    items = getattr(headers, "_full_items", None)
    if items is not None:
        return [(name, value) for _, name, value in items]
    return list(headers)


def _peer(stream: anyio.abc.ByteStream) -> tuple[str, int] | None:
    try:
        addr = stream.extra(anyio.abc.SocketAttribute.remote_address)
    except anyio.TypedAttributeLookupError:
        return None
    if isinstance(addr, tuple) and len(addr) >= 2:
        return (str(addr[0]), int(addr[1]))
    return None


def _errno_of(exc: BaseException) -> int | None:
    """The errno of an OSError, or of the OSError behind an anyio error (trio's accept wraps it)."""
    cause = exc if isinstance(exc, OSError) else exc.__cause__
    return cause.errno if isinstance(cause, OSError) else None


def _peer_of_socket(conn: socket.socket) -> tuple[str, int] | None:
    """The peer of an accepted socket (None when it is already gone)."""
    try:
        addr = conn.getpeername()
    except OSError:
        return None
    if isinstance(addr, tuple) and len(addr) >= 2:
        return (str(addr[0]), int(addr[1]))
    return None


def _fmt_peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "?"


async def _close(stream: anyio.abc.ByteStream) -> None:
    with anyio.CancelScope(shield=True), anyio.move_on_after(1):
        await stream.aclose()


def _refusal(status: int, message: str, *extra: tuple[str, str]) -> bytes:
    response = Response.error(status, message, close=True)
    response.headers.extend(extra)
    head = _encode_head(response)
    assert head is not None
    return head + response.body


_FORBIDDEN_ANSWER = _refusal(403, "address not allowed")
_BUSY_ANSWERS: dict[str, bytes] = {}


def _busy_answer(message: str) -> bytes:
    answer = _BUSY_ANSWERS.get(message)
    if answer is None:
        answer = _BUSY_ANSWERS[message] = _refusal(503, message, ("retry-after", "1"))
    return answer


@asynccontextmanager
async def serve_http(
    router: Router,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    limits: HttpLimits | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[HttpServer]:
    """Run an :class:`HttpServer` for the duration of the ``async with`` block."""
    server = HttpServer(router, host=host, port=port, limits=limits, ssl_context=ssl_context)
    async with anyio.create_task_group() as tg:
        await tg.start(server.run)
        try:
            yield server
        finally:
            tg.cancel_scope.cancel()
