"""The kick engine's safety net and kick log, on the injected clock (no sockets: connections are recorded).

The grace starts when ``on_kick`` is called: a connection still open when it ends is closed by force and that is
logged once (rate-limited), an async ``on_kick`` still running then is cancelled; a connection ``on_kick`` closed is
left alone; whoever awaits a kick waits for its callbacks at most the grace, and a ban batch not at all; without a
running task group a connection left open is closed at once; ``aclose()`` closes those still in their grace. Kicks
are logged at INFO on ``gs_hooks.kicks``. The ban batch's fast path stays free of coroutines while callbacks are
sync.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable

import anyio
import anyio.lowlevel
import pytest

import gs_hooks
from gs_hooks import FakeClock, KickRequest
from gs_hooks.bans import Ban
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


async def test_the_grace_starts_when_an_async_on_kick_is_called(anyio_backend: str) -> None:
    """An async on_kick that says goodbye for longer than the grace: when the grace ends (counted from the call)
    the callback is cancelled, the connection closed by force, and ``hooks.kick`` returns."""
    clock = FakeClock()
    closed: list[str] = []
    cancelled: list[str | None] = []
    returned: list[int] = []

    async def slow_goodbye(request: KickRequest) -> None:
        try:
            await clock.sleep(5)  # says goodbye for 5 s, then would close
        except anyio.get_cancelled_exc_class():
            cancelled.append(request.session.player_id)
            raise
        request.session.close()

    hooks = gs_hooks.setup(gs_hooks.Config(), on_kick=slow_goodbye, clock=clock)
    async with hooks, anyio.create_task_group() as tg:
        (session,) = open_sessions(hooks, 1, closed)

        async def kick() -> None:
            returned.append(await hooks.kick(session, "ban"))

        tg.start_soon(kick)
        await clock.advance(1.9)
        assert closed == [] and returned == [] and hooks.kick_watch.armed == 1  # armed at the call
        await clock.advance(0.1)
        assert closed == ["c0"] and cancelled == ["p0"] and returned == [1]
        assert hooks.kick_watch.forced == 1 and hooks.kick_watch.overran == 1 and hooks.kick_watch.armed == 0


async def test_a_kick_waits_for_an_async_on_kick_only_until_it_ends(anyio_backend: str) -> None:
    """An async on_kick that closes after 0.5 s: ``hooks.kick`` returns then (not at the grace), and the net has
    nothing to do; one that ends without closing is closed when the grace counted from its call ends."""
    clock = FakeClock()
    closed: list[str] = []
    returned: list[int] = []

    async def goodbye(request: KickRequest) -> None:
        await clock.sleep(0.5)
        if request.reason == "ban":
            await request.session.aclose()

    hooks = gs_hooks.setup(gs_hooks.Config(), on_kick=goodbye, clock=clock)
    async with hooks, anyio.create_task_group() as tg:
        first, second = open_sessions(hooks, 2, closed)

        async def kick(session: gs_hooks.Session, reason: str) -> None:
            returned.append(await hooks.kick(session, reason))

        tg.start_soon(kick, first, "ban")
        await clock.advance(0.5)
        assert closed == ["c0"] and returned == [1]
        tg.start_soon(kick, second, "forgot")
        await clock.advance(0.5)
        assert closed == ["c0"] and returned == [1, 1]  # its callback ended: the kick returned, the net waits
        await clock.advance(hooks.kick_watch.grace_s - 0.6)
        assert closed == ["c0"]
        await clock.advance(0.1)
        assert closed == ["c0", "c1"] and hooks.kick_watch.forced == 1 and hooks.kick_watch.overran == 0


async def test_a_hanging_async_on_kick_holds_up_no_other_kick_of_a_ban_batch(anyio_backend: str) -> None:
    """A batch of three bans whose first player's on_kick never ends: the batch is applied without waiting for it,
    every on_kick was called in the batch's order, and the first connection is closed by force at the grace."""
    clock = FakeClock()
    closed: list[str] = []
    handed: list[str | None] = []

    async def goodbye(request: KickRequest) -> None:
        if request.session.player_id == "p0":
            await anyio.sleep_forever()  # a peer that never takes the goodbye
        await request.session.aclose()

    def on_kick(request: KickRequest) -> Awaitable[None]:
        handed.append(request.session.player_id)  # called in the batch's order, at once
        return goodbye(request)

    hooks = gs_hooks.setup(gs_hooks.Config(state_path=":memory:"), on_kick=on_kick, clock=clock)
    async with hooks:
        open_sessions(hooks, 3, closed)
        now = clock.now()
        with anyio.fail_after(5):  # the clock does not move: nothing may wait for the grace
            applied = await hooks.bans.apply(
                [Ban(player_key=p, source="api", status="permanent", starts_at=now) for p in ("p0", "p1", "p2")]
            )
        assert [b.player_key for b in applied] == ["p0", "p1", "p2"]
        assert handed == ["p0", "p1", "p2"]
        await clock.settle()
        assert sorted(closed) == ["c1", "c2"] and len(hooks.registry) == 0  # the callbacks run side by side
        await clock.advance(hooks.kick_watch.grace_s)
        assert closed[2:] == ["c0"] and hooks.kick_watch.overran == 1


async def test_a_raising_async_on_kick_closes_the_connection(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    closed: list[str] = []

    async def on_kick(request: KickRequest) -> None:
        await anyio.lowlevel.checkpoint()
        raise RuntimeError("the game's kick failed")

    hooks = gs_hooks.setup(gs_hooks.Config(), on_kick=on_kick, clock=FakeClock())
    with caplog.at_level(logging.ERROR, logger="gs_hooks.kicks"):
        async with hooks:
            open_sessions(hooks, 1, closed)
            assert await hooks.kick("p0") == 1
            assert closed == ["c0"]  # the default close, at once
    assert any("on_kick raised" in r.getMessage() for r in caplog.records)


async def test_without_running_hooks_async_callbacks_run_side_by_side_bounded_by_the_grace(anyio_backend: str) -> None:
    """No task group to run them in: the caller runs the batch's async callbacks concurrently, for the grace at
    most, then closes what they left open."""
    clock = FakeClock()
    closed: list[str] = []
    returned: list[int] = []

    async def on_kick(request: KickRequest) -> None:
        if request.session.player_id == "p0":
            await anyio.sleep_forever()
        await request.session.aclose()

    hooks = gs_hooks.setup(gs_hooks.Config(), on_kick=on_kick, clock=clock)
    sessions = open_sessions(hooks, 2, closed)
    async with anyio.create_task_group() as tg:

        async def kick() -> None:
            returned.append(await hooks.kicker.kick_sessions(tuple(sessions), "ban"))

        tg.start_soon(kick)
        await clock.settle()
        assert closed == ["c1"] and returned == []
        await clock.advance(hooks.kick_watch.grace_s)
        assert closed == ["c1", "c0"] and returned == [2]


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


async def test_aclose_cancels_the_async_on_kicks_still_running_and_closes_their_connections(anyio_backend: str) -> None:
    closed: list[str] = []
    cancelled: list[str] = []

    async def on_kick(request: KickRequest) -> None:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled.append(str(request.session.player_id))
            raise

    hooks = gs_hooks.setup(gs_hooks.Config(), on_kick=on_kick, clock=FakeClock())
    async with hooks:
        open_sessions(hooks, 2, closed)
        assert hooks.kicker.kick_nowait(tuple(hooks.registry), "shutdown") == 2  # started, not awaited
        await anyio.lowlevel.checkpoint()
    assert sorted(closed) == ["c0", "c1"] and sorted(cancelled) == ["p0", "p1"]


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
