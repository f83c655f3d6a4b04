"""Streams on a real Redis: the publisher and its outbox, the ban set's rules, the reader's cursor, and reloads
(new cursor, trimmed stream, lost data) instead of silent gaps."""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import pytest
from fleet_support import RedisServer, make_config

from gs_hooks.fleet import (
    BanRow,
    Cursor,
    FleetRedis,
    Keys,
    MemoryOutbox,
    Outgoing,
    Publisher,
    StreamEntry,
    StreamReader,
)
from gs_hooks.fleet._lua import ENSURE_EPOCH
from gs_hooks.fleet._protocol import decode_row, decode_rows
from gs_hooks.fleet._stream import publish_one, read_ban_set

pytestmark = pytest.mark.anyio


class Recorder:
    def __init__(self, redis: FleetRedis, keys: Keys, *, fail_once: bool = False) -> None:
        self.redis = redis
        self.keys = keys
        self.entries: list[StreamEntry] = []
        self.reloads: list[tuple[str, Cursor, list[BanRow]]] = []
        self.cursor: Cursor | None = None
        self.fail_once = fail_once

    async def entries_(self, entries: Sequence[StreamEntry], cursor: Cursor) -> None:
        if self.fail_once and entries:
            self.fail_once = False
            raise RuntimeError("handler failed once")
        self.entries.extend(entries)
        self.cursor = cursor

    async def reload(self, reason: str, cursor: Cursor) -> None:
        rows = [r async for chunk in read_ban_set(self.redis, self.keys.bans_set) for r in chunk]
        self.reloads.append((reason, cursor, rows))
        self.cursor = cursor

    def players(self) -> list[str]:
        return [r.player for e in self.entries for r in decode_rows(e.body)]


class Handler:
    def __init__(self, rec: Recorder) -> None:
        self.rec = rec

    async def entries(self, entries: Sequence[StreamEntry], cursor: Cursor) -> None:
        await self.rec.entries_(entries, cursor)

    async def reload(self, reason: str, cursor: Cursor) -> None:
        await self.rec.reload(reason, cursor)


def ban(player: str, start: float = 100.0, **kw: object) -> BanRow:
    return BanRow("hive", player, str(kw.get("status", "permanent")), start, kw.get("end"), "m", kw.get("lifted"))  # type: ignore[arg-type]


def publisher(redis: FleetRedis, keys: Keys, outbox: MemoryOutbox, origin: str = "pub") -> Publisher:
    return Publisher(redis, keys.bans, origin, outbox, maxlen=1000, set_key=keys.bans_set)


async def wait_for(predicate: object, timeout: float = 10) -> None:
    with anyio.fail_after(timeout):
        while not predicate():  # type: ignore[operator]
            await anyio.sleep(0.01)


async def test_reader_gets_batches_in_order_from_a_new_cursor(fleet_redis: FleetRedis, keys: Keys) -> None:
    outbox = MemoryOutbox()
    pub = publisher(fleet_redis, keys, outbox)
    outbox.put(Outgoing(op="apply", event="e0", rows=(ban("early"),)))
    await pub.publish_pending()
    rec = Recorder(fleet_redis, keys)
    reader = StreamReader(fleet_redis, keys.bans, keys.epoch, block_ms=200)
    async with anyio.create_task_group() as tg:
        await tg.start(reader.run, None, Handler(rec))
        await wait_for(lambda: rec.reloads)
        assert rec.reloads[0][0] == "new" and [r.player for r in rec.reloads[0][2]] == ["early"]
        for i in range(5):
            outbox.put(Outgoing(op="apply", event=f"e{i + 1}", rows=tuple(ban(f"p{i}-{j}") for j in range(3))))
        assert await pub.publish_pending() == 5 and len(outbox) == 0
        await wait_for(lambda: len(rec.entries) == 5)
        tg.cancel_scope.cancel()
    assert [e.event for e in rec.entries] == ["e1", "e2", "e3", "e4", "e5"]
    assert [e.seq for e in rec.entries] == [2, 3, 4, 5, 6]
    assert rec.cursor is not None and rec.cursor.seq == 6 and rec.cursor.last_id == rec.entries[-1].id
    assert rec.players()[:3] == ["p0-0", "p0-1", "p0-2"]


async def test_own_entries_are_skipped_but_the_cursor_moves(fleet_redis: FleetRedis, keys: Keys) -> None:
    ours, theirs = MemoryOutbox(), MemoryOutbox()
    tail = Cursor(epoch=(await fleet_redis.script(ENSURE_EPOCH, [keys.epoch], ["ep"])).decode())
    ours.put(Outgoing(op="apply", event="mine", rows=(ban("a"),)))
    theirs.put(Outgoing(op="apply", event="theirs", rows=(ban("b"),)))
    await publisher(fleet_redis, keys, ours, "me").publish_pending()
    await publisher(fleet_redis, keys, theirs, "other").publish_pending()
    rec = Recorder(fleet_redis, keys)
    reader = StreamReader(fleet_redis, keys.bans, keys.epoch, block_ms=100, skip_origin="me")
    reader.cursor = tail
    await reader.step(Handler(rec))
    assert [e.event for e in rec.entries] == ["theirs"] and rec.cursor is not None and rec.cursor.seq == 2


async def test_ban_set_applies_the_books_rules(fleet_redis: FleetRedis, keys: Keys) -> None:
    outbox = MemoryOutbox()
    pub = publisher(fleet_redis, keys, outbox)

    async def publish(*rows: BanRow, op: str = "apply") -> list[str]:
        before = pub.published
        outbox.put(Outgoing(op=op, event="e", rows=rows))
        await pub.publish_pending()
        if pub.published == before:
            return []
        raw = await fleet_redis.call("XREVRANGE", keys.bans, "+", "-", "COUNT", 1)
        fields = raw[0][1]
        body = fields[b"b"] if isinstance(fields, dict) else dict(zip(fields[::2], fields[1::2], strict=True))[b"b"]
        return [r.player for r in decode_rows(body)]

    assert await publish(ban("x", 100), ban("y", 100)) == ["x", "y"]
    assert await publish(ban("x", 100), ban("y", 100)) == []  # identical: nothing written, no entry
    assert await publish(ban("x", 50)) == []  # an older start is stale
    assert await publish(ban("x", 100, lifted=7.0), op="lift") == ["x"]  # a lift is a tombstone
    assert await publish(ban("x", 100)) == []  # re-applying the lifted ban does not revive it
    assert await publish(ban("x", 200, status="temporary", end=300.0), ban("y", 100)) == ["x"]  # a newer ban
    stored = {decode_row(v).player: decode_row(v) for v in (await fleet_redis.call("HVALS", keys.bans_set))}
    assert stored["x"].start == 200 and stored["x"].end == 300 and stored["x"].lifted_at is None
    big = tuple(ban(f"b{i}") for i in range(1400))  # more than 15 rows: the 16-bit array header
    assert len(await publish(*big)) == len(big)


async def test_a_trimmed_stream_reloads_instead_of_skipping(fleet_redis: FleetRedis, keys: Keys) -> None:
    outbox = MemoryOutbox()
    pub = publisher(fleet_redis, keys, outbox)
    rec = Recorder(fleet_redis, keys)
    reader = StreamReader(fleet_redis, keys.bans, keys.epoch, block_ms=100)
    await reader.step(Handler(rec))  # new: reload at the (empty) tail
    for i in range(10):
        outbox.put(Outgoing(op="apply", event=f"e{i}", rows=(ban(f"p{i}"),)))
    await pub.publish_pending()
    await fleet_redis.call("XTRIM", keys.bans, "MAXLEN", 3)  # entries 1-7 gone before this reader read them
    await reader.step(Handler(rec))
    assert [r[0] for r in rec.reloads] == ["new", "gap"]
    assert sorted(r.player for r in rec.reloads[1][2]) == sorted(f"p{i}" for i in range(10))
    assert rec.entries == [] and rec.cursor is not None and rec.cursor.seq == 10


async def test_lost_data_changes_the_epoch_and_reloads(fleet_redis: FleetRedis, keys: Keys) -> None:
    outbox = MemoryOutbox()
    pub = publisher(fleet_redis, keys, outbox)
    rec = Recorder(fleet_redis, keys)
    reader = StreamReader(fleet_redis, keys.bans, keys.epoch, block_ms=100)
    await reader.step(Handler(rec))
    first_epoch = rec.reloads[0][1].epoch
    await fleet_redis.call("FLUSHALL")
    outbox.put(Outgoing(op="apply", event="after", rows=(ban("z"),)))
    await pub.publish_pending()
    await reader.step(Handler(rec))
    assert [r[0] for r in rec.reloads] == ["new", "epoch"]
    assert rec.reloads[1][1].epoch != first_epoch and [r.player for r in rec.reloads[1][2]] == ["z"]


async def test_a_failing_handler_gets_the_same_entries_again(fleet_redis: FleetRedis, keys: Keys) -> None:
    outbox = MemoryOutbox()
    rec = Recorder(fleet_redis, keys, fail_once=True)
    reader = StreamReader(fleet_redis, keys.bans, keys.epoch, block_ms=100)
    async with anyio.create_task_group() as tg:
        await tg.start(reader.run, None, Handler(rec))
        await wait_for(lambda: rec.reloads)
        outbox.put(Outgoing(op="apply", event="e1", rows=(ban("a"),)))
        await publisher(fleet_redis, keys, outbox).publish_pending()
        await wait_for(lambda: rec.entries)
        tg.cancel_scope.cancel()
    assert [e.event for e in rec.entries] == ["e1"]


async def test_the_outbox_waits_while_redis_is_down(keys: Keys, redis_aof: RedisServer) -> None:
    redis = FleetRedis(make_config(redis_aof.url))
    await redis.start()
    outbox = MemoryOutbox()
    pub = publisher(redis, keys, outbox)
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(pub.run)
            redis_aof.kill()
            for i in range(5):
                outbox.put(Outgoing(op="apply", event=f"e{i}", rows=(ban(f"p{i}"),)))
                pub.wake()
            await anyio.sleep(0.5)  # several failed attempts
            assert len(outbox) == 5 and not redis.health().ok
            redis_aof.start()
            await wait_for(lambda: len(outbox) == 0)
            tg.cancel_scope.cancel()
        assert await redis.call("XLEN", keys.bans) == 5 and redis.health().ok
    finally:
        await redis.aclose()


async def test_publish_one_to_an_inbox_with_expiry(fleet_redis: FleetRedis, keys: Keys) -> None:
    entry_id = await publish_one(
        fleet_redis, keys.inbox("p"), "me", Outgoing(op="kick", event="e", body=b"x"), maxlen=10, ttl_ms=60_000
    )
    assert "-" in entry_id
    assert 0 < await fleet_redis.call("PTTL", keys.inbox("p")) <= 60_000
