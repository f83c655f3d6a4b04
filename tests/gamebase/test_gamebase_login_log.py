"""Login refusals are logged where an operator can turn them on (issue 13.12): ``gs_hooks.login`` at INFO, with
the reason, the player, the server id and the session, rate-limited per reason, never the token; Gamebase being
unreachable during a login is logged there at WARNING."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from gamebase_client_support import Env, Recorder, make_hooks, serve_gamebase

from gs_hooks import BannedError, InvalidLoginError, PlatformUnavailableError, TokenInvalidError

pytestmark = pytest.mark.anyio


@pytest.fixture
async def gb() -> AsyncIterator[Env]:
    async with serve_gamebase() as env:
        env.sim.add_member("u1")
        env.sim.add_member("u2")
        yield env


def login_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "gs_hooks.login"]


async def test_refusals_are_logged_at_info_with_reason_player_and_server(
    gb: Env, caplog: pytest.LogCaptureFixture
) -> None:
    token = gb.sim.issue_token("u1")
    forged = "forged-token-that-must-not-be-logged"
    async with make_hooks(gb, Recorder()) as hooks:
        await hooks.ban("u2", message="cheating")
        session = hooks.registry.open_nowait()
        with caplog.at_level(logging.INFO, logger="gs_hooks.login"):
            for _ in range(3):
                with pytest.raises(TokenInvalidError):
                    await hooks.login(session, "u1", forged)
            with pytest.raises(BannedError):
                await hooks.login(session, "u2", gb.sim.issue_token("u2"))
            await hooks.login(session, "u1", token)  # accepted: not a refusal
    lines = login_lines(caplog)
    # the token refusals: the first logged, the two repeats counted and summarised at shutdown
    assert [level for level, _ in lines] == [logging.INFO] * 3
    first, banned, summary = (line for _, line in lines)
    assert first.startswith(f"login refused: player 'u1' on server '0' (session {session.id}): token_invalid: ")
    assert banned.startswith(f"login refused: player 'u2' on server '0' (session {session.id}): banned: ")
    assert summary.startswith("login refused: player 'u1'") and "(2 more like this" in summary
    assert all(forged not in line and token not in line for _, line in lines)


async def test_gamebase_unreachable_during_a_login_is_a_warning(gb: Env, caplog: pytest.LogCaptureFixture) -> None:
    token = gb.sim.issue_token("u1")
    async with make_hooks(gb, Recorder()) as hooks:
        session = hooks.registry.open_nowait()
        gb.faults.http_500 = 1  # no retries in these tests: one 500 makes Gamebase unavailable
        with caplog.at_level(logging.INFO, logger="gs_hooks.login"), pytest.raises(PlatformUnavailableError):
            await hooks.login(session, "u1", token)
    ((level, line),) = login_lines(caplog)
    assert level == logging.WARNING and line.startswith("login refused: player 'u1' on server '0'")
    assert token not in line


@pytest.mark.parametrize(
    ("user_id", "shows"),
    [
        ("x" * 200_000 + "/", "'" + "x" * 40 + "'..."),  # review finding 5: a 200,185-character record before
        ({"id": ["y" * 100_000]}, "<dict>"),
        ("a\x1b[2Jb", "'a\\x1b[2Jb'"),  # a terminal escape, escaped
    ],
)
async def test_a_refused_client_value_is_logged_cut_short(
    gb: Env, caplog: pytest.LogCaptureFixture, user_id: object, shows: str
) -> None:
    async with make_hooks(gb, Recorder()) as hooks:
        session = hooks.registry.open_nowait()
        with caplog.at_level(logging.INFO, logger="gs_hooks.login"), pytest.raises(InvalidLoginError) as caught:
            await hooks.login(session, user_id, "token")  # type: ignore[arg-type]
    ((_, line),) = login_lines(caplog)
    assert line.startswith(f"login refused: player {shows} on server '0'")
    assert len(line) < 400 and len(str(caught.value)) < 400
