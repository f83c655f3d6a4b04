"""One process's place in the fleet: the Redis connection, membership, the leader lease, the inbox, and the parts
other capabilities plug in (the ban stream, leader-only jobs, inbox verbs), run as one component.

Start: :class:`Fleet` checks Redis (``maxmemory-policy`` must be ``noeviction``; on trio it refuses, redis.asyncio
being asyncio-only): a bad setup is a :class:`~gs_hooks.ConfigError` raised by ``hooks.start()``. When Redis cannot
be reached at start, the process starts anyway and runs on its own: bans are enforced locally and kept in the
outbox, the maintenance watcher keeps its state, readiness says the fleet is not ready (naming Redis, never a
password), and the connection is retried with a jittered backoff; once Redis answers (and passes the check) the
parts start and the outbox is forwarded. A Redis found evicting only then is logged as an error and the fleet
stays off (and not ready) until the policy is fixed (re-checked every ``RECHECK_CONFIG_S``).

Parts, once connected: the heartbeat (which also refreshes :attr:`Fleet.members`), the lease (leader-only jobs run
while this process leads), the inbox reader (when a verb is registered), and the tasks capabilities added
(:meth:`Fleet.add_task`; those marked ``wait`` are waited for before the component reports started, bounded by
``START_WAIT_S``: the ban stream's first reload, so a process started after a ban refuses the player at once).

Shutdown (``aclose``, before the hooks cancel their task group): the flush steps run first (the ban outbox is
published as far as Redis allows, bounded), then the parts stop (a held lease is released, so another process
leads at once), then this process leaves the membership; the connection closes when the component ends.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel

from .._clock import Clock
from .._config import FleetConfig
from .._exceptions import ConfigError
from .._health import ComponentHealth
from ._admin import FleetAdmin
from ._bans import BanSync
from ._ccu_leader import FleetCcuLeader
from ._ccu_sink import FleetSink
from ._leader import LeaderJob, Leadership
from ._logins import FleetLogins
from ._membership import Membership, new_process_id
from ._protocol import Cursor, Keys, MemberInfo, StreamEntry
from ._redis import FleetError, FleetRedis, refuse_trio
from ._stream import StreamReader
from ._webstore import FleetWebstore

__all__ = ["START_WAIT_S", "Fleet", "InboxHandler", "Task"]

log = logging.getLogger("gs_hooks.fleet")

START_WAIT_S = 10.0
"""The longest the component waits at start for the tasks marked ``wait`` (then it starts anyway, logged)."""
RECHECK_CONFIG_S = 30.0
"""How often a Redis found unusable after start (evicting keys) is checked again."""
FLUSH_S = 3.0
"""The longest the flush steps may take at shutdown (Redis slow or gone: what is left waits in the outbox)."""

InboxHandler = Callable[[StreamEntry], Awaitable[None]]
"""Handles one inbox message of a verb (at-least-once delivery: handlers must be idempotent)."""
Task = Callable[..., Coroutine[Any, Any, None]]
"""A part: ``async def run(*, task_status)``, run until cancelled once Redis is connected."""


class Fleet:
    """This process in the fleet (``hooks.fleet``); a component of the hooks (name ``fleet``).

    Args:
        config: the fleet settings (``config.fleet``).
        clock: the injected clock (backoff sleeps, leader jobs).
        server_ids: the CCU server ids this process serves (its membership says so).
        redis: the connection (made from ``config`` by default).

    Attributes:
        pid: this process's id in the fleet (host, OS pid and a random part: a restarted process is a new member).
        keys: the fleet's Redis keys.
        redis: the connection.
        membership: the heartbeat.
        leadership: the leader lease.
        members: the live members at the last heartbeat (this process included once it is connected).
        connected: Redis answered the start-up check (the parts run).
        bans: the ban stream's publisher and reader (set by the install).
        logins: duplicate login across the fleet, the login flow's claim step (set by the install).
        ccu: the leader's CCU job, freezing and sending the sums (set by the install when CCU reporting is on).
        ccu_sink: the sampler's sink writing this process's counts to the fleet (likewise).
        webstore: the web-store callback asking the player's process (set by the install when the route is on).
        admin: the admin API's kick and owner lookup across the fleet (set by the install).
    """

    name = "fleet"

    def __init__(
        self,
        config: FleetConfig,
        *,
        clock: Clock,
        server_ids: Iterable[str] = (),
        redis: FleetRedis | None = None,
    ) -> None:
        refuse_trio()
        self.config = config
        self.clock = clock
        self.redis = redis or FleetRedis(config, clock=clock)
        self.keys = Keys(config.prefix, config.game)
        self.pid = new_process_id()
        self.membership = Membership(
            self.redis,
            self.keys,
            self.pid,
            heartbeat_s=config.heartbeat_s,
            member_ttl_s=config.member_ttl_s,
            server_ids=server_ids,
        )
        self.leadership = Leadership(
            self.redis, self.keys, self.pid, ttl_s=config.lease_ttl_s, renew_s=config.lease_renew_s
        )
        self.members: tuple[MemberInfo, ...] = ()
        self.connected = False
        self.bans: BanSync | None = None
        self.logins: FleetLogins | None = None
        self.ccu: FleetCcuLeader | None = None
        self.ccu_sink: FleetSink | None = None
        self.webstore: FleetWebstore | None = None
        self.admin: FleetAdmin | None = None
        self._jobs: list[LeaderJob] = []
        self._tasks: list[tuple[str, Task, bool]] = []
        self._flushes: list[Callable[[], Awaitable[Any]]] = []
        self._inbox: dict[str, InboxHandler] = {}
        self._inbox_reloads: list[Callable[[], Awaitable[None]]] = []
        self._problem: tuple[str, float] | None = None
        self._parts: anyio.abc.TaskGroup | None = None
        self._stopped: anyio.Event | None = None  # events are made in run(): setup() may run outside any loop
        self._ready: anyio.Event | None = None
        self._waiting: set[str] = set()
        self._closing = False
        self._started = False

    # -- what capabilities plug in (before start) ---------------------------------------------------------------

    def _before_start(self, what: str) -> None:
        if self._started:
            raise RuntimeError(f"fleet: {what} must be added before the hooks start")

    def add_leader_job(self, job: LeaderJob) -> None:
        """Run ``job(fence)`` while this process leads (cancelled when it stops; restarted after a failure)."""
        self._before_start("leader jobs")
        self._jobs.append(job)

    def add_task(self, name: str, run: Task, *, wait: bool = False) -> None:
        """Run ``run(task_status=...)`` once Redis is connected, until shutdown.

        Args:
            name: for logs.
            run: the task; it calls ``task_status.started()`` when ready.
            wait: the component reports started only once this task is ready (bounded by ``START_WAIT_S``).
        """
        self._before_start("tasks")
        self._tasks.append((name, run, wait))

    def add_flush(self, flush: Callable[[], Awaitable[Any]]) -> None:
        """Run ``flush()`` first at shutdown, while Redis is still in use (bounded by ``FLUSH_S`` in all)."""
        self._flushes.append(flush)

    def on_inbox(self, op: str, handler: InboxHandler) -> None:
        """Handle inbox messages of verb ``op`` (sent to this process by others; e.g. a duplicate-login kick)."""
        self._before_start("inbox verbs")
        self._inbox[op] = handler

    def on_inbox_reload(self, handler: Callable[[], Awaitable[None]]) -> None:
        """Called when the inbox had to be reloaded (messages may have been lost: re-check what they would say)."""
        self._before_start("inbox reload handlers")
        self._inbox_reloads.append(handler)

    # -- queries ------------------------------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        """Whether this process leads now (holds the lease and its deadline has not passed)."""
        return self.leadership.is_leader

    async def refresh_members(self) -> tuple[MemberInfo, ...]:
        """Read the live members now (and keep them in :attr:`members`). Raises FleetError when unreachable."""
        _, live = await self.membership.members()
        self.members = tuple(live)
        return self.members

    def health(self) -> ComponentHealth:
        """Not ready while Redis cannot be reached or refuses (the error names its URL, never the password), or
        while it was found unusable after start (evicting keys). No IO."""
        if self._problem is not None:
            error, since = self._problem
            return ComponentHealth(name=self.name, ok=False, error=error, since=since)
        h = self.redis.health()
        return ComponentHealth(name=self.name, ok=h.ok, error=h.error, since=h.since)

    # -- the component ------------------------------------------------------------------------------------------

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Connect (or keep trying), start the parts, run until cancelled.

        Raises:
            ConfigError: on trio, or Redis evicts keys (checked at start when Redis answers).
        """
        self._started = True
        refuse_trio()
        self._stopped = anyio.Event()
        try:
            try:
                await self.redis.start()
            except FleetError:
                log.warning(
                    "fleet: Redis unreachable at start (%s); this process runs on its own until it answers: bans "
                    "are enforced here and kept in the outbox, then forwarded",
                    self.redis.health().error,
                )
            else:
                self.connected = True
            async with anyio.create_task_group() as tg:
                self._parts = tg
                if self.connected:
                    await self._start_parts(tg)
                else:
                    tg.start_soon(self._connect_later, tg)
                task_status.started()
                await anyio.sleep_forever()
            self._stopped.set()  # the parts stopped (aclose): the connection stays open until the hooks cancel us
            await anyio.sleep_forever()
        finally:
            self._parts = None
            self._stopped.set()
            with anyio.CancelScope(shield=True):
                await self.redis.aclose()

    async def _connect_later(self, tg: anyio.abc.TaskGroup) -> None:
        attempt = 0
        while True:
            await anyio.lowlevel.checkpoint()
            try:
                await self.redis.start()
            except FleetError as exc:
                await self.redis.pause(attempt, "connecting to Redis", exc)
                attempt += 1
                continue
            except ConfigError as exc:
                if self._problem is None or self._problem[0] != str(exc):
                    log.error("fleet: %s; the fleet stays off until this is fixed", exc)
                    self._problem = (str(exc), self.clock.time())
                await self.clock.sleep(RECHECK_CONFIG_S)
                continue
            self._problem = None
            self.connected = True
            log.info("fleet: Redis reachable; joining the fleet as %s", self.pid)
            await self._start_parts(tg)
            return

    async def _start_parts(self, tg: anyio.abc.TaskGroup) -> None:
        tg.start_soon(self._heartbeat)
        tg.start_soon(self.leadership.run, list(self._jobs))
        if self._inbox:
            reader = StreamReader(
                self.redis,
                self.keys.inbox(self.pid),
                self.keys.epoch,
                block_ms=int(self.config.block_s * 1000),
            )
            tg.start_soon(reader.run, None, _Inbox(self))
        self._waiting = {name for name, _, wait in self._tasks if wait}
        for name, run, wait in self._tasks:
            if wait:
                tg.start_soon(self._start_waited, name, run, tg)
            else:
                tg.start_soon(run)
        with anyio.move_on_after(START_WAIT_S) as scope:
            while self._waiting:
                self._ready = anyio.Event()
                await self._ready.wait()
        if scope.cancelled_caught:
            log.warning("fleet: %s not ready after %.0f s; starting anyway", ", ".join(self._waiting), START_WAIT_S)

    async def _start_waited(self, name: str, run: Task, tg: anyio.abc.TaskGroup) -> None:
        try:
            await tg.start(run)
        finally:
            self._waiting.discard(name)
            if self._ready is not None:
                self._ready.set()

    async def _heartbeat(self) -> None:
        while True:
            try:
                await self.membership.beat()
                await self.refresh_members()
            except FleetError as exc:
                self.redis.note("heartbeat", exc)
            await self.clock.sleep(self.config.heartbeat_s)

    async def aclose(self) -> None:
        """Flush (outbox), stop the parts (release the lease), leave the membership. Bounded in time."""
        if self._closing:
            return
        self._closing = True
        if self.connected and self._flushes:
            with anyio.move_on_after(FLUSH_S):
                for flush in self._flushes:
                    try:
                        await flush()
                    except Exception as exc:
                        self.redis.note("flushing at shutdown", exc)
        parts, stopped = self._parts, self._stopped
        if parts is not None and stopped is not None:
            parts.cancel_scope.cancel()
            with anyio.move_on_after(FLUSH_S):
                await stopped.wait()
        if self.connected:
            with anyio.move_on_after(1.0):
                await self.membership.leave()

    def __repr__(self) -> str:
        return f"Fleet({self.pid!r}, leader={self.is_leader}, members={len(self.members)})"


class _Inbox:
    """The inbox reader's handler: each message to its verb's handler (unknown verbs logged and skipped)."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet

    async def entries(self, entries: Sequence[StreamEntry], cursor: Cursor) -> None:
        for entry in entries:
            handler = self.fleet._inbox.get(entry.op)
            if handler is None:
                log.warning("fleet: inbox message %s has an unknown verb %r: skipped", entry.event, entry.op[:40])
                continue
            await handler(entry)

    async def reload(self, reason: str, cursor: Cursor) -> None:
        if reason != "new":
            for handler in self.fleet._inbox_reloads:
                await handler()
