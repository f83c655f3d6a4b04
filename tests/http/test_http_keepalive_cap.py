"""Idle keep-alive connections at the connection cap: they give way to new connections (review finding 4).

A keep-alive connection that has been answered and sends nothing more holds its slot for ``keepalive_s`` (30 s by
default); a few addresses making one cheap request per connection could fill the cap with them and get every new
connection (Hive's webhook among them) refused with 503. At the cap (or at an address's limit), the server now
closes the connection that has been idle between requests the longest and admits the new one; a connection still
waiting for its first request line keeps its slot until that line is due (``request_line_deadline_s``), as
before. The server runs on a :class:`FakeClock` whose time does not move, so no keep-alive timeout is involved.
"""

from __future__ import annotations

import anyio
import anyio.abc
import pytest
from test_http_admission import OTHER, TRUSTED, connect, read_all, server_with, status_and_body, wait_for

from gs_hooks import FakeClock
from gs_hooks.http import HttpLimits, HttpServer

pytestmark = pytest.mark.anyio

THIRD = "127.0.0.3"
KEEP = b"GET /open HTTP/1.1\r\nHost: t\r\n\r\n"  # keep-alive: the connection stays open after the answer
POST_OPEN = b"POST /open HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def answered_keepalive(server: HttpServer, source: str) -> anyio.abc.SocketStream:
    """A connection that made one request, read its answer, and now sits idle (kept alive)."""
    stream = await connect(server, source)
    await stream.send(KEEP)
    raw = b""
    with anyio.fail_after(5):
        while b'{"ok":true}' not in raw:
            raw += await stream.receive()
    assert raw.startswith(b"HTTP/1.1 200")
    return stream


async def closed_by_server(stream: anyio.abc.ByteStream) -> bool:
    """Whether the server closed this idle connection (end of stream, nothing sent)."""
    with anyio.move_on_after(0.05):
        return await read_all(stream, timeout=5) == b""
    return False


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def test_at_the_cap_the_longest_idle_keepalive_connection_gives_way(clock: FakeClock) -> None:
    limits = HttpLimits(max_connections=20, max_connections_per_address=64, reserved_connections=0)
    async with server_with(limits, open_route=True, clock=clock) as server:
        idle = []
        try:
            for i in range(20):  # the cap, filled by two addresses with one cheap request each
                idle.append(await answered_keepalive(server, TRUSTED if i % 2 else OTHER))
            await wait_for(lambda: server.active_connections == 20)
            # a new peer's request (Hive's webhook, say) is served, not refused with 503
            assert await _request(server, THIRD, POST_OPEN) == (200, {"ok": True})
            assert server.rejected_connections == 0
            assert await closed_by_server(idle[0])  # the one idle the longest was closed for it
            assert not any([await closed_by_server(s) for s in idle[1:]])
            assert server.active_connections <= 20
            # the cap full again, the next new connection takes the slot of the next-oldest idle one
            idle.append(await answered_keepalive(server, THIRD))
            await wait_for(lambda: server.active_connections == 20)
            assert await _request(server, THIRD, POST_OPEN) == (200, {"ok": True})
            assert await closed_by_server(idle[1])
            assert not any([await closed_by_server(s) for s in idle[2:]])  # the newest idle one included
            assert (server.idle_closed_at_cap, server.rejected_connections) == (2, 0)
            # the others are still kept alive and still answer
            await idle[5].send(KEEP)
            with anyio.fail_after(5):
                assert (await idle[5].receive()).startswith(b"HTTP/1.1 200")
        finally:
            for stream in idle:
                await stream.aclose()


async def test_an_address_at_its_limit_reuses_its_own_idle_slot(clock: FakeClock) -> None:
    limits = HttpLimits(max_connections=20, max_connections_per_address=3)
    async with server_with(limits, open_route=True, clock=clock) as server:
        theirs = [await answered_keepalive(server, OTHER) for _ in range(3)]
        mine = await answered_keepalive(server, TRUSTED)
        try:
            assert await _request(server, OTHER, POST_OPEN) == (200, {"ok": True})
            assert await closed_by_server(theirs[0])
            assert not await closed_by_server(mine)  # another address's idle connection is not touched
            assert server.rejected_connections == 0
        finally:
            for stream in [*theirs, mine]:
                await stream.aclose()


async def test_connections_waiting_for_their_request_line_keep_their_slot(clock: FakeClock) -> None:
    limits = HttpLimits(max_connections=4, reserved_connections=0, request_line_deadline_s=30, request_deadline_s=30)
    async with server_with(limits, open_route=True, clock=clock) as server:
        silent = [await connect(server, OTHER) for _ in range(4)]  # never sent a request: not idle keep-alive
        try:
            await wait_for(lambda: server.active_connections == 4)
            status, _ = await _request(server, THIRD, POST_OPEN)
            assert status == 503  # until their request line is due, they hold their slots
            assert server.active_connections == 4
        finally:
            for stream in silent:
                await stream.aclose()


async def _request(server: HttpServer, source: str, data: bytes) -> tuple[int, object]:
    async with await connect(server, source) as stream:
        await stream.send(data)
        return status_and_body(await read_all(stream))
