"""A sender without the key cannot flood the log: the Hive routes' 401s are logged once, then counted."""

from __future__ import annotations

import logging

import httpx
import pytest

import gs_hooks
from gs_hooks import FakeClock, WebstoreProfile
from gs_hooks.http import serve_http

pytestmark = pytest.mark.anyio

KEY = "hive-refusal-log-key-0001"
SHARED = "webstore-refusal-log-key-01"


async def profile(cs_code: str) -> WebstoreProfile | None:
    return None


async def test_repeated_401s_are_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="gs_hooks")
    cfg = gs_hooks.Config(
        state_path=":memory:",
        hive=gs_hooks.HiveConfig(auth_key=gs_hooks.Secret(KEY), game_index=539, webstore_key=gs_hooks.Secret(SHARED)),
    )
    hooks = gs_hooks.setup(cfg, clock=FakeClock(), webstore_profile=profile)
    async with hooks, serve_http(hooks.router, port=0) as server, httpx.AsyncClient(base_url=server.url) as client:
        for i in range(30):
            r = await client.post("/hive/suspensions", content=b"{}", headers={"authorization": f"Bearer wrong{i}"})
            assert r.status_code == 401
            r = await client.post("/webstore-profile", json={"cs_code": "c_1"}, headers={"x-gs-hooks-key": "no"})
            assert r.status_code == 401
    webhook = [r for r in caplog.records if "suspension webhook: refused (401)" in r.getMessage()]
    webstore = [r for r in caplog.records if "webstore profile: refused (401)" in r.getMessage()]
    assert len(webhook) == 1 and len(webstore) == 1, (len(webhook), len(webstore))
