"""Who gets a connection slot, and for how long: the allowlist at accept, the per-address limit, the connections
reserved for allowlisted peers, the request-line deadline, and rate-limited logs of refusals.

Clients bind their sockets to distinct loopback addresses (127.0.0.1 and 127.0.0.2) so the server sees two
peers; every case runs on asyncio (the protocol fast path) and on trio (anyio's streams). The deadline cases run
the server on a :class:`FakeClock` and move its time.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import msgspec
import pytest

from gs_hooks import FakeClock
from gs_hooks.http import HttpLimits, HttpServer, Request, Response, Router, serve_http

pytestmark = pytest.mark.anyio

TRUSTED = "127.0.0.1"
OTHER = "127.0.0.2"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_router(*, open_route: bool) -> Router:
    router = Router()

    async def ok(request: Request) -> Response:
        return Response.json({"ok": True})

    router.add("POST", "/hook", ok, allow=[f"{TRUSTED}/32"])
    router.add("GET", "/admin", ok, allow=["10.0.0.0/8", f"{TRUSTED}/32"])
    if open_route:
        router.add("GET", "/open", ok)
        router.add("POST", "/open", ok)
    return router


@asynccontextmanager
async def server_with(
    limits: HttpLimits, *, open_route: bool = False, clock: FakeClock | None = None
) -> AsyncIterator[HttpServer]:
    async with serve_http(make_router(open_route=open_route), limits=limits, clock=clock) as server:
        yield server


async def connect(server: HttpServer, source: str) -> anyio.abc.SocketStream:
    return await anyio.connect_tcp("127.0.0.1", server.port, local_host=source)


async def read_all(stream: anyio.abc.ByteStream, timeout: float = 10) -> bytes:
    raw = b""
    with anyio.fail_after(timeout):
        while True:
            try:
                raw += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return raw


def status_and_body(raw: bytes) -> tuple[int, object]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), msgspec.json.decode(body) if body else None


async def request(server: HttpServer, source: str, data: bytes) -> tuple[int, object]:
    async with await connect(server, source) as stream:
        await stream.send(data)
        return status_and_body(await read_all(stream))


HOOK = b"POST /hook HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
OPEN = b"GET /open HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"


async def wait_for(predicate: object, timeout: float = 5) -> None:
    assert callable(predicate)
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.01)


# -- the allowlist at accept -------------------------------------------------------------------------------------


async def test_a_peer_no_route_allows_is_refused_at_accept_and_not_counted() -> None:
    limits = HttpLimits(max_connections=3, reserved_connections=0, request_deadline_s=30, request_line_deadline_s=30)
    async with server_with(limits) as server:
        idle = [await connect(server, OTHER) for _ in range(6)]  # twice the cap, sending nothing
        try:
            for stream in idle:  # each is answered 403 at once, without a request, and closed
                status, body = status_and_body(await read_all(stream))
                assert (status, body) == (403, {"error": {"status": 403, "message": "address not allowed"}})
            assert server.active_connections == 0
            assert server.forbidden_connections == 6
            assert await request(server, TRUSTED, HOOK) == (200, {"ok": True})
        finally:
            for stream in idle:
                await stream.aclose()


async def test_with_an_open_route_every_peer_is_admitted_and_the_route_allowlist_still_holds() -> None:
    limits = HttpLimits(max_connections=3, reserved_connections=0)
    async with server_with(limits, open_route=True) as server:
        assert await request(server, OTHER, OPEN) == (200, {"ok": True})
        status, _ = await request(server, OTHER, HOOK)
        assert status == 403
        assert server.forbidden_connections == 0


# -- per-address limit and the reserve ----------------------------------------------------------------------------


async def test_one_address_cannot_take_more_than_its_share() -> None:
    limits = HttpLimits(
        max_connections=10, max_connections_per_address=2, request_deadline_s=30, request_line_deadline_s=30
    )
    async with server_with(limits, open_route=True) as server:
        held = [await connect(server, OTHER) for _ in range(2)]
        try:
            await wait_for(lambda: server.active_connections == 2)
            status, body = await request(server, OTHER, OPEN)
            assert status == 503
            assert body == {"error": {"status": 503, "message": "too many connections from this address; retry later"}}
            assert await request(server, TRUSTED, OPEN) == (200, {"ok": True})
        finally:
            for stream in held:
                await stream.aclose()
        await wait_for(lambda: server.active_connections == 0)
        assert await request(server, OTHER, OPEN) == (200, {"ok": True})  # its slots came back


async def test_allowlisted_peers_are_served_from_the_reserve_while_others_fill_the_cap() -> None:
    limits = HttpLimits(
        max_connections=3,
        max_connections_per_address=100,
        reserved_connections=2,
        request_deadline_s=30,
        request_line_deadline_s=30,
    )
    async with server_with(limits, open_route=True) as server:
        flood = [await connect(server, OTHER) for _ in range(3)]
        trusted: list[anyio.abc.SocketStream] = []
        try:
            await wait_for(lambda: server.active_connections == 3)
            status, _ = await request(server, OTHER, OPEN)
            assert status == 503  # the cap holds for everyone else
            assert await request(server, TRUSTED, HOOK) == (200, {"ok": True})
            trusted = [await connect(server, TRUSTED) for _ in range(2)]  # the whole reserve
            await wait_for(lambda: server.active_connections == 5)
            status, _ = await request(server, TRUSTED, HOOK)
            assert status == 503  # the reserve is bounded too
        finally:
            for stream in flood + trusted:
                await stream.aclose()


# -- the request-line deadline ----------------------------------------------------------------------------------


# The server runs on a FakeClock; the line deadline is longer than these tests' real-time bounds (5 s), so a
# server that waited for real time instead of its clock fails them.
LINE_LIMITS = HttpLimits(request_line_deadline_s=6.0, request_deadline_s=30, keepalive_s=60)
JUST_PAST = 0.01  # a moment past a deadline on the fake clock (sums of float seconds are not exact)


async def test_a_silent_connection_is_closed_at_the_request_line_deadline() -> None:
    clock = FakeClock()
    async with server_with(LINE_LIMITS, open_route=True, clock=clock) as server, await connect(server, OTHER) as stream:
        await clock.advance(LINE_LIMITS.request_line_deadline_s - 0.1)
        assert server.active_connections == 1
        await clock.advance(0.1 + JUST_PAST)
        assert await read_all(stream, timeout=5) == b""  # closed without an answer, long before 30 s


async def test_a_trickled_request_line_is_cut_with_408() -> None:
    clock = FakeClock()
    async with server_with(LINE_LIMITS, open_route=True, clock=clock) as server, await connect(server, OTHER) as stream:
        await stream.send(b"GET /op")
        await clock.advance(LINE_LIMITS.request_line_deadline_s + JUST_PAST)
        status, body = status_and_body(await read_all(stream, timeout=5))
        assert status == 408
        assert body == {"error": {"status": 408, "message": "request not completed within the deadline"}}


async def test_after_the_request_line_the_request_deadline_applies() -> None:
    clock = FakeClock()
    async with server_with(LINE_LIMITS, open_route=True, clock=clock) as server, await connect(server, OTHER) as stream:
        await stream.send(b"GET /open HTTP/1.1\r\n")
        for byte in b"Host: t\r\nConnection: close\r\n\r\n":  # 15.5 s of header trickle: past the line deadline
            await clock.advance(0.5)
            await stream.send(bytes([byte]))
        assert status_and_body(await read_all(stream)) == (200, {"ok": True})


async def test_a_later_request_gets_the_request_line_deadline_from_its_first_byte() -> None:
    clock = FakeClock()
    async with server_with(LINE_LIMITS, open_route=True, clock=clock) as server, await connect(server, OTHER) as stream:
        await stream.send(b"GET /open HTTP/1.1\r\nHost: t\r\n\r\n")
        raw = b""
        with anyio.fail_after(5):
            while b'{"ok":true}' not in raw:
                raw += await stream.receive()
        await clock.advance(10)  # idle between requests: the keep-alive timeout applies, not the line deadline
        await stream.send(b"GET /op")
        await clock.advance(LINE_LIMITS.request_line_deadline_s - 0.1)
        assert server.active_connections == 1  # the line deadline counts from this request's first byte
        await clock.advance(0.1 + JUST_PAST)
        status, _ = status_and_body(await read_all(stream, timeout=5))
        assert status == 408


# -- rate-limited logs --------------------------------------------------------------------------------------------


async def test_repeated_refusals_are_logged_once_then_summarised(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="gs_hooks")
    limits = HttpLimits(max_header_bytes=1024, max_body_bytes=1024, max_connections_per_address=100)
    async with server_with(limits, open_route=True) as server:
        cases = {
            403: b"POST /hook HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            413: b"POST /open HTTP/1.1\r\nHost: t\r\nContent-Length: 99999\r\n\r\n",
            431: b"GET /open HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 2000 + b"\r\n\r\n",
            400: b"GET /open HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n",
        }
        for status, data in cases.items():
            for _ in range(25):
                got, _ = await request(server, OTHER, data)
                assert got == status
        async with server_with(limits) as closed_server:  # every route excludes 127.0.0.2: refused at accept
            for _ in range(25):
                got, _ = await request(closed_server, OTHER, HOOK)
                assert got == 403
            closed_server._log.flush()
        firsts = [r.getMessage() for r in caplog.records if "more like this" not in r.getMessage()]
        at_accept = sum("no route allows this address" in m for m in firsts)
        by_status = {status: sum(f"({status}" in m and "no route allows" not in m for m in firsts) for status in cases}
        assert by_status == dict.fromkeys(cases, 1), by_status  # not 25 each
        assert at_accept == 1
        server._log.flush()  # what run() does at the end: one summary line per kind, with the count
        summaries = [r.getMessage() for r in caplog.records if "more like this" in r.getMessage()]
        assert len(summaries) == len(cases) + 1
        assert all("24 more like this" in line for line in summaries), summaries
