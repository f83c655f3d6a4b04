"""The kick engine: take sessions out of the registry and hand each to the game's ``on_kick``.

Every kick goes through :class:`Kicker`: ``hooks.kick``, a ban batch (through the ban book's ``kick``), the
maintenance watcher, a duplicate login, the shutdown. Each session is removed from the registry first (a second
kick of it is a no-op), then ``on_kick`` receives a frozen :class:`KickRequest`; the safety net
(:class:`~gs_hooks.sessions._kicks.KickWatch`) closes a connection ``on_kick`` left open.

Fast path (``bench/bans.py``: 2,000 bans against 1,000,000 sessions; ``bench/sessions.py``): the ``*_nowait``
methods call a sync ``on_kick`` directly and return the count, so a batch against a sync callback makes no
coroutine or task per kick; only when ``on_kick`` returns an awaitable do they return a coroutine that finishes
the job in the same order.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Coroutine
from typing import Any, Protocol

import msgspec

from .._ids import player_id as _player_id
from .._metrics import BAN_KICKS, KICKS
from ._kicks import KickWatch, close_quietly
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
    ``request.session.close()`` (sync) or ``await request.session.aclose()``, the same on every adapter. A
    connection still open when it returns is closed after ``hooks.kick_watch.grace_s`` (the safety net)."""

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
        kicked = self.kick_nowait(sessions, reason, message, details)
        return kicked if isinstance(kicked, int) else await kicked

    def kick_nowait(
        self, sessions: tuple[Session, ...], reason: str, message: str = "", details: Any = None
    ) -> int | Coroutine[Any, Any, int]:
        """Kick these sessions: all removed from the registry, then each handed to ``on_kick``.

        Returns:
            See :meth:`deliver_nowait`.
        """
        close = self.registry.close_nowait  # looked up per call: observers replace it
        live = tuple(session for session in sessions if close(session))
        KICKS.inc(reason, by=len(live))
        return self.deliver_nowait(live, reason, message, details) if live else 0

    def kick_player_nowait(self, player_id: str, message: str, details: Any) -> int | Coroutine[Any, Any, int]:
        """Kick every live session of a banned player (one registry call), reason ``ban``: the ban book's kick.

        Returns:
            See :meth:`deliver_nowait`.
        """
        sessions = self.registry.close_player_nowait(player_id)
        BAN_KICKS.n += len(sessions)
        return self.deliver_nowait(sessions, "ban", message, details) if sessions else 0

    def deliver_nowait(
        self, sessions: tuple[Session, ...], reason: str, message: str, details: Any
    ) -> int | Coroutine[Any, Any, int]:
        """Hand removed sessions to ``on_kick`` in order, without a coroutine while the callback is sync.

        Without ``on_kick``, or when it raises, the connection is closed at once (``session.close()``, sync on
        every adapter). When ``on_kick`` returns (or its awaitable finishes), the safety net is armed: the
        connection is closed after the grace if it is still open then (see :class:`KickWatch`).

        Returns:
            The number of sessions; or, when a callback returned an awaitable, a coroutine to await that
            finishes the job in the same order (the remaining sessions are handed over after that callback ends)
            and returns the number.
        """
        on_kick = self.on_kick
        watch = self.watch
        log_kicks = _kicks_log.isEnabledFor(logging.INFO)
        for i, session in enumerate(sessions):
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
            pending = self._finish_kick(result, request)
            return self._deliver_rest(pending, sessions, i + 1, reason, message, details)
        return len(sessions)

    async def _deliver_rest(
        self,
        pending: Awaitable[None],
        sessions: tuple[Session, ...],
        done: int,
        reason: str,
        message: str,
        details: Any,
    ) -> int:
        try:
            await pending
        except BaseException:
            # cancelled in a callback: the sessions not handed over yet are out of the registry already, so
            # close them the default way (no untracked connection is left behind)
            for session in sessions[done:]:
                close_quietly(session)
            raise
        if done < len(sessions):
            more = self.deliver_nowait(sessions[done:], reason, message, details)
            if not isinstance(more, int):
                await more
        return len(sessions)

    async def _finish_kick(self, pending: Awaitable[None], request: KickRequest) -> None:
        session = request.session
        try:
            await pending
        except Exception as exc:
            self.watch.log_failure("on_kick", session, exc)
            close_quietly(session)
        except BaseException:
            close_quietly(session)  # cancelled in on_kick: close it now, the cancellation goes on
            raise
        else:
            self.watch.watch_nowait(session, request.reason)

    def close_nowait(self) -> None:
        """At shutdown: close the connections still in their grace now, and log the held-back kick counts."""
        self.watch.close_all_nowait()
        self.watch.flush()
