"""Duplicate login across the fleet: ``GS_HOOKS_DUPLICATE_LOGIN`` applied to every process's sessions at once.

:class:`FleetLogins` is the login flow's claim step in fleet mode (``LoginFlow.claims``). At login, after the token
and before the ban check and the bind, it claims the player's owner key (:meth:`Presence.claim`, one script):

- ``kick_older``: the claim takes the key; an older session on another live process gets a kick notice in that
  process's inbox (same script), which kicks it there (:meth:`on_kick_notice`); an older session on this process
  is kicked here at once (not at this login's bind: this login may yet fail, and the older one lost its key).
- ``refuse_newer``: the claim fails while a live session of any process owns the player
  (:class:`~gs_hooks.DuplicateLoginError`), after the same local check the registry makes.

Whatever order the answers come back in, the newest claim wins: a claim that learns an older claim of this process
was replaced marks it superseded, and a login whose own claim was superseded while it ran (by a newer login here,
or a notice from another process) is refused instead of binding. A session's end releases its key (batched,
compare-and-delete: never another session's claim); a failed login releases its claim at once.

Every ``recheck_s`` the process compares the owner keys of its logged-in players with its own sessions (MGET in
chunks) and kicks a session that no longer owns its player: a lost notice or a healed partition still ends in one
session. While Redis cannot be reached a login makes the local checks only (logged once); its player is claimed
when Redis answers again, and if another process's session took the player meanwhile, the policy decides between
the two by login time (``kick_older``: the newest stays; ``refuse_newer``: the oldest stays).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping

import anyio
import anyio.abc

from .._clock import Clock
from .._exceptions import DuplicateLoginError
from .._signal import Doorbell
from ..sessions._kicker import Kicker
from ..sessions._registry import SessionRegistry
from ..sessions._session import Session, SessionEvent
from ._presence import Presence
from ._protocol import Owner, StreamEntry, decode_kick
from ._redis import FleetError

__all__ = ["FleetLogins"]

log = logging.getLogger("gs_hooks.fleet")

_RELEASE_BATCH = 500
_KICK_MESSAGE = "logged in from another session"


class FleetLogins:
    """One process's side of duplicate login across the fleet.

    Args:
        presence: the owner keys (claims, releases, the re-check).
        registry: this process's sessions (its duplicate-login policy is the fleet's).
        kicker: kicks a session that lost its player (reason ``duplicate_login``).
        clock: the injected clock (the re-check period, backoff).
        recheck_s: how often the owner keys of this process's players are compared with its sessions.

    Attributes:
        claims_waiting: claims waiting for Redis now.
        kicked: sessions this process kicked because another process's login took their player.
    """

    name = "fleet_logins"

    def __init__(
        self, presence: Presence, registry: SessionRegistry, kicker: Kicker, *, clock: Clock, recheck_s: float
    ) -> None:
        self.presence = presence
        self.pid = presence.pid
        self.registry = registry
        self.kicker = kicker
        self.clock = clock
        self.recheck_s = recheck_s
        self.claims_waiting = 0
        self.kicked = 0
        self._by_session: dict[int, tuple[str, Owner]] = {}  # claimed (or bound unclaimed) here, by session id
        self._held: dict[str, Owner] = {}  # player -> the owner value of its session bound here
        self._unclaimed: set[str] = set()  # players bound here while Redis could not be reached
        self._superseded: set[str] = set()  # owner values of this process a newer claim replaced
        self._releases: list[tuple[str, Owner]] = []
        self._releasing: dict[str, Owner] = {}  # player -> the owner value of its ended session, not released yet
        self._release_bell = Doorbell()
        self._recheck_bell = Doorbell()
        self._down_logged = False
        self._stop_observing = registry.add_observer(self._observe)

    @property
    def held(self) -> Mapping[str, Owner]:
        """This process's logged-in players and their owner values."""
        return self._held

    # -- the login flow's step ---------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def claim(self, session: Session, user: str) -> AsyncIterator[None]:
        """Claim ``user`` for ``session`` across the fleet around the ban check and the bind.

        Raises:
            DuplicateLoginError: ``refuse_newer`` and a live session owns the player on some process; or a newer
                login of the player took it while this one ran.
        """
        owner = await self._claim(session, user)
        if owner is not None and self.registry.sessions_of(user):
            await self._confirm(session, user, owner)
        try:
            yield
        except BaseException:
            if owner is not None:
                self._drop(session.id)
            raise
        if owner is not None and self._by_session.get(session.id) == (user, owner) and session.player_id == user:
            self._held[user] = owner

    async def _claim(self, session: Session, user: str) -> Owner | None:
        policy = self.registry.duplicate_login
        if policy == "allow" or session not in self.registry or session.player_id is not None:
            return None  # nothing to claim: every session may stay, or the bind refuses or is a no-op
        if policy == "refuse_newer" and self.registry.sessions_of(user):
            raise DuplicateLoginError(f"player {user!r} is already logged in (policy refuse_newer)")
        owner = self.presence.owner(session.id, int(self.clock.time() * 1000))
        self._by_session[session.id] = (user, owner)  # before the await: a close meanwhile releases the claim
        replace = self._releasing.get(user)  # this process's ended session of the player: not a live owner
        self.claims_waiting += 1
        try:
            result = await self.presence.claim(user, owner, policy, event=f"login:{session.id}", replace=replace)
        except FleetError as exc:
            self._unreachable(exc)
            self._unclaimed.add(user)
            return owner
        finally:
            self.claims_waiting -= 1
        if result.outcome == "refused":
            self._drop(session.id)
            raise DuplicateLoginError(f"player {user!r} is logged in on another server (policy refuse_newer)")
        previous = result.previous
        if previous is not None and previous.pid == self.pid and int(previous.session) in self._by_session:
            self._superseded.add(previous.encode())  # a login of it still running loses; a bound one is kicked
            await self._kick_local(user, previous, _KICK_MESSAGE)  # now: this login may yet fail (a ban...)
        if owner.encode() in self._superseded:  # a newer claim took it meanwhile (here, or a notice)
            self._drop(session.id)
            raise DuplicateLoginError(f"player {user!r}: a newer login took the player while this one ran")
        self._unclaimed.discard(user)
        if session not in self.registry:  # closed while the claim ran: give the key back now
            self._drop(session.id)
        return owner

    async def _confirm(self, session: Session, user: str, owner: Owner) -> None:
        """Before a bind that would kick this process's live session of the player (the local ``kick_older``),
        check that this login still owns the player: the local order of binds is not the order of claims in Redis,
        and a newer claim's notice may not have come yet. Without this, a superseded login binding late kicked the
        newest session, and then its own notice kicked it: no session left (1,000 concurrent logins on 4
        processes, tests/fleet/test_fleet_logins_processes.py). The check awaits Redis, so a kick notice handled
        meanwhile (which finds this login unbound and only marks it superseded) is checked again after it.

        Raises:
            DuplicateLoginError: a newer login holds the player.
        """
        try:
            current: Owner | None = await self.presence.get(user)
        except FleetError as exc:
            self._unreachable(exc)
            current = None
        # a notice that came while we asked found this login not bound yet and only marked it superseded
        if owner.encode() in self._superseded or (current is not None and current != owner):
            self._drop(session.id)
            raise DuplicateLoginError(f"player {user!r}: a newer login took the player while this one ran")

    def _unreachable(self, exc: FleetError) -> None:
        if not self._down_logged:
            self._down_logged = True
            log.warning(
                "fleet: Redis unreachable at login (%s): duplicate logins are checked on this process only until "
                "it answers; the players are claimed then",
                exc,
            )
        self._recheck_bell.ring()

    def _drop(self, session_id: int) -> None:
        """Forget a session's claim and release its key (when it still holds this session)."""
        entry = self._by_session.pop(session_id, None)
        if entry is None:
            return
        player, owner = entry
        if self._held.get(player) == owner:
            del self._held[player]
            self._unclaimed.discard(player)
        self._superseded.discard(owner.encode())
        self._releases.append((player, owner))
        self._releasing[player] = owner
        self._release_bell.ring()

    def _observe(self, event: SessionEvent) -> None:
        if event.kind == "close" and event.session.id in self._by_session:
            self._drop(event.session.id)

    # -- kicks -------------------------------------------------------------------------------------------------

    async def on_kick_notice(self, entry: StreamEntry) -> None:
        """An inbox message: a newer login on another process took a player from this process's session."""
        try:
            notice = decode_kick(entry.body)
            previous = Owner.parse(notice.previous)
        except ValueError as exc:
            self.presence.redis.note("decoding a kick notice", exc)
            return
        if self._by_session.get(int(previous.session)) != (notice.player, previous):
            return  # that session is gone already (or the notice came twice)
        self._superseded.add(notice.previous)
        await self._kick_local(notice.player, previous, "logged in on another server")

    async def _kick_local(self, player: str, owner: Owner, message: str) -> None:
        """Kick this process's session ``owner`` of ``player`` if it is bound to it now (a login of it still
        running is refused by its claim instead)."""
        session = self.registry.get(int(owner.session))
        if session is not None and session.player_id == player:
            kicked = self.kicker.kick_nowait((session,), "duplicate_login", message)  # an async on_kick runs apart
            self.kicked += kicked if isinstance(kicked, int) else await kicked

    # -- background: releases and the re-check ------------------------------------------------------------------

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Release the keys of ended sessions (batched) and re-check ownership every ``recheck_s``; until
        cancelled."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._release_loop)
            tg.start_soon(self._recheck_loop)
            task_status.started()

    async def _release_loop(self) -> None:
        attempt = 0
        while True:
            await self._release_bell.wait()
            self._release_bell.answer()
            try:
                await self.release_pending()
                attempt = 0
            except FleetError as exc:
                self._release_bell.ring()
                await self.presence.redis.pause(attempt, "releasing owner keys", exc)
                attempt += 1

    async def release_pending(self) -> int:
        """Release the keys of the sessions that ended (compare-and-delete, in batches); returns how many were
        deleted. Raises FleetError (what was not released stays queued)."""
        deleted = 0
        while self._releases:
            batch = self._releases[:_RELEASE_BATCH]
            deleted += await self.presence.release_many(batch)
            del self._releases[: len(batch)]
            for player, owner in batch:
                if self._releasing.get(player) == owner:
                    del self._releasing[player]
        return deleted

    async def release_all(self) -> None:
        """At shutdown: release every key this process holds (best effort; a process gone from the membership
        is not live anyway, so its keys do not refuse anyone)."""
        self._releases += [(p, o) for p, o in self._held.items() if p not in self._unclaimed]
        self._held.clear()
        with contextlib.suppress(FleetError):
            await self.release_pending()

    async def _recheck_loop(self) -> None:
        while True:
            period = min(self.recheck_s, 1.0) if self._unclaimed else self.recheck_s
            with anyio.move_on_after(period):  # real time: ownership is Redis's, not the game's clock
                await self._recheck_bell.wait()
            self._recheck_bell.answer()
            try:
                await self.recheck()
            except FleetError as exc:
                self.presence.redis.note("ownership re-check", exc)

    def recheck_soon(self) -> None:
        """Re-check ownership now (the inbox was reloaded: a kick notice may have been lost)."""
        self._recheck_bell.ring()

    async def on_inbox_reload(self) -> None:
        """The inbox's reload hook: re-check at once."""
        self.recheck_soon()

    async def recheck(self) -> tuple[int, int]:
        """Compare the owner keys with this process's sessions once; kick sessions that lost their player, claim
        the players whose key is missing (or that were bound while Redis was unreachable).

        Returns:
            (sessions kicked, players claimed again).

        Raises:
            FleetError: Redis could not be reached.
        """
        snapshot = dict(self._held)
        lost, missing = await self.presence.recheck(snapshot)
        self._unclaimed -= set(snapshot).difference(lost, missing)  # a claim whose answer was lost took the key
        kicked = claimed = 0
        for player in lost + missing:
            owner = snapshot[player]
            if self._held.get(player) != owner:
                continue  # it changed meanwhile (a new login here, a logout)
            if player in missing or player in self._unclaimed:
                won = await self._reclaim(player, owner)
                claimed += won
                if won:
                    continue
            before = self.kicked
            await self._kick_local(player, owner, _KICK_MESSAGE)
            kicked += self.kicked - before
        if self._down_logged and not self._unclaimed:
            self._down_logged = False
        return kicked, claimed

    async def _reclaim(self, player: str, owner: Owner) -> bool:
        """Claim a player whose key is missing or who was bound while Redis was unreachable. Against another live
        session, the policy decides by login time. Returns True when this session owns the player now."""
        result = await self.presence.claim(player, owner, "refuse_newer")  # over a missing key or a dead owner
        current = result.previous
        if result.outcome != "refused" or current is None:
            self._unclaimed.discard(player)
            return True
        newest_wins = self.registry.duplicate_login == "kick_older"
        mine, theirs = (owner.login_ms, owner.pid), (current.login_ms, current.pid)
        if (mine > theirs) == newest_wins:
            await self.presence.claim(player, owner, "kick_older")  # the other session gets a kick notice
            self._unclaimed.discard(player)
            return True
        self._unclaimed.discard(player)
        return False

    def __repr__(self) -> str:
        return f"FleetLogins({self.pid!r}, held={len(self._held)}, unclaimed={len(self._unclaimed)})"
