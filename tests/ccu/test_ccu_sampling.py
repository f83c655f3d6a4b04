"""The reporter's sampling on the KST grid with a fake clock: on time, dated at the slot, spooled before sending,
late wakes keep the slot's date, missed slots are not invented. (Sending here fails at the transport: the
collector URL is a closed loopback port; delivery itself is tested against the sandbox.)"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import httpx
import pytest
from ccu_helpers import closed_port_url, make_reporter, running, step

from gs_hooks import KST, FakeClock, SessionRegistry, format_kst
from gs_hooks.ccu import SampleState, make_reqkey

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])]

START = datetime(2026, 3, 1, 13, 0, 30, tzinfo=KST)
T1 = datetime(2026, 3, 1, 13, 2, tzinfo=KST).timestamp()


async def test_samples_each_server_at_each_grid_instant(tmp_path: Path) -> None:
    clock = FakeClock(START)
    reg = SessionRegistry(default_server_id="1", time=clock.time)
    for k in range(3):
        reg.bind_player_nowait(reg.open_nowait(server_id="1"), f"p{k}")
    reg.open_nowait(server_id="1")  # connected, not logged in: not a player
    async with httpx.AsyncClient() as http:
        reporter = make_reporter(tmp_path, clock, http, url=closed_port_url(), registry=reg)
        async with running(reporter):
            await step(clock, reporter, 60)  # 13:01:30, nothing yet
            assert reporter.spool.rows_sync() == []
            await step(clock, reporter, 30)  # 13:02:00
            rows = reporter.spool.rows_sync()
            assert [(r.server, r.date, r.user) for r in rows] == [
                ("1", "2026-03-01 13:02:00", 3),
                ("2", "2026-03-01 13:02:00", 0),
            ]
            assert rows[0].reqkey == make_reqkey("tinyfarm_KR", "1", "2026-03-01 13:02:00")
            for _ in range(4):
                await step(clock, reporter, 120)
            dates = [r.date for r in reporter.spool.rows_sync() if r.server == "2"]
            assert dates == [f"2026-03-01 13:{m:02d}:00" for m in (2, 4, 6, 8, 10)]
            # the closed port made every send a retryable transport failure: all kept pending, date and key intact
            rows = reporter.spool.rows_sync()
            assert {r.state for r in rows} == {SampleState.PENDING}
            assert all(r.reqkey == make_reqkey("tinyfarm_KR", r.server, r.date) for r in rows)
            first, later = rows[:2], rows[2:]
            assert all(r.attempts >= 1 and r.last_error.startswith("transport") for r in first)
            assert first[0].attempts >= 3  # probed again at each backoff
            # while the collector fails, only the oldest samples probe it: the newer ones wait their turn
            assert [r.attempts for r in later] == [0] * 8


async def test_a_late_wake_keeps_the_slot_date(tmp_path: Path) -> None:
    clock = FakeClock(START)
    async with httpx.AsyncClient() as http:
        reporter = make_reporter(tmp_path, clock, http, url=closed_port_url())
        async with running(reporter):
            await clock.settle()
            assert clock.next_deadline() == T1
            clock.set_time_nowait(T1 + 47)  # the loop is woken 47 s late
            await step(clock, reporter, 0)
            assert [(r.server, r.date) for r in reporter.spool.rows_sync()] == [
                ("1", "2026-03-01 13:02:00"),
                ("2", "2026-03-01 13:02:00"),
            ]
            # and the next sample is back on the grid: nothing before 13:04:00, then 13:04:00
            await step(clock, reporter, T1 + 119.9 - clock.time())
            assert len(reporter.spool.rows_sync()) == 2
            await step(clock, reporter, 0.1)
            assert [r.date for r in reporter.spool.rows_sync()][2:] == ["2026-03-01 13:04:00"] * 2


async def test_slots_missed_while_suspended_are_not_invented(tmp_path: Path) -> None:
    clock = FakeClock(START)
    async with httpx.AsyncClient() as http:
        reporter = make_reporter(tmp_path, clock, http, url=closed_port_url())
        async with running(reporter):
            await step(clock, reporter, 90)  # 13:02 sampled
            clock.set_time_nowait(T1 + 600 + 5)  # suspended until 13:12:05
            await step(clock, reporter, 0)
            dates = sorted({r.date for r in reporter.spool.rows_sync()})
            assert dates == ["2026-03-01 13:02:00", "2026-03-01 13:12:00"]


async def test_a_restart_resumes_pending_rows_and_does_not_fill_the_gap(tmp_path: Path) -> None:
    clock = FakeClock(START)
    async with httpx.AsyncClient() as http:
        first = make_reporter(tmp_path, clock, http, url=closed_port_url())
        async with running(first):
            await step(clock, first, 90 + 120)  # 13:02, 13:04
            before = {r.key: r.attempts for r in first.spool.rows_sync()}
            assert len(before) == 4
        clock.set_time_nowait(T1 + 1000)  # down for ~15 minutes
        second = make_reporter(tmp_path, clock, http, url=closed_port_url())
        async with running(second):
            await step(clock, second, 0)
            # the old pending rows were all tried again at start (a fresh start is not in probe mode)
            assert all(r.attempts == before[r.key] + 1 for r in second.spool.rows_sync())
            await step(clock, second, 120)
            dates = sorted({r.date for r in second.spool.rows_sync()})
            assert dates == ["2026-03-01 13:02:00", "2026-03-01 13:04:00", format_kst(T1 + 1080)]


async def test_backoff_grows_and_keeps_the_key(tmp_path: Path) -> None:
    clock = FakeClock(START)
    async with httpx.AsyncClient() as http:
        reporter = make_reporter(
            tmp_path, clock, http, url=closed_port_url(), server_ids=("1",), backoff_base_s=4.0, backoff_max_s=64.0
        )
        async with running(reporter):
            await step(clock, reporter, 90)
            gaps: list[float] = []
            for _ in range(7):
                row = reporter.spool.rows_sync()[0]
                gaps.append(row.next_attempt_at - clock.time())
                await step(clock, reporter, row.next_attempt_at - clock.time())
            row = reporter.spool.rows_sync()[0]
            assert row.attempts == 8
            assert row.reqkey == make_reqkey("tinyfarm_KR", "1", "2026-03-01 13:02:00")
            assert row.date == "2026-03-01 13:02:00"
    # jittered exponential: attempt n waits in [base*2^(n-1)/2, base*2^(n-1)], capped at the max
    for n, gap in enumerate(gaps, start=1):
        ceiling = min(64.0, 4.0 * 2 ** (n - 1))
        assert ceiling / 2 <= gap <= ceiling, (n, gap)


class FlakyCounter:
    """A game-supplied counter (the CcuCounter protocol) that fails once."""

    def __init__(self) -> None:
        self.calls = 0

    def count(self, server_id: str, instant: float) -> int:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("counter broke")
        return 7


async def test_a_failing_counter_skips_the_slot_loudly_and_the_reporter_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(START)
    async with httpx.AsyncClient() as http:
        reporter = make_reporter(tmp_path, clock, http, url=closed_port_url(), server_ids=("1",))
        reporter.counter = FlakyCounter()
        async with running(reporter):
            await step(clock, reporter, 90 + 120)
            assert [(r.date, r.user) for r in reporter.spool.rows_sync()] == [("2026-03-01 13:04:00", 7)]
    assert any("counting failed" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)
