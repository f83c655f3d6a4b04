"""The kick safety net and the kick log.

A kick removes the session from the registry at once and hands it to the game's ``on_kick``; the game is expected
to close the connection there (``request.session.close()`` or ``await request.session.aclose()``). When
``on_kick`` returns (sync) or finishes (async) and the connection is still open, :class:`KickWatch` closes it
after a grace (:data:`KICK_GRACE_S`, on the injected clock) and logs it (rate-limited) on ``gs_hooks.kicks``:
a banned player never stays connected because of a callback that forgot to close.

Strategy: arming is a sync O(1) append of ``(deadline, session, reason)`` to a deque (a ban batch arms thousands
without a coroutine or a task each); one task, started on the first arming while the hooks run, sleeps until the
oldest deadline and closes what is still open. The grace is the same for every entry, so the deque stays in
deadline order. Without a running task group (hooks not started, or closing) there is no timer: a connection
left open is closed at once.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

import anyio

from .._clock import Clock
from .._component import Spawn
from .._ratelog import RateLimitedLog
from ._session import Session

__all__ = ["KICK_GRACE_S", "KickWatch"]

KICK_GRACE_S = 2.0
"""Seconds a kicked connection may stay open after ``on_kick`` returned before the safety net closes it."""

log = logging.getLogger("gs_hooks.kicks")


def _no_spawn(fn: Callable[[], Coroutine[Any, Any, Any]]) -> bool:
    return False


class KickWatch:
    """Closes kicked connections that ``on_kick`` left open, after :attr:`grace_s`; logs kicks.

    Args:
        clock: the injected clock (the grace is slept on it).
        grace_s: seconds between ``on_kick``'s end and the forced close.
        spawn: starts the watch's task in the hooks' task group (returns False when the hooks do not run).

    Attributes:
        grace_s: the grace, settable.
        forced: how many connections the net had to close.
    """

    def __init__(self, clock: Clock, *, grace_s: float = KICK_GRACE_S, spawn: Spawn = _no_spawn) -> None:
        self.clock = clock
        self.grace_s = grace_s
        self.spawn = spawn
        self.forced = 0
        self._armed: deque[tuple[float, Session, str]] = deque()
        self._wake: anyio.Event | None = None
        self._running = False
        self._log = RateLimitedLog(log)

    # -- the safety net ------------------------------------------------------------------------------------------

    def watch_nowait(self, session: Session, reason: str) -> None:
        """``on_kick`` is over for ``session``: close its connection after the grace if it is still open then."""
        connection = session.connection
        if connection is None or connection.closing:
            return
        if not self._running:
            if not self.spawn(self._run):
                self._force(session, reason, "at once (the hooks are not running)")
                return
            self._running = True
        self._armed.append((self.clock.time() + self.grace_s, session, reason))
        wake = self._wake
        if wake is not None:
            self._wake = None
            wake.set()

    @property
    def armed(self) -> int:
        """Kicked connections waiting for their grace to end."""
        return len(self._armed)

    def close_all_nowait(self) -> int:
        """Close every armed connection still open, without waiting for the grace (at shutdown).

        Returns:
            How many were still open.
        """
        closed = 0
        while self._armed:
            _, session, reason = self._armed.popleft()
            closed += self._expire(session, reason, "at shutdown")
        return closed

    async def _run(self) -> None:
        armed = self._armed
        try:
            while True:
                if not armed:
                    self._wake = wake = anyio.Event()
                    await wake.wait()
                    continue
                await self.clock.sleep_until(armed[0][0])
                now = self.clock.time()
                while armed and armed[0][0] <= now:
                    _, session, reason = armed.popleft()
                    self._expire(session, reason, f"{self.grace_s:g} s after on_kick returned")
        finally:
            self._running = False
            self._wake = None

    def _expire(self, session: Session, reason: str, when: str) -> int:
        connection = session.connection
        if connection is None or connection.closing:
            return 0
        self._force(session, reason, when)
        return 1

    def _force(self, session: Session, reason: str, when: str) -> None:
        self.forced += 1
        self._log.log(
            logging.WARNING,
            "left open",
            "on_kick left session %d (player %r, server %r, kick reason %r) open: closed it %s; close the "
            "connection in on_kick (request.session.close(), or await request.session.aclose())",
            session.id,
            session.player_id,
            session.server_id,
            reason,
            when,
        )
        close_quietly(session)

    # -- the kick log ----------------------------------------------------------------------------------------------

    def log_kick(self, session: Session, reason: str, message: str) -> None:
        """Log one kick at INFO on ``gs_hooks.kicks`` (rate-limited per reason)."""
        self._log.log(
            logging.INFO,
            ("kick", reason),
            "kicked session %d (player %r, server %r): reason %r, message %r",
            session.id,
            session.player_id,
            session.server_id,
            reason,
            message,
            extra={"player": session.player_id, "server_id": session.server_id, "reason": reason},
        )

    def log_failure(self, what: str, session: Session, exc: BaseException) -> None:
        """Log a raising ``on_kick`` (rate-limited per exception type)."""
        self._log.log(
            logging.ERROR,
            (what, type(exc)),
            "%s raised for session %d (player %r); closed the connection",
            what,
            session.id,
            session.player_id,
            exc_info=exc,
        )

    def flush(self) -> None:
        """Log the counts of records the rate limit held back."""
        self._log.flush()


def close_quietly(session: Session) -> None:
    """``session.close()``, logging (not raising) a connection whose close raised."""
    try:
        session.close()
    except Exception:
        log.exception("default kick: closing session %d raised", session.id)
