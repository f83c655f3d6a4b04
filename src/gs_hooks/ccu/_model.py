"""What CCU delivery works on, as data: a sample's row and its delivery lifecycle, a send plan, a refusal.

Pure: no IO (``tests/test_layers.py`` checks it). Delivery lifecycle, as data (:data:`TRANSITIONS`)::

    pending ──delivered (100/101)──▶ delivered      (kept: the CCU history)
       │  ▲ └──retry (300, transport)──▶ pending     (attempts+1, next_attempt_at = now + backoff)
       │  └──────requeue (operator / config change)── refused
       └──refused (200–204, 301, 302)──▶ refused
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable
from typing import Protocol

import msgspec

from ._protocol import CcuSample

__all__ = [
    "TRANSITIONS",
    "CcuProblem",
    "CcuSampleRow",
    "OnCcuProblem",
    "Plan",
    "SampleKey",
    "SampleState",
    "advance",
    "pending_row",
    "transition",
]

SampleKey = tuple[str, int]
"""``(server id, slot_ts)``: one sample per server id and grid instant."""


class SampleState(enum.Enum):
    """Where a spooled sample stands."""

    PENDING = "pending"
    DELIVERED = "delivered"
    REFUSED = "refused"


#: (state, event) -> next state. Any other move is a bug and raises.
TRANSITIONS: dict[tuple[SampleState, str], SampleState] = {
    (SampleState.PENDING, "delivered"): SampleState.DELIVERED,
    (SampleState.PENDING, "retry"): SampleState.PENDING,
    (SampleState.PENDING, "refused"): SampleState.REFUSED,
    (SampleState.REFUSED, "requeue"): SampleState.PENDING,
}


def transition(state: SampleState, event: str) -> SampleState:
    """The state after ``event``. Raises RuntimeError for a move the lifecycle does not allow."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise RuntimeError(f"CCU sample: {event!r} is not allowed in state {state.value!r}") from None


class CcuSampleRow(msgspec.Struct, frozen=True, kw_only=True):
    """A spooled sample and its delivery state (also a row of the CCU history).

    Attributes:
        server: server id.
        slot_ts: epoch seconds of the grid instant the sample is for.
        date: that instant in KST, ``YYYY-MM-DD HH:MM:SS``.
        game: the game key it was (or will be) sent with.
        user: the CCU.
        reqkey: the sample's deterministic key.
        state: ``pending``, ``delivered`` or ``refused``.
        attempts: sends that got an answer or failed (an attempt cut by a crash is not counted).
        last_code: last result code from the collector (None: none yet, or a transport error).
        last_error: short text of the last failure ("" when none).
        next_attempt_at: epoch seconds before which a pending sample is not resent.
        created_at: epoch seconds the sample was taken.
        delivered_at: epoch seconds of the delivering answer, or None.
    """

    server: str
    slot_ts: int
    date: str
    game: str
    user: int
    reqkey: str
    state: SampleState
    attempts: int = 0
    last_code: int | None = None
    last_error: str = ""
    next_attempt_at: float = 0.0
    created_at: float = 0.0
    delivered_at: float | None = None

    @property
    def key(self) -> SampleKey:
        """``(server, slot_ts)``: the row's identity."""
        return (self.server, self.slot_ts)

    def sample(self) -> CcuSample:
        """The sample to send."""
        return CcuSample(game=self.game, server=self.server, date=self.date, user=self.user, reqkey=self.reqkey)


def pending_row(sample: CcuSample, slot_ts: int, now: float) -> CcuSampleRow:
    """A new sample's row: pending, due now."""
    return CcuSampleRow(
        server=sample.server,
        slot_ts=slot_ts,
        date=sample.date,
        game=sample.game,
        user=sample.user,
        reqkey=sample.reqkey,
        state=SampleState.PENDING,
        next_attempt_at=now,
        created_at=now,
    )


def advance(
    row: CcuSampleRow,
    event: str,
    *,
    code: int | None,
    error: str = "",
    now: float,
    next_attempt_at: float | None = None,
) -> CcuSampleRow:
    """The row after one send's result, in memory: what :meth:`CcuSpool.record_sync` writes for it.

    (For a sample the spool could not record: the reporter holds the row in memory until the spool takes it.)

    Raises:
        RuntimeError: the move is not allowed from the row's state, or the event is unknown.
    """
    if event not in ("delivered", "retry", "refused"):
        raise RuntimeError(f"CCU sample: unknown event {event!r}")
    state = transition(row.state, event)
    attempts = row.attempts + 1
    if event == "delivered":
        return msgspec.structs.replace(
            row, state=state, attempts=attempts, last_code=code, last_error="", delivered_at=now
        )
    if event == "retry":
        return msgspec.structs.replace(
            row,
            state=state,
            attempts=attempts,
            last_code=code,
            last_error=error[:200],
            next_attempt_at=now if next_attempt_at is None else next_attempt_at,
        )
    return msgspec.structs.replace(row, state=state, attempts=attempts, last_code=code, last_error=error[:200])


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    """What the sender does next, from its delivery queue.

    Attributes:
        rows: the rows to send now, oldest slot first.
        next_due: when the next row not in ``rows`` (nor in flight) is due, or None.
        depth: pending samples (taken, not yet confirmed): the backlog metric.
    """

    rows: list[CcuSampleRow]
    next_due: float | None
    depth: int


class CcuProblem(msgspec.Struct, frozen=True, kw_only=True):
    """What ``on_ccu_problem`` receives when the collector refuses a sample for a non-retryable reason.

    Attributes:
        server: server id of the sample.
        date: the sample's KST grid instant.
        user: the CCU it carried.
        reqkey: its reqkey.
        code: the collector's result code (200–204, 301, 302).
        outcome: ``our_fault`` (the data) or ``config_fault`` (the game key).
        message: what the code means and what to do.
    """

    server: str
    date: str
    user: int
    reqkey: str
    code: int | None
    outcome: str
    message: str


class OnCcuProblem(Protocol):
    """The game's ``on_ccu_problem`` callback (sync or async)."""

    def __call__(self, problem: CcuProblem, /) -> Awaitable[None] | None: ...
