"""A fleet process for the multi-process tests: ``python fleet_child.py ROLE URL [args]``; JSON lines on stdout.

Roles:
    reader URL              read the ban stream from no cursor; print each batch's rows and each reload
    leader URL              compete for the lease; the job writes ``t:...:last`` (fenced) every 50 ms; after a
                            leadership ends, try one late write with the old lease and print the outcome
    claims URL N POLICY     join, wait for "go" on stdin, claim player ``p1`` N times at once; print each
                            outcome, then print every kick notice of its inbox until "done"
    ccu URL INDEX PERIOD    join serving s1,s2; at each grid instant report counts (INDEX*10+k) and print them;
                            also compete for the lease and, while leading, freeze and complete every slot
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import anyio

from gs_hooks.fleet import (
    Cursor,
    Fence,
    FleetCcu,
    FleetConfig,
    FleetError,
    FleetRedis,
    Keys,
    Leadership,
    Membership,
    Presence,
    StreamEntry,
    StreamReader,
    new_process_id,
)
from gs_hooks.fleet._protocol import block_ms, decode_kick, decode_rows, freeze_ready
from gs_hooks.fleet._stream import read_ban_set

KEYS = Keys("t", "tinyfarm_KR")


def say(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def config(url: str, **more: Any) -> FleetConfig:
    return FleetConfig(url=url, game="tinyfarm_KR", prefix="t", socket_timeout_s=2.0, block_s=0.5, **more)


async def connect(url: str, **more: Any) -> FleetRedis:
    redis = FleetRedis(config(url, **more))
    while True:
        try:
            await redis.start()
            return redis
        except FleetError:
            await anyio.sleep(0.1)


class Collect:
    """A stream handler that prints what it gets."""

    def __init__(self, redis: FleetRedis) -> None:
        self.redis = redis

    async def entries(self, entries: Sequence[StreamEntry], cursor: Cursor) -> None:
        rows = [r.player for e in entries for r in decode_rows(e.body)]
        if rows:
            say(type="batch", rows=rows, seq=cursor.seq)

    async def reload(self, reason: str, cursor: Cursor) -> None:
        rows = [r.player async for chunk in read_ban_set(self.redis, KEYS.bans_set) for r in chunk]
        say(type="reload", reason=reason, rows=rows, seq=cursor.seq)


async def reader(url: str) -> None:
    redis = await connect(url)
    r = StreamReader(redis, KEYS.bans, KEYS.epoch, block_ms=block_ms(0.5, 2.0))
    async with anyio.create_task_group() as tg:
        await tg.start(r.run, None, Collect(redis))
        say(type="ready")


async def leader(url: str) -> None:
    redis = await connect(url)
    pid = new_process_id()
    lead = Leadership(redis, KEYS, pid, ttl_s=3.0, renew_s=1.0)
    last: list[Fence] = []

    async def job(fence: Fence) -> None:
        last.append(fence)
        say(type="leader", token=fence.token, os_pid=os.getpid())
        while True:
            await lead.fenced_set(fence, KEYS.base + "last", f"{fence.token}")
            await anyio.sleep(0.05)

    async def late_writer() -> None:
        while True:
            await anyio.sleep(0.05)
            if last and not lead.is_leader:
                fence = last.pop()
                try:
                    await lead.fenced_set(fence, KEYS.base + "last", f"late-{fence.token}")
                    say(type="late_write", token=fence.token, outcome="accepted")
                except FleetError as exc:
                    say(type="late_write", token=fence.token, outcome=type(exc).__name__)

    async with anyio.create_task_group() as tg:
        tg.start_soon(late_writer)
        await tg.start(lead.run, [job])
        say(type="ready", pid=pid)


async def claims(url: str, n: int, policy: str) -> None:
    redis = await connect(url)
    pid = new_process_id()
    members = Membership(redis, KEYS, pid, heartbeat_s=0.5, member_ttl_s=30.0)
    presence = Presence(redis, KEYS, pid)
    async with anyio.create_task_group() as tg:
        await tg.start(members.run)
        say(type="ready", pid=pid)
        await anyio.to_thread.run_sync(sys.stdin.readline)  # "go"
        results: list[dict[str, Any]] = []

        async def one(i: int) -> None:
            owner = presence.owner(f"{os.getpid()}-{i}", i)
            got = await presence.claim("p1", owner, policy)  # type: ignore[arg-type]
            prev = got.previous.encode() if got.previous else None
            results.append({"session": owner.encode(), "outcome": got.outcome, "previous": prev, "sent": got.notified})

        async with anyio.create_task_group() as inner:
            for i in range(n):
                inner.start_soon(one, i)
        say(type="claims", results=results)
        await anyio.to_thread.run_sync(sys.stdin.readline)  # "done"
        raw = await redis.call("XRANGE", KEYS.inbox(pid), "-", "+")
        told = [decode_kick(fields[b"b"]).previous for _, fields in _pairs(raw)]
        say(type="inbox", told=told)
        tg.cancel_scope.cancel()


def _pairs(raw: Any) -> list[tuple[Any, dict[bytes, bytes]]]:
    out = []
    for entry_id, fields in raw:
        if isinstance(fields, list):
            fields = dict(zip(fields[::2], fields[1::2], strict=True))
        out.append((entry_id, fields))
    return out


async def ccu(url: str, index: int, period_s: float) -> None:
    redis = await connect(url)
    pid = new_process_id()
    members = Membership(redis, KEYS, pid, heartbeat_s=0.25, member_ttl_s=1.5, server_ids=("s1", "s2"))
    lead = Leadership(redis, KEYS, pid, ttl_s=1.5, renew_s=0.5)
    fleet = FleetCcu(redis, KEYS, pid, lead, staleness_s=period_s / 2)

    async def freezer(fence: Fence) -> None:
        say(type="leader", token=fence.token)
        while True:
            now_ms, live = await members.members()
            slot = int((now_ms // (period_s * 1000)) * period_s * 1000)
            for back in range(1, 6):
                at = slot - int(back * period_s * 1000)
                for server in ("s1", "s2"):
                    if await fleet.frozen(server, at) is None and freeze_ready(server, at, live, now_ms, 1500):
                        value, new = await fleet.freeze(fence, server, at)
                        say(type="frozen", server=server, slot=at, value=value, new=new)
            for sample in await fleet.pending():
                await fleet.complete(fence, sample, 100)
            await anyio.sleep(0.1)

    async with anyio.create_task_group() as tg:
        await tg.start(members.run)
        await tg.start(lead.run, [freezer])
        say(type="ready", pid=pid)
        k = 0
        while True:
            wall = time.time()
            nxt = (int(wall / period_s) + 1) * period_s
            say(type="waiting", slot=round(nxt * 1000))  # asleep until the slot's instant (a test may pause us now)
            await anyio.sleep(nxt - wall + 0.01)
            slot_ms = round(nxt * 1000)
            k += 1
            counts = {"s1": index * 10 + k % 7, "s2": index * 100 + k % 5}
            say(type="reporting", slot=slot_ms)
            out = await fleet.report(slot_ms, counts)
            say(type="report", slot=slot_ms, counts=counts, outcomes=out)


def main() -> None:
    role, url, *rest = sys.argv[1:]
    if role == "reader":
        anyio.run(reader, url)
    elif role == "leader":
        anyio.run(leader, url)
    elif role == "claims":
        anyio.run(claims, url, int(rest[0]), rest[1])
    elif role == "ccu":
        anyio.run(ccu, url, int(rest[0]), float(rest[1]))
    else:
        raise SystemExit(f"unknown role {role}")


if __name__ == "__main__":
    main()
