"""Bench of issue 16's stream: the bare fan-out of bans to reader processes, and one ban's round trip.

    python -m bench.fleet            # full run (a private redis-server on a free loopback port)
    python -m bench.fleet --smoke    # small and once (used by the test suite; no timing asserted)

1. Fan-out: 2,000 bans in 20 batches (one stream entry per batch, as a Hive push is one batch) published through
   ``fleet.Publisher`` (pipelined, the ban-set merge script) to 8 reader processes reading with
   ``fleet.StreamReader``; the figure is from the first publish to the moment the last reader holds all 2,000
   (each reader notes ``time.perf_counter()``, the system-wide monotonic clock on Linux). The issue's floor for
   the bare fan-out on this kind of machine: ~150 ms pipelined, ~70 ms with hiredis.
2. Round trip: one ban published, read by a reader in another process; 1,000 one at a time; p50/p99
   (research: ~0.3 ms p50).
3. The research's own shape for comparison: the same 2,000 bans as 2,000 entries of one ban (pipelines of 100).

Both with and without hiredis (redis-py uses it when it is importable; ``--no-hiredis`` hides it), each in fresh
interpreters; medians over repeats.

4. End to end, with real game processes (``bench/fleet_e2e.py``): a ban received by one process's webhook → the
   kick callback on another; 2,000 bans in 20 Hive batches applied by 8 processes; leader failover; maintenance
   polls per period with 4 processes against one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from bench import fleet_e2e
from bench.fleet_e2e import start_redis as _start_redis
from gs_hooks.fleet import BanRow, FleetConfig, FleetRedis, Keys, MemoryOutbox, Outgoing, Publisher, StreamReader
from gs_hooks.fleet._protocol import decode_rows

ROOT = Path(__file__).resolve().parents[1]
BATCHES, PER_BATCH, READERS = 20, 100, 8


def _hide_hiredis(argv: list[str]) -> None:
    if "--no-hiredis" in argv:
        sys.modules["hiredis"] = None  # type: ignore[assignment]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _config(url: str) -> FleetConfig:
    return FleetConfig(url=url, game="bench", prefix="b", socket_timeout_s=5.0, block_s=2.0)


# -- reader process ------------------------------------------------------------------------------------------------


async def _reader(url: str, want: int, echo: bool) -> None:
    keys = Keys("b", "bench")
    redis = FleetRedis(_config(url))
    await redis.start()
    seen: set[str] = set()

    class Handler:
        async def entries(self, entries: Any, cursor: Any) -> None:
            now = time.perf_counter()
            for e in entries:
                rows = decode_rows(e.body)
                if echo:
                    print(json.dumps({"event": e.event, "at": now}), flush=True)
                seen.update(r.player for r in rows)
            if want and len(seen) >= want:
                print(json.dumps({"done": now}), flush=True)

        async def reload(self, reason: str, cursor: Any) -> None:
            print(json.dumps({"ready": True}), flush=True)

    reader = StreamReader(redis, keys.bans, keys.epoch, block_ms=2000)
    async with anyio.create_task_group() as tg:
        await tg.start(reader.run, None, Handler())


# -- measuring process ---------------------------------------------------------------------------------------------


def _spawn_readers(url: str, n: int, want: int, echo: bool, flags: list[str]) -> list[subprocess.Popen[str]]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.fleet", "--reader", url, str(want), "1" if echo else "0", *flags],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]
    for p in procs:
        assert p.stdout is not None
        json.loads(p.stdout.readline())  # ready
    return procs


async def _fanout(url: str, flags: list[str], batches: int, readers: int, per_batch: int = PER_BATCH) -> float:
    keys = Keys("b", "bench")
    redis = FleetRedis(_config(url))
    await redis.start()
    await redis.call("DEL", keys.bans, keys.bans_set, keys.bans_seq)
    procs = _spawn_readers(url, readers, batches * per_batch, False, flags)
    outbox = MemoryOutbox()
    pub = Publisher(redis, keys.bans, "bench", outbox, maxlen=100_000, set_key=keys.bans_set)
    stamp = int(time.time() * 1000)
    for b in range(batches):
        rows = tuple(
            BanRow("hive", f"{stamp}-{b}-{i}", "permanent", 1.0, None, "Cheating (bench)") for i in range(per_batch)
        )
        outbox.put(Outgoing(op="apply", event=f"b{b}", rows=rows))
    start = time.perf_counter()
    await pub.publish_pending()
    done = []
    for p in procs:
        assert p.stdout is not None
        done.append(json.loads(p.stdout.readline())["done"])
        p.terminate()
        p.wait()
    await redis.aclose()
    return max(done) - start


async def _round_trip(url: str, flags: list[str], n: int) -> list[float]:
    keys = Keys("b", "bench")
    redis = FleetRedis(_config(url))
    await redis.start()
    [proc] = _spawn_readers(url, 1, 0, True, flags)
    assert proc.stdout is not None
    outbox = MemoryOutbox()
    pub = Publisher(redis, keys.bans, "bench", outbox, maxlen=100_000, set_key=keys.bans_set)
    out: list[float] = []
    for i in range(n + 50):  # the first 50 warm up
        outbox.put(Outgoing(op="apply", event=f"r{i}", rows=(BanRow("hive", f"rt{i}", "permanent", 1.0, None, ""),)))
        start = time.perf_counter()
        await pub.publish_pending()
        got = json.loads(proc.stdout.readline())
        if i >= 50:
            out.append(got["at"] - start)
    proc.terminate()
    proc.wait()
    await redis.aclose()
    return out


def _measure(url: str, flags: list[str], smoke: bool) -> dict[str, Any]:
    repeats = 1 if smoke else 5
    fan = [anyio.run(_fanout, url, flags, 2 if smoke else BATCHES, 2 if smoke else READERS) for _ in range(repeats)]
    total = 2 * PER_BATCH if smoke else BATCHES * PER_BATCH
    single = [anyio.run(_fanout, url, flags, total, 2 if smoke else READERS, 1) for _ in range(repeats)]
    rt = anyio.run(_round_trip, url, flags, 50 if smoke else 1000)
    return {
        "fanout_ms_median": round(statistics.median(fan) * 1e3, 1),
        "fanout_ms_runs": [round(f * 1e3, 1) for f in fan],
        "fanout_one_entry_per_ban_ms_median": round(statistics.median(single) * 1e3, 1),
        "round_trip_p50_ms": round(_pct(rt, 0.5) * 1e3, 3),
        "round_trip_p99_ms": round(_pct(rt, 0.99) * 1e3, 3),
    }


# -- harness -------------------------------------------------------------------------------------------------------


def _in_subprocess(url: str, smoke: bool, hiredis: bool) -> dict[str, Any]:
    flags = [] if hiredis else ["--no-hiredis"]
    argv = [sys.executable, "-m", "bench.fleet", "--measure", url, *flags, *(["--smoke"] if smoke else [])]
    out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=True, env=dict(os.environ))
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run(smoke: bool = False) -> dict[str, Any]:
    """Run both measurements with and without hiredis; returns the figures (ms)."""
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = _start_redis(tmp)
        try:
            out: dict[str, Any] = {
                "pure_python_parser": _in_subprocess(url, smoke, hiredis=False),
                "hiredis": _in_subprocess(url, smoke, hiredis=True),
            }
        finally:
            proc.kill()
            proc.wait()
    out["setup"] = (
        f"{BATCHES} batches x {PER_BATCH} bans, {READERS} reader processes, one redis-server, all on this machine"
        if not smoke
        else "smoke: 2 batches, 2 readers"
    )
    out["research_floor"] = {"fanout_ms": {"pipelined": 150, "hiredis": 70}, "round_trip_p50_ms": 0.3}
    out["end_to_end"] = fleet_e2e.run(smoke=smoke)  # real game processes: issue 16's bars
    return out


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    _hide_hiredis(argv)
    parser = argparse.ArgumentParser(prog="python -m bench.fleet")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--no-hiredis", action="store_true")
    parser.add_argument("--measure", metavar="URL")
    parser.add_argument("--reader", nargs=3, metavar=("URL", "WANT", "ECHO"))
    args = parser.parse_args(argv)
    flags = ["--no-hiredis"] if args.no_hiredis else []
    if args.reader:
        url, want, echo = args.reader
        anyio.run(_reader, url, int(want), echo == "1")
    elif args.measure:
        result = _measure(args.measure, flags, args.smoke)
        from redis.utils import HIREDIS_AVAILABLE  # after --no-hiredis took effect

        result["hiredis_in_use"] = HIREDIS_AVAILABLE
        print(json.dumps(result))
    else:
        print(json.dumps(run(smoke=args.smoke), indent=2))


if __name__ == "__main__":
    main()
