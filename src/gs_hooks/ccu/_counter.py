"""CCU counting: socket mode (connected now, from the session registry) and web mode (unique users in a window).

Web mode strategy: time is cut into windows of the grid period (aligned like the grid). Each server id keeps
at most two sets of user ids, the current window's and the previous one's; ``saw_user`` adds to the current set
(O(1)), rotating lazily when a new window starts. The sample for grid instant ``T`` counts the set of the
window that ended at ``T``: the unique users of the trailing period. Memory is bounded by the unique users of
two windows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol

from .._ids import player_id
from ..sessions._registry import SessionRegistry
from ..sessions._session import SessionEvent

__all__ = ["CcuCounter", "SocketCounter", "WebCounter"]


class CcuCounter(Protocol):
    """What the reporter asks at each grid instant."""

    def count(self, server_id: str, instant: float) -> int:
        """The CCU of ``server_id`` for the sample dated at grid instant ``instant`` (epoch seconds)."""
        ...


class SocketCounter:
    """Socket-server mode: players logged in (or connections open) now, per server id.

    Args:
        registry: the session registry.
        count: ``players`` (logged-in sessions) or ``connections`` (all sessions).
    """

    def __init__(self, registry: SessionRegistry, count: Literal["players", "connections"] = "players") -> None:
        if count not in ("players", "connections"):
            raise ValueError(f"count {count!r} is not allowed; use players or connections")
        self._count = registry.count_players if count == "players" else registry.count_connections

    def count(self, server_id: str, instant: float) -> int:
        """Sessions on ``server_id`` now (0 when it has none)."""
        return self._count(server_id)


class _Windows:
    __slots__ = ("current", "index", "previous")

    def __init__(self, index: int) -> None:
        self.index = index
        self.current: set[str] = set()
        self.previous: set[str] = set()


class WebCounter:
    """Web-server mode: unique users that made a request in the trailing period, per server id.

    Args:
        server_ids: the server ids reported; users seen on other ids are not counted (and not kept).
        period_s: window length (the grid period; 120 s in production).
        time: the clock's ``time`` (epoch seconds).
        default_server_id: the server id of ``saw_user`` calls that give none.
    """

    def __init__(
        self,
        server_ids: tuple[str, ...],
        *,
        period_s: float,
        time: Callable[[], float],
        default_server_id: str | None = None,
    ) -> None:
        if period_s <= 0:
            raise ValueError("period_s must be > 0")
        self._period = float(period_s)
        self._time = time
        self._default = default_server_id if default_server_id is not None else server_ids[0]
        self._windows: dict[str, _Windows] = {sid: _Windows(self._index(time())) for sid in server_ids}

    def _index(self, t: float) -> int:
        return int(t // self._period)

    def _rotate(self, w: _Windows, index: int) -> None:
        if index == w.index:
            return
        if index == w.index + 1:
            w.previous, w.current = w.current, w.previous
            w.current.clear()
        elif index > w.index:
            w.previous.clear()
            w.current.clear()
        else:  # the clock went back: keep the sets, nothing is double counted within a window
            return
        w.index = index

    def saw_user(self, user_id: str | int, server_id: str | None = None) -> None:
        """Record that ``user_id`` made a request now on ``server_id`` (default server id when None).

        Raises:
            TypeError / ValueError: ``user_id`` cannot be a player id (an ``int`` is normalised).
            ValueError: a server id this process does not report.
        """
        user_id = player_id(user_id, what="user id")
        sid = self._default if server_id is None else server_id
        w = self._windows.get(sid)
        if w is None:
            raise ValueError(f"server id {sid!r} is not reported by this process (GS_HOOKS_SERVER_ID)")
        self._rotate(w, self._index(self._time()))
        w.current.add(user_id)

    def observe(self, event: SessionEvent) -> None:
        """Registry observer: a login counts as a request by that player (other server ids are ignored)."""
        session = event.session
        if event.kind == "login" and session.player_id and session.server_id in self._windows:
            self.saw_user(session.player_id, session.server_id)

    def count(self, server_id: str, instant: float) -> int:
        """Unique users seen on ``server_id`` in the window that ended at grid instant ``instant``."""
        w = self._windows.get(server_id)
        if w is None:
            return 0
        self._rotate(w, max(w.index, self._index(self._time())))
        ended = self._index(instant) - 1
        if ended == w.index:
            return len(w.current)
        if ended == w.index - 1:
            return len(w.previous)
        return 0

    def tracked(self) -> int:
        """User ids held in memory, all server ids together (bounded by two windows of unique users)."""
        return sum(len(w.current) + len(w.previous) for w in self._windows.values())
