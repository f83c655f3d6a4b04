"""The CCU sampler: counts every server id at each KST grid instant and hands the samples to its sink.

Strategy: sleep until each grid instant (``clock.sleep_until``, which never returns early), count every configured
server id, and give the samples, dated at that instant, to a :class:`SampleSink`. A late wake keeps the slot's
date; when more than a whole period was missed (the process was suspended) only the latest passed instant is
sampled: missed slots are not invented. A counter that raises skips its slot, loudly.

The sampler knows nothing of delivery: the local reporter's sink spools the samples and offers them to its
sender; fleet mode's sink publishes each process's counts for the leader to sum.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import anyio
import anyio.lowlevel

from .._clock import Clock, SystemClock
from .._signal import Changed
from .._time import format_kst, grid_slot, next_grid_instant
from ._counter import CcuCounter
from ._metrics import CcuMetrics
from ._protocol import CcuSample

__all__ = ["CcuSampler", "SampleSink"]

log = logging.getLogger("gs_hooks.ccu")

_SPIN_S = 0.002


class SampleSink(Protocol):
    """Where the sampler's samples go."""

    async def put(self, samples: Sequence[CcuSample], slot_ts: int, now: float) -> None:
        """Take one grid instant's samples (one per server id), dated at ``slot_ts``, taken at ``now``."""
        ...


class CcuSampler:
    """Samples the CCU of every server id on the KST grid.

    Args:
        game: the game key the samples carry.
        server_ids: the server ids reported.
        counter: what counts a server id's CCU (settable).
        period_s: the grid period in seconds.
        clock: the injected clock.
        sink: where the samples go.
        metrics: the reporter's metrics (a failing count is counted).
        changed: notified when the sampler falls asleep.

    Attributes:
        counter: the counter (settable).
    """

    def __init__(
        self,
        *,
        game: str,
        server_ids: tuple[str, ...],
        counter: CcuCounter,
        period_s: int,
        clock: Clock,
        sink: SampleSink,
        metrics: CcuMetrics,
        changed: Changed,
    ) -> None:
        self.game = game
        self.server_ids = server_ids
        self.counter = counter
        self.period_s = period_s
        self.clock = clock
        self.sink = sink
        self.metrics = metrics
        self._changed = changed
        self._waiting = False
        self._stopped = False
        self._scope: anyio.CancelScope | None = None

    @property
    def waiting(self) -> bool:
        """Asleep until the next grid instant."""
        return self._waiting

    def stop(self) -> None:
        """Stop sampling (before or while :meth:`run` runs): no slot is taken after this."""
        self._stopped = True
        if self._scope is not None:
            self._scope.cancel()

    async def run(self) -> None:
        """Sample at each grid instant until stopped or cancelled."""
        with anyio.CancelScope() as scope:
            self._scope = scope
            if self._stopped:
                scope.cancel()
            nxt = next_grid_instant(self.clock.time(), self.period_s).timestamp()
            while True:
                self._waiting = True
                self._changed.notify()
                await self._sleep_until_instant(nxt)
                self._waiting = False
                now = self.clock.time()
                slot = max(nxt, grid_slot(now, self.period_s).timestamp())
                if slot > nxt:
                    log.warning(
                        "CCU: woke %.0f s late; slots from %s to before %s are not sampled",
                        now - nxt,
                        format_kst(nxt),
                        format_kst(slot),
                    )
                await self.take(round(slot), now)
                nxt = slot + self.period_s

    async def take(self, slot_ts: int, now: float) -> None:
        """Count every server id for the grid instant ``slot_ts`` and give the samples to the sink."""
        date = format_kst(slot_ts)
        try:
            samples = [
                CcuSample.create(game=self.game, server=sid, date=date, user=self.counter.count(sid, slot_ts))
                for sid in self.server_ids
            ]
        except Exception:  # a broken counter must not stop the reporter: this slot is skipped, loudly
            log.exception("CCU: counting failed; the slot %s is not sampled", date)
            self.metrics.failed("count")
            return
        await self.sink.put(samples, slot_ts, now)

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
