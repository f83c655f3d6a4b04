"""The ban book's writes: rows go to its persistence after memory changed; a failed write leaves the rows in
memory, *unsaved* (with the origin of their batch), for a re-applied identical ban, the timer's retry every
``RETRY_WRITE_S``, or the last try at shutdown (:meth:`BookWriter.flush`).

A key is settled only when the row written is still memory's (a newer one may have failed since), or when memory
no longer holds it (purged), so whatever order writes land in, the store never ends behind memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from .._clock import Clock
from ._memory import BanIndex
from ._model import BanKey, BanRow, BatchOrigin
from ._persistence import BanStore

__all__ = ["RETRY_WRITE_S", "BookWriter"]

log = logging.getLogger("gs_hooks.bans")

RETRY_WRITE_S = 30.0  # a failed write of bans held in memory is tried again by the timer this much later


class BookWriter:
    """Writes the book's rows through its persistence and keeps the keys whose write failed.

    Args:
        persistence: where rows are written.
        index: the book's memory (the rows to write are read from it when the write runs).
        clock: the injected clock (retry times).
        ring: wakes the book's timer (a retry is due later).

    Attributes:
        persistence: as above, settable (fleet mode sets its own before the hooks start).
        unsaved: the keys whose last write failed, with their batch's origin.
    """

    def __init__(self, persistence: BanStore, index: BanIndex, clock: Clock, ring: Callable[[], None]) -> None:
        self.persistence = persistence
        self.unsaved: dict[BanKey, BatchOrigin] = {}
        self._index = index
        self._clock = clock
        self._ring = ring
        self._retry_at: float | None = None
        self._reported_lost: frozenset[BanKey] = frozenset()  # what flush() logged as lost at exit

    @property
    def next_retry_at(self) -> float | None:
        """When the unsaved rows are next tried (None: nothing to write)."""
        return self._retry_at if self.unsaved else None

    def retry_due(self, now: float) -> bool:
        """Whether the timer should try the unsaved rows now."""
        return bool(self.unsaved) and (self._retry_at is None or self._retry_at <= now)

    def forget(self, keys: Iterable[BanKey]) -> None:
        """Stop retrying these keys (purged from memory)."""
        for key in keys:
            self.unsaved.pop(key, None)

    def persist_nowait(self, keys: list[BanKey], origin: BatchOrigin) -> None:
        """Write these keys' current rows, blocking. On failure they are left unsaved (and the error raised)."""
        try:
            written = self.persistence.write_sync(keys, self._index.get, origin)
        except BaseException:
            self._failed(keys, origin)
            raise
        self._saved(keys, written)

    async def persist(self, keys: list[BanKey], origin: BatchOrigin) -> None:
        """:meth:`persist_nowait` without blocking the event loop."""
        try:
            written = await self.persistence.write(keys, self._index.get, origin)
        except BaseException:
            self._failed(keys, origin)
            raise
        self._saved(keys, written)

    def _saved(self, keys: list[BanKey], written: list[BanRow]) -> None:
        for row in written:
            row.saved = True
        if self.unsaved:
            for key in keys:
                held = self._index.get(key)
                if held is None or held.saved:
                    self.unsaved.pop(key, None)
            if not self.unsaved:
                self._retry_at = None

    def _failed(self, keys: list[BanKey], origin: BatchOrigin) -> None:
        for key in keys:
            self.unsaved[key] = origin  # memory's row is the latest batch's: written as from there
        self._retry_at = self._clock.time() + RETRY_WRITE_S
        self._ring()

    async def write_unsaved(self) -> None:
        """One attempt at writing the unsaved rows (one write per origin); a failure is logged, retried later."""
        self._retry_at = self._clock.time() + RETRY_WRITE_S  # no busy loop, whatever happens below
        by_origin: dict[BatchOrigin, list[BanKey]] = {}
        for key, origin in self.unsaved.items():
            by_origin.setdefault(origin, []).append(key)
        try:
            for origin, keys in by_origin.items():
                await self.persist(keys, origin)
        except Exception as exc:  # kept in memory; tried again later
            log.warning("writing %d bans to the store failed again (%s); retrying later", len(self.unsaved), exc)

    async def flush(self) -> int:
        """One last try at writing the unsaved rows; what is still unsaved is logged once as lost (again only if
        a later try changed what is lost). Returns how many could not be written."""
        if self.unsaved:
            await self.write_unsaved()
            lost = frozenset(self.unsaved)
            if lost and lost != self._reported_lost:
                self._reported_lost = lost
                log.error(
                    "%d bans could not be written to the store %s and are lost at exit (they were enforced while "
                    "the process ran): platform bans come back with the next Hive push or Gamebase poll; bans made "
                    "with hooks.ban() must be made again",
                    len(lost),
                    self.persistence.describe(),
                )
        return len(self.unsaved)
