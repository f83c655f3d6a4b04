"""The CCU reporter: the component run in the :class:`~gs_hooks.Hooks` task group, wiring sampler → sink → sender.

The parts, each in its module: the *sampler* (``_sampler``: counts every server id at each KST grid instant)
hands its samples to a *sink*; here the :class:`SpoolSink`, which commits them to the *delivery queue*
(``_queue``: the durable spool, or rows held in memory while it fails), mirrors them, and offers them to the
*sender* (``_sender``: delivery with reqkey, retries and refusals, fed by the queue). Fleet mode plugs in at the
seams: a sink that publishes the counts to the fleet, and a sender fed by the fleet's frozen sums.

Shutdown (:meth:`CcuReporter.aclose`) stops sampling, gives in-flight sends a short grace, then cancels them:
a cancelled send leaves its row pending, and the next start sends it again under the same reqkey. Samples held in
memory get one last try at the spool.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence

import anyio
import anyio.abc
import httpx

from .._clock import Clock, SystemClock
from .._config import CcuConfig
from .._health import ComponentHealth
from .._http_client import HttpClient, as_http_client
from .._signal import Changed
from ._counter import CcuCounter
from ._metrics import CcuMetrics
from ._mirror import CcuMirror
from ._model import CcuSampleRow, OnCcuProblem
from ._protocol import CcuSample
from ._queue import SpooledQueue
from ._sampler import CcuSampler
from ._sender import CcuSender
from ._spool import CcuSpool

__all__ = ["CcuReporter", "SpoolSink"]

log = logging.getLogger("gs_hooks.ccu")

_PRUNE_EVERY_S = 3600


class SpoolSink:
    """The local sink: a slot's samples into the delivery queue, then offered to the sender and mirrored.

    Args:
        queue: the delivery queue (the spool, or memory while it fails).
        sender: the sender the fresh rows are offered to.
        metrics: the reporter's metrics.
        mirror: the mirror, when one is configured.
        retention_s: delivered and refused rows older than this are pruned (checked every hour of slots).
    """

    def __init__(
        self,
        queue: SpooledQueue,
        sender: CcuSender,
        *,
        metrics: CcuMetrics,
        mirror: CcuMirror | None = None,
        retention_s: float,
    ) -> None:
        self.queue = queue
        self.sender = sender
        self.metrics = metrics
        self.mirror = mirror
        self.retention_s = retention_s
        self.taken = 0
        self.last_prune = 0.0

    async def put(self, samples: Sequence[CcuSample], slot_ts: int, now: float) -> None:
        """Queue the samples (committed, or held), offer them to the sender, mirror them; prune hourly."""
        added, backlog = await self.queue.add(samples, slot_ts, now)
        self.taken += len(added)
        self.sender.offer(added, backlog=backlog)
        for sample in samples:
            self.metrics.sampled(sample.server, sample.user)
        if self.mirror is not None:
            self.mirror.copy(added)
        if slot_ts - self.last_prune >= _PRUNE_EVERY_S:
            await self.prune(now)

    async def prune(self, now: float) -> None:
        """Forget delivered and refused rows older than the retention (pending rows are kept)."""
        self.last_prune = now
        n = await self.queue.prune(now - self.retention_s)
        if n:
            log.info("CCU: pruned %d history rows older than %d days", n, self.retention_s // 86_400)


class CcuReporter:
    """Reports CCU to the Hive/Com2uS collector on the KST grid, exactly once per server id and slot.

    Args:
        config: the CCU settings (``url`` must be set).
        http: the shared HTTP client (an ``httpx.AsyncClient`` is wrapped).
        spool: the durable spool (its store is closed by the reporter when ``owns_store``).
        counter: socket or web counter.
        clock: the clock (``SystemClock`` by default).
        on_problem: called with a :class:`CcuProblem` for each refused sample.
        retention_days: delivered/refused rows older than this are pruned (pending rows never are).
        metrics: Prometheus metrics (default: the global registry when ``prometheus_client`` is installed).
        owns_store: close the spool's store when the reporter stops.
        shutdown_grace_s: how long :meth:`aclose` lets an in-flight send finish.
        rng: randomness for the backoff jitter.

    Attributes:
        spool: the spool, which is also the CCU history (``hooks.ccu.spool``).
        sampler / sink / queue / sender / mirror: the parts (see the module docstring; ``mirror`` is None without
            a mirror URL).
        shutdown_grace_s: how long :meth:`aclose` lets an in-flight send finish (settable).
    """

    name = "ccu"

    def __init__(
        self,
        config: CcuConfig,
        *,
        http: HttpClient | httpx.AsyncClient,
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
        self.http = http = as_http_client(http)
        self.spool = spool
        self.clock: Clock = clock or SystemClock()
        self.retention_s = retention_days * 86_400
        self.metrics = metrics if metrics is not None else CcuMetrics()
        self.shutdown_grace_s = shutdown_grace_s
        # Test-only: a grid period that is not whole minutes (the bench uses a 1 s grid on the real clock).
        self.period_s: int = _grid_period_s if _grid_period_s is not None else config.period_s
        self._owns_store = owns_store
        self._changed = Changed()
        self._started = False
        self._tg: anyio.abc.TaskGroup | None = None
        self.queue = SpooledQueue(spool, clock=self.clock, metrics=self.metrics)
        self.sender = CcuSender(
            config,
            url=config.url,
            http=http,
            queue=self.queue,
            clock=self.clock,
            metrics=self.metrics,
            rng=rng or random.Random(),
            on_problem=on_problem,
            changed=self._changed,
        )
        self.mirror = None if config.mirror_url is None else CcuMirror(config, http=http, changed=self._changed)
        self.sink = SpoolSink(
            self.queue, self.sender, metrics=self.metrics, mirror=self.mirror, retention_s=self.retention_s
        )
        self.sampler = CcuSampler(
            game=config.game,
            server_ids=config.server_ids,
            counter=counter,
            period_s=self.period_s,
            clock=self.clock,
            sink=self.sink,
            metrics=self.metrics,
            changed=self._changed,
        )

    # -- settable parts ------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The collector's URL (settable)."""
        return self.sender.url

    @url.setter
    def url(self, url: str) -> None:
        self.sender.url = url

    @property
    def counter(self) -> CcuCounter:
        """What is sampled (settable)."""
        return self.sampler.counter

    @counter.setter
    def counter(self, counter: CcuCounter) -> None:
        self.sampler.counter = counter

    @property
    def on_problem(self) -> OnCcuProblem | None:
        """The refusal callback (settable)."""
        return self.sender.on_problem

    @on_problem.setter
    def on_problem(self, callback: OnCcuProblem | None) -> None:
        self.sender.on_problem = callback

    @property
    def samples_taken(self) -> int:
        """Samples taken since the start (one per server id and slot)."""
        return self.sink.taken

    @property
    def unrecorded(self) -> tuple[CcuSampleRow, ...]:
        """Samples held in memory because the spool could not record them (new ones, or their latest result),
        by slot then server id. Empty while the spool works."""
        return self.queue.unrecorded

    # -- component ---------------------------------------------------------------------------------------------

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled: resume pending samples from the spool, then sample and send on the grid."""
        try:
            await self.spool.open()
            now = self.clock.time()
            changed_game = await self.queue.requeue_refused(now, self.config.game, only_other_game=True)
            if changed_game:
                log.warning("CCU: game key changed: %d refused sample(s) queued again", changed_game)
            await self.sink.prune(now)
            async with anyio.create_task_group() as tg:
                self._tg = tg
                self._started = True
                tg.start_soon(self.sampler.run)
                tg.start_soon(self.sender.run)
                if self.mirror is not None:
                    tg.start_soon(self.mirror.run)
                task_status.started()
        finally:
            self._tg = None
            if self._owns_store:
                self.spool.store.close()

    async def aclose(self) -> None:
        """Stop sampling; let in-flight sends finish for a short grace, else leave them pending in the spool.

        Samples held in memory get one last try at the spool; what it still cannot take is logged as lost.
        """
        self.sampler.stop()
        await self.sender.drain(self.shutdown_grace_s)
        with anyio.CancelScope(shield=True):
            await self.queue.flush()
        if self._tg is not None:
            self._tg.cancel_scope.cancel()

    # -- operator API ------------------------------------------------------------------------------------------

    async def resend_refused(self) -> int:
        """Queue every refused sample again (with the current game key). Returns how many."""
        n = await self.queue.requeue_refused(self.clock.time(), self.config.game)
        if n:
            log.warning("CCU: %d refused sample(s) queued again by the operator", n)
        self.sender.kick()
        return n

    def health(self) -> ComponentHealth:
        """Readiness: not ok once the collector has failed (unreachable, HTTP error, 300...) for a whole grid
        period, or while its last answer refused a sample (a wrong game key refuses every one) until a sample is
        delivered again. No IO."""
        if not self._started:
            return ComponentHealth(name=self.name, ok=False, error="not started")
        trouble = self.sender.trouble(self.period_s)
        if trouble is not None:
            error, since = trouble
            return ComponentHealth(name=self.name, ok=False, error=error, since=since)
        return ComponentHealth(name=self.name, ok=True)

    @property
    def idle(self) -> bool:
        """Started, the sampler asleep until its next instant, the sender waiting with nothing in flight, no
        mirror copy under way: every due sample has been sent and answered."""
        return (
            self._started
            and self.sampler.waiting
            and self.sender.idle
            and (self.mirror is None or self.mirror.in_flight == 0)
        )

    async def wait_idle(self) -> None:
        """Wait until :attr:`idle` (mainly for tests)."""
        while not self.idle:
            await self._changed.wait()

    def __repr__(self) -> str:
        return (
            f"CcuReporter(servers={list(self.config.server_ids)}, period_s={self.period_s}, "
            f"inflight={self.sender.in_flight}, failing={self.sender.failing}, unrecorded={len(self.unrecorded)})"
        )
