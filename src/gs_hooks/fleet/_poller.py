"""The Gamebase ban poller in fleet mode: it runs on the leader only, its watermark kept in Redis (fenced).

The bans it finds go into the leader's ban book like any local batch: enforced there, written with an outbox
entry, published to the fleet's ban stream, applied by every other process. A new leader reads the watermark the
last one stored, so the fleet re-reads only the overlap after a failover; re-reading is harmless (the book is
idempotent). A watermark lost with Redis's data means a first window of ``initial_lookback_s`` again.
"""

from __future__ import annotations

from .._health import ComponentHealth
from ..bans._poller import BanPoller
from ._leader import Leadership
from ._protocol import Fence, Keys
from ._redis import FencedError

__all__ = ["FleetWatermarks", "LeaderBanPoller"]


class FleetWatermarks:
    """The ban poller's watermark in ``P:bans:wm``; written only under the current lease (fenced).

    Args:
        leadership: the lease (and its connection).
        keys: the fleet's keys.

    Attributes:
        fence: the lease the writes are made under (set by the job each time this process leads).
    """

    def __init__(self, leadership: Leadership, keys: Keys) -> None:
        self.leadership = leadership
        self.keys = keys
        self.fence: Fence | None = None

    async def load(self) -> float | None:
        """The fleet's watermark, or None. Raises FleetError when Redis cannot be reached."""
        raw = await self.leadership.redis.call("GET", self.keys.bans_wm)
        if raw is None:
            return None
        try:
            return float(raw)
        except ValueError:
            return None

    async def save(self, until: float) -> None:
        """Store the watermark under the lease.

        Raises:
            FencedError: this process does not lead (any more).
            FleetError: Redis could not be reached.
        """
        if self.fence is None:
            raise FencedError("the ban poller's watermark is written by the leader only")
        await self.leadership.fenced_set(self.fence, self.keys.bans_wm, repr(until))

    def __repr__(self) -> str:
        return f"FleetWatermarks({self.keys.bans_wm!r})"


class LeaderBanPoller:
    """The leader-only job running the ban poller (a :data:`~gs_hooks.fleet.LeaderJob`).

    Args:
        poller: the ban poller the bans install made (not a component in fleet mode).
        leadership: the lease.
        keys: the fleet's keys.
    """

    def __init__(self, poller: BanPoller, leadership: Leadership, keys: Keys) -> None:
        self.poller = poller
        self.watermarks = FleetWatermarks(leadership, keys)
        poller.watermarks = self.watermarks
        self.__name__ = "gamebase ban poll"

    async def __call__(self, fence: Fence) -> None:
        """Poll while leading (the first poll at once, from the watermark the fleet holds)."""
        self.watermarks.fence = fence
        self.poller.reload_watermark()
        try:
            await self.poller.run()
        finally:
            self.watermarks.fence = None

    def __repr__(self) -> str:
        return f"LeaderBanPoller({self.poller!r})"

    def health(self) -> ComponentHealth:
        """The poller's readiness while this process leads; ok otherwise (a failure seen while it led does not
        stay on it once another process polls)."""
        if not self.watermarks.leadership.is_leader:
            return ComponentHealth(name=self.poller.name, ok=True)
        return self.poller.health()
