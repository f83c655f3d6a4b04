"""Duplicate login across the fleet on a real Redis: hooks made fleet processes by hand (their own connection,
pid, heartbeat, inbox), logging players in with sandbox Gamebase tokens. ``kick_older`` kicks the older session
on another process; ``refuse_newer`` refuses while a live session exists anywhere; concurrent logins of one
player end in one session; a lost notice is repaired by the re-check; Redis unreachable at login; a ban that
arrives while the claim waits on Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
from fleet_hooks import until
from fleet_login_support import KEYS, LoginNode, make_hooks
from fleet_support import RedisServer, TcpProxy, make_config

import gs_hooks
from gs_hooks import Ban, BannedError, DuplicateLoginError, KickRequest
from gs_hooks.fleet import FleetConfig, Owner
from gs_hooks.sandbox import Sandbox

pytestmark = pytest.mark.anyio

PLAYER = "7101"


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox.serve() as sb:
        sb.gamebase.add_member(PLAYER)
        yield sb


class Fleet:
    """Several hooks, each a fleet process, started together."""

    def __init__(self, sb: Sandbox, tmp_path: Path, policy: str, configs: list[FleetConfig], **node: float) -> None:
        self.kicks: list[list[KickRequest]] = [[] for _ in configs]
        self.nodes = [
            LoginNode(c, f"host/{i}/p{i}", make_hooks(sb, tmp_path, f"p{i}", policy, self.kicks[i]), **node)
            for i, c in enumerate(configs)
        ]
        self.token = sb.gamebase.issue_token(PLAYER)
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> Fleet:
        for n in self.nodes:
            await self._stack.enter_async_context(n.hooks)
            await self._stack.enter_async_context(n.running())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def login(self, i: int) -> gs_hooks.Session:
        session = self.nodes[i].hooks.registry.open_nowait()
        await self.nodes[i].hooks.login(session, PLAYER, self.token)
        return session

    def sessions(self) -> list[tuple[int, int]]:
        """(process, session id) of every live session of the player."""
        return [(i, s.id) for i, n in enumerate(self.nodes) for s in n.hooks.registry.sessions_of(PLAYER)]

    async def owner(self) -> Owner | None:
        return await self.nodes[0].presence.get(PLAYER)


async def test_kick_older_kicks_the_session_on_the_other_process(
    fleet_config: FleetConfig, sandbox: Sandbox, tmp_path: Path
) -> None:
    async with Fleet(sandbox, tmp_path, "kick_older", [fleet_config] * 2) as fleet:
        old = await fleet.login(0)
        new = await fleet.login(1)
        await until(lambda: fleet.sessions() == [(1, new.id)])
        assert [(k.session.id, k.reason) for k in fleet.kicks[0]] == [(old.id, "duplicate_login")]
        assert fleet.kicks[1] == []
        assert await fleet.owner() == fleet.nodes[1].logins.held[PLAYER]
        new.close()
        fleet.nodes[1].hooks.registry.close_nowait(new)
        await until(lambda: PLAYER not in fleet.nodes[1].logins.held)
        with anyio.fail_after(5):
            while await fleet.owner() is not None:  # released at the session's end
                await anyio.sleep(0.01)


async def test_refuse_newer_refuses_while_a_session_lives_on_any_process(
    fleet_config: FleetConfig, sandbox: Sandbox, tmp_path: Path
) -> None:
    async with Fleet(sandbox, tmp_path, "refuse_newer", [fleet_config] * 2) as fleet:
        first = await fleet.login(0)
        with pytest.raises(DuplicateLoginError):
            await fleet.login(1)
        assert fleet.sessions() == [(0, first.id)]
        assert fleet.nodes[1].logins.held == {}
        fleet.nodes[0].hooks.registry.close_nowait(first)  # the player leaves: the key is released
        with anyio.fail_after(5):
            while await fleet.owner() is not None:
                await anyio.sleep(0.01)
        second = await fleet.login(1)
        assert fleet.sessions() == [(1, second.id)]
        again = fleet.nodes[1].hooks.registry.open_nowait()  # a logout then a login on one process at once
        fleet.nodes[1].hooks.registry.close_nowait(second)
        await fleet.nodes[1].hooks.login(again, PLAYER, fleet.token)
        assert fleet.sessions() == [(1, again.id)]


@pytest.mark.parametrize("policy", ["kick_older", "refuse_newer"])
async def test_concurrent_logins_of_one_player_end_in_one_session(
    fleet_config: FleetConfig, sandbox: Sandbox, tmp_path: Path, policy: str
) -> None:
    # no re-check during the test: one session must come from the claims and notices alone
    async with Fleet(sandbox, tmp_path, policy, [fleet_config] * 2, recheck_s=60) as fleet:
        outcomes: list[str] = []

        async def one(i: int) -> None:
            try:
                await fleet.login(i % 2)
                outcomes.append("ok")
            except DuplicateLoginError:
                outcomes.append("refused")

        async with anyio.create_task_group() as tg:
            for i in range(100):
                tg.start_soon(one, i)
        await until(lambda: len(fleet.sessions()) == 1, timeout=20)  # a bound for a loaded machine, not a speed
        await anyio.sleep(0.3)  # notices in flight land
        ((proc, sid),) = fleet.sessions()
        owner = await fleet.owner()
        assert owner is not None and owner.pid == fleet.nodes[proc].pid and owner.session == str(sid)
        kicked = sum(len(k) for k in fleet.kicks)
        assert outcomes.count("ok") == 1 + kicked  # every other login was refused, or bound then kicked
        if policy == "refuse_newer":
            assert kicked == 0 and outcomes.count("ok") == 1


async def test_the_recheck_ends_a_session_whose_notice_was_lost(
    fleet_config: FleetConfig, sandbox: Sandbox, tmp_path: Path
) -> None:
    async with Fleet(sandbox, tmp_path, "kick_older", [fleet_config] * 2, recheck_s=0.3) as fleet:
        old = await fleet.login(0)
        other = Owner("host/1/p1", "999", 1)  # a newer login elsewhere whose notice never came
        await fleet.nodes[1].redis.call("SET", KEYS.owner(PLAYER), other.encode())
        await until(lambda: fleet.sessions() == [])
        assert [(k.session.id, k.reason) for k in fleet.kicks[0]] == [(old.id, "duplicate_login")]
        assert await fleet.owner() == other  # the loser does not touch the winner's key


async def test_redis_unreachable_at_login_then_the_newest_login_wins(
    redis_server: RedisServer, sandbox: Sandbox, tmp_path: Path
) -> None:
    proxy = TcpProxy(redis_server.port)
    configs = [make_config(proxy.url), make_config(redis_server.url)]
    async with Fleet(sandbox, tmp_path, "kick_older", configs, recheck_s=0.3) as fleet:
        older = await fleet.login(1)
        proxy.cut()
        newer = await fleet.login(0)  # local checks only: both sessions live for now
        assert sorted(fleet.sessions()) == [(0, newer.id), (1, older.id)]
        proxy.restore()  # claimed on return: the newer one wins, the older is kicked on its process
        await until(lambda: fleet.sessions() == [(0, newer.id)])
        assert [k.session.id for k in fleet.kicks[1]] == [older.id]
        assert await fleet.owner() == fleet.nodes[0].logins.held[PLAYER]
    proxy.close()


async def test_a_ban_that_arrives_while_the_claim_waits_on_redis_refuses_the_login(
    redis_server: RedisServer, sandbox: Sandbox, tmp_path: Path
) -> None:
    async with Fleet(sandbox, tmp_path, "kick_older", [make_config(redis_server.url)]) as fleet:
        node = fleet.nodes[0]
        session = node.hooks.registry.open_nowait()
        redis_server.pause()  # the claim will wait on Redis
        try:
            async with anyio.create_task_group() as tg:
                result: list[BaseException | None] = []

                async def login() -> None:
                    try:
                        await node.hooks.login(session, PLAYER, fleet.token)
                        result.append(None)
                    except gs_hooks.LoginRefusedError as exc:
                        result.append(exc)

                tg.start_soon(login)
                await until(lambda: node.logins.claims_waiting == 1)  # the token is verified; the claim waits
                now = datetime.now(UTC)
                await node.hooks.bans.apply(
                    [Ban(player_key=PLAYER, source="hive", status="permanent", starts_at=now - timedelta(minutes=1))]
                )
                redis_server.resume()
        finally:
            if redis_server.paused:
                redis_server.resume()
        assert isinstance(result[0], BannedError)
        assert session.player_id is None and node.hooks.registry.sessions_of(PLAYER) == ()
        with anyio.fail_after(5):
            while await fleet.owner() is not None:  # the failed login gave its claim back
                await anyio.sleep(0.01)


async def test_a_kick_notice_handled_while_the_ownership_check_waits_refuses_the_login(
    redis_server: RedisServer, sandbox: Sandbox, tmp_path: Path
) -> None:
    # The interleaving of two live sessions seen once in CI (tests/fleet/test_fleet_logins_processes.py), made on
    # purpose: a login on process 0 claims the player while process 0 still has a live session of it, so before
    # binding (which would kick that session locally) it asks Redis whether it still owns the player. Redis says
    # yes, but the answer is held; meanwhile a newer login on process 1 takes the player, and its kick notice
    # reaches process 0 first (the login is not bound: the notice can only mark it). When the answer comes, the
    # login must still lose.
    proxy = TcpProxy(redis_server.port)
    configs = [make_config(proxy.url), make_config(redis_server.url)]
    async with Fleet(sandbox, tmp_path, "kick_older", configs, recheck_s=60) as fleet:
        node = fleet.nodes[0]
        old = await fleet.login(0)
        # the key now names a session of process 1 whose notice is still on its way: the old session stays for now
        await fleet.nodes[1].redis.call("SET", KEYS.owner(PLAYER), Owner("host/1/p1", "999", 1).encode())
        proxy.hold_replies_after(b"$3\r\nGET\r\n")  # the ownership check's answer
        session = node.hooks.registry.open_nowait()
        outcome: list[BaseException | None] = []

        async def login() -> None:
            try:
                await node.hooks.login(session, PLAYER, fleet.token)
                outcome.append(None)
            except gs_hooks.LoginRefusedError as exc:
                outcome.append(exc)

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(login)
                await until(proxy.holding.is_set)
                mine = node.logins._by_session[session.id][1]
                assert await fleet.owner() == mine  # the check's answer (held) says this login owns the player
                newer = await fleet.login(1)  # takes it; the notice to process 0 names this login
                await until(lambda: mine.encode() in node.logins._superseded)  # handled by process 0's inbox
                proxy.release()
        finally:
            proxy.release()
            proxy.close()
        assert isinstance(outcome[0], DuplicateLoginError)
        assert session.player_id is None
        assert fleet.sessions() == [(0, old.id), (1, newer.id)]  # the old one's key is lost: the re-check ends it
        assert await fleet.nodes[1].presence.get(PLAYER) == fleet.nodes[1].logins.held[PLAYER]  # (0's proxy: closed)
