"""Fleet mode through ``setup()`` on a real redis-server: off without a URL, a member and leader with one, refused on
an evicting Redis and on trio, alive (not ready) while Redis is unreachable, and an orderly goodbye."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fleet_hooks import config, fleet_health, fleet_settings, running, until
from fleet_support import RedisServer, free_port

import gs_hooks
from gs_hooks import Config, ConfigError
from gs_hooks.fleet import Fleet, Outgoing, StreamEntry
from gs_hooks.fleet._maintenance import FleetMaintenanceSource, MaintenancePublisher
from gs_hooks.fleet._stream import publish_one
from gs_hooks.sandbox import Sandbox

pytestmark = pytest.mark.anyio


async def test_fleet_off_changes_nothing(tmp_path: Path) -> None:
    hooks = gs_hooks.setup(Config(state_path=str(tmp_path / "s.sqlite3")))
    async with hooks:
        assert hooks.fleet is None
        assert not any(isinstance(c, Fleet) for c in hooks.components)
        assert all(h.name != "fleet" for h in hooks.services.readiness())


async def test_a_process_joins_leads_and_leaves(redis_server: RedisServer, tmp_path: Path) -> None:
    hooks = gs_hooks.setup(config(tmp_path, redis_server.url))
    fleet = hooks.fleet
    assert fleet is not None and fleet in hooks.components
    async with hooks:
        await until(lambda: fleet.is_leader and fleet.pid in {m.pid for m in fleet.members})
        assert fleet_health(hooks).ok
        assert redis_server.command("GET", "t:tinyfarm_KR:leader").startswith(fleet.pid + "|")
        assert redis_server.command("ZSCORE", "t:tinyfarm_KR:members", fleet.pid) is not None
    # an orderly goodbye: the lease is released and the membership left at once (not after their TTLs)
    assert redis_server.command("GET", "t:tinyfarm_KR:leader") is None
    assert redis_server.command("ZSCORE", "t:tinyfarm_KR:members", fleet.pid) is None
    assert redis_server.command("EXISTS", f"t:tinyfarm_KR:member:{fleet.pid}") == 0


async def test_two_processes_one_leader(redis_server: RedisServer, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    long_lease = {"lease_ttl_s": 30.0, "lease_renew_s": 0.3}  # only a released lease passes within the test
    a = gs_hooks.setup(config(tmp_path / "a", redis_server.url, **long_lease))
    b = gs_hooks.setup(config(tmp_path / "b", redis_server.url, **long_lease))
    assert a.fleet is not None and b.fleet is not None
    fa, fb = a.fleet, b.fleet
    async with running(a, b) as r:
        await until(lambda: len(fa.members) == 2 and len(fb.members) == 2)
        await until(lambda: fa.is_leader != fb.is_leader)
        leader, other = (a, b) if fa.is_leader else (b, a)
        await r.stop(leader)  # releases the lease: the other leads at once, long before the TTL
        assert other.fleet is not None
        other_fleet = other.fleet
        await until(lambda: other_fleet.is_leader)


async def test_an_evicting_redis_is_refused_at_start(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, extra=("--maxmemory-policy", "allkeys-lru"))
    server.start()
    try:
        hooks = gs_hooks.setup(config(tmp_path, server.url))
        with pytest.raises(ConfigError) as info:
            await hooks.start()
        assert info.value.setting == "GS_HOOKS_REDIS_URL" and "noeviction" in info.value.problem
        assert not hooks.running
    finally:
        server.stop()


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_trio_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        gs_hooks.setup(config(tmp_path, "redis://127.0.0.1:1/0"))
    assert info.value.setting == "GS_HOOKS_REDIS_URL" and "asyncio" in info.value.problem


async def test_unreachable_at_start_runs_alone_then_joins(tmp_path: Path) -> None:
    secret = "pw-fleet-unreachable-1"
    port = free_port()
    hooks = gs_hooks.setup(config(tmp_path, f"redis://:{secret}@127.0.0.1:{port}/0"))
    fleet = hooks.fleet
    assert fleet is not None
    async with hooks:
        assert hooks.running and not fleet.connected
        report = fleet_health(hooks)
        assert not report.ok and report.error is not None
        assert f"127.0.0.1:{port}" in report.error and secret not in report.error
        assert secret not in repr(hooks.config) and secret not in repr(fleet.redis)
        server = RedisServer(tmp_path, password=secret)
        server.port = port
        server.start()
        try:
            await until(lambda: fleet.connected and fleet.is_leader and fleet_health(hooks).ok, timeout=15)
        finally:
            await hooks.aclose()
            server.stop()


async def test_readiness_names_redis_when_it_goes_away(redis_server: RedisServer, tmp_path: Path) -> None:
    hooks = gs_hooks.setup(config(tmp_path, redis_server.url))
    fleet = hooks.fleet
    assert fleet is not None
    async with hooks:
        await until(lambda: fleet.is_leader)
        redis_server.kill()
        await until(lambda: not fleet_health(hooks).ok)
        assert "unreachable" in (fleet_health(hooks).error or "")
        await until(lambda: not fleet.is_leader)  # it stops acting as leader once its lease deadline passed
        redis_server.start()
        await until(lambda: fleet_health(hooks).ok and fleet.is_leader, timeout=15)


def gamebase_settings(sb: Sandbox, **more: Any) -> gs_hooks.GamebaseConfig:
    values: dict[str, Any] = {"url": sb.url, "app_id": "sandbox-app", "secret_key": gs_hooks.Secret("sandbox-secret")}
    values |= {"maintenance_poll_s": 1.0, "maintenance_warn_s": (3600.0,), "ban_poll_s": 0, "retries": 0}
    values.update(more)
    return gs_hooks.GamebaseConfig(**values)


async def test_the_leader_polls_maintenance_for_everyone(redis_server: RedisServer, tmp_path: Path) -> None:
    kicks: dict[str, list[gs_hooks.KickRequest]] = {"a": [], "b": []}
    async with Sandbox.serve(port=0) as sb:
        hooks = {}
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            cfg = Config(
                state_path=str(tmp_path / name / "s.sqlite3"),
                gamebase=gamebase_settings(sb),
                fleet=fleet_settings(redis_server.url),
            )
            hooks[name] = gs_hooks.setup(cfg, on_kick=kicks[name].append)
        watchers = {name: h.maintenance for name, h in hooks.items()}
        async with running(*hooks.values()):
            for name, h in hooks.items():
                h.bind_player(h.registry.open_nowait(), f"player-{name}")
            now = time.time()
            sb.gamebase.set_maintenance(now - 1, now + 600, message="fleet maintenance")
            await until(lambda: all(w is not None and w.active for w in watchers.values()))
            # both processes made their own transition, kicked their own session and gate their own logins
            await until(lambda: all(len(k) == 1 for k in kicks.values()))
            assert {k[0].reason for k in kicks.values()} == {"maintenance"}
            assert all(w is not None and w.gate_error() is not None for w in watchers.values())
            sb.gamebase.clear_maintenance()
            await until(lambda: all(w is not None and not w.active for w in watchers.values()))
            assert all(len(k) == 1 for k in kicks.values())  # nobody kicked twice
            # Gamebase was polled by the leader's job only: the followers' watchers read Redis
            publishers = [j for h in hooks.values() for j in (h.fleet._jobs if h.fleet else [])]
            polls = sum(p.polls for p in publishers if isinstance(p, MaintenancePublisher))
            assert sb.gamebase.counts["gamebase.maintenance"] == polls > 0
            sources = [w.source for w in watchers.values() if w is not None]
            assert all(isinstance(s, FleetMaintenanceSource) and s.reads > 0 for s in sources)


async def test_a_leader_poll_error_reaches_every_watcher(redis_server: RedisServer, tmp_path: Path) -> None:
    async with Sandbox.serve(port=0) as sb:
        cfg = Config(
            state_path=str(tmp_path / "s.sqlite3"),
            gamebase=gamebase_settings(sb, secret_key=gs_hooks.Secret("wrong-secret-value")),
            fleet=fleet_settings(redis_server.url),
        )
        hooks = gs_hooks.setup(cfg)
        watcher = hooks.maintenance
        assert watcher is not None
        async with hooks:
            await until(
                lambda: watcher.last_error is not None and "leader's maintenance poll failed" in str(watcher.last_error)
            )
            (report,) = [h for h in hooks.services.readiness() if h.name == watcher.name]
            assert not report.ok and "wrong-secret-value" not in (report.error or "")


async def test_inbox_messages_reach_their_verb(redis_server: RedisServer, tmp_path: Path) -> None:
    hooks = gs_hooks.setup(config(tmp_path, redis_server.url))
    fleet = hooks.fleet
    assert fleet is not None
    got: list[StreamEntry] = []

    async def ping(entry: StreamEntry) -> None:
        got.append(entry)

    fleet.on_inbox("ping", ping)
    async with hooks:
        for i in range(3):
            item = Outgoing(op="ping", event=f"e{i}", body=b"hello")
            await publish_one(fleet.redis, fleet.keys.inbox(fleet.pid), "other-process", item, maxlen=100)
        await publish_one(fleet.redis, fleet.keys.inbox(fleet.pid), "other", Outgoing(op="nope", event="x"), maxlen=100)
        await until(lambda: len(got) == 3)
        assert [e.event for e in got] == ["e0", "e1", "e2"] and {e.body for e in got} == {b"hello"}
        with pytest.raises(RuntimeError):
            fleet.on_inbox("late", ping)  # verbs are registered before start
