"""Fixtures of the fleet tests: a real redis-server per test (no fakeredis, no mocks), and clients on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from fleet_support import RedisServer, make_config

from gs_hooks.fleet import FleetConfig, FleetRedis, Keys


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server without persistence (``--save '' --appendonly no``) on a free loopback port."""
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_aof(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server with AOF persistence (``appendfsync always``)."""
    server = RedisServer(tmp_path, appendonly=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fleet_config(redis_server: RedisServer) -> FleetConfig:
    return make_config(redis_server.url)


@pytest.fixture
def keys() -> Keys:
    return Keys("t", "tinyfarm_KR")


@pytest.fixture
async def fleet_redis(fleet_config: FleetConfig) -> AsyncIterator[FleetRedis]:
    redis = FleetRedis(fleet_config)
    await redis.start()
    try:
        yield redis
    finally:
        await redis.aclose()
