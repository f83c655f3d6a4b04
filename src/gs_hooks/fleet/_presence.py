"""Presence: which process owns a player's session, across the fleet.

At login one script swaps ``P:owner:{player}`` to (this pid, session, login time) and returns the previous owner.
With ``kick_older`` a previous owner on another *live* process gets a kick notice in its inbox from the same
script (so the swap and the notice cannot be separated by a crash); with ``refuse_newer`` the claim fails while
the owner is a live process's session. A session's end releases the key by compare-and-delete (never another's
claim). Because a notice can still be missed (a process cut off, then healed), every process re-checks its
players' owner keys periodically (:meth:`Presence.recheck`, MGET in chunks) and ends sessions it no longer owns.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Literal

import anyio
import anyio.abc
import msgspec

from ._lua import CLAIM, RELEASE
from ._membership import INBOX_TTL_MS
from ._protocol import Keys, Owner, ownership_diff
from ._redis import Arg, Call, FleetError, FleetRedis

__all__ = ["ClaimResult", "Presence"]

Policy = Literal["kick_older", "refuse_newer"]


class ClaimResult(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What a claim did.

    Attributes:
        outcome: ``claimed`` (this session owns the player now), ``same`` (it already did) or ``refused``
            (``refuse_newer`` and a live session owns it).
        previous: the owner before (the one still owning it when refused), or None.
        notified: True when a kick notice went to the previous owner's inbox (another live process). A previous
            owner on this process is for the caller to kick; one on a dead process needs nothing.
    """

    outcome: Literal["claimed", "same", "refused"]
    previous: Owner | None
    notified: bool


class Presence:
    """Claims, releases and re-checks of player ownership for one process.

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

    def owner(self, session: str | int, login_ms: int) -> Owner:
        """This process's owner value for a session."""
        return Owner(self.pid, str(session), login_ms)

    async def claim(
        self, player: str, owner: Owner, policy: Policy, *, event: str = "", replace: Owner | None = None
    ) -> ClaimResult:
        """Make ``owner`` the owner of ``player``.

        Args:
            player: the player id.
            owner: this process's session (:meth:`owner`).
            policy: ``kick_older`` or ``refuse_newer``.
            event: an id carried by the kick notice (logs).
            replace: an owner value the caller knows is over (its session on this process is gone): the claim
                succeeds over it whatever the policy, and sends it no notice.

        Raises:
            FleetError: Redis could not be reached (the caller falls back to its local checks).
        """
        args: list[Arg] = [
            owner.encode(),
            policy,
            self.keys.inbox_prefix,
            self.inbox_maxlen,
            player,
            event,
            INBOX_TTL_MS,
            replace.encode() if replace is not None else "",
        ]
        outcome, previous, notified = await self.redis.script(CLAIM, [self.keys.owner(player), self.keys.members], args)
        return ClaimResult(
            outcome=outcome.decode(),
            previous=Owner.parse(previous) if previous else None,
            notified=bool(notified),
        )

    async def release(self, player: str, owner: Owner) -> bool:
        """Delete ``player``'s owner key if it still holds ``owner``; True when deleted. Raises FleetError."""
        return bool(await self.redis.script(RELEASE, [self.keys.owner(player)], [owner.encode()]))

    async def release_many(self, items: Sequence[tuple[str, Owner]]) -> int:
        """:meth:`release` for many sessions in one round trip; returns how many keys were deleted."""
        if not items:
            return 0
        calls: list[Call] = [(RELEASE, [self.keys.owner(p)], [o.encode()]) for p, o in items]
        return sum(int(r) for r in await self.redis.scripts(calls))

    async def recheck(self, held: Mapping[str, Owner], *, chunk: int = 500) -> tuple[list[str], list[str]]:
        """Compare the sessions this process holds with the owner keys (MGET in chunks).

        Args:
            held: player -> this process's owner value for each logged-in player.
            chunk: keys per MGET.

        Returns:
            (players now owned by another session: end them here; players whose key is missing: claim again).

        Raises:
            FleetError: Redis could not be reached.
        """
        lost: list[str] = []
        missing: list[str] = []
        players = list(held)
        for start in range(0, len(players), chunk):
            part = players[start : start + chunk]
            values = await self.redis.call("MGET", *(self.keys.owner(p) for p in part))
            gone, absent = ownership_diff({p: held[p].encode() for p in part}, values)
            lost += gone
            missing += absent
        return lost, missing

    async def run_recheck(
        self,
        held: Callable[[], Mapping[str, Owner]],
        on_lost: Callable[[list[str]], Awaitable[None]],
        on_missing: Callable[[list[str]], Awaitable[None]],
        *,
        every_s: float,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Every ``every_s``, :meth:`recheck` what ``held()`` returns and hand the results over; until cancelled.

        Args:
            held: this process's logged-in players and their owner values, now.
            on_lost: ends the local sessions of these players (another session owns them now).
            on_missing: claims these players again (their keys are gone: Redis lost data, or never had them).
            every_s: the period (``FleetConfig.recheck_s``).

        A failed check (Redis unreachable) is logged, rate-limited, and tried again at the next period.
        """
        task_status.started()
        while True:
            await self.redis.clock.sleep(every_s)
            try:
                lost, missing = await self.recheck(held())
            except FleetError as exc:
                self.redis.note("ownership re-check", exc)
                continue
            if lost:
                await on_lost(lost)
            if missing:
                await on_missing(missing)

    async def get(self, player: str) -> Owner | None:
        """The current owner of ``player``, or None. Raises FleetError."""
        value = await self.redis.call("GET", self.keys.owner(player))
        return Owner.parse(value) if value is not None else None

    def __repr__(self) -> str:
        return f"Presence({self.pid!r})"
