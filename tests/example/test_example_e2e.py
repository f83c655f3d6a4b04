"""End to end: the example game server and the sandbox as two separate processes, wired only by the
GS_HOOKS_* environment contract, driven by real TCP clients.

Observed: welcome after login, CCU samples at the sandbox collector (60 s grid, whole-minute dates), a kick on a
Hive ban push (only the banned player), notice + kick at a maintenance window's begin, an error on login during
the maintenance, and an orderly exit on SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from examples.asyncio_server.bots import Bot, SandboxAdmin

from gs_hooks import KST

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _read_until(proc: subprocess.Popen[str], pattern: str, timeout: float = 30.0) -> tuple[re.Match[str], str]:
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


@pytest.fixture
def sandbox_process() -> Iterator[tuple[str, dict[str, str]]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gs_hooks", "sandbox", "--port", "0", "--ccu-period", "60"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        m, _ = _read_until(proc, r"listening on (http://\S+)")
        settings: dict[str, str] = {}
        while True:
            line = proc.stdout.readline() if proc.stdout else ""
            if not line or line.startswith("# Ctrl-C"):
                break
            if "=" in line and line.startswith("GS_HOOKS_"):
                k, v = line.strip().split("=", 1)
                settings[k] = v
        yield m.group(1), settings
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _kst(moment: datetime) -> str:
    return moment.astimezone(KST).strftime("%Y-%m-%d %H:%M:%S")


async def test_example_against_a_separate_sandbox(tmp_path: Path, sandbox_process: tuple[str, dict[str, str]]) -> None:
    sandbox_url, settings = sandbox_process
    game_port, listen_port = _free_port(), _free_port()
    hive_key = "e2e-hive-bearer-key-0123456789"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GS_HOOKS_")}
    env |= settings
    env |= {
        "GS_HOOKS_SERVER_ID": "e2e1",
        "GS_HOOKS_STATE": str(tmp_path / "state.sqlite3"),
        "GS_HOOKS_CCU_SPOOL": str(tmp_path / "spool.sqlite3"),
        "GS_HOOKS_LISTEN": f"127.0.0.1:{listen_port}",
        "GS_HOOKS_HIVE_AUTH_KEY": hive_key,
        "GS_HOOKS_HIVE_GAME_INDEX": "539",
        "GS_HOOKS_GAMEBASE_MAINTENANCE_POLL_S": "1",
        "GS_HOOKS_GAMEBASE_MAINTENANCE_WARN_S": "4",
        "GS_HOOKS_GAMEBASE_BAN_POLL_S": "0",
        "PYTHONUNBUFFERED": "1",
    }
    started = time.monotonic()
    game = subprocess.Popen(
        [sys.executable, "-m", "examples.asyncio_server", "--port", str(game_port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    admin = SandboxAdmin(sandbox_url)
    bots = [Bot(str(2000 + i)) for i in range(1, 5)]
    try:
        await asyncio.to_thread(_read_until, game, r"game server\s+tcp://")
        await admin.register_hive(f"http://127.0.0.1:{listen_port}/hive/suspensions", hive_key, 539)

        # welcome after login
        tokens = {}
        for bot in bots:
            tokens[bot.user_id] = await admin.new_player(bot.user_id)
            await bot.connect("127.0.0.1", game_port)
            welcome = await bot.login(tokens[bot.user_id])
            assert welcome == {"op": "welcome", "player": bot.user_id, "server_id": "e2e1"}

        # malformed input: an error, never a crash
        await bots[-1].send({"op": 42})
        err = await bots[-1].expect("error")
        assert err["code"] == "malformed"

        # a Hive ban push kicks the banned player, and only them
        now = datetime.now(KST)
        report = await admin.push_suspensions(
            [{"player_id": 2001, "status": "B", "start_date": _kst(now), "end_date": _kst(now + timedelta(hours=2))}]
        )
        assert report["ok"] and report["requests"] == 1
        kick = await bots[0].expect("kick", timeout=10)
        assert kick["reason"] == "ban"
        await asyncio.wait_for(bots[0].closed.wait(), 5)
        for other in bots[1:]:
            await other.send({"op": "ping"})
            await other.expect("pong")
        again = Bot("2001")
        await again.connect("127.0.0.1", game_port)
        refused = await again.login(tokens["2001"])
        await again.close()
        assert refused["op"] == "error" and refused["code"] == "banned" and refused["ends_at"]

        # maintenance: notice, then kick at begin, then an error on login while it lasts
        begin = datetime.now(KST) + timedelta(seconds=6)
        await admin.set_maintenance(begin.isoformat(), (begin + timedelta(seconds=30)).isoformat(), "e2e maintenance")
        for bot in bots[1:]:
            notice = await bot.expect("notice", timeout=15)
            assert "e2e maintenance" in notice["text"]
        for bot in bots[1:]:
            kick = await bot.expect("kick", timeout=15)
            assert kick["reason"] == "maintenance"
        late = Bot("2002")
        await late.connect("127.0.0.1", game_port)
        answer = await late.login(tokens["2002"])
        await late.close()
        assert answer["op"] == "error" and answer["code"] == "maintenance"

        # CCU samples at the collector: whole-minute dates on the 60 s grid, our server id
        samples: list[dict[str, object]] = []
        while time.monotonic() - started < 100:
            samples = await admin.ccu_samples("e2e1")
            if samples:
                break
            await asyncio.sleep(1)
        assert samples, "no CCU sample reached the sandbox within the first grid minute"
        for s in samples:
            assert s["game"] == settings["GS_HOOKS_GAME"]
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:00", str(s["date"]))

        # SIGTERM: orderly shutdown, exit 0
        game.send_signal(signal.SIGTERM)
        rc = await asyncio.to_thread(game.wait, 20)
        assert rc == 0
    finally:
        for bot in bots:
            await bot.close()
        await admin.aclose()
        if game.poll() is None:
            game.kill()
            game.wait()
        out = ""
        if game.stdout is not None:
            out = game.stdout.read()
            game.stdout.close()
        assert "Traceback" not in out, out
