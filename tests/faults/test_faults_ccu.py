"""CCU reporter under platform faults, against the sandbox's collector over loopback, on a FakeClock.

What is proved here (tests/ccu has the per-code behaviour and the backoff formula for one row):

- no loss, exactly once: whatever the outage (connection refused, dropped connections, HTTP 5xx, result 300, a
  collector slower than our timeout), every sample taken is delivered once it ends, dated at its slot, and the
  collector saved each reqkey once;
- bounded retries with jitter: over hours of outage one probe at a time, at a rate capped by ``backoff_max_s``
  and independent of the backlog's size; two reporters' schedules differ;
- bounded memory: three virtual days of outage (2,160 slots) keep the backlog in sqlite, not in the process.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from faults_support import (
    GAME,
    Census,
    ccu_url,
    closed_base_url,
    make_reporter,
    quiet,
    running,
    sandbox,
    step,
)

from gs_hooks import KST, FakeClock, SessionRegistry
from gs_hooks.ccu import CcuReporter, SampleState, make_reqkey
from gs_hooks.sandbox import CCU_PATH, Sandbox

pytestmark = pytest.mark.anyio

START = datetime(2026, 3, 1, 13, 0, 30, tzinfo=KST)  # 90 s before the 13:02 grid instant
FIRST_SLOT = datetime(2026, 3, 1, 13, 2, tzinfo=KST).timestamp()


def populated_registry(clock: FakeClock) -> SessionRegistry:
    """Three players on server 1, two on server 2 (so samples carry real, non-zero counts)."""
    reg = SessionRegistry(default_server_id="1", time=clock.time)
    for server, n in (("1", 3), ("2", 2)):
        for k in range(n):
            reg.bind_player_nowait(reg.open_nowait(server_id=server), f"p{server}-{k}")
    return reg


def assert_exactly_once(reporter: CcuReporter, sb: Sandbox, slots: list[float], servers: tuple[str, ...]) -> None:
    """Every sample of every slot is in the spool as delivered, and the collector saved each one exactly once."""
    rows = reporter.spool.rows_sync()
    taken = {(r.server, r.slot_ts) for r in rows}
    assert taken == {(s, int(t)) for t in slots for s in servers}, "a slot was skipped or invented"
    assert [r for r in rows if r.state is not SampleState.DELIVERED] == []
    saved = [(s.server, s.date, s.user, s.reqkey) for s in sb.ccu.samples if s.game == GAME and s.server in servers]
    assert len(saved) == len(set(saved)) == len(rows)
    assert {(server, date) for server, date, _, _ in saved} == {(r.server, r.date) for r in rows}
    assert all(key == make_reqkey(GAME, server, date) for server, date, _, key in saved)
    assert {(r.server, r.date): r.user for r in rows} == {(s, d): u for s, d, u, _ in saved}
    assert sb.ccu.duplicates_saved == 0


def grid(first: float, n: int) -> list[float]:
    return [first + 120 * k for k in range(n)]


def slots_so_far(clock: FakeClock) -> list[float]:
    """Every grid instant from the first one up to now."""
    return grid(FIRST_SLOT, int((clock.time() - FIRST_SLOT) // 120) + 1)


# -- no loss -------------------------------------------------------------------------------------------------------

# The components are backend-neutral; long virtual runs use trio, whose "every task is blocked" check is exact
# (anyio's asyncio version polls every 0.1 s, which makes thousands of fake-clock steps slow). Each fault kind
# also runs a short outage on asyncio.
OUTAGES: list[Any] = [
    pytest.param("trio", "refused", 30, id="connection-refused-30-slots-trio"),
    pytest.param("trio", {"kind": "drop"}, 30, id="dropped-connections-30-slots-trio"),
    pytest.param("trio", {"kind": "status", "status": 503}, 30, id="http-503-30-slots-trio"),
    pytest.param("trio", {"kind": "status", "status": 500}, 30, id="http-500-30-slots-trio"),
    pytest.param("trio", {"kind": "result", "code": 300}, 30, id="result-300-30-slots-trio"),
    # The collector is slower than our timeout (a delay on the sandbox's fake clock, which does not move while
    # the request is in flight: the client's real 0.25 s timeout cuts it). The sandbox then finishes the delayed
    # request and *saves* the sample our client gave up on: the resend must be answered 101, never saved twice.
    pytest.param("trio", {"kind": "delay", "delay_s": 30.0}, 5, id="slower-than-timeout-5-slots-trio"),
    pytest.param("asyncio", "refused", 2, id="connection-refused-2-slots-asyncio"),
    pytest.param("asyncio", {"kind": "drop"}, 2, id="dropped-connections-2-slots-asyncio"),
    pytest.param("asyncio", {"kind": "status", "status": 503}, 2, id="http-503-2-slots-asyncio"),
    pytest.param("asyncio", {"kind": "result", "code": 300}, 2, id="result-300-2-slots-asyncio"),
    pytest.param("asyncio", {"kind": "delay", "delay_s": 30.0}, 2, id="slower-than-timeout-2-slots-asyncio"),
]


@pytest.mark.parametrize(("anyio_backend", "fault", "slots"), OUTAGES)
async def test_every_sample_of_an_outage_is_delivered_exactly_once(
    tmp_path: Path, anyio_backend: str, fault: Any, slots: int
) -> None:
    kind = fault if isinstance(fault, str) else fault["kind"]
    clock = FakeClock(START)
    async with sandbox(clock) as sb, httpx.AsyncClient() as http:
        reporter = make_reporter(
            tmp_path, clock, http, url=ccu_url(sb), registry=populated_registry(clock), timeout_s=0.25
        )
        rs = (reporter,)
        async with running(reporter):
            await step(clock, rs, 80)  # 13:01:50, ten seconds before the first instant
            outage_s = 120 * slots
            if kind == "refused":
                reporter.url = closed_base_url() + CCU_PATH
            else:
                sb.faults.add("ccu", duration_s=outage_s, **fault)
            await step(clock, rs, outage_s)
            # during the outage: everything taken is still pending in the spool, nothing is lost or refused
            rows = reporter.spool.rows_sync()
            assert len(rows) == 2 * slots
            if kind != "delay":  # (a delayed request may be saved late, see below)
                assert {r.state for r in rows} == {SampleState.PENDING}
            assert all(r.state is not SampleState.REFUSED for r in rows)
            if kind == "refused":
                reporter.url = ccu_url(sb)
            # the outage is over: the next probe (at most backoff_max_s away) succeeds and the backlog drains
            await step(clock, rs, 120 * 3)
            assert len(slots_so_far(clock)) == slots + 3
            assert_exactly_once(reporter, sb, slots_so_far(clock), ("1", "2"))
            assert await reporter.spool.backlog_depth() == 0
        if kind not in ("refused", "delay"):
            # nothing reached the collector's store during the outage: no resend was even a duplicate
            assert sb.ccu.duplicate_requests == 0
        if kind != "refused":
            assert sb.faults.fired, "the fault never fired: the test proved nothing"
        if kind == "delay":
            # the slow requests were saved late by the collector; their resends got 101, nothing saved twice
            assert sb.ccu.duplicate_requests >= 1
            assert sb.ccu.result_counts[101] == sb.ccu.duplicate_requests
        # the samples keep their users: 3 on server 1 and 2 on server 2 at every slot
        assert {(s.server, s.user) for s in sb.ccu.samples} == {("1", 3), ("2", 2)}


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_an_outage_mixing_every_fault_kind_loses_nothing(tmp_path: Path, anyio_backend: str) -> None:
    """Refused, dropped, 5xx and 300 one after the other (an unstable collector): still exactly once."""
    clock = FakeClock(START)
    async with sandbox(clock) as sb, httpx.AsyncClient() as http:
        reporter = make_reporter(tmp_path, clock, http, url=ccu_url(sb), registry=populated_registry(clock))
        rs = (reporter,)
        async with running(reporter):
            await step(clock, rs, 80)
            for spec in ({"kind": "drop"}, {"kind": "status", "status": 502}, {"kind": "result", "code": 300}):
                sb.faults.add("ccu", duration_s=600, **spec)  # type: ignore[arg-type]
                await step(clock, rs, 600)
            reporter.url = closed_base_url() + CCU_PATH
            await step(clock, rs, 600)
            reporter.url = ccu_url(sb)
            # and a flaky tail: every other request fails for a while after the outage
            for _ in range(10):
                sb.faults.add("ccu", "result", code=300, count=1)
                await step(clock, rs, 120)
            await step(clock, rs, 600)
            assert len(slots_so_far(clock)) == 35
            assert_exactly_once(reporter, sb, slots_so_far(clock), ("1", "2"))
        kinds = {hit.kind for hit in sb.faults.fired}
        assert kinds == {"drop", "status", "result"}


# -- bounded retries with jitter -----------------------------------------------------------------------------------


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_retries_over_a_long_outage_are_capped_probes_with_independent_jitter(
    tmp_path: Path, anyio_backend: str
) -> None:
    """Six hours of result 300 for two reporters: each sends one probe at a time, the gaps follow the jittered
    exponential ramp up to ``backoff_max_s``, the attempt count does not grow with the backlog, and the two
    schedules differ (no synchronised retry waves)."""
    clock = FakeClock(START)
    base, cap, hours = 15.0, 600.0, 6
    async with sandbox(clock) as sb, httpx.AsyncClient() as http:
        a = make_reporter(tmp_path, clock, http, url=ccu_url(sb), name="a", server_ids=("1",),
                          backoff_base_s=base, backoff_max_s=cap)  # fmt: skip
        b = make_reporter(tmp_path, clock, http, url=ccu_url(sb), name="b", server_ids=("2",),
                          backoff_base_s=base, backoff_max_s=cap)  # fmt: skip
        rs = (a, b)
        outage_s = hours * 3600
        async with running(a, b):
            await step(clock, rs, 80)
            sb.faults.add("ccu", "result", code=300, duration_s=outage_s)
            outage_start = clock.time()
            await step(clock, rs, outage_s)
            slots = outage_s // 120
            sends = {s: [x.received_at for x in sb.ccu.attempts if x.server == s] for s in ("1", "2")}
            assert all(x.injected and x.result == 300 for x in sb.ccu.attempts)
            for server, times in sends.items():
                # the bound: a ramp of log2(cap/base) steps, then at most one probe per cap/2 seconds
                ramp = 1 + round(cap / base).bit_length()
                bound = ramp + outage_s / (cap / 2) + 1
                assert len(times) <= bound, (server, len(times), bound)
                # ...and it keeps trying (at least one probe per cap seconds once ramped up)
                assert len(times) >= outage_s / cap - 1
                # one probe at a time and far fewer sends than samples waiting: the backlog does not drive them
                assert len(times) < slots / 2
                # the gaps follow the jittered exponential ramp, capped
                for n, (t0, t1) in enumerate(itertools.pairwise(times), start=1):
                    ceiling = min(cap, base * 2 ** (n - 1))
                    assert ceiling / 2 - 1e-6 <= t1 - t0 <= ceiling + 1e-6, (server, n, t1 - t0)
                assert times[0] == FIRST_SLOT  # the first send is on time; retries start after it
                assert times[0] >= outage_start
            # per sample: the oldest sample carried every probe, the others waited their turn untouched
            for r in (a, b):
                rows = r.spool.rows_sync()
                assert len(rows) == slots
                assert max(row.attempts for row in rows) <= len(sends[rows[0].server])
                assert sum(row.attempts for row in rows) == len(sends[rows[0].server])
            # independent jitter: the two schedules are not the same (same config, same outage, same start)
            gaps_a = [t1 - t0 for t0, t1 in itertools.pairwise(sends["1"])]
            gaps_b = [t1 - t0 for t0, t1 in itertools.pairwise(sends["2"])]
            assert sum(1 for x, y in zip(gaps_a, gaps_b, strict=False) if abs(x - y) > 1.0) >= len(gaps_a) // 4
            # the outage ends: both drain everything, exactly once
            await step(clock, rs, cap + 240)
            assert_exactly_once(a, sb, slots_so_far(clock), ("1",))
            assert_exactly_once(b, sb, slots_so_far(clock), ("2",))


# -- bounded memory --------------------------------------------------------------------------------------------------


def fast_dir(tmp_path: Path) -> Path:
    """tmpfs when there is one: the spool commits with fsync, which is not what these tests measure."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return Path(tempfile.mkdtemp(dir=shm))
    return tmp_path


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_a_long_outage_keeps_memory_flat_and_the_backlog_in_sqlite(tmp_path: Path, anyio_backend: str) -> None:
    """Sixteen virtual hours (480 slots after a 30-slot warm-up, ~640 failed sends) with the collector
    unreachable: the process's live objects and memory blocks stop growing while the backlog grows in the spool;
    then every sample is delivered exactly once."""
    clock = FakeClock(START)
    slots, readings = 480, 6
    where = fast_dir(tmp_path)
    census = Census()
    async with sandbox(clock) as sb, httpx.AsyncClient() as http:
        reporter = make_reporter(where, clock, http, url=closed_base_url() + CCU_PATH, server_ids=("1",))
        rs = (reporter,)
        async with running(reporter):
            await step(clock, rs, 80)
            with quiet("gs_hooks.ccu"):
                await step(clock, rs, 120 * 30)  # warm up: every code path ran, pools and caches are filled
                census.read()
                depths = []
                for _ in range(readings):
                    await step(clock, rs, 120 * slots / readings)
                    census.read()
                    depths.append(await reporter.spool.backlog_depth())
            assert depths == sorted(depths) and depths[-1] == 30 + slots
            assert sum(r.attempts for r in reporter.spool.rows_sync()) > slots
            # Live objects and blocks after the run, against the warmed-up baseline. What moves without leaking is
            # bounded: sqlite3 keeps dead cursor weakrefs until its 200th cursor, pools and caches fill up to their
            # sizes, other tests' leftovers are collected in between (the full suite's readings wander by ±200
            # objects). The lower of the last two readings damps those sawtooths; the bound still catches a leak
            # of one object per failed send (~640 here), two per sample, or any leaked traceback.
            base_objects, base_blocks = census.readings[0]
            objects = min(r[0] for r in census.readings[-2:]) - base_objects
            blocks = min(r[1] for r in census.readings[-2:]) - base_blocks
            assert objects < 500, (census.readings, census.by_type())
            assert blocks < 2_500, (census.readings, census.by_type())
            # the collector answers again: everything drains, exactly once
            reporter.url = ccu_url(sb)
            await step(clock, rs, 720)
            assert len(slots_so_far(clock)) == 30 + slots + 6
            assert_exactly_once(reporter, sb, slots_so_far(clock), ("1",))


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_more_than_1024_failures_in_a_row_do_not_stop_the_reporter(tmp_path: Path, anyio_backend: str) -> None:
    """Regression: the backoff computed ``float(2 ** (attempts - 1))``, which overflows past 1,024 failed sends in
    a row (about a day of outage at the default 120 s cap) and took the reporter down. A tiny backoff reaches
    that streak in a few virtual minutes."""
    clock = FakeClock(START)
    where = fast_dir(tmp_path)
    async with sandbox(clock) as sb, httpx.AsyncClient() as http:
        reporter = make_reporter(
            where, clock, http, url=closed_base_url() + CCU_PATH, server_ids=("1",),
            backoff_base_s=0.25, backoff_max_s=0.5,
        )  # fmt: skip
        rs = (reporter,)
        with quiet("gs_hooks.ccu"):  # 1,100 warnings would only slow the test down
            async with running(reporter):
                await step(clock, rs, 80 + 120 * 4)
                rows = reporter.spool.rows_sync()
                assert sum(r.attempts for r in rows) > 1100
                reporter.url = ccu_url(sb)
                await step(clock, rs, 240)
                assert_exactly_once(reporter, sb, slots_so_far(clock), ("1",))
