"""CCU in fleet mode, every process's side: the sampler's counts go to the fleet, not to the collector.

:class:`FleetSink` is the sampler's :class:`~gs_hooks.ccu._sampler.SampleSink` in fleet mode. At each grid instant
it queues this process's *absolute* count per server id; its task writes the queue to Redis in slot order
(:meth:`FleetCcu.report`), so a slow or unreachable Redis never delays the sampler. A sampler that woke more than
the staleness bound after the instant reports no count for that slot (only its ``ccu_through`` moves, so the
leader does not wait for it); Redis also refuses a count written too long after the instant (its own clock).

While Redis cannot be reached, the queued counts wait in memory and are written when it answers again (then
accepted unless the slot is frozen: they were taken on time). Meanwhile a server id that this process alone
served at the last membership view goes out directly as in single-process mode (``direct``: the local reporter's
spool and sender, same reqkey), and a later fleet send of the same slot is answered 101; a server id other
processes also serve waits for the fleet, so its sample is sent late but is the sum.

Accepted counts are kept until the fleet's history holds their slot (at most ``keep_s``): when Redis lost its data
(a new ``P:epoch``: restarted without persistence) they are written again, so a frozen sample the restart lost is
frozen and sent again with the same value (the platform answers 101 to what it has already).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import anyio
import anyio.abc

from .._clock import Clock
from .._ratelog import RateLimitedLog
from .._signal import Doorbell
from .._time import format_kst
from ..ccu._metrics import CcuMetrics
from ..ccu._protocol import CcuSample
from ..ccu._sampler import SampleSink
from ._ccu import FleetCcu
from ._membership import Membership
from ._redis import FleetError

__all__ = ["FleetSink", "ReportObserver"]

log = logging.getLogger("gs_hooks.fleet")

ReportObserver = Callable[[int, dict[str, int], dict[str, str]], None]
"""Told each written report: (slot_ts, counts, outcome per server id: ``ok``, ``stale`` or ``frozen``)."""


@dataclass(slots=True)
class _Report:
    """One grid instant's counts of this process, waiting to be written (or kept once written)."""

    slot_ts: int
    counts: dict[str, int]
    samples: tuple[CcuSample, ...]
    late_ok: bool = False  # written after a failure or a data loss: accepted unless frozen
    direct: set[str] = field(default_factory=set)  # server ids sent directly while Redis was unreachable
    accepted: set[str] = field(default_factory=set)  # server ids whose count Redis took

    @property
    def slot_ms(self) -> int:
        return self.slot_ts * 1000


class FleetSink:
    """The sampler's sink in fleet mode, and the task that writes its counts to the fleet.

    Args:
        fleet: the CCU primitives (this process's reports).
        membership: for the view of who serves which server id (the direct path while Redis is unreachable).
        staleness_s: a sample taken later than this after its instant reports no count.
        clock: the injected clock (the task's backoff and polls).
        direct: where a sample of a server id this process alone serves goes while Redis is unreachable (the
            local reporter's spool sink); None: it waits like the others.
        metrics: the reporter's metrics (the sampled gauge).
        keep_s: how long accepted counts are kept for a replay after Redis lost its data.
        on_report: told each written report (logs, tests).

    Attributes:
        taken: slots queued since the start.
        written: reports Redis took (any outcome).
    """

    name = "fleet_ccu"
    keep_poll_s = 5.0
    """How often the task looks at Redis with nothing queued (a data loss is noticed within this)."""

    def __init__(
        self,
        fleet: FleetCcu,
        membership: Membership,
        *,
        staleness_s: float,
        clock: Clock,
        direct: SampleSink | None = None,
        metrics: CcuMetrics | None = None,
        keep_s: float = 86_400.0,
        on_report: ReportObserver | None = None,
    ) -> None:
        self.fleet = fleet
        self.membership = membership
        self.staleness_s = staleness_s
        self.clock = clock
        self.direct = direct
        self.metrics = metrics
        self.keep_s = keep_s
        self.on_report = on_report
        self.taken = 0
        self.written = 0
        self._outbox: deque[_Report] = deque()
        self._kept: dict[int, _Report] = {}
        self._view: dict[str, frozenset[str]] | None = None  # server id -> pids serving it, at the last view
        self._epoch: str | None = None
        self._doorbell = Doorbell()
        self._down = False
        self._log = RateLimitedLog(log, interval_s=60.0)

    @property
    def waiting(self) -> int:
        """Slots queued and not yet written to Redis."""
        return len(self._outbox)

    # -- the sampler's side ------------------------------------------------------------------------------------

    async def put(self, samples: Sequence[CcuSample], slot_ts: int, now: float) -> None:
        """Queue one grid instant's counts (no count when taken too late after the instant); never waits on Redis."""
        late_s = now - slot_ts
        if late_s > self.staleness_s:
            self._log.log(
                logging.WARNING,
                "late",
                "fleet CCU: the counts of %s were taken %.1f s after the instant (bound %.1f s): not reported",
                format_kst(slot_ts),
                late_s,
                self.staleness_s,
            )
            report = _Report(slot_ts, {}, ())
        else:
            report = _Report(slot_ts, {s.server: s.user for s in samples}, tuple(samples))
            if self.metrics is not None:
                for sample in samples:
                    self.metrics.sampled(sample.server, sample.user)
        self._outbox.append(report)
        self.taken += 1
        self._doorbell.ring()

    # -- the task ----------------------------------------------------------------------------------------------

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Write the queued counts in slot order until cancelled; while Redis fails, keep them (and send the
        server ids this process alone serves directly), retrying with backoff."""
        task_status.started()
        attempt = 0
        while True:
            self._doorbell.answer()
            try:
                await self.publish()
            except FleetError as exc:
                await self._unreachable(exc)
                await self.fleet.redis.pause(attempt, "writing CCU counts", exc)
                attempt += 1
                continue
            attempt = 0
            with anyio.move_on_after(self.keep_poll_s):
                await self._doorbell.wait()

    async def publish(self) -> int:
        """Write every queued report now (after a replay of the kept ones when Redis lost its data); returns how
        many were written.

        Raises:
            FleetError: Redis could not be reached; what was not written stays queued.
        """
        await self._check_epoch()
        n = 0
        while self._outbox:
            report = self._outbox[0]
            outcomes = await self.fleet.report(report.slot_ms, report.counts, late_ok=report.late_ok)
            self._outbox.popleft()
            self._written(report, outcomes)
            n += 1
        if self._down:
            self._down = False
            log.info("fleet CCU: Redis reachable again; the kept counts are written")
        if n:
            await self._refresh_view()
            await self._prune_kept()
        return n

    def _written(self, report: _Report, outcomes: dict[str, str]) -> None:
        self.written += 1
        report.accepted |= {s for s, o in outcomes.items() if o == "ok"}
        if report.accepted:
            self._kept[report.slot_ts] = report
        if self.on_report is not None:
            self.on_report(report.slot_ts, dict(report.counts), outcomes)

    async def _check_epoch(self) -> None:
        epoch = await self.fleet.epoch()
        if self._epoch is not None and epoch != self._epoch and self._kept:
            replay = [self._kept.pop(slot) for slot in sorted(self._kept)]
            for report in reversed(replay):
                report.late_ok = True
                self._outbox.appendleft(report)
            log.warning(
                "fleet CCU: Redis lost its data (new epoch); writing the counts of %d recent slot(s) again",
                len(replay),
            )
        self._epoch = epoch

    async def _refresh_view(self) -> None:
        _, live = await self.membership.members()
        view: dict[str, set[str]] = {}
        for member in live:
            for server in member.server_ids:
                view.setdefault(server, set()).add(member.pid)
        self._view = {server: frozenset(pids) for server, pids in view.items()}

    async def _prune_kept(self) -> None:
        """Forget kept counts whose slot the fleet's history holds (sent or refused), and those older than
        ``keep_s``."""
        if not self._kept:
            return
        oldest = min(self._kept)
        limit = self.clock.time() - self.keep_s
        servers = {s for r in self._kept.values() for s in r.accepted}
        done: dict[str, set[int]] = {}
        for server in servers:
            rows = await self.fleet.history(server, oldest * 1000, max(self._kept) * 1000)
            done[server] = {slot_ms // 1000 for slot_ms, _, _ in rows}
        for slot, report in list(self._kept.items()):
            if slot < limit or all(slot in done.get(s, ()) for s in report.accepted):
                del self._kept[slot]

    # -- Redis unreachable -------------------------------------------------------------------------------------

    def alone(self, server: str) -> bool:
        """Whether this process alone served ``server`` at the last membership view (False before any view)."""
        if self._view is None:
            return False
        return self._view.get(server, frozenset()) <= {self.fleet.pid}

    async def _unreachable(self, exc: FleetError) -> None:
        """Mark what is queued as late (written unless frozen); send the samples of server ids this process
        alone serves directly, once per slot."""
        if not self._down:
            self._down = True
            alone = sorted(s for s in (self._view or {}) if self.alone(s))
            log.warning(
                "fleet CCU: Redis unreachable (%s); counts are kept and written when it answers%s",
                exc,
                f"; server ids this process alone serves ({', '.join(alone)}) go out directly" if alone else "",
            )
        for report in self._outbox:
            report.late_ok = True
            if self.direct is None:
                continue
            direct = [s for s in report.samples if s.server not in report.direct and self.alone(s.server)]
            if direct:
                report.direct |= {s.server for s in direct}
                await self.direct.put(direct, report.slot_ts, self.clock.time())

    def __repr__(self) -> str:
        return f"FleetSink(waiting={len(self._outbox)}, kept={len(self._kept)}, down={self._down})"
