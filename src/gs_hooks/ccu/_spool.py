"""The durable CCU spool, which is also the CCU history.

Every sample is written (committed, WAL, ``synchronous=FULL``) before it is sent, so a crash at any point leaves
it in the spool and the next start sends it again under the same reqkey (the collector answers 101 if it had it).
Rows are keyed by (server id, grid instant): one sample per server per slot, whatever happens. Each row moves
through the delivery lifecycle of :mod:`gs_hooks.ccu._model` (pending → delivered / retry / refused → requeue).

Delivered and refused rows older than the retention are pruned; pending rows are never pruned.
The ``*_sync`` methods run on the caller's thread (under the store lock); the async twins go through
:meth:`Store.run <gs_hooks._store.Store.run>`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from typing import TypeVar

import anyio.to_thread

from .._store import Store
from ._model import CcuSampleRow, SampleKey, SampleState, pending_row, transition
from ._protocol import CcuSample, make_reqkey

__all__ = ["CcuSpool"]

T = TypeVar("T")


_COLUMNS = (
    "server, slot_ts, date, game, user, reqkey, state, attempts, last_code, last_error, next_attempt_at, "
    "created_at, delivered_at"
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ccu_samples (
    server TEXT NOT NULL,
    slot_ts INTEGER NOT NULL,
    date TEXT NOT NULL,
    game TEXT NOT NULL,
    user INTEGER NOT NULL,
    reqkey TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'refused')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_code INTEGER,
    last_error TEXT NOT NULL DEFAULT '',
    next_attempt_at REAL NOT NULL,
    created_at REAL NOT NULL,
    delivered_at REAL,
    PRIMARY KEY (server, slot_ts)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ccu_samples_by_slot ON ccu_samples (slot_ts);
CREATE INDEX IF NOT EXISTS ccu_samples_pending ON ccu_samples (next_attempt_at, slot_ts) WHERE state = 'pending';
"""


def _row(r: tuple[object, ...]) -> CcuSampleRow:
    return CcuSampleRow(
        server=str(r[0]),
        slot_ts=int(r[1]),  # type: ignore[call-overload]
        date=str(r[2]),
        game=str(r[3]),
        user=int(r[4]),  # type: ignore[call-overload]
        reqkey=str(r[5]),
        state=SampleState(r[6]),
        attempts=int(r[7]),  # type: ignore[call-overload]
        last_code=None if r[8] is None else int(r[8]),  # type: ignore[call-overload]
        last_error=str(r[9]),
        next_attempt_at=float(r[10]),  # type: ignore[arg-type]
        created_at=float(r[11]),  # type: ignore[arg-type]
        delivered_at=None if r[12] is None else float(r[12]),  # type: ignore[arg-type]
    )


_PUT = (
    f"INSERT INTO ccu_samples ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT (server, slot_ts) DO UPDATE SET date=excluded.date, game=excluded.game, user=excluded.user, "
    "reqkey=excluded.reqkey, state=excluded.state, attempts=excluded.attempts, last_code=excluded.last_code, "
    "last_error=excluded.last_error, next_attempt_at=excluded.next_attempt_at, created_at=excluded.created_at, "
    "delivered_at=excluded.delivered_at"
)


class CcuSpool:
    """The CCU spool and history on a :class:`~gs_hooks._store.Store` (tables prefixed ``ccu_``).

    Args:
        store: the sqlite store (the shared one, or a dedicated file).
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._ready = False

    def describe(self) -> str:
        """The store's path (for log lines)."""
        return self.store.path

    # -- schema ------------------------------------------------------------------------------------------------

    def open_sync(self) -> None:
        """Create the tables if needed (idempotent)."""
        if not self._ready:
            self.store.run_sync(lambda c: c.executescript(_SCHEMA))
            self._ready = True

    async def open(self) -> None:
        """Async :meth:`open_sync`."""
        if not self._ready:
            await self.store.run(lambda c: c.executescript(_SCHEMA))
            self._ready = True

    # -- writes (sync core) ------------------------------------------------------------------------------------

    def add_sync(self, rows: Iterable[tuple[CcuSample, int]], now: float) -> list[CcuSampleRow]:
        """Write new samples ``(sample, slot_ts)`` as pending, in one committed transaction.

        A sample whose (server, slot) is already spooled is not written again (one sample per slot).

        Returns:
            The rows actually added.
        """
        items = list(rows)

        def write(c: sqlite3.Connection) -> list[CcuSampleRow]:
            added: list[CcuSampleRow] = []
            with c:
                c.execute("BEGIN IMMEDIATE")
                for sample, slot_ts in items:
                    cur = c.execute(
                        "INSERT OR IGNORE INTO ccu_samples (server, slot_ts, date, game, user, reqkey, state, "
                        "attempts, last_error, next_attempt_at, created_at) VALUES (?,?,?,?,?,?,'pending',0,'',?,?)",
                        (sample.server, slot_ts, sample.date, sample.game, sample.user, sample.reqkey, now, now),
                    )
                    if cur.rowcount == 1:
                        added.append(pending_row(sample, slot_ts, now))
            return added

        return self.store.run_sync(write)

    def _move(
        self,
        c: sqlite3.Connection,
        key: SampleKey,
        event: str,
        assignments: str,
        params: tuple[object, ...],
    ) -> bool:
        row = c.execute("SELECT state FROM ccu_samples WHERE server=? AND slot_ts=?", key).fetchone()
        if row is None:
            raise RuntimeError(f"CCU sample {key!r} is not in the spool")
        new = transition(SampleState(row[0]), event)
        c.execute(
            f"UPDATE ccu_samples SET state=?, {assignments} WHERE server=? AND slot_ts=?",
            (new.value, *params, *key),
        )
        return True

    def record_sync(
        self,
        key: SampleKey,
        event: str,
        *,
        code: int | None,
        error: str = "",
        now: float,
        next_attempt_at: float | None = None,
    ) -> None:
        """Record the result of one send: ``event`` is ``delivered``, ``retry`` or ``refused``.

        Raises:
            RuntimeError: the move is not allowed from the row's state (e.g. a delivered row).
        """

        def write(c: sqlite3.Connection) -> None:
            with c:
                c.execute("BEGIN IMMEDIATE")
                if event == "delivered":
                    self._move(
                        c,
                        key,
                        event,
                        "attempts=attempts+1, last_code=?, last_error='', delivered_at=?",
                        (code, now),
                    )
                elif event == "retry":
                    self._move(
                        c,
                        key,
                        event,
                        "attempts=attempts+1, last_code=?, last_error=?, next_attempt_at=?",
                        (code, error[:200], now if next_attempt_at is None else next_attempt_at),
                    )
                elif event == "refused":
                    self._move(c, key, event, "attempts=attempts+1, last_code=?, last_error=?", (code, error[:200]))
                else:
                    raise RuntimeError(f"CCU sample: unknown event {event!r}")

        self.store.run_sync(write)

    def put_sync(self, rows: Iterable[CcuSampleRow]) -> None:
        """Write rows exactly as given (inserted, or replacing the spooled row of the same slot), in one committed
        transaction: the reporter records with it the samples it had to hold in memory."""
        params = [
            (
                r.server,
                r.slot_ts,
                r.date,
                r.game,
                r.user,
                r.reqkey,
                r.state.value,
                r.attempts,
                r.last_code,
                r.last_error,
                r.next_attempt_at,
                r.created_at,
                r.delivered_at,
            )
            for r in rows
        ]

        def write(c: sqlite3.Connection) -> None:
            with c:
                c.execute("BEGIN IMMEDIATE")
                c.executemany(_PUT, params)

        self.store.run_sync(write)

    def requeue_refused_sync(self, now: float, *, game: str | None = None, only_other_game: bool = False) -> int:
        """Move every refused row back to pending, due now (operator resend or config change).

        Args:
            now: epoch seconds.
            game: when given, rows are re-stamped with this game key (and the reqkey that goes with it).
            only_other_game: only rows refused under another game key than ``game`` (the config changed).

        Returns:
            The number of rows requeued.
        """

        def write(c: sqlite3.Connection) -> int:
            with c:
                c.execute("BEGIN IMMEDIATE")
                rows = c.execute("SELECT server, slot_ts, date, game FROM ccu_samples WHERE state='refused'").fetchall()
                if only_other_game:
                    rows = [r for r in rows if r[3] != game]
                for server, slot_ts, date, old_game in rows:
                    transition(SampleState.REFUSED, "requeue")
                    g = old_game if game is None else game
                    c.execute(
                        "UPDATE ccu_samples SET state='pending', game=?, reqkey=?, next_attempt_at=? "
                        "WHERE server=? AND slot_ts=?",
                        (g, make_reqkey(g, server, date), now, server, slot_ts),
                    )
                return len(rows)

        return self.store.run_sync(write)

    def pull_forward_sync(self, now: float) -> int:
        """Make every pending row due now (the collector answered again: drain the backlog at once)."""

        def write(c: sqlite3.Connection) -> int:
            with c:
                cur = c.execute(
                    "UPDATE ccu_samples SET next_attempt_at=? WHERE state='pending' AND next_attempt_at>?", (now, now)
                )
                return cur.rowcount

        return self.store.run_sync(write)

    def prune_sync(self, before_ts: float) -> int:
        """Delete delivered and refused rows of slots before ``before_ts``; pending rows are kept."""

        def write(c: sqlite3.Connection) -> int:
            with c:
                cur = c.execute("DELETE FROM ccu_samples WHERE slot_ts<? AND state!='pending'", (before_ts,))
                return cur.rowcount

        return self.store.run_sync(write)

    # -- reads -------------------------------------------------------------------------------------------------

    def due_sync(self, now: float, limit: int, exclude: Iterable[SampleKey] = ()) -> list[CcuSampleRow]:
        """Pending rows due at ``now``, oldest slot first, skipping ``exclude`` (rows being sent)."""
        skip = set(exclude)

        def read(c: sqlite3.Connection) -> list[CcuSampleRow]:
            cur = c.execute(
                f"SELECT {_COLUMNS} FROM ccu_samples WHERE state='pending' AND next_attempt_at<=? "
                "ORDER BY slot_ts, server",
                (now,),
            )
            out: list[CcuSampleRow] = []
            for r in cur:
                if (r[0], r[1]) in skip:
                    continue
                out.append(_row(r))
                if len(out) >= limit:
                    break
            return out

        return self.store.run_sync(read)

    def has_pending_before_sync(self, slot_ts: int) -> bool:
        """Whether a pending row of an earlier slot exists (a backlog that must go first)."""
        return self.store.run_sync(
            lambda c: (
                c.execute(
                    "SELECT 1 FROM ccu_samples WHERE state='pending' AND slot_ts<? LIMIT 1", (slot_ts,)
                ).fetchone()
                is not None
            )
        )

    def next_due_sync(self, exclude: Iterable[SampleKey] = ()) -> float | None:
        """The earliest ``next_attempt_at`` among pending rows not in ``exclude``, or None."""
        skip = set(exclude)

        def read(c: sqlite3.Connection) -> float | None:
            cur = c.execute(
                "SELECT server, slot_ts, next_attempt_at FROM ccu_samples WHERE state='pending' "
                "ORDER BY next_attempt_at"
            )
            for server, slot_ts, at in cur:
                if (server, slot_ts) not in skip:
                    return float(at)
            return None

        return self.store.run_sync(read)

    def history_sync(
        self,
        server_id: str | None,
        start_ts: float,
        end_ts: float,
        *,
        delivered_only: bool = False,
    ) -> list[CcuSampleRow]:
        """Samples of slots in ``[start_ts, end_ts)``, by slot then server id.

        Args:
            server_id: one server id, or None for all.
            start_ts / end_ts: epoch seconds (e.g. a KST day's midnight and the next midnight).
            delivered_only: only samples the collector confirmed (default: every sample taken).
        """
        sql = f"SELECT {_COLUMNS} FROM ccu_samples WHERE slot_ts>=? AND slot_ts<?"
        params: list[object] = [start_ts, end_ts]
        if server_id is not None:
            sql += " AND server=?"
            params.append(server_id)
        if delivered_only:
            sql += " AND state='delivered'"
        sql += " ORDER BY slot_ts, server"
        return self.store.run_sync(lambda c: [_row(r) for r in c.execute(sql, params)])

    def get_sync(self, server_id: str, slot_ts: int) -> CcuSampleRow | None:
        """One row, or None."""
        r = self.store.run_sync(
            lambda c: c.execute(
                f"SELECT {_COLUMNS} FROM ccu_samples WHERE server=? AND slot_ts=?", (server_id, slot_ts)
            ).fetchone()
        )
        return None if r is None else _row(r)

    def rows_sync(self, state: SampleState | None = None) -> list[CcuSampleRow]:
        """Every row (in one state, or all), by slot then server id."""
        if state is None:
            return self.store.run_sync(
                lambda c: [_row(r) for r in c.execute(f"SELECT {_COLUMNS} FROM ccu_samples ORDER BY slot_ts, server")]
            )
        return self.store.run_sync(
            lambda c: [
                _row(r)
                for r in c.execute(
                    f"SELECT {_COLUMNS} FROM ccu_samples WHERE state=? ORDER BY slot_ts, server", (state.value,)
                )
            ]
        )

    def backlog_depth_sync(self) -> int:
        """Pending samples (taken, not yet confirmed)."""
        r = self.store.run_sync(
            lambda c: c.execute("SELECT count(*) FROM ccu_samples WHERE state='pending'").fetchone()
        )
        return int(r[0])

    def last_result_sync(self, server_id: str) -> CcuSampleRow | None:
        """The most recent sample of ``server_id`` that got an answer or a failure (its ``last_code``)."""
        r = self.store.run_sync(
            lambda c: c.execute(
                f"SELECT {_COLUMNS} FROM ccu_samples WHERE server=? AND attempts>0 ORDER BY slot_ts DESC LIMIT 1",
                (server_id,),
            ).fetchone()
        )
        return None if r is None else _row(r)

    def last_success_at_sync(self, server_id: str) -> float | None:
        """Epoch seconds of the latest delivery for ``server_id``, or None."""
        r = self.store.run_sync(
            lambda c: c.execute(
                "SELECT max(delivered_at) FROM ccu_samples WHERE server=? AND state='delivered'", (server_id,)
            ).fetchone()
        )
        return None if r is None or r[0] is None else float(r[0])

    # -- async twins ---------------------------------------------------------------------------------------------

    async def history(
        self,
        server_id: str | None,
        start_ts: float,
        end_ts: float,
        *,
        delivered_only: bool = False,
    ) -> list[CcuSampleRow]:
        """Async :meth:`history_sync`."""
        return await self._run(lambda: self.history_sync(server_id, start_ts, end_ts, delivered_only=delivered_only))

    async def backlog_depth(self) -> int:
        """Async :meth:`backlog_depth_sync`."""
        return await self._run(self.backlog_depth_sync)

    async def last_result(self, server_id: str) -> CcuSampleRow | None:
        """Async :meth:`last_result_sync`."""
        return await self._run(lambda: self.last_result_sync(server_id))

    async def last_success_at(self, server_id: str) -> float | None:
        """Async :meth:`last_success_at_sync`."""
        return await self._run(lambda: self.last_success_at_sync(server_id))

    async def _run(self, fn: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(fn)
