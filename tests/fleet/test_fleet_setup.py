"""Fleet mode as a game gets it: two hooks made by ``gs_hooks.setup()`` from environment settings only (the README's
"Running a fleet"), on one real redis-server, against the sandbox. No part is wired by hand: duplicate login
applies across the two, the collector gets one summed CCU sample per server id and slot, the web-store profile of
a player logged in on the other hooks is answered by that hooks' callback, and the GamePot history is the fleet's.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TypeVar

import anyio
import pytest
from fleet_ccu_support import GAME, future_slots, sandbox_kwargs
from fleet_support import RedisServer

import gs_hooks
from gs_hooks import (
    FakeClock,
    KickRequest,
    WebstoreChannel,
    WebstoreCharacter,
    WebstoreProfile,
    WebstoreServer,
)
from gs_hooks._store import Store
from gs_hooks._time import format_kst
from gs_hooks.ccu import CcuProblem
from gs_hooks.fleet._history import FleetCcuHistory
from gs_hooks.sandbox import Sandbox

pytestmark = pytest.mark.anyio

PLAYER = "7101"
T = TypeVar("T")


def fleet_env(redis: RedisServer, tmp_path: Path, name: str, **more: str) -> dict[str, str]:
    """The README's fleet settings (plus short periods for a test) for one process."""
    return {
        "GS_HOOKS_STATE": str(tmp_path / f"{name}.sqlite3"),
        "GS_HOOKS_SERVER_ID": "s1",
        "GS_HOOKS_REDIS_URL": redis.url,
        "GS_HOOKS_GAME": GAME,
        "GS_HOOKS_FLEET_HEARTBEAT_S": "0.5",
        "GS_HOOKS_FLEET_MEMBER_TTL_S": "2",
        "GS_HOOKS_FLEET_BLOCK_S": "0.3",
        **more,
    }


def gamebase_env(sb: Sandbox) -> dict[str, str]:
    return {
        "GS_HOOKS_GAMEBASE_URL": sb.urls()["gamebase_url"],
        "GS_HOOKS_GAMEBASE_APP_ID": sb.gamebase.app_id,
        "GS_HOOKS_GAMEBASE_SECRET_KEY": sb.gamebase_secret,
        "GS_HOOKS_GAMEBASE_BAN_POLL_S": "0",
    }


async def eventually(check: Callable[[], bool], *, within_s: float = 20.0) -> None:
    """Wait (polling) until ``check()``: the other process's answer comes over Redis in real time."""
    with anyio.fail_after(within_s):
        while not check():
            await anyio.sleep(0.05)


# -- (a) duplicate login across the two -------------------------------------------------------------------------


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox.serve(**sandbox_kwargs()) as sb:
        sb.gamebase.add_member(PLAYER)
        yield sb


async def test_kick_older_across_two_setup_hooks_leaves_one_live_session(
    redis_server: RedisServer, sandbox: Sandbox, tmp_path: Path
) -> None:
    kicks: list[KickRequest] = []
    async with AsyncExitStack() as stack:
        hooks = []
        for i in range(2):
            env = fleet_env(
                redis_server, tmp_path, f"p{i}", GS_HOOKS_DUPLICATE_LOGIN="kick_older", **gamebase_env(sandbox)
            )
            h = gs_hooks.setup(gs_hooks.Config.from_env(env), on_kick=kicks.append)
            hooks.append(await stack.enter_async_context(h))
        token = sandbox.gamebase.issue_token(PLAYER)
        older = hooks[0].registry.open_nowait()
        await hooks[0].login(older, PLAYER, token)
        newer = hooks[1].registry.open_nowait()
        await hooks[1].login(newer, PLAYER, token)
        await eventually(lambda: not hooks[0].registry.sessions_of(PLAYER))  # kicked through p0's inbox
        assert [s.id for s in hooks[1].registry.sessions_of(PLAYER)] == [newer.id]
        assert [(k.session.id, k.reason) for k in kicks] == [(older.id, "duplicate_login")]


async def test_refuse_newer_across_two_setup_hooks_refuses_the_second_login(
    redis_server: RedisServer, sandbox: Sandbox, tmp_path: Path
) -> None:
    async with AsyncExitStack() as stack:
        hooks = []
        for i in range(2):
            env = fleet_env(
                redis_server, tmp_path, f"p{i}", GS_HOOKS_DUPLICATE_LOGIN="refuse_newer", **gamebase_env(sandbox)
            )
            hooks.append(await stack.enter_async_context(gs_hooks.setup(gs_hooks.Config.from_env(env))))
        token = sandbox.gamebase.issue_token(PLAYER)
        first = hooks[0].registry.open_nowait()
        await hooks[0].login(first, PLAYER, token)
        second = hooks[1].registry.open_nowait()
        with pytest.raises(gs_hooks.DuplicateLoginError):
            await hooks[1].login(second, PLAYER, token)
        assert second.player_id is None and not hooks[1].registry.sessions_of(PLAYER)
        assert [s.id for s in hooks[0].registry.sessions_of(PLAYER)] == [first.id]


# -- (b) the CCU sum and (d) the fleet's history ----------------------------------------------------------------


async def test_one_summed_ccu_sample_per_server_id_and_the_history_is_the_fleets(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    slot = future_slots(1)[0]  # a day ahead: Redis never finds the counts stale, the sandbox takes any minute
    clock = FakeClock(slot - 0.5)
    async with AsyncExitStack() as stack:
        sb = await stack.enter_async_context(Sandbox.serve(**sandbox_kwargs()))
        hooks = []
        for i in range(2):
            env = fleet_env(
                redis_server,
                tmp_path,
                f"p{i}",
                GS_HOOKS_CCU_URL=sb.urls()["ccu_url"],
                GS_HOOKS_CCU_COUNT="connections",
                GS_HOOKS_CCU_PERIOD_S="60",
            )
            h = gs_hooks.setup(gs_hooks.Config.from_env(env), clock=clock)
            hooks.append(await stack.enter_async_context(h))
        assert hooks[0].ccu is not None and hooks[1].ccu is not None
        for _ in range(2):
            hooks[0].registry.open_nowait()  # 2 connections on s1 here
        for _ in range(3):
            hooks[1].registry.open_nowait()  # and 3 there
        sent = [s for s in sb.ccu.samples_for(GAME) if s.date == format_kst(slot)]
        with anyio.fail_after(30):
            while not sent:  # the sampler wakes at the instant; the leader freezes the sum once both reported
                await clock.advance(0.2)
                await anyio.sleep(0.02)  # Redis, the lease and the membership run on real time
                sent = [s for s in sb.ccu.samples_for(GAME) if s.date == format_kst(slot)]
        assert [(s.server, s.user) for s in sent] == [("s1", 5)]
        assert [type(h.ccu.sampler.sink).__name__ for h in hooks if h.ccu] == ["FleetSink", "FleetSink"]
        for _ in range(10):  # a second send by either process would reach the collector meanwhile
            await clock.advance(0.2)
            await anyio.sleep(0.02)
        assert [(a.server, a.result) for a in sb.ccu.attempts if a.date == format_kst(slot)] == [("s1", 100)]
        # (d) the GamePot inquiry's and the dashboard's history is the fleet's on both processes
        with anyio.fail_after(30):
            while True:
                seen = [
                    [(s.server_id, s.users, s.state) for s in await h.gamepot_history.samples(slot, slot + 60)]
                    for h in hooks
                    if h.gamepot_history is not None
                ]
                if seen == [[("s1", 5, "delivered")]] * 2:  # the non-leader's own spool sent nothing
                    break
                await clock.advance(0.2)
                await anyio.sleep(0.02)
        for h in hooks:
            assert isinstance(h.gamepot_history, FleetCcuHistory)


async def test_a_refused_fleet_sample_reaches_the_on_ccu_problem_set_after_setup_once(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    slot = future_slots(1)[0]
    clock = FakeClock(slot - 0.5)
    problems: list[tuple[int, CcuProblem]] = []
    async with AsyncExitStack() as stack:
        sb = await stack.enter_async_context(Sandbox.serve(ccu_period_s=60, game_keys=("another_game",)))
        hooks = []
        for i in range(2):
            env = fleet_env(
                redis_server, tmp_path, f"p{i}", GS_HOOKS_CCU_URL=sb.urls()["ccu_url"], GS_HOOKS_CCU_PERIOD_S="60"
            )
            h = gs_hooks.setup(gs_hooks.Config.from_env(env), clock=clock)
            assert h.ccu is not None
            h.ccu.on_problem = lambda problem, i=i: problems.append((i, problem))  # set after setup()
            hooks.append(await stack.enter_async_context(h))
        with anyio.fail_after(30):
            while not problems:  # the collector refuses the game key: the leader's sender tells the game
                await clock.advance(0.2)
                await anyio.sleep(0.02)
        for _ in range(10):
            await clock.advance(0.2)
            await anyio.sleep(0.02)
        leader = [i for i, h in enumerate(hooks) if h.fleet is not None and h.fleet.is_leader]
        assert [(i, p.server, p.date, p.outcome) for i, p in problems] == [
            (leader[0], "s1", format_kst(slot), "config_fault")
        ]
        # hooks.resend_refused() on any process makes the fleet's refused sample sendable again (README)
        assert await hooks[1 - leader[0]].resend_refused() == 1


# -- (c) the web-store profile answered by the player's process ------------------------------------------------


def profile(name: str) -> WebstoreProfile:
    character = WebstoreCharacter(character_id="A", character_name=name, character_level="7")
    return WebstoreProfile(
        servers=(WebstoreServer(server_id="1", server_name=name, channels=(WebstoreChannel(characters=(character,)),)),)
    )


class Game:
    """One process's web-store callback: the profile of the players logged in here, None for the others."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.here: set[str] = set()
        self.calls: list[str] = []

    async def __call__(self, cs_code: str) -> WebstoreProfile | None:
        self.calls.append(cs_code)
        return profile(self.name) if cs_code in self.here else None


async def test_the_webstore_profile_of_a_player_on_the_other_hooks_is_answered_by_its_callback(
    redis_server: RedisServer, sandbox: Sandbox, tmp_path: Path
) -> None:
    games = [Game("proc0"), Game("proc1")]
    async with AsyncExitStack() as stack:
        hooks = []
        for i, game in enumerate(games):
            env = fleet_env(
                redis_server,
                tmp_path,
                f"p{i}",
                GS_HOOKS_LISTEN="127.0.0.1:0",
                GS_HOOKS_HIVE_WEBSTORE="true",
                **gamebase_env(sandbox),
            )
            h = gs_hooks.setup(gs_hooks.Config.from_env(env), webstore_profile=game)
            hooks.append(await stack.enter_async_context(h))
        session = hooks[1].registry.open_nowait()
        await hooks[1].login(session, PLAYER, sandbox.gamebase.issue_token(PLAYER))
        games[1].here.add(PLAYER)
        listener = hooks[0].listener
        assert listener is not None
        report = await sandbox.hive.call_webstore(listener.url + "/webstore-profile", PLAYER)  # Hive called p0
        assert report.violations == [], report.violations
        assert report.body is not None and report.body["result_code"] == 200
        assert report.body["data"][0]["server_name"] == "proc1"
        assert games[0].calls == [] and games[1].calls == [PLAYER]


# -- shutdown: a ban whose write had failed still reaches the fleet ---------------------------------------------


class FailingStore(Store):
    """A real sqlite store whose calls raise a disk error while ``failing`` is set."""

    failing = False

    def run_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self.failing:
            raise sqlite3.OperationalError("disk I/O error (injected)")
        return super().run_sync(fn)


async def test_a_ban_whose_write_failed_is_published_to_the_fleet_at_shutdown(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    hooks = [gs_hooks.setup(gs_hooks.Config.from_env(fleet_env(redis_server, tmp_path, f"p{i}"))) for i in range(2)]
    store = FailingStore(str(tmp_path / "p0.sqlite3"))
    hooks[0].services.replace_store(store)
    async with hooks[1]:
        await hooks[0].start()
        store.failing = True
        with pytest.raises(sqlite3.OperationalError):
            await hooks[0].ban(PLAYER)  # in force on p0, unsaved (the timer would retry in 30 s)
        store.failing = False
        assert hooks[0].bans.unsaved_count == 1
        assert hooks[1].bans.active_ban(PLAYER) is None  # never written: no outbox entry, nothing published
        await hooks[0].aclose()  # the fleet's flush writes it (with its outbox entry), then publishes
        outbox = sqlite3.connect(tmp_path / "p0.sqlite3")
        try:
            assert outbox.execute("select count(*) from fleet_outbox").fetchone()[0] == 0
        finally:
            outbox.close()
        await eventually(lambda: hooks[1].bans.active_ban(PLAYER) is not None)
