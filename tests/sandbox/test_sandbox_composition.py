"""The Gamebase simulator composed into the sandbox: its routes behind fault injection, its admin routes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from gs_hooks import FakeClock
from gs_hooks.sandbox import Sandbox

pytestmark = pytest.mark.anyio

APP = "sandbox-app"
SECRET = "sandbox-secret"


def token_path(user: str, token: str, version: str = "v1.0") -> str:
    return f"/tcgb-gateway/{version}/apps/{APP}/members/{user}/tokens/{token}"


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox.serve(clock=FakeClock()) as sandbox:
        yield sandbox


@pytest.fixture
async def client(sb: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sb.urls()["gamebase_url"], headers={"X-Secret-Key": SECRET}) as c:
        yield c


async def test_gamebase_routes_are_served_on_both_versions(sb: Sandbox, client: httpx.AsyncClient) -> None:
    sb.gamebase.add_member("u1")
    token = sb.gamebase.issue_token("u1")
    for version in ("v1.0", "v1.3"):
        r = await client.get(token_path("u1", token, version), headers={"X-TCGB-Transaction-Id": "tx-1"})
        assert r.status_code == 200
        body = r.json()
        assert body["header"]["isSuccessful"] is True and body["header"]["transactionId"] == "tx-1"
        assert r.headers["X-TCGB-Transaction-Id"] == "tx-1"
    assert "gamebase.token" in sb.route_names


async def test_gamebase_result_fault_uses_the_common_envelope(sb: Sandbox, client: httpx.AsyncClient) -> None:
    sb.gamebase.add_member("u1")
    token = sb.gamebase.issue_token("u1")
    sb.faults.add("gamebase.token", "result", code=-5000001, count=1)
    r = await client.get(token_path("u1", token), headers={"X-TCGB-Transaction-Id": "tx-2"})
    assert r.status_code == 200
    header = r.json()["header"]
    assert (header["isSuccessful"], header["resultCode"], header["transactionId"]) == (False, -5000001, "tx-2")
    assert token not in r.text  # the access token is masked in traceError.uri
    assert header["traceError"]["uri"].endswith("/tokens/****")
    ok = await client.get(token_path("u1", token))
    assert ok.json()["header"]["resultCode"] == 0


async def test_gamebase_transport_faults(sb: Sandbox, client: httpx.AsyncClient) -> None:
    sb.faults.add("gamebase.maintenance", "status", status=503, count=1)
    sb.faults.add("gamebase.maintenance", "drop", count=1)
    path = f"/tcgb-launching/v1.0/apps/{APP}/maintenances/under-maintenance"
    assert (await client.get(path)).status_code == 503
    with pytest.raises(httpx.TransportError):
        await client.get(path)
    assert (await client.get(path)).json()["header"]["resultCode"] == 0


async def test_gamebase_admin_routes_are_mounted_and_not_faulted(sb: Sandbox, client: httpx.AsyncClient) -> None:
    sb.faults.add("*", "status", status=500)
    r = await client.post("/_sandbox/gamebase/members", json={"userId": "u9"})
    assert r.status_code == 200
    assert "u9" in sb.gamebase.members
    state = (await client.get("/_sandbox/gamebase/state")).json()
    assert state["appId"] == APP
