"""The admin API's kick and owner lookup across the fleet (:class:`FleetAdmin`, the ops layer's ``FleetOps``).

An operator calls one process's ``POST admin/kick``; that process kicks the player's sessions it holds, and asks
the processes that may hold others through their inboxes (verb ``admin_kick``, :mod:`._ask`), waiting for their
counts at most ``GS_HOOKS_FLEET_ADMIN_TIMEOUT_S``:

- under ``kick_older`` and ``refuse_newer`` the player's owner key names the one process that may hold a live
  session: it is asked when it is another *live* process (a dead one's sessions are gone with it: no wait);
- under ``allow`` there is no owner key (a player may be on many processes): every other live member is asked.

A process that does not answer in time, or that could not be asked, is reported *unreached* (its sessions may still
be live); so is Redis itself when it cannot be reached (:data:`~gs_hooks._fleet_ops.REDIS_UNREACHED`). The asked
process kicks with the same reason and message through its kicker (counted in its ``gs_hooks_kicks_total`` by
reason, logged on ``gs_hooks.admin`` with the asking process), answering once its sessions are out of the registry
(their ``on_kick`` runs under the usual grace). A request carries the asker's deadline on Redis's clock; one read
past it (less the time an answer needs: a process paused, an inbox re-read) is not acted on, so a later login of the
player is not kicked by a request the operator was told did not reach that process.
"""

from __future__ import annotations

import logging

import anyio
import msgspec

from .._fleet_ops import REDIS_UNREACHED, PlayerOwner, RemoteKick
from ..sessions._kicker import Kicker
from ..sessions._registry import SessionRegistry
from ._ask import Asker
from ._membership import Membership
from ._presence import Presence
from ._protocol import StreamEntry
from ._redis import FleetError

__all__ = ["OP_ADMIN_KICK", "FleetAdmin"]

log = logging.getLogger("gs_hooks.admin")

_ANSWER_MARGIN_MS = 200  # a request read this close to its deadline is not acted on: the answer would come late
OP_ADMIN_KICK = "admin_kick"  # an inbox message: kick a player's sessions here for another process's admin API


class _KickRequest(msgspec.Struct, array_like=True, frozen=True):
    player: str
    reason: str
    message: str
    reply: str
    deadline_ms: int  # Redis's clock: the asker stops waiting then


class _KickAnswer(msgspec.Struct, array_like=True, frozen=True):
    pid: str
    kicked: int


_REQUEST = msgspec.msgpack.Decoder(_KickRequest)
_ANSWER = msgspec.msgpack.Decoder(_KickAnswer)
_ENCODE = msgspec.msgpack.Encoder()


class FleetAdmin:
    """The fleet side of the admin API's kick and sessions (see the module docstring).

    Args:
        asker: the request/reply machinery.
        presence: the owner keys.
        membership: the live members (asked under ``allow``).
        registry: this process's sessions (its ``duplicate_login`` policy is the fleet's).
        kicker: kicks this process's sessions when another process asks.
        timeout_s: the longest a kick waits for the other processes' answers.

    Attributes:
        asked: kick requests sent to other processes; answered: kick requests this process answered.
    """

    def __init__(
        self,
        asker: Asker,
        presence: Presence,
        membership: Membership,
        registry: SessionRegistry,
        kicker: Kicker,
        *,
        timeout_s: float,
    ) -> None:
        self.asker = asker
        self.presence = presence
        self.membership = membership
        self.registry = registry
        self.kicker = kicker
        self._timeout_s = timeout_s
        self.asked = 0
        self.answered = 0

    @property
    def pid(self) -> str:
        """This process's id in the fleet."""
        return self.asker.pid

    @property
    def timeout_s(self) -> float:
        """The longest a kick waits for another process's answer."""
        return self._timeout_s

    # -- the asking side ---------------------------------------------------------------------------------------

    async def owner(self, player: str) -> PlayerOwner | None:
        """The process owning ``player`` in Redis, or None (no owner key, or not one gs_hooks wrote).

        Raises:
            FleetError: Redis could not be reached.
        """
        try:
            owner = await self.presence.get(player)
        except ValueError:
            return None
        if owner is None:
            return None
        here = owner.pid == self.pid
        return PlayerOwner(pid=owner.pid, live=here or await self.asker.live(owner.pid), here=here)

    async def _targets(self, player: str) -> list[str]:
        """The other live processes that may hold a live session of ``player``. Raises FleetError."""
        if self.registry.duplicate_login == "allow":  # no owner key: any process may hold some
            _, live = await self.membership.members()
            return [m.pid for m in live if m.pid != self.pid]
        found = await self.owner(player)
        return [found.pid] if found is not None and found.live and not found.here else []

    async def kick_elsewhere(self, player: str, reason: str, message: str) -> RemoteKick:
        """Kick ``player``'s sessions on the other processes that may hold them (see the module docstring). The
        whole (the owner lookup, the requests, the answers) takes at most ``timeout_s``, also when Redis hangs.

        Returns:
            Each answering process's count, and the processes (or Redis) not reached. Never raises for Redis.
        """
        deadline = anyio.current_time() + self._timeout_s
        targets: list[str] | None = None
        with anyio.move_on_after(self._timeout_s):
            try:
                targets = await self._targets(player)
            except FleetError as exc:
                self.asker.redis.note("looking up a player's process for an admin kick", exc)
        if targets is None:  # Redis failed or hung: the owner is unknown
            return RemoteKick(unreached=(REDIS_UNREACHED,))
        if not targets:
            return RemoteKick()
        sent: list[str] = []
        raw: list[bytes] = []
        with anyio.move_on_after(deadline - anyio.current_time()):
            try:
                sent, reply_key = await self._send(player, reason, message, targets, deadline)
                if sent:
                    await self.asker.wait(reply_key, deadline - anyio.current_time(), count=len(sent), got=raw)
            except FleetError as exc:
                self.asker.redis.note("forwarding an admin kick", exc)
        counts: dict[str, int] = {}
        for item in raw:
            try:
                answer = _ANSWER.decode(item)
            except msgspec.DecodeError:
                continue
            if answer.pid in sent:
                counts[answer.pid] = answer.kicked
        return RemoteKick(counts=counts, unreached=tuple(pid for pid in targets if pid not in counts))

    async def _send(
        self, player: str, reason: str, message: str, targets: list[str], deadline: float
    ) -> tuple[list[str], str]:
        """Ask each target (a failed send leaves that one unreached, not the others); returns those asked and the
        reply key. The request carries the asker's deadline on Redis's clock: the owner acts only before it."""
        request, reply_key = self.asker.new_reply()
        deadline_ms = await self.asker.now_ms() + int((deadline - anyio.current_time()) * 1000)
        body = _ENCODE.encode(_KickRequest(player, reason, message, reply_key, deadline_ms))
        sent: list[str] = []
        for pid in targets:
            try:
                await self.asker.send(pid, OP_ADMIN_KICK, request, body)
            except FleetError as exc:
                self.asker.redis.note("forwarding an admin kick", exc)
                continue
            sent.append(pid)
            self.asked += 1
        return sent, reply_key

    # -- the answering side ------------------------------------------------------------------------------------

    async def on_request(self, entry: StreamEntry) -> None:
        """The inbox verb ``admin_kick``: kick the player's sessions here and answer with the count."""
        try:
            request = _REQUEST.decode(entry.body)
        except msgspec.DecodeError as exc:
            self.asker.redis.note("decoding an admin kick request", exc)
            return
        await self.asker.soon(self._answer, entry, request)

    async def _answer(self, entry: StreamEntry, request: _KickRequest) -> None:
        try:
            if await self._late(request):
                log.warning(
                    "admin: kick of player %r from process %s read after its deadline: not acted on",
                    request.player,
                    entry.origin,
                    extra={"action": "kick", "player": request.player, "peer": entry.origin},
                )
                return
        except FleetError as exc:
            self.asker.redis.note("answering an admin kick", exc)
            return
        sessions = self.registry.sessions_of(request.player)
        result = self.kicker.kick_nowait(sessions, request.reason, request.message)  # on_kick runs apart
        kicked = result if isinstance(result, int) else await result
        log.info(
            "admin: kick by process %s: player %r (reason %r): %d sessions",
            entry.origin,
            request.player,
            request.reason,
            kicked,
            extra={"action": "kick", "peer": entry.origin, "player": request.player, "reason": request.reason},
        )
        try:
            await self.asker.reply(request.reply, _ENCODE.encode(_KickAnswer(self.pid, kicked)))
        except FleetError as exc:
            self.asker.redis.note("answering an admin kick", exc)
            return
        self.answered += 1

    async def _late(self, request: _KickRequest) -> bool:
        """Whether the asker has given up (or nearly: the answer must reach it in time) on ``request``. Raises
        FleetError."""
        return await self.asker.now_ms() > request.deadline_ms - _ANSWER_MARGIN_MS

    def __repr__(self) -> str:
        return f"FleetAdmin({self.pid!r}, asked={self.asked}, answered={self.answered})"
