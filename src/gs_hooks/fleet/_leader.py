"""Leadership: one process runs the fleet's leader-only jobs, under a lease with a fencing token.

Strategy (Kleppmann's fencing): acquiring the lease (``SET NX PX`` in a script) takes a fresh token from
``INCR P:leader:fence``; the leader renews every ``renew_s`` (compare, then PEXPIRE). It acts only until its own
deadline, measured on the monotonic clock from the moment it *sent* the last successful renewal: ``ttl − margin``
later, whatever Redis says or however long a call hangs. The jobs run in a cancel scope with that deadline, so a
leader cut off from Redis, or paused, stops acting before the lease can pass to another. Every write a job makes
goes through a fenced script (:meth:`Leadership.fenced`) that checks ``P:leader`` still holds its ``pid|token``:
an old leader that resumes late is refused (:class:`FencedError`), and its job ends with the leadership.

The lease runs on real monotonic time, as Redis's TTL does (no injected clock).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
import anyio.abc

from ._lua import FENCED_SET, LEADER_ACQUIRE, LEADER_RELEASE, LEADER_RENEW, Script
from ._protocol import Fence, Keys
from ._redis import Arg, FencedError, FleetError, FleetRedis

__all__ = ["LeaderJob", "Leadership"]

log = logging.getLogger("gs_hooks.fleet")

LeaderJob = Callable[[Fence], Awaitable[None]]
"""A leader-only job: runs while this process leads, cancelled when it stops; gets the lease for fenced writes."""


class Leadership:
    """Compete for the fleet's leader lease and run leader-only jobs while holding it.

    Args:
        redis: the connection.
        keys: the fleet's keys.
        pid: this process's id.
        ttl_s: the lease TTL.
        renew_s: the renewal period (at most half the TTL).
    """

    def __init__(self, redis: FleetRedis, keys: Keys, pid: str, *, ttl_s: float, renew_s: float) -> None:
        self.redis = redis
        self.keys = keys
        self.pid = pid
        self.ttl_s = ttl_s
        self.renew_s = renew_s
        self.margin_s = ttl_s / 10
        self._fence: Fence | None = None
        self._deadline = 0.0
        self._ended: str | None = None
        self.terms = 0  # leaderships gained

    @property
    def fence(self) -> Fence | None:
        """This process's lease while it may act as leader, else None."""
        if self._fence is not None and anyio.current_time() < self._deadline:
            return self._fence
        return None

    @property
    def is_leader(self) -> bool:
        """Whether this process may act as leader now (it holds the lease and its deadline has not passed)."""
        return self.fence is not None

    async def acquire_once(self) -> tuple[Fence | None, float]:
        """Try to take the lease once.

        Returns:
            (the lease when taken or already ours, else None; seconds the current holder's lease still runs).

        Raises:
            FleetError: Redis could not be reached.
        """
        token, _, pttl = await self.redis.script(
            LEADER_ACQUIRE, [self.keys.leader, self.keys.fence], [self.pid, int(self.ttl_s * 1000)]
        )
        if int(token) > 0:
            return Fence(self.pid, int(token)), 0.0
        return None, max(0, int(pttl)) / 1000

    async def renew_once(self, fence: Fence) -> bool:
        """Extend the lease by its TTL; False when it is not ours any more. Raises FleetError when unreachable."""
        got = await self.redis.script(LEADER_RENEW, [self.keys.leader], [fence.lease, int(self.ttl_s * 1000)])
        return bool(got)

    async def release(self, fence: Fence) -> bool:
        """Give the lease up (compare-and-delete); True when it was ours. Raises FleetError when unreachable."""
        return bool(await self.redis.script(LEADER_RELEASE, [self.keys.leader], [fence.lease]))

    async def fenced(self, fence: Fence, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """Run a fenced script (made with :func:`~gs_hooks.fleet._lua.fenced`) under ``fence``.

        Raises:
            FencedError: the lease is not ``fence`` any more; nothing was written.
            FleetError: Redis could not be reached.
        """
        return await self.redis.script(script, [self.keys.leader, *keys], [fence.lease, *args])

    async def fenced_set(self, fence: Fence, key: str, value: Arg) -> None:
        """``SET key value`` only while ``fence`` holds the lease. Raises FencedError / FleetError."""
        await self.fenced(fence, FENCED_SET, [key], [value])

    # -- the component -------------------------------------------------------------------------------------------

    async def run(
        self, jobs: Sequence[LeaderJob] = (), *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Compete for the lease until cancelled; while leading, run ``jobs`` (each restarted after a failure).

        On cancellation a held lease is released, so another process takes over at once.
        """
        task_status.started()
        while True:
            sent = anyio.current_time()
            wait = self.renew_s
            try:
                fence, holder_left_s = await self.acquire_once()
            except FleetError as exc:
                self.redis.note("leader lease", exc)
                fence, holder_left_s = None, self.renew_s
            if fence is not None:
                await self._lead(fence, sent, jobs)
            else:
                wait = min(self.renew_s, holder_left_s + 0.01)
            await anyio.sleep(wait)

    async def _lead(self, fence: Fence, sent: float, jobs: Sequence[LeaderJob]) -> None:
        self._fence, self._deadline, self._ended = fence, sent + self.ttl_s - self.margin_s, None
        self.terms += 1
        log.info("fleet: this process leads (token %d)", fence.token)
        try:
            async with anyio.create_task_group() as tg:
                jobs_scope = anyio.CancelScope(deadline=self._deadline)
                tg.start_soon(self._jobs, fence, jobs, jobs_scope, tg.cancel_scope)
                ended = await self._renew(fence, jobs_scope)
                self._fence, self._ended = None, ended  # not leader from here, before the jobs see their end
                tg.cancel_scope.cancel()
        finally:
            self._fence = None
            if self._ended is None:  # cancelled from outside: step down
                with anyio.CancelScope(shield=True), anyio.move_on_after(1.0), contextlib.suppress(FleetError):
                    await self.release(fence)
        log.info("fleet: this process stopped leading (token %d): %s", fence.token, self._ended or "shutting down")

    async def _renew(self, fence: Fence, jobs_scope: anyio.CancelScope) -> str:
        while True:
            await anyio.sleep(self.renew_s)
            sent = anyio.current_time()
            if sent >= self._deadline:
                return "its deadline passed"
            ok: bool | None = None
            with anyio.move_on_after(self._deadline - sent):
                try:
                    ok = await self.renew_once(fence)
                except FleetError as exc:
                    self.redis.note("leader lease renewal", exc)
            if ok:
                self._deadline = jobs_scope.deadline = sent + self.ttl_s - self.margin_s
            elif ok is False:
                return "the lease is another's"
            elif anyio.current_time() >= self._deadline:
                return "its deadline passed without a renewal"

    async def _jobs(
        self, fence: Fence, jobs: Sequence[LeaderJob], scope: anyio.CancelScope, lead: anyio.CancelScope
    ) -> None:
        with scope:
            async with anyio.create_task_group() as tg:
                for job in jobs:
                    tg.start_soon(self._job, fence, job, lead)
            await anyio.sleep_forever()  # jobs that return leave the lease held until it is lost

    async def _job(self, fence: Fence, job: LeaderJob, lead: anyio.CancelScope) -> None:
        attempt = 0
        while True:
            try:
                await job(fence)
                return
            except FencedError:
                self._fence, self._ended = None, "a fenced write was refused"
                lead.cancel()
                return
            except Exception as exc:
                name = getattr(job, "__name__", repr(job))
                await self.redis.pause(attempt, f"leader job {name}", exc, traceback=True)
                attempt += 1

    def __repr__(self) -> str:
        return f"Leadership({self.pid!r}, leader={self.is_leader})"
