"""The ban book: active bans by player key, durable in the sqlite store, enforced on live sessions.

Strategy: one row per (source, player key) — ``hive``, ``gamebase`` or ``api`` — in the table ``bans_book``.
A ban's identity is (source, player, start, end, status): applying an identical ban again is a no-op (no second
kick), so platform retransmissions and poll overlaps are harmless. A ban that starts earlier than the one already
recorded for the same source and player is stale and ignored. Lifting a ban keeps its row as a tombstone
(``lifted_at``), so a re-read of the same ban (poll overlap, retransmission) does not bring it back; rows that
ended or were lifted longer than ``retention_s`` ago are purged.

Memory is the truth: every change goes into memory first, then the touched keys are written with the rows
memory holds when the write runs (read under the store lock), so whatever order writes land in, the store never
ends behind memory. A failed write leaves the rows in memory, unsaved: a re-applied identical ban (or a re-sent
lift) writes them, and a retry runs every ``RETRY_WRITE_S`` (the timer's, or a task started through ``spawn``
when no timer runs); the timer tries once more when it closes.

Sync core, async shell: :meth:`BanBook.apply_many_nowait` / :meth:`BanBook.lift_nowait` update memory and
persist (one sqlite transaction, blocking); the bans they bring into force are queued and enforced by the book's
timer component (or, where no timer runs, by a task started in the Hooks task group). :meth:`BanBook.apply`
enforces inline, then persists (on a worker thread for a file store), so live sessions are kicked without
waiting for the disk; :meth:`BanBook.lift` persists on a worker thread. Enforcing a ban = kick every live session
of the player, drop the player's cached token verifications, call ``on_ban``.

A batch (a Hive push, a poll) is the unit of work: one pass that diffs it against memory and puts the new rows
(each distinct date converted once), then the enforcement (the book's side for the whole batch, then the kicks,
calling the game's callbacks directly and awaiting only those that return an awaitable: no coroutine or task per
ban), then one transaction of multi-row upserts.

A ban whose start lies in the future is enforced by the timer when it starts (the timer runs when a platform ban
source is configured; without one, such a ban still gates logins from its start). Expiry needs no action
(:meth:`BanBook.active_ban` compares with the clock); the timer only drops ended bans from memory.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from datetime import datetime, timezone
from typing import Any, Literal, Protocol

import anyio
import anyio.abc
import msgspec

from .._clock import Clock, to_datetime, to_timestamp
from .._ids import lookup_key, player_id, player_id_problem
from .._metrics import BANS_APPLIED, BANS_LIFTED, counts_bans, counts_bans_async
from .._store import Store

__all__ = ["Ban", "BanBook", "BanDetails", "BanEvent", "BanStatus", "BanTimer", "OnBan"]

log = logging.getLogger("gs_hooks.bans")

BanStatus = Literal["permanent", "temporary"]

PURGE_EVERY_S = 3600.0
RETRY_WRITE_S = 30.0  # a failed write of bans held in memory is tried again by the timer this much later

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

_UPSERT = (
    "INSERT INTO bans_book (source, player_key, status, starts_at, ends_at, message, recorded_at, lifted_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
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


class Ban(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One ban of one player by one source (strings and dates only: never in a reference cycle, so not tracked
    by the garbage collector, like :class:`BanDetails` and :class:`BanEvent`).

    Attributes:
        player_key: the session registry's player id (an ``int`` given here is normalised to its decimal string).
        source: ``hive`` (suspension webhook), ``gamebase`` (ban history) or ``api`` (``hooks.ban``).
        status: ``permanent`` or ``temporary``.
        starts_at: when the ban starts (aware datetime).
        ends_at: when it ends (aware datetime), None for a permanent ban.
        message: a message for the player (may be empty).
    """

    player_key: str
    source: str
    status: BanStatus
    starts_at: datetime
    ends_at: datetime | None = None
    message: str = ""

    def __post_init__(self) -> None:
        """Raises TypeError / ValueError: the player key cannot be a player id, or the dates do not fit."""
        key = self.player_key
        checked = player_id(key, what="ban player key")
        if checked is not key:
            msgspec.structs.force_setattr(self, "player_key", checked)
        if self.starts_at.tzinfo is None or (self.ends_at is not None and self.ends_at.tzinfo is None):
            raise ValueError("ban dates must be aware datetimes (e.g. tzinfo=gs_hooks.KST)")
        if self.status == "permanent" and self.ends_at is not None:
            raise ValueError("a permanent ban has no end date")
        if self.status == "temporary" and self.ends_at is None:
            raise ValueError("a temporary ban needs an end date")

    def in_force(self, now: datetime | float) -> bool:
        """Whether the ban holds at ``now`` (started, not ended)."""
        ts = to_timestamp(now)
        if self.starts_at.timestamp() > ts:
            return False
        return self.ends_at is None or ts < self.ends_at.timestamp()


class BanDetails(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The ``details`` of a :class:`~gs_hooks.KickRequest` with reason ``ban``.

    Attributes:
        source: where the ban came from (``hive``, ``gamebase``, ``api``).
        status: ``permanent`` or ``temporary``.
        starts_at: start of the ban.
        ends_at: end of the ban, None when permanent.
        message: the ban's message.
    """

    source: str
    status: BanStatus
    starts_at: datetime
    ends_at: datetime | None
    message: str


class BanEvent(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What ``on_ban`` receives when a ban comes into force.

    Attributes:
        player_key: the banned player.
        ban: the ban.
        sessions_kicked: how many live sessions of the player were kicked.
    """

    player_key: str
    ban: Ban
    sessions_kicked: int


class OnBan(Protocol):
    """The game's ban callback (sync or async)."""

    def __call__(self, event: BanEvent, /) -> Awaitable[None] | None: ...


KickBanned = Callable[[str, str, BanDetails], "int | Awaitable[int]"]
"""``(player_key, message, details) -> sessions kicked``, or an awaitable of it when a game callback is async."""


class _Row(msgspec.Struct, gc=False, eq=False):
    """A recorded ban plus the book's bookkeeping (epoch floats for cheap comparisons, the book's key).

    A struct without GC tracking (built in C, never visited by the collector): rows reference no cycles.
    """

    ban: Ban
    key: tuple[str, str]
    start: float
    end: float | None
    recorded_at: float
    lifted_at: float | None = None
    enforced: bool = False
    saved: bool = True  # False while only in memory (see BanBook.apply)

    @classmethod
    def of(cls, ban: Ban, recorded_at: float, lifted_at: float | None = None) -> _Row:
        end = ban.ends_at
        return cls(
            ban,
            (ban.source, ban.player_key),
            ban.starts_at.timestamp(),
            None if end is None else end.timestamp(),
            recorded_at,
            lifted_at,
        )


_PERMANENT_MESSAGE = "You are permanently banned."


def default_ban_message(ban: Ban) -> str:
    """The kick message used when a ban carries none."""
    if ban.ends_at is None:
        return _PERMANENT_MESSAGE
    return _until_message(ban.ends_at)


def _until_message(ends_at: datetime) -> str:
    return f"You are banned until {ends_at.strftime('%Y-%m-%d %H:%M:%S %Z')}."


class BanBook:
    """Active bans by player key: durable, idempotent, enforced on live sessions, with expiry on time.

    Args:
        store: the sqlite store, or a function returning it (opened on first use).
        clock: the injected clock.
        kick: ``(player_key, message, details) -> sessions kicked`` (Hooks passes its kick), returning the
            number, or an awaitable of it (awaited) when a game callback is async.
        on_ban: ``(BanEvent)`` called when a ban comes into force; may return an awaitable (awaited).
        on_ban_now: instead of ``on_ban``, a function returning it (or None) when a batch is enforced: Hooks
            passes one that reads its callbacks (a game may set ``on_ban`` after ``setup()``), so no event is
            built while there is no callback.
        forget_token: drops the player's cached token verifications.
        retention_s: how long ended or lifted bans are remembered (tombstones that keep re-reads idempotent).
    """

    def __init__(
        self,
        store: Store | Callable[[], Store],
        *,
        clock: Clock,
        kick: KickBanned | None = None,
        on_ban: Callable[[BanEvent], Awaitable[Any] | None] | None = None,
        on_ban_now: Callable[[], Callable[[BanEvent], Awaitable[Any] | None] | None] | None = None,
        forget_token: Callable[[str], object] | None = None,
        retention_s: float = 7 * 86_400.0,
    ) -> None:
        self._store_source = store
        self.clock = clock
        self._kick = kick
        self._on_ban = on_ban
        self._on_ban_now = on_ban_now
        self._forget_token = forget_token
        self.retention_s = retention_s
        self._rows: dict[tuple[str, str], _Row] = {}
        self._by_player: dict[str, dict[str, _Row]] = {}
        self._timeline: list[tuple[float, int, tuple[str, str]]] = []
        self._seq = 0
        self._pending: list[_Row] = []
        self._loaded = False
        self._next_purge: float | None = None
        self._lock: anyio.Lock | None = None
        self._unsaved: set[tuple[str, str]] = set()  # keys whose write failed, retried by tick
        self._retry_at: float | None = None
        self._retrying = False  # a retry task runs (no timer)
        self._reported_lost: frozenset[tuple[str, str]] = frozenset()  # what flush() logged as lost at exit
        self._wake: Callable[[], None] | None = None
        # Without a running BanTimer, bans recorded by the sync core are enforced by a task started through
        # ``spawn`` (Hooks passes one that starts it in its task group; it returns False when it cannot).
        self.spawn: Callable[[Callable[[], Coroutine[Any, Any, Any]]], bool] | None = None

    # -- storage ---------------------------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        """The sqlite store the book persists to."""
        s = self._store_source
        return s if isinstance(s, Store) else s()

    @property
    def loaded(self) -> bool:
        """Whether the book has read the store."""
        return self._loaded

    def load_nowait(self) -> None:
        """Read the store (once): create the table, purge old rows, load the rest. Blocks on sqlite."""
        if self._loaded:
            return
        now = self.clock.time()
        rows = self.store.run_sync(lambda conn: _load(conn, now - self.retention_s))
        self._install(rows, now)

    async def load(self) -> None:
        """:meth:`load_nowait` on a worker thread."""
        if self._loaded:
            return
        now = self.clock.time()
        rows = await self.store.run(lambda conn: _load(conn, now - self.retention_s))
        if not self._loaded:
            self._install(rows, now)

    def _install(self, rows: list[_Row], now: float) -> None:
        self._next_purge = now + PURGE_EVERY_S
        for row in rows:
            # Bans already in force were enforced by the process that recorded them (or while we were down,
            # when no session was live): only bans that start later still need the timer.
            row.enforced = row.start <= now
            self._put(row)
        self._loaded = True

    def _put(self, row: _Row) -> None:
        key = row.key
        self._rows[key] = row
        sources = self._by_player.get(row.ban.player_key)
        if row.lifted_at is None:
            if sources is None:
                sources = self._by_player[row.ban.player_key] = {}
            sources[row.ban.source] = row
            if not row.enforced:
                self._schedule(row.start, key)
            elif row.end is not None:
                self._schedule(row.end, key)
        elif sources is not None:
            sources.pop(row.ban.source, None)
            if not sources:
                del self._by_player[row.ban.player_key]

    def _admit(self, bans: list[Ban]) -> tuple[list[_Row], list[_Row]]:
        """Diff a batch against the book and put the new rows in memory at once (they gate logins from here).

        Returns:
            The new rows (not saved, not enforced yet), and the rows already in the book that equal a ban of
            the batch but are not saved yet (another apply still writing them, or whose write failed): the
            caller writes those too before it reports the batch recorded.
        """
        now = self.clock.time()
        book = self._rows
        by_player = self._by_player
        timeline = self._timeline
        rows: list[_Row] = []
        unsaved: list[_Row] = []
        repeated = False  # a key seen twice in the batch (the later ban wins)
        # A batch's bans mostly share their dates, and converting a date is the costliest step here (so is hashing
        # a fresh datetime): reuse the previous ban's stamp when its date is the same object, or an equal date in
        # the same fixed-offset zone object (KST, UTC), where equal fields are the same instant (in a zone with
        # DST, equal fields may differ by ``fold``).
        last_at: datetime | None = None
        last_at_zone: object = None  # the zone of last_at when it is a fixed offset, else None
        last_start = 0.0
        last_until: datetime | None = None
        last_until_zone: object = None
        last_end = 0.0
        pushed = False
        for ban in bans:
            source = ban.source
            player_key = ban.player_key
            key = (source, player_key)
            at = ban.starts_at
            if at is last_at or (at.tzinfo is last_at_zone and at == last_at):
                start = last_start
            else:
                start = last_start = at.timestamp()
                last_at = at
                zone = at.tzinfo
                last_at_zone = zone if zone.__class__ is timezone else None
            until = ban.ends_at
            end: float | None
            if until is None:
                end = None
            elif until is last_until or (until.tzinfo is last_until_zone and until == last_until):
                end = last_end
            else:
                end = last_end = until.timestamp()
                last_until = until
                zone = until.tzinfo
                last_until_zone = zone if zone.__class__ is timezone else None
            current = book.get(key)
            if current is not None:
                if not current.saved and current.recorded_at == now:
                    repeated = True  # (or another batch at the same instant: harmless)
                if current.start == start and current.end == end and current.ban.status == ban.status:
                    if not current.saved:
                        unsaved.append(current)
                    continue
                if current.start > start:  # stale; the newer row is written if it is not yet
                    if not current.saved:
                        unsaved.append(current)
                    continue
            row = _Row(ban, key, start, end, now, None, False, False)
            rows.append(row)
            book[key] = row
            sources = by_player.get(player_key)
            if sources is None:
                by_player[player_key] = {source: row}
            else:
                sources[source] = row
            if start > now:
                self._seq += 1
                heapq.heappush(timeline, (start, self._seq, key))
                pushed = True
        if pushed and self._wake is not None:
            self._wake()
        if repeated:  # keep each key's last row, in order
            rows = [row for row in rows if book.get(row.key) is row]
        return rows, unsaved

    def _schedule(self, when: float, key: tuple[str, str]) -> None:
        self._seq += 1
        heapq.heappush(self._timeline, (when, self._seq, key))
        if self._wake is not None:
            self._wake()

    # -- sync core ---------------------------------------------------------------------------------------------

    @counts_bans(BANS_APPLIED)
    def apply_many_nowait(self, bans: Iterable[Ban]) -> list[Ban]:
        """Record bans (one sqlite transaction, blocking) and queue their enforcement for the timer.

        Returns:
            The bans that changed the book (identical re-sends and stale bans are left out).

        Raises:
            sqlite3.Error / RuntimeError: the store failed; as for :meth:`apply`, the bans stay in force in
                memory, marked unsaved.
        """
        self.load_nowait()
        rows, unsaved = self._admit(list(bans))
        if rows:
            self._pending.extend(rows)
            if self._wake is not None:
                self._wake()
            elif self.spawn is not None:
                self.spawn(self.tick)
        if rows or unsaved:
            self._persist_nowait([r.key for r in itertools.chain(rows, unsaved)])
        return [r.ban for r in rows]

    def apply_nowait(self, ban: Ban) -> bool:
        """Record one ban; True when it changed the book. See :meth:`apply_many_nowait`."""
        return bool(self.apply_many_nowait((ban,)))

    def _lift_rows(self, player_key: str, source: str | None, started_by: float | None) -> list[_Row]:
        now = self.clock.time()
        sources = self._by_player.get(player_key)
        if not sources:
            return []
        out: list[_Row] = []
        for row in sources.values():
            if source is not None and row.ban.source != source:
                continue
            if started_by is not None and row.start > started_by:
                continue
            out.append(_Row(row.ban, row.key, row.start, row.end, row.recorded_at, now, row.enforced, False))
        return out

    def _lift_in_memory(
        self, player_key: str, source: str | None, started_by: datetime | None
    ) -> tuple[list[_Row], list[tuple[str, str]]]:
        """Lift in memory (see :meth:`lift_nowait`); returns the rows lifted and the keys to write: theirs, and
        the player's keys whose last write failed (a lift re-sent after a failed one writes them)."""
        rows = self._lift_rows(player_key, source, None if started_by is None else to_timestamp(started_by))
        for row in rows:
            self._put(row)
        keys = [r.key for r in rows]
        if self._unsaved:
            keys += [k for k in self._unsaved if k[1] == player_key and (source is None or k[0] == source)]
        return rows, keys

    @counts_bans(BANS_LIFTED)
    def lift_nowait(
        self, player_key: str | int, *, source: str | None = None, started_by: datetime | None = None
    ) -> list[Ban]:
        """Lift the player's bans (every source, or one), persisting at once (blocking).

        Args:
            player_key: the player.
            source: lift only this source's ban.
            started_by: lift only bans that started at or before this instant (a release does not lift a
                later ban).

        Returns:
            The bans lifted.

        Raises:
            TypeError / ValueError: ``player_key`` cannot be a player id.
        """
        player_key = player_id(player_key, what="player key")
        self.load_nowait()
        rows, keys = self._lift_in_memory(player_key, source, started_by)
        if keys:
            self._persist_nowait(keys)
        return [r.ban for r in rows]

    # -- queries -----------------------------------------------------------------------------------------------

    def active_ban(self, player_key: str | int) -> Ban | None:
        """The ban in force for the player now, or None. With several, the one that ends last (permanent first).

        A lookup: an ``int`` is normalised; a string that cannot be a player id finds nothing.
        """
        if type(player_key) is not str:
            player_key = lookup_key(player_key, what="player key")
        if not self._loaded:
            self.load_nowait()
        sources = self._by_player.get(player_key)
        if not sources:
            return None
        now = self.clock.time()
        best: _Row | None = None
        for row in sources.values():
            if row.start > now or (row.end is not None and row.end <= now):
                continue
            if best is None or (best.end is not None and (row.end is None or row.end > best.end)):
                best = row
        return best.ban if best is not None else None

    def bans_of(self, player_key: str | int) -> list[Ban]:
        """Every unlifted ban recorded for the player (in force, future or ended but not yet dropped)."""
        if type(player_key) is not str:
            player_key = lookup_key(player_key, what="player key")
        if not self._loaded:
            self.load_nowait()
        sources = self._by_player.get(player_key)
        return [r.ban for r in sources.values()] if sources else []

    def active_bans(self) -> list[Ban]:
        """Every ban in force now."""
        if not self._loaded:
            self.load_nowait()
        now = self.clock.time()
        return [
            r.ban
            for sources in self._by_player.values()
            for r in sources.values()
            if r.start <= now and (r.end is None or r.end > now)
        ]

    def __len__(self) -> int:
        """Number of bans in force now."""
        return len(self.active_bans())

    def next_deadline(self) -> float | None:
        """When the timer must next look at the book (a ban starts or ends, or old rows are purged), or None."""
        chores = self._next_purge
        if self._unsaved and self._retry_at is not None:
            chores = self._retry_at if chores is None else min(chores, self._retry_at)
        while self._timeline:
            when, _, key = self._timeline[0]
            row = self._rows.get(key)
            if row is not None and row.lifted_at is None and when in (row.start, row.end):
                return when if chores is None else min(when, chores)
            heapq.heappop(self._timeline)
        return chores

    async def purge(self) -> int:
        """Forget bans that ended or were lifted more than ``retention_s`` ago (memory and store)."""
        now = self.clock.time()
        self._next_purge = now + PURGE_EVERY_S
        cutoff = now - self.retention_s
        stale = [
            key
            for key, row in self._rows.items()
            if (row.lifted_at is not None and row.lifted_at < cutoff) or (row.end is not None and row.end < cutoff)
        ]
        if not stale:
            return 0
        # Memory first (see "writing"): a key banned again before the delete runs is not deleted.
        for key in stale:
            row = self._rows.pop(key)
            sources = self._by_player.get(row.ban.player_key)
            if sources is not None and sources.get(row.ban.source) is row:
                del sources[row.ban.source]
                if not sources:
                    del self._by_player[row.ban.player_key]
        if self._unsaved:
            self._unsaved.difference_update(stale)
        book = self._rows
        await self.store.run(lambda conn: _delete(conn, [key for key in stale if key not in book]))
        return len(stale)

    # -- async shell -------------------------------------------------------------------------------------------

    def _get_lock(self) -> anyio.Lock:
        if self._lock is None:
            self._lock = anyio.Lock()
        return self._lock

    @counts_bans_async(BANS_APPLIED)
    async def apply(self, bans: Iterable[Ban]) -> list[Ban]:
        """Apply bans: into memory (they gate logins), enforced (sessions kicked, ``on_ban``), then recorded.

        Returns only once every ban of the batch is recorded durably (one transaction), so a webhook answers
        after this. Enforcement comes first: live sessions are kicked without waiting for the disk. Each write
        stores memory's rows of the batch's keys as they are when it runs (read under the store lock), so
        whatever order concurrent writes run in, the last one stores the latest state. A file store is written
        on a worker thread; the ``:memory:`` store (nothing to wait for) inline.

        Returns:
            The bans that changed the book.

        Raises:
            sqlite3.Error / RuntimeError: the store failed. The bans stay in force in memory, marked unsaved:
                applying them again (a platform's retransmission, the next poll) writes them, and a retry runs
                every ``RETRY_WRITE_S`` (the timer's, or a task of the Hooks when no timer runs).
        """
        bans = list(bans)
        async with self._get_lock():
            await self.load()
            rows, unsaved = self._admit(bans)
        if not rows:
            if unsaved:
                await self._persist([r.key for r in unsaved])
            return []
        # Outside the lock: a game callback may itself ban or unban. No checkpoint lies between here and the
        # rows put above, so the ones in force are enforced before anything else runs, or (a callback was
        # cancelled) handed to the timer, and the batch is recorded either way.
        keys = [r.key for r in itertools.chain(rows, unsaved)]
        try:
            await self._enforce_due(rows)  # what it does not reach, it hands to the timer
        except BaseException:
            with anyio.CancelScope(shield=True):
                try:
                    await self._persist(keys)
                except Exception:  # kept unsaved and retried; the original exception is the one to raise
                    log.exception("writing a batch cut short by a callback failed")
            raise
        await self._persist(keys)
        if self._pending and self._wake is None:
            pending, self._pending = self._pending, []
            await self._enforce_due(pending)
        return [r.ban for r in rows]

    # -- writing ---------------------------------------------------------------------------------------------
    #
    # Memory is the truth: every change is made in memory first, then the touched keys are written with the
    # rows memory holds *when the write runs* (read under the store lock). Whatever order writes land in, the
    # last one to run reads the latest state, so the store never ends behind memory.

    def _save(self, conn: sqlite3.Connection, keys: list[tuple[str, str]]) -> list[_Row]:
        """(Store lock held; any thread.) Write the book's current rows of these keys; returns them."""
        get = self._rows.get
        current = [row for row in map(get, keys) if row is not None]  # None: purged since
        if current:
            _write(conn, current)
        return current

    def _saved(self, keys: list[tuple[str, str]], written: list[_Row]) -> None:
        for row in written:
            row.saved = True
        if self._unsaved:
            # a key is settled only when the row written is still memory's (a newer one may have failed since),
            # or when memory no longer holds it (purged)
            book = self._rows
            self._unsaved.difference_update(key for key in keys if book.get(key) is None or book[key].saved)
            if not self._unsaved:
                self._retry_at = None

    def _failed(self, keys: list[tuple[str, str]]) -> None:
        self._unsaved.update(keys)
        self._retry_at = self.clock.time() + RETRY_WRITE_S
        if self._wake is not None:
            self._wake()
        elif not self._retrying and self.spawn is not None:  # no timer runs: a task of the Hooks retries
            self._retrying = self.spawn(self._retry_unsaved)

    async def _retry_unsaved(self) -> None:
        """Without a timer: write the unsaved rows every ``RETRY_WRITE_S`` until they are all written."""
        try:
            while self._unsaved:
                await self.clock.sleep(RETRY_WRITE_S)
                await self._write_unsaved()
        finally:
            self._retrying = False

    async def flush(self) -> int:
        """One last try at writing the bans whose write failed (at shutdown: they are lost otherwise).

        Called by the ban timer's ``aclose`` and again by :meth:`Hooks.aclose <gs_hooks.Hooks.aclose>`; the loss
        is logged once (again only if a later try changed what is lost).

        Returns:
            How many could still not be written (logged as an error).
        """
        if self._unsaved:
            await self._write_unsaved()
            lost = frozenset(self._unsaved)
            if lost and lost != self._reported_lost:
                self._reported_lost = lost
                log.error(
                    "%d bans could not be written to the store %s and are lost at exit (they were enforced while "
                    "the process ran): platform bans come back with the next Hive push or Gamebase poll; bans made "
                    "with hooks.ban() must be made again",
                    len(lost),
                    self._store_path(),
                )
        return len(self._unsaved)

    def _store_path(self) -> str:
        try:
            return self.store.path
        except Exception:  # the store itself could not be opened
            return "(not opened)"

    async def _write_unsaved(self) -> None:
        """One attempt at writing the unsaved rows; a failure is logged (and retried later)."""
        self._retry_at = self.clock.time() + RETRY_WRITE_S  # no busy loop, whatever happens below
        try:
            await self._persist(list(self._unsaved))
        except Exception as exc:  # kept in memory; tried again later
            log.warning("writing %d bans to the store failed again (%s); retrying later", len(self._unsaved), exc)

    def _persist_nowait(self, keys: list[tuple[str, str]]) -> None:
        """Write these keys' current rows, blocking. On failure they are left for :meth:`tick` to retry."""
        try:
            written = self.store.run_sync(lambda conn: self._save(conn, keys))
        except BaseException:
            self._failed(keys)
            raise
        self._saved(keys, written)

    async def _persist(self, keys: list[tuple[str, str]]) -> None:
        """:meth:`_persist_nowait` on a worker thread (inline for the ``:memory:`` store)."""
        store = self.store
        if store.path == ":memory:":
            self._persist_nowait(keys)
            return
        try:
            written = await store.run(lambda conn: self._save(conn, keys))
        except BaseException:
            self._failed(keys)
            raise
        self._saved(keys, written)

    @counts_bans_async(BANS_LIFTED)
    async def lift(
        self, player_key: str | int, *, source: str | None = None, started_by: datetime | None = None
    ) -> list[Ban]:
        """Lift bans durably (worker thread). See :meth:`lift_nowait`."""
        player_key = player_id(player_key, what="player key")
        async with self._get_lock():
            await self.load()
            rows, keys = self._lift_in_memory(player_key, source, started_by)
            if keys:
                await self._persist(keys)
        return [r.ban for r in rows]

    async def _enforce_due(self, rows: Iterable[_Row]) -> int:
        """Enforce the rows that are in force now and were not enforced yet. Returns sessions kicked.

        Two loops over the batch: the book's side first (mark, schedule the end, drop cached tokens, build the
        kick's message and details), then the kicks and ``on_ban``, in order, which keeps the registry's cold
        lookups together. A game callback is awaited only when it returns an awaitable, so a batch against sync
        callbacks runs without a coroutine per ban.
        """
        now = self.clock.time()
        book = self._rows
        timeline = self._timeline
        forget_token, kick = self._forget_token, self._kick
        due: list[_Row] = []
        woken = True  # False while an end date pushed on the timeline has not been told to the timer
        for row in rows:
            if row.enforced or row.lifted_at is not None or row.start > now:
                continue
            key = row.key
            if book.get(key) is not row:  # replaced or lifted since
                continue
            row.enforced = True
            if row.end is not None:
                if row.end <= now:
                    continue
                self._seq += 1
                heapq.heappush(timeline, (row.end, self._seq, key))
                woken = False
            due.append(row)
            if forget_token is not None:
                try:
                    forget_token(row.ban.player_key)
                except Exception:
                    log.exception("dropping cached tokens of a banned player failed")
        if not woken and self._wake is not None:
            self._wake()
        if not due:
            return 0
        on_ban = self._on_ban
        if on_ban is None and self._on_ban_now is not None:
            on_ban = self._on_ban_now()
        kicked = 0
        done_rows = 0  # rows whose kicks and on_ban are over
        # A batch's bans mostly end together: the previous ban's message is reused for the same instant in the same
        # fixed-offset zone object (in a zone with DST, one instant may be written two ways around a change).
        last_message = ""
        last_message_end: float | None = None
        last_message_zone: object = None
        try:
            for row in due:
                if book.get(row.key) is not row:  # lifted or replaced while an earlier kick was awaited
                    done_rows += 1
                    continue
                ban = row.ban
                player_key = ban.player_key
                n = 0
                if kick is not None:
                    message = ban.message
                    if not message:
                        until = ban.ends_at
                        if until is None:
                            message = _PERMANENT_MESSAGE
                        elif row.end == last_message_end and until.tzinfo is last_message_zone:
                            message = last_message
                        else:
                            message = last_message = _until_message(until)
                            last_message_end = row.end
                            zone = until.tzinfo
                            last_message_zone = zone if zone.__class__ is timezone else None
                    details = BanDetails(
                        source=ban.source,
                        status=ban.status,
                        starts_at=ban.starts_at,
                        ends_at=ban.ends_at,
                        message=ban.message,
                    )
                    done = kick(player_key, message, details)
                    n = done if isinstance(done, int) else await done
                    kicked += n
                if on_ban is not None:
                    pending = on_ban(BanEvent(player_key=player_key, ban=ban, sessions_kicked=n))
                    if pending is not None:
                        await pending
                done_rows += 1
        except BaseException:
            # Cut short (a callback was cancelled; raising callbacks are caught and logged below us): the rows not
            # done, the one in progress included, go to the timer, which kicks what is left of their sessions and
            # calls on_ban (the sessions of the one in progress that its kick did not reach were closed by it).
            for row in due[done_rows:]:
                if book.get(row.key) is row:
                    row.enforced = False
                    self._schedule(row.start, row.key)
            raise
        return kicked

    async def tick(self) -> int:
        """Enforce queued and newly started bans; drop ended ones from memory. Returns sessions kicked."""
        await self.load()
        kicked = 0
        if self._pending:
            pending, self._pending = self._pending, []
            kicked += await self._enforce_due(pending)
        now = self.clock.time()
        due: list[_Row] = []
        while self._timeline and self._timeline[0][0] <= now:
            when, _, key = heapq.heappop(self._timeline)
            row = self._rows.get(key)
            if row is None or row.lifted_at is not None:
                continue
            if not row.enforced and when == row.start:
                due.append(row)
            elif row.end is not None and when == row.end and row.end <= now:
                sources = self._by_player.get(row.ban.player_key)
                if sources is not None and sources.get(row.ban.source) is row:
                    del sources[row.ban.source]
                    if not sources:
                        del self._by_player[row.ban.player_key]
        kicked += await self._enforce_due(due)
        if self._unsaved and (self._retry_at is None or self._retry_at <= now):
            await self._write_unsaved()
        if self._next_purge is not None and self._next_purge <= now:
            await self.purge()
        return kicked

    def __repr__(self) -> str:
        return f"BanBook(players={len(self._by_player)}, loaded={self._loaded})"


def _load(conn: sqlite3.Connection, purge_before: float) -> list[_Row]:
    conn.execute(_SCHEMA)
    conn.execute(
        "DELETE FROM bans_book WHERE (lifted_at IS NOT NULL AND lifted_at < ?) "
        "OR (ends_at IS NOT NULL AND ends_at < ?)",
        (purge_before, purge_before),
    )
    out: list[_Row] = []
    skipped = 0
    for source, player_key, status, starts_at, ends_at, message, recorded_at, lifted_at in conn.execute(
        "SELECT source, player_key, status, starts_at, ends_at, message, recorded_at, lifted_at FROM bans_book"
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
        out.append(_Row.of(ban, recorded_at, lifted_at))
    if skipped:
        log.warning("ban book: %d stored bans skipped: their player key cannot be a player id", skipped)
    return out


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back, unless sqlite already did (it rolls back by itself on a full disk or an I/O error, and a
    ROLLBACK then would raise "no transaction is active" in place of the real error)."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _delete(conn: sqlite3.Connection, keys: list[tuple[str, str]]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany("DELETE FROM bans_book WHERE source = ? AND player_key = ?", keys)
    except BaseException:
        _rollback(conn)
        raise
    conn.execute("COMMIT")


def _write(conn: sqlite3.Connection, rows: list[_Row]) -> None:
    """Upsert the rows in one transaction: full chunks as one multi-row statement each, the rest one by one."""
    params = [
        (r.ban.source, r.ban.player_key, r.ban.status, r.start, r.end, r.ban.message, r.recorded_at, r.lifted_at)
        for r in rows
    ]
    full = len(params) - len(params) % _CHUNK
    conn.execute("BEGIN IMMEDIATE")
    try:
        for i in range(0, full, _CHUNK):
            conn.execute(_UPSERT_CHUNK, list(itertools.chain.from_iterable(params[i : i + _CHUNK])))
        if full < len(params):
            conn.executemany(_UPSERT, params[full:])
    except BaseException:
        _rollback(conn)
        raise
    conn.execute("COMMIT")


class BanTimer:
    """The ban book's component: enforces bans queued by the sync core and bans whose start has come, and
    drops ended bans from memory. Sleeps on the injected clock until the next start or end.

    Args:
        book: the ban book.
        load_at_start: read the store when starting (otherwise the book loads on first use).
    """

    name = "bans"

    def __init__(self, book: BanBook, *, load_at_start: bool = True) -> None:
        self.book = book
        self.load_at_start = load_at_start

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled."""
        book = self.book
        if self.load_at_start:
            await book.load()
        task_status.started()
        try:
            while True:
                wake = anyio.Event()
                book._wake = wake.set
                if book.loaded:
                    try:
                        await book.tick()
                    except Exception:
                        log.exception("ban timer tick failed")
                deadline = book.next_deadline() if book.loaded else None
                if book._pending:
                    continue
                async with anyio.create_task_group() as tg:
                    if deadline is not None:
                        tg.start_soon(self._sleep_then_cancel, deadline, tg.cancel_scope)
                    await wake.wait()
                    tg.cancel_scope.cancel()
        finally:
            book._wake = None

    async def _sleep_then_cancel(self, deadline: float, scope: anyio.CancelScope) -> None:
        await self.book.clock.sleep_until(deadline)
        scope.cancel()

    async def aclose(self) -> None:
        """Flush: see :meth:`BanBook.flush`."""
        await self.book.flush()
