"""The game-facing ban methods of :class:`~gs_hooks.Hooks`: ``ban`` and ``unban`` (source ``api``).

:class:`BansApi` is a mixin: :class:`~gs_hooks.Hooks` inherits these methods and provides :attr:`bans` (the book
the bans install made), :attr:`clock` and :attr:`services`.
"""

from __future__ import annotations

from datetime import datetime

from .._clock import Clock
from .._exceptions import ClosedError
from .._ids import player_id as _player_id
from .._services import Services
from ._book import BanBook
from ._model import Ban

__all__ = ["BansApi"]


class BansApi:
    """Ban and unban players from the game's code (mixed into :class:`~gs_hooks.Hooks`).

    Attributes:
        bans: the ban book.
        clock: the injected clock.
        services: the hooks' services.
    """

    bans: BanBook
    clock: Clock
    services: Services

    async def ban(
        self,
        player: str | int,
        until: datetime | None = None,
        *,
        message: str = "",
    ) -> Ban:
        """Ban a player from now on: kick every live session, call ``on_ban``, refuse logins until ``until``.

        Args:
            player: the player id (as bound to sessions; an ``int`` is normalised to its decimal string).
            until: when the ban ends (aware datetime); None = permanent.
            message: shown to the player (in the kick and the login refusal).

        Returns:
            The recorded ban (source ``api``).

        Raises:
            TypeError: ``player`` is neither a ``str`` nor an ``int``.
            ValueError: ``player`` cannot be a player id (empty, whitespace at an end, ``/``, dots...), or
                ``until`` is naive or not in the future.
        """
        player = _player_id(player)
        self._check_open_for_bans()
        now = self.clock.now()
        if until is not None:
            if until.tzinfo is None:
                raise ValueError("until must be an aware datetime (e.g. tzinfo=gs_hooks.KST)")
            if until <= now:
                raise ValueError(f"until ({until.isoformat()}) is not in the future")
        ban = Ban(
            player_key=player,
            source="api",
            status="permanent" if until is None else "temporary",
            starts_at=now,
            ends_at=until,
            message=message,
        )
        await self.bans.apply([ban])
        return ban

    async def unban(self, player: str | int) -> int:
        """Lift every ban of a player (all sources). Returns the number of bans lifted.

        Raises:
            TypeError / ValueError: ``player`` cannot be a player id (as :meth:`ban`).
        """
        player = _player_id(player)
        self._check_open_for_bans()
        return len(await self.bans.lift(player))

    def _check_open_for_bans(self) -> None:
        if self.services.lifecycle.closed:
            raise ClosedError("hooks are closed")
