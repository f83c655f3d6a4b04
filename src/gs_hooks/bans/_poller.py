"""The Gamebase ban poller: Ban Histories and Ban Release Histories into the ban book.

Strategy: every ``poll_s`` the poller reads both histories for the window ``[watermark - overlap, now]``, all
pages, then records the bans (source ``gamebase``) and lifts the released ones, and only then moves the watermark
to ``now`` — persisted in sqlite (``bans_watermarks``), so a restart resumes where the last complete poll ended
(in fleet mode the poller runs on the leader only and its watermark lives in Redis, so a new leader resumes where
the last one stopped: the watermark's storage is a :class:`Watermarks`).
The overlap re-reads the end of the previous window, so a history row that became visible late (a ban whose
begin date lies slightly in the past, replication lag) is not missed; re-reading a row is harmless because the
ban book is idempotent (same source, player, start, end = no-op; a lifted ban stays lifted). A failed poll keeps
the watermark: the next poll covers the gap. With no watermark yet, the first window starts ``initial_lookback_s``
ago. Failed polls back off: after ``n`` failures in a row the next poll waits a jittered
``min(poll_s * 2**n, backoff_max_s)`` (see :func:`gs_hooks._backoff.backoff_delay`), so a long outage costs a
few polls an hour and processes that lost Gamebase together do not poll in lockstep; a successful poll restores
the period.

Within a window, a ban that a release in the same window lifted is not applied first (no kick for a ban that is
already over); a release lifts every ban of the user that started by the release time (Hive's suspension
webhook never sends lifts, so a Gamebase release also ends a Hive suspension, see NOTES.md).

The client is duck-typed: ``iter_ban_histories(begin, end, page_size=...)`` and
``iter_ban_release_histories(...)`` are async iterators of pages (objects with ``.records``) or of records;
a record has ``user_id``, ``ban_type``, ``message``, ``seq`` and its dates as ``begins_at``/``ends_at``/
``released_at`` (or ``begin_date``/``end_date``/``release_date``).
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import anyio
import anyio.abc

from .._backoff import backoff_delay
from .._clock import Clock
from .._exceptions import PlatformError
from .._health import ComponentHealth
from .._ids import lookup_key, player_id_problem
from .._store import Store
from .._time import KST, to_datetime
from ._book import BanBook
from ._model import Ban

__all__ = ["BanPoller", "GamebaseBan", "SqliteWatermarks", "Watermarks"]

log = logging.getLogger("gs_hooks.gamebase.bans")

_SCHEMA = "CREATE TABLE IF NOT EXISTS bans_watermarks (stream TEXT PRIMARY KEY, until_ts REAL NOT NULL)"
STREAM = "gamebase"


@dataclass(frozen=True, slots=True)
class GamebaseBan:
    """One history row, normalised.

    Attributes:
        user_id: the Gamebase user id.
        permanent: ``PERMANENT``, or no end date.
        begins_at / ends_at / released_at: aware datetimes (``ends_at`` None when permanent).
        message: the ban message ("" when none).
        seq: the history sequence number, when given.
    """

    user_id: str
    permanent: bool
    begins_at: datetime | None
    ends_at: datetime | None
    released_at: datetime | None
    message: str
    seq: int | None


def _first(obj: Any, *names: str) -> Any:
    for name in names:
        value = getattr(obj, name, None)
        if value is not None:
            return value
    return None


def normalise(record: Any) -> GamebaseBan:
    """A client record (whatever its attribute spelling) as a :class:`GamebaseBan`."""
    ends_at = _first(record, "ends_at", "end_date")
    ban_type = str(_first(record, "ban_type") or "").upper()
    return GamebaseBan(
        user_id=str(record.user_id),
        permanent=ban_type == "PERMANENT" or ends_at is None,
        begins_at=_first(record, "begins_at", "begin_date"),
        ends_at=ends_at,
        released_at=_first(record, "released_at", "release_date"),
        message=str(_first(record, "message") or ""),
        seq=_first(record, "seq"),
    )


async def _records(pages: AsyncIterator[Any]) -> list[GamebaseBan]:
    out: list[GamebaseBan] = []
    async for page in pages:
        records = getattr(page, "records", None)
        for record in records if records is not None else (page,):
            out.append(normalise(record))
    return out


class Watermarks(Protocol):
    """Where the poller keeps the end of its last complete window."""

    async def load(self) -> float | None:
        """The stored watermark (epoch seconds), None when there is none."""
        ...

    async def save(self, until: float) -> None:
        """Store a new watermark (after a complete poll)."""
        ...


class SqliteWatermarks:
    """The watermark in the sqlite store (table ``bans_watermarks``).

    Args:
        store: the sqlite store, or a function returning it (opened on first use).
    """

    def __init__(self, store: Store | Callable[[], Store]) -> None:
        self._source = store

    @property
    def store(self) -> Store:
        """The sqlite store."""
        s = self._source
        return s if isinstance(s, Store) else s()

    async def load(self) -> float | None:
        """The stored watermark, or None."""

        def read(conn: Any) -> float | None:
            conn.execute(_SCHEMA)
            row = conn.execute("SELECT until_ts FROM bans_watermarks WHERE stream = ?", (STREAM,)).fetchone()
            return None if row is None else float(row[0])

        return await self.store.run(read)

    async def save(self, until: float) -> None:
        """Upsert the watermark."""

        def write(conn: Any) -> None:
            conn.execute(
                "INSERT INTO bans_watermarks (stream, until_ts) VALUES (?, ?) "
                "ON CONFLICT (stream) DO UPDATE SET until_ts = excluded.until_ts",
                (STREAM, until),
            )

        await self.store.run(write)

    def __repr__(self) -> str:
        return "SqliteWatermarks()"


class BanPoller:
    """Polls Gamebase ban and ban release histories into the ban book.

    Args:
        client: the Gamebase client (see the module docstring for what it must offer).
        book: the ban book.
        store: the sqlite store holding the watermark.
        clock: the injected clock.
        poll_s: poll period.
        overlap_s: how much of the previous window each poll re-reads.
        page_size: history page size.
        player_key_format: maps a Gamebase ``userId`` to the player key (``{id}``).
        initial_lookback_s: the first window's length when no watermark is stored.
        backoff_max_s: the longest wait after failed polls (at least ``poll_s``).
        rng: randomness for the backoff jitter.
        watermarks: where the watermark is kept (default: :class:`SqliteWatermarks` on ``store``).

    Attributes:
        watermarks: where the watermark is kept (settable; :meth:`reload_watermark` reads it again).
        running: True while :meth:`run` polls (always in one process; in a fleet, while this process leads).
        polls: complete polls.
        failures: failed polls (in total).
        consecutive_failures: failed polls in a row (0 after a success).
        last_error: the latest failed poll's error (None after a success).
    """

    name = "gamebase.bans"

    def __init__(
        self,
        client: Any,
        book: BanBook,
        *,
        store: Store | Callable[[], Store],
        clock: Clock,
        poll_s: float = 60.0,
        overlap_s: float = 300.0,
        page_size: int = 100,
        player_key_format: str = "{id}",
        initial_lookback_s: float = 86_400.0,
        backoff_max_s: float = 300.0,
        rng: random.Random | None = None,
        watermarks: Watermarks | None = None,
    ) -> None:
        self.client = client
        self.book = book
        self._store_source = store
        self.watermarks: Watermarks = watermarks or SqliteWatermarks(store)
        self.clock = clock
        self.poll_s = poll_s
        self.overlap_s = overlap_s
        self.page_size = page_size
        self.player_key_format = player_key_format
        self.initial_lookback_s = initial_lookback_s
        self.backoff_max_s = max(backoff_max_s, poll_s)
        self.polls = 0
        self.running = False  # in run(): always in one process; while it leads in a fleet
        self.failures = 0
        self.consecutive_failures = 0
        self.last_error: str | None = None
        self._failing_since: float | None = None  # first failed poll of the current streak, for health()
        self._names_a_setting = False  # the latest failure was Gamebase refusing our configuration
        self._watermark: float | None = None
        self._loaded = False
        self._rng = rng or random.Random()

    @property
    def store(self) -> Store:
        """The sqlite store."""
        s = self._store_source
        return s if isinstance(s, Store) else s()

    @property
    def watermark(self) -> datetime | None:
        """The end of the last complete poll's window (None before the first)."""
        return None if self._watermark is None else to_datetime(self._watermark)

    def reload_watermark(self) -> None:
        """Read the watermark from :attr:`watermarks` again at the next poll (another process may have moved it)."""
        self._loaded = False

    async def _load_watermark(self) -> None:
        if self._loaded:
            return
        self._watermark = await self.watermarks.load()
        self._loaded = True

    async def _save_watermark(self, until: float) -> None:
        await self.watermarks.save(until)
        self._watermark = until

    def _player_key(self, user_id: str) -> str | None:
        """The player key of a Gamebase ``userId``, or None when it cannot be a player id (the row is skipped:
        no session or login can have that id, and one bad row must not stop every poll)."""
        key = self.player_key_format.replace("{id}", lookup_key(user_id, what="userId"))
        return key if player_id_problem(key) is None else None

    def _to_ban(self, row: GamebaseBan, now: datetime, key: str) -> Ban:
        begins_at = row.begins_at or now
        ends_at = None if row.permanent else row.ends_at
        if ends_at is not None and ends_at <= begins_at:
            ends_at = begins_at  # an empty ban: recorded, never in force
        return Ban(
            player_key=key,
            source="gamebase",
            status="permanent" if ends_at is None else "temporary",
            starts_at=begins_at.astimezone(KST),
            ends_at=None if ends_at is None else ends_at.astimezone(KST),
            message=row.message,
        )

    async def poll_once(self) -> tuple[int, int]:
        """One poll: read both histories for the window, record bans, lift releases, move the watermark.

        Returns:
            (bans that changed the book, bans lifted).

        Raises:
            Exception: whatever the client raises (the watermark then stays where it was).
        """
        await self._load_watermark()
        now_ts = self.clock.time()
        now = to_datetime(now_ts)
        since = self._watermark if self._watermark is not None else now_ts - self.initial_lookback_s
        begin = to_datetime(min(since - self.overlap_s, now_ts))
        bans = await _records(self.client.iter_ban_histories(begin, now, page_size=self.page_size))
        releases = await _records(self.client.iter_ban_release_histories(begin, now, page_size=self.page_size))
        released_by: dict[str, datetime] = {}
        for r in releases:
            at = r.released_at or now
            if r.user_id not in released_by or released_by[r.user_id] < at:
                released_by[r.user_id] = at

        def still_on(row: GamebaseBan) -> bool:
            at = released_by.get(row.user_id)
            return at is None or (row.begins_at is not None and row.begins_at > at)

        to_apply: list[Ban] = []
        skipped: set[str] = set()
        for b in bans:
            if still_on(b):
                key = self._player_key(b.user_id)
                if key is None:
                    skipped.add(b.user_id)
                else:
                    to_apply.append(self._to_ban(b, now, key))
        to_apply.sort(key=lambda b: b.starts_at)
        changed = await self.book.apply(to_apply) if to_apply else []
        lifted = 0
        for user_id, at in released_by.items():
            key = self._player_key(user_id)
            if key is None:
                skipped.add(user_id)
            else:
                lifted += len(await self.book.lift(key, started_by=at))
        if skipped:
            log.warning(
                "gamebase ban poll: rows of %d userIds skipped: such a userId cannot be a player id (e.g. %r)",
                len(skipped),
                min(skipped)[:40],
            )
        await self._save_watermark(now_ts)
        self.polls += 1
        if changed or lifted:
            log.info("gamebase ban poll: %d bans recorded, %d lifted", len(changed), lifted)
        return len(changed), lifted

    def next_delay(self) -> float:
        """Seconds until the next poll: the period, or after failures in a row a jittered, capped backoff."""
        if not self.consecutive_failures:
            return self.poll_s
        return backoff_delay(self.consecutive_failures, self.poll_s, self.backoff_max_s, self._rng)

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Poll until cancelled (the first poll right away). :attr:`running` is True meanwhile."""
        task_status.started()
        self.running = True
        try:
            await self._poll_forever()
        finally:
            self.running = False

    async def _poll_forever(self) -> None:
        while True:
            try:
                await self.poll_once()
            except Exception as exc:
                self.failures += 1
                if not self.consecutive_failures:
                    self._failing_since = self.clock.time()
                self.consecutive_failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._names_a_setting = isinstance(exc, PlatformError) and exc.setting is not None
                delay = self.next_delay()
                log.warning(
                    "gamebase ban poll failed (%d in a row, will retry in %.0fs): %s",
                    self.consecutive_failures,
                    delay,
                    self.last_error,
                )
            else:
                if self.consecutive_failures:
                    log.info("gamebase ban poll recovered after %d failures", self.consecutive_failures)
                self.consecutive_failures = 0
                self.last_error = None
                delay = self.next_delay()
            await self.clock.sleep(delay)

    async def aclose(self) -> None:
        """Nothing to flush: the watermark only moves after a complete poll."""

    def health(self) -> ComponentHealth:
        """Readiness: not ok while polls keep failing (a poll and its retry: Gamebase unreachable, or the store),
        or at once when Gamebase refused our configuration (a result code that names a setting, e.g. -4010004 for
        a wrong secret key): bans made in the Gamebase console are not applied. A poll that succeeds clears it."""
        if self.last_error is None:
            return ComponentHealth(name=self.name, ok=True)
        if not self._names_a_setting and self.consecutive_failures < 2:
            return ComponentHealth(name=self.name, ok=True)  # one failed poll: a blip its retry decides
        return ComponentHealth(
            name=self.name,
            ok=False,
            error=f"the ban poll failed ({self.consecutive_failures} in a row): {self.last_error}",
            since=self._failing_since,
        )

    def __repr__(self) -> str:
        return f"BanPoller(polls={self.polls}, failures={self.failures}, watermark={self.watermark})"
