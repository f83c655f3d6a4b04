"""Durable fan-out on Redis Streams: the ban stream every process reads, and each process's inbox.

Not pub/sub: pub/sub loses messages on a connection kill, a restart or a slow reader, silently; a stream keeps
them until a reader reads from its cursor. Three parts:

- :class:`Publisher` takes what to publish from an :class:`Outbox` the caller owns (durable for bans: the ban
  book's sqlite outbox), publishes it pipelined (one script call per entry: INCR the stream's sequence + XADD with
  ``MAXLEN ~``; for bans the same call merges the rows into the fleet ban set with the book's rules and only
  publishes the rows that changed it), and acknowledges what Redis took. While Redis is down the entries wait in
  the outbox and are tried again with a jittered backoff: nothing is dropped.
- :class:`StreamReader` reads with a blocking XREAD from a :class:`~._protocol.Cursor` the caller persists; each
  batch is handed over with the cursor to store beside its effects. A cursor with no entry number to follow, a
  stream whose next entry does not follow the cursor (trimmed, or a Redis that rolled back), or a changed
  ``P:epoch`` (a Redis that lost its data) calls the handler's ``reload`` instead: never a silent gap.
- :func:`read_ban_set` walks the fleet ban set (HSCAN) for a reload.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

import anyio
import anyio.abc
import msgspec

from ._lua import PUBLISH, PUBLISH_BANS, STREAM_TAIL
from ._protocol import (
    BanRow,
    Cursor,
    StreamEntry,
    ban_field,
    decode_entry,
    decode_row,
    encode_row,
    gap,
)
from ._protocol import block_ms as block_ms_below
from ._redis import Arg, Call, FleetError, FleetRedis

__all__ = [
    "MemoryOutbox",
    "Outbox",
    "Outgoing",
    "Publisher",
    "StreamHandler",
    "StreamReader",
    "new_epoch",
    "publish_one",
    "read_ban_set",
]

log = logging.getLogger("gs_hooks.fleet")


def new_epoch() -> str:
    """A fresh random epoch (set when Redis holds none)."""
    return secrets.token_hex(8)


class Outgoing(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One entry to publish.

    Attributes:
        op: the entry's verb (``apply``/``lift`` for ban batches).
        event: an id for logs and dedupe.
        rows: ban rows (a ban stream: merged into the fleet ban set; only changed rows are published).
        body: the payload of a plain entry (inboxes).
    """

    op: str
    event: str
    rows: tuple[BanRow, ...] = ()
    body: bytes = b""


class Outbox(Protocol):
    """Entries waiting to be published; the caller's (a sqlite table for bans, memory for inboxes)."""

    async def pending(self, limit: int) -> Sequence[tuple[int, Outgoing]]:
        """The oldest entries not yet acknowledged, oldest first, with the caller's ids."""
        ...

    async def acknowledge(self, ids: Sequence[int]) -> None:
        """These entries are in the stream: drop them."""
        ...


class MemoryOutbox:
    """An :class:`Outbox` in memory (inbox messages, tests): lost with the process."""

    def __init__(self) -> None:
        self._items: dict[int, Outgoing] = {}
        self._next = 0

    def put(self, item: Outgoing) -> int:
        """Queue an entry; returns its id."""
        self._next += 1
        self._items[self._next] = item
        return self._next

    async def pending(self, limit: int) -> Sequence[tuple[int, Outgoing]]:
        return list(self._items.items())[:limit]

    async def acknowledge(self, ids: Sequence[int]) -> None:
        for i in ids:
            self._items.pop(i, None)

    def __len__(self) -> int:
        return len(self._items)


def _call(stream: str, set_key: str | None, maxlen: int, origin: str, item: Outgoing, ttl_ms: int) -> Call:
    if set_key is None:
        return PUBLISH, [stream], [maxlen, ttl_ms, item.op, origin, item.event, item.body]
    args: list[Arg] = [maxlen, item.op, origin, item.event]
    for row in item.rows:
        args += [ban_field(row.source, row.player), encode_row(row)]
    return PUBLISH_BANS, [stream, set_key], args


async def publish_one(
    redis: FleetRedis, stream: str, origin: str, item: Outgoing, *, maxlen: int, ttl_ms: int = 0
) -> str:
    """Publish one plain entry now (an inbox message); returns its stream id. Raises FleetError."""
    script, keys, args = _call(stream, None, maxlen, origin, item, ttl_ms)
    entry_id, _ = await redis.script(script, keys, args)
    return str(entry_id.decode() if isinstance(entry_id, bytes) else entry_id)


class Publisher:
    """Publish an outbox's entries to one stream, pipelined; acknowledge them once Redis has them.

    Args:
        redis: the connection.
        stream: the stream key.
        origin: this process's id (readers skip their own entries).
        outbox: where entries wait.
        maxlen: approximate length the stream is trimmed to.
        set_key: the fleet ban set, for a ban stream (entries then carry rows, merged by the book's rules).
        pipeline: entries per round trip.
    """

    def __init__(
        self,
        redis: FleetRedis,
        stream: str,
        origin: str,
        outbox: Outbox,
        *,
        maxlen: int,
        set_key: str | None = None,
        pipeline: int = 100,
    ) -> None:
        self.redis = redis
        self.stream = stream
        self.origin = origin
        self.outbox = outbox
        self.maxlen = maxlen
        self.set_key = set_key
        self.pipeline = pipeline
        self._wake: anyio.Event | None = None  # made in run(): a publisher may be built outside any event loop
        self._woken = False
        self.published = 0  # entries written to the stream (an entry that changed nothing is not written)

    def wake(self) -> None:
        """New entries are in the outbox: publish them now (call it from the event loop's thread)."""
        self._woken = True
        if self._wake is not None:
            self._wake.set()

    async def publish_pending(self) -> int:
        """Publish everything the outbox holds now; returns the entries acknowledged.

        Raises:
            FleetError: Redis could not be reached; the entries not acknowledged stay in the outbox.
        """
        done = 0
        while True:
            batch = await self.outbox.pending(self.pipeline)
            if not batch:
                return done
            calls = [_call(self.stream, self.set_key, self.maxlen, self.origin, item, 0) for _, item in batch]
            results = await self.redis.scripts(calls)
            self.published += sum(1 for r in results if r is not None)
            await self.outbox.acknowledge([i for i, _ in batch])
            done += len(batch)

    async def run(
        self, *, poll_s: float = 5.0, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Publish on every :meth:`wake` (and every ``poll_s``) until cancelled; retry with backoff while Redis
        is down."""
        task_status.started()
        attempt = 0
        while True:
            self._wake, self._woken = anyio.Event(), False
            try:
                await self.publish_pending()
                attempt = 0
            except FleetError as exc:
                await self.redis.pause(attempt, f"publishing to {self.stream}", exc)
                attempt += 1
                continue
            except Exception as exc:  # the outbox's (its store failed): kept there, tried again
                await self.redis.pause(attempt, f"reading the outbox of {self.stream}", exc, traceback=True)
                attempt += 1
                continue
            if not self._woken:
                with anyio.move_on_after(poll_s):
                    await self._wake.wait()


class StreamHandler(Protocol):
    """What a :class:`StreamReader` hands entries to."""

    async def entries(self, entries: Sequence[StreamEntry], cursor: Cursor) -> None:
        """Apply ``entries`` (other processes' entries, in order; may be empty) and persist ``cursor`` with them.

        An exception leaves the cursor where it was: the same entries come again after a backoff.
        """
        ...

    async def reload(self, reason: str, cursor: Cursor) -> None:
        """Rebuild the state from the fleet's full set, then persist ``cursor`` (noted before the set was read).

        ``reason``: ``new`` (no cursor), ``gap`` (entries after the cursor are gone: trimmed or rolled back) or
        ``epoch`` (Redis lost its data: publish what this process knows again first, then read the set).
        """
        ...


class StreamReader:
    """Read one stream from a cursor, blocking, and hand each batch to a :class:`StreamHandler`.

    Args:
        redis: the connection.
        stream: the stream key.
        epoch_key: ``P:epoch``.
        block_ms: XREAD's block time; kept below the client's socket timeout (:func:`~._protocol.block_ms`), so a
            quiet stream returns empty instead of timing out.
        count: entries per XREAD at most.
        skip_origin: entries published by this process id are left out of the batches (the cursor still
            moves past them).
    """

    def __init__(
        self,
        redis: FleetRedis,
        stream: str,
        epoch_key: str,
        *,
        block_ms: int,
        count: int = 1000,
        skip_origin: str | None = None,
    ) -> None:
        self.redis = redis
        self.stream = stream
        self.epoch_key = epoch_key
        self.block_ms = min(block_ms, block_ms_below(1e9, redis.config.socket_timeout_s))
        self.count = count
        self.skip_origin = skip_origin
        self.reloads: list[str] = []  # reasons, for metrics and tests
        self.cursor: Cursor | None = None

    async def run(
        self,
        cursor: Cursor | None,
        handler: StreamHandler,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Read until cancelled, starting from ``cursor`` (None: reload first). Redis errors and handler errors
        are retried with backoff; the cursor only moves when the handler returned."""
        task_status.started()
        self.cursor = cursor
        attempt = 0
        while True:
            try:
                await self.step(handler)
                attempt = 0
            except FleetError as exc:
                await self.redis.pause(attempt, f"reading {self.stream}", exc)
                attempt += 1
            except Exception as exc:  # the handler's: the same entries come again
                await self.redis.pause(attempt, f"handling entries of {self.stream}", exc, traceback=True)
                attempt += 1

    async def step(self, handler: StreamHandler) -> None:
        """One read (blocking up to ``block_ms``) or one reload.

        Raises:
            FleetError: Redis could not be reached (the cursor did not move).
        """
        cursor = self.cursor
        if cursor is None:
            await self._reload(handler, "new")
            return
        epoch, reply = await self.redis.read_blocking(
            self.epoch_key, self.stream, cursor.last_id, self.count, self.block_ms
        )
        if epoch is None or epoch.decode() != cursor.epoch:
            await self._reload(handler, "epoch")
            return
        if not reply:
            return
        entries = self._decode(reply[0][1])
        if not entries:
            return
        previous = cursor
        for entry in entries:
            if gap(previous, entry):
                await self._reload(handler, "gap")
                return
            previous = Cursor(epoch=cursor.epoch, last_id=entry.id, seq=entry.seq)
        mine = self.skip_origin
        await handler.entries([e for e in entries if e.origin != mine], previous)
        self.cursor = previous

    def _decode(self, raw: list[Any]) -> list[StreamEntry]:
        out: list[StreamEntry] = []
        for entry_id, fields in raw:
            if isinstance(fields, list):
                fields = dict(zip(fields[::2], fields[1::2], strict=True))
            try:
                out.append(decode_entry(entry_id, fields))
            except ValueError as exc:
                self.redis.note(f"decoding {self.stream}", exc)
        return out

    async def _reload(self, handler: StreamHandler, reason: str) -> None:
        epoch, last_id, seq = await self.redis.script(STREAM_TAIL, [self.epoch_key, self.stream], [new_epoch()])
        cursor = Cursor(epoch=epoch.decode(), last_id=last_id.decode(), seq=int(seq))
        log.info("fleet: reloading from %s (%s)", self.stream, reason)
        self.reloads.append(reason)
        await handler.reload(reason, cursor)
        self.cursor = cursor


async def read_ban_set(redis: FleetRedis, set_key: str, *, count: int = 1000) -> AsyncIterator[list[BanRow]]:
    """The fleet ban set, in chunks (HSCAN; rows changed meanwhile may come twice, which applying tolerates).

    Raises:
        FleetError: Redis could not be reached.
    """
    cursor: int | bytes = 0
    while True:
        cursor, flat = await redis.call("HSCAN", set_key, cursor, "COUNT", count)
        values = list(flat.values()) if isinstance(flat, dict) else flat[1::2]
        if values:
            yield [decode_row(value) for value in values]
        if int(cursor) == 0:
            return
