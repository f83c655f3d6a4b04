"""Player ids arriving from the platforms (issue 13.1): Hive's integer ``player_id`` and Gamebase's string
``userId`` map to the same canonical key, and a key that cannot be a player id is refused without stopping the
rest (the webhook answers 422 and changes nothing; the poller skips the row and keeps polling)."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

import gs_hooks
from gs_hooks import KST, FakeClock
from gs_hooks.bans._poller import BanPoller
from gs_hooks.http import serve_http
from gs_hooks.sandbox import Sandbox

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=KST)
KEY = "hive-webhook-test-key-0002"


async def test_hive_and_gamebase_ids_meet_on_one_key(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock(T0)
    kicks: list[gs_hooks.KickRequest] = []
    async with Sandbox.serve(port=0, clock=clock) as sb:
        sim = sb.gamebase
        sim.add_ban("7101", T0 - timedelta(minutes=5), T0 + timedelta(days=1), message="gamebase ban")
        for bad in ("..", " 7102", "a/b", ""):
            sim.add_ban(bad, T0 - timedelta(minutes=5), None)
        cfg = gs_hooks.Config(
            state_path=str(tmp_path / "state.db"),
            hive=gs_hooks.HiveConfig(
                auth_key=gs_hooks.Secret(KEY), game_index=539, player_key_format="x" * 110 + "{id}"
            ),
            gamebase=gs_hooks.GamebaseConfig(
                url=sb.url,
                app_id=sb.gamebase_app_id,
                secret_key=gs_hooks.Secret(sb.gamebase_secret),
                maintenance_poll_s=0,
                retries=0,
                ban_poll_s=60.0,
            ),
        )
        hooks = gs_hooks.setup(cfg, on_kick=kicks.append, clock=clock)
        async with hooks, serve_http(hooks.router, port=0) as server, httpx.AsyncClient() as http:
            (poller,) = [c for c in hooks.components if isinstance(c, BanPoller)]
            poller.player_key_format = "{id}"  # the poller on plain ids; the webhook on the long format below
            session = hooks.registry.open_nowait()
            hooks.bind_player(session, 7101)  # type: ignore[arg-type]  # the int a JSON login carried
            with caplog.at_level(logging.WARNING, logger="gs_hooks.gamebase.bans"):
                await poller.poll_once()  # the bad rows do not stop the good one
            assert [k.session for k in kicks] == [session]
            assert [b.player_key for b in hooks.bans.active_bans()] == ["7101"]
            assert "rows of 4 userIds skipped" in caplog.text
            assert poller.watermark is not None

            # Hive: a player id that the format turns into a key over 128 characters is refused, nothing changes
            def batch(pid: int) -> bytes:
                item = {"player_id": pid, "status": "P", "start_date": "2026-03-01 11:00:00"}
                item["end_date"] = "9999-12-31 00:00:00"
                return json.dumps({"game_index": 539, "server_url": "http://game", "data": [item]}).encode()

            headers = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
            url = server.url + "/hive/suspensions"
            # 10**18: 19 digits (an int64), 129 characters with the format
            refused = await http.post(url, content=batch(10**18), headers=headers)
            assert refused.status_code == 400 and refused.json()["result_code"] == 422
            assert "longer than 128" in refused.json()["result_message"]
            assert [b.player_key for b in hooks.bans.active_bans()] == ["7101"]
            accepted = await http.post(url, content=batch(42), headers=headers)
            assert accepted.json() == {"result_code": 0}
            assert hooks.bans.active_ban("x" * 110 + "42") is not None
