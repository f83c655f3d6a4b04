"""The listener as a Hooks component: wiring, built-in routes, limits and TLS from the config."""

from __future__ import annotations

import ssl
import sys
from pathlib import Path

import anyio
import httpx
import pytest

import gs_hooks
from gs_hooks import Config, ConfigError, ListenerConfig
from gs_hooks.http import Listener, Request, Response, Router

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def config(**listener: object) -> Config:
    return Config(state_path=":memory:", listener=ListenerConfig(listen="127.0.0.1:0", **listener))  # type: ignore[arg-type]


async def test_listener_is_off_without_listen() -> None:
    hooks = gs_hooks.setup(Config(state_path=":memory:"))
    async with hooks:
        assert hooks.listener is None
        assert [c for c in hooks.components if isinstance(c, Listener)] == []
        assert hooks.health()["status"] == "ok"


async def test_listener_serves_healthz_and_capability_routes() -> None:
    hooks = gs_hooks.setup(config())
    seen: list[bytes] = []

    async def hook(request: Request) -> Response:
        seen.append(request.body)
        return Response.json({"result_code": 0})

    hooks.router.add("POST", "/hive/suspensions", hook)
    async with hooks:
        assert hooks.listener is not None
        assert hooks.listener.port > 0
        assert hooks.listener.url == f"http://127.0.0.1:{hooks.listener.port}"
        hooks.registry.open_nowait()
        hooks.registry.open_nowait()
        async with httpx.AsyncClient(base_url=hooks.listener.url) as client:
            health = (await client.get("/healthz")).json()
            assert health["status"] == "ok"
            assert health["sessions"] == 2
            assert health["components"] == [c.name for c in hooks.components] and health["components"][-1] == "listener"
            assert health["listener"]["active_connections"] == 1
            r = await client.post("/hive/suspensions", content=b"[]")
            assert r.json() == {"result_code": 0}
        assert seen == [b"[]"]
        url = hooks.listener.url
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.get(f"{url}/healthz")


async def test_limits_come_from_the_config() -> None:
    hooks = gs_hooks.setup(config(max_body_bytes=1024, max_header_bytes=1024))

    async def echo(request: Request) -> Response:
        return Response.json({"n": len(request.body)})

    hooks.router.add("POST", "/echo", echo)
    async with hooks:
        assert hooks.listener is not None
        async with httpx.AsyncClient(base_url=hooks.listener.url) as client:
            assert (await client.post("/echo", content=b"x" * 1024)).json() == {"n": 1024}
            assert (await client.post("/echo", content=b"x" * 1025)).status_code == 413
            assert (await client.post("/echo", headers={"x-big": "y" * 1100})).status_code == 431


async def test_metrics_is_served_behind_the_admin_allowlist() -> None:
    hooks = gs_hooks.setup(config())
    async with hooks:
        assert hooks.listener is not None
        hooks.registry.open_nowait()
        async with httpx.AsyncClient(base_url=hooks.listener.url) as client:
            r = await client.get("/metrics")
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/plain")
            assert "gs_hooks_sessions 1.0" in r.text
            assert "gs_hooks_up 1.0" in r.text
            assert "gs_hooks_http_connections 1.0" in r.text
    hooks = gs_hooks.setup(config(admin_allow=("10.0.0.0/8",)))
    async with hooks:
        assert hooks.listener is not None
        async with httpx.AsyncClient(base_url=hooks.listener.url) as client:
            assert (await client.get("/metrics")).status_code == 403
            assert (await client.get("/healthz")).status_code == 200


async def test_metrics_without_prometheus_client_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # makes the import fail
    hooks = gs_hooks.setup(config())
    async with hooks:
        assert hooks.listener is not None
        async with httpx.AsyncClient(base_url=hooks.listener.url) as client:
            r = await client.get("/metrics")
    assert r.status_code == 501
    assert "gs_hooks[metrics]" in r.json()["error"]["message"]


async def test_tls_from_config_files(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    hooks = gs_hooks.setup(config(tls_cert=str(cert_file), tls_key=str(key_file)))
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    async with hooks:
        assert hooks.listener is not None
        assert hooks.listener.url.startswith("https://")
        async with httpx.AsyncClient(verify=client_context) as client:
            assert (await client.get(f"{hooks.listener.url}/healthz")).json()["status"] == "ok"


async def test_unreadable_tls_files_are_a_config_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.pem")
    with pytest.raises(ConfigError, match="TLS"):
        gs_hooks.setup(config(tls_cert=missing, tls_key=missing))


async def test_port_in_use_fails_start() -> None:
    async with await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0) as taken:
        port = taken.extra(anyio.abc.SocketAttribute.local_port)
        hooks = gs_hooks.setup(Config(state_path=":memory:", listener=ListenerConfig(listen=f"127.0.0.1:{port}")))
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
            await hooks.start()
        assert not hooks.running


async def test_close_lets_a_request_in_progress_finish_and_refuses_new_ones() -> None:
    router = Router()
    entered = anyio.Event()
    release = anyio.Event()

    async def slow(request: Request) -> Response:
        entered.set()
        await release.wait()
        return Response.json({"done": True})

    router.add("POST", "/slow", slow)
    router.add("GET", "/fast", slow)
    listener = Listener(router, ListenerConfig(listen="127.0.0.1:0"))
    results: list[httpx.Response] = []
    refused: list[httpx.Response] = []
    async with anyio.create_task_group() as tg:
        await tg.start(listener.run)
        url = listener.url

        async def call() -> None:
            async with httpx.AsyncClient() as client:
                results.append(await client.post(f"{url}/slow", content=b"{}"))

        async def probe_then_release() -> None:
            with anyio.fail_after(5):
                while not listener.server.draining:
                    await anyio.sleep(0.01)
            async with httpx.AsyncClient() as other:
                refused.append(await other.get(f"{url}/fast"))
            release.set()

        tg.start_soon(call)
        await entered.wait()
        tg.start_soon(probe_then_release)
        await listener.aclose()
    assert [r.status_code for r in refused] == [503]
    assert refused[0].json()["error"]["message"] == "shutting down; retry later"
    assert [r.json() for r in results] == [{"done": True}]
    assert results[0].headers["connection"] == "close"


async def test_the_listeners_deadlines_run_on_the_clock_it_is_given() -> None:
    clock = gs_hooks.FakeClock()
    # a request-line deadline far longer than the real-time bound below: only the fake clock can reach it
    settings = ListenerConfig(listen="127.0.0.1:0", request_line_deadline_s=30, request_deadline_s=60, keepalive_s=60)
    listener = Listener(Router(), settings, clock=clock)
    async with anyio.create_task_group() as tg:
        await tg.start(listener.run)
        async with await anyio.connect_tcp("127.0.0.1", listener.port) as stream:
            await clock.advance(29.9)
            assert listener.server.active_connections == 1
            await clock.advance(0.2)
            with anyio.fail_after(5), pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                await stream.receive()  # closed without an answer: it never sent a byte
        await listener.aclose()
