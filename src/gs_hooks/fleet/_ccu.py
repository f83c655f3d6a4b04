"""CCU across the fleet: absolute counts per process, one frozen sum per (server id, slot).

At each grid instant every process writes its *absolute* count per server id into ``P:ccu:r:{slot}`` and moves
its ``ccu_through`` (:meth:`FleetCcu.report`; one script, Redis's clock): counts a process writes later than the
staleness bound after the instant, or after the slot was frozen, are refused, so a process paused past the
instant never reports a stale count. The leader decides when a slot may be frozen (:func:`~._protocol.freeze_ready`
over the live members), freezes it (:meth:`FleetCcu.freeze`: the sum computed inside Redis, HSETNX, so a
(server id, slot) has one value forever, plus a pending entry), sends pending samples, and completes them
(:meth:`FleetCcu.complete`: pending removed, history recorded). Leader writes are fenced.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ._ccu_lua import CCU_COMPLETE, CCU_FREEZE, CCU_PRUNE, CCU_REFUSE, CCU_REPORT, CCU_SETTLE
from ._leader import Leadership
from ._lua import ENSURE_EPOCH
from ._protocol import Fence, Keys, PendingSample, ccu_field, frozen_field, parse_frozen_field, parse_history
from ._redis import Arg, FleetRedis
from ._stream import new_epoch

__all__ = ["REPORT_TTL_S", "FleetCcu"]

REPORT_TTL_S = 86_400  # a slot's reports are kept a day (a slot frozen late still finds them)
_NEVER_STALE_MS = 2**53  # a staleness bound no report exceeds


class FleetCcu:
    """The CCU primitives of one process.

    Args:
        redis: the connection.
        keys: the fleet's keys.
        pid: this process's id.
        leadership: this process's leadership (fenced writes).
        staleness_s: counts written later than this after their instant are refused.
    """

    def __init__(self, redis: FleetRedis, keys: Keys, pid: str, leadership: Leadership, *, staleness_s: float) -> None:
        self.redis = redis
        self.keys = keys
        self.pid = pid
        self.leadership = leadership
        self.staleness_ms = int(staleness_s * 1000)

    async def report(self, slot_ms: int, counts: Mapping[str, int], *, late_ok: bool = False) -> dict[str, str]:
        """Write this process's absolute counts for the slot starting at ``slot_ms`` (epoch ms).

        Also moves this process's ``ccu_through`` to the slot, even when the counts are refused, so the leader
        does not wait for them; a slot with a new count joins the open slots the leader settles.

        Args:
            slot_ms: the slot's grid instant.
            counts: server id -> this process's absolute count.
            late_ok: the counts were taken on time and are written late (kept while Redis could not be reached,
                or written again after Redis lost its data): not refused as stale, only once frozen.

        Returns:
            server id -> ``ok``, ``stale`` (written too late after the instant) or ``frozen`` (too late: the slot
            was already frozen).

        Raises:
            FleetError: Redis could not be reached.
        """
        servers = list(counts)
        staleness = _NEVER_STALE_MS if late_ok else self.staleness_ms
        args: list[Arg] = [self.pid, slot_ms, staleness, REPORT_TTL_S]
        for server in servers:
            args += [server, int(counts[server])]
        keys = [self.keys.ccu_reports(slot_ms), self.keys.member(self.pid), self.keys.ccu_frozen, self.keys.ccu_open]
        outcomes = await self.redis.script(CCU_REPORT, keys, args)
        return {s: o.decode() for s, o in zip(servers, outcomes, strict=True)}

    async def reports(self, slot_ms: int) -> dict[tuple[str, str], int]:
        """The counts written for a slot: (server id, pid) -> count. Raises FleetError."""
        flat = await self.redis.call("HGETALL", self.keys.ccu_reports(slot_ms))
        pairs = flat.items() if isinstance(flat, dict) else zip(flat[::2], flat[1::2], strict=True)
        out: dict[tuple[str, str], int] = {}
        for field, value in pairs:
            server, _, pid = field.decode().partition("|")
            out[(server, pid)] = int(value)
        return out

    async def freeze(self, fence: Fence, server: str, slot_ms: int) -> tuple[int, bool]:
        """Freeze (server id, slot) to the sum of its reports, once; fenced.

        Returns:
            (the frozen value, True when this call froze it; False when it was frozen before: the old value).

        Raises:
            FencedError: ``fence`` is not the lease any more; nothing was written.
            FleetError: Redis could not be reached.
        """
        keys = [self.keys.ccu_reports(slot_ms), self.keys.ccu_frozen, self.keys.ccu_pending]
        value, new = await self.leadership.fenced(fence, CCU_FREEZE, keys, [server, slot_ms])
        return int(value), bool(new)

    async def frozen(self, server: str, slot_ms: int) -> int | None:
        """The frozen value of (server id, slot), or None. Raises FleetError."""
        value = await self.redis.call("HGET", self.keys.ccu_frozen, frozen_field(server, slot_ms))
        return None if value is None else int(value)

    async def pending(self) -> list[PendingSample]:
        """Frozen samples not yet answered by the platform, oldest first. Raises FleetError."""
        fields = await self.redis.call("ZRANGE", self.keys.ccu_pending, 0, -1)
        if not fields:
            return []
        values = await self.redis.call("HMGET", self.keys.ccu_frozen, *fields)
        out: list[PendingSample] = []
        for field, value in zip(fields, values, strict=True):
            if value is not None:
                server, slot_ms = parse_frozen_field(field)
                out.append(PendingSample(server, slot_ms, int(value)))
        return out

    async def complete(self, fence: Fence, sample: PendingSample, code: int) -> bool:
        """Record the platform's answer to a sample: pending removed, history written; fenced.

        Returns:
            True when the sample was pending (False: another leader completed it already).

        Raises:
            FencedError / FleetError: as :meth:`freeze`.
        """
        field = frozen_field(sample.server, sample.slot_ms)
        removed = await self.leadership.fenced(
            fence, CCU_COMPLETE, self._answer_keys(sample.server), [field, sample.slot_ms, sample.users, code]
        )
        return bool(removed)

    async def refuse(self, fence: Fence, sample: PendingSample, code: int, game: str) -> bool:
        """Record a refusal: the sample stays pending but is not sent again under ``game`` (history written);
        fenced.

        Returns:
            True when the sample was pending.

        Raises:
            FencedError / FleetError: as :meth:`freeze`.
        """
        field = frozen_field(sample.server, sample.slot_ms)
        args: list[Arg] = [field, sample.slot_ms, sample.users, code, game]
        return bool(await self.leadership.fenced(fence, CCU_REFUSE, self._answer_keys(sample.server), args))

    def _answer_keys(self, server: str) -> list[str]:
        k = self.keys
        return [k.ccu_pending, k.ccu_history(server), k.ccu_refused, k.ccu_servers]

    async def refused(self) -> dict[str, str]:
        """Pending samples refused by the platform: ``server|slot_ms`` -> the game key they were refused under.
        Raises FleetError."""
        flat = await self.redis.call("HGETALL", self.keys.ccu_refused)
        pairs = flat.items() if isinstance(flat, dict) else zip(flat[::2], flat[1::2], strict=True)
        return {_text(f): _text(v) for f, v in pairs}

    async def clear_refused(self) -> int:
        """Make every refused sample sendable again (the operator's ``resend_refused``); returns how many.
        Raises FleetError."""
        n = int(await self.redis.call("HLEN", self.keys.ccu_refused))
        await self.redis.call("DEL", self.keys.ccu_refused)
        return n

    async def open_slots(self, limit: int = 500) -> list[int]:
        """Slots with reports not all frozen yet, oldest first (at most ``limit``). Raises FleetError."""
        values = await self.redis.call("ZRANGEBYSCORE", self.keys.ccu_open, "-inf", "+inf", "LIMIT", 0, limit)
        return [int(v) for v in values]

    async def settle(self, fence: Fence, slot_ms: int, servers: Iterable[str]) -> tuple[bool, dict[str, int]]:
        """Freeze ``servers`` of a slot (each once, to the sum of its reports); close the slot when every server id
        reported in it is frozen; fenced.

        Returns:
            (whether the slot is closed, server id -> frozen value for those newly frozen by this call).

        Raises:
            FencedError / FleetError: as :meth:`freeze`.
        """
        k = self.keys
        keys = [k.ccu_reports(slot_ms), k.ccu_frozen, k.ccu_pending, k.ccu_open]
        reply = await self.leadership.fenced(fence, CCU_SETTLE, keys, [slot_ms, *servers])
        new = {_text(reply[i]): int(reply[i + 1]) for i in range(1, len(reply), 3) if int(reply[i + 2])}
        return bool(int(reply[0])), new

    async def servers(self) -> list[str]:
        """The server ids the fleet's history holds samples of, sorted. Raises FleetError."""
        return sorted(_text(s) for s in await self.redis.call("SMEMBERS", self.keys.ccu_servers))

    async def epoch(self) -> str:
        """This Redis's data epoch (set when none is): a change means Redis lost its data. Raises FleetError."""
        return _text(await self.redis.script(ENSURE_EPOCH, [self.keys.epoch], [new_epoch()]))

    async def history(self, server: str, from_ms: int, to_ms: int) -> list[tuple[int, int, int]]:
        """Sent samples of a server id with ``from_ms <= slot <= to_ms``: (slot_ms, users, code), by slot.

        Raises:
            FleetError: Redis could not be reached.
        """
        values = await self.redis.call("ZRANGEBYSCORE", self.keys.ccu_history(server), from_ms, to_ms)
        return [parse_history(v) for v in values]

    async def latest(self, server: str, count: int = 1) -> list[tuple[int, int, int]]:
        """The last ``count`` sent samples of a server id, newest first: (slot_ms, users, code). Raises
        FleetError."""
        values = await self.redis.call("ZREVRANGE", self.keys.ccu_history(server), 0, count - 1)
        return [parse_history(v) for v in values]

    async def prune(self, fence: Fence, servers: Iterable[str], before_ms: int) -> int:
        """Drop history and frozen values of slots before ``before_ms`` (pending ones are kept); fenced.

        Returns:
            How many frozen values were dropped.
        """
        histories = [self.keys.ccu_history(s) for s in servers]
        keys: Sequence[str] = [self.keys.ccu_frozen, self.keys.ccu_pending, *histories]
        return int(await self.leadership.fenced(fence, CCU_PRUNE, keys, [before_ms]))

    def field(self, server: str) -> str:
        """This process's field in a slot's reports."""
        return ccu_field(server, self.pid)

    def __repr__(self) -> str:
        return f"FleetCcu({self.pid!r})"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
