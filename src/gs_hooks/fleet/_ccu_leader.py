"""CCU in fleet mode, the leader's side: freeze each (server id, slot) to the sum of the counts, send it once.

:class:`FleetCcuLeader` is a leader-only job. Each term it settles the open slots (those with counts not all
frozen): a (server id, slot) is frozen when every live member serving that server id has reported the slot (its
``ccu_through``), or once the collect wait has passed, counted from the later of the first report and the moment
this leader last reached Redis (a new leader, or one that lost Redis for a while, gives the members a whole
collect wait to write what they kept). Freezing is one fenced script per slot: the sum is computed inside Redis and
stored once (HSETNX), with a pending entry; a paused old leader cannot freeze or record anything.

The frozen values are sent by the house's :class:`~gs_hooks.ccu._sender.CcuSender` (reqkey rule, retries with
backoff, refusals reported through ``on_ccu_problem``), fed by a :class:`FleetQueue` over the fleet's pending
samples. A delivered sample is completed (fenced: pending removed, history written); a refused one stays pending,
marked refused under the game key it was sent with, so a leader started with another game key sends it again, and
``resend_refused`` clears the marks. A new leader sends every pending frozen value again: the platform keeps the
first value of a reqkey forever, and this is the same value.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence

import anyio
import anyio.abc
import httpx
import msgspec

from .._clock import Clock
from .._config import CcuConfig
from .._http_client import HttpClient
from .._signal import Changed
from .._time import format_kst
from ..ccu._metrics import CcuMetrics
from ..ccu._model import CcuSampleRow, OnCcuProblem, Plan, SampleKey, advance, pending_row
from ..ccu._protocol import CcuSample
from ..ccu._sender import CcuSender
from ._ccu import FleetCcu
from ._membership import Membership
from ._protocol import Fence, MemberInfo, PendingSample, freeze_ready, frozen_field
from ._redis import FencedError, FleetError

__all__ = ["FleetCcuLeader", "FleetQueue"]

log = logging.getLogger("gs_hooks.fleet")

_PRUNE_EVERY_S = 3600.0
_KICK_EVERY_S = 5.0  # the sender looks at the pending samples at least this often (refusals cleared elsewhere)


class FleetQueue:
    """The sender's delivery queue over the fleet's frozen samples, for one leader term (a ``DeliveryQueue``).

    Retry state (attempts, the next attempt) lives in memory for the term; what Redis holds is the truth for which
    samples are pending, their values and their refusals. An answer that could not be recorded (Redis down) is
    held and recorded first at the next plan; meanwhile its sample is not sent again.

    Args:
        fleet: the CCU primitives.
        fence: this term's lease (every record is fenced).
        game: the game key samples are sent with.
        retry_s: how soon to plan again after Redis failed.
    """

    def __init__(self, fleet: FleetCcu, fence: Fence, *, game: str, retry_s: float = 1.0) -> None:
        self.fleet = fleet
        self.fence = fence
        self.game = game
        self.retry_s = retry_s
        self.depth = 0
        self._rows: dict[SampleKey, CcuSampleRow] = {}
        self._unrecorded: dict[SampleKey, tuple[PendingSample, str, int]] = {}
        self._recording = anyio.Lock()  # one writer of the held answers at a time (sends finish concurrently)

    async def plan(self, now: float, limit: int, exclude: set[SampleKey]) -> Plan:
        """The pending samples due now (oldest slot first, not refused under this game key, none of ``exclude``)."""
        try:
            await self._record_held()
            pending = await self.fleet.pending()
            refused = await self.fleet.refused() if pending else {}
        except FleetError as exc:  # FencedError too: the term is ending
            self.fleet.redis.note("planning fleet CCU sends", exc)
            return Plan(rows=[], next_due=now + self.retry_s, depth=self.depth)
        rows: list[CcuSampleRow] = []
        next_due: float | None = None
        seen: set[SampleKey] = set()
        for sample in pending:
            if sample.slot_ms % 1000 or refused.get(frozen_field(sample.server, sample.slot_ms)) == self.game:
                continue
            key = (sample.server, sample.slot_ms // 1000)
            seen.add(key)
            if key in exclude or key in self._unrecorded:
                continue
            row = self._row(sample, now)
            if row.next_attempt_at > now:
                next_due = row.next_attempt_at if next_due is None else min(next_due, row.next_attempt_at)
            elif len(rows) < limit:
                rows.append(row)
        for key in [k for k in self._rows if k not in seen]:  # completed (or pruned) meanwhile
            del self._rows[key]
        self.depth = len(seen)
        return Plan(rows=rows, next_due=next_due, depth=self.depth)

    def _row(self, sample: PendingSample, now: float) -> CcuSampleRow:
        key = (sample.server, sample.slot_ms // 1000)
        row = self._rows.get(key)
        if row is None or row.user != sample.users or row.game != self.game:
            slot_ts = sample.slot_ms // 1000
            ccu = CcuSample.create(game=self.game, server=sample.server, date=format_kst(slot_ts), user=sample.users)
            row = self._rows[key] = pending_row(ccu, slot_ts, now)
        return row

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
        """One send's result: a retry in memory; a delivery or a refusal recorded in Redis (held while it fails)."""
        if event == "retry":
            self._rows[row.key] = advance(row, event, code=code, error=error, now=now, next_attempt_at=next_attempt_at)
            return
        self._rows.pop(row.key, None)
        self._unrecorded[row.key] = (PendingSample(row.server, row.slot_ts * 1000, row.user), event, code or 0)
        try:
            await self._record_held()
        except FleetError as exc:
            self.fleet.redis.note("recording a fleet CCU answer", exc)

    async def _record_held(self) -> None:
        async with self._recording:
            for key, (sample, event, code) in list(self._unrecorded.items()):
                if event == "delivered":
                    await self.fleet.complete(self.fence, sample, code)
                else:
                    await self.fleet.refuse(self.fence, sample, code, self.game)
                del self._unrecorded[key]

    async def pull_forward(self, now: float) -> int:
        """Make every sample waiting for a retry due now; returns how many."""
        due = {
            k: msgspec.structs.replace(r, next_attempt_at=now) for k, r in self._rows.items() if r.next_attempt_at > now
        }
        self._rows.update(due)
        return len(due)

    def __repr__(self) -> str:
        return f"FleetQueue(token={self.fence.token}, depth={self.depth}, unrecorded={len(self._unrecorded)})"


class FleetCcuLeader:
    """The leader-only CCU job: settle slots, send the frozen sums, prune the history.

    Args:
        fleet: the CCU primitives.
        membership: the live members (who must report a slot before it is frozen).
        config: the CCU settings (game key, timeouts, backoff, the request's form).
        url: the collector's URL.
        http: the shared HTTP client.
        clock: the injected clock (the sender's backoff; the settle loop's polls).
        collect_wait_s: a slot is frozen after this long even if a live member has not reported it.
        metrics: the reporter's metrics.
        on_problem: called with a ``CcuProblem`` for each refused sample (on the leader).
        retention_s: the fleet's history is pruned past this.
        poll_s: how often open slots are looked at.
        rng: the backoff jitter.
        rejoin_s: after Redis lost its data (a new ``P:epoch``; also at this process's first term), for this long
            slots are frozen by the collect wait only: the membership is incomplete until every live process has
            sent a heartbeat again (default: the member TTL).

    Attributes:
        sender: this term's sender (None while not leading).
        frozen: samples frozen by this process since the start.
    """

    def __init__(
        self,
        fleet: FleetCcu,
        membership: Membership,
        config: CcuConfig,
        *,
        url: str,
        http: HttpClient | httpx.AsyncClient,
        clock: Clock,
        collect_wait_s: float,
        metrics: CcuMetrics | None = None,
        on_problem: OnCcuProblem | None = None,
        retention_s: float = 35 * 86_400.0,
        poll_s: float = 0.2,
        rng: random.Random | None = None,
        rejoin_s: float | None = None,
    ) -> None:
        self.fleet = fleet
        self.membership = membership
        self.config = config
        self.url = url
        self.http = http
        self.clock = clock
        self.collect_wait_ms = int(collect_wait_s * 1000)
        self.metrics = metrics if metrics is not None else CcuMetrics()
        self.on_problem = on_problem
        self.retention_ms = int(retention_s * 1000)
        self.poll_s = poll_s
        self._rng = rng or random.Random()
        self.rejoin_ms = membership.ttl_ms if rejoin_s is None else int(rejoin_s * 1000)
        self._epoch: str | None = None
        self._rejoin_until_ms = 0
        self.changed = Changed()
        self.sender: CcuSender | None = None
        self.frozen = 0

    async def __call__(self, fence: Fence) -> None:
        """The leader job: one term (cancelled when this process stops leading)."""
        queue = FleetQueue(self.fleet, fence, game=self.config.game)
        sender = CcuSender(
            self.config,
            url=self.url,
            http=self.http,
            queue=queue,
            clock=self.clock,
            metrics=self.metrics,
            rng=self._rng,
            on_problem=self.on_problem,
            changed=self.changed,
        )
        self.sender = sender
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(sender.run)
                await self._settle_loop(fence, sender)
        finally:
            self.sender = None

    async def _settle_loop(self, fence: Fence, sender: CcuSender) -> None:
        reached_ms: int | None = None  # Redis's time when this term last reached Redis after not reaching it
        kicked = pruned = self.clock.time()
        while True:
            try:
                epoch = await self.fleet.epoch()
                now_ms, live = await self.membership.members()
                reached_ms = now_ms if reached_ms is None else reached_ms
                if epoch != self._epoch:  # Redis lost its data (or first term): members are registering again
                    self._epoch, self._rejoin_until_ms = epoch, now_ms + self.rejoin_ms
                rejoining = now_ms < self._rejoin_until_ms
                new = await self.settle_once(fence, now_ms, live, reached_ms, rejoining=rejoining)
                now = self.clock.time()
                if new or now - kicked >= _KICK_EVERY_S:
                    kicked = now
                    sender.kick()
                if now - pruned >= _PRUNE_EVERY_S:
                    pruned = now
                    await self.prune(fence, now_ms)
            except FencedError:
                raise
            except FleetError as exc:
                self.fleet.redis.note("settling fleet CCU slots", exc)
                reached_ms = None
            await self.clock.sleep(self.poll_s)

    async def settle_once(
        self, fence: Fence, now_ms: int, live: Sequence[MemberInfo], reached_ms: int, *, rejoining: bool = False
    ) -> int:
        """Freeze what is ready among the open slots now; returns how many samples this call froze.

        Args:
            fence: this term's lease.
            now_ms: Redis's time.
            live: the live members (their ``ccu_through``).
            reached_ms: Redis's time when this leader last reached Redis after a failure (or began leading): the
                collect wait runs from then at the earliest.
            rejoining: the membership may lack processes (Redis lost its data): freeze by the collect wait only.

        Raises:
            FencedError / FleetError: the lease is another's; Redis could not be reached.
        """
        new = 0
        for slot_ms in await self.fleet.open_slots():
            reports = await self.fleet.reports(slot_ms)
            servers = sorted({server for server, _ in reports})
            members = _reported(live, {pid for _, pid in reports}, slot_ms)
            wait_ms = max(self.collect_wait_ms, reached_ms + self.collect_wait_ms - slot_ms)
            if rejoining:
                ready = servers if now_ms >= slot_ms + wait_ms else []
            else:
                ready = [s for s in servers if freeze_ready(s, slot_ms, members, now_ms, wait_ms)]
            if servers and not ready:
                continue
            _, frozen = await self.fleet.settle(fence, slot_ms, ready)
            for server, value in frozen.items():
                log.debug("fleet CCU: %s %s frozen at %d", server, format_kst(slot_ms / 1000), value)
            new += len(frozen)
        self.frozen += new
        return new

    async def prune(self, fence: Fence, now_ms: int) -> int:
        """Drop the fleet's history and frozen values past the retention (pending samples are kept)."""
        servers = await self.fleet.servers()
        return await self.fleet.prune(fence, servers, now_ms - self.retention_ms)

    async def resend_refused(self) -> int:
        """Make every refused fleet sample sendable again (any process may call it); returns how many.

        Raises:
            FleetError: Redis could not be reached.
        """
        n = await self.fleet.clear_refused()
        if self.sender is not None:
            self.sender.kick()
        return n

    def __repr__(self) -> str:
        return f"FleetCcuLeader(leading={self.sender is not None}, frozen={self.frozen})"


def _reported(live: Sequence[MemberInfo], reporters: set[str], slot_ms: int) -> list[MemberInfo]:
    """The members, each that wrote a count in the slot marked as through it: its ``ccu_through`` lives in its
    member hash, which a heartbeat late past the member TTL loses (the hash expires and is written anew)."""
    return [
        msgspec.structs.replace(m, ccu_through_ms=slot_ms) if m.pid in reporters and m.ccu_through_ms < slot_ms else m
        for m in live
    ]
