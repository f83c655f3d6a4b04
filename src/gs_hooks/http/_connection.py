"""One connection's state: its h11 parser, the phase and deadline the watchdog reads, and reading from the peer.

h11 only ever sees the client's side of a request cycle (the server writes its responses itself, see
:mod:`._head`); the next cycle gets a fresh parser fed what was left over.
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.abc
import h11

from ._strict import ChunkedFramingError, ChunkedScanner

__all__ = [
    "HANDLING",
    "IDLE",
    "MESSAGES",
    "READING",
    "RECEIVE_BYTES",
    "WRITING",
    "Close",
    "Connection",
    "Reject",
    "fmt_peer",
    "new_parser",
]

RECEIVE_BYTES = 65_536
MESSAGES = {
    400: "malformed HTTP request",
    408: "request not completed within the deadline",
    413: "request body too large",
    414: "request target too long",
    431: "request header block too large",
    501: "transfer coding not supported",
    505: "HTTP version not supported",
}

# Connection phases, as the watchdog and the timeout handling see them.
IDLE = 0  # waiting for the first byte of a request (nothing to answer when cut)
READING = 1  # head or body in progress (408 when cut)
HANDLING = 2  # the handler runs (500 when cut)
WRITING = 3  # the response goes out (just close when cut)


class Close(Exception):
    """Internal: stop serving this connection without an answer."""


class Reject(Exception):
    """Internal: answer with an error response and close."""

    def __init__(self, status: int, message: str | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.message = message or MESSAGES.get(status, "request refused")


def new_parser(max_header_bytes: int) -> h11.Connection:
    """A server-side h11 parser for one request cycle."""
    return h11.Connection(h11.SERVER, max_incomplete_event_size=max_header_bytes)


def fmt_peer(client: tuple[str, int] | None) -> str:
    """``host:port`` of a peer for a log line (``?`` when unknown)."""
    return f"{client[0]}:{client[1]}" if client else "?"


class Connection:
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
        "released",
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
        self.deadline = 0.0  # the watchdog cancels ``scope`` once the server's clock passes this
        self.head_deadline = 0.0  # the request deadline of the request being read
        self.line_by: float | None = None  # when the request line must be complete (None: from the first byte)
        self.line_pending = False  # bytes of a request came, its request line not yet complete
        self.phase = IDLE
        self.capture: list[bytes] | None = None  # raw bytes of the request head phase
        self.scanner: ChunkedScanner | None = None  # strict framing check of a chunked body
        self.fed = 0  # bytes fed to the scanner
        self.linger = False  # closing with request bytes possibly unread: drain before closing
        self.responded = False  # this cycle's response has gone out (h11 does not see our responses)
        self.released = False  # its admission slot was given back early (closed at the cap while idle)

    async def receive(self) -> None:
        """Read what the peer sent (``b""`` at its end) into the parser, the capture and the chunk scanner."""
        try:
            data = await self.stream.receive(RECEIVE_BYTES)
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
        """Check chunked framing strictly on the raw bytes (``Reject`` at the first fault)."""
        assert self.scanner is not None
        self.fed += len(data)
        try:
            self.scanner.feed(data)
        except ChunkedFramingError as exc:
            raise Reject(exc.status, str(exc)) from None

    async def next_event(self) -> Any:
        """h11's next event, reading as much as it needs."""
        conn = self.conn
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                await self.receive()
                continue
            return event
