"""The injectable clock: :class:`Clock`, the real :class:`SystemClock` and the tests' :class:`FakeClock`.

Strategy: every time-dependent piece of gs_hooks takes a :class:`Clock`. Time is epoch seconds (float, UTC);
the pure time functions (KST, the grid, conversions) are in :mod:`gs_hooks._time` and re-exported here.

:class:`SystemClock` never returns from ``sleep_until`` before the deadline, even when the event loop wakes a
timer early (uvloop can, by ~1 ms): it re-checks the wall clock and sleeps the remainder.
:class:`FakeClock` keeps virtual time for tests: ``await clock.advance(s)`` moves time forward, waking sleepers
one deadline at a time, in deadline order, and lets the woken tasks run before moving on.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from datetime import datetime
from typing import Protocol, runtime_checkable

import anyio
import anyio.lowlevel
import anyio.to_thread
import sniffio

from ._time import KST, format_kst, grid_slot, next_grid_instant, to_datetime, to_timestamp

__all__ = [
    "KST",
    "Clock",
    "FakeClock",
    "SystemClock",
    "format_kst",
    "grid_slot",
    "next_grid_instant",
    "to_datetime",
    "to_timestamp",
]


@runtime_checkable
class Clock(Protocol):
    """What gs_hooks needs from time. Inject :class:`FakeClock` in tests."""

    def time(self) -> float:
        """Current epoch seconds."""
        ...

    def now(self) -> datetime:
        """Current time as an aware KST datetime."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep at least ``seconds``."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Sleep until epoch seconds ``deadline`` (never returns before it)."""
        ...


class SystemClock:
    """The real clock (``time.time``), with never-early ``sleep_until``."""

    # ``time`` is the C function itself (no Python-level hop): hot paths (the session registry) take
    # ``clock.time`` and call it per connection.
    time = staticmethod(time.time)

    def now(self) -> datetime:
        return datetime.now(KST)

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(time.time() + seconds)

    async def sleep_until(self, deadline: float) -> None:
        while True:
            remaining = deadline - time.time()
            if remaining <= 0:
                await anyio.lowlevel.checkpoint()
                return
            await anyio.sleep(remaining)

    def __repr__(self) -> str:
        return "SystemClock()"


async def _settle() -> None:
    """Wait until every other task is blocked and anyio's worker threads are idle.

    anyio's own ``wait_all_tasks_blocked`` sleeps a real 0.1 s on asyncio each time it finds a runnable task;
    this yields instead (``sleep(0)``), and waits in steps of 1 ms only while a worker thread (an sqlite write)
    is still running, so a test on a :class:`FakeClock` costs its CPU, not wall-clock naps.
    """
    if sniffio.current_async_library() != "asyncio":
        await anyio.wait_all_tasks_blocked()  # trio's does not sleep in real time
        while anyio.to_thread.current_default_thread_limiter().borrowed_tokens:
            await anyio.sleep(0.001)
            await anyio.wait_all_tasks_blocked()
        return
    this = asyncio.current_task()
    while True:
        await asyncio.sleep(0)
        if anyio.to_thread.current_default_thread_limiter().borrowed_tokens:
            await asyncio.sleep(0.001)
            continue
        for task in asyncio.all_tasks():
            if task is this:
                continue
            waiter = task._fut_waiter  # type: ignore[attr-defined]
            if waiter is None or waiter.done():
                break  # runnable: let it run
        else:
            return


class FakeClock:
    """Virtual time for tests: nothing sleeps for real.

    ``await advance(seconds)`` wakes every sleeper whose deadline falls in the interval, one deadline at a time
    and in order; after each wake it waits until every task is blocked again, so the woken code has run (and may
    have gone back to sleep with a new deadline) before time moves on.

    Args:
        start: the initial time (aware datetime or epoch seconds); default 2026-01-01 00:00:00 KST.
    """

    def __init__(self, start: datetime | float | None = None) -> None:
        if start is None:
            start = datetime(2026, 1, 1, tzinfo=KST)
        self._t = to_timestamp(start)
        self._heap: list[tuple[float, int, anyio.Event]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self._t

    def now(self) -> datetime:
        return to_datetime(self._t)

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self._t + seconds)

    async def sleep_until(self, deadline: float) -> None:
        if deadline <= self._t:
            await anyio.lowlevel.checkpoint()
            return
        event = anyio.Event()
        entry = (deadline, next(self._seq), event)
        heapq.heappush(self._heap, entry)
        try:
            await event.wait()
        finally:
            if not event.is_set():  # cancelled: drop our entry
                self._heap.remove(entry)
                heapq.heapify(self._heap)

    @property
    def sleepers(self) -> int:
        """Number of tasks sleeping on this clock."""
        return len(self._heap)

    def next_deadline(self) -> float | None:
        """The earliest sleeper's deadline, if any."""
        return self._heap[0][0] if self._heap else None

    async def settle(self) -> None:
        """Wait until every task is blocked (woken code has run as far as it can) and no worker thread of
        ``anyio.to_thread`` is busy. Never sleeps in real time beyond what running tasks and threads take."""
        await _settle()

    async def advance(self, seconds: float) -> None:
        """Move virtual time forward by ``seconds``, waking sleepers in deadline order."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        await self.advance_to(self._t + seconds)

    async def advance_to(self, moment: datetime | float) -> None:
        """Move virtual time forward to ``moment``, waking sleepers in deadline order."""
        target = to_timestamp(moment)
        if target < self._t:
            raise ValueError("time only moves forward")
        await self.settle()
        while self._heap and self._heap[0][0] <= target:
            deadline = self._heap[0][0]
            self._t = max(self._t, deadline)
            while self._heap and self._heap[0][0] <= self._t:
                _, _, event = heapq.heappop(self._heap)
                event.set()
            await self.settle()
        self._t = target
        await self.settle()

    def set_time_nowait(self, moment: datetime | float) -> None:
        """Jump the clock without waking anyone (simulates a process that was down)."""
        self._t = to_timestamp(moment)

    def __repr__(self) -> str:
        return f"FakeClock({format_kst(self._t)} KST, sleepers={len(self._heap)})"
