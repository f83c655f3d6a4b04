"""The embedded listener under attack: framing ambiguities, parser CVE shapes, limits, deadlines, the cap.

Every case talks raw bytes over a real loopback socket and asserts the status, that the connection is closed
where it must be, and that no handler ran (``calls`` stays empty). The server runs on a :class:`FakeClock`: the
deadline cases move its time instead of waiting for it.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import anyio
import anyio.abc
import httpx
import msgspec
import pytest

from gs_hooks import FakeClock
from gs_hooks.http import HttpLimits, HttpServer, Request, Response, Router, serve_http

pytestmark = pytest.mark.anyio

SECRET = "s3cr3t-bearer-value-never-logged"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@dataclass
class App:
    router: Router
    calls: list[Request] = field(default_factory=list)
    release: anyio.Event = field(default_factory=anyio.Event)


def make_app() -> App:
    app = App(Router())

    async def echo(request: Request) -> Response:
        app.calls.append(request)
        return Response.json({"len": len(request.body), "body": request.body.decode("latin-1")})

    async def boom(request: Request) -> Response:
        app.calls.append(request)
        raise RuntimeError("handler failure")

    async def slow(request: Request) -> Response:
        app.calls.append(request)
        await app.release.wait()
        return Response.json({})

    def bearer(request: Request) -> Response | None:
        if request.header("authorization") != f"Bearer {SECRET}":
            return Response.error(401, "missing or wrong bearer key")
        return None

    app.router.add("POST", "/echo", echo)
    app.router.add("GET", "/ping", echo)
    app.router.add("POST", "/guarded", echo, guard=bearer)
    app.router.add("POST", "/small", echo, max_body=10)
    app.router.add("POST", "/internal", echo, allow=["10.0.0.0/8"])
    app.router.add("GET", "/boom/{what}", boom)

    async def split(request: Request) -> Response:
        app.calls.append(request)
        return Response(200, b"x", [("x-user", request.query.get("v", ""))])

    app.router.add("GET", "/slow", slow)
    app.router.add("GET", "/split", split)
    return app


# The deadlines are longer than any real-time bound of these tests (5 s): the server runs on a FakeClock, so a
# server that waited for real time instead of its clock fails them.
LIMITS = HttpLimits(
    max_header_bytes=2048,
    max_body_bytes=1024,
    request_deadline_s=10.0,
    request_line_deadline_s=12.0,
    keepalive_s=15.0,
    max_connections=3,
    handler_timeout_s=20.0,
)
JUST_PAST = 0.01  # a moment past a deadline on the fake clock (sums of float seconds are not exact)


@pytest.fixture
async def app() -> App:
    return make_app()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def server(app: App, clock: FakeClock) -> AsyncIterator[HttpServer]:
    async with serve_http(app.router, limits=LIMITS, clock=clock) as srv:
        yield srv


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return msgspec.json.decode(self.body)


def parse_replies(raw: bytes) -> list[Reply]:
    """Split raw bytes into HTTP/1.1 responses (Content-Length framed, as our server always sends)."""
    out: list[Reply] = []
    while raw:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        assert sep, f"incomplete response head: {raw[:200]!r}"
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            headers[k.strip().lower().decode()] = v.strip().decode()
        length = int(headers.get("content-length", "0"))
        out.append(Reply(status, headers, rest[:length]))
        raw = rest[length:]
    return [r for r in out if r.status != 100]


async def exchange(server: HttpServer, data: bytes, *, timeout: float = 5.0) -> tuple[list[Reply], bool]:
    """Send ``data``, read until the server closes (or ``timeout``). Returns (replies, closed_by_server)."""
    raw = b""
    closed = False
    async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
        await stream.send(data)
        with anyio.move_on_after(timeout):
            while True:
                try:
                    raw += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    closed = True
                    break
    return parse_replies(raw), closed


async def read_until_closed(stream: anyio.abc.ByteStream) -> bytes:
    """Everything the server sends until it closes (a real 5 s bound: only a bug waits that long)."""
    raw = b""
    with anyio.fail_after(5):
        while True:
            try:
                raw += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return raw


async def read_replies(stream: anyio.abc.ByteStream, count: int) -> list[Reply]:
    raw = b""
    with anyio.fail_after(5):
        while True:
            replies = _try_parse(raw)
            if replies is not None and len(replies) >= count:
                return replies
            raw += await stream.receive()


def _try_parse(raw: bytes) -> list[Reply] | None:
    try:
        replies = parse_replies(raw)
    except AssertionError:
        return None
    if replies and len(replies[-1].body) < int(replies[-1].headers.get("content-length", "0")):
        return None
    return replies


def post(path: str, body: bytes, *extra: str) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{h}\r\n" for h in extra)
    return head.encode() + b"\r\n" + body


def chunked(path: str, raw_body: bytes, *extra: str) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
    head += "".join(f"{h}\r\n" for h in extra)
    return head.encode() + b"\r\n" + raw_body


def assert_refused(replies: list[Reply], closed: bool, app: App, status: int = 400) -> None:
    assert [r.status for r in replies] == [status], replies
    assert closed, "the connection must be closed after a framing error"
    assert app.calls == [], "no handler may run for a refused request"
    err = replies[0].json()
    assert isinstance(err, dict)
    assert err["error"]["status"] == status


# -- keep-alive and pipelining -------------------------------------------------------------------------------


async def test_keep_alive_serves_several_requests_on_one_connection(server: HttpServer, app: App) -> None:
    async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
        for i in range(3):
            await stream.send(post("/echo", f"n{i}".encode()))
            (reply,) = await read_replies(stream, 1)
            assert reply.status == 200
            assert reply.json() == {"len": 2, "body": f"n{i}"}
            assert "connection" not in reply.headers
    assert len(app.calls) == 3


async def test_pipelined_requests_are_answered_in_order(server: HttpServer, app: App) -> None:
    data = post("/echo", b"a") + post("/echo", b"bb") + b"GET /ping HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    replies, closed = await exchange(server, data)
    assert [r.json() for r in replies] == [{"len": 1, "body": "a"}, {"len": 2, "body": "bb"}, {"len": 0, "body": ""}]
    assert closed


async def test_head_is_served_by_the_get_route_without_a_body(server: HttpServer) -> None:
    replies, _ = await exchange(server, b"HEAD /ping HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert replies[0].status == 200
    assert replies[0].body == b""


async def test_http10_request_gets_an_answer_and_a_close(server: HttpServer, app: App) -> None:
    replies, closed = await exchange(server, b"POST /echo HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi")
    assert [r.status for r in replies] == [200]
    assert closed


# -- request smuggling: framing ambiguities ----------------------------------------------------------------------

SMUGGLED = b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n"


async def test_content_length_with_transfer_encoding_is_refused(server: HttpServer, app: App) -> None:
    body = b"0\r\n\r\n" + SMUGGLED
    data = (
        f"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode() + body
    assert_refused(*await exchange(server, data), app)


async def test_transfer_encoding_before_content_length_is_refused(server: HttpServer, app: App) -> None:
    data = (
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n" + SMUGGLED
    )
    assert_refused(*await exchange(server, data), app)


async def test_conflicting_content_lengths_are_refused(server: HttpServer, app: App) -> None:
    data = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 5\r\n\r\nxGET /"
    assert_refused(*await exchange(server, data), app)


async def test_identical_content_lengths_frame_one_body(server: HttpServer, app: App) -> None:
    data = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
    replies, _ = await exchange(server, data)
    assert [r.json() for r in replies] == [{"len": 2, "body": "hi"}]


async def test_signed_content_length_is_refused(server: HttpServer, app: App) -> None:
    data = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: +2\r\n\r\nhi"
    assert_refused(*await exchange(server, data), app)


async def test_transfer_encoding_in_http10_is_refused(server: HttpServer, app: App) -> None:
    data = b"POST /echo HTTP/1.0\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    assert_refused(*await exchange(server, data), app)


@pytest.mark.parametrize(
    "coding", ["gzip, chunked", "chunked, identity", "xchunked", "chunked\r\nTransfer-Encoding: x"]
)
async def test_other_transfer_codings_are_refused(server: HttpServer, app: App, coding: str) -> None:
    data = f"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: {coding}\r\n\r\n0\r\n\r\n".encode()
    replies, closed = await exchange(server, data)
    assert [r.status for r in replies] in ([501], [400])
    assert closed
    assert app.calls == []


async def test_space_before_colon_is_refused(server: HttpServer, app: App) -> None:
    data = b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"
    assert_refused(*await exchange(server, data), app)


# -- chunked bodies ---------------------------------------------------------------------------------------------


async def test_valid_chunked_body_with_extension_and_trailer_is_read(server: HttpServer, app: App) -> None:
    raw = b'3;name=value;q="a b"\r\nabc\r\n2\r\nde\r\n0\r\nX-Checksum: 1\r\n\r\n'
    replies, _ = await exchange(server, chunked("/echo", raw, "Connection: close"))
    assert [r.json() for r in replies] == [{"len": 5, "body": "abcde"}]


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"3\nabc\r\n0\r\n\r\n", id="bare-LF-after-size"),
        pytest.param(b"3\r\nabc\n0\r\n\r\n", id="bare-LF-after-data"),
        pytest.param(b"3;ext\nabc\r\n0\r\n\r\n", id="bare-LF-in-extension"),
        pytest.param(b"3;ext\rx\r\nabc\r\n0\r\n\r\n", id="bare-CR-in-extension"),
        pytest.param(b"3;e\x00x\r\nabc\r\n0\r\n\r\n", id="NUL-in-extension"),
        pytest.param(b"3;\r\nabc\r\n0\r\n\r\n", id="empty-extension"),
        pytest.param(b"3 \r\nabc\r\n0\r\n\r\n", id="whitespace-after-size"),
        pytest.param(b"0x3\r\nabc\r\n0\r\n\r\n", id="hex-prefix"),
        pytest.param(b"-3\r\nabc\r\n0\r\n\r\n", id="negative-size"),
        pytest.param(b"fffffffffffffffff\r\nabc\r\n0\r\n\r\n", id="huge-size"),
        pytest.param(b"3\r\nabcX\r\n0\r\n\r\n", id="data-longer-than-size"),
        pytest.param(b"3\r\nabc\r\n0\r\nX-T: 1\n\r\n", id="bare-LF-in-trailer"),
        pytest.param(b"3\r\nabc\r\n0\r\nX T: 1\r\n\r\n", id="bad-trailer-name"),
        pytest.param(b"3\r\nabc\r\n0\r\nX-T: a\x01b\r\n\r\n", id="control-char-in-trailer"),
        pytest.param(b"3\r\nabc\r\n0\r\nContent-Length: 50\r\n\r\n", id="content-length-trailer"),
        pytest.param(b"3\r\nabc\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n", id="transfer-encoding-trailer"),
        pytest.param(b"3\r\nabc\r\n0\r\n" + SMUGGLED, id="request-as-trailer"),
        pytest.param(b"3\r\nabc\r\n0\r\n\n", id="bare-LF-end"),
    ],
)
async def test_malformed_chunked_bodies_are_refused(server: HttpServer, app: App, raw: bytes) -> None:
    assert_refused(*await exchange(server, chunked("/echo", raw)), app)


async def test_chunked_body_over_the_limit_gets_413(server: HttpServer, app: App) -> None:
    raw = b"".join(b"100\r\n" + b"x" * 256 + b"\r\n" for _ in range(5)) + b"0\r\n\r\n"
    assert_refused(*await exchange(server, chunked("/echo", raw)), app, 413)


async def test_a_long_chunk_extension_is_refused_even_in_one_write(server: HttpServer, app: App) -> None:
    # 60 KB of chunk extension sent at once: the chunk-line limit (4 KiB) holds whether or not the line spans reads.
    raw = b"1;a=" + b"b" * 60_000 + b"\r\nx\r\n0\r\n\r\n"
    assert_refused(*await exchange(server, chunked("/echo", raw)), app)


# -- heads -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"POST /echo HTTP/1.1\r\nHost: t\r\nX-A: b\r\n c\r\nContent-Length: 0\r\n\r\n", id="obs-fold"),
        pytest.param(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", id="obs-fold-TE"
        ),
        pytest.param(b"POST /echo HTTP/1.1\nHost: t\nContent-Length: 0\n\n", id="bare-LF-head"),
        pytest.param(b"POST /echo HTTP/1.1\r\nHost: t\nContent-Length: 0\r\n\r\n", id="one-bare-LF"),
        pytest.param(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\n", id="bare-LF-end-of-head"),
        pytest.param(b"POST /echo HTTP/1.1\r\nHost: t\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n", id="bare-CR"),
        pytest.param(b"POST /echo HTTP/1.1\r\nHost: t\r\nX(A): b\r\nContent-Length: 0\r\n\r\n", id="bad-name"),
        pytest.param(b"POST /echo HTTP/1.1\r\nHost: t\r\n: b\r\nContent-Length: 0\r\n\r\n", id="empty-name"),
        pytest.param(b"POST /echo HTTP/1.1\r\nHost: t\r\nX-A: b\x00c\r\nContent-Length: 0\r\n\r\n", id="NUL-value"),
        pytest.param(b"POST /echo HTTP/1.1\r\nContent-Length: 0\r\n\r\n", id="no-host"),
        pytest.param(b"POST /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Length: 0\r\n\r\n", id="two-hosts"),
        pytest.param(b"POST /e cho HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", id="space-in-target"),
        pytest.param(b"GET /\r\n\r\n", id="http09"),
        pytest.param(b"POST /%ff HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", id="non-utf8-path"),
    ],
)
async def test_malformed_heads_are_refused(server: HttpServer, app: App, data: bytes) -> None:
    assert_refused(*await exchange(server, data), app)


async def test_http2_preface_gets_505(server: HttpServer, app: App) -> None:
    assert_refused(*await exchange(server, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), app, 505)


async def test_one_oversized_header_gets_431(server: HttpServer, app: App) -> None:
    data = b"POST /echo HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 4000 + b"\r\nContent-Length: 0\r\n\r\n"
    assert_refused(*await exchange(server, data), app, 431)


async def test_many_headers_over_the_block_limit_get_431(server: HttpServer, app: App) -> None:
    headers = "".join(f"X-H{i}: {'v' * 40}\r\n" for i in range(60))
    data = f"POST /echo HTTP/1.1\r\nHost: t\r\n{headers}Content-Length: 0\r\n\r\n".encode()
    assert_refused(*await exchange(server, data), app, 431)


# -- bodies, guard, allowlist -------------------------------------------------------------------------------------


async def test_declared_body_over_the_limit_gets_413_before_it_is_sent(server: HttpServer, app: App) -> None:
    # Only the head goes out: the answer must not wait for the 5,000 announced bytes.
    data = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n"
    assert_refused(*await exchange(server, data, timeout=2), app, 413)


async def test_route_body_limit_applies(server: HttpServer, app: App) -> None:
    assert_refused(*await exchange(server, post("/small", b"x" * 11)), app, 413)
    replies, _ = await exchange(server, post("/small", b"x" * 10, "Connection: close"))
    assert replies[0].status == 200


async def test_guard_refuses_before_the_body_is_read(server: HttpServer, app: App) -> None:
    data = b"POST /guarded HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer wrong\r\nContent-Length: 500\r\n\r\n"
    replies, closed = await exchange(server, data, timeout=2)
    assert_refused(replies, closed, app, 401)


async def test_guard_missing_header_gets_401(server: HttpServer, app: App) -> None:
    assert_refused(*await exchange(server, post("/guarded", b"{}")), app, 401)


async def test_expect_100_continue_only_after_the_guard(server: HttpServer, app: App) -> None:
    head = f"POST /guarded HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {SECRET}\r\nExpect: 100-continue\r\n"
    async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
        await stream.send(head.encode() + b"Content-Length: 2\r\n\r\n")
        with anyio.fail_after(5):
            interim = await stream.receive()
        assert interim.startswith(b"HTTP/1.1 100 ")
        await stream.send(b"ok")
        (reply,) = await read_replies(stream, 1)
        assert reply.json() == {"len": 2, "body": "ok"}
    bad = b"POST /guarded HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
    replies, closed = await exchange(server, bad, timeout=2)
    assert [r.status for r in replies] == [401]
    assert closed
    assert len(app.calls) == 1


async def test_allowlist_refuses_other_addresses(server: HttpServer, app: App) -> None:
    replies, _ = await exchange(server, post("/internal", b"x", "Connection: close"))
    assert replies[0].status == 403
    assert app.calls == []


async def test_not_found_and_wrong_method_are_json_and_keep_the_connection(server: HttpServer, app: App) -> None:
    async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
        await stream.send(post("/nowhere", b"abc"))
        await stream.send(b"DELETE /echo HTTP/1.1\r\nHost: t\r\n\r\n")
        await stream.send(post("/echo", b"z"))
        not_found, wrong_method, ok = await read_replies(stream, 3)
    assert not_found.status == 404
    assert not_found.json() == {"error": {"status": 404, "message": "no such route"}}
    assert wrong_method.status == 405
    assert wrong_method.headers["allow"] == "POST"
    assert ok.json() == {"len": 1, "body": "z"}


async def test_handler_error_is_a_json_500(server: HttpServer, app: App) -> None:
    replies, _ = await exchange(server, b"GET /boom/x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert replies[0].status == 500
    assert replies[0].json() == {"error": {"status": 500, "message": "internal error"}}


async def test_response_splitting_by_a_handler_is_refused(server: HttpServer, app: App) -> None:
    async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
        await stream.send(b"GET /split?v=a%0d%0aSet-Cookie:%20x=1 HTTP/1.1\r\nHost: t\r\n\r\n")
        await stream.send(b"GET /split?v=fine HTTP/1.1\r\nHost: t\r\n\r\n")
        bad, good = await read_replies(stream, 2)
    assert bad.status == 500
    assert "set-cookie" not in bad.headers
    assert good.status == 200
    assert good.headers["x-user"] == "fine"


# -- deadlines, idle, cap -----------------------------------------------------------------------------------------


async def test_trickled_request_is_cut_at_the_deadline_with_408(server: HttpServer, app: App, clock: FakeClock) -> None:
    data = post("/echo", b"abcdef")[:25]
    async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
        try:
            for i in range(len(data)):  # 25 bytes over a little more than the request deadline
                await stream.send(data[i : i + 1])
                await clock.advance(LIMITS.request_deadline_s / 24)  # a slowloris: each byte inside a per-read timeout
        except (anyio.BrokenResourceError, OSError):
            pass
        raw = await read_until_closed(stream)
    replies = parse_replies(raw)
    assert [r.status for r in replies] == [408]
    assert app.calls == []


async def test_body_trickle_is_cut_too(server: HttpServer, app: App, clock: FakeClock) -> None:
    async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
        await stream.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc")
        await clock.advance(LIMITS.request_deadline_s - 0.1)
        assert server.active_connections == 1  # not cut before the deadline
        await clock.advance(0.1 + JUST_PAST)
        raw = await read_until_closed(stream)
    assert [r.status for r in parse_replies(raw)] == [408]
    assert app.calls == []


async def test_idle_keep_alive_connection_is_closed(server: HttpServer, app: App, clock: FakeClock) -> None:
    async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
        await stream.send(post("/echo", b"x"))
        await read_replies(stream, 1)
        await clock.advance(LIMITS.keepalive_s - 0.1)
        assert server.active_connections == 1  # idle, but within the keep-alive timeout
        await clock.advance(0.1 + JUST_PAST)
        with anyio.fail_after(5), pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
            await stream.receive()  # the server closes after keepalive_s without sending anything


async def test_silent_new_connection_is_closed_without_an_answer(server: HttpServer, clock: FakeClock) -> None:
    async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
        await clock.advance(LIMITS.request_line_deadline_s + JUST_PAST)
        replies = parse_replies(await read_until_closed(stream))
    assert replies == []


async def test_slow_handler_gets_500_and_close(server: HttpServer, app: App, clock: FakeClock) -> None:
    async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
        await stream.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        await clock.advance(LIMITS.handler_timeout_s + JUST_PAST)
        replies = parse_replies(await read_until_closed(stream))
    assert [r.status for r in replies] == [500]


async def test_connection_cap_answers_503_and_frees_up(app: App) -> None:
    # Long deadlines here: the held idle connections must not time out while the test runs on a busy machine.
    limits = HttpLimits(max_connections=3, request_deadline_s=30, keepalive_s=30)
    async with serve_http(app.router, limits=limits) as server:
        held = [await anyio.connect_tcp("127.0.0.1", server.port) for _ in range(limits.max_connections)]
        try:
            with anyio.fail_after(5):
                while server.active_connections < limits.max_connections:
                    await anyio.sleep(0.01)
            replies, closed = await exchange(server, post("/echo", b"x"))
            assert [r.status for r in replies] == [503]
            assert replies[0].headers["retry-after"] == "1"
            assert replies[0].json() == {"error": {"status": 503, "message": "too many connections; retry later"}}
            assert closed
            assert app.calls == []
            assert server.rejected_connections == 1
        finally:
            for stream in held:
                await stream.aclose()
        with anyio.fail_after(5):
            while server.active_connections:
                await anyio.sleep(0.01)
        replies, _ = await exchange(server, post("/echo", b"x", "Connection: close"))
        assert [r.status for r in replies] == [200]


async def test_drain_waits_for_a_request_in_progress_up_to_its_grace_on_the_servers_clock(
    server: HttpServer, app: App, clock: FakeClock
) -> None:
    drained = anyio.Event()

    async def drain() -> None:
        await server.drain(grace_s=LIMITS.handler_timeout_s / 2)  # the handler outlives the grace
        drained.set()

    async with await anyio.connect_tcp("127.0.0.1", server.port) as stream, anyio.create_task_group() as tg:
        await stream.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        await clock.settle()
        assert len(app.calls) == 1  # the handler runs (and never returns by itself)
        tg.start_soon(drain)
        await clock.advance(LIMITS.handler_timeout_s / 2 - 0.1)
        assert not drained.is_set()
        await clock.advance(0.1 + JUST_PAST)
        with anyio.fail_after(5):  # the grace is over on the server's clock
            await drained.wait()
        app.release.set()


# -- logs -------------------------------------------------------------------------------------------------------


async def test_logged_paths_are_sanitized_and_secrets_never_logged(
    server: HttpServer, app: App, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="gs_hooks")
    # An encoded CR/LF in the path reaches a log line through the failing handler.
    target = "/boom/a%0d%0aINJECTED%3a%20yes%1b[31m"
    await exchange(server, f"GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
    # A secret in a header and a body of refused requests.
    await exchange(server, f"POST /echo HTTP/1.1\r\nHost: t\r\nX-K: {SECRET}\r\n c\r\n\r\n".encode())
    await exchange(server, f"POST /echo HTTP/1.1\r\nHost: t\r\nBad Name: {SECRET}\r\n\r\n".encode())
    await exchange(server, chunked("/echo", f"5;{SECRET}\x00\r\nabcde\r\n0\r\n\r\n".encode()))
    await exchange(server, post("/guarded", SECRET.encode(), f"Authorization: Bearer {SECRET}x"))
    text = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "handler for GET" in text
    assert SECRET not in text
    for record in caplog.records:
        message = record.getMessage()
        assert "\r" not in message
        assert "\n" not in message
        assert "\x1b" not in message


# -- TLS ------------------------------------------------------------------------------------------------------------


async def test_tls(app: App) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    async with serve_http(app.router, limits=LIMITS, ssl_context=server_context) as srv:
        assert srv.url.startswith("https://127.0.0.1:")
        async with httpx.AsyncClient(verify=client_context) as client:
            for i in range(2):
                r = await client.post(f"{srv.url}/echo", content=f"tls{i}".encode())
                assert r.status_code == 200
                assert r.json() == {"len": 4, "body": f"tls{i}"}
        # A plain-text client does not get a response, and the server keeps serving.
        replies, closed = await exchange(srv, post("/echo", b"x"))
        assert replies == []
        assert closed
        async with httpx.AsyncClient(verify=client_context) as client:
            assert (await client.get(f"{srv.url}/ping")).status_code == 200
