"""The ban book in memory: rows by key, unlifted rows by player, and the timeline of starts and ends.

Synchronous and IO-free: the book (``_book.py``) wraps it with persistence and enforcement. Three views of the same
rows: ``rows`` (every row the book remembers, tombstones of lifted bans included) is what the persistence writes;
``by_player`` (player → source → row, unlifted only) answers the login gate; the timeline is a heap of
``(when, seq, key)`` for bans that start later and bans that end. Timeline entries are never removed in place: an
entry whose row was replaced or lifted since no longer matches the row's start or end and is skipped when popped.

Whenever an entry is pushed, ``wake`` is called (once per call of a method here; by :meth:`BanIndex.claim` only
when its entry is the earliest): the timer must look again.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence

from ._memo import stamp_memo
from ._model import Ban, BanKey, BanRow

__all__ = ["BanIndex"]


class BanIndex:
    """Rows, the per-player view and the timeline of the ban book.

    Args:
        wake: called when a start or an end was put on the timeline (the book rings its timer).
    """

    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake
        self._rows: dict[BanKey, BanRow] = {}
        self._by_player: dict[str, dict[str, BanRow]] = {}
        self._timeline: list[tuple[float, int, BanKey]] = []
        self._seq = 0
        # The row of a key (lifted or not), or None: the dict's own ``get`` (no Python call per look-up; the
        # enforcement and the writes ask it once per ban).
        self.get: Callable[[BanKey], BanRow | None] = self._rows.get

    def keys(self) -> frozenset[BanKey]:
        """Every key held: bans in force, ahead or ended (until purged), and tombstones."""
        return frozenset(self._rows)

    @property
    def players(self) -> int:
        """Players with an unlifted ban (in force, ahead, or ended but not yet dropped)."""
        return len(self._by_player)

    # -- changes -------------------------------------------------------------------------------------------------

    def install(self, rows: Sequence[BanRow], now: float) -> None:
        """Put rows read from the persistence. Bans already in force were enforced by the process that recorded
        them (or while no session was live): only bans that start later still need the timer."""
        for row in rows:
            row.enforced = row.start <= now
            self.put(row)

    def put(self, row: BanRow) -> None:
        """Put a row (loaded, or a lift's tombstone), scheduling its start (not enforced yet) or its end."""
        key = row.key
        self._rows[key] = row
        if row.lifted_at is not None:
            self._unlist(key)
            return
        self._list(row)
        if not row.enforced:
            self._push(row.start, key)
        elif row.end is not None:
            self._push(row.end, key)
        else:
            return
        self._wake()

    def admit(self, bans: Sequence[Ban], now: float) -> tuple[list[BanRow], list[BanRow]]:
        """Diff a batch against the rows and put the new ones at once (they gate logins from here).

        Applying the same ban again (same start, end and status) changes nothing, nor does a ban that starts
        earlier than the recorded one (stale); a later ban of the same key in the batch wins.

        Returns:
            The new rows (unsaved, not enforced: the caller enforces those due, the timer the later ones), and
            the rows already held that a ban of the batch matches but that are not saved yet (another write still
            running, or one that failed): the caller writes those too before it reports the batch recorded.
        """
        start_of, end_of = stamp_memo(), stamp_memo()  # a batch's bans mostly share their dates
        get = self.get
        rows: list[BanRow] = []
        unsaved: list[BanRow] = []
        repeated = pushed = False
        for ban in bans:
            key = (ban.source, ban.player_key)
            start = start_of(ban.starts_at)
            end = None if ban.ends_at is None else end_of(ban.ends_at)
            current = get(key)
            if current is not None:
                # an unsaved row recorded now may be this batch's own: the key may be in the batch twice
                repeated = repeated or (not current.saved and current.recorded_at == now)
                if current.start > start or (
                    current.start == start and current.end == end and current.ban.status == ban.status
                ):
                    if not current.saved:
                        unsaved.append(current)
                    continue
            row = BanRow(ban, key, start, end, now, None, False, False)
            rows.append(row)
            self._rows[key] = row
            self._list(row)
            if start > now:
                self._push(start, key)
                pushed = True
        if pushed:
            self._wake()
        if repeated:  # keep each key's last row, in order
            rows = [row for row in rows if get(row.key) is row]
        return rows, unsaved

    def lift(self, player_key: str, source: str | None, started_by: float | None, now: float) -> list[BanRow]:
        """Lift the player's bans (every source, or one; only those started by ``started_by`` when given).

        Returns:
            The tombstones put in their place (unsaved).
        """
        sources = self._by_player.get(player_key)
        if not sources:
            return []
        lifted = [
            row.lifted(now)
            for row in sources.values()
            if (source is None or row.ban.source == source) and (started_by is None or row.start <= started_by)
        ]
        for row in lifted:
            self.put(row)
        return lifted

    def merge_lifted(self, lifted: Sequence[tuple[Ban, float]], now: float) -> list[BanRow]:
        """Put tombstones named by their ban (another book's lifts), by the same rules as :meth:`admit`: a lift of a
        ban that starts earlier than the row held is stale, the same lift again changes nothing; otherwise the
        tombstone replaces the row (lifting it), whether the row was held or not.

        Returns:
            The tombstones put (unsaved).
        """
        out: list[BanRow] = []
        for ban, lifted_at in lifted:
            key = (ban.source, ban.player_key)
            start = ban.starts_at.timestamp()
            end = None if ban.ends_at is None else ban.ends_at.timestamp()
            current = self._rows.get(key)
            if current is not None and (
                current.start > start
                or (
                    current.lifted_at is not None
                    and current.start == start
                    and current.end == end
                    and current.ban.status == ban.status
                )
            ):
                continue
            row = BanRow(ban, key, start, end, now, lifted_at, True, False)
            self.put(row)
            out.append(row)
        return out

    def forget(self, cutoff: float) -> list[BanKey]:
        """Drop the rows that ended or were lifted before ``cutoff``; returns their keys."""
        stale = [
            key
            for key, row in self._rows.items()
            if (row.lifted_at is not None and row.lifted_at < cutoff) or (row.end is not None and row.end < cutoff)
        ]
        for key in stale:
            self._unlist(key, self._rows.pop(key))
        return stale

    # -- enforcement and the timeline -----------------------------------------------------------------------------

    def claim(self, row: BanRow, now: float) -> bool:
        """Mark the row enforced when it is in force at ``now``, still current and not enforced yet, and schedule
        its end (which drops it from the per-player view). Returns whether its sessions are to be kicked (claimed
        and not ended already).

        One row at a time, so a batch's enforcement claims each ban just before its kicks and can yield between
        them. ``wake`` is called only when the end put on the timeline is the earliest entry there (the timer
        sleeps until the earliest one; a later end cannot move its deadline): a batch whose bans end together
        rings once, not once per ban.
        """
        if row.enforced or row.lifted_at is not None or row.start > now or self._rows.get(row.key) is not row:
            return False
        row.enforced = True
        end = row.end
        if end is None:
            return True
        if end <= now:
            return False
        self._push(end, row.key)
        if self._timeline[0][1] == self._seq:  # the entry just pushed is the earliest
            self._wake()
        return True

    def hand_back(self, rows: Sequence[BanRow]) -> None:
        """Rows whose enforcement was cut short (claimed or not yet): enforced again by the timer, from their start
        (passed)."""
        pushed = False
        for row in rows:
            if self._rows.get(row.key) is row:
                row.enforced = False
                self._push(row.start, row.key)
                pushed = True
        if pushed:
            self._wake()

    def pop_due(self, now: float) -> list[BanRow]:
        """Take the timeline's entries up to ``now``: returns the rows whose start came (to enforce); rows that
        ended leave the per-player view."""
        due: list[BanRow] = []
        timeline = self._timeline
        while timeline and timeline[0][0] <= now:
            when, _, key = heapq.heappop(timeline)
            row = self._rows.get(key)
            if row is None or row.lifted_at is not None:
                continue
            if not row.enforced and when == row.start:
                due.append(row)
            elif row.end is not None and when == row.end and row.end <= now:
                self._unlist(key, row)
        return due

    def next_event(self) -> float | None:
        """When the next start or end on the timeline falls (stale entries are dropped on the way), or None."""
        timeline = self._timeline
        while timeline:
            when, _, key = timeline[0]
            row = self._rows.get(key)
            if row is not None and row.lifted_at is None and when in (row.start, row.end):
                return when
            heapq.heappop(timeline)
        return None

    # -- queries --------------------------------------------------------------------------------------------------

    def active(self, player_key: str, now: float) -> Ban | None:
        """The player's ban in force at ``now``; with several, the one that ends last (permanent first)."""
        sources = self._by_player.get(player_key)
        if not sources:
            return None
        best: BanRow | None = None
        for row in sources.values():
            if row.start > now or (row.end is not None and row.end <= now):
                continue
            if best is None or (best.end is not None and (row.end is None or row.end > best.end)):
                best = row
        return best.ban if best is not None else None

    def of_player(self, player_key: str) -> list[Ban]:
        """The player's unlifted bans (in force, ahead, or ended but not yet dropped)."""
        sources = self._by_player.get(player_key)
        return [r.ban for r in sources.values()] if sources else []

    def in_force(self, now: float) -> list[Ban]:
        """Every ban in force at ``now``."""
        return [
            r.ban
            for sources in self._by_player.values()
            for r in sources.values()
            if r.start <= now and (r.end is None or r.end > now)
        ]

    # -- the views --------------------------------------------------------------------------------------------------

    def _list(self, row: BanRow) -> None:
        player_key = row.ban.player_key
        sources = self._by_player.get(player_key)
        if sources is None:
            self._by_player[player_key] = {row.ban.source: row}
        else:
            sources[row.ban.source] = row

    def _unlist(self, key: BanKey, only: BanRow | None = None) -> None:
        """Drop the key from the per-player view (when ``only`` is given: if it still lists that row)."""
        source, player_key = key
        sources = self._by_player.get(player_key)
        if sources is None or (only is not None and sources.get(source) is not only):
            return
        sources.pop(source, None)
        if not sources:
            del self._by_player[player_key]

    def _push(self, when: float, key: BanKey) -> None:
        self._seq += 1
        heapq.heappush(self._timeline, (when, self._seq, key))
