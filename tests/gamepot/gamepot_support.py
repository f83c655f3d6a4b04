"""Helpers shared by the gamepot tests: a hooks object serving its router, and the document's rules written out
independently of the code under test (so the tests compare against a second implementation, not the first)."""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta
from typing import Any

from gs_hooks import (
    KST,
    CcuConfig,
    Config,
    FakeClock,
    GamePotConfig,
    Hooks,
    ListenerConfig,
    MemoryCcuHistory,
    Secret,
    setup,
)
from gs_hooks.http import serve_http

PROJECT = "12a0f2ff-aaaa-bbbb-cccc-9c13ef02f5fs"
API_KEY = "86dcgffae0641745432as02a8801ce5a5475f764f"
NOW = datetime(2026, 11, 22, 14, 37, 10, tzinfo=KST)
TODAY = NOW.date()

# (day, "HH:MM" of the slot) -> {server id: users}
Recorded = dict[tuple[date, str], dict[str, int]]


def make_hooks(*, dashboard: bool = False, listener: dict[str, Any] | None = None, period_s: int = 120) -> Hooks:
    cfg = Config(
        state_path=":memory:",
        gamepot=GamePotConfig(project_id=PROJECT, api_key=Secret(API_KEY)),
        listener=ListenerConfig(dashboard=dashboard, **(listener or {})),
        ccu=CcuConfig(period_s=period_s),
    )
    return setup(cfg, clock=FakeClock(NOW))


@asynccontextmanager
async def serving(hooks: Hooks) -> AsyncIterator[str]:
    async with hooks, serve_http(hooks.router, port=0) as server:
        yield server.url


def curve(minute: int, low: int, high: int) -> int:
    """A day-shaped CCU curve: quiet at 06:00, busy at 18:00 (so the screenshot looks like a real day)."""
    return int(low + (high - low) * (0.5 - 0.5 * math.cos(2 * math.pi * (minute - 360) / 1440)))


def known_samples(seed: int = 7) -> Recorded:
    """Samples over three days with gaps, two server ids, day boundaries, and a day with few."""
    rng = random.Random(seed)
    rec: Recorded = {}

    def put(day: date, minute: int, server: str, users: int) -> None:
        rec.setdefault((day, f"{minute // 60:02d}:{minute % 60:02d}"), {})[server] = users

    # today: server 1 all day up to now (14:36), server 2 from 06:00, nothing 03:00-03:58 (process down)
    for minute in range(0, 14 * 60 + 37, 2):
        if 180 <= minute < 240:
            continue
        put(TODAY, minute, "1", curve(minute, 120, 900) + rng.randint(-25, 25))
        if minute >= 360:
            put(TODAY, minute, "2", curve(minute, 20, 300) + rng.randint(0, 20))
    # yesterday: server 1 the whole day, a zero now and then
    yesterday = TODAY - timedelta(days=1)
    for minute in range(0, 1440, 2):
        put(yesterday, minute, "1", 0 if minute % 397 == 0 else curve(minute, 150, 1250) + rng.randint(-30, 30))
    # the day before: a few scattered samples, including 00:00 and 23:58
    before = TODAY - timedelta(days=2)
    for minute in (0, 2, 4, 600, 602, 1000, 1438):
        put(before, minute, "1", rng.randint(1, 50))
        put(before, minute, "7", rng.randint(1, 50))
    # a week ago: a whole day on two server ids
    week = TODAY - timedelta(days=7)
    for minute in range(0, 1440, 2):
        put(week, minute, "1", curve(minute, 100, 700) + rng.randint(-20, 20))
        put(week, minute, "2", curve(minute, 10, 200) + rng.randint(0, 10))
    # outside every asked day: must never show
    put(TODAY + timedelta(days=1), 0, "1", 99_999)
    put(TODAY - timedelta(days=3), 1438, "1", 88_888)
    return rec


def history_with(rec: Recorded) -> MemoryCcuHistory:
    """A MemoryCcuHistory holding every known sample."""
    history = MemoryCcuHistory()
    fill(history, rec)
    return history


def fill(history: Any, rec: Recorded) -> None:
    """Record every known sample into a MemoryCcuHistory."""
    for (day, hhmm), servers in rec.items():
        hh, mm = hhmm.split(":")
        at = datetime(day.year, day.month, day.day, int(hh), int(mm), tzinfo=KST)
        for server, users in servers.items():
            history.record_nowait(at, server, users)


def expected_column(rec: Recorded, day: date, period_min: int = 2) -> list[int | None]:
    """The document's rule: a minute shows its slot's sample, summed over server ids; no sample → None."""
    out: list[int | None] = []
    for minute in range(1440):
        slot = minute - minute % period_min
        servers = rec.get((day, f"{slot // 60:02d}:{slot % 60:02d}"))
        out.append(sum(servers.values()) if servers else None)
    return out


def expected_answer(rec: Recorded, one: date, two: date, three: date) -> dict[str, Any]:
    cols = [expected_column(rec, d) for d in (one, two, three)]
    edges = [
        {
            "node": {
                "createdAt": f"{m // 60:02d}:{m % 60:02d}",
                "one": cols[0][m],
                "two": cols[1][m],
                "three": cols[2][m],
            }
        }
        for m in range(1440)
    ]
    return {"status": 1, "result": {"totalCount": 1440, "edges": edges}}


GAME = "tinyfarm_KR"


def make_ccu_hooks(
    ccu_url: str = "http://127.0.0.1:9/modules/gameuser/currentuser/",
    *,
    dashboard: bool = False,
    clock: FakeClock | None = None,
    server_ids: tuple[str, ...] = ("1", "2", "7"),
) -> Hooks:
    """Hooks with the Hive CCU reporter wired (its spool in the in-memory store is the CCU history)."""
    cfg = Config(
        state_path=":memory:",
        gamepot=GamePotConfig(project_id=PROJECT, api_key=Secret(API_KEY)),
        listener=ListenerConfig(dashboard=dashboard),
        ccu=CcuConfig(url=ccu_url, game=GAME, server_ids=server_ids, backoff_base_s=1.0, backoff_max_s=4.0),
    )
    return setup(cfg, clock=clock or FakeClock(NOW))


def fill_spool(spool: Any, rec: Recorded, now: float) -> int:
    """Write every known sample into the reporter's spool through its public API (as pending rows)."""
    from gs_hooks.ccu import CcuSample

    rows = []
    for (day, hhmm), servers in rec.items():
        hh, mm = hhmm.split(":")
        at = datetime(day.year, day.month, day.day, int(hh), int(mm), tzinfo=KST)
        date = at.strftime("%Y-%m-%d %H:%M:%S")
        for server, users in servers.items():
            rows.append((CcuSample.create(game=GAME, server=server, date=date, user=users), int(at.timestamp())))
    spool.open_sync()
    return len(spool.add_sync(rows, now))
