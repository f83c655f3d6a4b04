"""What the ban book holds, as data: a :class:`Ban`, the details a kick and ``on_ban`` receive, the book's row,
and where a batch comes from. Pure: no IO, no clock (``tests/test_layers.py`` checks it).

A ban's identity is (source, player, start, end, status). A :class:`BanRow` is a recorded ban plus the book's
bookkeeping: epoch floats for cheap comparisons, the lift tombstone, whether it was enforced and whether the
persistence has it. Every type here is a ``gc=False`` msgspec struct: they reference no cycles, so the collector
never visits the thousands a batch makes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Literal, Protocol

import msgspec

from .._ids import player_id
from .._time import to_timestamp

__all__ = [
    "LOCAL",
    "PERMANENT_MESSAGE",
    "Ban",
    "BanDetails",
    "BanEvent",
    "BanKey",
    "BanRow",
    "BanStatus",
    "BatchOrigin",
    "Current",
    "KickBanned",
    "OnBan",
    "default_ban_message",
    "until_message",
]

BanStatus = Literal["permanent", "temporary"]

BanKey = tuple[str, str]
"""``(source, player_key)``: one row per source and player."""


class Ban(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One ban of one player by one source (strings and dates only: never in a reference cycle, so not tracked
    by the garbage collector, like :class:`BanDetails` and :class:`BanEvent`).

    Attributes:
        player_key: the session registry's player id (an ``int`` given here is normalised to its decimal string).
        source: ``hive`` (suspension webhook), ``gamebase`` (ban history) or ``api`` (``hooks.ban``).
        status: ``permanent`` or ``temporary``.
        starts_at: when the ban starts (aware datetime).
        ends_at: when it ends (aware datetime), None for a permanent ban.
        message: a message for the player (may be empty).
    """

    player_key: str
    source: str
    status: BanStatus
    starts_at: datetime
    ends_at: datetime | None = None
    message: str = ""

    def __post_init__(self) -> None:
        """Raises TypeError / ValueError: the player key cannot be a player id, or the dates do not fit."""
        key = self.player_key
        checked = player_id(key, what="ban player key")
        if checked is not key:
            msgspec.structs.force_setattr(self, "player_key", checked)
        if self.starts_at.tzinfo is None or (self.ends_at is not None and self.ends_at.tzinfo is None):
            raise ValueError("ban dates must be aware datetimes (e.g. tzinfo=gs_hooks.KST)")
        if self.status == "permanent" and self.ends_at is not None:
            raise ValueError("a permanent ban has no end date")
        if self.status == "temporary" and self.ends_at is None:
            raise ValueError("a temporary ban needs an end date")

    def in_force(self, now: datetime | float) -> bool:
        """Whether the ban holds at ``now`` (started, not ended)."""
        ts = to_timestamp(now)
        if self.starts_at.timestamp() > ts:
            return False
        return self.ends_at is None or ts < self.ends_at.timestamp()


class BanDetails(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The ``details`` of a :class:`~gs_hooks.KickRequest` with reason ``ban``.

    Attributes:
        source: where the ban came from (``hive``, ``gamebase``, ``api``).
        status: ``permanent`` or ``temporary``.
        starts_at: start of the ban.
        ends_at: end of the ban, None when permanent.
        message: the ban's message.
    """

    source: str
    status: BanStatus
    starts_at: datetime
    ends_at: datetime | None
    message: str


class BanEvent(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What ``on_ban`` receives when a ban comes into force.

    Attributes:
        player_key: the banned player.
        ban: the ban.
        sessions_kicked: how many live sessions of the player were kicked.
    """

    player_key: str
    ban: Ban
    sessions_kicked: int


class OnBan(Protocol):
    """The game's ban callback (sync or async)."""

    def __call__(self, event: BanEvent, /) -> Awaitable[None] | None: ...


KickBanned = Callable[[str, str, BanDetails], "int | Awaitable[int]"]
"""``(player_key, message, details) -> sessions kicked``, or an awaitable of it when a game callback is async."""


class BanRow(msgspec.Struct, gc=False, eq=False):
    """A recorded ban plus the book's bookkeeping (what the persistence stores and loads).

    Attributes:
        ban: the ban.
        key: ``(source, player_key)``.
        start: ``ban.starts_at`` in epoch seconds.
        end: ``ban.ends_at`` in epoch seconds, None when permanent.
        recorded_at: when the book recorded it (epoch seconds).
        lifted_at: when it was lifted (a tombstone), or None.
        enforced: its kicks and ``on_ban`` were done (or handed to the timer, or it was in force at load).
        saved: the persistence has this row (False while it is only in memory).
    """

    ban: Ban
    key: BanKey
    start: float
    end: float | None
    recorded_at: float
    lifted_at: float | None = None
    enforced: bool = False
    saved: bool = True

    @classmethod
    def of(cls, ban: Ban, recorded_at: float, lifted_at: float | None = None) -> BanRow:
        """A saved row for ``ban`` (e.g. read back from the store)."""
        end = ban.ends_at
        return cls(
            ban,
            (ban.source, ban.player_key),
            ban.starts_at.timestamp(),
            None if end is None else end.timestamp(),
            recorded_at,
            lifted_at,
        )

    def lifted(self, now: float) -> BanRow:
        """A new, unsaved tombstone of this row, lifted at ``now``."""
        return BanRow(self.ban, self.key, self.start, self.end, self.recorded_at, now, self.enforced, False)


Current = Callable[[BanKey], BanRow | None]
"""The book's row of a key now, lifted or not (None: the book does not hold it). A persistence calls it when its
write runs; enforcement, to skip a ban lifted or replaced meanwhile."""


class BatchOrigin(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Where a batch of bans or lifts comes from, as the book tells its persistence.

    The sqlite persistence ignores it. Fleet mode's persistence uses it in the same transaction as the rows: a
    local batch (a webhook, ``hooks.ban``, the poller) also writes an outbox entry to publish; a batch read from
    the fleet's stream is not published again, and moves the stream cursor.

    Attributes:
        remote: the batch was published by another process (read from the fleet's stream).
        cursor: the stream entry that carried a remote batch (None for a local one).
    """

    remote: bool = False
    cursor: str | None = None


LOCAL = BatchOrigin()
"""A batch made by this process."""

PERMANENT_MESSAGE = "You are permanently banned."


def default_ban_message(ban: Ban) -> str:
    """The kick message used when a ban carries none."""
    if ban.ends_at is None:
        return PERMANENT_MESSAGE
    return until_message(ban.ends_at)


def until_message(ends_at: datetime) -> str:
    """The default kick message of a ban that ends at ``ends_at``."""
    return f"You are banned until {ends_at.strftime('%Y-%m-%d %H:%M:%S %Z')}."
