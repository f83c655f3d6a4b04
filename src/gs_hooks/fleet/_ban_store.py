"""The ban book's persistence in fleet mode: :class:`FleetBanStore` writes a local batch's rows with an outbox entry
(:class:`SqliteOutbox`, ``fleet_outbox``) and a remote batch's rows with the stream cursor (``fleet_cursor``), each
in one sqlite transaction; the fleet's row format beside the book's (:func:`row_of`, :func:`ban_of`). The strategy
is told in :mod:`._bans`, which reads the stream and publishes the outbox.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
from collections.abc import Callable, Sequence

import anyio
import anyio.abc
import anyio.lowlevel

from .._store import Store
from .._time import to_datetime
from ..bans._model import Ban, BanKey, BatchOrigin, Current
from ..bans._model import BanRow as BookRow
from ..bans._persistence import SqliteBanStore
from ._protocol import (
    OP_APPLY,
    OP_LIFT,
    BanRow,
    Cursor,
    decode_cursor,
    decode_rows,
    encode_rows,
)
from ._stream import Outgoing

__all__ = ["REPUBLISH_CHUNK", "FleetBanStore", "SqliteOutbox", "ban_of", "put_cursor", "row_of"]

log = logging.getLogger("gs_hooks.fleet")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS fleet_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, op TEXT NOT NULL, "
    "event TEXT NOT NULL, rows BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS fleet_cursor (stream TEXT PRIMARY KEY, cursor TEXT NOT NULL)",
)
REPUBLISH_CHUNK = 500
"""Rows per outbox entry when a process puts its whole book back in the outbox (new process, lost Redis data)."""


def row_of(row: BookRow) -> BanRow:
    """The fleet's row for one of the book's (epoch seconds; a tombstone keeps its ``lifted_at``)."""
    ban = row.ban
    return BanRow(ban.source, ban.player_key, ban.status, row.start, row.end, ban.message, row.lifted_at)


def ban_of(row: BanRow) -> Ban:
    """The book's ban for a fleet row (dates in KST).

    Raises:
        TypeError / ValueError: the row cannot be a ban (a player key no player can have, dates that do not fit).
    """
    return Ban(
        player_key=row.player,
        source=row.source,
        status=row.status,  # type: ignore[arg-type]  # checked by Ban itself
        starts_at=to_datetime(row.start),
        ends_at=None if row.end is None else to_datetime(row.end),
        message=row.message,
    )


def _schema(conn: sqlite3.Connection) -> None:
    for statement in _SCHEMA:
        conn.execute(statement)


def _new_event() -> str:
    return secrets.token_hex(8)


class SqliteOutbox:
    """The ban outbox (``fleet_outbox``): entries committed with the rows they carry, deleted once published.

    The entries a running process commits are also handed over in memory (:meth:`committed`, after the commit),
    so the publisher starts without reading sqlite back; sqlite is read when the memory is not known to hold every
    entry (at start: what a crash or an outage left; after a republish).

    Args:
        store: the sqlite store (the ban book's), or a function returning it.
    """

    def __init__(self, store: Store | Callable[[], Store]) -> None:
        self._source = store
        self._held: dict[int, Outgoing] = {}
        self._complete = False  # the memory holds every entry sqlite holds

    @property
    def store(self) -> Store:
        """The sqlite store."""
        s = self._source
        return s if isinstance(s, Store) else s()

    def committed(self, entries: Sequence[tuple[int, Outgoing]]) -> None:
        """Entries a transaction that has just committed put in the table."""
        for entry_id, item in entries:
            self._held[entry_id] = item

    def reread(self) -> None:
        """Entries were put in the table without :meth:`committed`: read it again."""
        self._complete = False

    async def pending(self, limit: int) -> Sequence[tuple[int, Outgoing]]:
        """The oldest entries, oldest first."""
        if not self._complete:

            def read(conn: sqlite3.Connection) -> list[tuple[int, Outgoing]]:
                _schema(conn)
                out = []
                for entry_id, op, event, rows in conn.execute(
                    "SELECT id, op, event, rows FROM fleet_outbox ORDER BY id LIMIT ?", (limit,)
                ):
                    out.append((entry_id, Outgoing(op=op, event=event, rows=tuple(decode_rows(rows)))))
                return out

            found = await self.store.run(read)
            self.committed(found)
            if len(found) < limit:
                self._complete = True
        return sorted(self._held.items())[:limit]

    async def acknowledge(self, ids: Sequence[int]) -> None:
        """Delete the entries Redis took."""

        def delete(conn: sqlite3.Connection) -> None:
            conn.executemany("DELETE FROM fleet_outbox WHERE id = ?", [(i,) for i in ids])

        await self.store.run(delete)
        for i in ids:
            self._held.pop(i, None)

    async def count(self) -> int:
        """Entries waiting (in the table)."""

        def count(conn: sqlite3.Connection) -> int:
            _schema(conn)
            return int(conn.execute("SELECT COUNT(*) FROM fleet_outbox").fetchone()[0])

        return await self.store.run(count)

    def __repr__(self) -> str:
        return f"SqliteOutbox(held={len(self._held)})"


class FleetBanStore:
    """The ban book's persistence in fleet mode: its sqlite rows plus, in the same transaction, an outbox entry
    (a local batch) or the stream cursor (a batch read from the fleet).

    Args:
        store: the sqlite store, or a function returning it.
        stream: the ban stream's key (names the cursor's row).
        wake: called after a local batch committed (wakes the publisher).

    Attributes:
        saved_cursor: the last cursor committed (None before the first).
    """

    def __init__(self, store: Store | Callable[[], Store], *, stream: str, wake: Callable[[], None]) -> None:
        self._source = store
        self.rows = SqliteBanStore(store, also=self._also)
        self.outbox = SqliteOutbox(store)
        self.stream = stream
        self.wake = wake
        self.saved_cursor: str | None = None

    @property
    def store(self) -> Store:
        """The sqlite store."""
        return self.rows.store

    def describe(self) -> str:
        """Where the rows go (the sqlite file)."""
        return self.rows.describe()

    def load_sync(self, purge_before: float) -> list[BookRow]:
        """The book's rows (the outbox and cursor tables are made beside them)."""
        self.store.run_sync(_schema)
        return self.rows.load_sync(purge_before)

    async def load(self, purge_before: float) -> list[BookRow]:
        """:meth:`load_sync` on a worker thread."""
        await self.store.run(_schema)
        return await self.rows.load(purge_before)

    def write_sync(self, keys: Sequence[BanKey], current: Current, origin: BatchOrigin) -> list[BookRow]:
        """Write the rows (and the outbox entry or cursor), blocking."""
        if origin.remote:
            written = self.rows.write_sync(keys, current, origin)
            self._remote_committed(written, origin)
            return written
        made: list[tuple[int, Outgoing]] = []
        written = self._local(made).write_sync(keys, current, origin)
        self._local_committed(made)
        return written

    async def write(self, keys: Sequence[BanKey], current: Current, origin: BatchOrigin) -> list[BookRow]:
        """Write the rows (and the outbox entry or cursor) in one transaction on a worker thread."""
        if origin.remote:
            written = await self.rows.write(keys, current, origin)
            self._remote_committed(written, origin)
            return written
        made: list[tuple[int, Outgoing]] = []
        written = await self._local(made).write(keys, current, origin)
        if self._local_committed(made):
            # let the woken publisher send the entry before the caller goes on (the webhook writes its answer):
            # the fleet hears of the ban ~0.5 ms sooner; shielded, so a cancellation cannot hide this commit
            await anyio.lowlevel.cancel_shielded_checkpoint()
        return written

    def _local(self, made: list[tuple[int, Outgoing]]) -> SqliteBanStore:
        """A writer for one local batch whose outbox entry is collected in ``made`` (kept only once committed)."""

        def also(conn: sqlite3.Connection, rows: Sequence[BookRow], origin: BatchOrigin) -> None:
            made.append(_put_outbox(conn, [row_of(r) for r in rows]))

        return SqliteBanStore(self._source, also=also)

    async def delete(self, keys: Sequence[BanKey], current: Current) -> None:
        """Purged rows leave sqlite only (the fleet's set keeps its own)."""
        await self.rows.delete(keys, current)

    def _remote_committed(self, written: Sequence[BookRow], origin: BatchOrigin) -> None:
        if origin.cursor is not None and written:
            self.saved_cursor = origin.cursor

    def _local_committed(self, made: list[tuple[int, Outgoing]]) -> bool:
        if made:
            self.outbox.committed(made)
            self.wake()
        return bool(made)

    def _also(self, conn: sqlite3.Connection, rows: Sequence[BookRow], origin: BatchOrigin) -> None:
        if origin.remote and origin.cursor is not None:  # local batches are written by _local's writer
            put_cursor(conn, self.stream, origin.cursor)

    # -- the cursor and the republish, outside a batch -------------------------------------------------------

    async def load_cursor(self) -> Cursor | None:
        """The stored cursor, or None (a new process, or one unreadable: both mean a reload)."""

        def read(conn: sqlite3.Connection) -> str | None:
            _schema(conn)
            row = conn.execute("SELECT cursor FROM fleet_cursor WHERE stream = ?", (self.stream,)).fetchone()
            return None if row is None else str(row[0])

        raw = await self.store.run(read)
        if raw is None:
            return None
        try:
            cursor = decode_cursor(raw)
        except ValueError:
            log.warning("fleet: the stored ban stream cursor is unreadable; reloading the fleet's bans")
            return None
        self.saved_cursor = raw
        return cursor

    async def save_cursor(self, cursor: str) -> None:
        """Store the cursor alone (the entries read changed no row here)."""

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                put_cursor(conn, self.stream, cursor)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

        await self.store.run(write)
        self.saved_cursor = cursor

    async def republish_book(self) -> int:
        """Put every row of the book's table in the outbox (one transaction); returns the rows queued."""

        def queue(conn: sqlite3.Connection) -> int:
            _schema(conn)
            if (
                conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'bans_book'").fetchone()
                is None
            ):
                return 0  # a book never written yet
            found = conn.execute(
                "SELECT source, player_key, status, starts_at, ends_at, message, lifted_at FROM bans_book"
            ).fetchall()
            rows = [
                BanRow(source, player, status, float(start), None if end is None else float(end), message or "", lifted)
                for source, player, status, start, end, message, lifted in found
            ]
            if not rows:
                return 0
            conn.execute("BEGIN IMMEDIATE")
            try:
                for i in range(0, len(rows), REPUBLISH_CHUNK):
                    _put_outbox(conn, rows[i : i + REPUBLISH_CHUNK])
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return len(rows)

        queued = await self.store.run(queue)
        if queued:
            self.outbox.reread()
        return queued

    def __repr__(self) -> str:
        return f"FleetBanStore({self.describe()!r})"


def _put_outbox(conn: sqlite3.Connection, rows: Sequence[BanRow]) -> tuple[int, Outgoing]:
    op = OP_LIFT if all(r.lifted_at is not None for r in rows) else OP_APPLY
    item = Outgoing(op=op, event=_new_event(), rows=tuple(rows))
    cursor = conn.execute(
        "INSERT INTO fleet_outbox (op, event, rows) VALUES (?, ?, ?)", (item.op, item.event, encode_rows(rows))
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid, item


def put_cursor(conn: sqlite3.Connection, stream: str, raw: str) -> None:
    """Upsert the cursor, never moving it back within one epoch (a retried older batch writes its rows only)."""
    new = decode_cursor(raw)
    row = conn.execute("SELECT cursor FROM fleet_cursor WHERE stream = ?", (stream,)).fetchone()
    if row is not None:
        try:
            old = decode_cursor(row[0])
        except ValueError:
            old = None
        if old is not None and old.epoch == new.epoch and old.seq >= new.seq:
            return
    conn.execute(
        "INSERT INTO fleet_cursor (stream, cursor) VALUES (?, ?) "
        "ON CONFLICT (stream) DO UPDATE SET cursor = excluded.cursor",
        (stream, raw),
    )
