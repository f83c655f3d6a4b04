"""The fleet's CCU history as the GamePot inquiry and the dashboard read it (``hooks.gamepot_history`` in fleet
mode): every server id's samples as the leader sent them (``P:ccu:hist:*``, the frozen sums and the platform's
answers) and the frozen ones still pending, whichever process is asked. While Redis cannot be reached the reads
fall back to this process's own spool (the samples it sent alone meanwhile), logged."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from ..gamepot._history import CcuHistorySource, DeliveryHealth, ServerHealth
from ..gamepot._protocol import HistorySample
from ._ccu import FleetCcu
from ._redis import FleetError

__all__ = ["FleetCcuHistory"]

_DELIVERED = (100, 101)
_LOOK_BACK = 50  # sent samples looked at for a server id's last success


class FleetCcuHistory:
    """The fleet's CCU history (a ``CcuHistorySource`` with delivery health).

    Args:
        fleet: the CCU primitives.
        fallback: read instead while Redis cannot be reached (this process's spool), or None (empty).
    """

    available = True

    def __init__(self, fleet: FleetCcu, *, fallback: CcuHistorySource | None = None) -> None:
        self.fleet = fleet
        self.fallback = fallback

    async def samples(self, start_ts: float, end_ts: float, server_id: str | None = None) -> Sequence[HistorySample]:
        """Samples whose slot is in ``[start_ts, end_ts)``: sent (state ``delivered`` or ``refused``, the code) and
        frozen but not answered yet (``pending``), all server ids or one, by slot."""
        try:
            return await self._samples(start_ts, end_ts, server_id)
        except FleetError as exc:
            self.fleet.redis.note("reading the fleet's CCU history", exc)
            return [] if self.fallback is None else await self.fallback.samples(start_ts, end_ts, server_id)

    async def _samples(self, start_ts: float, end_ts: float, server_id: str | None) -> list[HistorySample]:
        lo, hi = math.ceil(start_ts * 1000), math.ceil(end_ts * 1000) - 1
        pending = [p for p in await self.fleet.pending() if lo <= p.slot_ms <= hi]
        if server_id is None:
            servers = set(await self.fleet.servers()) | {p.server for p in pending}
        else:
            servers = {server_id}
            pending = [p for p in pending if p.server == server_id]
        out: list[HistorySample] = []
        sent: set[tuple[str, int]] = set()
        for server in sorted(servers):
            for slot_ms, users, code in await self.fleet.history(server, lo, hi):
                state = "delivered" if code in _DELIVERED else "refused"
                out.append(HistorySample(at=slot_ms / 1000, server_id=server, users=users, state=state, result=code))
                sent.add((server, slot_ms))
        for p in pending:
            if (p.server, p.slot_ms) not in sent:  # a refused sample is pending too: its history row says it
                out.append(HistorySample(at=p.slot_ms / 1000, server_id=p.server, users=p.users, state="pending"))
        return sorted(out, key=lambda s: (s.at, s.server_id))

    async def delivery_health(self, server_ids: Iterable[str]) -> DeliveryHealth:
        """The fleet's backlog (frozen samples not yet delivered) and, per server id, the last answer and the slot
        of the last delivered sample."""
        try:
            depth = len(await self.fleet.pending())
            servers = []
            for sid in server_ids:
                recent = await self.fleet.latest(sid, _LOOK_BACK)
                ok = next((slot_ms for slot_ms, _, code in recent if code in _DELIVERED), None)
                servers.append(
                    ServerHealth(
                        server_id=sid,
                        last_result=recent[0][2] if recent else None,
                        last_success_at=None if ok is None else ok / 1000,
                    )
                )
        except FleetError as exc:
            self.fleet.redis.note("reading the fleet's CCU delivery health", exc)
            return DeliveryHealth()
        return DeliveryHealth(backlog_depth=depth, servers=tuple(servers))

    def __repr__(self) -> str:
        return f"FleetCcuHistory({self.fleet.pid!r})"
