"""Where the ban book's rows persist: the narrow interface the book writes through, and its sqlite implementation.

The book keeps memory first and writes after. A write names *keys*, not rows: the persistence asks the book for
each key's current row (``current``) when the write runs, under the store's lock, so whatever order concurrent
writes land in, the last one stores memory's latest state and the store never ends behind memory. A delete
(purge) likewise removes only keys the book no longer holds when it runs.

Each write carries the batch's :class:`~gs_hooks.bans._model.BatchOrigin`. :class:`SqliteBanStore` ignores it,
but runs an optional ``also`` step inside the same transaction as the rows: fleet mode's persistence is a
``SqliteBanStore`` whose ``also`` writes the outbox entry of a local batch (published afterwards) or moves the
stream cursor for a batch read from the fleet, so rows and outbox (or cursor) commit together or not at all.

Table ``bans_book``, one row per (source, player key); rows that ended or were lifted longer ago than the
retention are deleted when the book loads.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from .._ids import player_id_problem
from .._store import Store
from .._time import to_datetime
from ._model import Ban, BanKey, BanRow, BatchOrigin, Current

__all__ = ["AlsoWrite", "BanStore", "Current", "SqliteBanStore"]

log = logging.getLogger("gs_hooks.bans")

AlsoWrite = Callable[[sqlite3.Connection, Sequence[BanRow], BatchOrigin], None]
"""Extra writes in the rows' transaction: ``(connection, rows written, origin)``; raising rolls the rows back."""


class BanStore(Protocol):
    """The ban book's persistence: load rows, write rows, delete keys.

    Writes and deletes may run on a worker thread; ``current`` is then called there, under the persistence's
    lock (the book's dict reads are safe from any thread).
    """

    def describe(self) -> str:
        """Where the rows go, for log lines (a file path); never raises."""
        ...

    def load_sync(self, purge_before: float) -> list[BanRow]:
        """Delete rows that ended or were lifted before ``purge_before``; return the rest (blocking)."""
        ...

    async def load(self, purge_before: float) -> list[BanRow]:
        """:meth:`load_sync` without blocking the event loop."""
        ...

    def write_sync(self, keys: Sequence[BanKey], current: Current, origin: BatchOrigin) -> list[BanRow]:
        """Write the current rows of ``keys`` in one transaction (blocking); return the rows written."""
        ...

    async def write(self, keys: Sequence[BanKey], current: Current, origin: BatchOrigin) -> list[BanRow]:
        """:meth:`write_sync` without blocking the event loop."""
        ...

    async def delete(self, keys: Sequence[BanKey], current: Current) -> None:
        """Delete those of ``keys`` whose current row is None when the delete runs."""
        ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS bans_book (
    source      TEXT NOT NULL,
    player_key  TEXT NOT NULL,
    status      TEXT NOT NULL,
    starts_at   REAL NOT NULL,
    ends_at     REAL,
    message     TEXT NOT NULL,
    recorded_at REAL NOT NULL,
    lifted_at   REAL,
    PRIMARY KEY (source, player_key)
)
"""

_COLUMNS = "source, player_key, status, starts_at, ends_at, message, recorded_at, lifted_at"

_UPSERT = (
    f"INSERT INTO bans_book ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (source, player_key) DO UPDATE SET status = excluded.status, starts_at = excluded.starts_at, "
    "ends_at = excluded.ends_at, message = excluded.message, recorded_at = excluded.recorded_at, "
    "lifted_at = excluded.lifted_at"
)

# Rows per multi-row upsert: one statement for 64 rows costs about two thirds of 64 single-row executions
# (512 parameters, well under sqlite's limit of 32,766).
_CHUNK = 64
_UPSERT_CHUNK = _UPSERT.replace(
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", "VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * _CHUNK)
)


class SqliteBanStore:
    """The ban book's rows in the sqlite store (table ``bans_book``).

    Args:
        store: the sqlite store, or a function returning it (opened on first use).
        also: extra writes run inside each write's transaction (fleet mode: the outbox or the stream cursor).
    """

    def __init__(self, store: Store | Callable[[], Store], *, also: AlsoWrite | None = None) -> None:
        self._source = store
        self.also = also

    @property
    def store(self) -> Store:
        """The sqlite store (opened on first use)."""
        s = self._source
        return s if isinstance(s, Store) else s()

    def describe(self) -> str:
        """The store's path, or ``(not opened)`` when it cannot be opened."""
        try:
            return self.store.path
        except Exception:  # the store itself could not be opened
            return "(not opened)"

    def load_sync(self, purge_before: float) -> list[BanRow]:
        """Create the table, purge old rows, read the rest (blocking)."""
        return self.store.run_sync(lambda conn: _load(conn, purge_before))

    async def load(self, purge_before: float) -> list[BanRow]:
        """:meth:`load_sync` on a worker thread."""
        return await self.store.run(lambda conn: _load(conn, purge_before))

    def write_sync(self, keys: Sequence[BanKey], current: Current, origin: BatchOrigin) -> list[BanRow]:
        """Upsert the current rows of ``keys`` in one transaction, blocking; returns the rows written."""
        return self.store.run_sync(lambda conn: self._write(conn, keys, current, origin))

    async def write(self, keys: Sequence[BanKey], current: Current, origin: BatchOrigin) -> list[BanRow]:
        """:meth:`write_sync` on a worker thread (inline for the ``:memory:`` store: nothing to wait for)."""
        store = self.store
        if store.path == ":memory:":
            return self.write_sync(keys, current, origin)
        return await store.run(lambda conn: self._write(conn, keys, current, origin))

    async def delete(self, keys: Sequence[BanKey], current: Current) -> None:
        """Delete the rows of ``keys`` that memory no longer holds when the delete runs (one transaction)."""

        def delete(conn: sqlite3.Connection) -> None:
            gone = [key for key in keys if current(key) is None]
            with _transaction(conn):
                conn.executemany("DELETE FROM bans_book WHERE source = ? AND player_key = ?", gone)

        await self.store.run(delete)

    def _write(
        self, conn: sqlite3.Connection, keys: Sequence[BanKey], current: Current, origin: BatchOrigin
    ) -> list[BanRow]:
        rows = [row for row in map(current, keys) if row is not None]  # None: purged since
        if rows:
            with _transaction(conn):
                _upsert(conn, rows)
                if self.also is not None:
                    self.also(conn, rows, origin)
        return rows

    def __repr__(self) -> str:
        return f"SqliteBanStore({self.describe()!r})"


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        # Roll back, unless sqlite already did (it rolls back by itself on a full disk or an I/O error, and a
        # ROLLBACK then would raise "no transaction is active" in place of the real error).
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _upsert(conn: sqlite3.Connection, rows: list[BanRow]) -> None:
    """Full chunks as one multi-row statement each, the rest one by one."""
    params = [
        (r.ban.source, r.ban.player_key, r.ban.status, r.start, r.end, r.ban.message, r.recorded_at, r.lifted_at)
        for r in rows
    ]
    full = len(params) - len(params) % _CHUNK
    for i in range(0, full, _CHUNK):
        conn.execute(_UPSERT_CHUNK, list(itertools.chain.from_iterable(params[i : i + _CHUNK])))
    if full < len(params):
        conn.executemany(_UPSERT, params[full:])


def _load(conn: sqlite3.Connection, purge_before: float) -> list[BanRow]:
    conn.execute(_SCHEMA)
    conn.execute(
        "DELETE FROM bans_book WHERE (lifted_at IS NOT NULL AND lifted_at < ?) "
        "OR (ends_at IS NOT NULL AND ends_at < ?)",
        (purge_before, purge_before),
    )
    out: list[BanRow] = []
    skipped = 0
    for source, player_key, status, starts_at, ends_at, message, recorded_at, lifted_at in conn.execute(
        f"SELECT {_COLUMNS} FROM bans_book"
    ):
        if not isinstance(player_key, str) or player_id_problem(player_key) is not None:
            skipped += 1  # a key an older version accepted (e.g. ""): no player can have it
            continue
        ban = Ban(
            player_key=player_key,
            source=source,
            status=status,
            starts_at=to_datetime(starts_at),
            ends_at=None if ends_at is None else to_datetime(ends_at),
            message=message,
        )
        out.append(BanRow.of(ban, recorded_at, lifted_at))
    if skipped:
        log.warning("ban book: %d stored bans skipped: their player key cannot be a player id", skipped)
    return out
