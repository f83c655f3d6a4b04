"""The CCU sender: delivers samples from a delivery queue to the Hive/Com2uS collector.

Strategy: the dispatcher loop asks its :class:`DeliveryQueue` for the rows due now, oldest slot first, and sends
at most ``max_inflight`` at a time (one at a time while the collector is failing, as a probe, not before the
backoff). Each answer moves the row through the delivery lifecycle in the queue: delivered, retry later (jittered
exponential backoff, same date and reqkey), or refused (reported through log, metric and ``on_ccu_problem``, then
left alone until requeued). When a send succeeds after failures, the queue makes its whole backlog due at once.
Fresh rows are offered directly (:meth:`CcuSender.offer`): sent at once while nothing older waits and the
collector is healthy, without waiting for the dispatcher's next look at the queue.

The sender knows nothing of sampling or of the spool: the local reporter feeds it from the spool
(``_queue.SpooledQueue``); fleet mode's leader feeds it the fleet's frozen sums through another queue.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Protocol

import anyio
import anyio.abc
import httpx

from .._backoff import backoff_delay
from .._callbacks import call_callback
from .._clock import Clock
from .._config import CcuConfig
from .._exceptions import HttpTransportError, ProtocolError
from .._http_client import HttpClient, as_http_client
from .._signal import Changed
from ._metrics import CcuMetrics
from ._model import CcuProblem, CcuSampleRow, OnCcuProblem, Plan, SampleKey
from ._protocol import CODE_MESSAGES, CcuOutcome, classify, encode_request, parse_response

__all__ = ["CcuSender", "DeliveryQueue"]

log = logging.getLogger("gs_hooks.ccu")

_ADVICE = {
    CcuOutcome.OUR_FAULT: "the sample is kept as refused; fix the cause, then call hooks.resend_refused()",
    CcuOutcome.CONFIG_FAULT: "check GS_HOOKS_GAME with your Hive contact; refused samples are resent at the next "
    "start with a changed game key, or by hooks.resend_refused()",
}


class DeliveryQueue(Protocol):
    """What the sender sends from, and where each send's result goes."""

    async def plan(self, now: float, limit: int, exclude: set[SampleKey]) -> Plan:
        """The rows to send now (at most ``limit``, none of ``exclude``: they are in flight)."""
        ...

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
        """Record one send's result (``delivered``, ``retry`` or ``refused``)."""
        ...

    async def pull_forward(self, now: float) -> int:
        """Make the whole backlog due now (the collector answers again); returns how many rows moved."""
        ...


class CcuSender:
    """Sends due samples to the collector, exactly once per server id and slot (the reqkey makes resends safe).

    Args:
        config: the CCU settings (timeouts, backoff, ``max_inflight``, the request's form).
        url: the collector's URL.
        http: the shared HTTP client (an ``httpx.AsyncClient`` is wrapped).
        queue: what to send, and where results go.
        clock: the injected clock.
        metrics: the reporter's metrics.
        rng: randomness for the backoff jitter.
        on_problem: called with a :class:`CcuProblem` for each refused sample.
        changed: notified whenever the sender's idleness may have changed.

    Attributes:
        url: the collector's URL (settable).
        on_problem: the refusal callback (settable).
    """

    def __init__(
        self,
        config: CcuConfig,
        *,
        url: str,
        http: HttpClient | httpx.AsyncClient,
        queue: DeliveryQueue,
        clock: Clock,
        metrics: CcuMetrics,
        rng: random.Random,
        on_problem: OnCcuProblem | None,
        changed: Changed,
    ) -> None:
        self.config = config
        self.url = url
        self.http = as_http_client(http)
        self.queue = queue
        self.clock = clock
        self.metrics = metrics
        self.on_problem = on_problem
        self._rng = rng
        self._changed = changed
        self._inflight: dict[SampleKey, CcuSampleRow] = {}
        self._failing = False
        self._fail_streak = 0
        self._probe_at = 0.0
        self._closing = False
        self._waiting = False
        self._wake: anyio.Event | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        # For health: since when the collector fails and why, and since the last delivery: (first refusal, latest
        # refusal, its text, whether it names a setting: 302 game key).
        self._failing_since: float | None = None
        self._last_failure = ""
        self._last_refusal: tuple[float, float, str, bool] | None = None

    # -- state -------------------------------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Sends under way."""
        return len(self._inflight)

    @property
    def failing(self) -> bool:
        """Whether the collector is failing (probe mode: one send at a time, after the backoff)."""
        return self._failing

    @property
    def next_probe_at(self) -> float | None:
        """While failing, when the next probe may go (None while healthy)."""
        return self._probe_at if self._failing else None

    @property
    def idle(self) -> bool:
        """The dispatcher waits, with nothing in flight and no wake-up pending."""
        return self._waiting and not self._inflight and not (self._wake is not None and self._wake.is_set())

    def trouble(self, period_s: float) -> tuple[str, float] | None:
        """Why the sender is not healthy, and since when: the collector has failed (unreachable, HTTP error,
        300...) or refused samples for a whole grid period, or it refused our game key (302,
        ``GS_HOOKS_CCU_GAME``) — a delivered sample clears it. One refused sample alone (our data: 200–204, 301) is
        reported (``on_ccu_problem``, the metrics), not a health problem. None when healthy."""
        if self._last_refusal is not None:
            refused_since, latest, why, names_a_setting = self._last_refusal
            if names_a_setting or latest - refused_since >= period_s:
                return f"the collector refused a sample: {why}", refused_since
        since = self._failing_since
        if since is not None:
            failing_s = self.clock.time() - since
            if failing_s >= period_s:
                return f"the collector has failed for {failing_s:.0f} s: {self._last_failure}", since
        return None

    # -- control -----------------------------------------------------------------------------------------------

    def kick(self) -> None:
        """Make the dispatcher look at the queue again."""
        if self._wake is not None:
            self._wake.set()
        self._changed.notify()

    def offer(self, rows: list[CcuSampleRow], *, backlog: bool) -> None:
        """Fresh rows (committed to the queue): sent at once when nothing older waits, the collector is healthy
        and the dispatcher waits (a plan in progress holds a snapshot of the in-flight rows and would send them
        again); otherwise the dispatcher is woken and plans them in order."""
        started = 0
        if not backlog and not self._failing and not self._closing and self._waiting and self._tg is not None:
            for row in rows:
                if row.key not in self._inflight and len(self._inflight) < self.config.max_inflight:
                    self._start(self._tg, row)
                    started += 1
        if started == len(rows):
            self._changed.notify()  # all on their way: nothing for the dispatcher (a finishing send wakes it)
        else:
            self.kick()

    async def drain(self, grace_s: float) -> None:
        """Stop planning; let in-flight sends finish within ``grace_s`` (a cancelled one stays pending)."""
        self._closing = True
        self.kick()
        with anyio.move_on_after(grace_s):
            while self._inflight:
                await self._changed.wait()

    # -- dispatcher --------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """The dispatcher: plan, send, wait for a deadline or a wake-up; until cancelled."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            while True:
                self._wake = anyio.Event()
                deadline = None if self._closing else await self._dispatch(tg)
                await self._wait(deadline)

    async def _dispatch(self, tg: anyio.abc.TaskGroup) -> float | None:
        """Start the sends the queue has due; returns when to look again (None: when woken)."""
        now = self.clock.time()
        if self._failing:  # probe: one send at a time, not before the backoff
            limit = 0 if self._inflight or now < self._probe_at else 1
        else:
            limit = self.config.max_inflight - len(self._inflight)
        plan = await self.queue.plan(now, limit, set(self._inflight))
        self.metrics.backlog(plan.depth)
        for row in plan.rows:
            if row.key not in self._inflight:  # offered and started meanwhile
                self._start(tg, row)
        if self._failing:
            # a running probe wakes us when it ends; else the next probe is due at the later of both
            if not self._inflight and plan.next_due is not None:
                return max(plan.next_due, self._probe_at)
            return None
        return plan.next_due if len(self._inflight) < self.config.max_inflight else None  # else a send wakes us

    async def _wait(self, deadline: float | None) -> None:
        wake = self._wake
        assert wake is not None
        if wake.is_set():
            return
        try:
            if deadline is None:
                self._note_waiting()
                await wake.wait()
                return
            async with anyio.create_task_group() as tg:

                async def timer() -> None:
                    self._note_waiting()  # only once the timer is armed (a FakeClock then knows our deadline)
                    await self.clock.sleep_until(deadline)
                    tg.cancel_scope.cancel()

                async def kicked() -> None:
                    await wake.wait()
                    tg.cancel_scope.cancel()

                tg.start_soon(timer)
                tg.start_soon(kicked)
        finally:
            self._waiting = False

    def _note_waiting(self) -> None:
        self._waiting = True
        self._changed.notify()

    # -- one send ----------------------------------------------------------------------------------------------

    def _start(self, tg: anyio.abc.TaskGroup, row: CcuSampleRow) -> None:
        self._inflight[row.key] = row
        tg.start_soon(self._send, row)

    async def _send(self, row: CcuSampleRow) -> None:
        try:
            code, label, error = await self._post(row)
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
            self.kick()

    async def _post(self, row: CcuSampleRow) -> tuple[int | None, str, str]:
        """POST one sample; returns the result code (None: no readable answer), a metric label and an error."""
        body, ctype = encode_request(row.sample(), root=self.config.xml_root, method=self.config.send_method)
        code: int | None = None
        label = error = ""
        t0 = time.perf_counter()
        try:
            resp = await self.http.request(
                "POST", self.url, content=body, headers={"content-type": ctype}, timeout_s=self.config.timeout_s
            )
            if 200 <= resp.status < 300:
                try:
                    code = parse_response(resp.content)
                except ProtocolError as exc:
                    label, error = "unreadable", str(exc)
            else:
                label, error = f"http_{resp.status}", f"HTTP status {resp.status}"
        except HttpTransportError as exc:
            label, error = "transport", f"transport error: {exc.kind}"
        except Exception as exc:  # never let one send take the reporter down; the row stays pending
            log.exception("CCU: unexpected error sending %s %s", row.server, row.date)
            label, error = "error", f"unexpected error: {type(exc).__name__}"
        self.metrics.latency(time.perf_counter() - t0)
        if code is not None:
            label, error = str(code), CODE_MESSAGES.get(code, f"unknown result code {code}")
        return code, label, error

    async def _record(self, row: CcuSampleRow, code: int | None, label: str, error: str) -> CcuProblem | None:
        outcome = classify(code)
        now = self.clock.time()
        if outcome is CcuOutcome.DELIVERED:
            assert code is not None
            await self.queue.record(row, "delivered", code=code, now=now)
            self.metrics.delivered(code)
            self._last_refusal = None
            await self._healthy(now)
            return None
        self.metrics.failed(label)
        if outcome is CcuOutcome.RETRY:
            await self._retry_later(row, code, error, now)
            return None
        await self.queue.record(row, "refused", code=code, error=error, now=now)
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

    async def _retry_later(self, row: CcuSampleRow, code: int | None, error: str, now: float) -> None:
        self._fail_streak += 1
        # backoff_delay clamps the exponent: past ~1,024 failures in a row 2**n no longer fits a float.
        attempts = max(row.attempts + 1, self._fail_streak)
        delay = backoff_delay(attempts - 1, self.config.backoff_base_s, self.config.backoff_max_s, self._rng)
        self._probe_at = now + delay
        await self.queue.record(row, "retry", code=code, error=error, now=now, next_attempt_at=now + delay)
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

    async def _healthy(self, now: float) -> None:
        self._fail_streak = 0
        self._failing_since = None
        if self._failing:
            self._failing = False
            n = await self.queue.pull_forward(now)
            log.info("CCU: the collector answers again; draining %d pending sample(s)", n)

    def __repr__(self) -> str:
        return f"CcuSender(inflight={len(self._inflight)}, failing={self._failing})"
