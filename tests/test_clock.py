from __future__ import annotations

from datetime import datetime, timedelta

import anyio
import pytest

from gs_hooks import KST, FakeClock, SystemClock, format_kst, grid_slot, next_grid_instant

pytestmark = pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])


def test_grid_is_aligned_to_kst_even_minutes(anyio_backend: str) -> None:
    now = datetime(2026, 11, 22, 13, 1, 30, tzinfo=KST)
    assert next_grid_instant(now, 120) == datetime(2026, 11, 22, 13, 2, tzinfo=KST)
    assert grid_slot(now, 120) == datetime(2026, 11, 22, 13, 0, tzinfo=KST)
    # exactly on the grid: the slot is itself, the next instant is the following one
    on = datetime(2026, 11, 22, 13, 2, tzinfo=KST)
    assert grid_slot(on, 120) == on
    assert next_grid_instant(on, 120) == on + timedelta(minutes=2)
    # midnight KST crossing
    late = datetime(2026, 11, 22, 23, 59, 0, tzinfo=KST)
    assert next_grid_instant(late, 120) == datetime(2026, 11, 23, 0, 0, tzinfo=KST)
    assert format_kst(next_grid_instant(late, 120)) == "2026-11-23 00:00:00"


def test_grid_accepts_utc_input_and_timedelta(anyio_backend: str) -> None:
    utc = datetime(2026, 11, 22, 4, 1, 59, tzinfo=KST).astimezone(tz=None)
    assert next_grid_instant(utc.timestamp(), timedelta(minutes=2)).minute == 2
    # odd KST hours still give even minutes (KST is a whole-hour offset)
    assert next_grid_instant(datetime(2026, 1, 1, 0, 59, tzinfo=KST), 120).minute == 0


@pytest.mark.parametrize("bad", [0, -120, 7, 3601])
def test_grid_period_must_divide_a_day(anyio_backend: str, bad: int) -> None:
    with pytest.raises(ValueError, match="dividing 24 h"):
        next_grid_instant(0.0, bad)


def test_naive_datetime_is_refused(anyio_backend: str) -> None:
    with pytest.raises(ValueError, match="naive"):
        grid_slot(datetime(2026, 1, 1), 120)


async def test_fake_clock_wakes_sleepers_in_deadline_order(anyio_backend: str) -> None:
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=KST))
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, delay: float) -> None:
        await clock.sleep(delay)
        woke.append((name, clock.time() - start))

    start = clock.time()
    async with anyio.create_task_group() as tg:
        for name, delay in [("c", 30), ("a", 10), ("b", 20)]:
            tg.start_soon(sleeper, name, delay)
        await clock.settle()
        assert clock.sleepers == 3
        await clock.advance(15)
        assert woke == [("a", 10)]
        await clock.advance(100)
    assert woke == [("a", 10), ("b", 20), ("c", 30)]
    assert clock.time() - start == 115


async def test_fake_clock_lets_woken_code_sleep_again_within_one_advance(anyio_backend: str) -> None:
    clock = FakeClock()
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            await clock.sleep_until(clock.time() + 60)
            ticks.append(clock.time())

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        await clock.settle()
        t0 = clock.time()
        await clock.advance(600)
        tg.cancel_scope.cancel()
    assert [t - t0 for t in ticks] == [60.0 * i for i in range(1, 11)]
    assert clock.sleepers == 0  # the cancelled sleeper removed itself


async def test_system_clock_never_wakes_early(anyio_backend: str) -> None:
    clock = SystemClock()
    for _ in range(5):
        deadline = clock.time() + 0.003
        await clock.sleep_until(deadline)
        assert clock.time() >= deadline
    assert clock.now().tzinfo is KST


async def test_settle_yields_instead_of_sleeping_while_tasks_run(anyio_backend: str) -> None:
    """settle() lets busy tasks run to their next block without real-time naps (anyio's asyncio version sleeps
    0.1 s per runnable task it finds): no timer is scheduled while no worker thread is busy."""
    clock = FakeClock()
    steps: list[int] = []

    async def busy() -> None:
        for i in range(200):
            steps.append(i)
            await anyio.lowlevel.checkpoint()
        await clock.sleep(60)

    timers: list[float] = []
    if anyio_backend == "asyncio":
        import asyncio

        loop = asyncio.get_running_loop()
        real_call_at = loop.call_at

        def call_at(when: float, *args: object, **kwargs: object) -> asyncio.TimerHandle:
            timers.append(when - loop.time())
            return real_call_at(when, *args, **kwargs)  # type: ignore[arg-type]

        loop.call_at = call_at  # type: ignore[method-assign]
    async with anyio.create_task_group() as tg:
        tg.start_soon(busy)
        await clock.settle()
        assert len(steps) == 200
        assert clock.sleepers == 1
        tg.cancel_scope.cancel()
    assert timers == []


async def test_settle_waits_for_worker_threads(anyio_backend: str) -> None:
    """A task waiting on anyio.to_thread is not settled until the thread's result has been handled."""
    import time as _time

    clock = FakeClock()
    done: list[str] = []

    async def worker() -> None:
        await anyio.to_thread.run_sync(_time.sleep, 0.05)
        done.append("thread")
        await clock.sleep(60)

    async with anyio.create_task_group() as tg:
        tg.start_soon(worker)
        await clock.settle()
        assert done == ["thread"]
        tg.cancel_scope.cancel()
