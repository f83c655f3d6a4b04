"""The local delivery queue: samples waiting for the collector, in the spool or, while it fails, held in memory.

When the spool cannot be written (disk full, damaged database), a sample is not dropped: the row (new, or its
latest result) is *held* in memory, where it is the truth for its slot. A held pending row is planned like a
spooled one (the sender gets both, oldest slot first); every held row is written to the spool, as memory holds it
when the write runs, at the next slot, after each send's result and at shutdown, until the spool takes it. One
error line when the spool starts failing, one line with the count when it takes writes again.

The queue reaches the spool only through :class:`SampleSpool` (blocking calls, run on a worker thread), and is
what the sampler's samples go into (:meth:`SpooledQueue.add`) and what the sender sends from (the sender's
``DeliveryQueue``: :meth:`~SpooledQueue.plan`, :meth:`~SpooledQueue.record`, :meth:`~SpooledQueue.pull_forward`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Protocol

import anyio
import anyio.to_thread
import msgspec

from .._clock import Clock
from .._time import format_kst
from ._metrics import CcuMetrics
from ._model import CcuSampleRow, Plan, SampleKey, SampleState, advance, pending_row
from ._protocol import CcuSample, make_reqkey

__all__ = ["SampleSpool", "SpooledQueue"]

log = logging.getLogger("gs_hooks.ccu")


class SampleSpool(Protocol):
    """What delivery needs of the spool: blocking calls, run on a worker thread (:class:`CcuSpool` is the one).

    Rows are written before they are sent (``add_sync``) and as memory holds them after a failed write
    (``put_sync``); each send's result moves one row (``record_sync``); the sender plans from ``due_sync``,
    ``next_due_sync`` and ``backlog_depth_sync``.
    """

    def describe(self) -> str:
        """Where the spool is, for log lines."""
        ...

    def add_sync(self, rows: Iterable[tuple[CcuSample, int]], now: float) -> list[CcuSampleRow]:
        """Write new samples as pending (a slot already spooled is not written again); return those added."""
        ...

    def has_pending_before_sync(self, slot_ts: int) -> bool:
        """Whether a pending row of an earlier slot exists."""
        ...

    def put_sync(self, rows: Iterable[CcuSampleRow]) -> None:
        """Write rows exactly as given."""
        ...

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
        """Record the result of one send (``delivered``, ``retry`` or ``refused``)."""
        ...

    def due_sync(self, now: float, limit: int, exclude: Iterable[SampleKey] = ()) -> list[CcuSampleRow]:
        """Pending rows due at ``now``, oldest slot first, at most ``limit``, skipping ``exclude``."""
        ...

    def next_due_sync(self, exclude: Iterable[SampleKey] = ()) -> float | None:
        """The earliest ``next_attempt_at`` among pending rows not in ``exclude``."""
        ...

    def backlog_depth_sync(self) -> int:
        """Pending samples."""
        ...

    def pull_forward_sync(self, now: float) -> int:
        """Make every pending row due now; return how many moved."""
        ...

    def requeue_refused_sync(self, now: float, *, game: str | None = None, only_other_game: bool = False) -> int:
        """Move refused rows back to pending (re-stamped with ``game``); return how many."""
        ...

    def prune_sync(self, before_ts: float) -> int:
        """Delete delivered and refused rows of slots before ``before_ts``."""
        ...


class SpooledQueue:
    """Samples waiting for delivery: in the spool, or held in memory while the spool fails.

    Args:
        spool: the spool.
        clock: the injected clock.
        metrics: the reporter's metrics.
    """

    def __init__(self, spool: SampleSpool, *, clock: Clock, metrics: CcuMetrics) -> None:
        self.spool = spool
        self.clock = clock
        self.metrics = metrics
        # Rows the spool could not record, by key (memory is the truth for them), and what the spool holds for
        # each (None: nothing, or not known).
        self._held: dict[SampleKey, CcuSampleRow] = {}
        self._held_in_spool: dict[SampleKey, SampleState | None] = {}
        self._held_lock: anyio.Lock | None = None
        self._down_since: float | None = None  # the spool fails since then (one log line per outage)
        self._failures = 0
        self._recorded = 0  # held rows recorded since the outage began

    @property
    def unrecorded(self) -> tuple[CcuSampleRow, ...]:
        """Samples held in memory because the spool could not record them, by slot then server id."""
        return tuple(sorted(self._held.values(), key=lambda r: (r.slot_ts, r.server)))

    # -- samples in --------------------------------------------------------------------------------------------

    async def add(self, samples: Sequence[CcuSample], slot_ts: int, now: float) -> tuple[list[CcuSampleRow], bool]:
        """Spool a slot's samples as pending (a slot already spooled or held is not taken twice).

        Returns:
            The rows added, and whether older rows wait before them (a backlog: they must go first).
        """
        if self._held:
            await self._write_held()  # the spool may take writes again: the older rows first

        def write() -> tuple[list[CcuSampleRow], bool]:
            added = self.spool.add_sync([(sample, slot_ts) for sample in samples], now)
            return added, self.spool.has_pending_before_sync(slot_ts)

        try:
            added, backlog = await anyio.to_thread.run_sync(write)
        except Exception as exc:
            # Not written (or not known to be): held in memory and still sent; recorded when the spool allows.
            self.metrics.failed("spool")
            added = [pending_row(s, slot_ts, now) for s in samples if (s.server, slot_ts) not in self._held]
            for row in added:
                self._hold(row, None)
            self._spool_failed(exc, f"writing the samples of {format_kst(slot_ts)}")
            return added, True  # the sender plans them, in order with whatever else waits
        backlog = backlog or any(r.state is SampleState.PENDING for r in self._held.values())
        self._spool_ok()
        return added, backlog

    # -- the sender's side -------------------------------------------------------------------------------------

    async def plan(self, now: float, limit: int, exclude: set[SampleKey]) -> Plan:
        """The next rows to send (at most ``limit``, none of ``exclude``), oldest slot first, from the spool and
        the held rows; when the spool cannot be read, from the held rows alone."""
        held = list(self._held.values())
        held_pending_in_spool = sum(1 for state in self._held_in_spool.values() if state is SampleState.PENDING)
        try:
            return await anyio.to_thread.run_sync(self._plan_sync, now, limit, exclude, held, held_pending_in_spool)
        except Exception as exc:  # the spool cannot be read: send what memory holds meanwhile
            self._spool_failed(exc, "reading the spool")
            rows, next_due = _plan_held(now, limit, exclude, held)
            return Plan(rows=rows, next_due=next_due, depth=sum(1 for r in held if r.state is SampleState.PENDING))

    def _plan_sync(
        self, now: float, limit: int, exclude: set[SampleKey], held: list[CcuSampleRow], held_pending_in_spool: int
    ) -> Plan:
        """(Worker thread.) See :meth:`plan`; memory is the truth for the held rows."""
        rows, next_due = _plan_held(now, limit, exclude, held)
        skip = exclude | {r.key for r in held}
        spooled = self.spool.due_sync(now, limit, skip) if limit > 0 else []
        rows = sorted(rows + spooled, key=lambda r: (r.slot_ts, r.server))[:limit] if spooled else rows
        spool_next = self.spool.next_due_sync(skip | {r.key for r in rows})
        if spool_next is not None and (next_due is None or spool_next < next_due):
            next_due = spool_next
        held_pending = sum(1 for r in held if r.state is SampleState.PENDING)
        return Plan(
            rows=rows, next_due=next_due, depth=self.spool.backlog_depth_sync() - held_pending_in_spool + held_pending
        )

    async def record(
        self,
        row: CcuSampleRow,
        event: str,
        *,
        code: int | None,
        error: str = "",
        now: float,
        next_attempt_at: float | None = None,
    ) -> None:
        """Record one send's result: in the spool, or (a held row, or the spool fails) in memory until it can."""
        held = self._held.get(row.key)
        if held is not None:
            self._held[row.key] = advance(held, event, code=code, error=error, now=now, next_attempt_at=next_attempt_at)
            await self._write_held()
            return
        try:
            await anyio.to_thread.run_sync(
                lambda: self.spool.record_sync(
                    row.key, event, code=code, error=error, now=now, next_attempt_at=next_attempt_at
                )
            )
        except Exception as exc:
            self._hold(advance(row, event, code=code, error=error, now=now, next_attempt_at=next_attempt_at), row.state)
            self._spool_failed(exc, f"recording the result of {row.server} {row.date}")
            return
        if self._held:
            await self._write_held()
        else:
            self._spool_ok()

    async def pull_forward(self, now: float) -> int:
        """Make every pending row due now (the collector answers again); returns how many moved."""
        n = 0
        for key, row in list(self._held.items()):
            if row.state is SampleState.PENDING and row.next_attempt_at > now:
                self._held[key] = msgspec.structs.replace(row, next_attempt_at=now)
                n += 1
        try:
            n += await anyio.to_thread.run_sync(self.spool.pull_forward_sync, now)
        except Exception as exc:  # the backoff stands for spooled rows; they are sent when due
            self._spool_failed(exc, "making the backlog due")
        return n

    # -- operator and housekeeping -----------------------------------------------------------------------------

    async def requeue_refused(self, now: float, game: str, *, only_other_game: bool = False) -> int:
        """Queue refused samples again, re-stamped with ``game`` (only those refused under another game key when
        ``only_other_game``); returns how many."""
        n = 0
        for key, row in list(self._held.items()):
            if row.state is SampleState.REFUSED and not (only_other_game and row.game == game):
                self._held[key] = msgspec.structs.replace(
                    row,
                    state=SampleState.PENDING,
                    game=game,
                    reqkey=make_reqkey(game, row.server, row.date),
                    next_attempt_at=now,
                )
                n += 1
        if n:
            await self._write_held()
        return n + await anyio.to_thread.run_sync(
            lambda: self.spool.requeue_refused_sync(now, game=game, only_other_game=only_other_game)
        )

    async def prune(self, before_ts: float) -> int:
        """Delete delivered and refused rows of slots before ``before_ts`` (0 when the spool fails: logged)."""
        try:
            return await anyio.to_thread.run_sync(self.spool.prune_sync, before_ts)
        except Exception:
            log.exception("CCU: pruning the history failed")
            return 0

    async def flush(self) -> None:
        """At shutdown: one last try at recording the held rows; what the spool still cannot take is logged."""
        if not self._held:
            return
        await self._write_held()
        if self._held:
            undelivered = sum(1 for r in self._held.values() if r.state is SampleState.PENDING)
            log.error(
                "CCU: %d sample(s) could not be recorded in the spool %s and are lost at exit: %d were delivered "
                "(only the history lacks them), %d were not (those slots never reach the collector)",
                len(self._held),
                self.spool.describe(),
                len(self._held) - undelivered,
                undelivered,
            )

    # -- held rows ---------------------------------------------------------------------------------------------

    def _hold(self, row: CcuSampleRow, in_spool: SampleState | None) -> None:
        self._held[row.key] = row
        self._held_in_spool.setdefault(row.key, in_spool)

    def _spool_failed(self, exc: Exception, what: str) -> None:
        """Count a spool failure; the first of an outage is logged (once, whatever the number of slots)."""
        self._failures += 1
        if self._down_since is not None:
            log.debug("CCU: the spool still fails (%s while %s)", type(exc).__name__, what)
            return
        self._down_since = self.clock.time()
        self._recorded = 0
        log.error(
            "CCU: the spool %s fails (%s: %s, while %s): samples are kept in memory and still sent (their reqkey "
            "makes a later resend harmless), and are recorded when the spool takes writes again; until then a "
            "sample not yet delivered is lost if the process dies",
            self.spool.describe(),
            type(exc).__name__,
            exc,
            what,
        )

    def _spool_ok(self) -> None:
        """A write went through: the outage is over once nothing is held any more (logged once, with counts)."""
        if self._down_since is None or self._held:
            return
        log.warning(
            "CCU: the spool %s takes writes again after %.0f s and %d failed write(s); %d sample(s) held in memory "
            "meanwhile are recorded",
            self.spool.describe(),
            self.clock.time() - self._down_since,
            self._failures,
            self._recorded,
        )
        self._down_since = None
        self._failures = 0

    async def _write_held(self) -> None:
        """Write every held row to the spool, as memory holds it when the write runs; forget those written."""
        if self._held_lock is None:
            self._held_lock = anyio.Lock()
        async with self._held_lock:  # one write at a time: the last one to run carries memory's latest state
            rows = list(self._held.values())
            if not rows:
                self._spool_ok()
                return
            try:
                await anyio.to_thread.run_sync(self.spool.put_sync, rows)
            except Exception as exc:
                self._spool_failed(exc, f"recording {len(rows)} sample(s) held in memory")
                return
            for row in rows:
                if self._held.get(row.key) is row:
                    del self._held[row.key]
                    self._held_in_spool.pop(row.key, None)
                    self._recorded += 1
                else:  # a newer result arrived meanwhile: held still, the spool has this one
                    self._held_in_spool[row.key] = row.state
        self._spool_ok()


def _plan_held(
    now: float, limit: int, exclude: set[SampleKey], held: list[CcuSampleRow]
) -> tuple[list[CcuSampleRow], float | None]:
    """The held pending rows due now (oldest slot first, at most ``limit``), and when the next of the others is."""
    waiting = sorted(
        (r for r in held if r.state is SampleState.PENDING and r.key not in exclude),
        key=lambda r: (r.slot_ts, r.server),
    )
    rows = [r for r in waiting if r.next_attempt_at <= now][: max(limit, 0)]
    chosen = {r.key for r in rows}
    later = [r.next_attempt_at for r in waiting if r.key not in chosen]
    return rows, min(later) if later else None
