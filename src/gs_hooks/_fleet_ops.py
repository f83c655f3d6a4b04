"""What the operator's side asks of fleet mode: the seam between ``ops`` (the admin API) and ``fleet``.

The admin API (``ops``) must not depend on how a fleet is built, and ``fleet`` (a capability) cannot import
``ops`` (an upper layer). So the admin API reads a :class:`FleetOps` (this protocol), which ``fleet`` implements
(``fleet._admin.FleetAdmin``) and ``setup()`` hands to the ops install; without Redis there is none and the admin
API behaves as in a single process.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

__all__ = ["REDIS_UNREACHED", "FleetOps", "PlayerOwner", "RemoteKick"]

REDIS_UNREACHED = "redis"
"""What :attr:`RemoteKick.unreached` holds when Redis itself could not be reached (the owner process unknown).
A process id is never this string: ids are ``host/pid/token``."""


class RemoteKick(msgspec.Struct, frozen=True, kw_only=True):
    """What a kick did on the fleet's other processes.

    Attributes:
        counts: process id -> sessions kicked there, for every process that answered (0 included).
        unreached: the processes asked that did not answer within the deadline (or could not be asked), and
            :data:`REDIS_UNREACHED` when Redis could not be reached: sessions there may still be live.
    """

    counts: dict[str, int] = msgspec.field(default_factory=dict)
    unreached: tuple[str, ...] = ()


class PlayerOwner(msgspec.Struct, frozen=True, kw_only=True):
    """Which process owns a player's session in the fleet (its owner key).

    Attributes:
        pid: the owner process's id.
        live: whether that process is a live member of the fleet now (a dead one's key refuses no one).
        here: whether it is this process.
    """

    pid: str
    live: bool
    here: bool


class FleetOps(Protocol):
    """The fleet as the admin API sees it (implemented by ``gs_hooks.fleet``; see the module docstring)."""

    @property
    def pid(self) -> str:
        """This process's id in the fleet."""
        ...

    @property
    def timeout_s(self) -> float:
        """The longest a kick waits for another process's answer (``GS_HOOKS_FLEET_ADMIN_TIMEOUT_S``)."""
        ...

    async def kick_elsewhere(self, player: str, reason: str, message: str) -> RemoteKick:
        """Kick ``player``'s live sessions on the other processes that may hold them, and wait for their counts.

        Never raises for Redis or a silent process: those are reported in :attr:`RemoteKick.unreached`.
        """
        ...

    async def owner(self, player: str) -> PlayerOwner | None:
        """The process owning ``player`` in Redis, or None (no owner key).

        Raises:
            GsHooksError: Redis could not be reached (the message holds no secret).
        """
        ...
