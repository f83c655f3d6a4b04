"""The GamePot-compatible CCU inquiry on the listener, over real HTTP with plain httpx."""

from __future__ import annotations

from datetime import timedelta

import httpx
import lxml.html
import pytest
from gamepot_support import (
    API_KEY,
    NOW,
    PROJECT,
    TODAY,
    expected_answer,
    fill_spool,
    history_with,
    known_samples,
    make_ccu_hooks,
    make_hooks,
    serving,
)

from gs_hooks import MemoryCcuHistory
from gs_hooks.http import serve_http

pytestmark = pytest.mark.anyio

PATH = f"/v1/api/project/{PROJECT}/user/statistics/ccu"


@pytest.mark.parametrize("source", ["ccu_spool", "memory"])
async def test_three_dates_equal_the_documents_rules_row_by_row(source: str) -> None:
    """The bar: samples in the CCU history (the reporter's sqlite spool, or the in-memory source), the inquiry
    over HTTP, every one of the 1440 rows compared with the document's rule computed independently."""
    rec = known_samples()
    one, two, three = TODAY, TODAY - timedelta(days=1), TODAY - timedelta(days=2)
    if source == "ccu_spool":
        hooks = make_ccu_hooks()
        spool = hooks.ccu.spool
        assert fill_spool(spool, rec, NOW.timestamp()) == sum(len(v) for v in rec.values())
        # delivery state does not matter to the count: some delivered, some refused, the rest pending
        for k, row in enumerate(spool.rows_sync()):
            if k % 3 == 1:
                spool.record_sync(row.key, "delivered", code=100, now=NOW.timestamp())
            elif k % 7 == 2:
                spool.record_sync(row.key, "refused", code=202, error="bad server id", now=NOW.timestamp())
        assert {r.state.value for r in spool.rows_sync()} == {"pending", "delivered", "refused"}
    else:
        hooks = make_hooks()
        hooks.gamepot_history = history_with(rec)
    try:
        async with serve_http(hooks.router, port=0) as server, httpx.AsyncClient(base_url=server.url) as client:
            r = await client.get(
                PATH,
                params={"oneDate": one.isoformat(), "twoDate": two.isoformat(), "threeDate": three.isoformat()},
                headers={"x-api-key": API_KEY, "accept-language": "ko"},
            )
    finally:
        await hooks.aclose()
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    got = r.json()
    want = expected_answer(rec, one, two, three)
    assert list(got) == ["status", "result"]
    assert list(got["result"]) == ["totalCount", "edges"]
    assert got["status"] == 1 and got["result"]["totalCount"] == 1440
    assert len(got["result"]["edges"]) == 1440
    for m, (g, w) in enumerate(zip(got["result"]["edges"], want["result"]["edges"], strict=True)):
        assert list(g["node"]) == ["createdAt", "one", "two", "three"], m
        assert g == w, f"row {m} ({w['node']['createdAt']})"
    edges = got["result"]["edges"]
    # spot checks of the rule itself, so a shared misunderstanding would show here too
    assert edges[0]["node"]["createdAt"] == "00:00" and edges[-1]["node"]["createdAt"] == "23:59"
    assert edges[1]["node"]["one"] == edges[0]["node"]["one"] is not None  # 00:01 shows the 00:00 slot
    assert edges[3 * 60 + 10]["node"]["one"] is None  # 03:10: the process was down
    assert edges[14 * 60 + 37]["node"]["one"] is not None  # now's slot (14:36) has its sample
    assert edges[14 * 60 + 38]["node"]["one"] is None  # the future
    assert edges[1439]["node"]["three"] is not None  # 23:59 shows 23:58 of the day before yesterday
    assert edges[1439]["node"]["one"] is None  # tomorrow's 00:00 sample is not today's 23:58
    # the value is the sum over server ids at the slot
    s = rec[(one, "12:00")]
    assert edges[12 * 60]["node"]["one"] == s["1"] + s["2"]


async def test_missing_dates_default_to_today_and_the_two_days_before() -> None:
    rec = known_samples()
    hooks = make_hooks()
    hooks.gamepot_history = history_with(rec)
    async with serving(hooks) as url, httpx.AsyncClient(base_url=url) as client:
        r_none = await client.get(PATH, headers={"x-api-key": API_KEY})
        r_empty = await client.get(PATH + "?oneDate=&twoDate=&threeDate=", headers={"x-api-key": API_KEY})
        r_one = await client.get(
            PATH, params={"oneDate": (TODAY - timedelta(days=1)).isoformat()}, headers={"x-api-key": API_KEY}
        )
    want = expected_answer(rec, TODAY, TODAY - timedelta(days=1), TODAY - timedelta(days=2))
    assert r_none.status_code == 200 and r_none.json() == want
    assert r_empty.json() == want
    want_one = expected_answer(rec, TODAY - timedelta(days=1), TODAY - timedelta(days=1), TODAY - timedelta(days=2))
    assert r_one.json() == want_one


async def test_a_day_without_samples_is_all_null() -> None:
    hooks = make_hooks()
    hooks.gamepot_history = MemoryCcuHistory()
    async with serving(hooks) as url, httpx.AsyncClient(base_url=url) as client:
        r = await client.get(PATH, params={"oneDate": "2020-03-01"}, headers={"x-api-key": API_KEY})
    edges = r.json()["result"]["edges"]
    assert len(edges) == 1440
    assert all(e["node"]["one"] is None for e in edges)


@pytest.mark.parametrize(
    ("path", "headers", "query", "status"),
    [
        (PATH, {}, {}, -1),
        (PATH, {"x-api-key": ""}, {}, -1),
        (PATH, {"x-api-key": API_KEY + "x"}, {}, -2),
        (PATH, {"x-api-key": "short"}, {}, -2),
        (PATH.replace(PROJECT, "other-project"), {"x-api-key": API_KEY}, {}, -6),
        (PATH, {"x-api-key": API_KEY}, {"threeDate": "2020-5-09"}, -11),
        (PATH, {"x-api-key": API_KEY}, {"twoDate": "2020/04/01"}, -12),
        (PATH, {"x-api-key": API_KEY}, {"oneDate": "2020-02-30"}, -13),
        (PATH, {"x-api-key": API_KEY}, {"oneDate": "20200301"}, -13),
        (PATH, {"x-api-key": API_KEY}, {"oneDate": "２０２０-03-01"}, -13),
        # precedence: key, then project, then threeDate, twoDate, oneDate
        (PATH.replace(PROJECT, "other-project"), {"x-api-key": "nope"}, {"oneDate": "x"}, -2),
        (PATH.replace(PROJECT, "other-project"), {"x-api-key": API_KEY}, {"oneDate": "x"}, -6),
        (PATH, {"x-api-key": API_KEY}, {"oneDate": "x", "twoDate": "y", "threeDate": "z"}, -11),
        (PATH, {"x-api-key": API_KEY}, {"oneDate": "x", "twoDate": "y"}, -12),
    ],
)
async def test_each_error_code_is_reachable(
    path: str, headers: dict[str, str], query: dict[str, str], status: int
) -> None:
    hooks = make_hooks()
    hooks.gamepot_history = MemoryCcuHistory()
    async with serving(hooks) as url, httpx.AsyncClient(base_url=url) as client:
        r = await client.get(path, params=query, headers=headers)
    assert r.status_code == 200  # as GamePot's document (and the sandbox): the outcome is the body's status
    body = r.json()
    assert list(body) == ["status", "message"]
    assert body["status"] == status
    assert isinstance(body["message"], str) and body["message"]
    assert API_KEY not in r.text
    if status == -6:
        assert body["message"] == "projectId was wrong."


async def test_inquiry_is_off_without_a_project_id_and_obeys_the_admin_allowlist() -> None:
    from gs_hooks import Config, FakeClock, setup

    off = setup(Config(state_path=":memory:"), clock=FakeClock())
    assert off.gamepot_inquiry is None
    assert all("statistics/ccu" not in r.pattern for r in off.router.routes())
    await off.aclose()

    fenced = make_hooks(listener={"admin_allow": ("10.0.0.0/8",)})
    async with serving(fenced) as url, httpx.AsyncClient(base_url=url) as client:
        r = await client.get(PATH, headers={"x-api-key": API_KEY})
    assert r.status_code == 403

    open_ = make_hooks(listener={"admin_allow": ("127.0.0.0/8",)})
    async with serving(open_) as url, httpx.AsyncClient(base_url=url) as client:
        r = await client.get(PATH, headers={"x-api-key": API_KEY})
    assert r.status_code == 200


async def test_the_key_is_not_in_any_repr() -> None:
    hooks = make_hooks()
    assert API_KEY not in repr(hooks.gamepot_inquiry)
    assert API_KEY not in repr(hooks.config)
    await hooks.aclose()


async def test_served_by_the_hooks_own_listener_when_configured() -> None:
    """The production path: ``GS_HOOKS_LISTEN`` set, the listener component serves the inquiry and the dashboard."""
    from gs_hooks import Config, FakeClock, GamePotConfig, ListenerConfig, Secret, setup

    cfg = Config(
        state_path=":memory:",
        gamepot=GamePotConfig(project_id=PROJECT, api_key=Secret(API_KEY)),
        listener=ListenerConfig(listen="127.0.0.1:0", dashboard=True),
    )
    hooks = setup(cfg, clock=FakeClock(NOW))
    history = MemoryCcuHistory()
    history.record_nowait(NOW.replace(hour=0, minute=0, second=0), "1", 42)
    hooks.gamepot_history = history
    async with hooks:
        assert hooks.listener is not None
        async with httpx.AsyncClient(base_url=hooks.listener.url) as client:
            inquiry = await client.get(PATH, headers={"x-api-key": API_KEY})
            page = await client.get("/dashboard")
    edges = inquiry.json()["result"]["edges"]
    assert edges[0]["node"] == {"createdAt": "00:00", "one": 42, "two": None, "three": None}
    assert edges[1]["node"]["one"] == 42 and edges[2]["node"]["one"] is None
    assert page.status_code == 200
    points = lxml.html.fromstring(page.text).xpath('//circle[@data-series="one"]')
    assert [(c.get("data-minute"), c.get("data-value")) for c in points] == [("0", "42")]
