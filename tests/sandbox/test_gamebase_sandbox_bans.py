"""Gamebase emulator: ban and ban-release histories (window, paging, date formats) and ban effects on members."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import anyio
import msgspec
import pytest
from gamebase_sandbox_support import (
    APP,
    SAMPLE_BANS,
    Env,
    api,
    assert_same_shape,
    code,
    serve_gamebase,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from gs_hooks.http import Request
from gs_hooks.sandbox._gamebase import GamebaseSim
from gs_hooks.sandbox._gamebase_state import GamebaseSimError

pytestmark = pytest.mark.anyio

BANS = api("tcgb-member", "/members/bans")
RELEASES = api("tcgb-member", "/members/bans/release")
WIDE = {"begin": "2025-01-01T00:00:00.000+09:00", "end": "2027-01-01T00:00:00.000+09:00"}


@pytest.fixture
async def gb() -> AsyncIterator[Env]:
    async with serve_gamebase() as env:
        yield env


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


async def page(env: Env, path: str, page_no: int | None = None, size: int | None = None, **window: str) -> Any:
    params: dict[str, str] = dict(window or WIDE)
    if page_no is not None:
        params["page"] = str(page_no)
    if size is not None:
        params["size"] = str(size)
    body = await env.call("GET", path, params=params)
    assert code(body) == 0, body
    return body


async def test_ban_history_round_trips_the_document_sample(gb: Env) -> None:
    now = gb.clock.now()
    gb.sim.add_member("u1")
    gb.sim.add_ban(
        "u1", end=now + timedelta(days=1), message="cheating", reason="speed hack", name="tmpl", template_code=3
    )
    await gb.clock.advance(60)
    gb.sim.release_ban("u1", reason="appeal")
    body = await page(gb, BANS)
    assert_same_shape(body, SAMPLE_BANS)
    row = body["result"][0]
    assert row["appId"] == APP
    assert row["userId"] == "u1"
    assert row["banType"] == "TEMPORARY"
    assert row["beginDate"] == round(now.timestamp() * 1000)
    assert row["endDate"] == round((now + timedelta(days=1)).timestamp() * 1000)
    assert row["releaseDate"] == round(now.timestamp() * 1000) + 60_000
    assert (row["message"], row["banReason"], row["name"], row["templateCode"]) == ("cheating", "speed hack", "tmpl", 3)
    assert (row["releaseReason"], row["releaseCaller"]) == ("appeal", "CONSOLE")
    releases = await page(gb, RELEASES)
    assert_same_shape(releases, SAMPLE_BANS)
    assert releases["result"] == body["result"]


async def test_unreleased_permanent_ban_has_null_end_and_release(gb: Env) -> None:
    gb.sim.add_ban("u1")
    row = (await page(gb, BANS))["result"][0]
    assert row["banType"] == "PERMANENT"
    assert row["endDate"] is None
    assert row["releaseDate"] is None
    assert row["releaseCaller"] is None
    assert (await page(gb, RELEASES))["result"] == []


async def test_iso_date_format_switch() -> None:
    async with serve_gamebase(ban_date_format="iso") as gb:
        now = gb.clock.now()
        gb.sim.add_ban("u1", end=now + timedelta(hours=2))
        row = (await page(gb, BANS))["result"][0]
        assert row["beginDate"] == "2026-01-01T00:00:00.000+09:00"
        assert row["endDate"] == "2026-01-01T02:00:00.000+09:00"
        assert datetime.fromisoformat(row["beginDate"]) == now
        r = await gb.http.put("/_sandbox/gamebase/options", json={"banDateFormat": "millis"})
        assert r.status_code == 200
        assert (await page(gb, BANS))["result"][0]["beginDate"] == round(now.timestamp() * 1000)


async def test_paging_250_bans_by_100(gb: Env) -> None:
    for i in range(250):
        gb.sim.add_ban(f"user{i:03d}")
    seen: list[int] = []
    expected = [
        (0, True, False, 100),
        (1, False, False, 100),
        (2, False, True, 50),
    ]
    for page_no, first, last, count in expected:
        body = await page(gb, BANS, page_no, 100)
        assert body["pagingInfo"] == {
            "first": first,
            "last": last,
            "numberOfElements": count,
            "page": page_no,
            "size": 100,
            "totalElements": 250,
            "totalPages": 3,
        }
        seen += [row["seq"] for row in body["result"]]
    assert seen == list(range(1, 251))
    beyond = await page(gb, BANS, 3, 100)
    assert beyond["result"] == []
    assert beyond["pagingInfo"]["numberOfElements"] == 0
    assert beyond["pagingInfo"]["last"] is True
    assert beyond["pagingInfo"]["first"] is False


async def test_paging_defaults_and_limits(gb: Env) -> None:
    empty = await page(gb, BANS)
    assert empty["pagingInfo"] == {
        "first": True,
        "last": True,
        "numberOfElements": 0,
        "page": 0,
        "size": 20,
        "totalElements": 0,
        "totalPages": 0,
    }
    for i in range(25):
        gb.sim.add_ban(f"u{i}")
    default = await page(gb, BANS)
    assert default["pagingInfo"]["numberOfElements"] == 20
    assert default["pagingInfo"]["totalPages"] == 2
    capped = await page(gb, BANS, 0, 5000)
    assert capped["pagingInfo"]["size"] == 2000
    assert capped["pagingInfo"]["numberOfElements"] == 25
    for params in [{"page": "-1"}, {"size": "0"}, {"size": "ten"}, {"page": "1.5"}]:
        assert code(await gb.call("GET", BANS, params={**WIDE, **params})) == -4000001


async def test_paging_is_stable_while_bans_are_added(gb: Env) -> None:
    """Walk the pages while bans keep arriving: every row present at the start is seen exactly once, in seq order."""
    for i in range(120):
        gb.sim.add_ban(f"early{i}")
    collected: list[int] = []
    totals: list[int] = []
    page_no = 0
    while True:
        body = await page(gb, BANS, page_no, 25)
        collected += [row["seq"] for row in body["result"]]
        totals.append(body["pagingInfo"]["totalElements"])
        for i in range(7):  # new bans land between two page requests
            gb.sim.add_ban(f"late{page_no}-{i}")
        if body["pagingInfo"]["last"]:
            break
        page_no += 1
    assert len(collected) == len(set(collected))
    assert collected == sorted(collected)
    assert collected[:120] == list(range(1, 121))
    assert totals == sorted(totals)
    assert totals[0] == 120
    assert totals[-1] > 120
    assert gb.sim.counts["gamebase.bans"] == page_no + 1


async def test_window_selects_by_begin_date_inclusive(gb: Env) -> None:
    t0 = gb.clock.now()
    gb.sim.add_ban("a", begin=t0)
    gb.sim.add_ban("b", begin=t0 + timedelta(minutes=10))
    gb.sim.add_ban("c", begin=t0 + timedelta(minutes=20))

    async def users(begin: datetime, end: datetime) -> list[str]:
        body = await page(gb, BANS, begin=iso(begin), end=iso(end))
        return [row["userId"] for row in body["result"]]

    assert await users(t0, t0 + timedelta(minutes=10)) == ["a", "b"]
    assert await users(t0 + timedelta(minutes=10), t0 + timedelta(minutes=20)) == ["b", "c"]
    assert await users(t0 + timedelta(seconds=1), t0 + timedelta(minutes=9)) == []
    # other offsets name the same instants
    utc = t0.astimezone(UTC)
    assert await users(utc, utc) == ["a"]
    body = await gb.call("GET", BANS, params={"begin": "2025-12-31T15:00:00Z", "end": "2025-12-31T15:00:00.000Z"})
    assert [row["userId"] for row in body["result"]] == ["a"]


async def test_release_history_selects_by_release_date_in_release_order(gb: Env) -> None:
    t0 = gb.clock.now()
    gb.sim.add_ban("a")
    gb.sim.add_ban("b")
    await gb.clock.advance(600)
    gb.sim.release_ban("b")
    await gb.clock.advance(600)
    gb.sim.release_ban("a")
    body = await page(gb, RELEASES, begin=iso(t0), end=iso(t0 + timedelta(minutes=30)))
    assert [row["userId"] for row in body["result"]] == ["b", "a"]
    only_first = await page(gb, RELEASES, begin=iso(t0 + timedelta(minutes=5)), end=iso(t0 + timedelta(minutes=15)))
    assert [row["userId"] for row in only_first["result"]] == ["b"]
    bans = await page(gb, BANS, begin=iso(t0), end=iso(t0))
    assert [row["releaseDate"] is not None for row in bans["result"]] == [True, True]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"begin": "2026-01-01T00:00:00.000+09:00"},
        {"end": "2026-01-01T00:00:00.000+09:00"},
        {"begin": "2026-01-01T00:00:00.000", "end": "2026-01-02T00:00:00.000+09:00"},  # no offset
        {"begin": "yesterday", "end": "2026-01-02T00:00:00.000+09:00"},
        {"begin": "2026-01-02T00:00:00.000+09:00", "end": "2026-01-01T00:00:00.000+09:00"},  # end before begin
    ],
)
@pytest.mark.parametrize("path", [BANS, RELEASES])
async def test_bad_windows_are_invalid_parameters(gb: Env, path: str, params: dict[str, str]) -> None:
    assert code(await gb.call("GET", path, params=params)) == -4000001


async def test_unencoded_plus_in_the_window_is_refused_with_a_hint(gb: Env) -> None:
    raw = f"{BANS}?begin=2026-01-01T00:00:00.000+09:00&end=2026-01-02T00:00:00.000%2B09:00"
    r = await gb.http.get(raw)
    body = r.json()
    assert code(body) == -4000001
    assert "%2B" in body["header"]["resultMessage"]


async def test_ban_makes_the_member_banned_until_its_end(gb: Env) -> None:
    gb.sim.add_member("u1")
    token = gb.sim.issue_token("u1")
    path = api("tcgb-gateway", f"/members/u1/tokens/{token}")
    gb.sim.add_ban("u1", end=gb.clock.now() + timedelta(hours=1))
    assert gb.sim.member_valid("u1") == "B"
    assert code(await gb.call("GET", path)) == -4010204
    member = await gb.call("GET", api("tcgb-member", "/members/u1"))
    assert member["member"]["valid"] == "B"
    await gb.clock.advance(3600)
    assert gb.sim.member_valid("u1") == "Y"
    assert code(await gb.call("GET", path)) == 0


async def test_future_ban_takes_effect_at_its_begin(gb: Env) -> None:
    gb.sim.add_member("u1")
    gb.sim.add_ban("u1", begin=gb.clock.now() + timedelta(minutes=5))
    assert gb.sim.member_valid("u1") == "Y"
    await gb.clock.advance(300)
    assert gb.sim.member_valid("u1") == "B"


async def test_release_restores_the_member(gb: Env) -> None:
    gb.sim.add_member("u1")
    token = gb.sim.issue_token("u1")
    gb.sim.add_ban("u1")
    gb.sim.set_member_valid("u1", "B")
    assert code(await gb.call("GET", api("tcgb-gateway", f"/members/u1/tokens/{token}"))) == -4010204
    released = gb.sim.release_ban("u1", reason="mistake")
    assert [r.seq for r in released] == [1]
    assert gb.sim.member_valid("u1") == "Y"
    assert code(await gb.call("GET", api("tcgb-gateway", f"/members/u1/tokens/{token}"))) == 0
    with pytest.raises(GamebaseSimError, match="no ban to release"):
        gb.sim.release_ban("u1")


async def test_withdrawn_wins_over_ban_and_release(gb: Env) -> None:
    gb.sim.add_member("u1", valid="D")
    gb.sim.add_ban("u1")
    assert gb.sim.member_valid("u1") == "D"
    gb.sim.release_ban("u1")
    assert gb.sim.member_valid("u1") == "D"


def test_bad_ban_scripts_are_refused() -> None:
    sim = GamebaseSim()
    now = sim.clock.now()
    with pytest.raises(GamebaseSimError, match="after its begin"):
        sim.add_ban("u", begin=now, end=now)
    with pytest.raises(GamebaseSimError, match="TEMPORARY or PERMANENT"):
        sim.add_ban("u", ban_type="FOREVER")
    with pytest.raises(GamebaseSimError, match="naive"):
        sim.add_ban("u", begin=datetime(2026, 1, 1))
    with pytest.raises(GamebaseSimError, match="one of"):
        sim.add_member("u", valid="X")


async def test_add_ban_takes_the_documented_positional_form(gb: Env) -> None:
    now = gb.clock.now()
    record = gb.sim.add_ban("u1", now, now + timedelta(minutes=5), "TEMPORARY", "see you soon")
    row = (await page(gb, BANS))["result"][0]
    assert (row["seq"], row["banType"], row["message"]) == (record.seq, "TEMPORARY", "see you soon")
    assert row["endDate"] - row["beginDate"] == 300_000


@settings(max_examples=60, deadline=None)
@given(total=st.integers(0, 120), size=st.integers(1, 50), extra_pages=st.integers(0, 2))
def test_paging_invariants(total: int, size: int, extra_pages: int) -> None:
    """Whatever the row count and page size: pages partition the rows in seq order and pagingInfo agrees."""
    sim = GamebaseSim(app_id=APP, secret_key="k")
    for i in range(total):
        sim.add_ban(f"u{i}")
    handler = next(h for name, _, path, h in sim.routes() if name == "gamebase.bans" and "/v1.0/" in path)
    pages = max(1, -(-total // size)) + extra_pages
    seqs: list[int] = []
    for page_no in range(pages):
        request = Request(
            "GET",
            BANS,
            query_string=urlencode({**WIDE, "page": page_no, "size": size}),
            headers=[(b"x-secret-key", b"k")],
            path_params={"appId": APP},
        )
        body = msgspec.json.decode(anyio.run(handler, request).body)
        info = body["pagingInfo"]
        assert info["totalElements"] == total
        assert info["totalPages"] == -(-total // size)
        assert info["first"] is (page_no == 0)
        assert info["last"] is (page_no >= info["totalPages"] - 1)
        assert info["numberOfElements"] == len(body["result"]) <= size
        seqs += [row["seq"] for row in body["result"]]
    assert seqs == list(range(1, total + 1))
