"""The one HTTP client interface of the platform calls (``gs_hooks._http_client``), against a real loopback server.

Each test runs on every implementation that the backend allows: the library's own ``FastHttpClient`` and aiohttp
(asyncio only), httpx, and the shared ``AutoHttpClient`` (the fast client on asyncio, httpx on trio). What they
must all do the same: send the URL exactly as given (a percent-encoded segment stays one segment), send the headers
and the body, answer status, headers and body whatever the status, follow no redirect, and raise
``HttpTransportError`` (never with a token in its text) when no answer comes.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Callable
from urllib.parse import quote

import anyio
import httpx
import pytest

import gs_hooks
from gs_hooks import ClosedError, FakeClock, HttpTransportError
from gs_hooks._http_client import AiohttpClient, AutoHttpClient, FastHttpClient, HttpClient, HttpxClient, as_http_client
from gs_hooks.http import Request, Response, Router, serve_http
from gs_hooks.http._server import HttpServer
from gs_hooks.sandbox import Sandbox
from http_client_support import verify_only

pytestmark = pytest.mark.anyio

SEEN: list[Request] = []


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


Make = Callable[[], HttpClient]


@pytest.fixture(params=["fast", "aiohttp", "httpx", "auto"])
def make(request: pytest.FixtureRequest, anyio_backend: str) -> Make:
    if request.param in ("fast", "aiohttp"):
        if anyio_backend != "asyncio":
            pytest.skip(f"{request.param} runs on asyncio only (trio takes httpx: the 'auto' case)")
        return FastHttpClient if request.param == "fast" else AiohttpClient
    if request.param == "httpx":
        return HttpxClient
    return AutoHttpClient


@pytest.fixture
async def server() -> AsyncIterator[HttpServer]:
    SEEN.clear()

    async def echo(request: Request) -> Response:
        SEEN.append(request)
        return Response.json({"body": request.body.decode(), "seg": request.path_params.get("seg")})

    async def status(request: Request) -> Response:
        response = Response.text("down", status=int(request.path_params["code"]))
        response.headers.append(("retry-after", "7"))
        return response

    async def moved(request: Request) -> Response:
        response = Response.text("moved", status=302)
        response.headers.append(("location", "/p/elsewhere"))
        return response

    async def slow(request: Request) -> Response:
        await anyio.sleep(5)
        return Response.text("late")

    router = Router()
    router.add("GET", "/p/{seg}", echo)
    router.add("POST", "/p/{seg}", echo)
    router.add("GET", "/status/{code}", status)
    router.add("GET", "/moved", moved)
    router.add("GET", "/slow", slow)
    async with serve_http(router, port=0) as srv:
        yield srv


async def test_a_percent_encoded_segment_is_sent_as_given(server: HttpServer, make: Make) -> None:
    http = make()
    try:
        for value in ["a/../b", "%2e%2e", "?x=1#y", "한글", " a b ", "%", "a+b"]:
            url = f"{server.url}/p/{quote(value, safe='')}?q={quote('x y+z', safe='')}"
            answer = await http.request("GET", url, timeout_s=5.0)
            assert answer.status == 200, value
            assert SEEN[-1].path_params["seg"] == value  # one segment, decoded once: the value itself
            assert SEEN[-1].query == {"q": "x y+z"}
    finally:
        await http.aclose()


async def test_headers_and_body_go_out_and_the_answer_comes_back_whole(server: HttpServer, make: Make) -> None:
    http = make()
    try:
        answer = await http.request(
            "POST",
            f"{server.url}/p/one",
            headers={"X-Secret-Key": "k-123456", "Content-Type": "application/json"},
            content=b'{"a": 1}',
            timeout_s=5.0,
        )
        assert answer.is_success and answer.status == 200
        assert answer.headers.get("content-type", "").startswith("application/json")
        assert answer.headers.get("Content-Type") == answer.headers.get("content-type")  # case-insensitive
        assert b'"body":"{\\"a\\": 1}"' in answer.content
        assert SEEN[-1].header("x-secret-key") == "k-123456"
        assert SEEN[-1].body == b'{"a": 1}'
        bad = await http.request("GET", f"{server.url}/status/503", timeout_s=5.0)
        assert (bad.status, bad.is_success, bad.content) == (503, False, b"down")
        assert bad.headers.get("retry-after") == "7"
        moved = await http.request("GET", f"{server.url}/moved", timeout_s=5.0)
        assert moved.status == 302  # never followed
        assert "elsewhere" not in [r.path_params.get("seg") for r in SEEN]
    finally:
        await http.aclose()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_no_answer_raises_a_transport_error_without_the_token(server: HttpServer, make: Make) -> None:
    http = make()
    token = "tok-SECRET-0123456789"
    try:
        with pytest.raises(HttpTransportError) as refused:
            await http.request("GET", f"http://127.0.0.1:{_closed_port()}/tokens/{token}", timeout_s=5.0)
        with pytest.raises(HttpTransportError, match="timeout") as late:
            await http.request("GET", f"{server.url}/slow?t=/tokens/{token}", timeout_s=0.2)
        assert late.value.kind == "timeout"
        # aiohttp's, httpx's, the fast client's (the OS error itself)
        assert refused.value.kind in ("ClientConnectorError", "ConnectError", "ConnectionRefusedError")
        for exc in (refused.value, late.value):
            assert token not in str(exc)
            assert exc.__cause__ is None and exc.__suppress_context__  # the library's exception is not chained
    finally:
        await http.aclose()


async def test_the_shared_client_picks_the_fast_client_on_asyncio_and_httpx_on_trio(
    server: HttpServer, anyio_backend: str
) -> None:
    http = AutoHttpClient()
    assert http.backend is None
    try:
        assert (await http.request("GET", f"{server.url}/p/x", timeout_s=5.0)).status == 200
        assert http.backend == ("fast" if anyio_backend == "asyncio" else "httpx")
        assert not http.is_closed
    finally:
        await http.aclose()
    assert http.is_closed
    with pytest.raises(ClosedError):  # closed is closed: no new session is opened behind the hooks' back
        await http.request("GET", f"{server.url}/p/x", timeout_s=5.0)


async def test_a_given_httpx_client_carries_every_request_and_stays_open(server: HttpServer) -> None:
    sent: list[str] = []

    async def hook(request: httpx.Request) -> None:
        sent.append(request.url.path)

    async with httpx.AsyncClient(event_hooks={"request": [hook]}) as given:
        http = AutoHttpClient(given)
        assert http.backend == "httpx"
        await http.request("GET", f"{server.url}/p/a", timeout_s=5.0)
        await http.aclose()
        assert not given.is_closed and not http.is_closed
        await http.request("GET", f"{server.url}/p/b", timeout_s=5.0)  # still usable: it is the game's
        assert as_http_client(given).request is not None and isinstance(as_http_client(given), HttpxClient)
        assert as_http_client(http) is http
    assert sent == ["/p/a", "/p/b"]


async def test_setup_with_a_game_httpx_client_sends_the_platform_calls_through_it(anyio_backend: str) -> None:
    sent: list[str] = []

    async def hook(request: httpx.Request) -> None:
        sent.append(request.url.path.rsplit("/", 2)[-2])

    async with (
        Sandbox.serve(port=0, clock=FakeClock()) as sb,
        httpx.AsyncClient(event_hooks={"request": [hook]}) as given,
    ):
        assert sb.gamebase is not None
        sb.gamebase.add_member("u1")
        token = sb.gamebase.issue_token("u1")
        config = verify_only(sb)
        async with gs_hooks.setup(config, http_client=given) as hooks:
            info = await hooks.verify_token("u1", token)
            assert info.member.user_id == "u1"
        assert sent == ["tokens"]
        assert not given.is_closed  # the hooks closed their own connections, not the game's client


async def test_the_default_path_verifies_through_the_fast_client_and_logs_no_token(
    caplog: pytest.LogCaptureFixture, anyio_backend: str
) -> None:
    caplog.set_level(logging.DEBUG)
    async with Sandbox.serve(port=0, clock=FakeClock()) as sb:
        assert sb.gamebase is not None
        sb.gamebase.add_member("u1")
        token = sb.gamebase.issue_token("u1")
        config = verify_only(sb)
        async with gs_hooks.setup(config) as hooks:
            assert (await hooks.verify_token("u1", token)).member.valid == "Y"
            assert isinstance(hooks.http, AutoHttpClient)
            assert hooks.http.backend == ("fast" if anyio_backend == "asyncio" else "httpx")
            assert sb.gamebase.counts.get("gamebase.token") == 1
    assert all(token not in r.getMessage() for r in caplog.records)
