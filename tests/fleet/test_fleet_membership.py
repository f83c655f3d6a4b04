"""Membership on a real Redis: heartbeats, live members pruned by expiry (Redis's clock), leaving."""

from __future__ import annotations

import anyio
import pytest

from gs_hooks.fleet import FleetRedis, Keys, Membership, new_process_id

pytestmark = pytest.mark.anyio


async def test_heartbeats_make_live_members_with_their_fields(fleet_redis: FleetRedis, keys: Keys) -> None:
    a = Membership(fleet_redis, keys, new_process_id(), heartbeat_s=1, member_ttl_s=5, server_ids=("s1", "s2"))
    b = Membership(fleet_redis, keys, new_process_id(), heartbeat_s=1, member_ttl_s=5, listener="http://x:1")
    now_a = await a.beat()
    await b.beat()
    now, live = await a.members()
    assert sorted(m.pid for m in live) == sorted([a.pid, b.pid])
    ma = next(m for m in live if m.pid == a.pid)
    assert ma.server_ids == ("s1", "s2") and 0 <= now_a - ma.started_ms < 1000 and ma.expires_ms > now
    assert next(m for m in live if m.pid == b.pid).listener == "http://x:1"
    assert "/" in a.pid and a.pid != b.pid


async def test_a_silent_member_lapses_and_is_pruned(fleet_redis: FleetRedis, keys: Keys) -> None:
    quick = Membership(fleet_redis, keys, new_process_id(), heartbeat_s=0.05, member_ttl_s=0.2)
    steady = Membership(fleet_redis, keys, new_process_id(), heartbeat_s=1, member_ttl_s=30)
    await quick.beat()
    await steady.beat()
    assert len((await steady.members())[1]) == 2
    await anyio.sleep(0.3)  # Redis's own clock moves: the lapsed entry goes at the next read
    _, live = await steady.members()
    assert [m.pid for m in live] == [steady.pid]
    assert await fleet_redis.call("ZSCORE", keys.members, quick.pid) is None  # pruned, not only filtered
    assert await fleet_redis.call("EXISTS", keys.member(quick.pid)) == 0  # the hash expired too


async def test_a_member_back_after_lapsing_keeps_its_start(fleet_redis: FleetRedis, keys: Keys) -> None:
    m = Membership(fleet_redis, keys, new_process_id(), heartbeat_s=0.05, member_ttl_s=0.15, server_ids=("s1",))
    await m.beat()
    first = m.started_ms
    await anyio.sleep(0.25)
    assert (await m.members())[1] == []
    await m.beat()
    _, live = await m.members()
    assert live[0].started_ms == first and live[0].server_ids == ("s1",)


async def test_run_keeps_beating_and_leave_is_immediate(fleet_redis: FleetRedis, keys: Keys) -> None:
    m = Membership(fleet_redis, keys, new_process_id(), heartbeat_s=0.05, member_ttl_s=0.2)
    async with anyio.create_task_group() as tg:
        await tg.start(m.run)
        await anyio.sleep(0.4)  # twice the TTL: only the loop keeps it a member
        assert [x.pid for x in (await m.members())[1]] == [m.pid]
        tg.cancel_scope.cancel()
    assert m.beats >= 3
    await m.leave()
    assert (await m.members())[1] == []
