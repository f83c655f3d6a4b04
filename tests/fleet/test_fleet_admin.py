"""The admin API's ``kick`` and ``sessions`` across a fleet: two hooks made by ``gs_hooks.setup()`` from environment
settings only (the README's "Running a fleet" and "Admin API"), on one real redis-server, logging players in with
sandbox Gamebase tokens, called over their real listeners. A kick sent to process A reaches the player's session
on process B (B's ``on_kick``, A's answer counts it under B's id); under ``allow`` a player on both is kicked on
both; an owner process that is gone is not asked; a live owner that does not answer gives a partial answer (504)
within the deadline, and the CLI exits 7; Redis down kicks here and says Redis was not reached; the key rules
are unchanged; a request read after its deadline is not acted on; the Redis password is in no answer or log."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import msgspec
import pytest
from fleet_ccu_support import GAME, KEYS, sandbox_kwargs
from fleet_hooks import until
from fleet_support import RedisServer, TcpProxy

import gs_hooks
from gs_hooks import KickRequest, _metrics
from gs_hooks._counters import OTHER
from gs_hooks.fleet import Owner
from gs_hooks.fleet._admin import OP_ADMIN_KICK, FleetAdmin
from gs_hooks.fleet._protocol import decode_entry
from gs_hooks.ops._admin_cli import EXIT
from gs_hooks.sandbox import Sandbox

pytestmark = pytest.mark.anyio

PLAYER = "7101"
ADMIN_KEY = "fleet-admin-key-0123456789"
REDIS_PASSWORD = "fleet-redis-pass-9876"


@dataclass
class Proc:
    """One fleet process: hooks made by ``setup()``, the kicks its game saw."""

    hooks: gs_hooks.Hooks
    kicks: list[KickRequest] = field(default_factory=list)

    @property
    def url(self) -> str:
        assert self.hooks.listener is not None
        return self.hooks.listener.url

    @property
    def pid(self) -> str:
        assert self.hooks.fleet is not None
        return self.hooks.fleet.pid

    async def admin(self, method: str, path: str, body: Any = None, key: str | None = ADMIN_KEY) -> httpx.Response:
        headers = {} if key is None else {"authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(timeout=20) as client:
            return await client.request(method, f"{self.url}/admin/{path}", json=body, headers=headers)


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox.serve(**sandbox_kwargs()) as sb:
        sb.gamebase.add_member(PLAYER)
        yield sb


def env(
    redis: RedisServer, sb: Sandbox, tmp_path: Path, name: str, policy: str, timeout_s: float, **more: str
) -> dict[str, str]:
    """The README's fleet and admin settings (plus short periods for a test) for one process."""
    return {
        "GS_HOOKS_STATE": str(tmp_path / f"{name}.sqlite3"),
        "GS_HOOKS_SERVER_ID": "s1",
        "GS_HOOKS_LISTEN": "127.0.0.1:0",
        "GS_HOOKS_ADMIN_KEY": ADMIN_KEY,
        "GS_HOOKS_REDIS_URL": redis.url,
        "GS_HOOKS_GAME": GAME,
        "GS_HOOKS_REDIS_PREFIX": "t",
        "GS_HOOKS_FLEET_HEARTBEAT_S": "0.5",
        "GS_HOOKS_FLEET_MEMBER_TTL_S": "2",
        "GS_HOOKS_FLEET_BLOCK_S": "0.3",
        "GS_HOOKS_FLEET_ADMIN_TIMEOUT_S": str(timeout_s),
        "GS_HOOKS_DUPLICATE_LOGIN": policy,
        "GS_HOOKS_GAMEBASE_URL": sb.urls()["gamebase_url"],
        "GS_HOOKS_GAMEBASE_APP_ID": sb.gamebase.app_id,
        "GS_HOOKS_GAMEBASE_SECRET_KEY": sb.gamebase_secret,
        "GS_HOOKS_GAMEBASE_BAN_POLL_S": "0",
        **({"GS_HOOKS_REDIS_PASSWORD": redis.password} if redis.password else {}),
        **more,
    }


@asynccontextmanager
async def fleet(
    redis: RedisServer,
    sb: Sandbox,
    tmp_path: Path,
    *,
    policy: str = "kick_older",
    n: int = 2,
    timeout_s: float = 5.0,
    **more: str,
) -> AsyncIterator[list[Proc]]:
    """``n`` processes of one fleet, started, each a live member the others see."""
    async with AsyncExitStack() as stack:
        procs = []
        for i in range(n):
            config = gs_hooks.Config.from_env(env(redis, sb, tmp_path, f"p{i}", policy, timeout_s, **more))
            proc = Proc(gs_hooks.setup(config))
            proc.hooks.kicker.on_kick = proc.kicks.append
            await stack.enter_async_context(proc.hooks)
            procs.append(proc)
        first = procs[0].hooks.fleet
        assert first is not None
        with anyio.fail_after(10):
            while len(await first.refresh_members()) < n:
                await anyio.sleep(0.05)
        yield procs


async def login(sb: Sandbox, proc: Proc, player: str = PLAYER) -> gs_hooks.Session:
    session = proc.hooks.registry.open_nowait()
    await proc.hooks.login(session, player, sb.gamebase.issue_token(player))
    return session


async def redis_call(proc: Proc, *args: Any) -> Any:
    assert proc.hooks.fleet is not None
    return await proc.hooks.fleet.redis.call(*args)


async def inbox_ops(proc: Proc, pid: str) -> list[str]:
    """The verbs of the messages in process ``pid``'s inbox (read through ``proc``'s connection)."""
    entries = await redis_call(proc, "XRANGE", KEYS.inbox(pid), "-", "+")
    return [decode_entry(i, f).op for i, f in entries]


async def test_a_kick_sent_to_one_process_kicks_the_players_session_on_another(
    redis_server: RedisServer, sandbox: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gs_hooks.admin")
    async with fleet(redis_server, sandbox, tmp_path) as (a, b):
        session = await login(sandbox, b)
        r = await a.admin("GET", f"sessions?player={PLAYER}")  # A holds none, and says where the player is
        assert r.status_code == 200, r.text
        assert r.json()["total"] == 0
        assert r.json()["owner"] == {"pid": b.pid, "live": True, "here": False}
        r = await b.admin("GET", f"sessions?player={PLAYER}")
        assert r.json()["total"] == 1 and r.json()["owner"] == {"pid": b.pid, "live": True, "here": True}

        before = _metrics.KICKS.total(OTHER)  # "cheating" is counted under "other" (bounded labels)
        r = await a.admin("POST", "kick", {"player": PLAYER, "reason": "cheating", "message": "bye"})
        assert r.status_code == 200, r.text
        assert r.json() == {
            "player": PLAYER,
            "reason": "cheating",
            "kicked": 1,
            "processes": {a.pid: 0, b.pid: 1},
        }
        assert [(k.session.id, k.reason, k.message) for k in b.kicks] == [(session.id, "cheating", "bye")]
        assert a.kicks == [] and b.hooks.registry.sessions_of(PLAYER) == ()
        assert _metrics.KICKS.total(OTHER) - before == 1  # B's kick, counted as the admin's reason
        logged = [r.getMessage() for r in caplog.records if r.name == "gs_hooks.admin"]
        assert f"admin: kick by process {a.pid}: player '{PLAYER}' (reason 'cheating'): 1 sessions" in logged

        await until(lambda: not b.hooks.fleet or PLAYER not in b.hooks.fleet.logins.held)  # type: ignore[union-attr]
        with anyio.fail_after(10):  # the session's end releases the owner key
            while (await a.admin("GET", f"sessions?player={PLAYER}")).json()["owner"] is not None:
                await anyio.sleep(0.05)
        r = await a.admin("POST", "kick", {"player": PLAYER})  # no live session anywhere: 404, as before
        assert r.status_code == 404 and set(r.json()) == {"error"}


async def test_under_allow_a_player_on_both_processes_is_kicked_on_both(
    redis_server: RedisServer, sandbox: Sandbox, tmp_path: Path
) -> None:
    async with fleet(redis_server, sandbox, tmp_path, policy="allow") as (a, b):
        on_a, on_b = await login(sandbox, a), await login(sandbox, b)
        r = await a.admin("GET", f"sessions?player={PLAYER}")
        assert r.json()["total"] == 1 and r.json()["owner"] is None  # allow keeps no owner key
        r = await a.admin("POST", "kick", {"player": PLAYER, "reason": "admin"})
        assert r.status_code == 200, r.text
        assert r.json()["kicked"] == 2 and r.json()["processes"] == {a.pid: 1, b.pid: 1}
        assert [k.session.id for k in a.kicks] == [on_a.id] and [k.session.id for k in b.kicks] == [on_b.id]


async def test_a_gone_owner_is_not_asked_and_a_silent_live_owner_gives_a_partial_answer(
    redis_server: RedisServer, sandbox: Sandbox, tmp_path: Path
) -> None:
    async with fleet(redis_server, sandbox, tmp_path, n=1, timeout_s=0.5) as (a,):
        gone, silent = "host/9/gone", "host/8/silent"
        await login(sandbox, a)
        await redis_call(a, "SET", KEYS.owner(PLAYER), Owner(gone, "1", 1).encode())  # a process that died
        r = await a.admin("POST", "kick", {"player": PLAYER})
        assert r.status_code == 200, r.text
        assert r.json()["processes"] == {a.pid: 1} and "unreached" not in r.json()
        assert await inbox_ops(a, gone) == []  # not asked: no wait for a process that is not a member

        # a live member (its heartbeat fresh) whose inbox nobody reads: the kick waits its deadline, then says so
        await login(sandbox, a)
        await redis_call(a, "ZADD", KEYS.members, 2**50, silent)
        await redis_call(a, "SET", KEYS.owner(PLAYER), Owner(silent, "1", 1).encode())
        with anyio.fail_after(10):
            r = await a.admin("POST", "kick", {"player": PLAYER})
        assert r.status_code == 504, r.text
        body = r.json()
        assert body["kicked"] == 1 and body["processes"] == {a.pid: 1} and body["unreached"] == [silent]
        assert body["error"]["status"] == 504 and silent in body["error"]["message"]
        assert a.hooks.registry.sessions_of(PLAYER) == ()  # the local part was done
        assert await inbox_ops(a, silent) == [OP_ADMIN_KICK]

        # the CLI prints what was kicked and exits 7 naming what was not reached
        cli_env = {k: v for k, v in os.environ.items() if not k.startswith("GS_HOOKS_")}
        cli_env["GS_HOOKS_ADMIN_KEY"] = ADMIN_KEY
        argv = [sys.executable, "-m", "gs_hooks", "admin", "--url", a.url, "kick", PLAYER]
        done = await anyio.run_process(argv, env=cli_env, check=False)
        assert done.returncode == EXIT["partial"] == 7, done.stderr
        assert done.stdout.decode().strip() == f"kicked 0 session(s) of player {PLAYER} ({a.pid}: 0)"
        assert "PARTIAL" in done.stderr.decode() and silent in done.stderr.decode()
        argv.insert(-2, "--json")
        done = await anyio.run_process(argv, env=cli_env, check=False)
        assert done.returncode == 7 and json.loads(done.stdout)["unreached"] == [silent]


async def test_redis_down_kicks_here_and_says_redis_was_not_reached(
    sandbox: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    server = RedisServer(tmp_path, password=REDIS_PASSWORD)
    server.start()
    try:
        async with fleet(server, sandbox, tmp_path, n=1) as (a,):
            session = await login(sandbox, a)
            server.kill()
            r = await a.admin("POST", "kick", {"player": PLAYER, "reason": "admin"})
            assert r.status_code == 504, r.text
            body = r.json()
            assert (body["kicked"], body["processes"], body["unreached"]) == (1, {a.pid: 1}, ["redis"])
            assert "Redis could not be reached" in body["error"]["message"]
            assert [k.session.id for k in a.kicks] == [session.id]
            r = await a.admin("GET", f"sessions?player={PLAYER}")
            assert r.status_code == 200 and r.json()["owner"] is None and "Redis" in r.json()["owner_error"]
            texts = [r.text, *(rec.getMessage() for rec in caplog.records)]
            assert not [t for t in texts if REDIS_PASSWORD in t or ADMIN_KEY in t]
    finally:
        server.stop()


async def test_a_hung_redis_does_not_hold_the_kick_past_its_deadline(
    redis_server: RedisServer, sandbox: Sandbox, tmp_path: Path
) -> None:
    # a Redis that accepts but never answers (SIGSTOP): the socket timeout (30 s here) must not be what ends the wait
    more = {"GS_HOOKS_FLEET_SOCKET_TIMEOUT_S": "30", "GS_HOOKS_FLEET_BLOCK_S": "1"}
    async with fleet(redis_server, sandbox, tmp_path, n=1, timeout_s=0.5, **more) as (a,):
        session = await login(sandbox, a)
        redis_server.pause()
        try:
            with anyio.fail_after(15):  # a hang guard, far above the deadline and far below the socket timeout
                r = await a.admin("POST", "kick", {"player": PLAYER})
                sessions = await a.admin("GET", f"sessions?player={PLAYER}")
        finally:
            redis_server.resume()
        assert r.status_code == 504, r.text
        assert (r.json()["kicked"], r.json()["unreached"]) == (1, ["redis"])
        assert [k.session.id for k in a.kicks] == [session.id]
        assert sessions.status_code == 200 and sessions.json()["owner"] is None and sessions.json()["owner_error"]


async def test_the_admin_key_rules_are_unchanged_in_a_fleet(
    redis_server: RedisServer, sandbox: Sandbox, tmp_path: Path
) -> None:
    async with fleet(redis_server, sandbox, tmp_path) as (a, b):
        await login(sandbox, b)
        for key in (None, "not-the-admin-key-000"):
            r = await a.admin("POST", "kick", {"player": PLAYER}, key=key)
            assert r.status_code == 401 and set(r.json()) == {"error"}
            r = await a.admin("GET", f"sessions?player={PLAYER}", key=key)
            assert r.status_code == 401 and "owner" not in r.json()
        assert [s.player_id for s in b.hooks.registry.sessions_of(PLAYER)] == [PLAYER] and b.kicks == []
        assert OP_ADMIN_KICK not in await inbox_ops(a, b.pid)  # nothing was forwarded
        r = await a.admin("POST", "kick", {"player": PLAYER}, key=ADMIN_KEY)  # with the key: B's session goes
        assert r.status_code == 200 and r.json()["processes"] == {a.pid: 0, b.pid: 1}


async def test_a_kick_request_read_after_its_deadline_is_not_acted_on(
    redis_server: RedisServer, sandbox: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The deadline is the asker's, carried in the request on Redis's clock. The owner once measured a request's age
    # against its own timeout: a fresh request whose asker had already given up (its owner lookup took most of its
    # time, or its timeout is shorter than this owner's 10 s) was still acted on, kicking after the operator had
    # been told the kick did not reach that process.
    caplog.set_level(logging.WARNING, logger="gs_hooks.admin")
    async with fleet(redis_server, sandbox, tmp_path, n=1, timeout_s=10.0) as (b,):
        assert b.hooks.fleet is not None and b.hooks.fleet.admin is not None
        admin: FleetAdmin = b.hooks.fleet.admin
        await login(sandbox, b)
        # requests put in a scratch inbox (nobody reads it), read back, then handed to B's verb as the reader would
        request, reply_key = admin.asker.new_reply()
        now_ms = await admin.asker.now_ms()
        for deadline_ms, on_time in ((now_ms - 1_000, False), (now_ms + 60_000, True)):
            body = msgspec.msgpack.encode([PLAYER, "admin", "", reply_key, deadline_ms])
            await admin.asker.send("host/7/scratch", OP_ADMIN_KICK, request, body)
            entries = await redis_call(b, "XRANGE", KEYS.inbox("host/7/scratch"), "-", "+")
            await admin.on_request(decode_entry(*entries[-1]))  # just put in the inbox: young, by its id
            if not on_time:  # the asker gave up on it: dropped, said so, nothing kicked or answered
                await until(lambda: "read after its deadline" in caplog.text)
                assert b.kicks == [] and await redis_call(b, "LLEN", reply_key) == 0
        await until(lambda: len(b.kicks) == 1)  # the same request on time: kicked and answered
        with anyio.fail_after(5):
            while await redis_call(b, "LLEN", reply_key) != 1:
                await anyio.sleep(0.02)


async def test_one_process_that_cannot_be_asked_leaves_the_others_asked_and_counted(
    redis_server: RedisServer, sandbox: Sandbox, tmp_path: Path
) -> None:
    # A failed send (here: a process whose inbox key is not a stream) ended the whole forwarding: the processes
    # asked before it kicked, but were reported unreached (and those after it were never asked).
    async with fleet(redis_server, sandbox, tmp_path, policy="allow", n=3) as procs:
        a, b, c = procs
        await login(sandbox, b)
        await login(sandbox, c)
        await redis_call(a, "DEL", KEYS.inbox(b.pid))
        await redis_call(a, "SET", KEYS.inbox(b.pid), "not a stream")  # XADD to it fails (WRONGTYPE)
        r = await a.admin("POST", "kick", {"player": PLAYER, "reason": "admin"})
        assert r.status_code == 504, r.text
        assert r.json()["processes"] == {a.pid: 0, c.pid: 1} and r.json()["unreached"] == [b.pid]
        assert len(c.kicks) == 1 and b.kicks == []


async def test_an_answer_cancelled_on_its_way_never_leaves_its_reply_key_without_expiry(
    redis_server: RedisServer, sandbox: Sandbox, tmp_path: Path
) -> None:
    # The answer was pushed, then given its expiry in a second command: cancelled in between (a shutdown), the
    # reply key stayed in Redis for good.
    proxy = TcpProxy(redis_server.port)
    try:
        async with fleet(redis_server, sandbox, tmp_path, n=1, GS_HOOKS_REDIS_URL=proxy.url) as (b,):
            assert b.hooks.fleet is not None and b.hooks.fleet.admin is not None
            asker = b.hooks.fleet.admin.asker
            _, reply_key = asker.new_reply()
            proxy.hold_replies_after(reply_key.encode())  # the answer's command went out; its reply is held
            async with anyio.create_task_group() as tg:
                tg.start_soon(asker.reply, reply_key, b"answer")
                await until(proxy.holding.is_set)
                tg.cancel_scope.cancel()
            proxy.release()
            direct = await anyio.connect_tcp("127.0.0.1", redis_server.port)
            async with direct:
                await direct.send(b"*2\r\n$4\r\nPTTL\r\n$%d\r\n%s\r\n" % (len(reply_key), reply_key.encode()))
                ttl = int((await direct.receive()).strip()[1:])
            assert 0 < ttl <= 30_000  # pushed and given its expiry, in one step
    finally:
        proxy.close()
