"""The ban book: active bans by player key, durable through its persistence, enforced on live sessions.

Strategy: one row per (source, player key) — ``hive``, ``gamebase`` or ``api``. A ban's identity is (source,
player, start, end, status): applying an identical ban again is a no-op (no second kick), so platform
retransmissions and poll overlaps are harmless. A ban that starts earlier than the one already recorded for the
same source and player is stale and ignored. Lifting a ban keeps its row as a tombstone (``lifted_at``), so a
re-read of the same ban does not bring it back; rows that ended or were lifted longer than ``retention_s`` ago are
purged.

The parts, each in its module: the data (``_model``), memory (``_memory``: rows, the per-player view, the
timeline), the persistence behind a narrow interface (``_persistence``: sqlite, or fleet mode's), enforcement
(``_enforce``), the writes with their retry (``_writer``) and the timer that does the book's queued work
(``_timer``). This module joins them.

Memory is the truth: every change goes into memory first, then the touched keys are written with the rows memory
holds when the write runs, so whatever order writes land in, the store never ends behind memory. A failed write
leaves the rows in memory, unsaved (with the origin of their batch): a re-applied identical ban (or a re-sent
lift) writes them, the timer retries every ``RETRY_WRITE_S``, and tries once more when it closes.

Sync core, async shell: :meth:`BanBook.apply_many_nowait` / :meth:`BanBook.lift_nowait` update memory and persist
(blocking); the bans they bring into force are queued for the timer. :meth:`BanBook.apply` enforces inline, then
persists (on a worker thread for a file store), so live sessions are kicked without waiting for the disk;
:meth:`BanBook.lift` persists on a worker thread. Enforcing a large batch yields to the event loop between slices
of about a millisecond (``_enforce``), so the game's tick is not held up. A ban whose start lies ahead is enforced
by the timer when it starts; expiry needs no action (:meth:`BanBook.active_ban` compares with the clock), the
timer only drops ended bans from memory.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any

import anyio
import anyio.lowlevel

from .._clock import Clock
from .._ids import lookup_key, player_id
from .._metrics import BANS_APPLIED, BANS_LIFTED, counts_bans, counts_bans_async
from .._signal import Doorbell
from .._store import Store
from .._time import to_timestamp
from ._enforce import Enforcer
from ._memory import BanIndex
from ._model import LOCAL, Ban, BanEvent, BanKey, BanRow, BatchOrigin, KickBanned
from ._persistence import BanStore, SqliteBanStore
from ._writer import RETRY_WRITE_S, BookWriter

__all__ = ["PURGE_EVERY_S", "RETRY_WRITE_S", "YIELD_CHECKPOINTS", "BanBook"]

log = logging.getLogger("gs_hooks.bans")

PURGE_EVERY_S = 3600.0

YIELD_CHECKPOINTS = 3
"""Checkpoints per yield of a batch's enforcement (its ``pause``), not one: on asyncio a timer that fell due during
a slice is made ready in the first loop iteration after the yield, behind the batch; its handle completes the
sleeping task's future, whose callback steps the task one iteration later. After one checkpoint the batch is
stepped ahead of that task and runs a whole slice first: ``python -m bench bans``'s 1 ms ticker was then ~2 slices
late (2.3-3.9 ms), after two ~1 slice (1.3-1.5 ms), after three it runs before the next slice (0.3-0.5 ms). On
trio a woken task is runnable at once; the two more checkpoints cost it two scheduler batches."""


async def _pause() -> None:
    """Yield to the event loop between two slices of a batch's enforcement (see :data:`YIELD_CHECKPOINTS`)."""
    for _ in range(YIELD_CHECKPOINTS):
        await anyio.lowlevel.checkpoint()


class BanBook:
    """Active bans by player key: durable, idempotent, enforced on live sessions, with expiry on time.

    Args:
        store: the sqlite store, or a function returning it (opened on first use).
        clock: the injected clock.
        kick: ``(player_key, message, details) -> sessions kicked`` (Hooks passes its kick), returning the
            number, or an awaitable of it (awaited) when a game callback is async.
        on_ban: ``(BanEvent)`` called when a ban comes into force; may return an awaitable (awaited).
        on_ban_now: instead of ``on_ban``, a function returning it (or None) when a batch is enforced (a game
            may set ``on_ban`` after ``setup()``), so no event is built while there is no callback.
        forget_token: drops the player's cached token verifications.
        retention_s: how long ended or lifted bans are remembered (tombstones that keep re-reads idempotent).
        persistence: where rows are written (default: :class:`SqliteBanStore` on ``store``).

    Attributes:
        persistence: the book's :class:`BanStore` (fleet mode sets its own before the hooks start).
        enforcer: the book's :class:`~gs_hooks.bans._enforce.Enforcer` (kicks, ``on_ban``; its ``slice_s`` and
            ``slice_clock`` say how long a batch's enforcement runs before it yields to the event loop).
        doorbell: rung whenever the book queues work for its timer.
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
        persistence: BanStore | None = None,
    ) -> None:
        self._store_source = store
        self.clock = clock
        self.retention_s = retention_s
        self.doorbell = Doorbell()
        self._index = BanIndex(self.doorbell.ring)
        self._writer = BookWriter(
            persistence if persistence is not None else SqliteBanStore(store), self._index, clock, self.doorbell.ring
        )
        self.enforcer = Enforcer(
            pause=_pause, kick=kick, on_ban=on_ban, on_ban_now=on_ban_now, forget_token=forget_token
        )
        self._queued: list[BanRow] = []  # recorded by the sync core, enforced by the timer
        self._loaded = False
        self._next_purge: float | None = None
        self._lock: anyio.Lock | None = None

    @property
    def persistence(self) -> BanStore:
        """Where rows are written (fleet mode sets its own before the hooks start)."""
        return self._writer.persistence

    @persistence.setter
    def persistence(self, value: BanStore) -> None:
        self._writer.persistence = value

    # -- loading -------------------------------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        """The sqlite store the book was given."""
        s = self._store_source
        return s if isinstance(s, Store) else s()

    @property
    def loaded(self) -> bool:
        """Whether the book has read its persistence."""
        return self._loaded

    def load_nowait(self) -> None:
        """Read the persistence (once): old rows are purged, the rest loaded. Blocks on sqlite."""
        if not self._loaded:
            now = self.clock.time()
            self._install(self.persistence.load_sync(now - self.retention_s), now)

    async def load(self) -> None:
        """:meth:`load_nowait` on a worker thread."""
        if not self._loaded:
            now = self.clock.time()
            rows = await self.persistence.load(now - self.retention_s)
            if not self._loaded:
                self._install(rows, now)

    def _install(self, rows: list[BanRow], now: float) -> None:
        self._next_purge = now + PURGE_EVERY_S
        self._index.install(rows, now)
        self._loaded = True
        self.doorbell.ring()  # the timer learns the purge deadline and the timeline

    # -- sync core -----------------------------------------------------------------------------------------------

    @counts_bans(BANS_APPLIED)
    def apply_many_nowait(self, bans: Iterable[Ban], *, origin: BatchOrigin = LOCAL) -> list[Ban]:
        """Record bans (one transaction, blocking) and queue their enforcement for the timer.

        Args:
            bans: the batch.
            origin: where the batch comes from (told to the persistence).

        Returns:
            The bans that changed the book (identical re-sends and stale bans are left out).

        Raises:
            sqlite3.Error / RuntimeError: the store failed; as for :meth:`apply`, the bans stay in force in
                memory, marked unsaved.
        """
        self.load_nowait()
        rows, unsaved = self._index.admit(list(bans), self.clock.time())
        if rows:
            self._queued.extend(rows)
            self.doorbell.ring()
        if rows or unsaved:
            self._writer.persist_nowait([r.key for r in itertools.chain(rows, unsaved)], origin)
        return [r.ban for r in rows]

    def apply_nowait(self, ban: Ban, *, origin: BatchOrigin = LOCAL) -> bool:
        """Record one ban; True when it changed the book. See :meth:`apply_many_nowait`."""
        return bool(self.apply_many_nowait((ban,), origin=origin))

    @counts_bans(BANS_LIFTED)
    def lift_nowait(
        self,
        player_key: str | int,
        *,
        source: str | None = None,
        started_by: datetime | None = None,
        origin: BatchOrigin = LOCAL,
    ) -> list[Ban]:
        """Lift the player's bans (every source, or one), persisting at once (blocking).

        Args:
            player_key: the player.
            source: lift only this source's ban.
            started_by: lift only bans that started at or before this instant (a release does not lift a
                later ban).
            origin: where the lift comes from (told to the persistence).

        Returns:
            The bans lifted.

        Raises:
            TypeError / ValueError: ``player_key`` cannot be a player id.
        """
        player_key = player_id(player_key, what="player key")
        self.load_nowait()
        rows, keys = self._lift_in_memory(player_key, source, started_by)
        if keys:
            self._writer.persist_nowait(keys, origin)
        return [r.ban for r in rows]

    def _lift_in_memory(
        self, player_key: str, source: str | None, started_by: datetime | None
    ) -> tuple[list[BanRow], list[BanKey]]:
        """Lift in memory; returns the tombstones and the keys to write: theirs, and the player's keys whose last
        write failed (a lift re-sent after a failed one writes them)."""
        at = None if started_by is None else to_timestamp(started_by)
        rows = self._index.lift(player_key, source, at, self.clock.time())
        keys = [r.key for r in rows]
        keys += [k for k in self._writer.unsaved if k[1] == player_key and (source is None or k[0] == source)]
        return rows, keys

    # -- queries -------------------------------------------------------------------------------------------------

    def active_ban(self, player_key: str | int) -> Ban | None:
        """The ban in force for the player now, or None. With several, the one that ends last (permanent first).

        A lookup: an ``int`` is normalised; a string that cannot be a player id finds nothing.
        """
        if type(player_key) is not str:
            player_key = lookup_key(player_key, what="player key")
        if not self._loaded:
            self.load_nowait()
        return self._index.active(player_key, self.clock.time())

    def bans_of(self, player_key: str | int) -> list[Ban]:
        """Every unlifted ban recorded for the player (in force, future or ended but not yet dropped)."""
        if type(player_key) is not str:
            player_key = lookup_key(player_key, what="player key")
        if not self._loaded:
            self.load_nowait()
        return self._index.of_player(player_key)

    def active_bans(self) -> list[Ban]:
        """Every ban in force now."""
        if not self._loaded:
            self.load_nowait()
        return self._index.in_force(self.clock.time())

    def __len__(self) -> int:
        """Number of bans in force now."""
        return len(self.active_bans())

    @property
    def recorded_keys(self) -> frozenset[BanKey]:
        """Every ``(source, player_key)`` the book remembers: bans in force, ahead, or ended but not yet purged,
        and tombstones of lifted bans."""
        return self._index.keys()

    @property
    def unsaved_keys(self) -> frozenset[BanKey]:
        """The keys whose rows are only in memory: their last write failed (retried by the timer)."""
        return frozenset(self._writer.unsaved)

    @property
    def unsaved_count(self) -> int:
        """How many rows are only in memory (see :attr:`unsaved_keys`)."""
        return len(self._writer.unsaved)

    @property
    def next_retry_at(self) -> float | None:
        """When the timer next tries to write the unsaved rows (None: nothing to write)."""
        return self._writer.next_retry_at

    def next_deadline(self) -> float | None:
        """When the timer must next look at the book (a ban starts or ends, a write is retried, old rows are
        purged), or None."""
        times = [self._index.next_event(), self._next_purge, self.next_retry_at]
        return min((t for t in times if t is not None), default=None)

    # -- async shell ---------------------------------------------------------------------------------------------

    @counts_bans_async(BANS_APPLIED)
    async def apply(self, bans: Iterable[Ban], *, origin: BatchOrigin = LOCAL) -> list[Ban]:
        """Apply bans: into memory (they gate logins), enforced (sessions kicked, ``on_ban``), then recorded.

        Returns only once every ban of the batch is recorded durably (one transaction), so a webhook answers
        after this. Enforcement comes first: live sessions are kicked without waiting for the disk. Each write
        stores memory's rows of the batch's keys as they are when it runs, so whatever order concurrent writes
        run in, the last one stores the latest state.

        Args:
            bans: the batch.
            origin: where the batch comes from (told to the persistence).

        Returns:
            The bans that changed the book.

        Raises:
            sqlite3.Error / RuntimeError: the store failed. The bans stay in force in memory, marked unsaved:
                applying them again (a platform's retransmission, the next poll) writes them, and the timer
                retries every ``RETRY_WRITE_S``.
        """
        bans = list(bans)
        async with self._get_lock():
            await self.load()
            since = self.enforcer.slice_clock()  # putting the batch in memory counts in its first slice
            rows, unsaved = self._index.admit(bans, self.clock.time())
        keys = [r.key for r in itertools.chain(rows, unsaved)]
        if rows:
            # Outside the lock: a game callback may itself ban or unban. No checkpoint lies between the rows put
            # above and the enforcer's pass (it yields only inside, between slices), so the ones in force are
            # enforced, or (the pass cancelled at a yield or in a callback) handed to the timer, and the batch is
            # recorded either way.
            try:
                await self._enforce_due(rows, since=since)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    try:
                        await self._writer.persist(keys, origin)
                    except Exception:  # kept unsaved and retried; the original exception is the one to raise
                        log.exception("writing a batch cut short by a callback failed")
                raise
        if keys:
            await self._writer.persist(keys, origin)
        return [r.ban for r in rows]

    @counts_bans_async(BANS_LIFTED)
    async def lift(
        self,
        player_key: str | int,
        *,
        source: str | None = None,
        started_by: datetime | None = None,
        origin: BatchOrigin = LOCAL,
    ) -> list[Ban]:
        """Lift bans durably (worker thread). See :meth:`lift_nowait`."""
        player_key = player_id(player_key, what="player key")
        async with self._get_lock():
            await self.load()
            rows, keys = self._lift_in_memory(player_key, source, started_by)
            if keys:
                await self._writer.persist(keys, origin)
        return [r.ban for r in rows]

    @counts_bans_async(BANS_LIFTED)
    async def merge_lifted(self, lifted: Iterable[tuple[Ban, float]], *, origin: BatchOrigin = LOCAL) -> list[Ban]:
        """Record bans as lifted, each named by its identity with when it was lifted (fleet mode: the tombstones
        another process's book published), and persist them. Unlike :meth:`lift` (by player), a tombstone is kept
        even where the book held no row, so a later re-read of that ban stays a no-op here as everywhere.

        Args:
            lifted: ``(ban, lifted_at)`` pairs (epoch seconds).
            origin: where they come from (told to the persistence).

        Returns:
            The bans whose tombstones changed the book (a lift already held, or of an older ban, is left out).
        """
        async with self._get_lock():
            await self.load()
            rows = self._index.merge_lifted(list(lifted), self.clock.time())
            if rows:
                await self._writer.persist([r.key for r in rows], origin)
        return [r.ban for r in rows]

    async def tick(self) -> int:
        """Enforce queued and newly started bans; drop ended ones from memory; retry failed writes when due;
        purge when due. Returns sessions kicked."""
        await self.load()
        kicked = 0
        if self._queued:
            queued, self._queued = self._queued, []
            kicked += await self._enforce_due(queued)
        now = self.clock.time()
        kicked += await self._enforce_due(self._index.pop_due(now))
        if self._writer.retry_due(now):
            await self._writer.write_unsaved()
        if self._next_purge is not None and self._next_purge <= now:
            await self.purge()
        return kicked

    async def purge(self) -> int:
        """Forget bans that ended or were lifted more than ``retention_s`` ago (memory, then the persistence)."""
        now = self.clock.time()
        self._next_purge = now + PURGE_EVERY_S
        stale = self._index.forget(now - self.retention_s)
        if not stale:
            return 0
        self._writer.forget(stale)
        # memory first: a key banned again before the delete runs is not deleted
        await self.persistence.delete(stale, self._index.get)
        return len(stale)

    async def flush(self) -> int:
        """One last try at writing the bans whose write failed (at shutdown: they are lost otherwise).

        Called by the ban timer's ``aclose`` and again by :meth:`Hooks.aclose <gs_hooks.Hooks.aclose>`; the loss
        is logged once (again only if a later try changed what is lost).

        Returns:
            How many could still not be written (logged as an error).
        """
        return await self._writer.flush()

    def _get_lock(self) -> anyio.Lock:
        if self._lock is None:
            self._lock = anyio.Lock()
        return self._lock

    async def _enforce_due(self, rows: Iterable[BanRow], *, since: float | None = None) -> int:
        """Enforce the rows in force now and not enforced yet, each claimed as its turn comes (what is cut short
        goes back to the timeline); ``since``: when the batch's first slice began (see :class:`Enforcer`)."""
        now = self.clock.time()
        started = [row for row in rows if row.start <= now]  # a later start is on the timeline already
        if not started:
            return 0
        index = self._index
        return await self.enforcer.enforce(started, index.claim, now, index.hand_back, since=since)

    def __repr__(self) -> str:
        return f"BanBook(players={self._index.players}, loaded={self._loaded})"
