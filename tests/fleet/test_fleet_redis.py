"""The fleet's Redis connection on a real redis-server: start-up checks, scripts, errors, health, no secret."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from fleet_support import RedisServer, make_config

from gs_hooks import ConfigError
from gs_hooks.fleet import FencedError, FleetConfig, FleetError, FleetRedis
from gs_hooks.fleet._lua import ENSURE_EPOCH, FENCED_SET, PUBLISH

pytestmark = pytest.mark.anyio


async def test_start_loads_scripts_and_checks_policy(fleet_redis: FleetRedis, redis_server: RedisServer) -> None:
    assert redis_server.command("SCRIPT", "EXISTS", PUBLISH.sha) == [1]
    assert fleet_redis.health().ok


async def test_an_evicting_redis_is_refused(redis_server: RedisServer) -> None:
    redis_server.command("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
    redis = FleetRedis(make_config(redis_server.url))
    try:
        with pytest.raises(ConfigError) as info:
            await redis.start()
    finally:
        await redis.aclose()
    assert info.value.setting == "GS_HOOKS_REDIS_URL"
    assert "'allkeys-lru'" in info.value.problem and "noeviction" in info.value.problem


async def test_config_refused_is_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    server = RedisServer(tmp_path, extra=("--rename-command", "CONFIG", ""))
    server.start()
    redis = FleetRedis(make_config(server.url))
    try:
        with caplog.at_level(logging.WARNING, "gs_hooks.fleet"):
            await redis.start()
        assert "make sure it is 'noeviction'" in caplog.text
        assert await redis.script(ENSURE_EPOCH, ["t:e"], ["abc"]) == b"abc"
    finally:
        await redis.aclose()
        server.stop()


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_trio_is_refused_clearly(fleet_config: object) -> None:
    with pytest.raises(ConfigError) as info:
        FleetRedis(fleet_config)  # type: ignore[arg-type]
    assert "asyncio only" in info.value.problem and info.value.setting == "GS_HOOKS_REDIS_URL"


def test_trio_is_refused_at_start_when_made_outside_a_loop(fleet_config: FleetConfig) -> None:
    redis = FleetRedis(fleet_config)  # no event loop here: nothing to check yet

    async def start() -> None:
        await redis.start()

    with pytest.raises(ConfigError, match="asyncio only"):
        trio.run(start)


def test_missing_redis_package_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "from gs_hooks.fleet import FleetConfig, FleetRedis\n"
        "try:\n    FleetRedis(FleetConfig(url='redis://h', game='g'))\n"
        "except Exception as e:\n    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("ConfigError") and "pip install redis hiredis" in out and "'.[fleet]'" in out


async def test_script_cache_flushed_is_reloaded(fleet_redis: FleetRedis, redis_server: RedisServer) -> None:
    redis_server.command("SCRIPT", "FLUSH")
    assert await fleet_redis.script(ENSURE_EPOCH, ["t:e"], ["x1"]) == b"x1"
    redis_server.command("SCRIPT", "FLUSH")
    calls = [(PUBLISH, ["t:s"], [100, 0, "apply", "me", f"e{i}", b"b"]) for i in range(3)]
    results = await fleet_redis.scripts(calls)
    assert [r[1] for r in results] == [1, 2, 3]


async def test_fenced_error_and_refusals_are_ours(fleet_redis: FleetRedis) -> None:
    with pytest.raises(FencedError):
        await fleet_redis.script(FENCED_SET, ["t:leader", "t:k"], ["nobody|1", "v"])
    await fleet_redis.call("SET", "t:str", "x")
    with pytest.raises(FleetError, match="refused"):
        await fleet_redis.call("HGET", "t:str", "f")  # WRONGTYPE


async def test_unreachable_redis_is_reported_without_password(tmp_path: Path) -> None:
    secret = "s3cret-pass-word"
    server = RedisServer(tmp_path, password=secret)
    server.start()
    url = f"redis://:{secret}@127.0.0.1:{server.port}/0"
    redis = FleetRedis(make_config(url))
    try:
        await redis.start()
        assert secret not in repr(redis)
        server.kill()
        with pytest.raises(FleetError) as info:
            await redis.call("PING")
        health = redis.health()
        assert not health.ok and health.error is not None
        assert "unreachable" in health.error and f"127.0.0.1:{server.port}" in health.error
        assert secret not in health.error and secret not in str(info.value)
        server.start()
        assert await redis.call("PING") in (True, b"PONG")
        assert redis.health().ok
    finally:
        await redis.aclose()
        server.stop()


async def test_wrong_password_is_reported_without_it(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, password="right-pass-1234")
    server.start()
    redis = FleetRedis(make_config(f"redis://:wrong-pass-9876@127.0.0.1:{server.port}/0"))
    try:
        with pytest.raises(FleetError) as info:
            await redis.start()
        assert "wrong-pass-9876" not in str(info.value) and "wrong-pass-9876" not in (redis.health().error or "")
    finally:
        await redis.aclose()
        server.stop()


async def test_a_closed_client_opens_no_connection(redis_server: RedisServer) -> None:
    """A task still running after aclose() gets a FleetError, and no connection is opened that nothing would close
    (it surfaced as ResourceWarnings in a later test)."""
    redis = FleetRedis(make_config(redis_server.url))
    await redis.start()
    assert await redis.call("PING") in (True, b"PONG")
    await redis.aclose()
    with pytest.raises(FleetError):
        await redis.call("PING")
    pool = redis.client.connection_pool
    assert pool._in_use_connections == set() or len(pool._in_use_connections) == 0  # redis-py's own books
    assert all(not c.is_connected for c in pool._available_connections)
