"""Shared helpers of the fault tests (imported by module name; tests/ has no packages).

Everything runs over loopback against the sandbox, on a :class:`~gs_hooks.FakeClock`. The only real waiting is
an HTTP client's own timeout (kept to a fraction of a second) and the loopback round trips themselves.
"""

from __future__ import annotations

import gc
import logging
import random
import socket
import sys
import tracemalloc
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx

from gs_hooks import CcuConfig, FakeClock, SessionRegistry
from gs_hooks._store import Store
from gs_hooks.ccu import CcuReporter, CcuSpool, SocketCounter
from gs_hooks.gamebase import GamebaseClient
from gs_hooks.sandbox import CCU_PATH, Sandbox

T = TypeVar("T")

GAME = "tinyfarm_KR"
GB_APP = "faults-app"
GB_KEY = "faults-secret-key-0123"


def closed_port() -> int:
    """A loopback port nobody listens on (a connection is refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def closed_base_url() -> str:
    """``http://127.0.0.1:<closed port>``."""
    return f"http://127.0.0.1:{closed_port()}"


@asynccontextmanager
async def sandbox(clock: FakeClock) -> AsyncIterator[Sandbox]:
    """The platform sandbox on a free port, on ``clock``, knowing our game key and Gamebase app."""
    async with Sandbox.serve(
        port=0, clock=clock, game_keys=[GAME], gamebase_app_id=GB_APP, gamebase_secret=GB_KEY
    ) as sb:
        yield sb


# -- CCU -----------------------------------------------------------------------------------------------------------


def make_reporter(
    tmp_path: Path,
    clock: FakeClock,
    http: httpx.AsyncClient,
    *,
    url: str,
    name: str = "spool",
    registry: SessionRegistry | None = None,
    rng: random.Random | None = None,
    **settings: Any,
) -> CcuReporter:
    """A CCU reporter with its own sqlite spool file ``<name>.sqlite3`` (defaults: server ids 1 and 2)."""
    values: dict[str, Any] = {
        "url": url,
        "game": GAME,
        "server_ids": ("1", "2"),
        "period_s": 120,
        "backoff_base_s": 30.0,
        "backoff_max_s": 120.0,
    }
    values.update(settings)
    reg = registry if registry is not None else SessionRegistry(default_server_id="1", time=clock.time)
    return CcuReporter(
        CcuConfig(**values),
        http=http,
        spool=CcuSpool(Store(str(tmp_path / f"{name}.sqlite3"))),
        counter=SocketCounter(reg, "players"),
        clock=clock,
        owns_store=True,
        rng=rng,
    )


@asynccontextmanager
async def running(*reporters: CcuReporter) -> AsyncIterator[None]:
    """Run reporters in a task group; ``aclose()`` them on exit."""
    async with anyio.create_task_group() as tg:
        for r in reporters:
            await tg.start(r.run)
        try:
            yield
        finally:
            with anyio.CancelScope(shield=True):
                for r in reporters:
                    await r.aclose()


async def step(clock: FakeClock, reporters: tuple[CcuReporter, ...], seconds: float) -> None:
    """Advance virtual time by ``seconds`` one sleeper's deadline at a time, letting every reporter finish what
    became due (its real IO included) before time moves on."""
    target = clock.time() + seconds
    with anyio.fail_after(60):
        while True:
            await _all_idle(clock, reporters)
            deadline = clock.next_deadline()
            if deadline is None or deadline > target:
                break
            await clock.advance_to(max(deadline, clock.time()))
        await clock.advance_to(target)
        await _all_idle(clock, reporters)


async def _all_idle(clock: FakeClock, reporters: tuple[CcuReporter, ...]) -> None:
    # ``wait_idle`` returns once the dispatcher *decided* to wait, which is a moment before its timer task has put
    # its deadline on the clock; settling lets that task run, so ``next_deadline`` sees every sleeper.
    while True:
        for r in reporters:
            await r.wait_idle()
        await clock.settle()
        if all(r.idle for r in reporters):
            return


def ccu_url(sb: Sandbox) -> str:
    return sb.url + CCU_PATH


# -- Gamebase ------------------------------------------------------------------------------------------------------


def gamebase_client(http: httpx.AsyncClient, base_url: str, clock: FakeClock, **kwargs: Any) -> GamebaseClient:
    """A Gamebase client for the sandbox's app (defaults: 2 retries, backoff 0.5 s .. 4 s on ``clock``)."""
    options: dict[str, Any] = {
        "base_url": base_url,
        "app_id": GB_APP,
        "secret_key": GB_KEY,
        "clock": clock,
        "retries": 2,
        "backoff_base_s": 0.5,
        "backoff_max_s": 4.0,
        "timeout_s": 2.0,
    }
    options.update(kwargs)
    return GamebaseClient(http, **options)


async def drive(clock: FakeClock, fn: Callable[[], Awaitable[T]], *, max_advance_s: float = 3600.0) -> T:
    """Run ``fn()`` to completion, moving the fake clock to each sleeper's deadline whenever every task is blocked
    (the client's backoff sleeps on the clock); while real IO is in flight, wait for it (tiny bounded waits).

    Raises:
        AssertionError: the call needed more than ``max_advance_s`` of virtual time.
    """
    done = anyio.Event()
    box: dict[str, Any] = {}
    start = clock.time()

    async def run() -> None:
        try:
            box["value"] = await fn()
        except BaseException as exc:  # handed back to the caller below
            box["error"] = exc
        finally:
            done.set()

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            while not done.is_set():
                await clock.settle()
                if done.is_set():
                    break
                deadline = clock.next_deadline()
                if deadline is not None and deadline - start <= max_advance_s:
                    # a sleeper is due: but an HTTP exchange may be in flight too; give it a moment first
                    with anyio.move_on_after(0.002):
                        await done.wait()
                    if not done.is_set() and clock.next_deadline() == deadline:
                        await clock.advance_to(max(deadline, clock.time()))
                else:
                    with anyio.move_on_after(0.05):
                        await done.wait()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


# -- counting what reaches the sandbox ------------------------------------------------------------------------------


def fault_hits(sb: Sandbox, route: str) -> int:
    """Requests to ``route`` answered by a fault rule (they never reach the route's handler)."""
    return sum(1 for hit in sb.faults.fired if hit.route == route)


def gamebase_requests(sb: Sandbox, route: str) -> int:
    """Every request that reached the sandbox for a Gamebase route, answered by a fault or by the simulator."""
    return fault_hits(sb, route) + sb.gamebase.counts[route]


# -- memory ---------------------------------------------------------------------------------------------------------


@dataclass
class Census:
    """Live Python objects and allocated memory blocks of the whole process, after a full garbage collection.

    (No tracemalloc here: tracing every allocation makes thousands of fake-clock steps several times slower, and
    its byte counts wander with allocator free lists; object and block counts answer "does it grow?" exactly.)
    """

    readings: list[tuple[int, int]] = field(default_factory=list)

    def read(self) -> tuple[int, int]:
        """(live gc-tracked objects, allocated blocks) now; also appended to ``readings``."""
        gc.collect()
        reading = (len(gc.get_objects()), sys.getallocatedblocks())
        self.readings.append(reading)
        return reading

    @staticmethod
    def by_type(limit: int = 8) -> list[tuple[str, int]]:
        """The most common live object types (for assertion messages)."""
        gc.collect()
        return Counter(type(o).__name__ for o in gc.get_objects()).most_common(limit)


@contextmanager
def traced() -> Iterator[None]:
    """tracemalloc on for the block (one frame per trace)."""
    was = tracemalloc.is_tracing()
    if not was:
        tracemalloc.start(1)
    try:
        yield
    finally:
        if not was:
            tracemalloc.stop()


@contextmanager
def quiet(logger: str) -> Iterator[None]:
    """Raise a logger to ERROR for the block. pytest's log capture keeps every record of a test, so a long run
    of warnings is memory the harness holds, not the code under test."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


# -- driving components that have no wait_idle() ---------------------------------------------------------------------


class InflightTransport(httpx.AsyncBaseTransport):
    """httpx's real transport, counting the requests in flight (so a test knows when real IO is pending)."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.inflight = 0
        self.sent = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.inflight += 1
        self.sent += 1
        try:
            return await self._inner.handle_async_request(request)
        finally:
            self.inflight -= 1

    async def aclose(self) -> None:
        await self._inner.aclose()


class SleepProbe:
    """A clock wrapper that knows when its user is asleep on it (to tell "waiting for time" from "busy with IO or a
    worker thread" for a component that has no ``wait_idle()``). Delegates everything to the wrapped clock."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.sleeping = 0

    def time(self) -> float:
        return self.clock.time()

    def now(self) -> datetime:
        return self.clock.now()

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self.clock.time() + seconds)

    async def sleep_until(self, deadline: float) -> None:
        self.sleeping += 1
        try:
            await self.clock.sleep_until(deadline)
        finally:
            self.sleeping -= 1


async def run_clock(clock: FakeClock, probe: SleepProbe, seconds: float) -> None:
    """Advance virtual time by ``seconds``, one sleeper's deadline at a time; before each step, wait (tiny real
    waits) until the probed component is asleep on the clock, so its HTTP and sqlite work has finished."""
    target = clock.time() + seconds
    while True:
        await _asleep(clock, probe)
        deadline = clock.next_deadline()
        if deadline is None or deadline > target:
            break
        await clock.advance_to(max(deadline, clock.time()))
    await clock.advance_to(target)
    await _asleep(clock, probe)


async def _asleep(clock: FakeClock, probe: SleepProbe) -> None:
    with anyio.fail_after(30):
        while True:
            await clock.settle()
            if probe.sleeping:
                return
            await anyio.sleep(0.001)
