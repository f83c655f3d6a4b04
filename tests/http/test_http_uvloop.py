"""The embedded listener and the sandbox on uvloop, whose transports are not ``asyncio.Transport`` subclasses.

The listener's asyncio fast path drives the loop's transports through their documented methods only; these tests
serve real requests over loopback with uvloop running the loop (keep-alive, pipelining, a chunked body, the Hive
webhook through ``setup()``, and the sandbox's platform APIs).
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import gs_hooks
from gs_hooks import KST, FakeClock
from gs_hooks.http import Request, Response, Router, serve_http
from gs_hooks.sandbox import Sandbox

pytest.importorskip("uvloop")

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    return ("asyncio", {"use_uvloop": True})


def assert_on_uvloop() -> None:
    loop = asyncio.get_running_loop()
    assert type(loop).__module__.startswith("uvloop"), type(loop)


async def test_listener_serves_keep_alive_pipelined_and_chunked_requests_on_uvloop() -> None:
    assert_on_uvloop()
    router = Router()

    async def echo(request: Request) -> Response:
        return Response.json({"body": request.body.decode()})

    router.add("POST", "/echo", echo)
    async with serve_http(router, port=0) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            for i in range(3):  # one keep-alive connection
                r = await client.post("/echo", content=f"hello {i}".encode())
                assert r.status_code == 200
                assert r.json() == {"body": f"hello {i}"}
        async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
            one = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\na"
            chunked = b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            await stream.send(one + chunked + b"2\r\nbc\r\n0\r\n\r\n")
            raw = b""
            with anyio.fail_after(5):
                while True:
                    try:
                        raw += await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        break
        assert raw.count(b"HTTP/1.1 200 ") == 2
        assert raw.endswith(b'{"body":"bc"}')
        assert server.requests_served == 5


async def test_hive_webhook_through_setup_on_uvloop(tmp_path: Path) -> None:
    assert_on_uvloop()
    key = "uvloop-webhook-key-000001"
    cfg = gs_hooks.Config(
        state_path=str(tmp_path / "state.db"),
        hive=gs_hooks.HiveConfig(auth_key=gs_hooks.Secret(key), game_index=539),
        listener=gs_hooks.ListenerConfig(listen="127.0.0.1:0"),
    )
    kicks: list[gs_hooks.KickRequest] = []
    hooks = gs_hooks.setup(cfg, on_kick=kicks.append, clock=FakeClock(datetime(2026, 3, 1, 12, tzinfo=KST)))
    async with hooks:
        assert hooks.listener is not None
        hooks.bind_player(hooks.registry.open_nowait(), "7")
        item = {"player_id": 7, "status": "P", "start_date": "2026-03-01 11:00:00", "end_date": "9999-12-31 00:00:00"}
        body = {"game_index": 539, "server_url": "http://game", "data": [item]}
        async with httpx.AsyncClient(base_url=hooks.listener.url) as client:
            r = await client.post(
                "/hive/suspensions", content=json.dumps(body), headers={"authorization": f"Bearer {key}"}
            )
            assert r.status_code == 200, r.text
            assert r.json() == {"result_code": 0}
            assert (await client.get("/healthz")).status_code == 200
        assert [k.reason for k in kicks] == ["ban"]
        assert hooks.bans.active_ban("7") is not None


async def test_sandbox_serves_the_platform_apis_on_uvloop() -> None:
    assert_on_uvloop()
    async with Sandbox.serve(clock=FakeClock()) as sb, httpx.AsyncClient(base_url=sb.url) as client:
        info = await client.get("/_sandbox")
        assert info.status_code == 200
        assert info.json()["urls"] == sb.urls()
        gamepot = await client.get(
            f"/v1/api/project/{sb.gamepot_project_id}/user/statistics/ccu",
            headers={"x-api-key": sb.gamepot_api_key},
        )
        assert gamepot.status_code == 200
        assert gamepot.json()["status"] == 1
