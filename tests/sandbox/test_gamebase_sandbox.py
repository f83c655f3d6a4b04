"""The Gamebase emulator over real loopback HTTP, called with a plain httpx client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from gs_hooks import FakeClock
from gs_hooks.http import Router, serve_http
from gs_hooks.sandbox._gamebase import GamebaseSim

pytestmark = pytest.mark.anyio

APP = "C3JmSctU"
KEY = "IgsaAP"


@dataclass
class Env:
    sim: GamebaseSim
    clock: FakeClock
    http: httpx.AsyncClient


@pytest.fixture
async def gb() -> AsyncIterator[Env]:
    clock = FakeClock()
    sim = GamebaseSim(app_id=APP, secret_key=KEY, clock=clock)
    router = Router()
    for _, method, path, handler in sim.routes() + sim.admin_routes():
        router.add(method, path, handler)
    async with (
        serve_http(router, port=0) as server,
        httpx.AsyncClient(base_url=server.url, headers={"X-Secret-Key": KEY}) as client,
    ):
        yield Env(sim, clock, client)


def token_path(user: str, token: str, version: str = "v1.0") -> str:
    return f"/tcgb-gateway/{version}/apps/{APP}/members/{user}/tokens/{token}"


async def test_token_auth_accepts_an_issued_token(gb: Env) -> None:
    gb.sim.add_member("u1")
    token = gb.sim.issue_token("u1")
    r = await gb.http.get(token_path("u1", token))
    assert r.status_code == 200
    body = r.json()
    assert body["header"]["isSuccessful"] is True
    assert body["header"]["resultCode"] == 0
    assert body["member"]["userId"] == "u1"
    assert body["member"]["valid"] == "Y"
    r = await gb.http.get(token_path("u1", "not-a-token"))
    assert r.json()["header"]["resultCode"] == -4010203
