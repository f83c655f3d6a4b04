"""Bans across a fleet of real game processes (the example's game server on gs_hooks, fleet mode on one real
redis-server, the platform sandbox): what a player sees on every process, with the faults of issue 16.

After every fault: every live session of a banned player is kicked exactly once (checked from the client side),
the outbox drains, nothing is lost."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fleet_procs import Game, GameClient, SandboxThread, fleet_env, games, sandbox_thread, suspension_items
from fleet_support import RedisServer, TcpProxy

pytestmark = pytest.mark.slow


def wait(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met in {timeout} s")
        time.sleep(0.02)


def drained(*gs: Game) -> None:
    for g in gs:
        wait(lambda g=g: g.state()["outbox"] == 0, what=f"{g.name}'s outbox drained")


def test_a_hive_ban_on_one_process_kicks_on_another_refuses_later_and_unban_lifts(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    with sandbox_thread() as sb:
        env = fleet_env(redis_server.url, sb)
        a, b = Game("a", tmp_path, env), Game("b", tmp_path, env)
        with games(a, b):
            a.start()
            b.start()
            sb.register(a.listener)  # Hive calls one URL: process a's
            clients = [GameClient(b.port), GameClient(b.port)]
            for cl in clients:
                assert cl.login("7101", sb.token("7101"))["op"] == "welcome"
            bystander = GameClient(b.port)
            assert bystander.login("7102", sb.token("7102"))["op"] == "welcome"
            report = sb.push(["7101"])
            assert not report.failed_batches
            for cl in clients:  # kicked on the other process, as the player sees it
                kick = cl.wait_for(lambda m: m.get("op") == "kick")
                assert kick["reason"] == "ban"
                cl.closed.wait(10)
            later = GameClient(b.port)
            refused = later.login("7101", sb.token("7101"))
            assert refused["op"] == "error" and refused["code"] == "banned"
            c = Game("c", tmp_path, env).start()  # started after the ban
            with games(c):
                late = GameClient(c.port)
                refused = late.login("7101", sb.token("7101"))
                assert refused["op"] == "error" and refused["code"] == "banned"
                assert b.ask({"op": "unban", "player": "7101"}, "unbanned")["lifted"] == 1
                for g in (a, c):
                    wait(lambda g=g: "7101" not in g.state()["bans"], what=f"lift reached {g.name}")
                again = GameClient(c.port)
                assert again.login("7101", sb.token("7101"))["op"] == "welcome"
                assert again.kicks() == [] and bystander.kicks() == []
                assert [len(cl.kicks()) for cl in clients] == [1, 1]
                drained(a, b, c)


def banned_clients(game: Game, sb: SandboxThread, player: str, n: int = 2) -> list[GameClient]:
    clients = [GameClient(game.port) for _ in range(n)]
    for cl in clients:
        assert cl.login(player, sb.token(player))["op"] == "welcome"
    return clients


def kicked_once(clients: list[GameClient], reason: str = "ban", timeout: float = 20.0) -> None:
    """Every client got exactly one kick (with ``reason``) and its connection closed."""
    for cl in clients:
        cl.wait_for(lambda m: m.get("op") == "kick", timeout=timeout)
        assert cl.closed.wait(10)
    assert [[k["reason"] for k in cl.kicks()] for cl in clients] == [[reason]] * len(clients)


def test_receiver_killed_before_it_answers_hive_retransmits(redis_server: RedisServer, tmp_path: Path) -> None:
    with sandbox_thread() as sb:
        env = fleet_env(redis_server.url, sb)
        a, b = Game("a", tmp_path, env), Game("b", tmp_path, env)
        with games(a, b):
            a.start(FLEET_GAME_FAULT="die_before_answer")
            b.start()
            sb.register(a.listener)
            clients = banned_clients(b, sb, "7101")
            future = sb.push_soon(["7101"], retries=40, retry_delay_s=0.25)
            assert a.c.proc.wait(20) == -9  # recorded (and queued in its outbox), killed before answering
            time.sleep(0.5)
            assert all(cl.kicks() == [] for cl in clients)  # not published: it died right after the commit
            a.start()  # the same state file and listener port; Hive's retransmission reaches it
            report = future.result(timeout=30)
            assert not report.failed_batches and report.attempts[0].result_code is None
            kicked_once(clients)
            drained(a, b)
            assert "7101" in a.state()["bans"] and "7101" in b.state()["bans"]
            assert a.kicks() == []  # the retransmission was a no-op on the restarted receiver


def test_receiver_killed_after_it_answered_with_redis_unreachable(redis_server: RedisServer, tmp_path: Path) -> None:
    proxy = TcpProxy(redis_server.port)
    try:
        with sandbox_thread() as sb:
            env = fleet_env(redis_server.url, sb)
            a = Game("a", tmp_path, {**env, "GS_HOOKS_REDIS_URL": proxy.url})
            b = Game("b", tmp_path, env)
            with games(a, b):
                a.start()
                b.start()
                sb.register(a.listener)
                clients = banned_clients(b, sb, "7101")
                proxy.cut()  # a cannot reach Redis: the ban is recorded and answered, kept in its outbox
                report = sb.push(["7101"])
                assert not report.failed_batches
                assert a.state()["outbox"] == 1
                a.kill()  # just after it answered, before it could forward the ban
                time.sleep(0.5)
                assert all(cl.kicks() == [] for cl in clients)
                proxy.restore()
                a.start()
                kicked_once(clients)
                drained(a, b)
    finally:
        proxy.close()


@pytest.mark.parametrize("appendonly", [False, True], ids=["no-persistence", "aof"])
def test_redis_restarted(appendonly: bool, tmp_path: Path) -> None:
    server = RedisServer(tmp_path, appendonly=appendonly)
    server.start()
    try:
        with sandbox_thread() as sb:
            env = fleet_env(server.url, sb)
            a, b = Game("a", tmp_path, env), Game("b", tmp_path, env)
            with games(a, b):
                a.start()
                b.start()
                sb.register(a.listener)
                first = banned_clients(b, sb, "7101")
                assert not sb.push(["7101"]).failed_batches
                kicked_once(first)
                server.restart(down_s=1.0)
                second = banned_clients(b, sb, "7102")
                assert not sb.push(["7102"]).failed_batches
                kicked_once(second)
                # the fleet's set holds both bans again (kept by AOF, or rebuilt by the processes' republish)
                wait(lambda: server.command("HLEN", "t:tinyfarm_KR:bans:set") == 2, what="ban set rebuilt")
                c = Game("c", tmp_path, env).start()
                with games(c):
                    for player in ("7101", "7102"):
                        refused = GameClient(c.port).login(player, sb.token(player))
                        assert refused["op"] == "error" and refused["code"] == "banned"
                    drained(a, b, c)
                    assert [len(cl.kicks()) for cl in first + second] == [1] * 4
    finally:
        server.stop()


@pytest.mark.parametrize("pause_s", [2.0, 5.0], ids=["2s", "longer-than-the-lease"])
def test_redis_paused(pause_s: float, redis_server: RedisServer, tmp_path: Path) -> None:
    with sandbox_thread() as sb:
        env = fleet_env(redis_server.url, sb)  # lease TTL 3 s: a 5 s pause outlives it
        a, b = Game("a", tmp_path, env), Game("b", tmp_path, env)
        with games(a, b):
            a.start()
            b.start()
            sb.register(a.listener)
            wait(lambda: a.state()["leader"] or b.state()["leader"], what="a leader")
            clients = banned_clients(b, sb, "7101")
            redis_server.pause()
            try:
                report = sb.push(["7101"])  # answered once recorded locally: Redis does not answer meanwhile
                assert not report.failed_batches
                time.sleep(max(0.0, pause_s - 0.5))
            finally:
                redis_server.resume()
            kicked_once(clients)
            drained(a, b)
            wait(lambda: [a.state()["leader"], b.state()["leader"]].count(True) == 1, what="one leader")


def test_client_kill_during_a_ban_burst(redis_server: RedisServer, tmp_path: Path) -> None:
    with sandbox_thread() as sb:
        env = fleet_env(redis_server.url, sb)
        a, b = Game("a", tmp_path, env), Game("b", tmp_path, env)
        with games(a, b):
            a.start()
            b.start()
            sb.register(a.listener)
            banned = [str(8000 + i) for i in range(12)]
            clients = [cl for player in banned for cl in banned_clients(b, sb, player, n=1)]
            burst = [str(7000 + i) for i in range(600)] + banned
            future = sb.portal.start_task_soon(
                lambda: sb.sb.hive.push_suspensions(suspension_items(burst), batch_size=20)
            )
            killed = 0
            while not future.done():
                killed += redis_server.client_kill_all()
                time.sleep(0.05)
            assert not future.result().failed_batches and killed > 0
            kicked_once(clients)
            drained(a, b)
            wait(lambda: len(b.state()["bans"]) == len(burst), what="every ban applied on b")
            assert [len(cl.kicks()) for cl in clients] == [1] * len(clients)


def test_one_process_cut_off_by_a_proxy(redis_server: RedisServer, tmp_path: Path) -> None:
    proxy = TcpProxy(redis_server.port)
    try:
        with sandbox_thread() as sb:
            env = fleet_env(redis_server.url, sb)
            a = Game("a", tmp_path, env)
            b = Game("b", tmp_path, {**env, "GS_HOOKS_REDIS_URL": proxy.url})
            with games(a, b):
                a.start()
                b.start()
                sb.register(a.listener)
                on_b = banned_clients(b, sb, "7101")
                on_a = banned_clients(a, sb, "7102")
                proxy.cut()
                assert not sb.push(["7101"]).failed_batches  # received by a: b cannot hear of it yet
                b.ask({"op": "ban", "player": "7102"}, "banned")  # made on b: enforced there, kept in its outbox
                time.sleep(1.0)
                assert all(cl.kicks() == [] for cl in on_b + on_a)
                assert b.state()["outbox"] == 1
                proxy.restore()
                kicked_once(on_b)
                kicked_once(on_a)
                drained(a, b)
                assert {"7101", "7102"} <= set(a.state()["bans"]) & set(b.state()["bans"])
    finally:
        proxy.close()


def leader_of(gs: list[Game]) -> Game:
    wait(lambda: sum(g.state()["leader"] for g in gs) == 1, what="one leader")
    (leader,) = [g for g in gs if g.state()["leader"]]
    return leader


def test_leader_killed_mid_ban_poll(redis_server: RedisServer, tmp_path: Path) -> None:
    with sandbox_thread() as sb:
        env = fleet_env(redis_server.url, sb, GS_HOOKS_GAMEBASE_BAN_POLL_S="1")
        gs = [Game(name, tmp_path, env) for name in ("a", "b", "c")]
        with games(*gs):
            for g in gs:
                g.start()
            leader = leader_of(gs)
            others = [g for g in gs if g is not leader]
            clients = [cl for g in others for cl in banned_clients(g, sb, "7101", n=1)]
            rule = sb.call(sb.sb.faults.add, "gamebase.bans", "delay", delay_s=6.0, count=1)
            sb.call(sb.sb.gamebase.add_ban, "7101", time.time() - 1, None, message="console ban")
            wait(lambda: sb.call(lambda: rule.hits) == 1, what="the leader's poll in flight")
            leader.kill()  # mid poll: the ban read from Gamebase never reached its book
            new = leader_of(others)
            kicked_once(clients)
            drained(*others)
            assert all("7101" in g.state()["bans"] for g in others)
            assert new.state()["leader"]


def test_leader_killed_mid_maintenance_change(redis_server: RedisServer, tmp_path: Path) -> None:
    with sandbox_thread() as sb:
        env = fleet_env(redis_server.url, sb)
        gs = [Game(name, tmp_path, env) for name in ("a", "b", "c")]
        with games(*gs):
            for g in gs:
                g.start()
            leader = leader_of(gs)
            others = [g for g in gs if g is not leader]
            clients = [cl for i, g in enumerate(others) for cl in banned_clients(g, sb, str(7200 + i), n=2)]
            rule = sb.call(sb.sb.faults.add, "gamebase.maintenance", "delay", delay_s=6.0, count=1)
            now = time.time()
            sb.call(sb.sb.gamebase.set_maintenance, now - 1, now + 600, message="fleet maintenance")
            wait(lambda: sb.call(lambda: rule.hits) == 1, what="the leader's poll in flight")
            leader.kill()  # mid change: the new window was read by nobody yet
            kicked_once(clients, reason="maintenance")
            for g in others:
                assert g.state()["maintenance"] == "active"
            refused = GameClient(others[0].port).login("7299", sb.token("7299"))
            assert refused["op"] == "error" and refused["code"] == "maintenance"
