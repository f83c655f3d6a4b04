"""The spool cannot be written (issue 14.6): samples are still sent, held in memory until the spool takes them,
and recorded once space returns; one log line when the outage starts and one when it ends.

The full disk is real: the spool is a file whose sqlite connection may not grow it by one more page
(``PRAGMA max_page_count`` = its current size), so a write that needs a page fails with SQLITE_FULL ("database or
disk is full"), as on a full filesystem; reads and writes that fit the existing pages go through. The collector
is the sandbox's, over loopback; the reporter runs on a FakeClock.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from ccu_helpers import make_reporter, running, step

from gs_hooks import KST, FakeClock, SessionRegistry
from gs_hooks.ccu import CcuReporter, SampleState
from gs_hooks.sandbox import Sandbox

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])]

GAME = "tinyfarm_KR"
START = datetime(2026, 3, 1, 13, 0, 30, tzinfo=KST)
PERIOD = 120


@pytest.fixture
async def env() -> AsyncIterator[tuple[FakeClock, Sandbox, httpx.AsyncClient]]:
    clock = FakeClock(START)
    async with Sandbox.serve(port=0, clock=clock, game_keys=[GAME]) as sb, httpx.AsyncClient() as http:
        yield clock, sb, http


def fill_disk(reporter: CcuReporter) -> None:
    store = reporter.spool.store
    pages = store.run_sync(lambda c: c.execute("PRAGMA page_count").fetchone()[0])
    assert store.run_sync(lambda c: c.execute(f"PRAGMA max_page_count={pages}").fetchone()[0]) == pages


def free_disk(reporter: CcuReporter) -> None:
    reporter.spool.store.run_sync(lambda c: c.execute("PRAGMA max_page_count=4294967294"))


def outage_lines(caplog: pytest.LogCaptureFixture) -> tuple[list[str], list[str]]:
    ccu = [r for r in caplog.records if r.name == "gs_hooks.ccu" and "the spool" in r.getMessage()]
    down = [r.getMessage() for r in ccu if r.levelno == logging.ERROR and " fails (" in r.getMessage()]
    up = [r.getMessage() for r in ccu if "takes writes again after" in r.getMessage()]
    return down, up


async def test_samples_are_sent_while_the_spool_is_full_and_recorded_when_space_returns(
    tmp_path: Path, env: tuple[FakeClock, Sandbox, httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    clock, sb, http = env
    caplog.set_level(logging.INFO, logger="gs_hooks.ccu")
    reg = SessionRegistry(default_server_id="1", time=clock.time)
    for k in range(2):  # both server ids above 0 (the collector refuses one above 0 beside all-0 ones: 301)
        reg.bind_player_nowait(reg.open_nowait(server_id="2"), f"two-{k}")
    reporter = make_reporter(tmp_path, clock, http, url=sb.urls()["ccu_url"], registry=reg)
    slots = 0

    async def tick() -> None:
        nonlocal slots
        reg.bind_player_nowait(reg.open_nowait(server_id="1"), f"p{slots}")  # the count moves every slot
        await step(clock, reporter, PERIOD)
        slots += 1

    async with running(reporter):
        await tick()
        assert len(sb.ccu.samples) == 2 and not reporter.unrecorded

        fill_disk(reporter)
        for _ in range(60):  # until a write needs a new page
            await tick()
            if reporter.unrecorded:
                break
        assert reporter.unrecorded, "the full spool never refused a write"
        for _ in range(4):  # the disk stays full; the collector answers
            await tick()
        # every sample taken reached the collector at once, although the spool could not record them all
        assert len(sb.ccu.samples) == 2 * slots
        assert len(reporter.spool.rows_sync()) < 2 * slots
        held = reporter.unrecorded
        assert any(r.state is SampleState.DELIVERED for r in held)

        sb.faults.add("ccu", "status", status=503)  # and now the collector fails too
        for _ in range(3):
            await tick()
        assert len(sb.ccu.samples) == 2 * (slots - 3)
        assert sum(r.state is SampleState.PENDING for r in reporter.unrecorded) >= 6  # kept, to be sent

        free_disk(reporter)  # space returns while the collector still fails
        await tick()
        assert reporter.unrecorded == ()
        rows = reporter.spool.rows_sync()
        assert len(rows) == 2 * slots  # every sample taken is in the spool now, the undelivered ones pending
        assert sum(r.state is SampleState.PENDING for r in rows) >= 8

        sb.faults.clear()  # the collector answers again: the backlog drains
        await tick()
        await tick()
        rows = reporter.spool.rows_sync()

    assert {r.state for r in rows} == {SampleState.DELIVERED}
    assert len(rows) == 2 * slots
    saved = sorted((s.server, s.date, s.reqkey, s.user) for s in sb.ccu.samples)
    assert saved == sorted((r.server, r.date, r.reqkey, r.user) for r in rows)  # one saved sample per slot
    assert sb.ccu.duplicates_saved == 0
    for server in ("1", "2"):
        dates = [r.date for r in rows if r.server == server]
        assert len(dates) == len(set(dates)) == slots
    down, up = outage_lines(caplog)
    assert len(down) == 1, down  # one line for the whole outage, not one per slot
    assert "database or disk is full" in down[0] and "kept in memory and still sent" in down[0]
    assert len(up) == 1, up
    recorded = re.search(r"failed write\(s\); (\d+) sample\(s\) held in memory meanwhile are recorded", up[0])
    assert recorded is not None and int(recorded.group(1)) >= len(held) + 6, up[0]


async def test_samples_the_spool_never_took_are_reported_lost_at_exit(
    tmp_path: Path, env: tuple[FakeClock, Sandbox, httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    clock, sb, http = env
    reg = SessionRegistry(default_server_id="1", time=clock.time)
    for sid in ("1", "2"):
        reg.bind_player_nowait(reg.open_nowait(server_id=sid), f"p{sid}")
    reporter = make_reporter(tmp_path, clock, http, url=sb.urls()["ccu_url"], registry=reg)
    async with running(reporter):
        await step(clock, reporter, PERIOD)
        reporter.spool.store.run_sync(lambda c: c.execute("PRAGMA query_only=1"))  # no write goes through now
        sb.faults.add("ccu", "status", status=503)
        await step(clock, reporter, PERIOD)
        sb.faults.clear()
        await step(clock, reporter, PERIOD)  # the first slot held is delivered now, the second at once too
        assert len(reporter.unrecorded) == 4
        assert len(sb.ccu.samples) == 6
    lost = [r.getMessage() for r in caplog.records if "lost at exit" in r.getMessage()]
    assert lost == [
        f"CCU: 4 sample(s) could not be recorded in the spool {tmp_path / 'spool.sqlite3'} and are lost at exit: "
        "4 were delivered (only the history lacks them), 0 were not (those slots never reach the collector)"
    ]
