"""Shared helpers of the CCU tests (imported by module name; tests/ has no packages)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx

from gs_hooks import CcuConfig, FakeClock, SessionRegistry
from gs_hooks._store import Store
from gs_hooks.ccu import CcuReporter, CcuSpool, SocketCounter


def closed_port_url() -> str:
    """A loopback URL nobody listens on (connection refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/modules/gameuser/currentuser/"


def make_reporter(
    tmp_path: Path,
    clock: FakeClock,
    http: httpx.AsyncClient,
    *,
    url: str,
    registry: SessionRegistry | None = None,
    spool_name: str = "spool.sqlite3",
    **overrides: Any,
) -> CcuReporter:
    settings: dict[str, Any] = {
        "url": url,
        "game": "tinyfarm_KR",
        "server_ids": ("1", "2"),
        "period_s": 120,
        "backoff_base_s": 30.0,
        "backoff_max_s": 120.0,
    }
    on_problem = overrides.pop("on_problem", None)
    grid = overrides.pop("_grid_period_s", None)
    metrics = overrides.pop("metrics", None)
    settings.update(overrides)
    reg = registry if registry is not None else SessionRegistry(default_server_id="1", time=clock.time)
    return CcuReporter(
        CcuConfig(**settings),
        http=http,
        spool=CcuSpool(Store(str(tmp_path / spool_name))),
        counter=SocketCounter(reg, "players"),
        clock=clock,
        on_problem=on_problem,
        metrics=metrics,
        owns_store=True,
        _grid_period_s=grid,
    )


@asynccontextmanager
async def running(reporter: CcuReporter) -> AsyncIterator[CcuReporter]:
    """Run the reporter in a task group; ``aclose()`` it on exit."""
    async with anyio.create_task_group() as tg:
        await tg.start(reporter.run)
        try:
            yield reporter
        finally:
            with anyio.CancelScope(shield=True):
                await reporter.aclose()


async def step(clock: FakeClock, reporter: CcuReporter, seconds: float) -> None:
    """Advance virtual time by ``seconds``, one sleeper's deadline at a time, letting the reporter finish what
    became due (its real IO included) before moving on.

    (``FakeClock.advance`` alone would not wait for sends and sqlite commits running on worker threads.)
    """
    target = clock.time() + seconds
    with anyio.fail_after(30):
        while True:
            await reporter.wait_idle()
            deadline = clock.next_deadline()
            if deadline is None or deadline > target:
                break
            await clock.advance_to(max(deadline, clock.time()))
        await clock.advance_to(target)
        await reporter.wait_idle()
