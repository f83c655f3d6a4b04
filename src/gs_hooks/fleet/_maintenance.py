"""Maintenance in fleet mode: the leader polls Gamebase and publishes the result; every process's watcher reads it.

Strategy: one Gamebase poll per period for the whole fleet. :class:`MaintenancePublisher` is a leader-only job: it
polls through the Gamebase source (under-maintenance, plus simple launching when configured) and writes the
result, or the poll's error, to ``P:maint`` with a fenced write (an old leader that resumes late cannot overwrite
the new one's). A new leader keeps the period: it polls when the published result is due, not at once.

:class:`FleetMaintenanceSource` is every process's watcher source (the leader's too): it reads ``P:maint`` every
``period_s`` (one GET, cheap), so a change reaches each watcher within about a second of the leader's poll, and
each watcher makes its own transitions, notices, kicks at begin and login gate. A published error, a missing
result or one older than ``stale_after_s`` (no leader has polled for several periods) is a failed read: the
watcher keeps its state (an active maintenance stays active) and reports itself not ready, as when its own poll
fails.
"""

from __future__ import annotations

import logging
import random

from .._backoff import backoff_delay
from .._clock import Clock
from .._exceptions import GsHooksError
from ..gamebase._maintenance import MaintenanceReading, MaintenanceSource
from ._leader import Leadership
from ._protocol import Fence, Keys, PublishedMaintenance, decode_maintenance, encode_maintenance
from ._redis import FleetRedis

__all__ = ["FleetMaintenanceSource", "MaintenancePublisher"]

log = logging.getLogger("gs_hooks.fleet")


class FleetMaintenanceSource:
    """The watcher source of fleet mode: the leader's published result (``P:maint``).

    Args:
        redis: the connection.
        keys: the fleet's keys.
        clock: to judge the result's age.
        stale_after_s: a result older than this is not used (no leader is polling).
        period_s: how often the watcher reads it.
    """

    def __init__(
        self, redis: FleetRedis, keys: Keys, *, clock: Clock, stale_after_s: float, period_s: float = 1.0
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.clock = clock
        self.stale_after_s = stale_after_s
        self.period_s: float | None = period_s
        self.reads = 0

    async def fetch(self) -> MaintenanceReading:
        """The leader's last successful poll.

        Raises:
            FleetError: Redis could not be reached.
            GsHooksError: nothing published yet, a result too old, or the leader's poll failed (its error).
        """
        self.reads += 1
        raw = await self.redis.call("GET", self.keys.maint)
        if raw is None:
            raise GsHooksError("the fleet's leader has not published a maintenance poll yet")
        try:
            result = decode_maintenance(raw)
        except ValueError as exc:
            raise GsHooksError(f"the fleet's published maintenance poll is unreadable: {exc}") from None
        if result.error is not None:
            raise GsHooksError(f"the fleet leader's maintenance poll failed: {result.error}")
        age = self.clock.time() - result.polled_at
        if age > self.stale_after_s:
            raise GsHooksError(
                f"the fleet's last maintenance poll is {age:.0f} s old (no leader has polled Gamebase since)"
            )
        return MaintenanceReading(windows=result.windows, under_maintenance=result.under_maintenance)

    def __repr__(self) -> str:
        return f"FleetMaintenanceSource({self.keys.maint!r})"


class MaintenancePublisher:
    """The leader-only job polling Gamebase for the fleet (a :data:`~gs_hooks.fleet.LeaderJob`).

    Args:
        source: Gamebase (the watcher's own source before fleet mode replaced it).
        leadership: for the fenced writes.
        keys: the fleet's keys.
        clock: the injected clock (sleeps, ``polled_at``).
        poll_s: the poll period.
        backoff_max_s: the longest wait after failed polls (each failure is published too).
        rng: the backoff jitter.

    Attributes:
        polls: Gamebase polls made by this process (as leader).
    """

    def __init__(
        self,
        source: MaintenanceSource,
        leadership: Leadership,
        keys: Keys,
        *,
        clock: Clock,
        poll_s: float,
        backoff_max_s: float,
        rng: random.Random | None = None,
    ) -> None:
        self.source = source
        self.leadership = leadership
        self.keys = keys
        self.clock = clock
        self.poll_s = poll_s
        self.backoff_max_s = max(backoff_max_s, poll_s)
        self._rng = rng or random.Random()
        self.polls = 0
        self.__name__ = "maintenance poll"  # the leadership names failing jobs by it

    async def __call__(self, fence: Fence) -> None:
        """Poll and publish every period while leading.

        Raises:
            FencedError: the lease is not ``fence`` any more (the leadership ends).
            FleetError: Redis could not be reached (the leadership retries the job).
        """
        await self._wait_for_due()
        failures = 0
        while True:
            polled_at = self.clock.time()
            try:
                reading = await self.source.fetch()
            except (GsHooksError, ValueError) as exc:
                failures += 1
                result = PublishedMaintenance(polled_at=polled_at, leader=fence.pid, error=_describe(exc))
                delay = backoff_delay(failures, self.poll_s, self.backoff_max_s, self._rng)
                log.warning("fleet: maintenance poll failed (%d in a row): %s", failures, result.error)
            else:
                failures = 0
                result = PublishedMaintenance(
                    polled_at=polled_at,
                    leader=fence.pid,
                    windows=reading.windows,
                    under_maintenance=reading.under_maintenance,
                )
                delay = self.poll_s
            self.polls += 1
            await self.leadership.fenced_set(fence, self.keys.maint, encode_maintenance(result))
            await self.clock.sleep(delay)

    async def _wait_for_due(self) -> None:
        """A new leader polls when the published result is due (one poll per period across a failover)."""
        try:
            raw = await self.leadership.redis.call("GET", self.keys.maint)
            last = None if raw is None else decode_maintenance(raw)
        except (GsHooksError, ValueError):
            return
        if last is not None and last.error is None:
            due = last.polled_at + self.poll_s
            if due > self.clock.time():
                await self.clock.sleep_until(due)

    def __repr__(self) -> str:
        return f"MaintenancePublisher(polls={self.polls})"


def _describe(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, GsHooksError) else f"unreadable maintenance date: {exc}"
    return text[:500]
