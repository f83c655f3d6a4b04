"""Issue 13.12: the Gamebase client's requests do not flood httpx's INFO log; turned on, they stay token-masked."""

from __future__ import annotations

import logging

import pytest
from gamebase_client_support import serve_gamebase

pytestmark = pytest.mark.anyio


def _httpx_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "httpx" and r.getMessage().startswith("HTTP Request:")]


async def test_gamebase_requests_are_not_logged_at_info_but_the_games_own_are(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with serve_gamebase() as env:
        env.sim.add_member("u1")
        token = env.sim.issue_token("u1")
        client = env.client()
        caplog.set_level(logging.INFO)  # what logging.basicConfig(level=logging.INFO) gives a game
        await client.verify_token("u1", token)
        await client.under_maintenance()
        await env.http.get(env.url + "/_sandbox/gamebase/state")  # the game's own httpx request: left alone
        lines = _httpx_lines(caplog)
        assert [r.levelno for r in lines] == [logging.INFO]
        assert "/_sandbox/gamebase/state" in lines[0].getMessage()

        # turned on explicitly: our lines are kept (at DEBUG), with the token masked
        caplog.clear()
        caplog.set_level(logging.DEBUG, logger="httpx")
        await client.verify_token("u1", token)
        (line,) = _httpx_lines(caplog)
        assert line.levelno == logging.DEBUG and line.levelname == "DEBUG"
        assert "/tokens/***" in line.getMessage() and token not in line.getMessage()
