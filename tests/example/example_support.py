"""Helpers for the example's process-level tests: free ports, the example's environment, starting it."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from process_support import read_until

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
