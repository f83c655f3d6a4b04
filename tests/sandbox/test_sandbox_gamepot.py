"""The GamePot CCU inquiry, checked against gamepot-ccu-inquiry-api.txt over HTTP with a plain httpx client."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from gs_hooks import KST, FakeClock
from gs_hooks.sandbox import Sandbox

pytestmark = pytest.mark.anyio

PROJECT = "12a0f2ff-xxxx-xxxx-xxxx-9c13ef02f5fs"
KEY = "86dcgffae0641745432as02a8801ce5a5475f764fxxxxxxxxx"
INQUIRY = f"/v1/api/project/{PROJECT}/user/statistics/ccu"
NOW = datetime(2020, 5, 9, 13, 5, 10, tzinfo=KST)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
async def sb(clock: FakeClock) -> AsyncIterator[Sandbox]:
    async with Sandbox.serve(clock=clock, gamepot_project_id=PROJECT, gamepot_api_key=KEY) as sandbox:
        yield sandbox


@pytest.fixture
async def client(sb: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sb.url) as c:
        yield c


async def report(
    client: httpx.AsyncClient, date: str, user: int, server: str = "1", game: str = "sandbox_game", expect: int = 100
) -> None:
    reqkey = f"{game}-{server}-{date}".replace(" ", "_")
    xml = (
        f'<?xml version="1.0" encoding="utf-8"?><currentuser><game>{game}</game><server>{server}</server>'
        f"<reqkey>{reqkey}</reqkey><date>{date}</date><user>{user}</user></currentuser>"
    )
    r = await client.post("/modules/gameuser/currentuser/", content=base64.b64encode(xml.encode()))
    answer = base64.b64decode(r.content).decode()
    assert re.search(f"<result>{expect}</result>", answer), answer


async def inquire(client: httpx.AsyncClient, key: str | None = KEY, path: str = INQUIRY, **dates: str) -> Any:
    headers = {"accept-language": "ko"}
    if key is not None:
        headers["x-api-key"] = key
    r = await client.get(path, params=dates, headers=headers)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    return r.json()


def rows(doc: Any) -> dict[str, dict[str, Any]]:
    return {e["node"]["createdAt"]: e["node"] for e in doc["result"]["edges"]}


async def test_document_example_request_and_response_shape(client: httpx.AsyncClient) -> None:
    await report(client, "2020-03-01 00:00:00", 0)
    await report(client, "2020-04-01 00:00:00", 0)
    await report(client, "2020-03-01 23:58:00", 0)
    await report(client, "2020-04-01 23:58:00", 0)
    doc = await inquire(client, oneDate="2020-03-01", twoDate="2020-04-01", threeDate="2020-05-09")
    assert set(doc) == {"status", "result"}
    assert doc["status"] == 1
    assert set(doc["result"]) == {"totalCount", "edges"}
    assert doc["result"]["totalCount"] == 1440
    edges = doc["result"]["edges"]
    assert len(edges) == 1440
    # The document's first and last rows, exactly.
    assert edges[0] == {"node": {"createdAt": "00:00", "one": 0, "two": 0, "three": None}}
    assert edges[-1] == {"node": {"createdAt": "23:59", "one": 0, "two": 0, "three": None}}
    assert [e["node"]["createdAt"] for e in edges[:3]] == ["00:00", "00:01", "00:02"]
    assert all(set(e) == {"node"} and set(e["node"]) == {"createdAt", "one", "two", "three"} for e in edges)


async def test_minutes_show_their_two_minute_slot_summed_over_servers(client: httpx.AsyncClient) -> None:
    await report(client, "2020-05-09 12:00:00", 30, server="1")
    await report(client, "2020-05-09 12:00:00", 12, server="2")
    await report(client, "2020-05-09 12:02:00", 5, server="1")
    await report(client, "2020-05-09 12:02:00", 0, server="2")
    await report(client, "2020-05-09 12:00:00", 99, game="other", expect=302)  # not counted
    r = rows(await inquire(client, oneDate="2020-05-09"))
    assert (r["12:00"]["one"], r["12:01"]["one"], r["12:02"]["one"], r["12:03"]["one"]) == (42, 42, 5, 5)
    assert r["11:59"]["one"] is None and r["12:04"]["one"] is None


async def test_missing_dates_default_to_today_and_the_two_days_before(client: httpx.AsyncClient) -> None:
    await report(client, "2020-05-09 13:04:00", 7)
    await report(client, "2020-05-08 13:04:00", 8)
    await report(client, "2020-05-07 13:04:00", 9)
    await report(client, "2020-05-06 13:04:00", 10)
    row = rows(await inquire(client))["13:04"]
    assert (row["one"], row["two"], row["three"]) == (7, 8, 9)
    row = rows(await inquire(client, twoDate="2020-05-06", threeDate=""))["13:05"]
    assert (row["one"], row["two"], row["three"]) == (7, 10, 9)


async def test_today_is_the_kst_date() -> None:
    # 2020-05-09 23:30 UTC is already 2020-05-10 in Korea.
    late = FakeClock(datetime(2020, 5, 10, 8, 30, tzinfo=KST))
    async with (
        Sandbox.serve(clock=late, gamepot_project_id=PROJECT, gamepot_api_key=KEY) as sb,
        httpx.AsyncClient(base_url=sb.url) as client,
    ):
        await report(client, "2020-05-10 00:00:00", 3)
        assert rows(await inquire(client))["00:01"]["one"] == 3


async def test_sixty_second_period_gives_one_slot_per_minute(clock: FakeClock) -> None:
    async with (
        Sandbox.serve(ccu_period_s=60, clock=clock, gamepot_project_id=PROJECT, gamepot_api_key=KEY) as sb,
        httpx.AsyncClient(base_url=sb.url) as client,
    ):
        await report(client, "2020-05-09 10:00:00", 4)
        r = rows(await inquire(client))
        assert (r["10:00"]["one"], r["10:01"]["one"]) == (4, None)


async def test_minus_1_unknown_key(client: httpx.AsyncClient) -> None:
    assert await inquire(client, key="not-on-the-dashboard") == {
        "status": -1,
        "message": "x-api-key is not registered on the dashboard.",
    }
    assert (await inquire(client, key=None))["status"] == -1


async def test_minus_2_key_of_another_project(sb: Sandbox, client: httpx.AsyncClient) -> None:
    sb.gamepot.add_project("other-project")
    sb.gamepot.set_key("other-key", "other-project")
    doc = await inquire(client, key="other-key")
    assert doc["status"] == -2 and isinstance(doc["message"], str)
    assert (await inquire(client, key="other-key", path="/v1/api/project/other-project/user/statistics/ccu"))[
        "status"
    ] == 1


@pytest.mark.parametrize(("state", "code"), [("deleted", -3), ("unused", -4), ("expired", -5)])
async def test_minus_3_4_5_key_states(client: httpx.AsyncClient, state: str, code: int) -> None:
    r = await client.put(f"/_sandbox/gamepot/keys/{KEY}", json={"project_id": PROJECT, "state": state})
    assert r.status_code == 200
    doc = await inquire(client)
    assert set(doc) == {"status", "message"} and doc["status"] == code


async def test_minus_5_key_expires_by_the_clock(sb: Sandbox, client: httpx.AsyncClient, clock: FakeClock) -> None:
    sb.gamepot.set_key(KEY, PROJECT, expires_at=NOW.timestamp() + 60)
    assert (await inquire(client))["status"] == 1
    await clock.advance(60)
    assert (await inquire(client))["status"] == -5


async def test_minus_6_unknown_project(client: httpx.AsyncClient) -> None:
    doc = await inquire(client, path="/v1/api/project/no-such-project/user/statistics/ccu")
    assert doc == {"status": -6, "message": "projectId was wrong."}  # the document's example, verbatim


@pytest.mark.parametrize(
    ("bad", "code"),
    [("threeDate", -11), ("twoDate", -12), ("oneDate", -13)],
)
@pytest.mark.parametrize("value", ["2020/05/09", "20200509", "2020-5-9", "2020-02-30", "yesterday"])
async def test_minus_11_12_13_bad_dates(client: httpx.AsyncClient, bad: str, code: int, value: str) -> None:
    doc = await inquire(client, **{bad: value})
    assert doc["status"] == code
    assert "YYYY-MM-DD" in doc["message"]


async def test_project_limited_to_some_games(sb: Sandbox, client: httpx.AsyncClient) -> None:
    sb.ccu.set_game_keys(["sandbox_game", "tinyfarm_KR"])
    await report(client, "2020-05-09 09:00:00", 1)
    await report(client, "2020-05-09 09:00:00", 20, game="tinyfarm_KR")
    assert rows(await inquire(client))["09:00"]["one"] == 21
    r = await client.put(f"/_sandbox/gamepot/projects/{PROJECT}", json={"games": ["tinyfarm_KR"]})
    assert r.status_code == 200
    assert rows(await inquire(client))["09:00"]["one"] == 20
    await client.delete(f"/_sandbox/gamepot/projects/{PROJECT}")
    assert (await inquire(client))["status"] == -6


async def test_admin_lists_keys_masked_and_removes_them(client: httpx.AsyncClient) -> None:
    info = (await client.get("/_sandbox/gamepot")).json()
    assert info["projects"] == {PROJECT: None}
    assert info["keys"] == [{"key": "86dc…", "project_id": PROJECT, "state": "active", "expires_at": None}]
    assert KEY not in (await client.get("/_sandbox/gamepot")).text
    await client.delete(f"/_sandbox/gamepot/keys/{KEY}")
    assert (await inquire(client))["status"] == -1
    bad = await client.put(f"/_sandbox/gamepot/keys/{KEY}", json={"state": "frozen"})
    assert bad.status_code == 400 and "state" in bad.json()["error"]["message"]
