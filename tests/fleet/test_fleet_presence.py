"""Presence on a real Redis: the owner-key claim, kick notices in the loser's inbox, compare-and-delete release,
the periodic re-check; 1,000 concurrent claims of one player from 4 processes."""

from __future__ import annotations

import anyio
import pytest
from fleet_support import Child, RedisServer, children

from gs_hooks import FakeClock
from gs_hooks.fleet import FleetRedis, Keys, Membership, Owner, Presence
from gs_hooks.fleet._protocol import decode_entry, decode_kick

pytestmark = pytest.mark.anyio


async def live(redis: FleetRedis, keys: Keys, pid: str) -> Presence:
    await Membership(redis, keys, pid, heartbeat_s=1, member_ttl_s=30).beat()
    return Presence(redis, keys, pid)


async def inbox(redis: FleetRedis, keys: Keys, pid: str) -> list[tuple[str, object]]:
    out = []
    for entry_id, fields in await redis.call("XRANGE", keys.inbox(pid), "-", "+"):
        entry = decode_entry(
            entry_id, fields if isinstance(fields, dict) else dict(zip(fields[::2], fields[1::2], strict=True))
        )
        out.append((entry.op, decode_kick(entry.body)))
    return out


async def test_kick_older_swaps_and_tells_the_previous_process(fleet_redis: FleetRedis, keys: Keys) -> None:
    a, b = await live(fleet_redis, keys, "A"), await live(fleet_redis, keys, "B")
    first = await a.claim("p1", a.owner(1, 100), "kick_older")
    assert first.outcome == "claimed" and first.previous is None and not first.notified
    assert (await a.claim("p1", a.owner(1, 100), "kick_older")).outcome == "same"
    second = await b.claim("p1", b.owner(7, 200), "kick_older", event="ev1")
    assert second.outcome == "claimed" and second.previous == Owner("A", "1", 100) and second.notified
    [(op, notice)] = await inbox(fleet_redis, keys, "A")
    assert op == "kick" and notice.player == "p1"  # type: ignore[attr-defined]
    assert notice.previous == "A|1|100" and notice.current == "B|7|200"  # type: ignore[attr-defined]
    assert await b.get("p1") == Owner("B", "7", 200)
    # a claim over a session of the same process is the caller's to kick: no notice
    third = await b.claim("p1", b.owner(8, 300), "kick_older")
    assert third.previous == Owner("B", "7", 200) and not third.notified
    assert await inbox(fleet_redis, keys, "B") == []


async def test_a_dead_owner_gets_no_notice_and_does_not_refuse(fleet_redis: FleetRedis, keys: Keys) -> None:
    ghost = Presence(fleet_redis, keys, "GHOST")  # never sent a heartbeat: not a live member
    await ghost.claim("p1", ghost.owner(1, 1), "kick_older")
    b = await live(fleet_redis, keys, "B")
    got = await b.claim("p1", b.owner(2, 2), "refuse_newer")
    assert got.outcome == "claimed" and got.previous == Owner("GHOST", "1", 1) and not got.notified
    assert await fleet_redis.call("EXISTS", keys.inbox("GHOST")) == 0


async def test_refuse_newer_refuses_while_the_owner_is_live(fleet_redis: FleetRedis, keys: Keys) -> None:
    a, b = await live(fleet_redis, keys, "A"), await live(fleet_redis, keys, "B")
    await a.claim("p1", a.owner(1, 1), "refuse_newer")
    got = await b.claim("p1", b.owner(2, 2), "refuse_newer")
    assert got.outcome == "refused" and got.previous == Owner("A", "1", 1)
    assert await a.get("p1") == Owner("A", "1", 1) and await inbox(fleet_redis, keys, "A") == []
    # the owner's process knows its session is over (release not yet landed): it may claim over it
    over = await a.claim("p1", a.owner(3, 3), "refuse_newer", replace=Owner("A", "1", 1))
    assert over.outcome == "claimed"


async def test_release_is_compare_and_delete(fleet_redis: FleetRedis, keys: Keys) -> None:
    a, b = await live(fleet_redis, keys, "A"), await live(fleet_redis, keys, "B")
    await a.claim("p1", a.owner(1, 1), "kick_older")
    await b.claim("p1", b.owner(2, 2), "kick_older")
    assert not await a.release("p1", a.owner(1, 1))  # not a's any more: b's claim stays
    assert await b.get("p1") == Owner("B", "2", 2)
    await b.claim("p2", b.owner(3, 3), "kick_older")
    assert await b.release_many([("p1", b.owner(2, 2)), ("p2", b.owner(3, 3)), ("p3", b.owner(4, 4))]) == 2
    assert await b.get("p1") is None and await b.get("p2") is None


async def test_recheck_finds_lost_and_missing_sessions(fleet_redis: FleetRedis, keys: Keys) -> None:
    a, b = await live(fleet_redis, keys, "A"), await live(fleet_redis, keys, "B")
    held = {f"p{i}": a.owner(i, i) for i in range(1200)}
    for player, owner in held.items():
        await a.claim(player, owner, "kick_older")
    await b.claim("p5", b.owner(50, 50), "kick_older")  # taken while a's notice got lost
    await fleet_redis.call("DEL", keys.owner("p7"))  # lost with Redis's data
    lost, missing = await a.recheck(held, chunk=500)
    assert lost == ["p5"] and missing == ["p7"]


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["kick_older", "refuse_newer"])
def test_1000_concurrent_claims_from_4_processes(redis_server: RedisServer, policy: str) -> None:
    procs = [Child("claims", redis_server.url, "250", policy) for _ in range(4)]
    with children(*procs):
        pids = {c.expect(lambda m: m["type"] == "ready")["pid"]: c for c in procs}
        for c in procs:
            c.send({"go": True})
        results = [r for c in procs for r in c.expect(lambda m: m["type"] == "claims")["results"]]
        for c in procs:
            c.send({"done": True})
        told_remote = [t for c in procs for t in c.expect(lambda m: m["type"] == "inbox")["told"]]
    assert len(results) == 1000
    final = redis_server.command("GET", "t:tinyfarm_KR:owner:p1")
    if policy == "refuse_newer":
        claimed = [r for r in results if r["outcome"] == "claimed"]
        assert len(claimed) == 1 and claimed[0]["session"] == final
        assert all(r["previous"] == final for r in results if r["outcome"] == "refused")
        assert told_remote == []
        return
    assert all(r["outcome"] == "claimed" for r in results)
    sessions = {r["session"] for r in results}
    assert final in sessions
    # each claim superseded exactly one previous owner: a chain through all 1,000 sessions
    previous = [r["previous"] for r in results if r["previous"] is not None]
    assert len(previous) == 999 and set(previous) == sessions - {final}
    # every loser was told exactly once: by its own process (same pid: a local kick) or through its inbox
    told_local = [
        r["previous"] for r in results if r["previous"] and r["previous"].split("|")[0] == r["session"].split("|")[0]
    ]
    told = told_local + told_remote
    assert sorted(told) == sorted(sessions - {final})
    assert all(pid in pids for pid in {t.split("|")[0] for t in told})


async def test_the_recheck_loop_ends_lost_sessions_and_reclaims_missing(fleet_redis: FleetRedis, keys: Keys) -> None:
    clock = FakeClock()
    redis = FleetRedis(fleet_redis.config, clock=clock)
    a = await live(redis, keys, "A")
    b = await live(fleet_redis, keys, "B")
    held = {"p1": a.owner(1, 1), "p2": a.owner(2, 2)}
    for player, owner in held.items():
        await a.claim(player, owner, "kick_older")
    seen: list[tuple[str, list[str]]] = []

    async def lost(players: list[str]) -> None:
        seen.append(("lost", players))
        for p in players:
            held.pop(p)

    async def missing(players: list[str]) -> None:
        seen.append(("missing", players))
        for p in players:
            await a.claim(p, held[p], "kick_older")

    try:
        async with anyio.create_task_group() as tg:
            await tg.start(
                lambda task_status: a.run_recheck(lambda: held, lost, missing, every_s=5, task_status=task_status)
            )
            await b.claim("p1", b.owner(9, 9), "kick_older")
            await fleet_redis.call("DEL", keys.owner("p2"))
            await clock.advance(5)
            with anyio.fail_after(5):  # the check itself is network IO: wait for its outcome
                while len(seen) < 2:
                    await anyio.sleep(0.01)
            assert seen == [("lost", ["p1"]), ("missing", ["p2"])]
            assert await a.get("p2") == Owner("A", "2", 2)
            await clock.advance(5)
            await anyio.sleep(0.3)
            assert len(seen) == 2  # nothing more to do: one session per player again
            tg.cancel_scope.cancel()
    finally:
        await redis.aclose()
