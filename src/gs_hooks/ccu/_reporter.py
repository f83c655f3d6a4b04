"""The CCU reporter: a component run in the :class:`~gs_hooks.Hooks` task group.

Strategy: two loops share the spool. The *sampler* sleeps until each KST grid instant (``clock.sleep_until``,
which never returns early), counts every configured server id, commits the samples to the spool dated at that
instant and wakes the *dispatcher*. A late wake keeps the slot's date; when more than a whole period was missed
(the process was suspended) only the latest passed instant is sampled: missed slots are not invented.
The dispatcher sends due pending rows oldest slot first, at most ``max_inflight`` at a time (one at a time
while the collector is failing, as a probe). Each answer moves the row through the spool's lifecycle:
delivered, retry later (jittered exponential backoff, same date and reqkey), or refused (reported through log,
metric and the ``on_ccu_problem`` callback, then left alone until :meth:`CcuReporter.resend_refused` or a
changed game key at the next start). When a send succeeds after failures, the whole backlog is made due at once.

Shutdown (:meth:`CcuReporter.aclose`) stops sampling, gives in-flight sends a short grace, then cancels them:
a cancelled send leaves its row pending, and the next start sends it again under the same reqkey.

When the spool cannot be written (disk full, damaged database), a sample is not dropped: the row (new, or its
latest result) is *held* in memory, where it is the truth for its slot. A held pending row is sent like a spooled
one (the dispatcher plans both, oldest slot first); every held row is written to the spool, as memory holds it
when the write runs, at the next slot, after each send's result and at shutdown, until the spool takes it. One
error line when the spool starts failing, one line with the count when it takes writes again.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable
from typing import Protocol

import anyio
import anyio.abc
import anyio.lowlevel
import anyio.to_thread
import httpx
import msgspec

from .._backoff import backoff_delay
from .._callbacks import call_callback
from .._clock import Clock, SystemClock
from .._config import CcuConfig
from .._exceptions import ProtocolError
from .._health import ComponentHealth
from .._time import format_kst, grid_slot, next_grid_instant
from ._counter import CcuCounter
from ._metrics import CcuMetrics
from ._protocol import CODE_MESSAGES, CcuOutcome, CcuSample, classify, encode_request, make_reqkey, parse_response
from ._spool import CcuSampleRow, CcuSpool, SampleState, advance

__all__ = ["CcuProblem", "CcuReporter", "OnCcuProblem"]

log = logging.getLogger("gs_hooks.ccu")

_SPIN_S = 0.002


class CcuProblem(msgspec.Struct, frozen=True, kw_only=True):
    """What ``on_ccu_problem`` receives when the collector refuses a sample for a non-retryable reason.

    Attributes:
        server: server id of the sample.
        date: the sample's KST grid instant.
        user: the CCU it carried.
        reqkey: its reqkey.
        code: the collector's result code (200–204, 301, 302).
        outcome: ``our_fault`` (the data) or ``config_fault`` (the game key).
        message: what the code means and what to do.
    """

    server: str
    date: str
    user: int
    reqkey: str
    code: int | None
    outcome: str
    message: str


class OnCcuProblem(Protocol):
    """The game's ``on_ccu_problem`` callback (sync or async)."""

    def __call__(self, problem: CcuProblem, /) -> Awaitable[None] | None: ...


_ADVICE = {
    CcuOutcome.OUR_FAULT: "the sample is kept as refused; fix the cause, then call hooks.resend_refused()",
    CcuOutcome.CONFIG_FAULT: "check GS_HOOKS_GAME with your Hive contact; refused samples are resent at the next "
    "start with a changed game key, or by hooks.resend_refused()",
}


class CcuReporter:
    """Reports CCU to the Hive/Com2uS collector on the KST grid, exactly once per server id and slot.

    Args:
        config: the CCU settings (``url`` must be set).
        http: the shared ``httpx.AsyncClient``.
        spool: the durable spool (its store is closed by the reporter when ``owns_store``).
        counter: socket or web counter.
        clock: the clock (``SystemClock`` by default).
        on_problem: called with a :class:`CcuProblem` for each refused sample.
        retention_days: delivered/refused rows older than this are pruned (pending rows never are).
        metrics: Prometheus metrics (default: the global registry when ``prometheus_client`` is installed).
        owns_store: close the spool's store when the reporter stops.
        shutdown_grace_s: how long :meth:`aclose` lets an in-flight send finish.
        rng: randomness for the backoff jitter.
    """

    name = "ccu"

    def __init__(
        self,
        config: CcuConfig,
        *,
        http: httpx.AsyncClient,
        spool: CcuSpool,
        counter: CcuCounter,
        clock: Clock | None = None,
        on_problem: OnCcuProblem | None = None,
        retention_days: int = 35,
        metrics: CcuMetrics | None = None,
        owns_store: bool = False,
        shutdown_grace_s: float = 2.0,
        rng: random.Random | None = None,
        _grid_period_s: int | None = None,
    ) -> None:
        if config.url is None:
            raise ValueError("CcuReporter needs config.url (GS_HOOKS_CCU_URL)")
        self.config = config
        self.url: str = config.url
        self.http = http
        self.spool = spool
        self.counter = counter
        self.clock: Clock = clock or SystemClock()
        self.on_problem = on_problem
        self.retention_s = retention_days * 86_400
        self.metrics = metrics if metrics is not None else CcuMetrics()
        self._owns_store = owns_store
        self._grace = shutdown_grace_s
        self._rng = rng or random.Random()
        # Test-only: a grid period that is not whole minutes (the bench uses a 1 s grid on the real clock).
        self.period_s: int = _grid_period_s if _grid_period_s is not None else config.period_s
        self._inflight: dict[tuple[str, int], CcuSampleRow] = {}
        self._mirrors = 0
        self._failing = False
        self._fail_streak = 0
        self._probe_at = 0.0
        self._closing = False
        self._started = False
        self._sampler_waiting = False
        self._dispatcher_waiting = False
        self._tg: anyio.abc.TaskGroup | None = None
        self._send_tg: anyio.abc.TaskGroup | None = None
        self._sampler_scope: anyio.CancelScope | None = None
        self._wake: anyio.Event | None = None
        self._changed: anyio.Event | None = None
        self._last_prune = 0.0
        self.samples_taken = 0
        # Rows the spool could not record, by key: memory's state is the truth for them (see the module docstring),
        # and what the spool holds for each (None: nothing, or not known).
        self._held: dict[tuple[str, int], CcuSampleRow] = {}
        self._held_in_spool: dict[tuple[str, int], SampleState | None] = {}
        self._held_lock: anyio.Lock | None = None
        self._spool_down_since: float | None = None  # the spool fails since then (one log line per outage)
        self._spool_failures = 0
        self._spool_recorded = 0  # held rows recorded since the outage began
        # For health(): since when the collector fails and why, and the last refusal (until a sample is delivered).
        self._failing_since: float | None = None
        self._last_failure = ""
        # since the last delivery: (first refusal, latest refusal, its text, whether it names a setting: 302 game key)
        self._last_refusal: tuple[float, float, str, bool] | None = None

    # -- component ---------------------------------------------------------------------------------------------

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled: resume pending samples from the spool, then sample and send on the grid."""
        self._wake = anyio.Event()
        self._changed = anyio.Event()
        try:
            await self.spool.open()
            now = self.clock.time()
            changed_game = await anyio.to_thread.run_sync(
                lambda: self.spool.requeue_refused_sync(now, game=self.config.game, only_other_game=True)
            )
            if changed_game:
                log.warning("CCU: game key changed: %d refused sample(s) queued again", changed_game)
            await self._prune(now)
            async with anyio.create_task_group() as tg:
                self._tg = tg
                self._started = True
                tg.start_soon(self._sampler)
                tg.start_soon(self._dispatcher)
                task_status.started()
        finally:
            self._tg = None
            if self._owns_store:
                self.spool.store.close()

    async def aclose(self) -> None:
        """Stop sampling; let in-flight sends finish for a short grace, else leave them pending in the spool.

        Samples held in memory get one last try at the spool; what it still cannot take is logged as lost.
        """
        self._closing = True
        if self._sampler_scope is not None:
            self._sampler_scope.cancel()
        self._kick()
        if self._inflight and self._changed is not None:
            with anyio.move_on_after(self._grace):
                while self._inflight:
                    await self._wait_changed()
        if self._held:
            with anyio.CancelScope(shield=True):
                await self._write_held()
            if self._held:
                undelivered = sum(1 for r in self._held.values() if r.state is SampleState.PENDING)
                log.error(
                    "CCU: %d sample(s) could not be recorded in the spool %s and are lost at exit: %d were delivered "
                    "(only the history lacks them), %d were not (those slots never reach the collector)",
                    len(self._held),
                    self.spool.store.path,
                    len(self._held) - undelivered,
                    undelivered,
                )
        if self._tg is not None:
            self._tg.cancel_scope.cancel()

    # -- samples the spool could not record --------------------------------------------------------------------

    @property
    def unrecorded(self) -> tuple[CcuSampleRow, ...]:
        """Samples held in memory because the spool could not record them (new ones, or their latest result),
        by slot then server id. Empty while the spool works."""
        return tuple(sorted(self._held.values(), key=lambda r: (r.slot_ts, r.server)))

    def _hold(self, row: CcuSampleRow, in_spool: SampleState | None) -> None:
        self._held[row.key] = row
        self._held_in_spool.setdefault(row.key, in_spool)

    def _spool_failed(self, exc: Exception, what: str) -> None:
        """Count a spool failure; the first of an outage is logged (once, whatever the number of slots)."""
        self._spool_failures += 1
        if self._spool_down_since is not None:
            log.debug("CCU: the spool still fails (%s while %s)", type(exc).__name__, what)
            return
        self._spool_down_since = self.clock.time()
        self._spool_recorded = 0
        log.error(
            "CCU: the spool %s fails (%s: %s, while %s): samples are kept in memory and still sent (their reqkey "
            "makes a later resend harmless), and are recorded when the spool takes writes again; until then a "
            "sample not yet delivered is lost if the process dies",
            self.spool.store.path,
            type(exc).__name__,
            exc,
            what,
        )

    def _spool_ok(self) -> None:
        """A write went through: the outage is over once nothing is held any more (logged once, with counts)."""
        if self._spool_down_since is None or self._held:
            return
        log.warning(
            "CCU: the spool %s takes writes again after %.0f s and %d failed write(s); %d sample(s) held in memory "
            "meanwhile are recorded",
            self.spool.store.path,
            self.clock.time() - self._spool_down_since,
            self._spool_failures,
            self._spool_recorded,
        )
        self._spool_down_since = None
        self._spool_failures = 0

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
                    self._spool_recorded += 1
                else:  # a newer result arrived meanwhile: held still, the spool has this one
                    self._held_in_spool[row.key] = row.state
        self._spool_ok()

    async def _record_event(
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

    # -- operator API ------------------------------------------------------------------------------------------

    async def resend_refused(self) -> int:
        """Queue every refused sample again (with the current game key). Returns how many."""
        now = self.clock.time()
        n = 0
        game = self.config.game
        for key, row in list(self._held.items()):
            if row.state is SampleState.REFUSED:
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
        n += await anyio.to_thread.run_sync(lambda: self.spool.requeue_refused_sync(now, game=game))
        if n:
            log.warning("CCU: %d refused sample(s) queued again by the operator", n)
        self._kick()
        return n

    def health(self) -> ComponentHealth:
        """Readiness: not ok once the collector has failed (unreachable, HTTP error, 300...) or refused samples for
        a whole grid period, or at once when it refused our game key (302, ``GS_HOOKS_CCU_GAME``); a delivered
        sample clears it. One refused sample alone (our data: 200–204, 301) is reported (``on_ccu_problem``, the
        metrics), not a readiness problem. No IO."""
        if not self._started:
            return ComponentHealth(name=self.name, ok=False, error="not started")
        if self._last_refusal is not None:
            refused_since, latest, why, names_a_setting = self._last_refusal
            if names_a_setting or latest - refused_since >= self.period_s:
                return ComponentHealth(
                    name=self.name, ok=False, error=f"the collector refused a sample: {why}", since=refused_since
                )
        since = self._failing_since
        if since is not None:
            failing_s = self.clock.time() - since
            if failing_s >= self.period_s:
                return ComponentHealth(
                    name=self.name,
                    ok=False,
                    error=f"the collector has failed for {failing_s:.0f} s: {self._last_failure}",
                    since=since,
                )
        return ComponentHealth(name=self.name, ok=True)

    async def wait_idle(self) -> None:
        """Wait until every due sample has been sent and answered and the sampler sleeps (mainly for tests)."""
        while not self._idle():
            await self._wait_changed()

    def _idle(self) -> bool:
        return (
            self._started
            and self._sampler_waiting
            and self._dispatcher_waiting
            and not self._inflight
            and not self._mirrors
            and not (self._wake is not None and self._wake.is_set())
        )

    async def _wait_changed(self) -> None:
        if self._changed is None:
            self._changed = anyio.Event()
        await self._changed.wait()

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = anyio.Event()

    def _kick(self) -> None:
        if self._wake is not None:
            self._wake.set()
        self._notify()

    # -- sampler -----------------------------------------------------------------------------------------------

    async def _sampler(self) -> None:
        with anyio.CancelScope() as scope:
            self._sampler_scope = scope
            if self._closing:
                scope.cancel()
            nxt = next_grid_instant(self.clock.time(), self.period_s).timestamp()
            while True:
                self._sampler_waiting = True
                self._notify()
                await self._sleep_until_instant(nxt)
                self._sampler_waiting = False
                now = self.clock.time()
                slot = max(nxt, grid_slot(now, self.period_s).timestamp())
                if slot > nxt:
                    log.warning(
                        "CCU: woke %.0f s late; slots from %s to before %s are not sampled",
                        now - nxt,
                        format_kst(nxt),
                        format_kst(slot),
                    )
                await self._take(round(slot), now)
                nxt = slot + self.period_s

    async def _sleep_until_instant(self, instant: float) -> None:
        if isinstance(self.clock, SystemClock):
            # Event-loop timers fire late by up to a couple of milliseconds (asyncio rounds its poll timeout up
            # to whole milliseconds): sleep until just before the instant, then yield in a tight loop until it
            # has passed. Never early; costs at most ~2 ms of CPU per slot.
            await self.clock.sleep_until(instant - _SPIN_S)
            while self.clock.time() < instant:
                await anyio.lowlevel.checkpoint()
        else:
            await self.clock.sleep_until(instant)

    async def _take(self, slot: int, now: float) -> None:
        date = format_kst(slot)
        try:
            samples = [
                (
                    CcuSample.create(game=self.config.game, server=sid, date=date, user=self.counter.count(sid, slot)),
                    slot,
                )
                for sid in self.config.server_ids
            ]
        except Exception:  # a broken counter must not stop the reporter: this slot is skipped, loudly
            log.exception("CCU: counting failed; the slot %s is not sampled", date)
            self.metrics.failed("count")
            return

        def write() -> tuple[list[CcuSampleRow], bool]:
            return self.spool.add_sync(samples, now), self.spool.has_pending_before_sync(slot)

        if self._held:
            await self._write_held()  # the spool may take writes again: the older rows first
        try:
            added, backlog = await anyio.to_thread.run_sync(write)
        except Exception as exc:
            # Not written (or not known to be): held in memory and still sent; recorded when the spool allows.
            self.metrics.failed("spool")
            added = [
                CcuSampleRow(
                    server=sample.server,
                    slot_ts=slot_ts,
                    date=sample.date,
                    game=sample.game,
                    user=sample.user,
                    reqkey=sample.reqkey,
                    state=SampleState.PENDING,
                    next_attempt_at=now,
                    created_at=now,
                )
                for sample, slot_ts in samples
                if (sample.server, slot_ts) not in self._held
            ]
            for row in added:
                self._hold(row, None)
            self._spool_failed(exc, f"writing the samples of {date}")
            backlog = True  # the dispatcher sends them, in order with whatever else waits
        else:
            backlog = backlog or any(r.state is SampleState.PENDING for r in self._held.values())
            self._spool_ok()
        self.samples_taken += len(added)
        # Fast path: nothing older waits and the collector is healthy: send the fresh rows now (committed above)
        # instead of waiting for the dispatcher's next look at the spool. Only while the dispatcher waits: a plan
        # in progress holds a snapshot of the in-flight rows and would pick these rows up and send them again.
        fast = 0
        if (
            not backlog
            and not self._failing
            and not self._closing
            and self._dispatcher_waiting
            and self._send_tg is not None
        ):
            for row in added:
                if row.key not in self._inflight and len(self._inflight) < self.config.max_inflight:
                    self._inflight[row.key] = row
                    self._send_tg.start_soon(self._send, row)
                    fast += 1
        if fast == len(added):
            self._notify()  # all on their way: the dispatcher has nothing to do (a finishing send wakes it)
        else:
            self._kick()
        for sample, _ in samples:
            self.metrics.sampled(sample.server, sample.user)
        if self.config.mirror_url is not None and self._tg is not None:
            for row in added:
                if self._mirrors >= 2 * self.config.max_inflight:
                    log.debug("CCU mirror: too many copies in flight; %s %s not mirrored", row.server, row.date)
                    continue
                self._mirrors += 1
                self._tg.start_soon(self._mirror, row)
        if slot - self._last_prune >= 3600:
            await self._prune(now)

    async def _prune(self, now: float) -> None:
        self._last_prune = now
        try:
            n = await anyio.to_thread.run_sync(self.spool.prune_sync, now - self.retention_s)
        except Exception:
            log.exception("CCU: pruning the history failed")
            return
        if n:
            log.info("CCU: pruned %d history rows older than %d days", n, self.retention_s // 86_400)

    # -- dispatcher --------------------------------------------------------------------------------------------

    def _plan_sync(
        self,
        now: float,
        limit: int,
        exclude: set[tuple[str, int]],
        held: list[CcuSampleRow],
        held_pending_in_spool: int,
    ) -> tuple[list[CcuSampleRow], float | None, int]:
        """(Worker thread.) The next rows to send, oldest slot first, from the spool and the held rows (memory is
        the truth for those); the next due time after them; the backlog depth."""
        rows, next_due = self._plan_held(now, limit, exclude, held)
        skip = exclude | {r.key for r in held}
        spooled = self.spool.due_sync(now, limit, skip) if limit > 0 else []
        rows = sorted(rows + spooled, key=lambda r: (r.slot_ts, r.server))[:limit] if spooled else rows
        spool_next = self.spool.next_due_sync(skip | {r.key for r in rows})
        if spool_next is not None and (next_due is None or spool_next < next_due):
            next_due = spool_next
        held_pending = sum(1 for r in held if r.state is SampleState.PENDING)
        return rows, next_due, self.spool.backlog_depth_sync() - held_pending_in_spool + held_pending

    @staticmethod
    def _plan_held(
        now: float, limit: int, exclude: set[tuple[str, int]], held: list[CcuSampleRow]
    ) -> tuple[list[CcuSampleRow], float | None]:
        waiting = sorted(
            (r for r in held if r.state is SampleState.PENDING and r.key not in exclude),
            key=lambda r: (r.slot_ts, r.server),
        )
        rows = [r for r in waiting if r.next_attempt_at <= now][: max(limit, 0)]
        chosen = {r.key for r in rows}
        later = [r.next_attempt_at for r in waiting if r.key not in chosen]
        return rows, min(later) if later else None

    async def _dispatcher(self) -> None:
        async with anyio.create_task_group() as tg:
            self._send_tg = tg
            while True:
                self._wake = anyio.Event()
                deadline: float | None = None
                if not self._closing:
                    now = self.clock.time()
                    if self._failing:  # probe: one send at a time, not before the backoff
                        limit = 0 if self._inflight or now < self._probe_at else 1
                    else:
                        limit = self.config.max_inflight - len(self._inflight)
                    held = list(self._held.values())
                    held_pending_in_spool = sum(
                        1 for state in self._held_in_spool.values() if state is SampleState.PENDING
                    )
                    try:
                        rows, next_due, depth = await anyio.to_thread.run_sync(
                            self._plan_sync, now, limit, set(self._inflight), held, held_pending_in_spool
                        )
                    except Exception as exc:  # the spool cannot be read: send what memory holds meanwhile
                        self._spool_failed(exc, "reading the spool")
                        rows, next_due = self._plan_held(now, limit, set(self._inflight), held)
                        depth = sum(1 for r in held if r.state is SampleState.PENDING)
                    self.metrics.backlog(depth)
                    for row in rows:
                        if row.key not in self._inflight:  # the sampler's fast path may have started it meanwhile
                            self._inflight[row.key] = row
                            tg.start_soon(self._send, row)
                    if self._failing:
                        # a running probe wakes us when it ends; else the next probe is due at the later of both
                        if not self._inflight and next_due is not None:
                            deadline = max(next_due, self._probe_at)
                    elif len(self._inflight) < self.config.max_inflight:
                        deadline = next_due  # else a finishing send wakes us
                await self._wait(deadline)

    async def _wait(self, deadline: float | None) -> None:
        wake = self._wake
        assert wake is not None
        if wake.is_set():
            return
        try:
            if deadline is None:
                self._dispatcher_waiting = True
                self._notify()
                await wake.wait()
                return
            async with anyio.create_task_group() as tg:

                async def timer() -> None:
                    # Idle only once the timer is armed (a FakeClock then knows our deadline).
                    self._dispatcher_waiting = True
                    self._notify()
                    await self.clock.sleep_until(deadline)
                    tg.cancel_scope.cancel()

                async def kicked() -> None:
                    await wake.wait()
                    tg.cancel_scope.cancel()

                tg.start_soon(timer)
                tg.start_soon(kicked)
        finally:
            self._dispatcher_waiting = False

    def _backoff(self, attempts: int) -> float:
        # backoff_delay clamps the exponent: past ~1,024 failures in a row 2**n no longer fits a float.
        return backoff_delay(attempts - 1, self.config.backoff_base_s, self.config.backoff_max_s, self._rng)

    async def _send(self, row: CcuSampleRow) -> None:
        try:
            body, ctype = encode_request(row.sample(), root=self.config.xml_root, method=self.config.send_method)
            code: int | None = None
            label = error = ""
            t0 = time.perf_counter()
            try:
                resp = await self.http.post(
                    self.url, content=body, headers={"content-type": ctype}, timeout=self.config.timeout_s
                )
                if 200 <= resp.status_code < 300:
                    try:
                        code = parse_response(resp.content)
                    except ProtocolError as exc:
                        label, error = "unreadable", str(exc)
                else:
                    label, error = f"http_{resp.status_code}", f"HTTP status {resp.status_code}"
            except httpx.HTTPError as exc:
                label, error = "transport", f"transport error: {type(exc).__name__}"
            except Exception as exc:  # never let one send take the reporter down; the row stays pending
                log.exception("CCU: unexpected error sending %s %s", row.server, row.date)
                label, error = "error", f"unexpected error: {type(exc).__name__}"
            self.metrics.latency(time.perf_counter() - t0)
            if code is not None:
                label, error = str(code), CODE_MESSAGES.get(code, f"unknown result code {code}")
            problem: CcuProblem | None = None
            with anyio.CancelScope(shield=True):  # an answer we got is recorded, even during shutdown
                try:
                    problem = await self._record(row, code, label, error)
                except Exception:  # a bug, not the spool (its failures are held in memory): the row stays pending
                    log.exception("CCU: cannot record the result of %s %s", row.server, row.date)
            if problem is not None and self.on_problem is not None:
                await call_callback(self.on_problem, problem, what="on_ccu_problem")
        finally:
            self._inflight.pop(row.key, None)
            self._kick()

    async def _record(self, row: CcuSampleRow, code: int | None, label: str, error: str) -> CcuProblem | None:
        outcome = classify(code)
        now = self.clock.time()
        if outcome is CcuOutcome.DELIVERED:
            assert code is not None
            await self._record_event(row, "delivered", code=code, now=now)
            self.metrics.delivered(code)
            self._last_refusal = None
            await self._healthy(now)
            return None
        self.metrics.failed(label)
        if outcome is CcuOutcome.RETRY:
            self._fail_streak += 1
            delay = self._backoff(max(row.attempts + 1, self._fail_streak))
            self._probe_at = now + delay
            await self._record_event(row, "retry", code=code, error=error, now=now, next_attempt_at=now + delay)
            self._failing = True
            if self._failing_since is None:
                self._failing_since = now
            self._last_failure = error
            log.warning(
                "CCU: %s %s not delivered (%s); retry %d in %.1f s with the same reqkey",
                row.server,
                row.date,
                error,
                row.attempts + 1,
                delay,
            )
            return None
        await self._record_event(row, "refused", code=code, error=error, now=now)
        await self._healthy(now)  # a refusal is still a proper answer: the collector is up
        since = now if self._last_refusal is None else self._last_refusal[0]
        why = f"{code} ({error}) for {row.server} {row.date}"
        self._last_refusal = (since, now, why, outcome is CcuOutcome.CONFIG_FAULT)
        message = f"collector refused the sample with {code} ({error}): {_ADVICE[outcome]}"
        log.error("CCU: %s %s: %s", row.server, row.date, message)
        return CcuProblem(
            server=row.server,
            date=row.date,
            user=row.user,
            reqkey=row.reqkey,
            code=code,
            outcome=outcome.value,
            message=message,
        )

    async def _healthy(self, now: float) -> None:
        self._fail_streak = 0
        self._failing_since = None
        if self._failing:
            self._failing = False
            n = 0
            for key, row in list(self._held.items()):
                if row.state is SampleState.PENDING and row.next_attempt_at > now:
                    self._held[key] = msgspec.structs.replace(row, next_attempt_at=now)
                    n += 1
            try:
                n += await anyio.to_thread.run_sync(self.spool.pull_forward_sync, now)
            except Exception as exc:  # the backoff stands for spooled rows; they are sent when due
                self._spool_failed(exc, "making the backlog due")
            log.info("CCU: the collector answers again; draining %d pending sample(s)", n)

    # -- mirror ------------------------------------------------------------------------------------------------

    async def _mirror(self, row: CcuSampleRow) -> None:
        try:
            assert self.config.mirror_url is not None
            body, ctype = encode_request(row.sample(), root=self.config.xml_root, method=self.config.send_method)
            resp = await self.http.post(
                self.config.mirror_url, content=body, headers={"content-type": ctype}, timeout=self.config.timeout_s
            )
            code = parse_response(resp.content) if 200 <= resp.status_code < 300 else None
            log.debug("CCU mirror: %s %s -> HTTP %s result %s", row.server, row.date, resp.status_code, code)
        except (httpx.HTTPError, ProtocolError) as exc:
            log.debug("CCU mirror: %s %s failed: %s", row.server, row.date, type(exc).__name__)
        finally:
            self._mirrors -= 1
            self._notify()

    def __repr__(self) -> str:
        return (
            f"CcuReporter(servers={list(self.config.server_ids)}, period_s={self.period_s}, "
            f"inflight={len(self._inflight)}, failing={self._failing}, unrecorded={len(self._held)})"
        )
