"""The kick engine: take sessions out of the registry and hand each to the game's ``on_kick``.

Every kick goes through :class:`Kicker`: ``hooks.kick``, a ban batch (through the ban book's ``kick``), the
maintenance watcher, a duplicate login, the shutdown. Each session is removed from the registry first (a second
kick of it is a no-op), then ``on_kick`` receives a frozen :class:`KickRequest`, in the order of the sessions. No
single kick holds up anything else: an async ``on_kick`` runs as a task of the hooks' task group, and the safety
net (:class:`~gs_hooks.sessions._kicks.KickWatch`) bounds every kick by its grace, counted from the call: the
callback is cancelled and the connection closed by force if it is not gone by then. Whoever awaits a kick
(:meth:`Kicker.kick`, :meth:`Kicker.kick_sessions`: ``hooks.kick``, a login, the maintenance watcher, the
shutdown) waits for its callbacks at most that grace; a ban batch (:meth:`Kicker.kick_player_nowait`) does not
wait for them at all.

Fast path (``bench/bans.py``: 2,000 bans against 1,000,000 sessions; ``bench/sessions.py``): the ``*_nowait``
methods call a sync ``on_kick`` directly and return the count, so a batch against a sync callback makes no
coroutine or task per kick. They return a coroutine only while the hooks do not run (no task group to run an
async callback in): awaiting it runs the callbacks concurrently, bounded by the same grace.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Coroutine
from typing import Any, Protocol

import msgspec

from .._ids import player_id as _player_id
from ._kicks import KickCallback, KickWatch, close_quietly
from ._registry import SessionRegistry
from ._session import Session

__all__ = ["KickRequest", "Kicker", "OnKick"]

_kicks_log = logging.getLogger("gs_hooks.kicks")


class KickRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What the game's ``on_kick`` receives.

    Attributes:
        session: the session to disconnect (already removed from the registry).
        reason: ``ban``, ``maintenance``, ``duplicate_login``, ``manual``...
        message: a human-readable message to show the player.
        details: reason-specific frozen details (a ban's source/status/start/end, a maintenance window...).
    """

    session: Session
    reason: str
    message: str = ""
    details: Any = None


class OnKick(Protocol):
    """The game's kick callback (sync or async): tell the player, then close the connection with
    ``request.session.close()`` (sync) or ``await request.session.aclose()``, the same on every adapter.

    Bounded: ``hooks.kick_watch.grace_s`` (2 s) after the call, an async callback still running is cancelled and
    a connection not gone is closed by force (the safety net). An async callback runs as a task of the hooks, so
    it never holds up another kick."""

    def __call__(self, request: KickRequest, /) -> Awaitable[None] | None: ...


class Kicker:
    """Kicks sessions of a registry through the game's ``on_kick`` (see the module docstring).

    Args:
        registry: the live sessions.
        watch: the safety net and the kick log.
        on_kick: the game's kick callback; None closes the connection (``session.close()``).

    Attributes:
        registry: the live sessions.
        watch: the safety net (``hooks.kick_watch``).
        on_kick: the game's callback, settable (read at each kick).
    """

    def __init__(self, registry: SessionRegistry, watch: KickWatch, *, on_kick: OnKick | None = None) -> None:
        self.registry = registry
        self.watch = watch
        self.on_kick = on_kick

    async def kick(
        self, target: Session | str | int, reason: str = "manual", *, message: str = "", details: Any = None
    ) -> int:
        """Kick one session, or every live session of a player id. See :meth:`gs_hooks.Hooks.kick`.

        Returns:
            The number of sessions kicked (0 when none was live).

        Raises:
            TypeError: ``target`` is neither a session nor a player id.
            ValueError: ``target`` is a string that cannot be a player id.
        """
        if isinstance(target, Session):
            sessions: tuple[Session, ...] = (target,)
        elif isinstance(target, str | int) and not isinstance(target, bool):
            sessions = self.registry.sessions_of(_player_id(target))
        else:
            raise TypeError(f"kick() takes a Session or a player id (str), not {type(target).__name__}")
        return await self.kick_sessions(sessions, reason, message, details)

    async def kick_sessions(
        self, sessions: tuple[Session, ...], reason: str, message: str = "", details: Any = None
    ) -> int:
        """Kick these sessions (the live ones) and wait for their async callbacks, at most the grace.

        Returns:
            The number of sessions kicked.
        """
        close = self.registry.close_nowait  # looked up per call: observers replace it
        live = tuple(session for session in sessions if close(session))
        if not live:
            return 0
        started: list[KickCallback] = []
        kicked = self.deliver_nowait(live, reason, message, details, started)
        if not isinstance(kicked, int):
            return await kicked
        await self.watch.wait(started)
        return kicked

    def kick_nowait(
        self, sessions: tuple[Session, ...], reason: str, message: str = "", details: Any = None
    ) -> int | Coroutine[Any, Any, int]:
        """Kick these sessions: all removed from the registry, then each handed to ``on_kick``; async callbacks are
        not waited for.

        Returns:
            See :meth:`deliver_nowait`.
        """
        close = self.registry.close_nowait  # looked up per call: observers replace it
        live = tuple(session for session in sessions if close(session))
        return self.deliver_nowait(live, reason, message, details) if live else 0

    def kick_player_nowait(self, player_id: str, message: str, details: Any) -> int | Coroutine[Any, Any, int]:
        """Kick every live session of a banned player (one registry call), reason ``ban``: the ban book's kick.

        Returns:
            See :meth:`deliver_nowait` (an ``int`` while the hooks run: a batch never waits for a callback).
        """
        sessions = self.registry.close_player_nowait(player_id)
        return self.deliver_nowait(sessions, "ban", message, details) if sessions else 0

    def deliver_nowait(
        self,
        sessions: tuple[Session, ...],
        reason: str,
        message: str,
        details: Any,
        started: list[KickCallback] | None = None,
    ) -> int | Coroutine[Any, Any, int]:
        """Hand removed sessions to ``on_kick`` in order, without a coroutine while the callback is sync.

        Without ``on_kick``, or when it raises, the connection is closed at once (``session.close()``, sync on
        every adapter). A sync ``on_kick`` that returns with the connection not gone arms the safety net; an async
        one is started as a task of the hooks' task group, its grace counted from the call (see
        :class:`~gs_hooks.sessions._kicks.KickWatch`).

        Args:
            sessions: sessions already removed from the registry.
            reason: the kick's reason.
            message: the kick's message.
            details: the kick's details.
            started: when given, receives the handles of the async callbacks started (to wait for them).

        Returns:
            The number of sessions; or, when an async callback could not be started (the hooks do not run), a
            coroutine to await that runs those callbacks (bounded by the grace) and returns the number.
        """
        on_kick = self.on_kick
        watch = self.watch
        log_kicks = _kicks_log.isEnabledFor(logging.INFO)
        here: list[tuple[Awaitable[None], Session, str]] | None = None  # async callbacks the caller runs
        for session in sessions:
            if log_kicks:
                watch.log_kick(session, reason, message)
            if on_kick is None:
                close_quietly(session)
                continue
            request = KickRequest(session=session, reason=reason, message=message, details=details)
            try:
                result = on_kick(request)
            except Exception as exc:
                watch.log_failure("on_kick", session, exc)
                close_quietly(session)
                continue
            if result is None or not inspect.isawaitable(result):
                watch.watch_nowait(session, reason)
                continue
            callback = watch.start_nowait(result, session, reason)
            if callback is None:
                if here is None:
                    here = []
                here.append((result, session, reason))
            elif started is not None:
                started.append(callback)
        if here is not None:
            return self._run_here(here, len(sessions))
        return len(sessions)

    async def _run_here(self, items: list[tuple[Awaitable[None], Session, str]], kicked: int) -> int:
        await self.watch.run_here(items)
        return kicked

    def close_nowait(self) -> None:
        """At shutdown: settle the kicks still in their grace now (callbacks cancelled, connections not gone closed
        by force), and log the held-back kick counts."""
        self.watch.close_all_nowait()
        self.watch.flush()
