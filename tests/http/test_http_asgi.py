"""The ASGI twin, mounted in a real Starlette app served by a real uvicorn on a loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

import gs_hooks
from asgi_support import run_uvicorn
from gs_hooks import Config, ListenerConfig
from gs_hooks.http import Request, Response, Router, as_asgi

pytestmark = pytest.mark.anyio  # uvicorn runs on asyncio: the conftest's default backend

TOKEN = "asgi-bearer-secret"


def build_routes(router: Router, calls: list[Request]) -> None:
    async def echo(request: Request) -> Response:
        calls.append(request)
        return Response.json({"len": len(request.body), "path": request.path, "q": request.query})

    async def boom(request: Request) -> Response:
        calls.append(request)
        raise RuntimeError("failure")

    def bearer(request: Request) -> Response | None:
        if request.header("authorization") != f"Bearer {TOKEN}":
            return Response.error(401, "missing or wrong bearer key")
        return None

    router.add("POST", "/echo", echo)
    router.add("POST", "/guarded", echo, guard=bearer)
    router.add("POST", "/small", echo, max_body=10)
    router.add("GET", "/items/{item}", echo)
    router.add("GET", "/boom", boom)
    router.add("GET", "/internal", echo, allow=["10.0.0.0/8"])
    router.add("GET", "/local", echo, allow=["127.0.0.1"])


@pytest.fixture
async def mounted() -> AsyncIterator[tuple[str, list[Request], gs_hooks.Hooks]]:
    hooks = gs_hooks.setup(Config(state_path=":memory:", listener=ListenerConfig(max_body_bytes=1024)))
    calls: list[Request] = []
    build_routes(hooks.router, calls)

    async def own(request: StarletteRequest) -> PlainTextResponse:
        return PlainTextResponse("the game's own route")

    app = Starlette(routes=[Route("/own", own), Mount("/gs", app=hooks.asgi_app())])
    async with hooks, run_uvicorn(app) as url:
        yield url, calls, hooks


async def test_mounted_routes_answer_beside_the_games_own(mounted: tuple[str, list[Request], gs_hooks.Hooks]) -> None:
    url, calls, hooks = mounted
    hooks.registry.open_nowait()
    async with httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/own")).text == "the game's own route"
        r = await client.post("/gs/echo?a=1", content=b"hello")
        assert r.status_code == 200
        assert r.json() == {"len": 5, "path": "/echo", "q": {"a": "1"}}
        r = await client.get("/gs/items/a%20b")
        assert r.json()["path"] == "/items/a b"
        health = (await client.get("/gs/healthz")).json()
        assert health["status"] == "ok"
        assert health["sessions"] == 1
        assert health["listener"] is None
        metrics = await client.get("/gs/metrics")
        assert "gs_hooks_sessions 1.0" in metrics.text
        head = await client.head("/gs/healthz")
        assert head.status_code == 200
        assert head.content == b""
    assert len(calls) == 2


async def test_errors_are_the_same_json_shape(mounted: tuple[str, list[Request], gs_hooks.Hooks]) -> None:
    url, calls, _ = mounted
    async with httpx.AsyncClient(base_url=url) as client:
        r = await client.get("/gs/nothing")
        assert r.status_code == 404
        assert r.json() == {"error": {"status": 404, "message": "no such route"}}
        r = await client.get("/gs/echo")
        assert r.status_code == 405
        assert r.headers["allow"] == "POST"
        r = await client.get("/gs/boom")
        assert r.status_code == 500
        assert r.json() == {"error": {"status": 500, "message": "internal error"}}
    assert len(calls) == 1  # only boom ran


async def test_body_limits(mounted: tuple[str, list[Request], gs_hooks.Hooks]) -> None:
    url, calls, _ = mounted

    async def stream_body() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"x" * 500

    async with httpx.AsyncClient(base_url=url) as client:
        assert (await client.post("/gs/echo", content=b"x" * 1024)).json()["len"] == 1024
        assert (await client.post("/gs/echo", content=b"x" * 1025)).status_code == 413
        assert (await client.post("/gs/echo", content=stream_body())).status_code == 413  # chunked, no length
        assert (await client.post("/gs/small", content=b"x" * 11)).status_code == 413
    assert len(calls) == 1


async def test_allowlist_uses_the_asgi_client(mounted: tuple[str, list[Request], gs_hooks.Hooks]) -> None:
    url, calls, _ = mounted
    async with httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/gs/internal")).status_code == 403
        assert (await client.get("/gs/local")).status_code == 200
    assert [c.path for c in calls] == ["/local"]


async def test_guard_runs_before_the_body_is_read(mounted: tuple[str, list[Request], gs_hooks.Hooks]) -> None:
    url, calls, _ = mounted
    port = int(url.rsplit(":", 1)[1])
    # uvicorn sends "100 Continue" only when the app asks for the body: a refused guard must get 401 without it.
    head = b"POST /gs/guarded HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(head)
        with anyio.fail_after(5):
            first = await stream.receive()
    assert first.startswith(b"HTTP/1.1 401 ")
    async with httpx.AsyncClient(base_url=url) as client:
        assert (await client.post("/gs/guarded", content=b"{}")).status_code == 401
        ok = await client.post("/gs/guarded", content=b"{}", headers={"authorization": f"Bearer {TOKEN}"})
        assert ok.json()["len"] == 2
    assert len(calls) == 1


async def test_bare_as_asgi_under_uvicorn_with_a_handler_timeout() -> None:
    router = Router()
    calls: list[Request] = []
    build_routes(router, calls)
    release = anyio.Event()

    async def slow(request: Request) -> Response:
        await release.wait()
        return Response.json({})

    router.add("GET", "/slow", slow)
    app: Callable[..., Any] = as_asgi(router, limits=gs_hooks.http.HttpLimits(handler_timeout_s=0.2))
    async with run_uvicorn(app) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.post("/echo", content=b"abc")).json()["path"] == "/echo"
        r = await client.get("/slow")
        assert r.status_code == 500
        assert r.json()["error"]["message"] == "handler timed out"
