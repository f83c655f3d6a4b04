"""The maintenance lifecycle (pure): :class:`MaintenanceState` plus :data:`MAINTENANCE_TRANSITIONS` is all of it.

:func:`derive_maintenance` maps what the last poll said (and the time) to the state the app should be in, and
:func:`maintenance_path` spells out the legal moves to get there; :func:`due_warnings` says which warnings are due.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Final

import msgspec

from ._dates import parse_date
from ._models import MaintenanceInfo

__all__ = [
    "MAINTENANCE_TRANSITIONS",
    "MaintenanceDetails",
    "MaintenanceState",
    "derive_maintenance",
    "due_warnings",
    "maintenance_path",
]


class MaintenanceState(enum.Enum):
    """Where the app stands with respect to maintenance."""

    NONE = "none"  # no maintenance known
    ANNOUNCED = "announced"  # a window is set and begins in the future
    ACTIVE = "active"  # a window is in progress
    ENDED = "ended"  # the last window ended (behaves like NONE)


MAINTENANCE_TRANSITIONS: Final[dict[MaintenanceState, frozenset[MaintenanceState]]] = {
    # A self-transition is a change of the window (moved, extended, new message).
    MaintenanceState.NONE: frozenset({MaintenanceState.ANNOUNCED, MaintenanceState.ACTIVE}),
    MaintenanceState.ANNOUNCED: frozenset(
        {MaintenanceState.ANNOUNCED, MaintenanceState.ACTIVE, MaintenanceState.NONE}  # NONE: cancelled
    ),
    MaintenanceState.ACTIVE: frozenset({MaintenanceState.ACTIVE, MaintenanceState.ENDED}),
    MaintenanceState.ENDED: frozenset({MaintenanceState.ANNOUNCED, MaintenanceState.ACTIVE}),
}


class MaintenanceDetails(msgspec.Struct, frozen=True, kw_only=True):
    """One maintenance window (the ``details`` of maintenance kicks, changes and notices).

    Attributes:
        type_code: ``APP`` (set for the game) or ``SYSTEM`` (Gamebase-wide).
        begins_at / ends_at: the window (aware datetimes; None when Gamebase gave none).
        message: the maintenance message to show players.
        url: a page with details, when set.
        reason: the maintenance reason (simple launching only).
    """

    type_code: str | None = None
    begins_at: datetime | None = None
    ends_at: datetime | None = None
    message: str = ""
    url: str | None = None
    reason: str | None = None

    @classmethod
    def from_info(cls, info: MaintenanceInfo) -> MaintenanceDetails:
        """Convert Gamebase's window (ISO strings) to details.

        Raises:
            ValueError: a date is unreadable.
        """
        return cls(
            type_code=info.type_code,
            begins_at=parse_date(info.begin_date),
            ends_at=parse_date(info.end_date),
            message=info.message or info.reason or "",
            url=info.url or None,
            reason=info.reason,
        )


def _window_state(w: MaintenanceDetails, now: float) -> MaintenanceState:
    begin = w.begins_at.timestamp() if w.begins_at is not None else None
    end = w.ends_at.timestamp() if w.ends_at is not None else None
    if end is not None and now >= end:
        return MaintenanceState.ENDED
    if begin is not None and now < begin:
        return MaintenanceState.ANNOUNCED
    return MaintenanceState.ACTIVE


def derive_maintenance(
    current: MaintenanceState,
    windows: Sequence[MaintenanceDetails],
    now: float,
    *,
    under_maintenance: bool = False,
    fresh: bool = True,
) -> tuple[MaintenanceState, MaintenanceDetails | None]:
    """The state the app is in, given the known windows and the time.

    A window is active when ``begin <= now < end`` by our clock (a missing date is open-ended), announced when
    ``now < begin``. ``under_maintenance`` with no window at all is an active window of unknown extent. Only a
    *fresh* answer ends a maintenance: with stale knowledge (the last poll failed) an active state stays active,
    so an outage never ends a maintenance early or makes the gate flap.

    Args:
        current: the state we are in.
        windows: the windows the last successful poll reported.
        now: epoch seconds.
        under_maintenance: Gamebase's ``underMaintenance`` flag (or simple launching status 303).
        fresh: whether ``windows`` come from a poll that just succeeded.

    Returns:
        (state, window): the state to be in and its window (None for NONE/ENDED without a window).
    """
    active = [w for w in windows if _window_state(w, now) is MaintenanceState.ACTIVE]
    if active:
        return MaintenanceState.ACTIVE, min(active, key=_begin_key)
    if under_maintenance and not windows:
        return MaintenanceState.ACTIVE, MaintenanceDetails()
    upcoming = [w for w in windows if _window_state(w, now) is MaintenanceState.ANNOUNCED]
    if current is MaintenanceState.ACTIVE and not fresh:
        return MaintenanceState.ACTIVE, None
    if upcoming:
        return MaintenanceState.ANNOUNCED, min(upcoming, key=_begin_key)
    if current is MaintenanceState.ACTIVE:
        return MaintenanceState.ENDED, None
    if current is MaintenanceState.ANNOUNCED:
        return MaintenanceState.NONE, None
    return current, None


def _begin_key(w: MaintenanceDetails) -> float:
    return w.begins_at.timestamp() if w.begins_at is not None else float("-inf")


def maintenance_path(current: MaintenanceState, target: MaintenanceState) -> list[MaintenanceState]:
    """The legal moves from ``current`` to ``target`` (through ENDED when there is no direct move).

    Raises:
        ValueError: ``target`` cannot be reached from ``current``.
    """
    allowed = MAINTENANCE_TRANSITIONS[current]
    if target in allowed:
        return [target]
    if MaintenanceState.ENDED in allowed and target in MAINTENANCE_TRANSITIONS[MaintenanceState.ENDED]:
        return [MaintenanceState.ENDED, target]
    raise ValueError(f"illegal maintenance transition {current.value} -> {target.value}")


def due_warnings(
    begins_at: float, lead_times: Iterable[float], sent: frozenset[float], now: float
) -> tuple[list[float], float | None]:
    """Which warning lead times are due now, and when the next one is.

    Args:
        begins_at: the window's begin (epoch seconds).
        lead_times: seconds before the begin at which to warn.
        sent: lead times already warned for this window.
        now: epoch seconds.

    Returns:
        (due, next_at): the unsent lead times whose moment has come (send one warning for all of them), and
        the epoch second of the next unsent lead time (None when none is left).
    """
    due: list[float] = []
    next_at: float | None = None
    if now >= begins_at:
        return due, None
    for lead in sorted(set(lead_times), reverse=True):
        if lead in sent:
            continue
        at = begins_at - lead
        if at <= now:
            due.append(lead)
        elif next_at is None or at < next_at:
            next_at = at
    return due, next_at
