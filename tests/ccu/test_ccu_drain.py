"""After an outage the backlog drains oldest-first with bounded concurrency, while new slots are still sampled on
time; old history is pruned at start by the retention, pending rows never."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import anyio
import httpx
import prometheus_client
import pytest
from ccu_helpers import make_reporter, running, step

from gs_hooks import KST, FakeClock, SessionRegistry, format_kst
from gs_hooks._store import Store
from gs_hooks.ccu import CcuReporter, CcuSample, CcuSpool, SampleState
from gs_hooks.sandbox import Sandbox

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])]

GAME = "tinyfarm_KR"
START = datetime(2026, 3, 1, 13, 0, 30, tzinfo=KST)


async def _outage(tmp_path: Path, sb: Sandbox, http: httpx.AsyncClient, clock: FakeClock) -> CcuReporter:
    """A reporter (max_inflight 3) that has taken ten slots of two servers during an outage (20 rows pending)."""
    reg = SessionRegistry(default_server_id="1", time=clock.time)
    for sid in ("1", "2"):
        reg.bind_player_nowait(reg.open_nowait(server_id=sid), f"p{sid}")
    return make_reporter(tmp_path, clock, http, url=sb.urls()["ccu_url"], registry=reg, max_inflight=3)


def next_probe(reporter: CcuReporter) -> float:
    at = reporter.sender.next_probe_at
    assert at is not None, "the collector is not failing"
    return at


async def test_backlog_drains_oldest_first_with_bounded_concurrency(tmp_path: Path) -> None:
    clock = FakeClock(START)
    # the collector runs on the real clock here (its injected delays are real time)
    async with Sandbox.serve(port=0, game_keys=[GAME]) as sb, httpx.AsyncClient() as http:
        reporter = await _outage(tmp_path, sb, http, clock)
        async with running(reporter):
            sb.faults.add("ccu", "drop")
            await step(clock, reporter, 90 + 120 * 9)
            assert reporter.spool.backlog_depth_sync() == 20
            assert prometheus_client.REGISTRY.get_sample_value("gs_hooks_ccu_backlog_depth") == 20
            sb.faults.clear()
            sb.faults.add("ccu", "delay", delay_s=0.1)  # every answer takes 100 ms: sends overlap
            peak = 0

            async def watch() -> None:
                nonlocal peak
                while True:
                    peak = max(peak, reporter.sender.in_flight)
                    await anyio.sleep(0.001)

            async with anyio.create_task_group() as tg:
                tg.start_soon(watch)
                await clock.advance_to(next_probe(reporter))  # the next probe succeeds: the backlog is all due
                with anyio.fail_after(20):
                    await reporter.wait_idle()
                tg.cancel_scope.cancel()
            assert {r.state for r in reporter.spool.rows_sync()} == {SampleState.DELIVERED}
    assert peak == 3  # bounded, and really concurrent
    # oldest first (each answer takes the same time, so arrival order is send order, give or take the three
    # in flight together)
    arrivals = [a.date for a in sb.ccu.attempts if a.result == 100]
    assert len(arrivals) == 20
    for i, date in enumerate(arrivals):
        assert all(date >= earlier for earlier in arrivals[: max(0, i - 3)]), (i, arrivals)
    assert sb.ccu.duplicates_saved == 0


async def test_new_slots_are_sampled_on_time_while_the_backlog_drains(tmp_path: Path) -> None:
    clock = FakeClock(START)
    async with Sandbox.serve(port=0, game_keys=[GAME]) as sb, httpx.AsyncClient() as http:
        reporter = await _outage(tmp_path, sb, http, clock)
        async with running(reporter):
            sb.faults.add("ccu", "drop")
            await step(clock, reporter, 90 + 120 * 9)
            sb.faults.clear()
            sb.faults.add("ccu", "delay", delay_s=1.0)  # a slow collector: the drain takes seconds
            await clock.advance_to(next_probe(reporter))
            with anyio.fail_after(20):
                while reporter.sender.failing or reporter.sender.in_flight < 3:
                    await anyio.sleep(0.001)
            instant = datetime(2026, 3, 1, 13, 22, tzinfo=KST).timestamp()
            assert clock.time() < instant
            before = len(reporter.spool.rows_sync())
            await clock.advance_to(instant)
            with anyio.fail_after(10):
                while len(reporter.spool.rows_sync()) == before:
                    await anyio.sleep(0.001)
            # sampled at its instant, with three sends still in flight and most of the backlog still waiting
            assert reporter.sender.in_flight == 3
            assert reporter.spool.backlog_depth_sync() > 10
            new = [r for r in reporter.spool.rows_sync() if r.date == "2026-03-01 13:22:00"]
            assert [r.created_at for r in new] == [instant, instant]
            sb.faults.clear()
            with anyio.fail_after(20):
                await reporter.wait_idle()
            rows = reporter.spool.rows_sync()
            assert len(rows) == 22 and {r.state for r in rows} == {SampleState.DELIVERED}
    assert sb.ccu.duplicates_saved == 0


async def test_retention_prunes_delivered_history_at_start_but_keeps_pending(tmp_path: Path) -> None:
    clock = FakeClock(START)
    spool = CcuSpool(Store(str(tmp_path / "spool.sqlite3")))
    spool.open_sync()
    old = round(START.timestamp()) - 40 * 86_400 - 30
    recent = round(START.timestamp()) - 2 * 86_400 - 30
    spool.add_sync(
        [(CcuSample.create(game=GAME, server="1", date=format_kst(t), user=1), t) for t in (old, recent)], now=old
    )
    spool.add_sync([(CcuSample.create(game=GAME, server="2", date=format_kst(old), user=1), old)], now=old)
    spool.record_sync(("1", old), "delivered", code=100, now=old)
    spool.record_sync(("1", recent), "delivered", code=100, now=recent)
    spool.store.close()
    async with Sandbox.serve(port=0, clock=clock, game_keys=[GAME]) as sb, httpx.AsyncClient() as http:
        reporter = make_reporter(tmp_path, clock, http, url=sb.urls()["ccu_url"])  # retention: 35 days
        async with running(reporter):
            await step(clock, reporter, 0)
            keys = [(r.key, r.state) for r in reporter.spool.rows_sync()]
    # the 40-day-old delivered row is gone; the recent one stays; the old pending one was kept and delivered
    assert keys == [(("2", old), SampleState.DELIVERED), (("1", recent), SampleState.DELIVERED)]
    assert [s.date for s in sb.ccu.samples] == [format_kst(old)]
