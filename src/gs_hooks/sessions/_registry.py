"""The session registry: every live connection, indexed by server id and by player.

Sync core: every mutation is a plain ``*_nowait`` function (no awaits, no IO), so it is cheap, atomic with
respect to the event loop, and usable from any backend. The async parts (calling the game's ``on_kick``) live
in :mod:`gs_hooks.sessions._kicker`.

Strategy (the registry sits on every connect and disconnect, and may hold a million sessions):

- A :class:`Session` is a ``msgspec.Struct`` with ``gc=False``: no per-object ``__dict__``, no GC header, never
  visited by the cyclic collector. Dicts that hold only such objects are not tracked either, so a full
  ``gc.collect()`` costs the same with a million sessions as with none. (The flip side, as with any
  ``gc=False`` struct: a reference cycle running *through* a session, e.g. a session stored in its own
  ``attrs``, is never collected. Don't build one.)
- Session ids come from one process-wide counter, so an id is never reused and never collides with a session
  of another registry: removal can be a plain ``del bucket[id]``.
- Indexes: ``_servers`` (server id → {session id: Session}; a bucket lives as long as the registry, server ids
  being few), ``_players`` (player id → the Session, or a list of them when several are logged in) and
  ``_players_on`` (server id → logged-in count, kept exact). "Sessions of player X", "count on server S" are
  O(1); ``get(id)`` is O(number of server ids).
- ``open_nowait`` and ``close_nowait`` are closures over those dicts, installed per instance (a closure reads
  its cells faster than a method reads ``self`` attributes); while observers are registered, observing
  variants replace them, so the common case pays no "any observers?" test.
"""

from __future__ import annotations

import logging
import time as _time_module
from collections.abc import Callable, Iterator
from typing import Literal, Protocol

from .._exceptions import DuplicateLoginError
from .._ids import MAX_PLAYER_ID_LEN, lookup_key
from .._ids import player_id as _player_id
from ._session import Connection, Remote, Session, SessionEvent, next_session_id

__all__ = ["SessionRegistry"]

log = logging.getLogger("gs_hooks.sessions")


DuplicateLogin = Literal["allow", "kick_older", "refuse_newer"]

Observer = Callable[[SessionEvent], None]


class OpenNowait(Protocol):
    """Signature of :attr:`SessionRegistry.open_nowait`."""

    def __call__(
        self,
        server_id: str | None = None,
        channel: str = "",
        remote: Remote | None = None,
        connection: Connection | None = None,
    ) -> Session:
        """Register a new connection and return its session.

        The arguments may also be given by position, in this order (the adapters do, it is a little faster).

        Args:
            server_id: the server id it counts towards (default: the registry's ``default_server_id``).
            channel: game channel, free text.
            remote: peer address as the transport reports it; stored as given.
            connection: the adapter's handle on the connection (closes it on a kick; see :class:`Connection`).
        """
        ...


class CloseNowait(Protocol):
    """Signature of :attr:`SessionRegistry.close_nowait`."""

    def __call__(self, session: Session, /) -> bool:
        """Unregister a session. Returns False when it was not live here (already closed: a no-op)."""
        ...


class SessionRegistry:
    """Live sessions with O(1) lookups by player and counts by server id.

    Args:
        default_server_id: server id of sessions that do not name one.
        duplicate_login: ``allow``, ``kick_older`` or ``refuse_newer`` (see :meth:`bind_player_nowait`).
        time: callable returning epoch seconds (the injected clock's ``time``; ``time.time`` by default).

    Attributes:
        open_nowait: ``open_nowait(server_id=None, channel="", remote=None, connection=None) -> Session``:
            register a new connection (see :class:`OpenNowait`).
        close_nowait: ``close_nowait(session) -> bool``: unregister a session; False if it was not live (a
            second close is a no-op).

    Both are replaced when the first observer is added and when the last is removed: look them up on the
    registry at each call (as the adapters do); a reference kept from before :meth:`add_observer` would skip
    the observers.
    """

    open_nowait: OpenNowait
    close_nowait: CloseNowait

    def __init__(
        self,
        *,
        default_server_id: str = "0",
        duplicate_login: DuplicateLogin = "kick_older",
        time: Callable[[], float] | None = None,
    ) -> None:
        if duplicate_login not in ("allow", "kick_older", "refuse_newer"):
            raise ValueError(f"duplicate_login must be allow, kick_older or refuse_newer, not {duplicate_login!r}")
        self.default_server_id = default_server_id
        self.duplicate_login: DuplicateLogin = duplicate_login
        # ``SystemClock().time`` is ``time.time`` itself: the fast path below (msgspec's default factories).
        if time is None:
            time = _time_module.time
        self._time = time
        self._servers: dict[str, dict[int, Session]] = {default_server_id: {}}
        self._players: dict[str, Session | list[Session]] = {}
        self._players_on: dict[str, int] = {}
        self._observers: list[Observer] = []
        self._open_plain, self._close_plain = self._make_fast_paths()
        self._install()

    # -- mutations (sync core) -------------------------------------------------------------------------------

    def _make_fast_paths(self) -> tuple[OpenNowait, CloseNowait]:
        servers = self._servers
        default = self.default_server_id
        default_bucket = servers[default]
        now = self._time
        system_time = now is _time_module.time
        new_session = Session
        next_id = next_session_id
        players = self._players
        players_on = self._players_on

        def open_nowait(
            server_id: str | None = None,
            channel: str = "",
            remote: Remote | None = None,
            connection: Connection | None = None,
        ) -> Session:
            if server_id is None:
                server_id = default
                bucket = default_bucket
            else:
                try:
                    bucket = servers[server_id]
                except KeyError:
                    if type(server_id) is not str:
                        raise TypeError(f"server_id must be a str, not {type(server_id).__name__}") from None
                    bucket = servers[server_id] = {}
            if system_time:  # id and connected_at come from the Struct's default factories, called in C
                session = new_session(server_id, channel, remote, connection)
            else:
                session = new_session(server_id, channel, remote, connection, next_id(), now())
            bucket[session.id] = session
            return session

        def close_nowait(session: Session, /) -> bool:
            try:
                del servers[session.server_id][session.id]
            except KeyError:
                return False
            pid = session.player_id
            if pid is not None:  # logged in: out of the player index and the players-per-server count
                entry = players.get(pid)
                if entry is session:
                    del players[pid]
                elif type(entry) is list:
                    entry.remove(session)  # identity: Session equality is identity
                    if len(entry) == 1:
                        players[pid] = entry[0]
                sid = session.server_id
                n = players_on[sid] - 1
                if n:
                    players_on[sid] = n
                else:
                    del players_on[sid]
            return True

        return open_nowait, close_nowait

    def _install(self) -> None:
        if self._observers:
            self.open_nowait = self._open_observed
            self.close_nowait = self._close_observed
        else:
            self.open_nowait = self._open_plain
            self.close_nowait = self._close_plain

    def _open_observed(
        self,
        server_id: str | None = None,
        channel: str = "",
        remote: Remote | None = None,
        connection: Connection | None = None,
    ) -> Session:
        session = self._open_plain(server_id, channel, remote, connection)
        self._notify(SessionEvent("open", session))
        return session

    def _close_observed(self, session: Session, /) -> bool:
        if not self._close_plain(session):
            return False
        self._notify(SessionEvent("close", session))
        return True

    def close_player_nowait(self, player_id: str | int) -> tuple[Session, ...]:
        """Unregister every live session of a player at once (a ban's kick); returns them, oldest first.

        A lookup: an ``int`` is normalised, a string that cannot be a player id finds nothing.

        Raises:
            TypeError: ``player_id`` is neither a ``str`` nor an ``int``.
        """
        if type(player_id) is not str:
            player_id = lookup_key(player_id)
        entry = self._players.pop(player_id, None)
        if entry is None:
            return ()
        sessions = (entry,) if entry.__class__ is Session else tuple(entry)  # type: ignore[arg-type]
        servers = self._servers
        players_on = self._players_on
        for session in sessions:
            sid = session.server_id
            bucket = servers.get(sid)
            if bucket is None or bucket.pop(session.id, None) is None:  # not where it was registered: skip
                continue
            n = players_on.get(sid, 0) - 1
            if n > 0:
                players_on[sid] = n
            else:
                players_on.pop(sid, None)
        if self._observers:
            for session in sessions:
                self._notify(SessionEvent("close", session))
        return sessions

    def bind_player_nowait(self, session: Session, player_id: str | int) -> list[Session]:
        """Bind a logged-in player to a session, applying the duplicate-login policy.

        Policies: ``allow`` keeps every session of the player; ``kick_older`` binds the new one and returns the
        older ones for the caller to kick (they stay registered until kicked or closed); ``refuse_newer``
        raises and leaves the new session unbound.

        Args:
            session: a live session of this registry.
            player_id: the player id: a ``str``, or an ``int`` (bound as its decimal string, so a JSON number and
                a platform's string id are the same player). See ``gs_hooks._ids`` for what a player id may hold.

        Returns:
            The older sessions of the same player that must be kicked (``kick_older``), else [].

        Raises:
            DuplicateLoginError: the policy is ``refuse_newer`` and the player already has a live session.
            TypeError: ``player_id`` is neither a ``str`` nor an ``int``.
            ValueError: ``player_id`` cannot be a player id (empty, whitespace at an end, ``/``, dots...), or the
                session is not live in this registry, or already bound to another player.
        """
        if not (
            type(player_id) is str
            and player_id.isascii()
            and player_id.isalnum()
            and len(player_id) <= MAX_PLAYER_ID_LEN
        ):
            player_id = _player_id(player_id)  # the common id (ASCII letters and digits) needs no call
        try:
            live = self._servers[session.server_id].get(session.id) is session
        except KeyError:
            live = False
        if not live:
            raise ValueError(f"cannot bind player {player_id!r}: {session!r} is not live in this registry")
        if session.player_id is not None:
            if session.player_id == player_id:
                return []
            raise ValueError(f"{session!r} is already bound to another player; open a new session instead")
        players = self._players
        existing = players.get(player_id)
        if existing is None:
            players[player_id] = session
            older: list[Session] = []
        else:
            older = self._add_duplicate(player_id, existing, session)
        session.player_id = player_id
        session.logged_in_at = self._time()
        sid = session.server_id
        try:
            self._players_on[sid] += 1
        except KeyError:
            self._players_on[sid] = 1
        if self._observers:
            self._notify(SessionEvent("login", session))
        return older

    def _add_duplicate(self, player_id: str, existing: Session | list[Session], session: Session) -> list[Session]:
        """Index a second (third...) session of a logged-in player under the duplicate-login policy.

        Returns:
            The older sessions to kick (``kick_older``), else [].

        Raises:
            DuplicateLoginError: the policy is ``refuse_newer``.
        """
        policy = self.duplicate_login
        if policy == "refuse_newer":
            raise DuplicateLoginError(f"player {player_id!r} is already logged in (policy refuse_newer)")
        if type(existing) is list:
            older = list(existing) if policy == "kick_older" else []
            existing.append(session)
            return older
        assert isinstance(existing, Session)
        self._players[player_id] = [existing, session]
        return [existing] if policy == "kick_older" else []

    # -- observers ---------------------------------------------------------------------------------------------

    def add_observer(self, observer: Observer) -> Callable[[], None]:
        """Call ``observer(SessionEvent)`` on every open/login/close (exceptions are logged, not raised).

        Returns:
            A function that removes the observer (idempotent).
        """
        self._observers.append(observer)
        self._install()

        def remove() -> None:
            if observer in self._observers:
                self._observers.remove(observer)
                self._install()

        return remove

    def _notify(self, event: SessionEvent) -> None:
        for observer in tuple(self._observers):
            try:
                observer(event)
            except Exception:  # an observer must not break the registry
                log.exception("session observer %r failed on %s", observer, event.kind)

    # -- queries -------------------------------------------------------------------------------------------------

    def get(self, session_id: int) -> Session | None:
        """The live session with that id, or None (O(number of server ids))."""
        for bucket in self._servers.values():
            session = bucket.get(session_id)
            if session is not None:
                return session
        return None

    def sessions_of(self, player_id: str | int) -> tuple[Session, ...]:
        """Live sessions of a player (usually zero or one), oldest first.

        A lookup: an ``int`` is normalised (``sessions_of(7101)`` is ``sessions_of("7101")``); a string that cannot
        be a player id is not checked, it finds nothing.

        Raises:
            TypeError: ``player_id`` is neither a ``str`` nor an ``int``.
        """
        if type(player_id) is not str:
            player_id = lookup_key(player_id)
        entry = self._players.get(player_id)
        if entry is None:
            return ()
        if isinstance(entry, Session):
            return (entry,)
        return tuple(entry)

    def sessions_on(self, server_id: str) -> tuple[Session, ...]:
        """Live sessions counted towards a server id, logged in or not."""
        bucket = self._servers.get(server_id)
        return tuple(bucket.values()) if bucket else ()

    def count_connections(self, server_id: str) -> int:
        """Connections on a server id, logged in or not (O(1))."""
        bucket = self._servers.get(server_id)
        return len(bucket) if bucket else 0

    def count_players(self, server_id: str) -> int:
        """Logged-in sessions on a server id (O(1))."""
        return self._players_on.get(server_id, 0)

    def server_ids(self) -> tuple[str, ...]:
        """Server ids that have at least one live session."""
        return tuple(sid for sid, bucket in self._servers.items() if bucket)

    def player_ids(self) -> tuple[str, ...]:
        """Players with at least one live session."""
        return tuple(self._players)

    def __len__(self) -> int:
        return sum(len(bucket) for bucket in self._servers.values())

    def __iter__(self) -> Iterator[Session]:
        """Iterate over a snapshot of the live sessions (safe to close sessions while iterating)."""
        return iter([s for bucket in tuple(self._servers.values()) for s in tuple(bucket.values())])

    def __contains__(self, session: object) -> bool:
        if not isinstance(session, Session):
            return False
        bucket = self._servers.get(session.server_id)
        return bucket is not None and bucket.get(session.id) is session

    def __repr__(self) -> str:
        return f"SessionRegistry(sessions={len(self)}, players={len(self._players)})"
