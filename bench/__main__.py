"""Run every benchmark of the project, each beside its baseline, and write BENCHMARKS.md.

    python -m bench            # full run, writes BENCHMARKS.md
    python -m bench --smoke    # each bench once, briefly (used by the test suite); writes nothing
    python -m bench sessions ccu   # only these

Each bench module exposes ``run(smoke: bool) -> dict``; the harness prints and records what they return.
Figures are medians over repeats, measured in the same run as their baseline, reported as ratios.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCHES = ("sessions", "listener", "ccu", "http_clients", "gamebase", "bans", "loop", "fleet")
ROOT = Path(__file__).resolve().parents[1]


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


def _flatten(prefix: str, value: Any, out: list[tuple[str, str]]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out.append((prefix, _fmt(value)))


def render(results: dict[str, Any], *, seconds: float, argv: list[str]) -> str:
    """BENCHMARKS.md text for a set of results."""
    lines = [
        "# Benchmarks",
        "",
        f"Machine: {_machine()}. Commit `{_commit()}`. Run took {seconds:.0f} s.",
        "",
        f"Reproduce: `python -m bench{' ' + ' '.join(argv) if argv else ''}` (after `pip install -e '.[test]'`).",
        "Every figure is measured in the same run as its baseline; ratios are ours / baseline unless stated.",
        "",
    ]
    for name, result in results.items():
        lines += [f"## {name}", ""]
        if isinstance(result, dict) and "error" in result and len(result) == 1:
            lines += [f"Failed: `{result['error']}`", ""]
            continue
        rows: list[tuple[str, str]] = []
        _flatten("", result, rows)
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in rows]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"benches to run (default: all of {', '.join(BENCHES)})")
    parser.add_argument("--smoke", action="store_true", help="run each bench once, briefly; write nothing")
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"), help="where to write the report")
    args = parser.parse_args(argv)
    names = args.names or list(BENCHES)
    unknown = sorted(set(names) - set(BENCHES))
    if unknown:
        parser.error(f"unknown bench(es): {', '.join(unknown)}")
    results: dict[str, Any] = {}
    started = time.perf_counter()
    failed = False
    for name in names:
        print(f"== bench {name}{' (smoke)' if args.smoke else ''}", flush=True)
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"bench.{name}":
                print(f"   (no bench.{name} module yet)")
                continue
            raise
        try:
            results[name] = module.run(smoke=args.smoke)
        except Exception as exc:
            failed = True
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
        rows: list[tuple[str, str]] = []
        _flatten("", results[name], rows)
        for k, v in rows:
            print(f"   {k:<50} {v}")
    seconds = time.perf_counter() - started
    if not args.smoke:
        text = render(results, seconds=seconds, argv=(args.names or []))
        Path(args.output).write_text(text)
        print(f"wrote {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
