"""The kick engine's safety net and kick log, on the injected clock (no sockets: connections are recorded).

When ``on_kick`` returns (sync) or finishes (async) and the connection is still open, it is closed after the grace
and that is logged once (rate-limited); a connection ``on_kick`` closed is left alone; without a running task
group it is closed at once; ``aclose()`` closes those still in their grace. Kicks are logged at INFO on
``gs_hooks.kicks``. The ban batch's fast path stays free of coroutines while callbacks are sync.
"""

from __future__ import annotations

import logging

import anyio
import pytest

import gs_hooks
from gs_hooks import FakeClock, KickRequest
from kick_support import FakeConnection

pytestmark = pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])


def open_sessions(hooks: gs_hooks.Hooks, n: int, closed: list[str]) -> list[gs_hooks.Session]:
    out = []
    for i in range(n):
        session = hooks.registry.open_nowait(connection=FakeConnection(lambda i=i: closed.append(f"c{i}")))
        hooks.bind_player(session, f"p{i}")
        out.append(session)
    return out


def net_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "gs_hooks.kicks" and r.levelno == logging.WARNING]


async def test_a_connection_on_kick_left_open_is_closed_after_the_grace_and_logged_once(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    closed: list[str] = []
    hooks = gs_hooks.setup(gs_hooks.Config(), on_kick=lambda request: None, clock=clock)
    with caplog.at_level(logging.INFO, logger="gs_hooks"):
        async with hooks:
            sessions = open_sessions(hooks, 3, closed)
            for session in sessions:
                assert await hooks.kick(session, "ban") == 1
            assert closed == [] and hooks.kick_watch.armed == 3
            await clock.advance(1.9)
            assert closed == []
            await clock.advance(0.1)
            assert closed == ["c0", "c1", "c2"] and hooks.kick_watch.forced == 3
            assert hooks.kick_watch.armed == 0
            warnings = net_warnings(caplog)
            assert len(warnings) == 1  # the first; the two others are counted
            assert "player 'p0'" in warnings[0] and "kick reason 'ban'" in warnings[0] and "2 s" in warnings[0]
            # a later kick whose on_kick closes it is left alone
            (late,) = open_sessions(hooks, 1, closed)
            hooks.on_kick = lambda request: request.session.close()
            await hooks.kick(late, "manual")
            await clock.advance(5)
            assert hooks.kick_watch.forced == 3
    assert any("(2 more like this" in w for w in net_warnings(caplog))  # summarised at shutdown


async def test_the_grace_starts_when_an_async_on_kick_finishes(anyio_backend: str) -> None:
    clock = FakeClock()
    closed: list[str] = []

    async def slow_goodbye(request: KickRequest) -> None:
        await clock.sleep(5)  # says goodbye for 5 s, then forgets to close

    hooks = gs_hooks.setup(gs_hooks.Config(), on_kick=slow_goodbye, clock=clock)
    async with hooks, anyio.create_task_group() as tg:
        (session,) = open_sessions(hooks, 1, closed)
        tg.start_soon(hooks.kick, session, "ban")
        await clock.advance(4.9)
        assert closed == [] and hooks.kick_watch.armed == 0  # on_kick still running: not armed yet
        await clock.advance(0.1)
        assert hooks.kick_watch.armed == 1
        await clock.advance(1.9)
        assert closed == []
        await clock.advance(0.1)
        assert closed == ["c0"]


async def test_without_running_hooks_a_connection_left_open_is_closed_at_once(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    closed: list[str] = []
    hooks = gs_hooks.setup(gs_hooks.Config(), on_kick=lambda request: None, clock=FakeClock())
    (session,) = open_sessions(hooks, 1, closed)
    with caplog.at_level(logging.WARNING, logger="gs_hooks.kicks"):
        assert await hooks.kick(session) == 1
    assert closed == ["c0"]
    assert "at once (the hooks are not running)" in net_warnings(caplog)[0]


async def test_aclose_closes_the_connections_still_in_their_grace(anyio_backend: str) -> None:
    closed: list[str] = []
    hooks = gs_hooks.setup(gs_hooks.Config(), on_kick=lambda request: None, clock=FakeClock())
    async with hooks:
        open_sessions(hooks, 2, closed)
        assert await hooks.kick("p0") == 1 and await hooks.kick("p1") == 1
        assert closed == []
    assert closed == ["c0", "c1"]


async def test_the_sync_path_arms_the_net_without_a_coroutine(anyio_backend: str) -> None:
    """The ban batch's fast path: with a sync on_kick, kicking returns the count itself (no coroutine per kick),
    also when the net is armed for each session."""
    closed: list[str] = []
    seen: list[str] = []
    hooks = gs_hooks.setup(gs_hooks.Config(), on_kick=lambda request: seen.append(request.reason), clock=FakeClock())
    async with hooks:
        sessions = open_sessions(hooks, 3, closed)
        assert hooks.kicker.kick_nowait(tuple(sessions), "ban") == 3
        assert hooks.kicker.kick_player_nowait("p9", "", None) == 0
        assert seen == ["ban"] * 3 and hooks.kick_watch.armed == 3 and len(hooks.registry) == 0


async def test_kicks_are_logged_at_info_rate_limited_per_reason(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    closed: list[str] = []
    hooks = gs_hooks.setup(gs_hooks.Config(sessions=gs_hooks.SessionsConfig(server_id="s1")), clock=FakeClock())
    sessions = open_sessions(hooks, 3, closed)
    with caplog.at_level(logging.INFO, logger="gs_hooks.kicks"):
        await hooks.kick(sessions[0], "ban", message="cheating")
        await hooks.kick(sessions[1], "ban", message="cheating")
        await hooks.kick(sessions[2], "maintenance", message="patch")
    lines = [r.getMessage() for r in caplog.records if r.name == "gs_hooks.kicks"]
    assert lines == [
        f"kicked session {sessions[0].id} (player 'p0', server 's1'): reason 'ban', message 'cheating'",
        f"kicked session {sessions[2].id} (player 'p2', server 's1'): reason 'maintenance', message 'patch'",
    ]
    assert closed == ["c0", "c1", "c2"]  # no on_kick: closed at once


async def test_kicks_are_not_logged_unless_the_operator_turns_the_logger_on(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    hooks = gs_hooks.setup(gs_hooks.Config(), clock=FakeClock())
    (session,) = open_sessions(hooks, 1, [])
    with caplog.at_level(logging.WARNING, logger="gs_hooks"):
        await hooks.kick(session, "ban")
    assert [r for r in caplog.records if r.name == "gs_hooks.kicks"] == []
