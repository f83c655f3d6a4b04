"""Membership: which processes are in the fleet now.

Each process sends a heartbeat every ``heartbeat_s``: one script puts its pid in ``P:members`` scored by its
expiry (Redis's clock + ``member_ttl_s``), writes its hash ``P:member:{pid}`` with the same TTL, and keeps its
inbox alive. Readers prune lapsed entries (a dead process is neither counted nor waited for), so nothing depends
on a process saying goodbye; :meth:`Membership.leave` is only quicker.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterable, Mapping

import anyio
import anyio.abc

from ._lua import HEARTBEAT, MEMBERS
from ._protocol import Keys, MemberInfo, decode_member, live_members, make_process_id, member_fields
from ._redis import FleetError, FleetRedis

__all__ = ["INBOX_TTL_MS", "Membership", "new_process_id"]

INBOX_TTL_MS = 86_400_000  # an inbox outlives its process by a day, then expires


def new_process_id() -> str:
    """A fresh process id: this host, this OS pid, and 8 random hex digits (a restarted pid is a new member)."""
    return make_process_id(socket.gethostname(), os.getpid(), secrets.token_hex(4))


class Membership:
    """This process's heartbeat, and the view of the live members.

    Args:
        redis: the connection.
        keys: the fleet's keys.
        pid: this process's id (:func:`new_process_id`).
        heartbeat_s: period of :meth:`run`.
        member_ttl_s: how long a heartbeat keeps this process a member.
        server_ids: the CCU server ids this process serves.
        listener: this process's webhook listener URL, if any (for operators).
        version: gs_hooks's version.
        started_ms: when this process joined (epoch ms; default: Redis's time at the first heartbeat).
    """

    def __init__(
        self,
        redis: FleetRedis,
        keys: Keys,
        pid: str,
        *,
        heartbeat_s: float,
        member_ttl_s: float,
        server_ids: Iterable[str] = (),
        listener: str = "",
        version: str = "",
        started_ms: int | None = None,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.pid = pid
        self.heartbeat_s = heartbeat_s
        self.ttl_ms = int(member_ttl_s * 1000)
        self._server_ids = tuple(server_ids)
        self._listener = listener
        self._version = version
        self._started_ms = started_ms
        self.beats = 0

    @property
    def started_ms(self) -> int | None:
        """When this process joined (Redis's time at its first heartbeat), None before it."""
        return self._started_ms

    def update(self, *, server_ids: Iterable[str] | None = None, listener: str | None = None) -> None:
        """Change what the next heartbeats say."""
        if server_ids is not None:
            self._server_ids = tuple(server_ids)
        if listener is not None:
            self._listener = listener

    async def beat(self) -> int:
        """Send one heartbeat.

        Returns:
            Redis's time (epoch ms) when it was recorded.

        Raises:
            FleetError: Redis could not be reached.
        """
        fields: Mapping[str, str] = {}
        if self._started_ms is not None:
            fields = member_fields(
                host=socket.gethostname(),
                os_pid=os.getpid(),
                started_ms=self._started_ms,
                server_ids=self._server_ids,
                listener=self._listener,
                version=self._version,
            )
        args: list[str | int] = [self.pid, self.ttl_ms, self.keys.inbox(self.pid), INBOX_TTL_MS]
        for name, value in fields.items():
            args += [name, value]
        now = int(await self.redis.script(HEARTBEAT, [self.keys.members, self.keys.member(self.pid)], args))
        if self._started_ms is None:  # the first heartbeat: learn the start time, then write the fields
            self._started_ms = now
            return await self.beat()
        self.beats += 1
        return now

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Heartbeat until cancelled; a failed heartbeat is retried at the next period (logged, rate-limited)."""
        started = False
        while True:
            try:
                await self.beat()
            except FleetError as exc:
                self.redis.note("heartbeat", exc)
            if not started:
                started = True
                task_status.started()
            await self.redis.clock.sleep(self.heartbeat_s)

    async def members(self) -> tuple[int, list[MemberInfo]]:
        """The live members, lapsed ones pruned.

        Returns:
            (Redis's time in epoch ms, the live members in pid order).

        Raises:
            FleetError: Redis could not be reached.
        """
        reply = await self.redis.script(MEMBERS, [self.keys.members], [self.keys.base + "member:"])
        now = int(reply[0])
        found: list[MemberInfo] = []
        for i in range(1, len(reply), 3):
            pid = reply[i].decode()
            flat = reply[i + 2]
            fields = dict(zip(flat[::2], flat[1::2], strict=True))
            found.append(decode_member(pid, int(float(reply[i + 1])), fields))
        return now, live_members(found, now)

    async def leave(self) -> None:
        """Leave the fleet at once (a clean shutdown); best effort, errors ignored."""
        try:
            await self.redis.call("ZREM", self.keys.members, self.pid)
            await self.redis.call("DEL", self.keys.member(self.pid))
        except FleetError:
            pass

    def __repr__(self) -> str:
        return f"Membership({self.pid!r})"
