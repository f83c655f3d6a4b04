"""Raw TCP clients for the HTTP-level tests: send bytes, read everything until the server closes."""

from __future__ import annotations

import anyio
import anyio.abc


async def read_until_closed(stream: anyio.abc.ByteStream, timeout: float = 10.0) -> bytes:
    """Everything ``stream`` receives until the peer closes it (or resets it).

    Raises:
        TimeoutError: the peer kept the connection open for ``timeout`` seconds.
    """
    data = b""
    with anyio.fail_after(timeout):
        while True:
            try:
                data += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return data


async def exchange(port: int, data: bytes, *, timeout: float = 10.0) -> bytes:
    """Send ``data`` on a fresh loopback connection to ``port``; everything answered until the server closes."""
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(data)
        return await read_until_closed(stream, timeout)
