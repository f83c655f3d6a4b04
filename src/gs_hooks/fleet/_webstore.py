"""Hive's web-store profile answered whichever process receives it.

Hive calls one URL; the player (``cs_code``, the player id) may be logged in on another process, which is the one
that knows the characters. :class:`FleetWebstore` is the web-store endpoint's callback in fleet mode: when the
player's owner key names another *live* process, the request goes to that process's inbox (verb ``webstore``)
with a reply key, and the answer comes back on a short-lived list (BLPOP; the shared machinery of :mod:`._ask`);
the endpoint's deadline (``GS_HOOKS_HIVE_WEBSTORE_TIMEOUT_S``) bounds the whole (past it Hive gets the usual 500).
Otherwise (the player is here, nowhere, on a process that is gone, or Redis cannot be reached) the game's own
callback answers, as in single-process mode. The owner process answers with its own callback
(:meth:`FleetWebstore.on_request`), under the same deadline; a callback that raises or returns a malformed profile
gives the asker a 500 as it would locally.
"""

from __future__ import annotations

import inspect
import logging

import anyio
import anyio.abc
import msgspec

from .._exceptions import GsHooksError
from ..hive._handlers import WebstoreProfileCallback
from ..hive._protocol import WebstoreProfile
from ._ask import Asker
from ._presence import Presence
from ._protocol import Keys, Owner, StreamEntry
from ._redis import FleetError, FleetRedis

__all__ = ["OP_WEBSTORE", "FleetWebstore", "WebstoreForwardError"]

log = logging.getLogger("gs_hooks.fleet")

OP_WEBSTORE = "webstore"  # an inbox message: answer a web-store profile request for a player logged in here


class WebstoreForwardError(GsHooksError):
    """The owner process answered with an error, or did not answer in time (the endpoint answers 500)."""


class _Request(msgspec.Struct, array_like=True, frozen=True):
    cs_code: str
    reply: str


class _Reply(msgspec.Struct, array_like=True, frozen=True):
    ok: bool
    profile: WebstoreProfile | None = None
    error: str = ""


_REQUEST = msgspec.msgpack.Decoder(_Request)
_REPLY = msgspec.msgpack.Decoder(_Reply)
_ENCODE = msgspec.msgpack.Encoder()


class FleetWebstore:
    """The web-store callback in fleet mode, and the inbox verb that answers other processes' requests.

    Args:
        local: the game's ``webstore_profile`` callback.
        redis: the connection.
        keys: the fleet's keys.
        presence: the owner keys (who has the player).
        timeout_s: the web-store deadline (the asking side waits at most this long; the answering side's callback
            gets as long).
        inbox_maxlen: approximate length inboxes are trimmed to.
        asker: the request/reply machinery (shared with the other verbs; made here when not given).

    Attributes:
        forwarded: requests sent to another process; answered: requests this process answered for another.
    """

    def __init__(
        self,
        local: WebstoreProfileCallback,
        *,
        redis: FleetRedis,
        keys: Keys,
        presence: Presence,
        timeout_s: float,
        inbox_maxlen: int = 10_000,
        asker: Asker | None = None,
    ) -> None:
        self.local = local
        self.redis = redis
        self.keys = keys
        self.presence = presence
        self.pid = presence.pid
        self.timeout_s = timeout_s
        self.inbox_maxlen = inbox_maxlen
        self.asker = asker or Asker(redis, keys, presence.pid, inbox_maxlen=inbox_maxlen)
        self.forwarded = 0
        self.answered = 0

    # -- the asking side ---------------------------------------------------------------------------------------

    async def __call__(self, cs_code: str) -> WebstoreProfile | None:
        """The profile of ``cs_code``: from the process the player is logged in on, else from the local callback.

        Raises:
            WebstoreForwardError: the owner process failed to answer (its callback raised, or no answer in time).
        """
        owner = await self._remote_owner(cs_code)
        if owner is None:
            return await self._call_local(cs_code)
        return await self._forward(owner, cs_code)

    async def _remote_owner(self, cs_code: str) -> Owner | None:
        """The owner of ``cs_code`` when it is another live process; None otherwise (or Redis unreachable)."""
        try:
            owner = await self.presence.get(cs_code)
            if owner is None or owner.pid == self.pid:
                return None
            live = await self.asker.live(owner.pid)
        except (FleetError, ValueError) as exc:
            self.redis.note("looking up a web-store player's process", exc)
            return None
        return owner if live else None

    async def _forward(self, owner: Owner, cs_code: str) -> WebstoreProfile | None:
        request, reply_key = self.asker.new_reply()
        try:
            await self.asker.send(owner.pid, OP_WEBSTORE, request, _ENCODE.encode(_Request(cs_code, reply_key)))
        except FleetError as exc:
            self.redis.note("forwarding a web-store request", exc)
            return await self._call_local(cs_code)
        self.forwarded += 1
        answers = await self.asker.wait(reply_key, self.timeout_s)
        if not answers:
            raise WebstoreForwardError(f"process {owner.pid} did not answer the web-store request in time")
        reply = _REPLY.decode(answers[0])
        if not reply.ok:
            raise WebstoreForwardError(f"process {owner.pid} could not answer the web-store request: {reply.error}")
        return reply.profile

    async def _call_local(self, cs_code: str) -> WebstoreProfile | None:
        result = self.local(cs_code)
        if inspect.isawaitable(result):
            result = await result
        return result

    # -- the answering side ------------------------------------------------------------------------------------

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Hold the task group the answers run in (so a slow callback never holds up the inbox); until
        cancelled. (The install runs the shared :class:`Asker`'s instead.)"""
        await self.asker.run(task_status=task_status)

    async def on_request(self, entry: StreamEntry) -> None:
        """The inbox verb ``webstore``: answer another process's request with the local callback."""
        try:
            request = _REQUEST.decode(entry.body)
        except msgspec.DecodeError as exc:
            self.redis.note("decoding a web-store request", exc)
            return
        await self.asker.soon(self._answer, request)

    async def _answer(self, request: _Request) -> None:
        reply = _Reply(ok=False, error="timeout")
        with anyio.move_on_after(self.timeout_s):
            try:
                profile: object = await self._call_local(request.cs_code)  # a game's callback may break its type
            except Exception as exc:
                log.exception("fleet: the webstore_profile callback raised for another process's request")
                reply = _Reply(ok=False, error=type(exc).__name__)
            else:
                if profile is None or isinstance(profile, WebstoreProfile):
                    reply = _Reply(ok=True, profile=profile)
                else:
                    reply = _Reply(ok=False, error=f"the callback returned a {type(profile).__name__}")
        try:
            await self.asker.reply(request.reply, _ENCODE.encode(reply))
        except FleetError as exc:
            self.redis.note("answering a web-store request", exc)
            return
        self.answered += 1

    def __repr__(self) -> str:
        return f"FleetWebstore({self.pid!r}, forwarded={self.forwarded}, answered={self.answered})"
