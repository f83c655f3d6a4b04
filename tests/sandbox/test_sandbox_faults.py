"""Fault injection: per-route result codes, HTTP errors, delays, dropped connections, counts and windows."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import datetime

import anyio
import httpx
import pytest

from gs_hooks import KST, FakeClock
from gs_hooks.sandbox import Sandbox

pytestmark = pytest.mark.anyio

START = datetime(2026, 3, 1, 12, 0, 30, tzinfo=KST)
PATH = "/modules/gameuser/currentuser/"
GAMEPOT = "/v1/api/project/sandbox-project/user/statistics/ccu"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
async def sb(clock: FakeClock) -> AsyncIterator[Sandbox]:
    async with Sandbox.serve(clock=clock) as sandbox:
        yield sandbox


@pytest.fixture
async def client(sb: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sb.url) as c:
        yield c


def payload(reqkey: str) -> bytes:
    xml = (
        '<?xml version="1.0" encoding="utf-8"?><currentuser><game>sandbox_game</game><server>0</server>'
        f"<reqkey>{reqkey}</reqkey><date>2026-03-01 12:00:00</date><user>3</user></currentuser>"
    )
    return base64.b64encode(xml.encode())


def code_of(r: httpx.Response) -> int:
    text = base64.b64decode(r.content).decode()
    return int(text.split("<result>")[1].split("</result>")[0])


async def gamepot(client: httpx.AsyncClient) -> httpx.Response:
    return await client.get(GAMEPOT, headers={"x-api-key": "sandbox-gamepot-key"})


async def test_http_status_for_the_next_n_requests(sb: Sandbox, client: httpx.AsyncClient) -> None:
    sb.faults.add("ccu", "status", status=503, count=2)
    first = await client.post(PATH, content=payload("a"))
    assert first.status_code == 503
    assert "injected HTTP 503" in first.json()["error"]["message"]
    assert (await client.post(PATH, content=payload("a"))).status_code == 503
    assert code_of(await client.post(PATH, content=payload("a"))) == 100
    assert sb.faults.rules == []  # spent rules disappear
    assert [h.kind for h in sb.faults.fired] == ["status", "status"]


async def test_rules_are_per_route_and_star_matches_all(sb: Sandbox, client: httpx.AsyncClient) -> None:
    sb.faults.add("gamepot.ccu", "status", status=500, count=1)
    assert code_of(await client.post(PATH, content=payload("a"))) == 100
    assert (await gamepot(client)).status_code == 500
    sb.faults.add("*", "status", status=502, count=2)
    assert (await client.post(PATH, content=payload("b"))).status_code == 502
    assert (await gamepot(client)).status_code == 502
    assert (await gamepot(client)).json()["status"] == 1


async def test_result_code_in_each_platform_shape(sb: Sandbox, client: httpx.AsyncClient) -> None:
    sb.faults.add("ccu", "result", code=300, count=1)
    sb.faults.add("gamepot.ccu", "result", code=-3, count=1)
    assert code_of(await client.post(PATH, content=payload("a"))) == 300
    doc = (await gamepot(client)).json()
    assert doc["status"] == -3 and isinstance(doc["message"], str)


async def test_delay_waits_on_the_sandbox_clock(sb: Sandbox, client: httpx.AsyncClient, clock: FakeClock) -> None:
    sb.faults.add("ccu", "delay", delay_s=30, count=1)
    answers: list[int] = []

    async def send() -> None:
        answers.append(code_of(await client.post(PATH, content=payload("a"))))

    async with anyio.create_task_group() as tg:
        tg.start_soon(send)
        with anyio.fail_after(5):
            while clock.sleepers == 0:
                await anyio.sleep(0.001)
        await clock.advance(29)
        assert answers == []
        await clock.advance(1)
    assert answers == [100]
    assert sb.ccu.samples[0].received_at == START.timestamp() + 30  # handled after the delay


async def test_drop_closes_without_a_response(sb: Sandbox, client: httpx.AsyncClient) -> None:
    sb.faults.add("ccu", "drop", count=1)
    with pytest.raises(httpx.TransportError):
        await client.post(PATH, content=payload("a"))
    assert sb.ccu.attempts == []  # the request never reached the collector
    assert code_of(await client.post(PATH, content=payload("a"))) == 100


async def test_time_window(sb: Sandbox, client: httpx.AsyncClient, clock: FakeClock) -> None:
    now = clock.time()
    sb.faults.add("ccu", "status", status=503, start=now + 60, duration_s=120)
    assert code_of(await client.post(PATH, content=payload("a"))) == 100
    await clock.advance(60)
    assert (await client.post(PATH, content=payload("b"))).status_code == 503
    await clock.advance(119)
    assert (await client.post(PATH, content=payload("b"))).status_code == 503
    await clock.advance(1)
    assert code_of(await client.post(PATH, content=payload("b"))) == 100
    assert sb.faults.rules == []


def test_bad_rules_are_refused_with_the_reason() -> None:
    sb = Sandbox()
    with pytest.raises(ValueError, match="needs code="):
        sb.faults.add("ccu", "result")
    with pytest.raises(ValueError, match="between 400 and 599"):
        sb.faults.add("ccu", "status", status=200)
    with pytest.raises(ValueError, match="delay_s"):
        sb.faults.add("ccu", "delay")
    with pytest.raises(ValueError, match="count must be"):
        sb.faults.add("ccu", "drop", count=0)
    with pytest.raises(ValueError, match="fault kind"):
        sb.faults.add("ccu", "explode")  # type: ignore[arg-type]
    assert sb.faults.rules == []


async def test_admin_endpoints(sb: Sandbox, client: httpx.AsyncClient) -> None:
    r = await client.post("/_sandbox/faults", json={"route": "ccu", "kind": "status", "status": 503, "count": 1})
    assert r.status_code == 200
    rule = r.json()
    assert (rule["route"], rule["kind"], rule["status"], rule["remaining"]) == ("ccu", "status", 503, 1)
    r2 = await client.post("/_sandbox/faults", json={"route": "gamepot.ccu", "kind": "drop", "duration_s": 60})
    assert r2.json()["until_kst"] == "2026-03-01 12:01:30"
    listed = (await client.get("/_sandbox/faults")).json()
    assert [x["id"] for x in listed["rules"]] == [rule["id"], r2.json()["id"]]
    assert "ccu" in listed["routes"] and "gamepot.ccu" in listed["routes"]
    assert (await client.post(PATH, content=payload("a"))).status_code == 503
    assert (await client.delete(f"/_sandbox/faults/{r2.json()['id']}")).json() == {"removed": 1}
    assert (await client.delete(f"/_sandbox/faults/{r2.json()['id']}")).status_code == 404
    assert (await gamepot(client)).json()["status"] == 1
    await client.post("/_sandbox/faults", json={"route": "*", "kind": "result", "code": 300})
    assert (await client.delete("/_sandbox/faults")).json() == {"removed": 1}
    for bad in (
        {"route": "nope", "kind": "drop"},
        {"route": "ccu", "kind": "status"},
        {"route": "ccu", "kind": "drop", "count": "2"},
        {"route": "ccu", "kind": "drop", "colour": "red"},
    ):
        answer = await client.post("/_sandbox/faults", json=bad)
        assert answer.status_code == 400, bad
        assert answer.json()["error"]["message"]
    assert (await client.post("/_sandbox/faults", content=b"{not json")).status_code == 400
    assert sb.faults.rules == []


async def test_admin_routes_are_never_faulted(sb: Sandbox, client: httpx.AsyncClient) -> None:
    sb.faults.add("*", "status", status=503)
    assert (await client.get("/_sandbox")).status_code == 200
    assert (await client.get("/_sandbox/ccu/stats")).status_code == 200
