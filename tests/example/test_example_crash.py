"""Crash and restart of the example server (issue 9): ``kill -9`` in the middle of a CCU outage, restart on the
same state, recovery → every sample delivered exactly once, and bans intact; then SIGTERM → orderly shutdown.

The sandbox runs as its own process; the example is configured only through GS_HOOKS_* variables.
"""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from example_support import HIVE_KEY, example_env, free_port, start_example
from examples.asyncio_server.bots import Bot, SandboxAdmin

from gs_hooks import KST
from process_support import stop

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.realclock, pytest.mark.timeout(240)]


async def _attempts(http: httpx.AsyncClient, sandbox_url: str) -> list[dict[str, object]]:
    r = await http.get(f"{sandbox_url}/_sandbox/ccu/attempts")
    r.raise_for_status()
    return list(r.json()["attempts"])


async def test_kill_9_mid_outage_then_restart_delivers_exactly_once_and_keeps_bans(
    tmp_path: Path, sandbox_process: tuple[str, dict[str, str]]
) -> None:
    sandbox_url, settings = sandbox_process
    game_port, listen_port = free_port(), free_port()
    # a short backoff so the restarted process resends promptly
    env = example_env(settings, tmp_path, listen_port, GS_HOOKS_CCU_BACKOFF_BASE_S="1", GS_HOOKS_CCU_BACKOFF_MAX_S="2")
    admin = SandboxAdmin(sandbox_url)
    http = httpx.AsyncClient(timeout=10)
    game = None
    restarted = None
    bots: list[Bot] = []
    try:
        # the collector's outage, from before the example starts so that no grid slot can fall before it: every
        # CCU request answers 300 (DB error: resend) until cleared
        r = await http.post(f"{sandbox_url}/_sandbox/faults", json={"route": "ccu", "kind": "result", "code": 300})
        r.raise_for_status()
        game = await asyncio.to_thread(start_example, env, game_port)
        await admin.register_hive(f"http://127.0.0.1:{listen_port}/hive/suspensions", HIVE_KEY, 539)
        # a player logs in, another is banned by Hive (recorded durably before the webhook answers 0)
        for uid in ("3001", "3002"):
            token = await admin.new_player(uid)
            bot = Bot(uid)
            bots.append(bot)
            await bot.connect("127.0.0.1", game_port)
            assert (await bot.login(token))["op"] == "welcome"
        now = datetime.now(KST)
        end = now + timedelta(hours=3)
        report = await admin.push_suspensions(
            [
                {
                    "player_id": 3002,
                    "status": "B",
                    "start_date": now.strftime("%Y-%m-%d %H:%M:%S"),
                    "end_date": end.strftime("%Y-%m-%d %H:%M:%S"),
                }
            ]
        )
        assert report["ok"]
        assert (await bots[1].expect("kick"))["reason"] == "ban"

        # the outage meets the reporter's first send (the first grid slot after the start)
        deadline = time.monotonic() + 75
        failed: list[dict[str, object]] = []
        while time.monotonic() < deadline and not failed:
            failed = [a for a in await _attempts(http, sandbox_url) if a.get("result") == 300]
            await asyncio.sleep(0.5)
        assert failed, "the reporter never tried to send during the outage"
        assert await admin.ccu_samples("e2e1") == []

        # kill -9 in the middle of the outage: no shutdown, no flush
        game.send_signal(signal.SIGKILL)
        await asyncio.to_thread(game.wait, 10)
        stop(game)

        # the outage ends; restart on the same state
        (await http.delete(f"{sandbox_url}/_sandbox/faults")).raise_for_status()
        restarted = await asyncio.to_thread(start_example, env, game_port)
        samples: list[dict[str, object]] = []
        failed_dates = {str(a.get("date")) for a in failed if a.get("date")}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            samples = await admin.ccu_samples("e2e1")
            if {str(s["date"]) for s in samples} >= failed_dates and samples:
                break
            await asyncio.sleep(0.5)
        dates = [str(s["date"]) for s in samples]
        assert dates, "the spooled sample was not delivered after the restart"
        assert failed_dates <= set(dates), (failed_dates, dates)
        assert len(dates) == len(set(dates)), f"a sample was saved twice: {dates}"
        stats = (await http.get(f"{sandbox_url}/_sandbox/ccu/stats")).json()
        assert stats["duplicates_saved"] == 0

        # bans survived the crash: the banned player is still refused, the other is welcome
        for uid, expected in (("3002", "error"), ("3001", "welcome")):
            bot = Bot(uid)
            bots.append(bot)
            await bot.connect("127.0.0.1", game_port)
            answer = await bot.login(await admin.new_player(uid))
            assert answer["op"] == expected, answer
            if expected == "error":
                assert answer["code"] == "banned"

        # SIGTERM: orderly shutdown (spool flushed or kept, listener closed), exit 0, nothing left pending
        restarted.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(restarted.wait, 20) == 0
        out = stop(restarted)
        assert "Traceback" not in out, out
        assert "Task was destroyed but it is pending" not in out, out
        assert "shutting down" in out
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{listen_port}/healthz")
    finally:
        for bot in bots:
            await bot.close()
        await admin.aclose()
        await http.aclose()
        if game is not None:
            stop(game)
        if restarted is not None:
            stop(restarted)
