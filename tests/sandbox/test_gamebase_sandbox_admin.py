"""Gamebase emulator: the /_sandbox/gamebase/... control endpoints, driven over HTTP like the CLI and demo do."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from gamebase_sandbox_support import Env, api, code, serve_gamebase

pytestmark = pytest.mark.anyio

ADMIN = "/_sandbox/gamebase"


@pytest.fixture
async def gb() -> AsyncIterator[Env]:
    async with serve_gamebase() as env:
        yield env


async def admin(env: Env, method: str, rest: str, body: Any = None, status: int = 200) -> Any:
    r = await env.http.request(method, ADMIN + rest, json=body)
    assert r.status_code == status, r.text
    return r.json()


def token_path(user: str, token: str) -> str:
    return api("tcgb-gateway", f"/members/{user}/tokens/{token}")


async def test_members_tokens_and_states_over_admin(gb: Env) -> None:
    created = await admin(gb, "POST", "/members", {"userId": "u1", "idp": "google", "authKey": "g-1"})
    assert created == {"userId": "u1", "authKey": "g-1"}
    token = (await admin(gb, "POST", "/members/u1/tokens", {}))["accessToken"]
    assert code(await gb.call("GET", token_path("u1", token))) == 0
    await admin(gb, "PUT", "/members/u1/valid", {"valid": "D"})
    assert code(await gb.call("GET", token_path("u1", token))) == -4010204
    await admin(gb, "PUT", "/members/u1/valid", {"valid": "Y"})
    await admin(gb, "POST", f"/tokens/{token}/expire")
    assert code(await gb.call("GET", token_path("u1", token))) == -4010208
    second = (await admin(gb, "POST", "/members/u1/tokens", {"ttl": 30}))["accessToken"]
    assert code(await gb.call("GET", token_path("u1", second))) == 0
    await gb.clock.advance(30)
    assert code(await gb.call("GET", token_path("u1", second))) == -4010208
    third = (await admin(gb, "POST", "/members/u1/tokens"))["accessToken"]
    await admin(gb, "POST", f"/tokens/{third}/revoke")
    assert code(await gb.call("GET", token_path("u1", third))) == -4010203


async def test_bans_over_admin(gb: Env) -> None:
    await admin(gb, "POST", "/members", {"userId": "u1"})
    ban = await admin(
        gb, "POST", "/bans", {"userId": "u1", "end": "2026-01-01T01:00:00+09:00", "message": "m", "reason": "r"}
    )
    assert ban == {"seq": 1}
    assert gb.sim.member_valid("u1") == "B"
    assert gb.sim.bans[0].end_ts == gb.clock.time() + 3600
    assert (await admin(gb, "POST", "/bans/release", {"userId": "u1", "reason": "ok"})) == {"released": [1]}
    assert gb.sim.member_valid("u1") == "Y"
    assert gb.sim.releases[0].release_reason == "ok"
    epoch = await admin(gb, "POST", "/bans", {"userId": "u2", "begin": gb.clock.time() + 10})
    assert epoch == {"seq": 2}
    assert gb.sim.bans[1].ban_type == "PERMANENT"


async def test_maintenance_and_launching_over_admin(gb: Env) -> None:
    window = await admin(
        gb,
        "POST",
        "/maintenance",
        {"begin": "2026-01-01T00:00:00+09:00", "end": "2026-01-01T02:00:00+09:00", "message": "m", "url": "http://x"},
    )
    under = await gb.call("GET", api("tcgb-launching", "/maintenances/under-maintenance"))
    assert under["underMaintenance"] is True
    assert under["maintenances"][0]["url"] == "http://x"
    await admin(gb, "DELETE", f"/maintenance?windowId={window['windowId']}")
    assert gb.sim.maintenances == []
    await admin(gb, "POST", "/maintenance", {"begin": 0, "end": gb.clock.time() + 5})
    await admin(gb, "DELETE", "/maintenance")
    assert gb.sim.maintenances == []
    await admin(gb, "PUT", "/launching", {"code": 302, "message": "bye"})
    body = await gb.call(
        "GET", api("tcgb-launching", "/launching/simple"), params={"osCode": "WEB", "clientVersion": "1"}
    )
    assert body["launchingData"]["status"] == {"code": 302, "message": "bye"}


async def test_fault_injection_and_state_over_admin(gb: Env) -> None:
    await admin(gb, "POST", "/members", {"userId": "u1"})
    await admin(gb, "POST", "/fail", {"route": "gamebase.member", "code": -5000201, "n": 2})
    path = api("tcgb-member", "/members/u1")
    assert [code(await gb.call("GET", path)) for _ in range(3)] == [-5000201, -5000201, 0]
    await admin(gb, "PUT", "/options", {"productEnabled": False})
    assert code(await gb.call("GET", path)) == -4010002
    await admin(gb, "PUT", "/options", {"productEnabled": True, "banDateFormat": "iso"})
    state = await admin(gb, "GET", "/state")
    assert state["counts"] == {"gamebase.member": 4}
    assert state["members"] == {"u1": "Y"}
    assert state["banDateFormat"] == "iso"
    assert state["productEnabled"] is True
    assert state["now"] == "2026-01-01T00:00:00+09:00"


@pytest.mark.parametrize(
    ("method", "rest", "body"),
    [
        ("POST", "/members", {}),
        ("POST", "/members", {"userId": "x", "valid": "Q"}),
        ("PUT", "/members/nobody/valid", {"valid": "Y"}),
        ("POST", "/members/u/tokens", {"ttl": -1}),
        ("POST", "/tokens/unknown/expire", None),
        ("POST", "/tokens/unknown/revoke", None),
        ("POST", "/bans", {"userId": "u", "begin": "2026-01-01T00:00:00"}),
        ("POST", "/bans", {"userId": "u", "begin": True}),
        ("POST", "/bans/release", {"userId": "nobody"}),
        ("POST", "/maintenance", {"begin": "2026-01-01T00:00:00+09:00"}),
        ("POST", "/maintenance", {"begin": 10, "end": 5}),
        ("DELETE", "/maintenance?windowId=77", None),
        ("PUT", "/launching", {"code": 303}),
        ("POST", "/fail", {"route": "gamebase.nope", "code": -5000001}),
        ("PUT", "/options", {"banDateFormat": "rfc"}),
    ],
)
async def test_admin_bad_input_is_a_clear_400(gb: Env, method: str, rest: str, body: Any) -> None:
    answer = await admin(gb, method, rest, body, status=400)
    assert answer["error"]["status"] == 400
    assert answer["error"]["message"]


async def test_admin_refuses_non_json(gb: Env) -> None:
    r = await gb.http.post(ADMIN + "/members", content=b"userId=u1")
    assert r.status_code == 400
    r = await gb.http.post(ADMIN + "/members", content=b"[1]")
    assert r.status_code == 400


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_emulator_runs_on_both_backends(anyio_backend: str) -> None:
    async with serve_gamebase() as gb:
        gb.sim.add_member("u1")
        token = gb.sim.issue_token("u1")
        assert code(await gb.call("GET", token_path("u1", token))) == 0
        async with httpx.AsyncClient(base_url=str(gb.http.base_url)) as bare:
            r = await bare.get(token_path("u1", token))
            assert r.json()["header"]["resultCode"] == -4010003


async def test_reset_forgets_scripted_state_and_counts(gb: Env) -> None:
    gb.sim.add_member("u1")
    token = gb.sim.issue_token("u1")
    gb.sim.add_ban("u1")
    gb.sim.set_maintenance(gb.clock.time(), gb.clock.time() + 60)
    gb.sim.set_launching_status(302)
    gb.sim.add_purchase("u1", 1)
    gb.sim.set_score("1", "u1", 5)
    gb.sim.fail_next("gamebase.member", -5000001)
    assert code(await gb.call("GET", token_path("u1", token))) == -4010204
    await admin(gb, "POST", "/reset")
    sim = gb.sim
    assert (sim.members, sim.tokens, sim.bans, sim.maintenances, sim.purchases, sim.leaderboard) == (
        {},
        {},
        [],
        [],
        {},
        {},
    )
    assert sim.launching_status == (200, "OK")
    assert sim.counts == {}
    sim.add_member("u1")
    assert code(await gb.call("GET", api("tcgb-member", "/members/u1"))) == 0  # the injected failure is gone
    assert code(await gb.call("GET", token_path("u1", token))) == -4010203  # tokens are forgotten
    assert sim.app_id == "C3JmSctU"
    assert sim.add_ban("u2").seq == 1
