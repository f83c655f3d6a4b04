"""Async helpers of the in-process fleet tests: settings on a test Redis, hooks each in their own task, bounded
waits on a condition (the lease and Redis's TTLs run on real time)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

import gs_hooks
from gs_hooks import Config
from gs_hooks.fleet import FleetConfig


def fleet_settings(url: str, **more: Any) -> FleetConfig:
    values: dict[str, Any] = {"url": url, "game": "tinyfarm_KR", "prefix": "t", "socket_timeout_s": 2.0}
    values |= {"block_s": 0.5, "heartbeat_s": 0.2, "member_ttl_s": 1.0, "lease_ttl_s": 1.0, "lease_renew_s": 0.3}
    values.update(more)
    return FleetConfig(**values)


def config(path: Path, url: str, **more: Any) -> Config:
    return Config(state_path=str(path / "state.sqlite3"), fleet=fleet_settings(url, **more))


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.02)


class Running:
    """Hooks started each in its own task (so any of them may be closed first)."""

    def __init__(self, tg: anyio.abc.TaskGroup) -> None:
        self.tg = tg
        self.stops: dict[int, anyio.Event] = {}
        self.done: dict[int, anyio.Event] = {}

    async def start(self, hooks: gs_hooks.Hooks) -> None:
        stop, done = anyio.Event(), anyio.Event()
        self.stops[id(hooks)], self.done[id(hooks)] = stop, done

        async def run(*, task_status: anyio.abc.TaskStatus[None]) -> None:
            try:
                async with hooks:
                    task_status.started()
                    await stop.wait()
            finally:
                done.set()

        await self.tg.start(run)

    async def stop(self, hooks: gs_hooks.Hooks) -> None:
        self.stops[id(hooks)].set()
        await self.done[id(hooks)].wait()


@asynccontextmanager
async def running(*hooks: gs_hooks.Hooks) -> AsyncIterator[Running]:
    async with anyio.create_task_group() as tg:
        r = Running(tg)
        for h in hooks:
            await r.start(h)
        try:
            yield r
        finally:
            for stop in r.stops.values():
                stop.set()


def fleet_health(hooks: gs_hooks.Hooks) -> gs_hooks.ComponentHealth:
    (report,) = [h for h in hooks.services.readiness() if h.name == "fleet"]
    return report
