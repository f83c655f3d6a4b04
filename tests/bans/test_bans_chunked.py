"""A large ban batch yields to the event loop between slices of kicks, and keeps its guarantees while it does.

The enforcer measures its slices on ``hooks.bans.enforcer.slice_clock``; these tests give it one that steps
0.4 ms each time it is read (once when the batch arrives, then once per ban), so with the default 1 ms slice a
batch yields every two or three bans on any machine. Nothing here depends on real time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

import anyio
import anyio.lowlevel
import pytest

import gs_hooks
from gs_hooks import KST, FakeClock
from gs_hooks.bans import Ban, BanEvent, BanTimer
from gs_hooks.bans._persistence import INLINE_MEMORY_ROWS

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=KST)
N = 40  # players banned in a batch: ~15 slices with the stepping clock


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class SteppingClock:
    """A slice clock that moves ``step`` seconds each time it is read."""

    def __init__(self, step: float = 0.0004) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


class Game:
    """Hooks on a ``:memory:`` store with the stepping slice clock, recording kicks and ``on_ban`` events."""

    def __init__(self, *, duplicate_login: str = "refuse_newer", stepping: bool = True) -> None:
        self.kicks: list[gs_hooks.KickRequest] = []
        self.events: list[BanEvent] = []
        self.clock = FakeClock(T0)
        config = gs_hooks.Config(
            state_path=":memory:", sessions=gs_hooks.SessionsConfig(duplicate_login=duplicate_login)
        )
        self.hooks = gs_hooks.setup(config, on_kick=self.kicks.append, on_ban=self.events.append, clock=self.clock)
        if stepping:
            self.hooks.bans.enforcer.slice_clock = SteppingClock()

    def login(self, player: str) -> gs_hooks.Session:
        session = self.hooks.registry.open_nowait()
        self.hooks.bind_player(session, player)
        return session

    @property
    def timer(self) -> BanTimer:
        (timer,) = [c for c in self.hooks.components if isinstance(c, BanTimer)]
        return timer


def ban(player: str, ends_at: datetime | None = None, *, starts_at: datetime = T0) -> Ban:
    status = "permanent" if ends_at is None else "temporary"
    return Ban(player_key=player, source="hive", status=status, starts_at=starts_at, ends_at=ends_at)


def players(n: int = N) -> list[str]:
    return [f"p{i}" for i in range(n)]


async def beside(game: Game, batch: list[Ban], at_yield: Callable[[], object]) -> list[int]:
    """Apply ``batch`` with a neighbour task on the same loop, which notes the live session count each time it
    runs and calls ``at_yield()`` the first time it finds the batch part-way (some kicks done, not all).
    Returns the counts it saw."""
    registry = game.hooks.registry
    total = len(registry)
    seen: list[int] = []
    done = False

    async def neighbour() -> None:
        called = False
        while not done:
            seen.append(len(registry))
            if not called and total - len(batch) < len(registry) < total:
                called = True
                at_yield()
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        tg.start_soon(neighbour)
        await anyio.lowlevel.checkpoint()  # it runs once before the batch arrives
        await game.hooks.bans.apply(batch)
        done = True
    return seen


async def test_a_task_beside_a_large_batch_runs_before_the_batch_ends() -> None:
    game = Game()
    async with game.hooks:
        sessions = [game.login(p) for p in players()]
        seen = await beside(game, [ban(p) for p in players()], lambda: None)
        # the neighbour ran while the batch was part-way, several times, and saw the kicks progress in order
        part_way = [n for n in seen if 0 < n < N]
        assert len(set(part_way)) >= 5
        assert seen == sorted(seen, reverse=True)
        assert len(game.hooks.registry) == 0
    assert [k.session.id for k in game.kicks] == [s.id for s in sessions]  # the batch's order
    assert [e.player_key for e in game.events] == players()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_task_woken_in_two_loop_iterations_runs_before_the_next_slice() -> None:
    """On asyncio a timer that fell due during a slice wakes its task two loop iterations after the yield (its
    handle completes a future, whose callback steps the task): the yield lets the task run before the next slice,
    not one or two slices later."""
    game = Game()
    loop = asyncio.get_running_loop()
    woken: asyncio.Future[None] = loop.create_future()
    kicks: list[str] = []

    def on_kick(request: gs_hooks.KickRequest) -> None:
        kicks.append(request.session.player_id or "")
        if len(kicks) == 1:
            # a timer falling due during the slice: its handle completes the future of a sleeping task
            loop.call_at(loop.time(), woken.set_result, None)

    woke_after: list[int] = []

    async def sleeper() -> None:
        await woken
        woke_after.append(len(kicks))

    async with game.hooks:
        game.hooks.on_kick = on_kick
        for p in players():
            game.login(p)
        async with anyio.create_task_group() as tg:
            tg.start_soon(sleeper)
            seen = await beside(game, [ban(p) for p in players()], lambda: None)
    # the yields, as kick counts: the sleeper woke at the first one after the first kick
    boundaries = sorted({N - n for n in seen if 0 < N - n < N})
    assert woke_after == [boundaries[0]]


async def test_logins_are_refused_for_every_banned_player_from_the_first_yield() -> None:
    game = Game()
    forgotten: list[str] = []

    class TokenCache:  # records what the book drops from the verifier's cache
        def forget(self, user_id: str) -> None:
            forgotten.append(user_id)

    refused: list[str] = []
    still_live: list[str] = []

    def at_yield() -> None:
        refused.extend(p for p in players() if game.hooks.bans.active_ban(p) is not None)
        still_live.extend(p for p in players() if game.hooks.registry.sessions_of(p))
        assert forgotten == players()  # every banned player's cached tokens were dropped before the first kick

    async with game.hooks:
        game.hooks.verifier = TokenCache()  # type: ignore[assignment]
        for p in players():
            game.login(p)
        await beside(game, [ban(p) for p in players()], at_yield)
    assert refused == players()  # the login gate refused all of them, the ones not kicked yet included
    assert still_live and still_live == players()[-len(still_live) :]


async def test_a_ban_lifted_or_replaced_while_the_batch_yields_is_skipped() -> None:
    game = Game()
    later = T0 + timedelta(days=1)
    lifted, replaced = "p38", "p39"  # the batch's last two: not reached at its first yield

    def at_yield() -> None:
        assert game.hooks.bans.lift_nowait(lifted)
        # a newer ban of the same key, recorded by the sync core: the timer enforces it
        game.hooks.bans.apply_nowait(ban(replaced, later, starts_at=T0 + timedelta(seconds=1)))

    async with game.hooks:
        sessions = {p: game.login(p) for p in players()}
        await game.clock.advance(1)  # the replacement has started
        await beside(game, [ban(p) for p in players()], at_yield)
        await game.timer.wait_idle()
        assert game.hooks.registry.sessions_of(lifted) == (sessions[lifted],)  # the lifted ban kicked nobody
        assert game.hooks.registry.sessions_of(replaced) == ()
    # the batch kicked the others in its order; the replaced ban's row was skipped and the newer ban (enforced by
    # the timer, which ran while the batch yielded) kicked its player once, with its own message and event
    kicked = [k.session.player_id for k in game.kicks]
    assert [p for p in kicked if p != replaced] == players()[:-2]
    assert [k.message for k in game.kicks if k.session.player_id == replaced] == [
        "You are banned until 2026-03-02 12:00:00 KST."
    ]
    events = [(e.player_key, e.ban.ends_at) for e in game.events]
    assert [e for e in events if e[0] != replaced] == [(p, None) for p in players()[:-2]]
    assert [e for e in events if e[0] == replaced] == [(replaced, later)]


async def test_every_session_is_kicked_exactly_once_while_the_batch_is_resent_beside_it() -> None:
    game = Game(duplicate_login="allow")
    batch = [ban(p) for p in players()]
    resent: list[list[Ban]] = []

    def at_yield() -> None:
        # the platform retransmits the batch while it is being enforced (sync core, then the timer's tick)
        resent.append(game.hooks.bans.apply_many_nowait(batch))
        game.hooks.bans.doorbell.ring()

    async with game.hooks:
        sessions = [game.login(p) for p in players() for _ in range(2)]
        await beside(game, batch, at_yield)
        await game.timer.wait_idle()
        assert len(game.hooks.registry) == 0
    assert resent == [[]]  # the re-sent batch changed nothing
    kicked = sorted(k.session.id for k in game.kicks)
    assert kicked == sorted(s.id for s in sessions)  # each session once
    assert [(e.player_key, e.sessions_kicked) for e in game.events] == [(p, 2) for p in players()]


async def test_a_batch_cancelled_at_a_yield_hands_the_rest_to_the_timer() -> None:
    game = Game()
    scope = anyio.CancelScope()
    kicked_at_cancel: list[int] = []

    def at_yield() -> None:
        kicked_at_cancel.append(len(game.kicks))
        scope.cancel()

    async with game.hooks:
        sessions = [game.login(p) for p in players()]
        with scope:
            await beside(game, [ban(p) for p in players()], at_yield)
        assert scope.cancelled_caught
        assert 0 < kicked_at_cancel[0] < N
        await game.timer.wait_idle()  # the timer kicked the rest
        assert len(game.hooks.registry) == 0
        assert all(game.hooks.bans.active_ban(p) is not None for p in players())
        assert game.hooks.bans.unsaved_count == 0  # the batch was recorded though cut short
    assert [k.session.id for k in game.kicks] == [s.id for s in sessions]  # once each, in the batch's order
    assert [(e.player_key, e.sessions_kicked) for e in game.events] == [(p, 1) for p in players()]


async def test_a_large_batch_is_recorded_off_the_loop_on_the_memory_store() -> None:
    game = Game(stepping=False)
    n = INLINE_MEMORY_ROWS + 1
    applied = False
    seen: list[tuple[int, bool]] = []

    async def neighbour() -> None:
        while not applied:
            seen.append((len(game.hooks.registry), applied))
            await anyio.lowlevel.checkpoint()

    async with game.hooks:
        for p in players(n):
            game.login(p)
        game.hooks.bans.enforcer.slice_s = 3600.0  # no yield while kicking: only the write lets it run
        async with anyio.create_task_group() as tg:
            tg.start_soon(neighbour)
            await anyio.lowlevel.checkpoint()
            await game.hooks.bans.apply([ban(p) for p in players(n)])
            applied = True
        assert game.hooks.bans.unsaved_count == 0
    # the neighbour ran after the last kick and before apply returned: while the batch was written
    assert (0, False) in seen


async def test_the_timer_drops_each_ban_at_its_end_whatever_the_batchs_order() -> None:
    """Claiming a ban wakes the timer only when its end is the earliest on the timeline: every end is still met."""
    game = Game()
    ends = {"a": T0 + timedelta(minutes=20), "b": T0 + timedelta(minutes=10), "c": T0 + timedelta(minutes=30)}
    async with game.hooks:
        for p in ends:
            game.login(p)
        await game.hooks.bans.apply([ban(p, end) for p, end in ends.items()])
        await game.timer.wait_idle()
        for minutes, dropped in ((10, "b"), (20, "a"), (30, "c")):
            assert game.hooks.bans.next_deadline() == (T0 + timedelta(minutes=minutes)).timestamp()
            assert game.hooks.bans.bans_of(dropped) != []
            await game.clock.advance_to(T0 + timedelta(minutes=minutes))
            await game.timer.wait_idle()
            assert game.hooks.bans.bans_of(dropped) == []  # ended, and dropped from memory on time
