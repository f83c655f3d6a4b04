"""The session registry: every live connection, indexed by id, player and server id.

Sync core: every mutation is a plain ``*_nowait`` method (no awaits, no IO), so it is cheap, atomic with
respect to the event loop, and usable from any backend. The async parts (calling the game's ``on_kick``) live
in :mod:`gs_hooks._setup`.

Indexes: ``_by_id`` (session id → Session), ``_by_player`` (player id → {session id: Session}),
``_by_server`` (server id → {session id: Session}) and ``_players_on_server`` (server id → logged-in count), so
"sessions of player X" and "count on server S" are O(1).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any, Literal

import msgspec

from .._exceptions import DuplicateLoginError

__all__ = ["Session", "SessionEvent", "SessionRegistry"]

Closer = Callable[[], Any]


class Session(msgspec.Struct, kw_only=True, gc=False, weakref=False):
    """One live connection.

    Attributes:
        id: unique (per registry) session id.
        server_id: the server id the session counts towards.
        channel: game channel (free text, "" when unused).
        remote: peer address (host, port) when known.
        connected_at: epoch seconds of the connection.
        player_id: the player bound by login, None before.
        logged_in_at: epoch seconds of the login, None before.
        attrs: the game's own attributes (created on first use).
        closer: the adapter's default kick (closes the connection) used when the game gives no ``on_kick``.
    """

    id: int
    server_id: str
    channel: str = ""
    remote: tuple[str, int] | None = None
    connected_at: float = 0.0
    player_id: str | None = None
    logged_in_at: float | None = None
    attrs: dict[str, Any] | None = None
    closer: Closer | None = None
    closed: bool = False

    def __repr__(self) -> str:
        return (
            f"Session(id={self.id}, server_id={self.server_id!r}, player_id={self.player_id!r}, "
            f"channel={self.channel!r}, remote={self.remote!r})"
        )


class SessionEvent(msgspec.Struct, frozen=True):
    """An open/close/login event for observers.

    Attributes:
        kind: ``open``, ``login`` or ``close``.
        session: the session concerned.
    """

    kind: Literal["open", "login", "close"]
    session: Session


Observer = Callable[[SessionEvent], None]


class SessionRegistry:
    """Live sessions with O(1) lookups by id, by player and by server id.

    Args:
        default_server_id: server id of sessions that do not name one.
        duplicate_login: ``allow``, ``kick_older`` or ``refuse_newer``.
        time: callable returning epoch seconds (the injected clock's ``time``).
    """

    __slots__ = (
        "_by_id",
        "_by_player",
        "_by_server",
        "_ids",
        "_observers",
        "_players_on_server",
        "_time",
        "default_server_id",
        "duplicate_login",
    )

    def __init__(
        self,
        *,
        default_server_id: str = "0",
        duplicate_login: Literal["allow", "kick_older", "refuse_newer"] = "kick_older",
        time: Callable[[], float] | None = None,
    ) -> None:
        import time as _time

        self.default_server_id = default_server_id
        self.duplicate_login = duplicate_login
        self._time = time or _time.time
        self._ids = itertools.count(1)
        self._by_id: dict[int, Session] = {}
        self._by_player: dict[str, dict[int, Session]] = {}
        self._by_server: dict[str, dict[int, Session]] = {}
        self._players_on_server: dict[str, int] = {}
        self._observers: list[Observer] = []

    # -- mutations (sync core) -------------------------------------------------------------------------------

    def open_nowait(
        self,
        *,
        server_id: str | None = None,
        channel: str = "",
        remote: tuple[str, int] | None = None,
        closer: Closer | None = None,
    ) -> Session:
        """Register a new connection and return its session."""
        sid = server_id or self.default_server_id
        session = Session(
            id=next(self._ids),
            server_id=sid,
            channel=channel,
            remote=remote,
            connected_at=self._time(),
            closer=closer,
        )
        self._by_id[session.id] = session
        bucket = self._by_server.get(sid)
        if bucket is None:
            bucket = self._by_server[sid] = {}
        bucket[session.id] = session
        if self._observers:
            self._notify(SessionEvent("open", session))
        return session

    def close_nowait(self, session: Session) -> bool:
        """Unregister a session. Returns False when it was already closed (a no-op)."""
        if self._by_id.pop(session.id, None) is None:
            return False
        session.closed = True
        bucket = self._by_server[session.server_id]
        del bucket[session.id]
        if not bucket:
            del self._by_server[session.server_id]
        pid = session.player_id
        if pid is not None:
            self._unbind(session, pid)
        if self._observers:
            self._notify(SessionEvent("close", session))
        return True

    def bind_player_nowait(self, session: Session, player_id: str) -> list[Session]:
        """Bind a logged-in player to a session, applying the duplicate-login policy.

        Returns:
            The older sessions of the same player that must be kicked (``kick_older`` policy), else [].

        Raises:
            DuplicateLoginError: the policy is ``refuse_newer`` and the player already has a session.
            ValueError: the session is closed or already bound to another player.
        """
        if session.closed or session.id not in self._by_id:
            raise ValueError("cannot bind a player to a closed session")
        if session.player_id is not None:
            if session.player_id == player_id:
                return []
            raise ValueError("session is already bound to another player")
        existing = self._by_player.get(player_id)
        older: list[Session] = []
        if existing:
            if self.duplicate_login == "refuse_newer":
                raise DuplicateLoginError(f"player {player_id!r} is already logged in")
            if self.duplicate_login == "kick_older":
                older = list(existing.values())
        session.player_id = player_id
        session.logged_in_at = self._time()
        if existing is None:
            existing = self._by_player[player_id] = {}
        existing[session.id] = session
        self._players_on_server[session.server_id] = self._players_on_server.get(session.server_id, 0) + 1
        if self._observers:
            self._notify(SessionEvent("login", session))
        return older

    def _unbind(self, session: Session, pid: str) -> None:
        sessions = self._by_player.get(pid)
        if sessions is not None:
            sessions.pop(session.id, None)
            if not sessions:
                del self._by_player[pid]
        n = self._players_on_server.get(session.server_id, 0) - 1
        if n > 0:
            self._players_on_server[session.server_id] = n
        else:
            self._players_on_server.pop(session.server_id, None)

    # -- observers ---------------------------------------------------------------------------------------------

    def add_observer(self, observer: Observer) -> Callable[[], None]:
        """Call ``observer(SessionEvent)`` on every open/login/close. Returns a function that removes it."""
        self._observers.append(observer)

        def remove() -> None:
            if observer in self._observers:
                self._observers.remove(observer)

        return remove

    def _notify(self, event: SessionEvent) -> None:
        for observer in tuple(self._observers):
            try:
                observer(event)
            except Exception:  # an observer must not break the registry
                import logging

                logging.getLogger("gs_hooks.sessions").exception("session observer failed")

    # -- queries -------------------------------------------------------------------------------------------------

    def get(self, session_id: int) -> Session | None:
        """The live session with that id, or None."""
        return self._by_id.get(session_id)

    def sessions_of(self, player_id: str) -> tuple[Session, ...]:
        """Live sessions of a player (usually zero or one)."""
        sessions = self._by_player.get(player_id)
        return tuple(sessions.values()) if sessions else ()

    def sessions_on(self, server_id: str) -> tuple[Session, ...]:
        """Live sessions counted towards a server id."""
        bucket = self._by_server.get(server_id)
        return tuple(bucket.values()) if bucket else ()

    def count_connections(self, server_id: str) -> int:
        """Connections on a server id, logged in or not (O(1))."""
        bucket = self._by_server.get(server_id)
        return len(bucket) if bucket else 0

    def count_players(self, server_id: str) -> int:
        """Logged-in sessions on a server id (O(1))."""
        return self._players_on_server.get(server_id, 0)

    def server_ids(self) -> tuple[str, ...]:
        """Server ids that have at least one live session."""
        return tuple(self._by_server)

    def player_ids(self) -> tuple[str, ...]:
        """Players with at least one live session."""
        return tuple(self._by_player)

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Session]:
        return iter(tuple(self._by_id.values()))

    def __contains__(self, session: object) -> bool:
        return isinstance(session, Session) and self._by_id.get(session.id) is session

    def __repr__(self) -> str:
        return f"SessionRegistry(sessions={len(self._by_id)}, players={len(self._by_player)})"
