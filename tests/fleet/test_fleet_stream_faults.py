"""The research's faults against the ban stream, with reader processes: 2,000 bans in 20 batches published while
the fault happens; every reader must end with every ban (and, where Redis lost its data, a reload)."""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
import pytest
from fleet_support import Child, RedisServer, TcpProxy, children, make_config

from gs_hooks.fleet import BanRow, FleetRedis, Keys, MemoryOutbox, Outgoing, Publisher

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

KEYS = Keys("t", "tinyfarm_KR")
BATCHES, PER_BATCH = 20, 100


def start_readers(urls: list[str]) -> list[Child]:
    readers = [Child("reader", url) for url in urls]
    for r in readers:
        r.expect(lambda m: m["type"] == "reload" and m["reason"] == "new")
    return readers


async def burst(server: RedisServer, fault: Callable[[], None], *, at: int = BATCHES // 2) -> None:
    """Publish the batches through a Publisher (retrying on its own), with ``fault`` run before batch ``at``."""
    redis = FleetRedis(make_config(server.url))
    await redis.start()
    outbox = MemoryOutbox()
    pub = Publisher(redis, KEYS.bans, "publisher", outbox, maxlen=100_000, set_key=KEYS.bans_set)
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(pub.run)
            for b in range(BATCHES):
                if b == at:
                    await anyio.to_thread.run_sync(fault)
                rows = tuple(
                    BanRow("hive", f"p{b * PER_BATCH + i}", "permanent", 1.0, None, "") for i in range(PER_BATCH)
                )
                outbox.put(Outgoing(op="apply", event=f"batch{b}", rows=rows))
                pub.wake()
                await anyio.sleep(0.01)
            with anyio.fail_after(30):
                while len(outbox):
                    await anyio.sleep(0.02)
            tg.cancel_scope.cancel()
    finally:
        await redis.aclose()


def collected(reader: Child, want: set[str], timeout: float = 30) -> tuple[list[str], list[str], list[str]]:
    """(players from batches, players from reloads, reload reasons) once the reader has every one of ``want``."""
    deadline = time.monotonic() + timeout
    while True:
        lines = reader.drain()
        batched = [p for m in lines if m.get("type") == "batch" for p in m["rows"]]
        reloaded = [p for m in lines if m.get("type") == "reload" for p in m["rows"]]
        reasons = [m["reason"] for m in lines if m.get("type") == "reload"]
        if want <= set(batched) | set(reloaded) or time.monotonic() > deadline:
            return batched, reloaded, reasons
        time.sleep(0.05)


ALL = {f"p{i}" for i in range(BATCHES * PER_BATCH)}


def assert_none_lost(readers: list[Child]) -> None:
    for r in readers:
        batched, reloaded, reasons = collected(r, ALL)
        why = f"reloads {reasons}, lost {len(ALL - set(batched))}, got {len(batched)}; stderr: {r.errors()}"
        assert reasons == ["new"], why
        assert set(batched) == ALL, why
        assert len(batched) == len(ALL), why  # nothing applied twice either
        assert reloaded == [], why


async def test_client_kill_during_a_burst_loses_nothing(redis_server: RedisServer) -> None:
    with children(*start_readers([redis_server.url] * 3)) as readers:

        def kill_twice() -> None:
            assert redis_server.client_kill_all() >= 3
            time.sleep(0.05)
            redis_server.client_kill_all()

        await burst(redis_server, kill_twice)
        assert_none_lost(readers)


async def test_redis_paused_for_two_seconds_loses_nothing(redis_server: RedisServer) -> None:
    with children(*start_readers([redis_server.url] * 3)) as readers:

        def pause() -> None:
            redis_server.pause()
            time.sleep(2.0)
            redis_server.resume()

        await burst(redis_server, pause)
        assert_none_lost(readers)


async def test_redis_restarted_with_aof_loses_nothing(redis_aof: RedisServer) -> None:
    with children(*start_readers([redis_aof.url] * 3)) as readers:
        await burst(redis_aof, lambda: redis_aof.restart(down_s=1.0))
        assert_none_lost(readers)


async def test_redis_restarted_without_persistence_triggers_a_reload(redis_server: RedisServer) -> None:
    with children(*start_readers([redis_server.url] * 3)) as readers:
        await burst(redis_server, lambda: redis_server.restart(down_s=1.0))
        after = {f"p{i}" for i in range(BATCHES // 2 * PER_BATCH, BATCHES * PER_BATCH)}
        for r in readers:
            batched, reloaded, reasons = collected(r, after)
            assert reasons[0] == "new" and "epoch" in reasons[1:], (reasons, r.errors())  # never a silent gap
            assert after <= set(batched) | set(reloaded)  # what Redis holds now reached every reader


async def test_one_reader_cut_off_by_a_proxy_loses_nothing(redis_server: RedisServer) -> None:
    proxy = TcpProxy(redis_server.port)
    try:
        with children(*start_readers([proxy.url, redis_server.url])) as readers:

            def cut() -> None:
                proxy.cut()
                time.sleep(1.5)
                proxy.restore()

            await burst(redis_server, cut)
            assert_none_lost(readers)
            assert "failed, retrying" in readers[0].errors()  # the cut reached the proxied reader
    finally:
        proxy.close()


def test_fixture_server_has_no_persistence(redis_server: RedisServer) -> None:
    assert redis_server.command("CONFIG", "GET", "appendonly") == ["appendonly", "no"]
    assert redis_server.command("CONFIG", "GET", "save") == ["save", ""]
