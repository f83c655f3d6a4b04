"""A whole KST day on the fake clock, crossing midnight: 720 consecutive slots, two server ids, delivered over
loopback to the sandbox collector. Exactly one sample per server per slot, each dated at its slot."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from ccu_helpers import make_reporter, running, step

from gs_hooks import KST, FakeClock, SessionRegistry, format_kst
from gs_hooks._store import Store
from gs_hooks.ccu import CcuSpool, SampleState, make_reqkey
from gs_hooks.sandbox import Sandbox

GAME = "tinyfarm_KR"


@pytest.mark.anyio
@pytest.mark.parametrize(("anyio_backend", "slots"), [("trio", 720), ("asyncio", 40)])
async def test_a_whole_day_of_slots_crossing_midnight(tmp_path: Path, anyio_backend: str, slots: int) -> None:
    # start mid-day, a little after 12:00 KST, so the run crosses midnight (the asyncio run crosses it too)
    # (the slower asyncio run takes fewer slots, starting at 23:20 so it crosses midnight too)
    first = datetime(2026, 3, 1, 12, 2, tzinfo=KST) if slots == 720 else datetime(2026, 3, 1, 23, 22, tzinfo=KST)
    clock = FakeClock(first - timedelta(seconds=120 - 17))
    reg = SessionRegistry(default_server_id="1", time=clock.time)
    sessions = []
    reg.bind_player_nowait(reg.open_nowait(server_id="2"), "b")
    async with Sandbox.serve(port=0, clock=clock, game_keys=[GAME]) as sb, httpx.AsyncClient() as http:
        reporter = make_reporter(tmp_path, clock, http, url=sb.urls()["ccu_url"], registry=reg)
        expected: dict[tuple[str, str], int] = {}
        async with running(reporter):
            await step(clock, reporter, 120 - 17 - 0.5)  # to just before the first instant
            assert sb.ccu.samples == []
            for k in range(slots):
                # the population changes every slot: server 1 grows, server 2 follows a sawtooth (never 0, so
                # the collector's 301 sum rule does not apply)
                s = reg.open_nowait(server_id="1")
                reg.bind_player_nowait(s, f"a{k}")
                sessions.append(s)
                for _ in range(k % 3):
                    reg.bind_player_nowait(reg.open_nowait(server_id="2"), f"b{k}-{_}")
                date = format_kst(first + timedelta(minutes=2 * k))
                expected[("1", date)] = reg.count_players("1")
                expected[("2", date)] = reg.count_players("2")
                await step(clock, reporter, 120)
                # both delivered within their own slot
                assert {(x.server, x.date) for x in sb.ccu.samples[-2:]} == {("1", date), ("2", date)}
        got = [(x.server, x.date) for x in sb.ccu.samples]
        assert len(got) == len(set(got)) == 2 * slots
        assert {(x.server, x.date): x.user for x in sb.ccu.samples} == expected
        dates = sorted({d for _, d in got})
        assert len(dates) == slots
        assert all(d.endswith(":00") and int(d[14:16]) % 2 == 0 for d in dates)
        # consecutive: every two minutes, none skipped, across midnight
        steps = {
            datetime.fromisoformat(b).replace(tzinfo=KST).timestamp()
            - datetime.fromisoformat(a).replace(tzinfo=KST).timestamp()
            for a, b in itertools.pairwise(dates)
        }
        assert steps == {120.0}
        assert any(d.endswith(" 00:00:00") for d in dates)
        assert {x.reqkey for x in sb.ccu.samples} == {make_reqkey(GAME, s, d) for s, d in got}
        assert sb.ccu.duplicates_saved == 0 and sb.ccu.duplicate_requests == 0
    # the spool (the CCU history) holds the same day, all delivered
    spool = CcuSpool(Store(str(tmp_path / "spool.sqlite3")))
    spool.open_sync()
    rows = spool.rows_sync()
    assert [(r.server, r.date) for r in rows] == sorted(got, key=lambda sd: (sd[1], sd[0]))
    assert {r.state for r in rows} == {SampleState.DELIVERED}
    spool.store.close()
