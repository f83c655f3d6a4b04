"""Bans across the fleet: the ban book's persistence in fleet mode, its outbox, and the reader of the ban stream.

Strategy (the book's rows stay in sqlite; fleet mode adds to the same transactions):

- A **local** batch (the Hive webhook, ``hooks.ban()``/``hooks.unban()``, the Gamebase poller on the leader) goes
  as always: memory, then the local kicks, then one sqlite transaction. :class:`FleetBanStore` adds to that
  transaction an outbox entry holding the rows written (``fleet_outbox``), so the webhook answers only once the
  ban is both recorded and queued for the fleet. The publisher is woken at once; it sends the outbox entries to
  the ban stream (one script per entry merges the rows into the fleet's ban set by the book's own rules and
  appends an entry only for the rows that changed it) and deletes what Redis took. While Redis is down the
  entries wait in sqlite (a restart keeps them) and are forwarded when it answers.
- Every process reads the stream from a cursor (:class:`BanSync`), skipping its own entries, and applies the
  others' rows through the book's idempotent paths: :meth:`~gs_hooks.bans.BanBook.apply` for bans (which kicks
  the player's local sessions) and :meth:`~gs_hooks.bans.BanBook.merge_lifted` for lifts, with a **remote**
  origin: no outbox entry, and the cursor written in the same transaction as the rows it produced (or alone,
  when the rows changed nothing). Applying an entry twice kicks no one twice.
- A reload, never a silent gap: with no cursor (a new process), a cursor the stream no longer continues (trimmed,
  or a Redis that rolled back) or a changed epoch (a Redis that lost its data), the process notes the stream's
  end, reads the whole ban set and applies it, then stores the noted cursor. On a new process or a changed
  epoch it first puts the rows of its own book back in the outbox and publishes them, so a set Redis lost is
  rebuilt as the union of what the processes know.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import anyio
import anyio.abc
import anyio.lowlevel

from .._clock import Clock
from ..bans._book import BanBook
from ..bans._model import Ban, BatchOrigin
from ._ban_store import FleetBanStore, SqliteOutbox, ban_of, row_of
from ._leader import Leadership
from ._lua import BANS_PRUNE
from ._protocol import (
    BanRow,
    Cursor,
    Fence,
    Keys,
    StreamEntry,
    decode_row,
    decode_rows,
    encode_cursor,
)
from ._redis import FleetRedis
from ._stream import Publisher, StreamReader, read_ban_set

__all__ = ["BanSetPruner", "BanSync", "FleetBanStore", "SqliteOutbox", "ban_of", "row_of"]

log = logging.getLogger("gs_hooks.fleet")

APPLY_CHUNK = 1000
"""Rows per book call when a reload applies the fleet's ban set."""
CURSOR_EVERY_S = 1.0
"""A cursor that moved past entries changing nothing here is stored at most this often."""
PRUNE_EVERY_S = 3600.0
"""How often the leader drops from the fleet's ban set the rows every book has purged."""


class BanSync:
    """Reads the ban stream and applies the other processes' batches to the book (a stream handler), and owns the
    publisher of this process's outbox.

    Args:
        redis: the connection.
        keys: the fleet's keys.
        pid: this process's id (its own entries are skipped).
        book: the ban book (its persistence must be ``store``).
        store: the fleet persistence of the book.
        block_ms: the blocking read's time.
        maxlen: the stream's approximate length.

    Attributes:
        publisher: sends the outbox to the stream.
        reader: reads the stream.
        applied: rows of other processes' entries handed to the book.
        reloads: the reasons of the reloads so far.
    """

    def __init__(
        self,
        redis: FleetRedis,
        keys: Keys,
        pid: str,
        *,
        book: BanBook,
        store: FleetBanStore,
        block_ms: int,
        maxlen: int,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.pid = pid
        self.book = book
        self.store = store
        self.outbox = store.outbox
        self.publisher = Publisher(redis, keys.bans, pid, self.outbox, maxlen=maxlen, set_key=keys.bans_set)
        self.reader = StreamReader(redis, keys.bans, keys.epoch, block_ms=block_ms, skip_origin=pid)
        self.applied = 0
        self.reloads: list[str] = []
        self._cursor_saved_at = float("-inf")
        self._cursor_due: str | None = None

    # -- the tasks (run by the fleet component) ----------------------------------------------------------------

    async def run_publisher(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Publish the outbox (what a crash or an outage left first) until cancelled."""
        await self.publisher.run(task_status=task_status)

    async def run_reader(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Catch up (the stored cursor, or a reload), report ready, then read until cancelled."""
        reader = self.reader
        attempt = 0
        while True:
            try:
                reader.cursor = await self.store.load_cursor()
                break
            except Exception as exc:  # the store: the book's own writes report it too
                await self.redis.pause(attempt, "reading the ban stream cursor", exc)
                attempt += 1
        block_ms, reader.block_ms = reader.block_ms, 1
        attempt = 0
        try:
            while True:  # until a read finds nothing new: what was published before this start is applied
                before = reader.cursor
                try:
                    await reader.step(self)
                except Exception as exc:
                    await self.redis.pause(attempt, "catching up with the ban stream", exc, traceback=True)
                    attempt += 1
                    continue
                if reader.cursor == before:
                    break
        finally:
            reader.block_ms = block_ms
        task_status.started()
        await reader.run(reader.cursor, self)

    async def flush(self) -> None:
        """At shutdown: store the cursor not stored yet, publish what the outbox holds (raises FleetError when
        Redis cannot take it: the entries wait in sqlite for the next start)."""
        due = self._cursor_due
        if due is not None and self.store.saved_cursor != due:
            await self.store.save_cursor(due)
        await self.publisher.publish_pending()

    # -- the stream handler ------------------------------------------------------------------------------------

    async def entries(self, entries: Sequence[StreamEntry], cursor: Cursor) -> None:
        """Apply other processes' rows (last state per ban key across the batch), then store the cursor."""
        latest: dict[tuple[str, str], BanRow] = {}
        for entry in entries:
            try:
                rows = decode_rows(entry.body)
            except ValueError as exc:
                self.redis.note(f"decoding ban entry {entry.event}", exc)
                continue
            for row in rows:
                latest[(row.source, row.player)] = row
        await self._apply(list(latest.values()), encode_cursor(cursor).decode())

    async def reload(self, reason: str, cursor: Cursor) -> None:
        """Rebuild from the fleet's ban set (after republishing this book on a new process or a lost Redis)."""
        self.reloads.append(reason)
        if reason in ("new", "epoch"):
            queued = await self.store.republish_book()
            if queued:
                log.info("fleet: republishing the %d rows of this process's ban book (%s)", queued, reason)
            await self.publisher.publish_pending()
        rows: list[BanRow] = []
        async for chunk in read_ban_set(self.redis, self.keys.bans_set):
            rows.extend(chunk)
        log.info("fleet: reloading %d rows of the fleet's ban set (%s)", len(rows), reason)
        for i in range(0, max(len(rows), 1), APPLY_CHUNK):
            last = i + APPLY_CHUNK >= len(rows)
            await self._apply(rows[i : i + APPLY_CHUNK], encode_cursor(cursor).decode() if last else None, save=last)

    async def _apply(self, rows: Sequence[BanRow], cursor: str | None, *, save: bool = False) -> None:
        """Apply rows through the book, the cursor with the last write. A cursor that changed nothing here (a batch of
        this process's own entries) is stored at most every ``CURSOR_EVERY_S`` (and at shutdown): a restart from an
        older cursor only re-reads entries that change nothing."""
        bans: list[Ban] = []
        lifts: list[tuple[Ban, float]] = []
        for row in rows:
            try:
                ban = ban_of(row)
            except (TypeError, ValueError) as exc:
                self.redis.note("reading a fleet ban row", exc)
                continue
            if row.lifted_at is None:
                bans.append(ban)
            else:
                lifts.append((ban, row.lifted_at))
        self.applied += len(rows)
        no_cursor = BatchOrigin(remote=True)
        if bans:
            await self.book.apply(bans, origin=no_cursor if lifts else BatchOrigin(remote=True, cursor=cursor))
        if lifts:
            await self.book.merge_lifted(lifts, origin=BatchOrigin(remote=True, cursor=cursor))
        if cursor is None or self.store.saved_cursor == cursor:
            return
        now = anyio.current_time()
        if rows or save or now >= self._cursor_saved_at + CURSOR_EVERY_S:
            await self.store.save_cursor(cursor)
            self._cursor_saved_at, self._cursor_due = now, None
        else:
            self._cursor_due = cursor

    def __repr__(self) -> str:
        return f"BanSync({self.pid!r}, applied={self.applied})"


class BanSetPruner:
    """The leader-only job that keeps the fleet's ban set as long as the books' memory: rows that ended or were
    lifted more than ``retention_s`` ago (what every book purges) are deleted, each only while it still holds the
    row read (fenced: only the leader deletes).

    Args:
        leadership: the lease (and its connection).
        keys: the fleet's keys.
        retention_s: the ban book's retention.
        clock: the injected clock (sleeps, the cutoff).
        every_s: the period (the first prune runs when this process starts leading).

    Attributes:
        pruned: rows deleted by this process so far.
    """

    def __init__(
        self, leadership: Leadership, keys: Keys, *, retention_s: float, clock: Clock, every_s: float = PRUNE_EVERY_S
    ) -> None:
        self.leadership = leadership
        self.keys = keys
        self.retention_s = retention_s
        self.clock = clock
        self.every_s = every_s
        self.pruned = 0
        self.__name__ = "ban set prune"

    async def prune_once(self, fence: Fence) -> int:
        """One pass over the set; returns the rows deleted. Raises FencedError / FleetError."""
        cutoff = self.clock.time() - self.retention_s
        redis = self.leadership.redis
        scan: int | bytes = 0
        stale: list[str | bytes] = []
        deleted = 0
        while True:
            scan, flat = await redis.call("HSCAN", self.keys.bans_set, scan, "COUNT", 1000)
            pairs = list(flat.items()) if isinstance(flat, dict) else list(zip(flat[::2], flat[1::2], strict=True))
            for field, value in pairs:
                try:
                    row = decode_row(value)
                except ValueError:
                    continue
                if (row.lifted_at is not None and row.lifted_at < cutoff) or (row.end is not None and row.end < cutoff):
                    stale += [field, value]
            if len(stale) >= 1000 or (int(scan) == 0 and stale):
                deleted += int(await self.leadership.fenced(fence, BANS_PRUNE, [self.keys.bans_set], stale))
                stale = []
            if int(scan) == 0:
                break
        self.pruned += deleted
        if deleted:
            log.info("fleet: %d rows older than the ban books' retention dropped from the fleet's ban set", deleted)
        return deleted

    async def __call__(self, fence: Fence) -> None:
        """Prune while leading."""
        while True:
            await self.prune_once(fence)
            await self.clock.sleep(self.every_s)

    def __repr__(self) -> str:
        return f"BanSetPruner(pruned={self.pruned})"
