"""Bans across the fleet, in process (several hooks on one real redis-server): a ban made on one process kicks on
another and gates its logins, an unban lifts everywhere, a process started later knows the bans at once, and the
outbox keeps what Redis could not take (down, restarted without its data, a stream trimmed past a cursor)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest
from fleet_hooks import config, fleet_settings, running, until
from fleet_support import RedisServer

import gs_hooks
from gs_hooks import Config, _metrics
from gs_hooks.bans._poller import BanPoller
from gs_hooks.fleet import Fence, FencedError, Fleet
from gs_hooks.fleet._bans import BanSetPruner, BanSync
from gs_hooks.fleet._poller import LeaderBanPoller
from gs_hooks.sandbox import Sandbox

pytestmark = pytest.mark.anyio


class Proc:
    """One game process in this test process: its hooks and the kicks its callback saw, per player."""

    def __init__(self, path: Path, url: str, **fleet: Any) -> None:
        path.mkdir(exist_ok=True)
        self.kicks: list[gs_hooks.KickRequest] = []
        self.hooks = gs_hooks.setup(config(path, url, **fleet), on_kick=self.kicks.append)

    @property
    def fleet(self) -> Fleet:
        assert self.hooks.fleet is not None
        return self.hooks.fleet

    @property
    def sync(self) -> BanSync:
        assert self.fleet.bans is not None
        return self.fleet.bans

    def login(self, player: str) -> gs_hooks.Session:
        session = self.hooks.registry.open_nowait()
        self.hooks.bind_player(session, player)
        return session

    def kicked(self) -> Counter[tuple[str, int]]:
        return Counter((k.reason, k.session.id) for k in self.kicks)

    def banned(self, player: str) -> bool:
        return self.hooks.bans.active_ban(player) is not None

    async def outbox(self) -> int:
        return await self.sync.outbox.count()


async def test_a_ban_on_one_process_kicks_on_another_and_an_unban_lifts_everywhere(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    a, b = Proc(tmp_path / "a", redis_server.url), Proc(tmp_path / "b", redis_server.url)
    async with running(a.hooks, b.hooks):
        s1, s2 = b.login("p1"), b.login("p1")
        other = b.login("p2")
        await a.hooks.ban("p1", message="cheating")
        await until(lambda: len(b.kicks) == 2)
        assert b.kicked() == Counter({("ban", s1.id): 1, ("ban", s2.id): 1})
        assert {k.message for k in b.kicks} == {"cheating"} and other in b.hooks.registry
        assert b.banned("p1") and a.banned("p1")
        assert await a.outbox() == 0  # published and cleared
        lifted = _metrics.BANS_LIFTED.total("api")  # process-wide: a and b count here both
        await b.hooks.unban("p1")
        await until(lambda: not a.banned("p1"))
        assert not b.banned("p1")
        await until(lambda: a.sync.applied >= 1)
        assert _metrics.BANS_LIFTED.total("api") - lifted == 2  # b's lift and a's merge of it
        assert len(b.kicks) == 2 and a.kicks == []  # nobody kicked twice, nobody kicked for a lift


async def test_a_process_started_after_the_ban_refuses_at_once(redis_server: RedisServer, tmp_path: Path) -> None:
    a = Proc(tmp_path / "a", redis_server.url)
    async with running(a.hooks):
        await a.hooks.ban("p1")
        await a.hooks.ban("p2")
        await a.hooks.unban("p2")
        await until(lambda: redis_server.command("HLEN", "t:tinyfarm_KR:bans:set") == 2)
        c = Proc(tmp_path / "c", redis_server.url)
        async with running(c.hooks):  # started: its first catch-up is done
            assert c.banned("p1") and not c.banned("p2")
            assert c.sync.reloads == ["new"]
            # the tombstone is held too: the same ban re-read from a platform is a no-op here as on a
            (lifted,) = [r for r in c.hooks.bans.recorded_keys if r[1] == "p2"]
            assert lifted == ("api", "p2")


async def test_a_restarted_process_resumes_from_its_cursor(redis_server: RedisServer, tmp_path: Path) -> None:
    a, b = Proc(tmp_path / "a", redis_server.url), Proc(tmp_path / "b", redis_server.url)
    async with running(a.hooks) as r:
        await r.start(b.hooks)
        await a.hooks.ban("p1")
        await until(lambda: b.banned("p1"))
        await r.stop(b.hooks)
        await a.hooks.ban("p2")  # while b is down
        b2 = Proc(tmp_path / "b", redis_server.url)  # the same state file
        await r.start(b2.hooks)
        assert b2.banned("p1") and b2.banned("p2")
        assert b2.sync.reloads == []  # read on from its cursor: no reload


async def test_redis_down_bans_are_kept_and_forwarded(redis_server: RedisServer, tmp_path: Path) -> None:
    a, b = Proc(tmp_path / "a", redis_server.url), Proc(tmp_path / "b", redis_server.url)
    async with running(a.hooks, b.hooks):
        session = b.login("p1")
        redis_server.kill()
        with anyio.fail_after(5):
            await a.hooks.ban("p1")  # recorded locally: returns while Redis is down
        assert a.banned("p1") and await a.outbox() == 1
        redis_server.start()  # without persistence: a new epoch, an empty set
        await until(lambda: len(b.kicks) == 1, timeout=20)
        assert b.kicked() == Counter({("ban", session.id): 1})
        await until(lambda: redis_server.command("HLEN", "t:tinyfarm_KR:bans:set") == 1)
        # the outbox drains when the publisher's retry comes (its backoff may end after the republish above)
        with anyio.fail_after(10):
            while await a.outbox() != 0:
                await anyio.sleep(0.02)


async def test_a_cursor_older_than_the_trimmed_stream_reloads(redis_server: RedisServer, tmp_path: Path) -> None:
    small = {"bans_maxlen": 10}
    a, b = Proc(tmp_path / "a", redis_server.url, **small), Proc(tmp_path / "b", redis_server.url, **small)
    async with running(a.hooks) as r:
        await r.start(b.hooks)
        await a.hooks.ban("p0")
        await until(lambda: b.banned("p0"))
        await r.stop(b.hooks)
        for i in range(1, 400):  # one entry each: the stream is trimmed far past b's cursor
            await a.hooks.ban(f"p{i}")
        await until(lambda: int(redis_server.command("XLEN", "t:tinyfarm_KR:bans")) < 300)
        b2 = Proc(tmp_path / "b", redis_server.url, **small)
        await r.start(b2.hooks)
        assert b2.sync.reloads == ["gap"]
        assert all(b2.banned(f"p{i}") for i in range(400))


async def test_the_ban_poller_runs_on_the_leader_only(redis_server: RedisServer, tmp_path: Path) -> None:
    async with Sandbox.serve(port=0) as sb:
        procs = []
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            cfg = Config(
                state_path=str(tmp_path / name / "s.sqlite3"),
                gamebase=gs_hooks.GamebaseConfig(
                    url=sb.url,
                    app_id="sandbox-app",
                    secret_key=gs_hooks.Secret("sandbox-secret"),
                    maintenance_poll_s=0,
                    ban_poll_s=0.2,
                    retries=0,
                ),
                fleet=fleet_settings(redis_server.url),
            )
            kicks: list[gs_hooks.KickRequest] = []
            procs.append((gs_hooks.setup(cfg, on_kick=kicks.append), kicks))
        (a, a_kicks), (b, b_kicks) = procs
        async with running(a, b):
            sessions = [h.registry.open_nowait() for h in (a, b)]
            for h, s in zip((a, b), sessions, strict=True):
                h.bind_player(s, "7101")
            sb.gamebase.add_ban("7101", time.time() - 1, None, message="console ban")
            await until(lambda: len(a_kicks) == 1 and len(b_kicks) == 1)
            pollers = [_poller(h) for h in (a, b)]
            await until(lambda: sum(p.polls for p in pollers) >= 3)
            # one process polled Gamebase (the leader); the other never did, yet both kicked their session
            assert sorted(p.polls > 0 for p in pollers) == [False, True]
            assert sb.gamebase.counts["gamebase.bans"] == sum(p.polls + p.failures for p in pollers)
            assert redis_server.command("GET", "t:tinyfarm_KR:bans:wm") is not None  # the watermark is the fleet's


def _poller(hooks: gs_hooks.Hooks) -> BanPoller:
    (job,) = [j for j in hooks.fleet._jobs if isinstance(j, LeaderBanPoller)] if hooks.fleet else []
    return job.poller


async def test_the_leader_prunes_what_every_book_purged(redis_server: RedisServer, tmp_path: Path) -> None:
    a = Proc(tmp_path / "a", redis_server.url)
    async with running(a.hooks):
        await a.hooks.ban("p1")
        await a.hooks.unban("p1")  # a tombstone
        await a.hooks.ban("p2")  # in force, permanent: kept
        await until(lambda: redis_server.command("HLEN", "t:tinyfarm_KR:bans:set") == 2)
        await until(lambda: a.fleet.is_leader)
        fence = a.fleet.leadership.fence
        assert fence is not None
        keep = BanSetPruner(a.fleet.leadership, a.fleet.keys, retention_s=3600, clock=a.hooks.clock)
        assert await keep.prune_once(fence) == 0  # lifted just now: inside the retention
        drop = BanSetPruner(a.fleet.leadership, a.fleet.keys, retention_s=-5, clock=a.hooks.clock)
        assert await drop.prune_once(fence) == 1
        assert redis_server.command("HKEYS", "t:tinyfarm_KR:bans:set") == ["api\x1fp2"]
        await a.hooks.unban("p2")
        await until(lambda: a.sync.outbox._held == {})
        stale = Fence(fence.pid, fence.token - 1)  # a lease that is not the current one deletes nothing
        with pytest.raises(FencedError):
            await drop.prune_once(stale)
        assert redis_server.command("HKEYS", "t:tinyfarm_KR:bans:set") == ["api\x1fp2"]


async def test_a_former_leader_does_not_keep_the_ban_pollers_failure(redis_server: RedisServer, tmp_path: Path) -> None:
    async with Sandbox.serve(port=0) as sb:
        cfg = Config(
            state_path=str(tmp_path / "s.sqlite3"),
            gamebase=gs_hooks.GamebaseConfig(
                url=sb.url,
                app_id="sandbox-app",
                secret_key=gs_hooks.Secret("sandbox-secret"),
                maintenance_poll_s=0,
                ban_poll_s=0.2,
                retries=0,
            ),
            fleet=fleet_settings(redis_server.url),
        )
        hooks = gs_hooks.setup(cfg)
        poller = _poller(hooks)
        fleet = hooks.fleet
        assert fleet is not None

        def report() -> gs_hooks.ComponentHealth:
            (found,) = [h for h in hooks.services.readiness() if h.name == poller.name]
            return found

        async with hooks:
            sb.faults.add("gamebase.bans", "status", status=503)
            # a poll and its retry fail (one failed poll is a blip: still ready)
            await until(lambda: poller.consecutive_failures >= 2 and fleet.is_leader)
            assert not report().ok  # the leader's polls fail: not ready
            redis_server.command("SET", "t:tinyfarm_KR:leader", "another|999", "PX", "60000")  # another leads now
            assert poller.running  # its lag is exported while it polls
            await until(lambda: not fleet.is_leader)
            await until(lambda: not poller.running)  # a former leader: no watermark lag grows on it
            assert poller.last_error is not None and report().ok  # not this process's job any more
