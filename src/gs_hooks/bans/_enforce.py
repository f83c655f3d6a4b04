"""Bringing bans into force on live sessions: drop the player's cached tokens, kick every live session, ``on_ban``.

One pass per batch, in the batch's order: the cached tokens of every banned player first (no checkpoint lies
between the book marking the rows enforced and this, so a login racing the batch finds no cached token), then for
each ban its kicks and its ``on_ban``. The game's callbacks are called directly and awaited only when they return
an awaitable, so a batch against sync callbacks makes no coroutine or task per ban.

A ban lifted or replaced while an earlier kick was awaited is skipped. If the pass is cut short (a callback was
cancelled; a raising callback is logged below us and the pass goes on), the rows not done, the one in progress
included, are handed back to the book, whose timer kicks what is left of their sessions and calls their
``on_ban`` (the sessions of the one in progress that its kick did not reach were closed by the kicker).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ._memo import message_memo
from ._model import BanDetails, BanEvent, BanRow, Current, KickBanned

__all__ = ["Enforcer", "OnBanFn"]

log = logging.getLogger("gs_hooks.bans")

OnBanFn = Callable[[BanEvent], Awaitable[Any] | None]
"""``on_ban`` as the book calls it: returns None, or an awaitable to await."""


class Enforcer:
    """Kicks the sessions of bans coming into force and tells the game.

    Args:
        kick: ``(player_key, message, details) -> sessions kicked``, or an awaitable of it (awaited).
        on_ban: called with a :class:`BanEvent` per ban; may return an awaitable (awaited).
        on_ban_now: instead of ``on_ban``, returns it (or None) when a batch starts (a game may set it late).
        forget_token: drops the player's cached token verifications.
    """

    def __init__(
        self,
        *,
        kick: KickBanned | None = None,
        on_ban: OnBanFn | None = None,
        on_ban_now: Callable[[], OnBanFn | None] | None = None,
        forget_token: Callable[[str], object] | None = None,
    ) -> None:
        self.kick = kick
        self.on_ban = on_ban
        self.on_ban_now = on_ban_now
        self.forget_token = forget_token

    async def enforce(
        self, due: Sequence[BanRow], current: Current, hand_back: Callable[[Sequence[BanRow]], None]
    ) -> int:
        """Enforce ``due`` (rows the book has just marked enforced), in order. Returns sessions kicked.

        Args:
            due: the rows.
            current: the book's row of a key now (a row that is no longer it was lifted or replaced: skipped).
            hand_back: called with the rows not done when the pass is cut short (then the exception propagates).
        """
        self._forget_tokens(due)
        kick = self.kick
        on_ban = self.on_ban
        if on_ban is None and self.on_ban_now is not None:
            on_ban = self.on_ban_now()
        message_of = message_memo()  # a batch's bans mostly end together: one message for them
        kicked = done = 0
        try:
            for row in due:
                if current(row.key) is row:
                    ban = row.ban
                    n = 0
                    if kick is not None:
                        details = BanDetails(
                            source=ban.source,
                            status=ban.status,
                            starts_at=ban.starts_at,
                            ends_at=ban.ends_at,
                            message=ban.message,
                        )
                        sent = kick(ban.player_key, message_of(row), details)
                        n = sent if isinstance(sent, int) else await sent
                        kicked += n
                    if on_ban is not None:
                        pending = on_ban(BanEvent(player_key=ban.player_key, ban=ban, sessions_kicked=n))
                        if pending is not None:
                            await pending
                done += 1
        except BaseException:
            hand_back(due[done:])
            raise
        return kicked

    def _forget_tokens(self, due: Sequence[BanRow]) -> None:
        forget_token = self.forget_token
        if forget_token is None:
            return
        for row in due:
            try:
                forget_token(row.ban.player_key)
            except Exception:
                log.exception("dropping cached tokens of a banned player failed")
