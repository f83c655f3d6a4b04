"""Bench of issue 4: how late the CCU POST reaches the collector after its grid instant, and what the spool costs.

1. Lateness, on the real clock (``SystemClock``), asyncio: the real ``CcuReporter`` (two server ids, spool on
   disk, ``synchronous=FULL``) with a test-only 1 s grid (the config only allows whole minutes), sending to the
   sandbox's Hive collector over loopback, in its own process (another machine, in production).
   Lateness = the collector's arrival time of each POST minus the grid
   instant in its ``date``. Bar: p99 <= 10 ms, and never before the instant (min >= 0).
   Baseline, same run and collector: a bare loop that wakes at each instant the same way (never-early sleep,
   then a short spin) and POSTs two prebuilt bodies at once (no counting, no spool): the difference is our cost.
   (Dates off the collector's minute grid are answered 202 by the sandbox; that does not change when they
   arrive, which is what is measured.)
2. Spool write cost per sample: ``CcuSpool.add_sync`` (one committed WAL transaction per slot, as the reporter
   does) against a bare ``INSERT`` + commit on a connection with the same pragmas; on disk and on tmpfs
   (``/dev/shm``, when present) to separate the fsync from our own overhead.

Run: ``python -m bench.ccu`` (``--smoke`` for a short run).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx

from gs_hooks import KST, CcuConfig, SessionRegistry, SystemClock, format_kst, next_grid_instant
from gs_hooks._store import Store
from gs_hooks.ccu import CcuMetrics, CcuReporter, CcuSample, CcuSpool, SocketCounter, encode_request
from gs_hooks.sandbox import CCU_PATH

GAME = "sandbox_game"
SRC = Path(__file__).resolve().parents[1] / "src"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _summary_ms(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50_ms": round(_pct(values, 0.50) * 1e3, 3),
        "p99_ms": round(_pct(values, 0.99) * 1e3, 3),
        "max_ms": round(max(values) * 1e3, 3),
        "min_ms": round(min(values) * 1e3, 3),
    }


def _instant(date: str) -> float:
    return datetime.fromisoformat(date).replace(tzinfo=KST).timestamp()


class _Collector:
    """The sandbox (its Hive CCU collector) in its own process, as the real collector is another machine."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gs_hooks", "sandbox", "--port", "0", "--game-key", GAME],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening on " not in line:
            self.close()
            raise RuntimeError(f"the sandbox did not start: {line!r}")
        self.url = line.rsplit("listening on ", 1)[1].strip()
        self.ccu_url = self.url + CCU_PATH

    async def attempts(self, http: httpx.AsyncClient) -> list[dict[str, Any]]:
        resp = await http.get(self.url + "/_sandbox/ccu/attempts")
        resp.raise_for_status()
        found: list[dict[str, Any]] = resp.json()["attempts"]
        return found

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


async def _ours(collector: _Collector, http: httpx.AsyncClient, ticks: int, spool_dir: str) -> list[float]:
    registry = SessionRegistry(default_server_id="1")
    for sid, n in (("1", 30), ("2", 12)):
        for k in range(n):
            registry.bind_player_nowait(registry.open_nowait(server_id=sid), f"{sid}-{k}")
    import prometheus_client

    reporter = CcuReporter(
        CcuConfig(url=collector.ccu_url, game=GAME, server_ids=("1", "2")),
        http=http,
        spool=CcuSpool(Store(os.path.join(spool_dir, "bench-ccu.sqlite3"))),
        counter=SocketCounter(registry),
        clock=SystemClock(),
        metrics=CcuMetrics(prometheus_client.CollectorRegistry()),
        owns_store=True,
        _grid_period_s=1,
    )
    first = len(await collector.attempts(http))
    async with anyio.create_task_group() as tg:
        await tg.start(reporter.run)
        await anyio.sleep(ticks + 1.5)
        await reporter.aclose()
    attempts = (await collector.attempts(http))[first:]
    slots = sorted({_instant(a["date"]) for a in attempts if a["date"]})
    warm = set(slots[1 : ticks + 1])  # the first tick opens the connections: left out
    return [a["received_at"] - _instant(a["date"]) for a in attempts if a["date"] and _instant(a["date"]) in warm]


async def _baseline(collector: _Collector, http: httpx.AsyncClient, ticks: int) -> list[float]:
    clock = SystemClock()
    first = len(await collector.attempts(http))
    nxt = next_grid_instant(clock.time(), 1).timestamp()
    for _ in range(ticks + 1):
        bodies = [
            encode_request(CcuSample.create(game=GAME, server=server, date=format_kst(nxt), user=1))
            for server in ("8", "9")
        ]
        await clock.sleep_until(nxt - 0.002)
        while clock.time() < nxt:
            await anyio.lowlevel.checkpoint()
        async with anyio.create_task_group() as tg:  # two server ids, sent together, as the reporter does
            for body, ctype in bodies:
                tg.start_soon(
                    lambda b=body, c=ctype: http.post(collector.ccu_url, content=b, headers={"content-type": c})
                )
        nxt += 1
    attempts = (await collector.attempts(http))[first:][2:]  # the first tick opened the connections
    return [a["received_at"] - _instant(a["date"]) for a in attempts if a["date"]]


async def _lateness(ticks: int, baseline_ticks: int) -> dict[str, Any]:
    level = logging.getLogger("gs_hooks").level
    logging.getLogger("gs_hooks").setLevel(logging.CRITICAL)  # 202 refusals would log an error per sample
    collector = _Collector()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-ccu-") as tmp:
            async with httpx.AsyncClient() as http:
                ours = await _ours(collector, http, ticks, tmp)
                base = await _baseline(collector, http, baseline_ticks)
    finally:
        collector.close()
        logging.getLogger("gs_hooks").setLevel(level)
    o, b = _summary_ms(ours), _summary_ms(base)
    return {
        "ours": o,
        "baseline_bare_post": b,
        "p99_overhead_ms": round(o["p99_ms"] - b["p99_ms"], 3),
        "never_early": min(ours) >= 0 and min(base) >= 0,
        "bar_p99_le_10ms": o["p99_ms"] <= 10.0,
    }


def _bare_insert_us(path: str, n: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS bare (server TEXT, slot_ts INTEGER, user INTEGER, PRIMARY KEY (server, slot_ts))"
    )
    t0 = time.perf_counter()
    for i in range(n):
        conn.execute("INSERT INTO bare VALUES (?,?,?)", ("1", i, i))  # autocommit: one transaction each
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed / n * 1e6


def _spool_us(path: str, n: int, per_slot: int) -> float:
    spool = CcuSpool(Store(path))
    spool.open_sync()
    t0 = time.perf_counter()
    for i in range(n // per_slot):
        slot = 1_800_000_000 + 120 * i
        date = format_kst(slot)
        spool.add_sync(
            [(CcuSample.create(game=GAME, server=str(s), date=date, user=i), slot) for s in range(1, per_slot + 1)],
            now=slot,
        )
    elapsed = time.perf_counter() - t0
    spool.store.close()
    return elapsed / (n // per_slot * per_slot) * 1e6


def _spool_cost(n: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    places = [("disk", None)]
    if os.path.isdir("/dev/shm"):
        places.append(("tmpfs", "/dev/shm"))
    for name, where in places:
        with tempfile.TemporaryDirectory(prefix="bench-ccu-", dir=where) as tmp:
            bare = statistics.median(_bare_insert_us(str(Path(tmp) / f"bare{k}.db"), n) for k in range(3))
            one = statistics.median(_spool_us(str(Path(tmp) / f"one{k}.db"), n, 1) for k in range(3))
            two = statistics.median(_spool_us(str(Path(tmp) / f"two{k}.db"), n, 2) for k in range(3))
        out[name] = {
            "bare_insert_us": round(bare, 1),
            "spool_1_server_us_per_sample": round(one, 1),
            "spool_2_servers_us_per_sample": round(two, 1),
            "ratio_1_server": round(one / bare, 2),
            "ratio_2_servers": round(two / bare, 2),
        }
    return out


def run(smoke: bool = False) -> dict[str, Any]:
    """Run the bench; ``smoke`` runs it briefly (no figure is meaningful then)."""
    ticks, baseline_ticks, n = (3, 3, 10) if smoke else (120, 60, 300)
    result: dict[str, Any] = {"ticks": ticks, "grid_s": 1}
    result["lateness"] = anyio.run(_lateness, ticks, baseline_ticks)
    result["spool_write"] = _spool_cost(n)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ccu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a short run (figures not meaningful)")
    args = parser.parse_args()
    print(json.dumps(run(smoke=args.smoke), indent=2))


if __name__ == "__main__":
    main()
