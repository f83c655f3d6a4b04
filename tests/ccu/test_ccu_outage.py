"""The outage bar: the collector fails (drops, 5xx, DB errors) for 30+ slots, the reporter process is killed
with SIGKILL in the middle, restarted on the same spool, the outage ends: every sample taken is delivered,
exactly once (the collector saved no sample twice), and the slots while the process was down were not invented.

The reporter runs in a real subprocess on its own fake clock (120 s grid, virtual time) so the test takes
seconds; the sandbox runs here, on the real clock, and the faults are switched by this test.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from gs_hooks import KST, format_kst, next_grid_instant
from gs_hooks.sandbox import Sandbox

CHILD = Path(__file__).with_name("ccu_outage_child.py")
GAME = "tinyfarm_KR"
SRC = str(Path(__file__).resolve().parents[2] / "src")


class Child:
    def __init__(self, proc: anyio.abc.Process) -> None:
        self.proc = proc
        assert proc.stdout is not None and proc.stdin is not None
        self.out = BufferedByteReceiveStream(proc.stdout)
        self.statuses: list[dict[str, Any]] = []

    async def line(self) -> dict[str, Any]:
        with anyio.fail_after(30):
            raw = await self.out.receive_until(b"\n", 65536)
        status: dict[str, Any] = json.loads(raw)
        self.statuses.append(status)
        return status

    async def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        await self.proc.stdin.send(command.encode() + b"\n")

    async def tick(self, n: int) -> dict[str, Any]:
        await self.send(f"tick {n}")
        status: dict[str, Any] = {}
        for _ in range(n):
            status = await self.line()
        return status


_children: list[anyio.abc.Process] = []


async def start_child(url: str, spool: Path, start: float) -> Child:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = await anyio.open_process([sys.executable, str(CHILD), url, str(spool), repr(start)], env=env, stderr=None)
    _children.append(proc)
    child = Child(proc)
    assert (await child.line())["ready"] is True
    return child


def spool_rows(spool: Path) -> list[tuple[str, str, str, int, str]]:
    conn = sqlite3.connect(spool)
    try:
        return conn.execute(
            "SELECT server, date, reqkey, user, state FROM ccu_samples ORDER BY slot_ts, server"
        ).fetchall()
    finally:
        conn.close()


@pytest.fixture
async def reap() -> AsyncIterator[None]:
    """Kill (by pid) any child a failing test left running."""
    yield
    while _children:
        proc = _children.pop()
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        await proc.aclose()


@pytest.mark.anyio
@pytest.mark.slow
async def test_outage_kill_restart_delivers_everything_exactly_once(tmp_path: Path, reap: None) -> None:
    spool = tmp_path / "ccu-spool.sqlite3"
    start = datetime(2026, 3, 1, 13, 0, 30, tzinfo=KST).timestamp()
    async with Sandbox.serve(port=0, game_keys=[GAME]) as sb:
        url = sb.urls()["ccu_url"]
        first = await start_child(url, spool, start)
        await first.tick(5)  # collector healthy
        assert first.statuses[-1]["pending"] == 0
        outage_slots = 0

        sb.faults.add("ccu", "drop")  # connections dropped without an answer
        await first.tick(10)
        outage_slots += 10
        sb.faults.clear()
        sb.faults.add("ccu", "status", status=503)
        await first.tick(5)
        outage_slots += 5
        assert first.statuses[-1]["pending"] > 0
        # kill -9 in the middle of a send: the collector stalls on the next request (then saves it, the
        # answer going nowhere); the process is killed while it waits for that answer
        sb.faults.clear()
        stall = sb.faults.add("ccu", "delay", delay_s=0.3, count=1)
        sb.faults.add("ccu", "status", status=503)
        saved_before = len(sb.ccu.samples)
        await first.send("tick 3")
        with anyio.fail_after(20):
            while stall.hits == 0:
                await anyio.sleep(0.001)
        first.proc.send_signal(signal.SIGKILL)
        assert await first.proc.wait() == -signal.SIGKILL
        with anyio.fail_after(5):
            while len(sb.ccu.samples) == saved_before:  # the stalled request is saved after all
                await anyio.sleep(0.01)
        orphan = sb.ccu.samples[-1]

        taken_before = spool_rows(spool)
        last_slot = max(datetime.fromisoformat(d).replace(tzinfo=KST).timestamp() for _, d, *_ in taken_before)
        # down for 5 grid periods: those slots must not be invented
        restart = last_slot + 5 * 120 + 30
        second = await start_child(url, spool, restart)
        await second.tick(5)
        outage_slots += 5
        sb.faults.clear()
        sb.faults.add("ccu", "result", code=300)  # the collector's DB error
        await second.tick(10)
        outage_slots += 10
        assert outage_slots >= 30
        assert second.statuses[-1]["pending"] >= 2 * 30  # every sample of the outage slots waits in the spool
        assert sb.ccu.result_counts[300] >= 1 and sb.ccu.result_counts[503] == 0  # (503 is an HTTP status)
        sb.faults.clear()  # the outage ends
        for _ in range(10):
            if (await second.tick(1))["pending"] == 0:
                break
        await second.send("quit")
        assert (await second.line())["closed"] is True
        assert await second.proc.wait() == 0

        rows = spool_rows(spool)
        # every sample taken was delivered...
        assert {state for *_, state in rows} == {"delivered"}
        reported = sum(1 for st in first.statuses + second.statuses if "pending" in st)
        # every reported slot, plus at most the two the killed process may have sampled after its last report
        assert 2 * reported <= len(rows) <= 2 * (reported + 2)
        assert reported >= 36
        # ...and is at the collector exactly once, with the same date, reqkey and count
        saved = sorted((s.server, s.date, s.reqkey, s.user) for s in sb.ccu.samples)
        assert saved == sorted((server, date, key, user) for server, date, key, user, _ in rows)
        assert sb.ccu.duplicates_saved == 0
        # the sample saved while its sender was being killed was sent again after the restart (same reqkey) and
        # answered 101: delivered, not saved twice
        assert sb.ccu.duplicate_requests >= 1
        assert any(a.reqkey == orphan.reqkey and a.result == 101 for a in sb.ccu.attempts)
        # one sample per server per slot, consecutive within each run, nothing in the gap
        slots = sorted({datetime.fromisoformat(d).replace(tzinfo=KST).timestamp() for _, d, *_ in rows})
        for server in ("1", "2"):
            mine = [d for s, d, *_ in rows if s == server]
            assert len(mine) == len(set(mine)) == len(slots)
        gaps = [b - a for a, b in itertools.pairwise(slots) if b - a != 120]
        # down from last_slot to restart: the five instants in between are missing, no more, no less
        assert gaps == [next_grid_instant(restart, 120).timestamp() - last_slot] == [6 * 120.0], [
            format_kst(s) for s in slots
        ]


async def tick_until_held(child: Child, limit: int = 40) -> None:
    """Tick until the full spool refuses a write (a write that needs a new page) and samples are held."""
    for _ in range(limit):
        if (await child.tick(1))["held"] > 0:
            return
    raise AssertionError(f"the full spool never refused a write: {child.statuses[-1]}")


async def disk(child: Child, state: str) -> None:
    await child.send(state)
    assert (await child.line()) == {"disk": state}


@pytest.mark.anyio
@pytest.mark.slow
async def test_outage_with_a_full_disk_kill_restart_loses_nothing_and_counts_nothing_twice(
    tmp_path: Path, reap: None
) -> None:
    """The outage bar with a full disk (issue 14): the spool's disk fills up while the collector answers, then
    while it fails; space returns; the process is killed with SIGKILL in the middle of a send; it restarts, the
    disk fills up again while the collector still fails and after it answers again; space returns. Every sample
    taken reaches the collector exactly once and is recorded in the spool, once space is back."""
    spool = tmp_path / "ccu-spool.sqlite3"
    start = datetime(2026, 3, 1, 13, 0, 30, tzinfo=KST).timestamp()
    async with Sandbox.serve(port=0, game_keys=[GAME]) as sb:
        url = sb.urls()["ccu_url"]
        first = await start_child(url, spool, start)
        await first.tick(3)

        # the disk fills up while the collector answers: every sample still reaches it at once
        await disk(first, "full")
        await tick_until_held(first)
        status = await first.tick(3)
        assert status["held"] > 0 and status["pending"] == 0
        assert status["spooled"] < status["taken"] == len(sb.ccu.samples)
        # the collector fails too: the samples wait in memory, nothing is dropped
        sb.faults.add("ccu", "status", status=503)
        status = await first.tick(5)
        assert status["pending"] >= 2 * 5 and status["held"] >= 2 * 5
        assert len(sb.ccu.samples) == status["taken"] - status["pending"]
        # space returns while the collector still fails: everything held is recorded, pending or delivered
        await disk(first, "space")
        status = await first.tick(1)
        assert status["held"] == 0 and status["spooled"] == status["taken"]
        assert spool_rows(spool) and len(spool_rows(spool)) == status["taken"]
        await first.tick(2)

        # kill -9 in the middle of a send, as in the test above
        sb.faults.clear()
        stall = sb.faults.add("ccu", "delay", delay_s=0.3, count=1)
        sb.faults.add("ccu", "status", status=503)
        await first.send("tick 3")
        with anyio.fail_after(20):
            while stall.hits == 0:
                await anyio.sleep(0.001)
        first.proc.send_signal(signal.SIGKILL)
        assert await first.proc.wait() == -signal.SIGKILL

        last_slot = max(datetime.fromisoformat(d).replace(tzinfo=KST).timestamp() for _, d, *_ in spool_rows(spool))
        second = await start_child(url, spool, last_slot + 3 * 120 + 30)
        await second.tick(2)
        # the disk fills up again while the collector still fails...
        await disk(second, "full")
        await tick_until_held(second)
        await second.tick(2)
        # ...and the collector answers again while the disk is still full: the backlog is delivered from the spool
        # and from memory; what the spool cannot record is held
        sb.faults.clear()
        status = await second.tick(3)
        assert status["pending"] == 0 and status["held"] > 0
        await disk(second, "space")
        status = await second.tick(1)
        assert status["held"] == 0 and status["pending"] == 0 and status["spooled"] == status["taken"]
        await second.send("quit")
        assert (await second.line())["closed"] is True
        assert await second.proc.wait() == 0

        rows = spool_rows(spool)
        assert {state for *_, state in rows} == {"delivered"}
        # 0 samples lost: every sample taken is at the collector, with the same date, reqkey and count...
        saved = sorted((s.server, s.date, s.reqkey, s.user) for s in sb.ccu.samples)
        assert saved == sorted((server, date, key, user) for server, date, key, user, _ in rows)
        # ...and 0 counted twice
        assert sb.ccu.duplicates_saved == 0
        reported = sum(1 for st in first.statuses + second.statuses if "pending" in st)
        assert 2 * reported <= len(rows) <= 2 * (reported + 2)
        for server in ("1", "2"):
            mine = [d for s, d, *_ in rows if s == server]
            assert len(mine) == len(set(mine)) == len(rows) // 2
