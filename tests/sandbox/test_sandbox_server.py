"""The sandbox as a whole: URLs, the info and reset endpoints, lifecycle, and the package surface."""

from __future__ import annotations

import types

import httpx
import pytest

import gs_hooks.sandbox
from gs_hooks import FakeClock
from gs_hooks.sandbox import Sandbox

pytestmark = pytest.mark.anyio


def test_all_is_complete_and_sorted() -> None:
    exported = gs_hooks.sandbox.__all__
    assert exported == sorted(exported)
    assert all(hasattr(gs_hooks.sandbox, name) for name in exported)
    public = {
        name
        for name, value in vars(gs_hooks.sandbox).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(exported)


async def test_urls_and_info() -> None:
    async with Sandbox.serve(clock=FakeClock()) as sb, httpx.AsyncClient() as client:
        assert sb.url == f"http://127.0.0.1:{sb.port}"
        urls = sb.urls()
        assert urls == {
            "ccu_url": f"{sb.url}/modules/gameuser/currentuser/",
            "gamebase_url": sb.url,
            "gamepot_url": sb.url,
            "admin_url": f"{sb.url}/_sandbox",
        }
        info = (await client.get(urls["admin_url"])).json()
        assert info["urls"] == urls
        assert {"ccu", "gamepot.ccu"} <= set(info["routes"])
        assert info["ccu"]["period_s"] == 120 and info["ccu"]["game_keys"] == ["sandbox_game"]
        assert (sb.gamebase_app_id, sb.gamebase_secret) == ("sandbox-app", "sandbox-secret")
        assert (sb.gamepot_project_id, sb.gamepot_api_key) == ("sandbox-project", "sandbox-gamepot-key")
        sb.ccu.set_game_keys(["zz", "sandbox_game", "aa"])
        assert sb.game_keys == ("sandbox_game", "aa", "zz")
        assert "sandbox-gamepot-key" not in (await client.get(f"{sb.url}/_sandbox/gamepot")).text


async def test_reset_clears_state_but_keeps_configuration() -> None:
    async with Sandbox.serve(clock=FakeClock(), game_keys=["g1"]) as sb, httpx.AsyncClient(base_url=sb.url) as c:
        sb.faults.add("ccu", "status", status=503)
        sb.ccu.duplicate_requests = 3
        sb.gamebase.add_member("u1")
        assert (await c.post("/_sandbox/reset")).json() == {"reset": True}
        assert sb.faults.rules == [] and sb.ccu.duplicate_requests == 0
        assert sb.ccu.game_keys == {"g1"}
        assert sb.game_keys == ("g1",)
        assert "u1" not in sb.gamebase.members


def test_url_outside_serve_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="not running"):
        _ = Sandbox().url


async def test_an_error_in_the_block_surfaces_as_itself() -> None:
    with pytest.raises(KeyError, match="mine"):
        async with Sandbox.serve(clock=FakeClock()):
            raise KeyError("mine")


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_runs_on_both_backends(anyio_backend: str) -> None:
    async with Sandbox.serve(clock=FakeClock()) as sb, httpx.AsyncClient() as client:
        r = await client.get(f"{sb.url}/_sandbox/ccu/stats")
        assert r.json()["samples"] == 0
