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
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import anyio
import anyio.abc
import anyio.lowlevel
import anyio.to_thread
import httpx
import msgspec

from .._backoff import backoff_delay
from .._clock import Clock, SystemClock, format_kst, grid_slot, next_grid_instant
from .._config import CcuConfig
from .._exceptions import ProtocolError
from .._health import ComponentHealth
from ._counter import CcuCounter
from ._metrics import CcuMetrics
from ._protocol import CODE_MESSAGES, CcuOutcome, CcuSample, classify, encode_request, parse_response
from ._spool import CcuSampleRow, CcuSpool

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
        on_problem: Callable[[CcuProblem], Any] | None = None,
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
        # For health(): since when the collector fails and why, and the last refusal (until a sample is delivered).
        self._failing_since: float | None = None
        self._last_failure = ""
        self._last_refusal: tuple[float, str] | None = None

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
        """Stop sampling; let in-flight sends finish for a short grace, else leave them pending in the spool."""
        self._closing = True
        if self._sampler_scope is not None:
            self._sampler_scope.cancel()
        self._kick()
        if self._inflight and self._changed is not None:
            with anyio.move_on_after(self._grace):
                while self._inflight:
                    await self._wait_changed()
        if self._tg is not None:
            self._tg.cancel_scope.cancel()

    # -- operator API ------------------------------------------------------------------------------------------

    async def resend_refused(self) -> int:
        """Queue every refused sample again (with the current game key). Returns how many."""
        now = self.clock.time()
        n = await anyio.to_thread.run_sync(lambda: self.spool.requeue_refused_sync(now, game=self.config.game))
        if n:
            log.warning("CCU: %d refused sample(s) queued again by the operator", n)
        self._kick()
        return n

    def health(self) -> ComponentHealth:
        """Readiness: not ok once the collector has failed (unreachable, HTTP error, 300...) for a whole grid
        period, or while its last answer refused a sample (a wrong game key refuses every one) until a sample is
        delivered again. No IO."""
        if not self._started:
            return ComponentHealth(name=self.name, ok=False, error="not started")
        if self._last_refusal is not None:
            at, why = self._last_refusal
            return ComponentHealth(name=self.name, ok=False, error=f"the collector refused a sample: {why}", since=at)
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

        try:
            added, backlog = await anyio.to_thread.run_sync(write)
        except Exception:
            log.exception("CCU: cannot write the samples of %s to the spool; they are not sent", date)
            self.metrics.failed("spool")
            return
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
        self, now: float, limit: int, exclude: set[tuple[str, int]]
    ) -> tuple[list[CcuSampleRow], float | None, int]:
        rows = self.spool.due_sync(now, limit, exclude) if limit > 0 else []
        skip = exclude | {r.key for r in rows}
        return rows, self.spool.next_due_sync(skip), self.spool.backlog_depth_sync()

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
                    rows, next_due, depth = await anyio.to_thread.run_sync(
                        self._plan_sync, now, limit, set(self._inflight)
                    )
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
                except Exception:  # the row stays as it was (pending): it is sent again, the reqkey dedups it
                    log.exception("CCU: cannot record the result of %s %s in the spool", row.server, row.date)
            if problem is not None and self.on_problem is not None:
                from .._setup import call_callback

                await call_callback(self.on_problem, problem, what="on_ccu_problem")
        finally:
            self._inflight.pop(row.key, None)
            self._kick()

    async def _record(self, row: CcuSampleRow, code: int | None, label: str, error: str) -> CcuProblem | None:
        outcome = classify(code)
        now = self.clock.time()
        if outcome is CcuOutcome.DELIVERED:
            assert code is not None
            await anyio.to_thread.run_sync(lambda: self.spool.record_sync(row.key, "delivered", code=code, now=now))
            self.metrics.delivered(code)
            self._last_refusal = None
            await self._healthy(now)
            return None
        self.metrics.failed(label)
        if outcome is CcuOutcome.RETRY:
            self._fail_streak += 1
            delay = self._backoff(max(row.attempts + 1, self._fail_streak))
            self._probe_at = now + delay
            await anyio.to_thread.run_sync(
                lambda: self.spool.record_sync(
                    row.key, "retry", code=code, error=error, now=now, next_attempt_at=now + delay
                )
            )
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
        await anyio.to_thread.run_sync(
            lambda: self.spool.record_sync(row.key, "refused", code=code, error=error, now=now)
        )
        await self._healthy(now)  # a refusal is still a proper answer: the collector is up
        self._last_refusal = (now, f"{code} ({error}) for {row.server} {row.date}")
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
            n = await anyio.to_thread.run_sync(self.spool.pull_forward_sync, now)
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
            f"inflight={len(self._inflight)}, failing={self._failing})"
        )
