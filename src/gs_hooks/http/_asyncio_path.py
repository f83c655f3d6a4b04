"""The listener's fast path on asyncio without TLS: accepting on asyncio's socket API and a protocol-backed stream.

Kept because it pays, measured by ``python -m bench listener``: the ``ours`` server (this path) beside
``ours_anyio`` (the same server with ``HttpServer(fast_path=False)``, on anyio's socket streams), in the same run.
anyio's socket stream pauses and resumes reading around every receive and yields on every send; this stream
(:class:`AsyncioStream`) reads into a buffer from a plain :class:`asyncio.Protocol` and writes straight to the
transport. The connection logic is the same code on both paths (trio and TLS use anyio's streams).

The transports are driven by their documented methods only, so any asyncio loop's transports (uvloop's) work.
Refusals at accept cost a write and a close: no transport, no task.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, cast

import anyio
import anyio.abc

from ._admission import AcceptRetry, Gate, Serve
from ._connection import RECEIVE_BYTES

__all__ = ["AsyncioStream", "accept_asyncio"]

_EAGER_READS = 16  # reads served from the buffer in a row before yielding to other connections


class _Protocol(asyncio.Protocol):
    """asyncio side of :class:`AsyncioStream`: buffers what arrives, wakes the reader, tracks write pressure."""

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
        if self.buffered > RECEIVE_BYTES * 4 and not self.reading_paused and self.transport is not None:
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


class AsyncioStream(anyio.abc.ByteStream):
    """A byte stream straight on an asyncio transport."""

    def __init__(self, protocol: _Protocol, transport: asyncio.Transport) -> None:
        self._p = protocol
        self._transport = transport
        self._eager = 0

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return {anyio.abc.SocketAttribute.remote_address: lambda: self._transport.get_extra_info("peername")}

    async def receive(self, max_bytes: int = RECEIVE_BYTES) -> bytes:
        p = self._p
        if p.buffer:
            self._eager += 1
            if self._eager >= _EAGER_READS:  # a peer that keeps the buffer full must not starve other connections
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
        if p.reading_paused and p.buffered <= RECEIVE_BYTES:
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


async def accept_asyncio(sock: socket.socket, gate: Gate, serve: Serve, tg: anyio.abc.TaskGroup) -> None:
    """Accept on asyncio's socket API; admitted connections get a task, refusals are answered in place."""
    loop = asyncio.get_running_loop()
    retry = AcceptRetry(gate)
    try:
        while True:
            conn, _ = await retry.next(lambda: loop.sock_accept(sock), (OSError,))
            client = _peer_of_socket(conn)
            answer = gate.admit(client)
            if answer is not None:
                with contextlib.suppress(OSError):
                    conn.send(answer)  # non-blocking: a small answer fits the empty send buffer
                conn.close()
                continue
            tg.start_soon(_serve_socket, conn, client, gate, serve)
    finally:
        with contextlib.suppress(ValueError, NotImplementedError, OSError):
            loop.remove_reader(sock)  # a cancelled sock_accept may leave its reader behind


async def _serve_socket(conn: socket.socket, client: tuple[str, int] | None, gate: Gate, serve: Serve) -> None:
    try:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as anyio's and asyncio's servers do
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.connect_accepted_socket(_Protocol, conn)
    except BaseException as exc:
        conn.close()
        gate.release(client)
        if isinstance(exc, OSError):
            return  # the peer is already gone
        raise
    await serve(AsyncioStream(protocol, transport), client)


def _peer_of_socket(conn: socket.socket) -> tuple[str, int] | None:
    """The peer of an accepted socket (None when it is already gone)."""
    try:
        addr = conn.getpeername()
    except OSError:
        return None
    if isinstance(addr, tuple) and len(addr) >= 2:
        return (str(addr[0]), int(addr[1]))
    return None
