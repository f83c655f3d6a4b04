"""One keep-alive HTTP/1.1 client connection of :class:`~gs_hooks._fast_http.FastHttpClient`: an
``asyncio.Protocol`` feeding the bytes to httptools' response parser (llhttp, the parser of Node and uvicorn).

Strategy: the connection runs one exchange at a time. :meth:`Connection.begin` arms it with a future and the
request's bytes; the parser's callbacks collect the status, the raw header pairs and the body; the future gets
``(status, headers, body parts)`` once a final answer is complete (1xx answers are skipped), or an exception when
the answer is malformed, too large, or the peer closed first. A body without Content-Length or chunked framing
ends at the peer's EOF. The connection is reusable only after a complete answer the parser says keeps the
connection alive, with no byte after it; bytes arriving while no exchange runs close it.

Nothing here knows about pools, URLs or deadlines: :mod:`gs_hooks._fast_http` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable

import httptools

from ._fast_http_wire import MAX_BODY_BYTES, MAX_HEAD_BYTES, RemoteProtocolError

__all__ = ["Answer", "Connection", "ConnectionClosedError"]

Answer = tuple[int, list[tuple[bytes, bytes]], list[bytes]]
"""What an exchange's future gets: the status, the raw header pairs (duplicates kept), the body's parts."""


class ConnectionClosedError(ConnectionError):
    """The connection closed before a complete answer."""


class Connection(asyncio.Protocol):
    """One client connection (see the module's docstring).

    Args:
        key: the origin it belongs to (the pool's key).
        on_lost: called once when the connection is lost (the pool drops it when idle).

    Attributes:
        transport: the transport, once connected.
        closed: True once the connection is lost or closing.
        got_bytes: True once any byte of the current exchange's answer arrived.
        reusable: True after a complete answer that leaves the connection open for the next request.
        idle_since: the loop time it went back to the pool.
        gen: the pool generation it was opened in.
    """

    __slots__ = (
        "_body",
        "_body_size",
        "_complete",
        "_extra",
        "_head_done",
        "_head_size",
        "_header_bytes",
        "_headers",
        "_keep_alive",
        "_on_lost",
        "_parser",
        "_problem",
        "_status",
        "closed",
        "gen",
        "got_bytes",
        "idle_since",
        "key",
        "reusable",
        "transport",
        "waiter",
    )

    def __init__(self, key: str, on_lost: Callable[[Connection], None]) -> None:
        self.key = key
        self._on_lost = on_lost
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[Answer] | None = None
        self._parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.got_bytes = False
        self.reusable = False
        self.idle_since = 0.0
        self.gen = 0
        self._reset()

    def _reset(self) -> None:
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._body_size = 0
        self._head_size = 0  # bytes received before the head was complete (a head still coming)
        self._header_bytes = 0  # the header lines' bytes (a head complete in one piece)
        self._head_done = False
        self._complete = False
        self._extra = False
        self._status = 0
        self._keep_alive = False
        self._problem: Exception | None = None

    # -- the exchange ------------------------------------------------------------------------------------------

    def begin(self, waiter: asyncio.Future[Answer], payload: bytes) -> None:
        """Start one exchange: send ``payload``; ``waiter`` gets the answer (or the error)."""
        self._reset()
        self.got_bytes = False
        self.reusable = False
        self.waiter = waiter
        transport = self.transport
        if self.closed or transport is None or transport.is_closing():
            waiter.set_exception(ConnectionClosedError("the connection was closed before the request"))
            return
        transport.write(payload)

    @property
    def open(self) -> bool:
        """True while the transport is open and not closing."""
        transport = self.transport
        return not self.closed and transport is not None and not transport.is_closing()

    def close(self) -> None:
        """Close the connection (never reused after); an exchange still waiting fails (our close is never the
        peer's end of an answer that runs to the end of the connection)."""
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionAbortedError("the connection was closed by the client"))
        self.closed = True
        self.reusable = False
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: Exception) -> None:
        self.reusable = False
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.close()

    def _deliver(self) -> None:
        waiter = self.waiter
        self.reusable = self._keep_alive and not self._extra and not self.closed
        if waiter is not None and not waiter.done():
            waiter.set_result((self._status, self._headers, self._body))

    # -- asyncio.Protocol --------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport (any loop's class)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():  # bytes nobody asked for: this connection cannot be trusted again
            self._extra = True
            self.close()
            return
        self.got_bytes = True
        if not self._head_done:
            self._head_size += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(RemoteProtocolError("the server switched protocols"))
            return
        except httptools.HttpParserError:
            if not self._complete:
                problem = self._problem or RemoteProtocolError("the answer is not valid HTTP/1.1")
                self._fail(problem)
                return
            self._extra = True  # bytes after the complete answer: it is delivered, the connection is not reused
        if self._complete:
            self._deliver()
        elif not self._head_done and self._head_size > MAX_HEAD_BYTES:
            self._fail(RemoteProtocolError(f"the answer's head is over {MAX_HEAD_BYTES} bytes"))

    def eof_received(self) -> bool:
        self._at_eof(clean=True)
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._at_eof(clean=exc is None)
        self.closed = True
        self.reusable = False
        self._on_lost(self)

    def _at_eof(self, *, clean: bool) -> None:
        """The peer closed: a body that runs to the end is complete if it closed cleanly (a reset cuts it)."""
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if clean and self._head_done and not self._complete and self._body_until_eof():
            self._complete = True
            self._status = self._parser.get_status_code()
            self._deliver()
            self.reusable = False
            return
        what = "the answer was cut short" if self.got_bytes else "the connection was closed before an answer"
        self._fail(ConnectionClosedError(what))

    def _body_until_eof(self) -> bool:
        """True when the answer's body runs to the connection's end (no Content-Length, not chunked)."""
        status = self._parser.get_status_code()
        if status in (204, 304):
            return False
        for name, value in self._headers:
            lowered = name.lower()
            if lowered == b"content-length" or (lowered == b"transfer-encoding" and b"chunked" in value.lower()):
                return False
        return True

    # -- parser callbacks --------------------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._complete:
            self._extra = True  # a second message after the answer: not ours

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._complete:
            return
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > MAX_HEAD_BYTES:
            self._problem = RemoteProtocolError(f"the answer's head is over {MAX_HEAD_BYTES} bytes")
            raise self._problem
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        if not 100 <= self._parser.get_status_code() < 200:
            self._head_done = True

    def on_body(self, body: bytes) -> None:
        if self._complete:
            return
        self._body_size += len(body)
        if self._body_size > MAX_BODY_BYTES:
            self._problem = RemoteProtocolError(f"the answer's body is over {MAX_BODY_BYTES} bytes")
            raise self._problem
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._complete:
            return
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # an interim answer (100 Continue...): the final one follows
            self._headers = []
            return
        self._complete = True
        self._status = status
        self._keep_alive = self._parser.should_keep_alive()  # read now: the parser forgets it for the next message
