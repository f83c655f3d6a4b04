"""Request/reply between the processes of a fleet, over their inboxes: what a forwarded request is made of.

A process that needs another one to act (answer a web-store profile, kick a player's sessions) puts a request in
that process's inbox (a stream entry with a verb, :func:`~gs_hooks.fleet._stream.publish_one`) that names a
*reply key*; the other process pushes its answer there (RPUSH, the key expiring after ``REPLY_TTL_MS``), and the
asker waits on it with BLPOP, in waits kept below the socket timeout, until its deadline. Several processes may
answer on one reply key (a request sent to many): the asker collects as many answers as it sent requests.

:class:`Asker` holds both sides for one process: :meth:`Asker.live` (whether a process is a live member now),
:meth:`Asker.send`, :meth:`Asker.wait`, :meth:`Asker.reply`, :meth:`Asker.now_ms` (Redis's clock, on which a
request's deadline is set and checked: a request the asker gave up on is not acted on), and the task group answers
run in (:meth:`Asker.run`, :meth:`Asker.soon`: a slow answer never holds up the inbox). The verbs' payloads are theirs
(``_webstore``, ``_admin``).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import anyio.abc

from ._lua import REPLY
from ._membership import INBOX_TTL_MS
from ._protocol import Keys, block_ms
from ._redis import FleetRedis
from ._stream import Outgoing, publish_one

__all__ = ["REPLY_TTL_MS", "Asker"]

REPLY_TTL_MS = 30_000
"""An answer nobody waits for any more expires."""


class Asker:
    """Asking other processes of the fleet, and answering them (see the module docstring).

    Args:
        redis: the connection.
        keys: the fleet's keys.
        pid: this process's id.
        inbox_maxlen: approximate length inboxes are trimmed to.
    """

    def __init__(self, redis: FleetRedis, keys: Keys, pid: str, *, inbox_maxlen: int = 10_000) -> None:
        self.redis = redis
        self.keys = keys
        self.pid = pid
        self.inbox_maxlen = inbox_maxlen
        self._tg: anyio.abc.TaskGroup | None = None

    # -- the asking side ---------------------------------------------------------------------------------------

    async def now_ms(self) -> int:
        """Redis's time (epoch ms). Raises FleetError."""
        seconds, micros = await self.redis.call("TIME")
        return int(seconds) * 1000 + int(micros) // 1000

    async def live(self, pid: str) -> bool:
        """Whether process ``pid`` is a live member of the fleet now (its heartbeat has not lapsed).

        Raises:
            FleetError: Redis could not be reached.
        """
        expiry = await self.redis.call("ZSCORE", self.keys.members, pid)
        return expiry is not None and float(expiry) > await self.now_ms()

    def new_reply(self) -> tuple[str, str]:
        """A fresh (request id, reply key)."""
        request = secrets.token_hex(8)
        return request, self.keys.reply(request)

    async def send(self, pid: str, op: str, request: str, body: bytes) -> None:
        """Put a request (verb ``op``, id ``request``) in process ``pid``'s inbox. Raises FleetError."""
        item = Outgoing(op=op, event=request, body=body)
        await publish_one(
            self.redis, self.keys.inbox(pid), self.pid, item, maxlen=self.inbox_maxlen, ttl_ms=INBOX_TTL_MS
        )

    async def wait(
        self, reply_key: str, timeout_s: float, *, count: int = 1, got: list[bytes] | None = None
    ) -> list[bytes]:
        """Wait for ``count`` answers on ``reply_key`` (BLPOP, in waits kept below the socket timeout), at most
        ``timeout_s``; returns the answers that came (fewer when the deadline passed).

        Args:
            reply_key: the key the answers are pushed to.
            timeout_s: the deadline.
            count: how many answers to wait for.
            got: the list to append the answers to (so that those received stay known when Redis fails).

        Raises:
            FleetError: Redis could not be reached (``got`` holds the answers received before).
        """
        answers = [] if got is None else got
        step_ms = block_ms(timeout_s, self.redis.config.socket_timeout_s)
        with anyio.move_on_after(timeout_s):
            while len(answers) < count:
                popped = await self.redis.call("BLPOP", reply_key, step_ms / 1000)
                if popped is not None:
                    answers.append(bytes(popped[1]))
        return answers

    # -- the answering side ------------------------------------------------------------------------------------

    async def reply(self, reply_key: str, body: bytes) -> None:
        """Push an answer to ``reply_key``, which expires ``REPLY_TTL_MS`` later (one script: a cancellation or a
        lost connection between the push and the expiry cannot leave the key forever). Raises FleetError."""
        await self.redis.script(REPLY, [reply_key], [body, REPLY_TTL_MS])

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Hold the task group the answers run in; until cancelled."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            task_status.started()
            try:
                await anyio.sleep_forever()
            finally:
                self._tg = None

    async def soon(self, answer: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
        """Run ``answer(*args)`` apart (in :meth:`run`'s task group), or here when that does not run."""
        if self._tg is not None:
            self._tg.start_soon(answer, *args)
        else:
            await answer(*args)

    def __repr__(self) -> str:
        return f"Asker({self.pid!r})"
