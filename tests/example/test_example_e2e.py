"""End to end: the example game server and the sandbox as two separate processes, wired only by the
GS_HOOKS_* environment contract, driven by real TCP clients.

Observed: welcome after login, CCU samples at the sandbox collector (60 s grid, whole-minute dates), a kick on a
Hive ban push (only the banned player), notice + kick at a maintenance window's begin, an error on login during
the maintenance, and an orderly exit on SIGTERM.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from example_support import HIVE_KEY, example_env, free_port, start_example
from examples.asyncio_server.bots import Bot, SandboxAdmin

from gs_hooks import KST
from process_support import stop

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.realclock, pytest.mark.timeout(240)]


def _kst(moment: datetime) -> str:
    return moment.astimezone(KST).strftime("%Y-%m-%d %H:%M:%S")


async def test_example_against_a_separate_sandbox(tmp_path: Path, sandbox_process: tuple[str, dict[str, str]]) -> None:
    sandbox_url, settings = sandbox_process
    game_port, listen_port = free_port(), free_port()
    env = example_env(settings, tmp_path, listen_port)
    started = time.monotonic()
    game = await asyncio.to_thread(start_example, env, game_port)
    admin = SandboxAdmin(sandbox_url)
    bots = [Bot(str(2000 + i)) for i in range(1, 5)]
    try:
        await admin.register_hive(f"http://127.0.0.1:{listen_port}/hive/suspensions", HIVE_KEY, 539)

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
        out = stop(game)
        assert "Traceback" not in out, out
