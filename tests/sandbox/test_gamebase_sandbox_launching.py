"""Gamebase emulator: simple launching and under-maintenance, and the maintenance window lifecycle on a FakeClock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from gamebase_sandbox_support import (
    APP,
    SAMPLE_LAUNCHING_MAINTENANCE,
    SAMPLE_LAUNCHING_OK,
    SAMPLE_UNDER_MAINTENANCE,
    Env,
    api,
    assert_same_shape,
    code,
    serve_gamebase,
)

from gs_hooks.sandbox._gamebase_state import GamebaseSimError

pytestmark = pytest.mark.anyio

LAUNCHING = api("tcgb-launching", "/launching/simple")
UNDER = api("tcgb-launching", "/maintenances/under-maintenance")


@pytest.fixture
async def gb() -> AsyncIterator[Env]:
    async with serve_gamebase() as env:
        yield env


async def launching(env: Env, os_code: str = "AOS", version: str = "1.0.0") -> dict[str, Any]:
    body = await env.call("GET", LAUNCHING, params={"osCode": os_code, "clientVersion": version})
    assert code(body) == 0, body
    return body


def without_transaction_id(body: dict[str, Any]) -> dict[str, Any]:
    """The launching samples' header has no transactionId (the common section says every header carries one)."""
    header = dict(body["header"])
    assert header.pop("transactionId")
    return {**body, "header": header}


async def test_launching_ok_round_trips_the_document_sample(gb: Env) -> None:
    body = await launching(gb)
    assert_same_shape(without_transaction_id(body), SAMPLE_LAUNCHING_OK)
    assert body["launchingData"]["status"] == {"code": 200, "message": "OK"}
    assert body["launchingData"]["app"]["storeCode"] == "GG"
    assert (await launching(gb, "IOS"))["launchingData"]["app"]["storeCode"] == "AS"


@pytest.mark.parametrize("status", [200, 201, 300, 302])
async def test_scripted_launching_statuses(gb: Env, status: int) -> None:
    gb.sim.set_launching_status(status, f"status {status}")
    body = await launching(gb)
    assert body["launchingData"]["status"] == {"code": status, "message": f"status {status}"}
    assert "maintenance" not in body["launchingData"]


async def test_launching_status_per_client_version(gb: Env) -> None:
    gb.sim.set_launching_status(300, "update now", client_version="0.9.0")
    assert (await launching(gb, version="0.9.0"))["launchingData"]["status"]["code"] == 300
    assert (await launching(gb, version="1.0.0"))["launchingData"]["status"]["code"] == 200


def test_303_is_scripted_through_a_maintenance_window() -> None:
    from gs_hooks.sandbox._gamebase import GamebaseSim

    with pytest.raises(GamebaseSimError, match="set_maintenance"):
        GamebaseSim().set_launching_status(303)


@pytest.mark.parametrize(
    "params",
    [{}, {"osCode": "AOS"}, {"clientVersion": "1.0"}, {"osCode": "PS5", "clientVersion": "1.0"}],
)
async def test_launching_parameters_are_mandatory(gb: Env, params: dict[str, str]) -> None:
    assert code(await gb.call("GET", LAUNCHING, params=params)) == -4000001


async def test_under_maintenance_round_trips_the_document_sample(gb: Env) -> None:
    now = gb.clock.now()
    gb.sim.set_maintenance(now, now + timedelta(hours=1), "maintenance reason", url="http://url.info")
    body = await gb.call("GET", UNDER)
    assert_same_shape(body, SAMPLE_UNDER_MAINTENANCE)
    assert body["appId"] == APP
    assert body["underMaintenance"] is True
    assert body["maintenances"] == [
        {
            "typeCode": "APP",
            "beginDate": "2026-01-01T00:00:00+09:00",
            "endDate": "2026-01-01T01:00:00+09:00",
            "url": "http://url.info",
            "message": "maintenance reason",
        }
    ]


async def test_launching_during_maintenance_round_trips_the_document_sample(gb: Env) -> None:
    now = gb.clock.now()
    gb.sim.set_maintenance(now, now + timedelta(hours=1), "be right back", type_code="SYSTEM", reason="db upgrade")
    body = await launching(gb)
    assert_same_shape(without_transaction_id(body), SAMPLE_LAUNCHING_MAINTENANCE)
    data = body["launchingData"]
    assert data["status"]["code"] == 303
    assert data["maintenance"] == {
        "typeCode": "SYSTEM",
        "beginDate": "2026-01-01T00:00:00+09:00",
        "endDate": "2026-01-01T01:00:00+09:00",
        "url": None,
        "reason": "db upgrade",
        "message": "be right back",
    }
    assert datetime.fromisoformat(data["maintenance"]["beginDate"]) == now


async def test_maintenance_window_lifecycle(gb: Env) -> None:
    """Announced -> in effect -> over, driven by the fake clock, seen through both launching endpoints."""
    t0 = gb.clock.now()
    gb.sim.set_launching_status(201, "update recommended")
    gb.sim.add_member("u1")
    token = gb.sim.issue_token("u1")

    async def state() -> tuple[bool, int, int]:
        under = await gb.call("GET", UNDER)
        status = (await launching(gb))["launchingData"]["status"]["code"]
        return under["underMaintenance"], len(under["maintenances"]), status

    assert await state() == (False, 0, 201)
    gb.sim.set_maintenance(t0 + timedelta(minutes=30), t0 + timedelta(minutes=90), "planned")
    assert await state() == (False, 1, 201)  # announced: listed, not in effect
    await gb.clock.advance(30 * 60 - 1)
    assert await state() == (False, 1, 201)
    await gb.clock.advance(1)
    assert await state() == (True, 1, 303)  # begin is inclusive
    # token auth is not part of maintenance
    assert code(await gb.call("GET", api("tcgb-gateway", f"/members/u1/tokens/{token}"))) == 0
    await gb.clock.advance(60 * 60 - 1)
    assert await state() == (True, 1, 303)
    await gb.clock.advance(1)
    assert await state() == (False, 0, 201)  # end is exclusive; a finished window is no longer listed


async def test_several_windows_and_clearing(gb: Env) -> None:
    t0 = gb.clock.now()
    late = gb.sim.set_maintenance(t0 + timedelta(hours=5), t0 + timedelta(hours=6), "second")
    gb.sim.set_maintenance(t0 + timedelta(hours=1), t0 + timedelta(hours=2), "first")
    body = await gb.call("GET", UNDER)
    assert [w["message"] for w in body["maintenances"]] == ["first", "second"]
    gb.sim.clear_maintenance(late.window_id)
    assert [w["message"] for w in (await gb.call("GET", UNDER))["maintenances"]] == ["first"]
    gb.sim.clear_maintenance()
    assert (await gb.call("GET", UNDER))["maintenances"] == []
    with pytest.raises(GamebaseSimError, match="no maintenance window"):
        gb.sim.clear_maintenance(late.window_id)


def test_bad_maintenance_scripts_are_refused() -> None:
    from gs_hooks.sandbox._gamebase import GamebaseSim

    sim = GamebaseSim()
    now = sim.clock.time()
    with pytest.raises(GamebaseSimError, match="after its begin"):
        sim.set_maintenance(now, now)
    with pytest.raises(GamebaseSimError, match="APP or SYSTEM"):
        sim.set_maintenance(now, now + 1, type_code="GAME")
