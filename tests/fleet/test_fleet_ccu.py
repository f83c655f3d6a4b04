"""CCU primitives on a real Redis: absolute reports, the fenced freeze of a sum, pending, completion, history;
and 4 processes on 2 server ids through kill -9 (before and after a report), a leader kill and a pause."""

from __future__ import annotations

import signal
import time
from collections import defaultdict

import pytest
from fleet_support import Child, RedisServer, children

from gs_hooks.fleet import FencedError, FleetCcu, FleetRedis, Keys, Leadership, Membership, PendingSample

pytestmark = pytest.mark.anyio


async def setup(redis: FleetRedis, keys: Keys, pid: str) -> tuple[FleetCcu, Leadership]:
    await Membership(redis, keys, pid, heartbeat_s=1, member_ttl_s=30).beat()
    lead = Leadership(redis, keys, pid, ttl_s=30, renew_s=1)
    return FleetCcu(redis, keys, pid, lead, staleness_s=5), lead


async def now_ms(redis: FleetRedis) -> int:
    sec, usec = await redis.call("TIME")
    return int(sec) * 1000 + int(usec) // 1000


async def test_reports_freeze_once_to_the_sum(fleet_redis: FleetRedis, keys: Keys) -> None:
    a, lead = await setup(fleet_redis, keys, "A")
    b, _ = await setup(fleet_redis, keys, "B")
    slot = (await now_ms(fleet_redis)) // 1000 * 1000
    assert await a.report(slot, {"s1": 5, "s10": 100}) == {"s1": "ok", "s10": "ok"}
    assert await b.report(slot, {"s1": 7}) == {"s1": "ok"}
    assert await a.report(slot, {"s1": 6, "s10": 100}) == {"s1": "ok", "s10": "ok"}  # absolute: replaces
    assert await a.reports(slot) == {("s1", "A"): 6, ("s10", "A"): 100, ("s1", "B"): 7}
    fence, _ = await lead.acquire_once()
    assert fence is not None
    assert await a.freeze(fence, "s1", slot) == (13, True)  # s10's count is not s1's
    assert await b.report(slot, {"s1": 99}) == {"s1": "frozen"}  # too late: the frozen value never changes
    assert await a.freeze(fence, "s1", slot) == (13, False)
    assert await a.frozen("s1", slot) == 13
    assert await a.pending() == [PendingSample("s1", slot, 13)]
    assert await a.complete(fence, PendingSample("s1", slot, 13), 100)
    assert not await a.complete(fence, PendingSample("s1", slot, 13), 100)  # done already: no second record
    assert await a.pending() == []
    assert await a.history("s1", slot, slot) == [(slot, 13, 100)]
    members = {
        m.pid: m for m in (await Membership(fleet_redis, keys, "A", heartbeat_s=1, member_ttl_s=30).members())[1]
    }
    assert members["A"].ccu_through_ms == slot and members["B"].ccu_through_ms == slot


async def test_a_late_count_is_stale_but_moves_ccu_through(fleet_redis: FleetRedis, keys: Keys) -> None:
    a, _ = await setup(fleet_redis, keys, "A")
    old = (await now_ms(fleet_redis)) - 6000  # an instant 6 s ago; the staleness bound is 5 s
    assert await a.report(old, {"s1": 5}) == {"s1": "stale"}
    assert await a.reports(old) == {}
    assert await fleet_redis.call("HGET", keys.member("A"), "ccu_through") == str(old).encode()


async def test_leader_writes_are_fenced(fleet_redis: FleetRedis, keys: Keys) -> None:
    a, lead = await setup(fleet_redis, keys, "A")
    fence, _ = await lead.acquire_once()
    assert fence is not None
    slot = (await now_ms(fleet_redis)) // 1000 * 1000
    await a.report(slot, {"s1": 5})
    await lead.release(fence)
    with pytest.raises(FencedError):
        await a.freeze(fence, "s1", slot)
    assert await a.frozen("s1", slot) is None and await a.pending() == []


async def test_prune_keeps_pending_slots(fleet_redis: FleetRedis, keys: Keys) -> None:
    a, lead = await setup(fleet_redis, keys, "A")
    fence, _ = await lead.acquire_once()
    assert fence is not None
    now = (await now_ms(fleet_redis)) // 1000 * 1000
    for slot in (now - 3000, now - 2000, now - 1000):
        await a.report(slot, {"s1": 1})
        await a.freeze(fence, "s1", slot)
    await a.complete(fence, PendingSample("s1", now - 3000, 1), 100)
    await a.complete(fence, PendingSample("s1", now - 1000, 1), 100)
    assert await a.prune(fence, ["s1"], now - 1000) == 1  # the sent old slot; the pending one stays
    assert await a.history("s1", 0, now) == [(now - 1000, 1, 100)]
    assert [p.slot_ms for p in await a.pending()] == [now - 2000]


@pytest.mark.slow
def test_four_processes_two_servers_kills_and_a_pause(redis_server: RedisServer) -> None:
    period = 2.0
    procs = [Child("ccu", redis_server.url, str(i), str(period)) for i in range(1, 5)]
    with children(*procs):
        for c in procs:
            c.expect(lambda m: m["type"] == "ready")
        for c in procs:
            for _ in range(2):
                c.expect(lambda m: m["type"] == "report")
        leader = _leader(procs)
        x = next(c for c in procs if c is not leader)
        x.expect(lambda m: m["type"] == "report")
        x.kill()  # after its report of this slot, before its report of the next
        leader.expect(lambda m: m["type"] == "report")
        leader.kill()
        rest = [c for c in procs if c not in (x, leader)]
        new_leader = _leader(rest, timeout=15)
        y = next(c for c in rest if c is not new_leader)
        y.expect(lambda m: m["type"] == "report")
        asleep = y.expect(lambda m: m["type"] == "waiting")  # y sleeps until the next instant: pause it there
        y.signal(signal.SIGSTOP)  # paused past the next instant
        time.sleep(max(0.0, asleep["slot"] / 1000 - time.time()) + period * 0.8)  # 0.8 period after the instant
        y.signal(signal.SIGCONT)  # it wakes beyond the staleness bound (half a period) and reports that slot
        late = y.expect(lambda m: m["type"] == "report" and m["slot"] == asleep["slot"])
        for c in rest:
            for _ in range(2):
                c.expect(lambda m: m["type"] == "report")
        last_slot = max(m["slot"] for m in new_leader.seen if m["type"] == "report") - int(period * 1000)
        deadline = time.monotonic() + 15
        while redis_server.command("HGET", "t:tinyfarm_KR:ccu:frozen", f"s2|{last_slot}") is None:
            assert time.monotonic() < deadline, "the last slot was never frozen"
            time.sleep(0.1)
        time.sleep(1.0)  # the leader completes what it froze
    for c in procs:
        c.drain()  # every line each process printed, not only those the steps above waited for
    assert set(late["outcomes"].values()) <= {"stale", "frozen"}  # the paused process did not count late
    sums: dict[tuple[str, int], int] = defaultdict(int)
    refused: list[tuple[int, str]] = []
    for c in procs:
        for m in c.seen:
            if m["type"] != "report":
                continue
            for server, outcome in m["outcomes"].items():
                if outcome == "ok":
                    sums[(server, m["slot"])] += m["counts"][server]
                elif m is not late:
                    refused.append((m["slot"], outcome))
    assert refused == []  # no live, unpaused process's count was refused: nothing was frozen too early
    checked = 0
    for (server, slot), total in sorted(sums.items()):
        if slot > last_slot:
            continue
        frozen = redis_server.command("HGET", "t:tinyfarm_KR:ccu:frozen", f"{server}|{slot}")
        assert frozen == str(total), (server, slot, frozen, total)
        history = redis_server.command("ZRANGEBYSCORE", f"t:tinyfarm_KR:ccu:hist:{server}", str(slot), str(slot))
        assert history == [f"{slot}:{total}:100"]  # sent (completed) exactly once
        checked += 1
    assert checked >= 8  # at least 4 slots x 2 server ids, across every fault above
    assert redis_server.command("ZCARD", "t:tinyfarm_KR:ccu:pending") == 0


def _leader(procs: list[Child], timeout: float = 10) -> Child:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for c in procs:
            for m in c.drain():
                if m.get("type") == "leader" and not m.get("counted"):
                    m["counted"] = True
                    return c
        time.sleep(0.05)
    raise AssertionError("no leader")
