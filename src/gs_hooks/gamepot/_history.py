"""Where the inquiry and the dashboard read CCU history and delivery health from.

The CCU reporter's durable spool keeps every sample it takes (its slot, server id, user count, delivery state and
last result code); that is the history. This module is the thin seam between it and the GamePot side:

- :class:`CcuHistorySource` is all the inquiry and the dashboard need (``samples`` over a time range, and
  optionally ``delivery_health``);
- :class:`ReporterHistory` adapts the reporter's spool (found lazily, so wiring order does not matter);
- :class:`MemoryCcuHistory` is a plain in-memory source (tests, or a game that counts CCU itself);
- :class:`HistorySlot` is what the inquiry and the dashboard hold: it reads whatever source it holds at request
  time (``hooks.gamepot_history``, replaceable after setup).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

import msgspec

from ..ccu import CcuSampleRow, CcuSpool
from ._protocol import HistorySample

__all__ = [
    "CcuHistorySource",
    "DeliveryHealth",
    "HistorySlot",
    "MemoryCcuHistory",
    "ReporterHistory",
    "ServerHealth",
]


class ServerHealth(msgspec.Struct, frozen=True, kw_only=True):
    """Delivery health of one server id.

    Attributes:
        server_id: the server id.
        last_result: the last Hive result code (100/101 delivered), None before any answer.
        last_success_at: epoch seconds of the last delivered sample, None if never.
    """

    server_id: str
    last_result: int | None = None
    last_success_at: float | None = None


class DeliveryHealth(msgspec.Struct, frozen=True, kw_only=True):
    """Delivery health of the CCU reporter.

    Attributes:
        backlog_depth: samples not delivered yet (None when unknown).
        servers: per server id.
    """

    backlog_depth: int | None = None
    servers: tuple[ServerHealth, ...] = ()


@runtime_checkable
class CcuHistorySource(Protocol):
    """A CCU history: the samples taken, by grid slot."""

    async def samples(self, start_ts: float, end_ts: float, server_id: str | None = None) -> Sequence[HistorySample]:
        """Samples whose slot is in ``[start_ts, end_ts)`` (all server ids, or one)."""
        ...


@runtime_checkable
class HealthSource(Protocol):
    """A history that also knows how delivery is going (the CCU reporter's spool does)."""

    async def delivery_health(self, server_ids: Iterable[str]) -> DeliveryHealth:
        """Backlog depth and, per server id, the last result code and last success time."""
        ...


class MemoryCcuHistory:
    """An in-memory :class:`CcuHistorySource`.

    Use it when the samples do not come from the Hive CCU reporter (tests, a game that counts elsewhere):
    ``record_nowait(at, server_id, users)``.
    """

    def __init__(self, samples: Iterable[HistorySample] = ()) -> None:
        self._samples: list[HistorySample] = list(samples)

    def record_nowait(self, at: datetime | float, server_id: str, users: int, *, result: int | None = None) -> None:
        """Add a sample for the slot starting at ``at`` (aware datetime or epoch seconds)."""
        ts = at.timestamp() if isinstance(at, datetime) else float(at)
        if isinstance(at, datetime) and at.tzinfo is None:
            raise ValueError("naive datetime: give an aware datetime (e.g. tzinfo=gs_hooks.KST)")
        self._samples.append(HistorySample(at=ts, server_id=server_id, users=users, result=result))

    def prune_nowait(self, before_ts: float) -> int:
        """Drop samples older than ``before_ts``. Returns how many were dropped."""
        kept = [s for s in self._samples if s.at >= before_ts]
        dropped = len(self._samples) - len(kept)
        self._samples = kept
        return dropped

    async def samples(self, start_ts: float, end_ts: float, server_id: str | None = None) -> Sequence[HistorySample]:
        """Samples whose slot is in ``[start_ts, end_ts)``."""
        return [
            s for s in self._samples if start_ts <= s.at < end_ts and (server_id is None or s.server_id == server_id)
        ]

    def __len__(self) -> int:
        return len(self._samples)

    def __repr__(self) -> str:
        return f"MemoryCcuHistory(samples={len(self._samples)})"


def sample_from_row(row: CcuSampleRow) -> HistorySample:
    """A spool row as a :class:`HistorySample`."""
    return HistorySample(
        at=float(row.slot_ts), server_id=row.server, users=row.user, state=row.state.value, result=row.last_code
    )


class ReporterHistory:
    """The CCU reporter's spool as a :class:`CcuHistorySource` (and health source).

    Args:
        locate: returns the spool (or the reporter holding it as ``.spool``), or None while there is none. It is
            called on every read, so the adapter can be made before the reporter is wired.
    """

    def __init__(self, locate: Callable[[], object]) -> None:
        self._locate = locate

    def _spool(self) -> CcuSpool | None:
        target = self._locate()
        spool = target if isinstance(target, CcuSpool) else getattr(target, "spool", None)
        return spool if isinstance(spool, CcuSpool) else None

    @property
    def available(self) -> bool:
        """Whether a spool is there to read."""
        return self._spool() is not None

    async def samples(self, start_ts: float, end_ts: float, server_id: str | None = None) -> Sequence[HistorySample]:
        """Samples whose slot is in ``[start_ts, end_ts)``; empty while there is no reporter."""
        spool = self._spool()
        if spool is None:
            return []
        rows = await spool.history(server_id, start_ts, end_ts)
        out = [sample_from_row(r) for r in rows]
        return [s for s in out if start_ts <= s.at < end_ts]

    async def delivery_health(self, server_ids: Iterable[str]) -> DeliveryHealth:
        """Backlog depth and per-server last result / last success, from the spool."""
        spool = self._spool()
        if spool is None:
            return DeliveryHealth()
        depth = await spool.backlog_depth()
        servers = []
        for sid in server_ids:
            last = await spool.last_result(sid)
            ok_at = await spool.last_success_at(sid)
            servers.append(
                ServerHealth(
                    server_id=sid,
                    last_result=None if last is None else last.last_code,
                    last_success_at=None if ok_at is None else float(ok_at),
                )
            )
        return DeliveryHealth(backlog_depth=depth, servers=tuple(servers))

    def __repr__(self) -> str:
        return f"ReporterHistory(available={self.available})"


class HistorySlot:
    """Holds the current CCU history source and reads it at request time (a game may replace it after setup).

    Args:
        source: the initial source (None: no history; reads are empty).

    Attributes:
        source: the current source, settable (``hooks.gamepot_history``).
    """

    def __init__(self, source: CcuHistorySource | None = None) -> None:
        self.source = source

    @property
    def available(self) -> bool:
        """Whether a history with delivery health is there."""
        source: object = self.source  # any object: a game may set a source that is also a health source
        return isinstance(source, HealthSource) and bool(getattr(source, "available", True))

    async def samples(self, start_ts: float, end_ts: float, server_id: str | None = None) -> Sequence[HistorySample]:
        """Samples of the current source."""
        source = self.source
        return [] if source is None else await source.samples(start_ts, end_ts, server_id)

    async def delivery_health(self, server_ids: Iterable[str]) -> DeliveryHealth:
        """Delivery health of the current source (empty when it has none)."""
        source: object = self.source
        if isinstance(source, HealthSource):
            return await source.delivery_health(server_ids)
        return DeliveryHealth()

    def __repr__(self) -> str:
        return f"HistorySlot({self.source!r})"
