"""``--demo --fleet N``: the fleet story. Exit 0 only if every step was observed.

A private ``redis-server``, the platform sandbox (in this process) and N game processes (this example's server in
fleet mode: one ``GS_HOOKS_GAME``, the private Redis, the sandbox's URLs; processes 1..N-1 serve server id
``demo1``, process N serves ``demo2``; duplicate logins ``kick_older``). Hive's one webhook URL is process 1's.

1. fleet up: every process started, one of them holds the leader lease (the key ``demo:<game>:leader`` in Redis);
2. ban kick: a Hive suspension batch sent to process 1's webhook kicks the player logged in on process 2 (as the
   player's TCP client sees it);
3. ban refusal: a later login of that player on process N is refused with the ban's end date;
4. duplicate login: one player logs in on process 1, then on process 2: the older session (process 1) is kicked;
5. ccu sum: at the next grid instant (the SHORT DEMO GRID of 60 s, as ``--demo``), the sandbox's collector gets one
   sample per server id, equal to the sum of the counts of the processes serving it;
6. leader failover: the leader process is killed with ``kill -9``; another process takes the lease.

GS_HOOKS_* variables of the calling shell are not passed on: every setting comes from the story. Every process and
``redis-server`` are stopped on every way out (a failed step, the time limit, Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
from redis.exceptions import RedisError

import gs_hooks
from gs_hooks.fleet import Keys
from gs_hooks.sandbox import Sandbox

from .bots import Bot, SandboxAdmin
from .demo import Story, _kst
from .embedded import embedded_environment, uses_real_platforms
from .fleet_parts import REDIS_MISSING, Admin, GameProcess, PartFailed, PrivateRedis, fleet_parts

STEPS = ("fleet up", "ban kick", "ban refusal", "duplicate login", "ccu sum", "leader failover")
TOTAL_S = 100.0  # the whole story (a 60 s grid instant is most of it); stopping the processes comes after
PERIOD_S = 60  # the SHORT DEMO GRID (production is 120 s): the shortest GS_HOOKS_CCU_PERIOD_S allows
PREFIX = "demo"  # GS_HOOKS_REDIS_PREFIX
T = TypeVar("T")
FAILURES = (TimeoutError, ConnectionError, AssertionError, PartFailed, OSError, httpx.HTTPError, RedisError)


@dataclass
class Fleet:
    """What the story drives: the private Redis, the sandbox, the game processes, and the clients."""

    redis: PrivateRedis
    sandbox: Sandbox
    games: list[GameProcess]
    admin: SandboxAdmin
    api: Admin
    keys: Keys
    bots: list[Bot] = field(default_factory=list)
    players_on: dict[int, int] = field(default_factory=dict)  # logged-in players per process number, as welcomed
    failed: dict[str, str] = field(default_factory=dict)  # step -> why it was not observed

    def game(self, number: int) -> GameProcess:
        return self.games[number - 1]

    async def player(self, user_id: str, game: GameProcess, *, new: bool = True) -> tuple[Bot, dict[str, Any]]:
        """A client of ``game`` that logs ``user_id`` in (with a fresh sandbox-issued token); its answer."""
        token = await (self.admin.new_player(user_id) if new else self.admin.new_token(user_id))
        bot = Bot(user_id)
        self.bots.append(bot)
        await bot.connect(game.host, game.port)
        try:
            answer = await bot.login(token)
        except TimeoutError:
            raise TimeoutError(f"login of {user_id} on {game.name}: no answer within 10 s") from None
        if answer["op"] == "welcome":
            self.players_on[game.number] = self.players_on.get(game.number, 0) + 1
        return bot, answer

    def kicked(self, game: GameProcess) -> None:
        self.players_on[game.number] -= 1

    async def leader(self) -> tuple[GameProcess | None, str]:
        """The process named by the leader key in Redis (``pid|fencing token``), and the token."""
        value = await self.redis.get(self.keys.leader)
        pid, _, token = (value or "").partition("|")
        return next((g for g in self.games if g.fleet_pid == pid and g.proc and g.proc.returncode is None), None), token


async def run_fleet_demo(count: int, *, verbose: bool = False) -> int:
    """Run the fleet story with ``count`` game processes (``verbose``: they log at INFO); 0 only if every step was
    observed."""
    binary = shutil.which("redis-server")
    if binary is None:
        print(f"demo FAILED: {REDIS_MISSING}", flush=True)
        return 2
    if uses_real_platforms(os.environ):
        print(
            "--demo --fleet runs on the embedded sandbox: unset GS_HOOKS_CCU_URL and GS_HOOKS_GAMEBASE_URL", flush=True
        )
        return 2
    story = Story()
    print(f"fleet demo: {count} game processes, a private redis-server, the sandbox", flush=True)
    print(f"demo: CCU grid period {PERIOD_S}s (SHORT DEMO GRID; production is 120 s)", flush=True)
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    terminated: list[int] = []

    def on_sigterm() -> None:
        terminated.append(signal.SIGTERM)
        task.cancel()

    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    try:
        failed = await _run(story, binary, count, verbose=verbose, deadline=loop.time() + TOTAL_S)
    except asyncio.CancelledError:
        if not terminated:
            raise  # Ctrl-C: asyncio.run's own handling (every process was stopped on the way out)
        print("\nstopped by SIGTERM: every game process and redis-server stopped", flush=True)
        return 143
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
    return _summary(story, failed)


def _summary(story: Story, failed: dict[str, str]) -> int:
    missing = [s for s in STEPS if s not in story.seen]
    print()
    print("summary:")
    for step in STEPS:
        seen = story.seen.get(step)
        print(f"  {'✔' if seen else '✘'} {step:<18} {seen or 'NOT OBSERVED: ' + failed.get(step, 'not reached')}")
    print("fleet demo passed" if not missing else f"fleet demo FAILED: missing {', '.join(missing)}", flush=True)
    return 0 if not missing else 1


async def _run(story: Story, binary: str, count: int, *, verbose: bool, deadline: float) -> dict[str, str]:
    async with (
        Sandbox.serve(port=0, ccu_period_s=PERIOD_S) as sandbox,
        fleet_parts(binary) as (redis, games, directory),  # stopped first: the processes flush to a live sandbox
    ):
        base = embedded_environment(
            {k: v for k, v in os.environ.items() if not k.startswith("GS_HOOKS_")}, sandbox, demo=True
        )
        print(f"redis-server     {redis.url}  (private, pid {redis.proc.pid if redis.proc else '?'})", flush=True)
        print(f"sandbox          {sandbox.url}", flush=True)
        fleet = Fleet(
            redis,
            sandbox,
            games,
            SandboxAdmin(sandbox.url),
            Admin(base["GS_HOOKS_ADMIN_KEY"]),
            Keys(PREFIX, base["GS_HOOKS_GAME"]),
        )
        try:
            async with asyncio.timeout_at(deadline):
                await _start(story, fleet, base, count, directory, verbose=verbose)
                await _attempt(story, fleet, ("ban kick", "ban refusal"), _bans(story, fleet))
                await _attempt(story, fleet, ("duplicate login",), _duplicate_login(story, fleet))
                await _attempt(story, fleet, ("ccu sum",), _ccu(story, fleet))
                await _attempt(story, fleet, ("leader failover",), _failover(story, fleet))
        except FAILURES as exc:
            why = "time limit of the story reached" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
            story.status(f"stopped: {why}")
            fleet.failed.setdefault(next((s for s in STEPS if s not in story.seen), STEPS[-1]), why)
        finally:
            if any(step not in story.seen for step in STEPS):
                for game in games:
                    print(f"  {game.name} stderr: {game.stderr_tail()}", flush=True)
            for bot in fleet.bots:
                await bot.close()
            await fleet.admin.aclose()
            await fleet.api.aclose()
    return fleet.failed


async def _attempt(story: Story, fleet: Fleet, steps: tuple[str, ...], run: Coroutine[Any, Any, None]) -> None:
    """Run one part of the story; a failure is printed and kept under the first of its ``steps`` not yet seen, and
    the story goes on (the later parts do not depend on it)."""
    try:
        await run
    except FAILURES as exc:
        step = next(s for s in steps if s not in story.seen)
        fleet.failed[step] = f"{type(exc).__name__}: {exc}"
        story.status(f"✘ {step}: {fleet.failed[step]}")


def _game_env(base: dict[str, str], number: int, count: int, redis_url: str, directory: Path) -> dict[str, str]:
    return base | {
        "GS_HOOKS_STATE": str(directory / f"process{number}.sqlite3"),
        "GS_HOOKS_SERVER_ID": "demo1" if number < count else "demo2",
        "GS_HOOKS_LISTEN": "127.0.0.1:0",
        "GS_HOOKS_REDIS_URL": redis_url,
        "GS_HOOKS_REDIS_PREFIX": PREFIX,
        "GS_HOOKS_DUPLICATE_LOGIN": "kick_older",
        "PYTHONUNBUFFERED": "1",
    }


async def _start(
    story: Story, fleet: Fleet, base: dict[str, str], count: int, directory: Path, *, verbose: bool
) -> None:
    """1. Every process up and in the fleet; Hive's one webhook URL registered: process 1's."""
    envs = [_game_env(base, n, count, fleet.redis.url, directory) for n in range(1, count + 1)]
    config = gs_hooks.Config.from_env(envs[0])  # the settings are checked before any process starts
    fleet.games.extend(GameProcess(n, env, verbose=verbose) for n, env in enumerate(envs, start=1))
    story.status(f"starting {count} game processes")
    await asyncio.gather(*(g.start(timeout_s=45) for g in fleet.games))
    for g in fleet.games:
        print(
            f"{g.name}        pid {g.os_pid}, server id {g.server_id}, game tcp://{g.host}:{g.port}, "
            f"listener {g.listener}, fleet id {g.fleet_pid}",
            flush=True,
        )
    first = fleet.game(1)
    fleet.sandbox.hive.register(
        first.listener + config.hive.suspension_path,
        base["GS_HOOKS_HIVE_AUTH_KEY"],
        int(base["GS_HOOKS_HIVE_GAME_INDEX"]),
    )
    leader, token = await _until(fleet.leader, lambda found: found[0] is not None, 15, "no process took the lease")
    assert leader is not None
    servers = ", ".join(f"{g.name} {g.server_id}" for g in fleet.games)
    story.ok("fleet up", f"{count} processes ({servers}) on {fleet.redis.url}; leader {leader.name} (token {token})")


async def _bans(story: Story, fleet: Fleet) -> None:
    """2. A Hive ban sent to process 1 kicks the player on process 2; 3. then process N refuses its login."""
    receiver, holder, third = fleet.game(1), fleet.game(2), fleet.games[-1]
    bot, answer = await fleet.player("2001", holder)
    assert answer["op"] == "welcome", answer
    now = datetime.now(gs_hooks.KST)
    end = now + timedelta(hours=1)
    story.status(f"player 2001 plays on {holder.name}; Hive sends its ban to {receiver.name}'s webhook")
    item = {"player_id": 2001, "status": "B", "start_date": _kst(now), "end_date": _kst(end)}
    report = await fleet.admin.push_suspensions([item])
    assert report.get("ok"), report
    kick = await _kick(bot, f"2001's session on {holder.name} was not kicked")
    assert kick["reason"] == "ban", kick
    fleet.kicked(holder)
    story.ok(
        "ban kick",
        f"Hive's batch to {receiver.name}'s webhook ({receiver.listener}) accepted; player 2001's client on "
        f"{holder.name} got kick reason '{kick['reason']}'",
    )
    await _until(lambda: fleet.api.holds_ban(third, "2001"), bool, 10, f"the ban did not reach {third.name}")
    later, answer = await fleet.player("2001", third, new=False)
    await later.close()
    assert answer["op"] == "error" and answer["code"] == "banned" and answer.get("ends_at"), answer
    story.ok("ban refusal", f"login of 2001 on {third.name}: {answer['message']} (ends_at {answer['ends_at']})")


async def _duplicate_login(story: Story, fleet: Fleet) -> None:
    """4. kick_older across processes: the session on process 1 is kicked when the player logs in on process 2."""
    first, second = fleet.game(1), fleet.game(2)
    older, answer = await fleet.player("2002", first)
    assert answer["op"] == "welcome", answer
    newer, answer = await fleet.player("2002", second, new=False)
    assert answer["op"] == "welcome", answer
    kick = await _kick(older, f"{first.name}'s older session of 2002 was not kicked")
    assert kick["reason"] == "duplicate_login", kick
    fleet.kicked(first)
    await asyncio.sleep(0.5)  # the newer session stays
    assert not newer.closed.is_set(), "the newer session was closed too"
    story.ok(
        "duplicate login",
        f"2002 logged in on {first.name}, then on {second.name}: the older session got kick reason "
        f"'{kick['reason']}', the newer one plays on",
    )


async def _ccu(story: Story, fleet: Fleet) -> None:
    """5. One sample per server id at the next grid instant, equal to the sum of its processes' counts."""
    for game in fleet.games:  # more players: process k gets k more
        for i in range(game.number):
            _, answer = await fleet.player(f"{3000 + 10 * game.number + i}", game)
            assert answer["op"] == "welcome", answer
    expected = {g.number: fleet.players_on.get(g.number, 0) for g in fleet.games}
    for game in fleet.games:  # each process counts what its clients see, before the instant is awaited
        want = expected[game.number]
        await _until(partial(fleet.api.status, game), partial(_counts, want), 10, f"{game.name} counts {want} players")
    stable_at = time.time()
    slot = (math.floor(stable_at / PERIOD_S) + 1) * PERIOD_S
    sums: dict[str, list[GameProcess]] = {}
    for game in fleet.games:
        sums.setdefault(game.server_id, []).append(game)
    counts = ", ".join(f"{g.name} ({g.server_id}) {expected[g.number]}" for g in fleet.games)
    story.status(f"counts {counts}; waiting for the grid instant {_kst(datetime.fromtimestamp(slot, gs_hooks.KST))}")
    ccu = fleet.sandbox.ccu
    await _until(
        partial(_value, ccu.samples),
        lambda samples: {s.server for s in samples if s.slot == slot} >= set(sums),
        slot - time.time() + 25,
        "no CCU sample of every server id for the slot reached the sandbox's collector",
    )
    parts = []
    for server, games in sums.items():
        saved = [s for s in ccu.samples if s.server == server and s.slot == slot]
        total = sum(expected[g.number] for g in games)
        assert len(saved) == 1, f"{server}: {len(saved)} samples for one slot"
        assert saved[0].user == total, f"{server}: sample {saved[0].user}, sum of the processes' counts {total}"
        doubled = [a for a in ccu.attempts if a.server == server and a.date == saved[0].date and a.result == 101]
        assert not doubled, f"{server}: {len(doubled)} more requests for the slot (answered 101)"
        terms = " + ".join(str(expected[g.number]) for g in games)
        parts.append(f"{server} {saved[0].user} = {terms} ({', '.join(g.name for g in games)})")
    assert ccu.duplicates_saved == 0
    story.ok("ccu sum", f"slot {saved[0].date} KST: {'; '.join(parts)}; one request each, answered 100")


async def _failover(story: Story, fleet: Fleet) -> None:
    """6. ``kill -9`` of the leader: another process takes the lease."""
    leader, token = await fleet.leader()
    assert leader is not None, "no live leader"
    story.status(f"kill -9 of the leader, {leader.name} (pid {leader.os_pid})")
    killed_at = time.monotonic()
    await leader.kill9()
    new, new_token = await _until(
        fleet.leader, lambda found: found[0] not in (None, leader), 15, "no other process took the lease"
    )
    assert new is not None
    story.ok(
        "leader failover",
        f"{leader.name} killed with kill -9 (token {token}); {new.name} leads {time.monotonic() - killed_at:.1f}s "
        f"later (token {new_token}; Redis key {fleet.keys.leader})",
    )


async def _kick(bot: Bot, what: str) -> dict[str, Any]:
    try:
        return await bot.expect("kick", timeout=10)
    except TimeoutError:
        raise TimeoutError(f"{what} within 10 s") from None


def _counts(players: int, status: dict[str, Any]) -> bool:
    return bool(status["players"] == players)


async def _value(value: T) -> T:
    return value


async def _until(read: Callable[[], Awaitable[T]], ok: Callable[[T], object], timeout_s: float, what: str) -> T:
    """Poll ``await read()`` until ``ok(value)``; the value, or TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await read()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.1)
