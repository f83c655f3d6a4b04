"""SIGTERM (what Docker, Kubernetes and systemd send) shuts the README Quickstart's server down in order (13.11).

A real OS process (``tests/shutdown_server.py``, the Quickstart's shape with ``await hooks.serve_until_signal()``)
serves two players and the Hive webhook. A Hive ban is pushed while the test holds the sqlite store's write lock,
so the ban is enforced (its player kicked) but its write is still pending when SIGTERM arrives. Then: the log line
names the signal, the other player is kicked with reason ``shutdown`` (the README's ``kick_player`` closes the
connection), the pending ban reaches the store once the lock is released, the store is closed cleanly (WAL
checkpointed, the ``-wal`` file gone), the listener is closed, and the exit code is 0. Without the helper, the
same process dies on SIGTERM with the ban never written.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import anyio
import httpx
import pytest

from gs_hooks import KST, FakeClock
from gs_hooks.sandbox import Sandbox

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.timeout(120)]

HERE = Path(__file__).resolve().parent
HIVE_KEY = "shutdown-test-hive-key-0123456789"


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(HERE / "shutdown_server.py"), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def read_ready(proc: subprocess.Popen[str]) -> tuple[int, str]:
    assert proc.stdout is not None
    line = await asyncio.to_thread(proc.stdout.readline)
    assert line.startswith("ready "), line + (proc.stderr.read() if proc.stderr and proc.poll() is not None else "")
    _, port, url = line.split()
    return int(port), url


async def player(port: int, uid: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(uid.encode() + b"\n")
    assert await asyncio.wait_for(reader.readline(), 5) == b"welcome\n"
    return reader, writer


def ban_rows(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute("SELECT player_key FROM bans_book")]
    finally:
        conn.close()


@dataclass
class Seen:
    rc: int
    out: str
    err: str
    other_kicked: bool  # the player still connected at SIGTERM saw its connection closed
    wal_left: bool  # the store's -wal file is still there (the store was not closed)
    listener_url: str


async def run_until_sigterm(tmp_path: Path, state: Path, *args: str) -> Seen:
    """Start the server, kick one player by a Hive ban whose write is held, SIGTERM it; return what was seen."""
    env = {
        "PATH": "/usr/bin:/bin",
        "GS_HOOKS_STATE": str(state),
        "GS_HOOKS_LISTEN": "127.0.0.1:0",
        "GS_HOOKS_HIVE_AUTH_KEY": HIVE_KEY,
        "GS_HOOKS_HIVE_GAME_INDEX": "539",
    }
    proc = start(env, *args)
    try:
        port, url = await read_ready(proc)
        banned, other = await player(port, "7101"), await player(port, "7102")
        lock = sqlite3.connect(state, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")  # the store's next write waits for us
        now = datetime.now(KST) - timedelta(minutes=1)
        async with Sandbox.serve(port=0, clock=FakeClock()) as sb, anyio.create_task_group() as tg:
            sb.hive.register(url + "/hive/suspensions", HIVE_KEY, 539)
            item = {
                "player_id": 7101,
                "status": "P",
                "start_date": now.strftime("%Y-%m-%d %H:%M:%S"),
                "end_date": "9999-12-31 00:00:00",
            }
            tg.start_soon(sb.hive.push_suspensions, [item])
            assert await asyncio.wait_for(banned[0].read(), 10) == b""  # enforced: kicked before the write
            proc.send_signal(signal.SIGTERM)
            await anyio.sleep(0.5)
            lock.execute("ROLLBACK")  # the pending write may go on now
            lock.close()
            try:
                other_kicked = await asyncio.wait_for(other[0].read(), 10) == b""
            except (TimeoutError, ConnectionError):
                other_kicked = False
            rc = await asyncio.to_thread(proc.wait, 30)
            tg.cancel_scope.cancel()
        for _, writer in (banned, other):
            writer.close()
        out, err = proc.communicate(timeout=10)
        wal_left = await anyio.Path(f"{state}-wal").exists()
        return Seen(rc, out, err, other_kicked, wal_left, url)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


async def test_sigterm_flushes_then_closes_the_hooks_and_exits_0(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite3"
    seen = await run_until_sigterm(tmp_path, state)
    assert seen.rc == 0, seen.err
    assert "WARNING gs_hooks: received SIGTERM: shutting down (flushing, then closing)" in seen.err
    assert "Traceback" not in seen.err, seen.err
    assert "hooks closed" in seen.out
    assert seen.other_kicked  # kicked with reason shutdown: the README's kick_player closed the connection
    assert not seen.wal_left  # the store was closed (its WAL checkpointed) after the flushes
    assert ban_rows(state) == ["7101"]  # the ban whose write was pending at SIGTERM reached the store
    async with httpx.AsyncClient(timeout=2) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(seen.listener_url + "/healthz")  # the listener is closed


async def test_sigterm_with_a_player_who_stopped_reading_still_shuts_down(tmp_path: Path) -> None:
    """The README's kick_player waits for the peer to take its output: a player who stopped reading must not keep
    the process from shutting down (the kick grace bounds it; before, it waited forever)."""
    env = {"PATH": "/usr/bin:/bin", "GS_HOOKS_STATE": str(tmp_path / "state.sqlite3"), "GS_HOOKS_LISTEN": "127.0.0.1:0"}
    proc = start(env)
    try:
        port, _ = await read_ready(proc)
        reader, writer = await player(port, "7201")  # a player who reads
        deaf = socket.socket()
        deaf.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        deaf.connect(("127.0.0.1", port))
        deaf.sendall(b"7202\nflood\n")  # logs in, gets flooded, never reads
        await anyio.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.to_thread(proc.wait, 60)  # a hang fails here
        assert await asyncio.wait_for(reader.read(), 10) == b""  # the reading player was kicked and closed
        out, err = proc.communicate(timeout=10)
        assert rc == 0, err
        assert "hooks closed" in out and "Traceback" not in err, err
        writer.close()
        deaf.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
