"""The hooks' lifecycle as data: the states, the legal moves, and one object that makes them.

::

    NEW ──start──▶ STARTING ──started──▶ RUNNING ──aclose──▶ CLOSING ──▶ CLOSED
     │                │                     │                   ▲
     │                └── start failed ─────┼───────────────────┼──▶ CLOSED
     └── aclose before start ───────────────┼───────────────────┘
                                            └── a component took the task group down ──▶ CRASHED ──aclose──▶ CLOSING

A move not in :data:`TRANSITIONS` raises :class:`LifecycleError` (a bug, or ``start()`` called twice). ``CLOSED``
is final; ``aclose()`` of closed hooks is a no-op and moves nothing.
"""

from __future__ import annotations

import enum
import time

from ._exceptions import LifecycleError

__all__ = ["TRANSITIONS", "Lifecycle", "State"]


class State(enum.Enum):
    """Where the hooks are in their life."""

    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    CRASHED = "crashed"
    CLOSING = "closing"
    CLOSED = "closed"


TRANSITIONS: dict[State, frozenset[State]] = {
    State.NEW: frozenset({State.STARTING, State.CLOSED}),
    State.STARTING: frozenset({State.RUNNING, State.CLOSED}),
    State.RUNNING: frozenset({State.CRASHED, State.CLOSING}),
    State.CRASHED: frozenset({State.CLOSING}),
    State.CLOSING: frozenset({State.CLOSED}),
    State.CLOSED: frozenset(),
}
"""Every legal move: ``TRANSITIONS[current]`` is the set of states the hooks may go to from ``current``."""


class Lifecycle:
    """The current :class:`State`, changed only through :meth:`move`.

    Attributes:
        state: the current state.
        running_since: wall-clock epoch seconds of the move to ``RUNNING`` (None before; the uptime's start).
    """

    def __init__(self) -> None:
        self.state = State.NEW
        self.running_since: float | None = None

    def move(self, target: State) -> None:
        """Go to ``target``.

        Raises:
            LifecycleError: ``target`` is not reachable from the current state in one move.
        """
        if target not in TRANSITIONS[self.state]:
            raise LifecycleError(f"cannot go from {self.state.value!r} to {target.value!r}")
        self.state = target
        if target is State.RUNNING:
            self.running_since = time.time()

    @property
    def started(self) -> bool:
        """Between ``start()`` and ``aclose()``: running, or running with a crashed component."""
        return self.state in (State.RUNNING, State.CRASHED)

    @property
    def closed(self) -> bool:
        """Closing or closed: nothing new may begin."""
        return self.state in (State.CLOSING, State.CLOSED)

    def __repr__(self) -> str:
        return f"Lifecycle({self.state.value})"
