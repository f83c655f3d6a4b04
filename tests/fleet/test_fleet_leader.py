"""The leader lease on a real Redis: one holder, fencing tokens, jobs stop on loss, on their own deadline, and
a paused old leader's late write refused; failover after kill -9 across real processes."""

from __future__ import annotations

import signal
import time

import anyio
import pytest
from fleet_support import Child, RedisServer, children

from gs_hooks.fleet import Fence, FencedError, FleetRedis, Keys, Leadership

pytestmark = pytest.mark.anyio


async def test_one_holder_and_a_fresh_token_each_time(fleet_redis: FleetRedis, keys: Keys) -> None:
    a = Leadership(fleet_redis, keys, "a", ttl_s=3, renew_s=1)
    b = Leadership(fleet_redis, keys, "b", ttl_s=3, renew_s=1)
    fa, _ = await a.acquire_once()
    fb, left = await b.acquire_once()
    assert fa is not None and fb is None and 2.5 < left <= 3
    assert await a.renew_once(fa)
    assert await a.release(fa)
    fb, _ = await b.acquire_once()
    assert fb is not None and fb.token == fa.token + 1
    assert not await a.renew_once(fa)  # a lease that is not ours is not renewed


async def test_a_stale_fence_writes_nothing(fleet_redis: FleetRedis, keys: Keys) -> None:
    a = Leadership(fleet_redis, keys, "a", ttl_s=3, renew_s=1)
    fa, _ = await a.acquire_once()
    assert fa is not None
    await a.fenced_set(fa, "t:k", "first")
    await a.release(fa)
    b = Leadership(fleet_redis, keys, "b", ttl_s=3, renew_s=1)
    fb, _ = await b.acquire_once()
    assert fb is not None
    with pytest.raises(FencedError):
        await a.fenced_set(fa, "t:k", "late")
    assert await fleet_redis.call("GET", "t:k") == b"first"
    with pytest.raises(FencedError):
        await a.fenced_set(Fence("b", fb.token - 1), "t:k", "forged")  # same pid, old token


async def test_jobs_run_while_leading_and_stop_when_the_lease_is_taken(fleet_redis: FleetRedis, keys: Keys) -> None:
    lead = Leadership(fleet_redis, keys, "a", ttl_s=0.6, renew_s=0.2)
    ran = anyio.Event()
    stopped = anyio.Event()

    async def job(fence: Fence) -> None:
        ran.set()
        try:
            await anyio.sleep_forever()
        finally:
            stopped.set()

    async with anyio.create_task_group() as tg:
        await tg.start(lead.run, [job])
        with anyio.fail_after(5):
            await ran.wait()
        assert lead.is_leader
        await fleet_redis.call("SET", keys.leader, "thief|999", "PX", 60000)
        with anyio.fail_after(5):
            await stopped.wait()
        assert not lead.is_leader
        tg.cancel_scope.cancel()
    assert await fleet_redis.call("GET", keys.leader) == b"thief|999"  # the shutdown released nothing of another's


async def test_shutdown_releases_the_lease(fleet_redis: FleetRedis, keys: Keys) -> None:
    lead = Leadership(fleet_redis, keys, "a", ttl_s=3, renew_s=1)
    async with anyio.create_task_group() as tg:
        await tg.start(lead.run, [])
        with anyio.fail_after(5):
            while not lead.is_leader:
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    assert await fleet_redis.call("GET", keys.leader) is None


async def test_a_leader_cut_off_stops_acting_at_its_own_deadline(
    fleet_redis: FleetRedis, keys: Keys, redis_server: RedisServer
) -> None:
    lead = Leadership(fleet_redis, keys, "a", ttl_s=0.8, renew_s=0.2)
    stopped_at: list[float] = []
    ran = anyio.Event()

    async def job(fence: Fence) -> None:
        ran.set()
        try:
            await anyio.sleep_forever()
        finally:
            stopped_at.append(time.monotonic())

    async with anyio.create_task_group() as tg:
        await tg.start(lead.run, [job])
        with anyio.fail_after(5):
            await ran.wait()
        redis_server.pause()  # renewals hang: only the leader's own deadline can stop it
        paused_at = time.monotonic()
        try:
            with anyio.fail_after(5):
                while not stopped_at:
                    await anyio.sleep(0.02)
            assert redis_server.paused  # it stopped while Redis still could not tell it anything
            assert not lead.is_leader
            # ... and before Redis would hand the lease to another (ttl after the last renewal was sent)
            assert stopped_at[0] - paused_at < 0.8
        finally:
            redis_server.resume()
        tg.cancel_scope.cancel()


@pytest.mark.slow
def test_failover_after_kill_9_and_a_paused_leaders_late_write_is_refused(redis_server: RedisServer) -> None:
    procs = [Child("leader", redis_server.url) for _ in range(3)]
    with children(*procs):
        for c in procs:
            c.expect(lambda m: m["type"] == "ready")
        first = _next_leader(procs, timeout=10)
        t0 = time.monotonic()
        first.kill()
        rest = [c for c in procs if c is not first]
        second = _next_leader(rest, timeout=10)  # the bar: another leads within 10 s
        failover = time.monotonic() - t0
        print(f"failover after kill -9: {failover:.2f} s (lease TTL 3 s, renew 1 s)")
        token2 = second.seen[-1]["token"]

        second.signal(signal.SIGSTOP)  # paused past its lease
        t1 = time.monotonic()
        third = _next_leader([c for c in rest if c is not second], timeout=10)
        print(f"takeover from a paused leader: {time.monotonic() - t1:.2f} s")
        assert third.seen[-1]["token"] > token2
        second.signal(signal.SIGCONT)
        late = second.expect(lambda m: m["type"] == "late_write", timeout=10)
        assert late == {"type": "late_write", "token": token2, "outcome": "FencedError"}
        time.sleep(0.2)
        assert redis_server.command("GET", "t:tinyfarm_KR:last") == str(third.seen[-1]["token"])


def _next_leader(procs: list[Child], timeout: float) -> Child:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for c in procs:
            for line in c.drain()[-50:]:
                if line.get("type") == "leader" and not line.get("counted"):
                    line["counted"] = True
                    return c
        time.sleep(0.02)
    raise AssertionError(f"no new leader within {timeout} s")
