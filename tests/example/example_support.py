"""Helpers for the example's process-level tests: free ports, reading a child's output, the sandbox process."""

from __future__ import annotations

import re
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def read_until(proc: subprocess.Popen[str], pattern: str, timeout: float = 30.0) -> tuple[re.Match[str], str]:
    assert proc.stdout is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        seen += line
        m = re.search(pattern, line)
        if m:
            return m, seen
    raise AssertionError(f"{pattern!r} not printed; output so far:\n{seen}")


HIVE_KEY = "e2e-hive-bearer-key-0123456789"


def example_env(settings: dict[str, str], state_dir: Path, listen_port: int, **extra: str) -> dict[str, str]:
    """The example's environment: the sandbox's printed settings plus ours (GS_HOOKS_* only, as operators would)."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("GS_HOOKS_")}
    env |= settings
    env |= {
        "GS_HOOKS_SERVER_ID": "e2e1",
        "GS_HOOKS_STATE": str(state_dir / "state.sqlite3"),
        "GS_HOOKS_CCU_SPOOL": str(state_dir / "spool.sqlite3"),
        "GS_HOOKS_LISTEN": f"127.0.0.1:{listen_port}",
        "GS_HOOKS_HIVE_AUTH_KEY": HIVE_KEY,
        "GS_HOOKS_HIVE_GAME_INDEX": "539",
        "GS_HOOKS_GAMEBASE_MAINTENANCE_POLL_S": "1",
        "GS_HOOKS_GAMEBASE_MAINTENANCE_WARN_S": "4",
        "GS_HOOKS_GAMEBASE_BAN_POLL_S": "0",
        "PYTHONUNBUFFERED": "1",
    }
    env |= extra
    return env


def start_example(env: dict[str, str], game_port: int) -> subprocess.Popen[str]:
    """Start ``python -m examples.asyncio_server`` and wait until it listens."""
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "examples.asyncio_server", "--port", str(game_port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    read_until(proc, r"game server\s+tcp://")
    return proc


def stop(proc: subprocess.Popen[str]) -> str:
    """Kill if still running; return the rest of its output."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    out = ""
    if proc.stdout is not None and not proc.stdout.closed:
        out = proc.stdout.read()
        proc.stdout.close()
    return out
