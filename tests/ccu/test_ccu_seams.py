"""The reporter's seams, each part run alone: a sampler whose samples go to another sink, and a sender fed by
another delivery queue (as fleet mode's will: every process samples into the fleet, the leader sends frozen sums),
against the sandbox's collector over loopback."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

import anyio
import httpx
import prometheus_client
import pytest

from gs_hooks import KST, CcuConfig, CcuProblem, FakeClock, format_kst
from gs_hooks._signal import Changed
from gs_hooks.ccu import CcuMetrics, CcuSample, CcuSampleRow, SampleState, make_reqkey
from gs_hooks.ccu._model import Plan, SampleKey, advance, pending_row
from gs_hooks.ccu._sampler import CcuSampler
from gs_hooks.ccu._sender import CcuSender
from gs_hooks.sandbox import Sandbox

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])]

GAME = "tinyfarm_KR"
START = datetime(2026, 3, 1, 13, 0, 30, tzinfo=KST)
SLOT1 = round(datetime(2026, 3, 1, 13, 2, tzinfo=KST).timestamp())


class ListSink:
    """A sink that keeps what it is given."""

    def __init__(self) -> None:
        self.slots: list[tuple[int, float, list[tuple[str, int]]]] = []

    async def put(self, samples: Sequence[CcuSample], slot_ts: int, now: float) -> None:
        self.slots.append((slot_ts, now, [(s.server, s.user) for s in samples]))


class Counts:
    def __init__(self) -> None:
        self.users = {"1": 3, "2": 0}

    def count(self, server_id: str, instant: float) -> int:
        return self.users[server_id]


async def test_the_sampler_gives_each_grid_instant_to_its_sink() -> None:
    clock = FakeClock(START)
    sink, counts = ListSink(), Counts()
    sampler = CcuSampler(
        game=GAME,
        server_ids=("1", "2"),
        counter=counts,
        period_s=120,
        clock=clock,
        sink=sink,
        metrics=CcuMetrics(prometheus_client.CollectorRegistry()),
        changed=Changed(),
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(sampler.run)
        await clock.advance(90)  # 13:02:00
        counts.users["2"] = 4
        await clock.advance(120 + 30)  # 13:04:00, and on to 13:04:30
        sampler.stop()
    assert sink.slots == [
        (SLOT1, float(SLOT1), [("1", 3), ("2", 0)]),
        (SLOT1 + 120, float(SLOT1 + 120), [("1", 3), ("2", 4)]),
    ]


class FrozenQueue:
    """A delivery queue over rows fixed in advance (what fleet mode's leader sends: the fleet's frozen sums)."""

    def __init__(self, rows: list[CcuSampleRow]) -> None:
        self.rows = {r.key: r for r in rows}
        self.events: list[tuple[str, str, int | None]] = []

    async def plan(self, now: float, limit: int, exclude: set[SampleKey]) -> Plan:
        pending = sorted(
            (r for r in self.rows.values() if r.state is SampleState.PENDING and r.key not in exclude),
            key=lambda r: (r.slot_ts, r.server),
        )
        due = [r for r in pending if r.next_attempt_at <= now][: max(limit, 0)]
        later = [r.next_attempt_at for r in pending if r not in due]
        return Plan(rows=due, next_due=min(later, default=None), depth=len(pending))

    async def record(
        self,
        row: CcuSampleRow,
        event: str,
        *,
        code: int | None,
        error: str = "",
        now: float,
        next_attempt_at: float | None = None,
    ) -> None:
        self.rows[row.key] = advance(row, event, code=code, error=error, now=now, next_attempt_at=next_attempt_at)
        self.events.append((row.server, event, code))

    async def pull_forward(self, now: float) -> int:
        return 0


@pytest.fixture
async def collector() -> AsyncIterator[tuple[FakeClock, Sandbox, httpx.AsyncClient]]:
    clock = FakeClock(START)
    async with Sandbox.serve(port=0, clock=clock, game_keys=[GAME]) as sb, httpx.AsyncClient() as http:
        yield clock, sb, http


async def test_the_sender_delivers_from_another_queue(collector: tuple[FakeClock, Sandbox, httpx.AsyncClient]) -> None:
    clock, sb, http = collector
    date = format_kst(SLOT1)
    rows = [
        pending_row(CcuSample.create(game=GAME, server=server, date=date, user=users), SLOT1, clock.time())
        for server, users in (("1", 12), ("2", 30))
    ]
    queue = FrozenQueue(rows)
    problems: list[CcuProblem] = []
    changed = Changed()
    sender = CcuSender(
        CcuConfig(url=sb.urls()["ccu_url"], game=GAME, server_ids=("1", "2"), backoff_base_s=5.0, max_inflight=1),
        url=sb.urls()["ccu_url"],
        http=http,
        queue=queue,
        clock=clock,
        metrics=CcuMetrics(prometheus_client.CollectorRegistry()),
        rng=random.Random(1),
        on_problem=problems.append,
        changed=changed,
    )
    sb.faults.add("ccu", "result", code=300, count=1)  # the first send is retried later, same reqkey
    sb.faults.add("ccu", "result", code=204, count=1)  # the probe after it is refused
    async with anyio.create_task_group() as tg:
        tg.start_soon(sender.run)
        with anyio.fail_after(10):
            while not (sender.idle and queue.events):
                await changed.wait()
        assert sender.failing and queue.events == [("1", "retry", 300)]
        probe = sender.next_probe_at
        assert probe is not None
        await clock.advance_to(probe)
        with anyio.fail_after(10):
            while not (sender.idle and len(queue.events) == 3):
                await changed.wait()
        tg.cancel_scope.cancel()
    assert queue.events == [("1", "retry", 300), ("1", "refused", 204), ("2", "delivered", 100)]
    assert [(p.server, p.code, p.reqkey) for p in problems] == [("1", 204, make_reqkey(GAME, "1", date))]
    assert [(s.server, s.user, s.reqkey) for s in sb.ccu.samples] == [("2", 30, make_reqkey(GAME, "2", date))]
