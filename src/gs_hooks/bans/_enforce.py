"""Bringing bans into force on live sessions: drop the player's cached tokens, kick every live session, ``on_ban``.

One pass per batch, in the batch's order: the cached tokens of every banned player first (no checkpoint lies
between the book putting the batch in memory and this, so a login racing the batch finds no cached token), then
for each ban, claimed just before (marked enforced: ``BanIndex.claim``), its kicks and its ``on_ban``. The game's
callbacks are called directly and awaited only when they return an awaitable, so a batch against sync callbacks
makes no coroutine or task per ban.

A large batch does not hold the event loop in one piece: before each ban, when ``slice_s`` has passed on
``slice_clock`` since the pass last yielded (or since the batch arrived: putting it in memory counts in the first
slice), the pass yields to the loop, so the game's own tasks (its tick) run between slices. A slice is bounded by
time, not by a count of bans, so it holds whatever the game's ``on_kick`` costs per session; the clock is
``time.perf_counter`` (a C call of ~0.05 µs, read once per ban: ~2 % of a ban's cost). Measured with
``python -m bench bans`` (its ``loop`` figures: a 1 ms ticker beside 2,000 bans against 1,000,000 sessions, which
kick for ~6 ms): a 1 ms slice keeps the ticker's lateness near the slice and adds ~0.1-0.3 ms of yields to the
batch. How it yields is the ``pause`` the book gives it (this module stays free of IO libraries): three
checkpoints in a row, not one (``_book.YIELD_CHECKPOINTS`` says why).

Between slices the world moves on: a ban lifted or replaced meanwhile (as while an awaited callback runs) is not
claimed and so skipped; every ban of the batch refuses logins from the moment the batch is in memory, before the
first kick. If the pass is cut short (cancelled at a yield or in an awaited callback; a raising callback is logged
below us and the pass goes on), the rows not done, the one in progress included, are handed back to the book,
whose timer kicks what is left of their sessions and calls their ``on_ban`` (the sessions of the one in progress
that its kick did not reach were closed by the kicker).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ._memo import message_memo
from ._model import Ban, BanDetails, BanEvent, BanRow, KickBanned

__all__ = ["SLICE_S", "Enforcer", "OnBanFn"]

log = logging.getLogger("gs_hooks.bans")

OnBanFn = Callable[[BanEvent], Awaitable[Any] | None]
"""``on_ban`` as the book calls it: returns None, or an awaitable to await."""

SLICE_S = 0.001
"""How long a batch's enforcement runs before it yields to the event loop (see the module docstring)."""


class Enforcer:
    """Kicks the sessions of bans coming into force and tells the game, yielding to the loop between slices.

    Args:
        pause: yields to the event loop (awaited between slices).
        kick: ``(player_key, message, details) -> sessions kicked``, or an awaitable of it (awaited).
        on_ban: called with a :class:`BanEvent` per ban; may return an awaitable (awaited).
        on_ban_now: instead of ``on_ban``, returns it (or None) when a batch starts (a game may set it late).
        forget_token: drops the player's cached token verifications.
        slice_s: how long a pass runs before it yields to the loop (0: before every ban).
        slice_clock: the monotonic clock slices are measured on, in seconds (real time even when the book runs on
            a fake clock: a slice is the loop's time, not the game's).

    Attributes:
        slice_s: as above, settable (read when a pass starts).
        slice_clock: as above, settable (tests inject one that steps, so a batch yields where they expect).
    """

    def __init__(
        self,
        *,
        pause: Callable[[], Awaitable[object]],
        kick: KickBanned | None = None,
        on_ban: OnBanFn | None = None,
        on_ban_now: Callable[[], OnBanFn | None] | None = None,
        forget_token: Callable[[str], object] | None = None,
        slice_s: float = SLICE_S,
        slice_clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.pause = pause
        self.kick = kick
        self.on_ban = on_ban
        self.on_ban_now = on_ban_now
        self.forget_token = forget_token
        self.slice_s = slice_s
        self.slice_clock = slice_clock

    async def enforce(
        self,
        rows: Sequence[BanRow],
        claim: Callable[[BanRow, float], bool],
        now: float,
        hand_back: Callable[[Sequence[BanRow]], None],
        *,
        since: float | None = None,
    ) -> int:
        """Enforce ``rows`` (started by ``now``), in order, yielding between slices. Returns sessions kicked.

        Args:
            rows: the rows, in the batch's order.
            claim: ``claim(row, now)`` marks the row enforced and says whether to kick it (False: lifted,
                replaced, ended or enforced already, maybe while the pass yielded: skipped).
            now: the batch's time (on the book's clock).
            hand_back: called with the rows not done when the pass is cut short (then the exception propagates):
                the one in progress, and those after it that nothing else has enforced.
            since: when the batch's first slice began, on ``slice_clock`` (the caller's step before, putting
                the batch in memory, counts in it); default: now.
        """
        self._forget_tokens(rows, now)
        kick = self.kick
        on_ban = self.on_ban
        if on_ban is None and self.on_ban_now is not None:
            on_ban = self.on_ban_now()
        message_of = message_memo()  # a batch's bans mostly end together: one message for them
        pause = self.pause
        slice_clock = self.slice_clock
        slice_s = self.slice_s
        yield_at = (slice_clock() if since is None else since) + slice_s
        kicked = done = 0
        claimed = False  # whether the row in progress is ours (claimed by this pass)
        try:
            for row in rows:
                if slice_clock() >= yield_at:
                    await pause()  # the loop runs its other tasks; what they lift or replace, claim sees
                    yield_at = slice_clock() + slice_s
                claimed = claim(row, now)
                if claimed:
                    ban = row.ban
                    n = 0
                    if kick is not None:
                        sent = kick(ban.player_key, message_of(row), _details(ban))
                        n = sent if isinstance(sent, int) else await sent
                        kicked += n
                    if on_ban is not None:
                        pending = on_ban(BanEvent(player_key=ban.player_key, ban=ban, sessions_kicked=n))
                        if pending is not None:
                            await pending
                    claimed = False
                done += 1
        except BaseException:
            rest = rows[done:]
            hand_back([row for i, row in enumerate(rest) if (i == 0 and claimed) or not row.enforced])
            raise
        return kicked

    def _forget_tokens(self, rows: Sequence[BanRow], now: float) -> None:
        forget_token = self.forget_token
        if forget_token is None:
            return
        for row in rows:
            if row.end is not None and row.end <= now:
                continue  # ended already: not enforced, the player's cache stays
            try:
                forget_token(row.ban.player_key)
            except Exception:
                log.exception("dropping cached tokens of a banned player failed")


def _details(ban: Ban) -> BanDetails:
    """The kick's ``details``: what the game may show about the ban."""
    return BanDetails(
        source=ban.source, status=ban.status, starts_at=ban.starts_at, ends_at=ban.ends_at, message=ban.message
    )
