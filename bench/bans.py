"""Bench: 2,000 bans applied against 1,000,000 live sessions with a no-op ``on_kick``.

    python -m bench.bans            # full run
    python -m bench.bans --smoke    # once, small (used by the test suite; no timing asserted)

What is timed: ``await hooks.bans.apply(bans)`` for 2,000 new bans of players that each have a live session
among 1,000,000. ``apply`` puts the batch in memory (diffed against the book: from here logins are refused),
enforces it — kicks every session through the same path as ``hooks.kick`` (registry removal, ``KickRequest``,
the game's ``on_kick``), drops cached tokens, calls ``on_ban`` — and then records it (one sqlite transaction;
the webhook answers after that).

Two figures per run: ``applied_ms``, from the call to the moment the last banned session has been handed to
``on_kick`` (the no-op ``on_kick`` notes the time: its cost is counted in), which is the issue's bar (<= 10 ms:
"applied against live sessions"); and ``recorded_ms``, until ``apply`` returns (the batch is also written).
Both for the durable file store (``synchronous=FULL``, written and fsync'd on a worker thread) and the
``:memory:`` store (written inline). Baseline, same run: just the 2,000 ``registry.sessions_of`` lookups (the
issue measured ~0.1 ms for them on its machine; the ratio to them is given, so machines can be compared).

Each store is measured in fresh interpreters, three each, alternating (a fresh heap: a second million sessions in
the same process sits in a fragmented heap and measures slower; and one interpreter on this shared VM may land
30-40 % slower than the next for the whole of its run, so the figure is the median over three). Medians over
repeats; between repeats the kicked players come back and the next bans start one second later (so they replace the
last ones: new bans, not idempotent re-sends)."""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio

import gs_hooks
from gs_hooks.bans import Ban

ROOT = Path(__file__).resolve().parents[1]


class _LastKick:
    """A no-op ``on_kick`` that notes when it was last called."""

    def __init__(self) -> None:
        self.at = 0.0

    def __call__(self, request: gs_hooks.KickRequest) -> None:
        self.at = time.perf_counter()


async def _measure(*, sessions: int, bans: int, repeats: int, state_path: str) -> dict[str, Any]:
    clock = gs_hooks.FakeClock()
    last_kick = _LastKick()
    hooks = gs_hooks.setup(gs_hooks.Config(state_path=state_path), on_kick=last_kick, clock=clock)
    registry = hooks.registry
    step = max(1, sessions // bans)
    banned = [f"p{i * step}" for i in range(bans)]
    async with hooks:
        for i in range(sessions):
            registry.bind_player_nowait(registry.open_nowait(), f"p{i}")
        hooks.bans.load_nowait()
        gc.collect()
        gc.freeze()
        ours: list[float] = []
        applied: list[float] = []
        base: list[float] = []
        kicked_total = 0
        for _ in range(repeats):
            start = clock.now()
            batch = [
                Ban(
                    player_key=key,
                    source="hive",
                    status="temporary",
                    starts_at=start,
                    ends_at=start + timedelta(days=3),
                )
                for key in banned
            ]
            t0 = time.perf_counter()
            for key in banned:
                registry.sessions_of(key)
            base.append(time.perf_counter() - t0)
            before = len(registry)
            t0 = time.perf_counter()
            changed = await hooks.bans.apply(batch)
            ours.append(time.perf_counter() - t0)
            applied.append(last_kick.at - t0)
            kicked = before - len(registry)
            if len(changed) != bans or kicked != bans:
                raise RuntimeError(f"expected {bans} bans and kicks, got {len(changed)} and {kicked}")
            kicked_total += kicked
            # the players come back for the next repeat (straight into the registry: the book would refuse them);
            # the next bans start a second later, so they replace these (new bans, not idempotent re-sends)
            for key in banned:
                registry.bind_player_nowait(registry.open_nowait(), key)
            await clock.advance(1)
        gc.unfreeze()
    applied_ms = statistics.median(applied) * 1000
    base_ms = statistics.median(base) * 1000
    return {
        "sessions": sessions,
        "bans": bans,
        "repeats": repeats,
        "applied_ms_median": round(applied_ms, 3),
        "applied_ms_min": round(min(applied) * 1000, 3),
        "applied_ms_max": round(max(applied) * 1000, 3),
        "recorded_ms_median": round(statistics.median(ours) * 1000, 3),
        "recorded_ms_max": round(max(ours) * 1000, 3),
        "lookups_ms_median": round(base_ms, 3),
        "applied_ratio_vs_lookups": round(applied_ms / base_ms, 1) if base_ms else None,
        "kicked_per_repeat": kicked_total // repeats,
    }


GOAL_MS = 10.0


def _in_subprocess(smoke: bool, state_path: str) -> dict[str, Any]:
    """One store's figures, measured in a fresh interpreter (a fresh heap for its million sessions)."""
    args = [sys.executable, "-m", "bench.bans", "--store", state_path] + (["--smoke"] if smoke else [])
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench.bans --store failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _sizes(smoke: bool) -> tuple[int, int, int]:
    return (20_000, 200, 1) if smoke else (1_000_000, 2_000, 9)


def _combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One store's figures over its interpreters: medians of their medians, and each interpreter's median."""
    out = dict(runs[0])
    for key in ("applied_ms_median", "recorded_ms_median", "lookups_ms_median", "applied_ratio_vs_lookups"):
        values = [r[key] for r in runs]
        out[key] = round(statistics.median(values), 3)
        out[key.replace("_median", "") + "_per_interpreter"] = values
    out["applied_ms_min"] = min(r["applied_ms_min"] for r in runs)
    out["applied_ms_max"] = max(r["applied_ms_max"] for r in runs)
    out["recorded_ms_max"] = max(r["recorded_ms_max"] for r in runs)
    out["interpreters"] = len(runs)
    return out


def run(smoke: bool = False) -> dict[str, Any]:
    """Run the bench: each store in fresh interpreters (3, alternating; 1 for smoke); returns the figures (ms)."""
    runs: dict[str, list[dict[str, Any]]] = {"file_store": [], "memory_store": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(1 if smoke else 3):
            runs["file_store"].append(_in_subprocess(smoke, str(Path(tmp) / f"bans{i}.sqlite3")))
            runs["memory_store"].append(_in_subprocess(smoke, ":memory:"))
    out: dict[str, Any] = {store: _combine(r) for store, r in runs.items()}
    applied_ms = out["file_store"]["applied_ms_median"]
    out["goal"] = {
        "text": "2,000 bans applied against 1,000,000 live sessions with a no-op on_kick in <= 10 ms",
        "figure": "file_store.applied_ms_median (until the last session is handed to on_kick; the durable write "
        "follows, see recorded_ms): the median over 3 interpreters of each one's median over its repeats",
        "goal_ms": GOAL_MS,
        "applied_ms": applied_ms,
        "applied_ms_per_interpreter": out["file_store"]["applied_ms_per_interpreter"],
        "recorded_ms": out["file_store"]["recorded_ms_median"],
        "lookups_ms": out["file_store"]["lookups_ms_median"],
        "applied_ratio_vs_lookups": out["file_store"]["applied_ratio_vs_lookups"],
        "met": applied_ms <= GOAL_MS,
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bans")
    parser.add_argument("--smoke", action="store_true", help="run once, small")
    parser.add_argument("--store", metavar="PATH", help="measure one store (a sqlite path or :memory:) in this process")
    args = parser.parse_args()
    if args.store is not None:
        sessions, bans, repeats = _sizes(args.smoke)
        figures = anyio.run(lambda: _measure(sessions=sessions, bans=bans, repeats=repeats, state_path=args.store))
        print(json.dumps(figures))
        return
    print(json.dumps(run(smoke=args.smoke), indent=2))


if __name__ == "__main__":
    main()
