"""The kick safety net, the async ``on_kick`` runner, and the kick log.

A kick removes the session from the registry at once and hands it to the game's ``on_kick``; the game is expected
to close the connection there (``request.session.close()`` or ``await request.session.aclose()``). No single kick
may hold anything else up, so :class:`KickWatch` bounds each one by a grace (:data:`KICK_GRACE_S`, on the injected
clock):

- a sync ``on_kick`` that returned with the connection still open: the connection is closed by force when the
  grace ends (counted from the return, which is the call for sync code) if it is not gone by then;
- an async ``on_kick`` runs as a task of the hooks' task group (so a ban batch, a login or the shutdown does not
  await it inline), and its grace starts when it is *called*: when it ends, the callback is cancelled if it is
  still running and the connection closed by force if it is not gone. Whoever awaits a kick
  (``await hooks.kick()``, a login kicking an older session, the shutdown) waits for its callbacks at most that
  long (:meth:`KickWatch.wait`).

"Gone" is the adapter's :attr:`~gs_hooks.sessions.Connection.closing`: closed with nothing left to send, or lost
(a close waiting for a peer that stopped reading is not gone). "By force" is the adapter's ``abort()`` when it has
one (asyncio streams and websockets: the transport is aborted and reset; anyio: the handler cancelled; ASGI: the
app ended), else ``close()``. Each forced close is logged (rate-limited) on ``gs_hooks.kicks``.

Strategy: arming is a sync O(1) append of ``(deadline, session, reason, callback)`` to a deque (a ban batch arms
thousands without a coroutine or a task each while ``on_kick`` is sync); one task, started on the first arming
while the hooks run, sleeps until the oldest deadline and settles what is due. The grace is the same for every
entry, so the deque stays in deadline order. Without a running task group (hooks not started, or closing) there is
no timer: a connection left open by a sync ``on_kick`` is closed at once, and async callbacks are run by the
caller (:meth:`KickWatch.run_here`), bounded the same way.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import anyio

from .._clock import Clock
from .._component import Spawn
from .._ids import MAX_PLAYER_ID_LEN, shown
from .._ratelog import RateLimitedLog
from ._session import Session

__all__ = ["KICK_GRACE_S", "KickCallback", "KickWatch", "close_quietly", "force_close"]

KICK_GRACE_S = 2.0
"""Seconds a kicked connection may stay open after ``on_kick`` was called before the safety net closes it."""

log = logging.getLogger("gs_hooks.kicks")


def _no_spawn(fn: Callable[[], Coroutine[Any, Any, Any]]) -> bool:
    return False


class KickCallback:
    """One async ``on_kick`` in flight: its task's cancel scope, and when it is settled.

    Attributes:
        finished: the callback returned, raised or was cancelled.
    """

    __slots__ = ("_done", "finished", "scope")

    def __init__(self) -> None:
        self.scope = anyio.CancelScope()
        self.finished = False
        self._done = anyio.Event()

    def settle(self) -> None:
        """Release whoever waits for this callback (it ended, or its grace did)."""
        self._done.set()

    async def wait(self) -> None:
        """Return once the callback ended or its grace did."""
        await self._done.wait()


_Armed = tuple[float, Session, str, KickCallback | None]


class KickWatch:
    """Bounds every kick by :attr:`grace_s`: closes by force what ``on_kick`` left open, runs async callbacks.

    Args:
        clock: the injected clock (the grace is slept on it).
        grace_s: seconds between ``on_kick``'s call and the forced close.
        spawn: starts a task in the hooks' task group (returns False when the hooks do not run).

    Attributes:
        grace_s: the grace, settable.
        forced: how many connections the net had to close.
        overran: how many async callbacks were still running when their grace ended (cancelled).
    """

    def __init__(self, clock: Clock, *, grace_s: float = KICK_GRACE_S, spawn: Spawn = _no_spawn) -> None:
        self.clock = clock
        self.grace_s = grace_s
        self.spawn = spawn
        self.forced = 0
        self.overran = 0
        self._armed: deque[_Armed] = deque()
        self._wake: anyio.Event | None = None
        self._running = False
        self._log = RateLimitedLog(log)

    # -- arming --------------------------------------------------------------------------------------------------

    def watch_nowait(self, session: Session, reason: str) -> None:
        """A sync ``on_kick`` returned for ``session``: close its connection by force when the grace ends, if it is
        not gone then (at once when the hooks do not run)."""
        connection = session.connection
        if connection is None or connection.closing:
            return
        if not self._timer():
            self._force(session, reason, "at once (the hooks are not running)", abort=False)
            return
        self._arm(session, reason, None)

    def start_nowait(self, pending: Awaitable[None], session: Session, reason: str) -> KickCallback | None:
        """An async ``on_kick`` was just called for ``session``: run ``pending`` as a task of the hooks' task group,
        its grace starting now.

        Returns:
            The callback's handle (:meth:`wait` takes it); None when the hooks do not run (the caller runs
            ``pending`` itself, with :meth:`run_here`).
        """
        if not self._timer():
            return None
        callback = KickCallback()
        if not self.spawn(lambda: self._run_callback(pending, session, callback)):
            return None
        self._arm(session, reason, callback)
        return callback

    def _timer(self) -> bool:
        if not self._running:
            if not self.spawn(self._run):
                return False
            self._running = True
        return True

    def _arm(self, session: Session, reason: str, callback: KickCallback | None) -> None:
        self._armed.append((self.clock.time() + self.grace_s, session, reason, callback))
        wake = self._wake
        if wake is not None:
            self._wake = None
            wake.set()

    @property
    def armed(self) -> int:
        """Kicks whose grace has not ended yet."""
        return len(self._armed)

    # -- waiting -------------------------------------------------------------------------------------------------

    @staticmethod
    async def wait(callbacks: Sequence[KickCallback]) -> None:
        """Return once each callback has ended or its grace has (so at most the grace after the last call)."""
        for callback in callbacks:
            await callback.wait()

    async def run_here(self, items: Sequence[tuple[Awaitable[None], Session, str]]) -> None:
        """Without a running task group: run these async callbacks (``(pending, session, reason)``) concurrently in
        the caller's task, bounded by the grace as in the hooks; then close by force what they left open."""
        deadline = self.clock.time() + self.grace_s
        runs = [(pending, session, reason, KickCallback()) for pending, session, reason in items]
        timer = anyio.CancelScope()

        async def expire_at_deadline() -> None:
            with timer:
                await self.clock.sleep_until(deadline)
                for _, session, reason, callback in runs:
                    self._expire(session, reason, callback, f"{self.grace_s:g} s after on_kick was called")

        async with anyio.create_task_group() as tg:
            for pending, session, _, callback in runs:
                tg.start_soon(self._run_callback, pending, session, callback)
            tg.start_soon(expire_at_deadline)
            try:
                await self.wait([callback for *_, callback in runs])
            finally:
                timer.cancel()
        for _, session, reason, _ in runs:
            connection = session.connection
            if connection is not None and not connection.closing:
                self._force(session, reason, "at once (the hooks are not running)", abort=False)

    async def _run_callback(self, pending: Awaitable[None], session: Session, callback: KickCallback) -> None:
        try:
            with callback.scope:  # cancelled when its grace ends
                await pending
        except Exception as exc:
            self.log_failure("on_kick", session, exc)
            close_quietly(session)
        except BaseException:
            close_quietly(session)  # the task group is cancelled (shutdown): close it, the cancellation goes on
            raise
        finally:
            callback.finished = True
            callback.settle()

    # -- the timer -----------------------------------------------------------------------------------------------

    def close_all_nowait(self) -> int:
        """Settle every kick still in its grace now (at shutdown): callbacks cancelled, connections not gone closed
        by force.

        Returns:
            How many connections were still open.
        """
        closed = 0
        while self._armed:
            _, session, reason, callback = self._armed.popleft()
            closed += self._expire(session, reason, callback, "at shutdown")
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
                    _, session, reason, callback = armed.popleft()
                    self._expire(session, reason, callback, f"{self.grace_s:g} s after on_kick was called")
        finally:
            self._running = False
            self._wake = None

    def _expire(self, session: Session, reason: str, callback: KickCallback | None, when: str) -> int:
        """The grace of one kick ended: cancel its callback if running, close the connection by force if not gone."""
        if callback is not None and not callback.finished:
            self.overran += 1
            self._log.log(
                logging.WARNING,
                "overran",
                "on_kick for session %d (player %s, kick reason %r) was still running %s: cancelled it",
                session.id,
                _player(session),
                reason,
                when,
            )
            callback.scope.cancel()
        forced = 0
        connection = session.connection
        if connection is not None and not connection.closing:
            self._force(session, reason, when)
            forced = 1
        if callback is not None:
            callback.settle()
        return forced

    def _force(self, session: Session, reason: str, when: str, *, abort: bool = True) -> None:
        self.forced += 1
        self._log.log(
            logging.WARNING,
            "left open",
            "on_kick left session %d (player %s, server %r, kick reason %r) open: closed it %s%s; close the "
            "connection in on_kick (request.session.close(), or await request.session.aclose())",
            session.id,
            _player(session),
            session.server_id,
            reason,
            when,
            " (what the peer had not read is dropped)" if abort else "",
        )
        if abort:
            force_close(session)
        else:
            close_quietly(session)

    # -- the kick log ----------------------------------------------------------------------------------------------

    def log_kick(self, session: Session, reason: str, message: str) -> None:
        """Log one kick at INFO on ``gs_hooks.kicks`` (rate-limited per reason)."""
        self._log.log(
            logging.INFO,
            ("kick", reason),
            "kicked session %d (player %s, server %r): reason %r, message %r",
            session.id,
            _player(session),
            session.server_id,
            reason,
            message,
        )

    def log_failure(self, what: str, session: Session, exc: BaseException) -> None:
        """Log a raising ``on_kick`` (rate-limited per exception type)."""
        self._log.log(
            logging.ERROR,
            (what, type(exc)),
            "%s raised for session %d (player %s); closed the connection",
            what,
            session.id,
            _player(session),
            exc_info=exc,
        )

    def flush(self) -> None:
        """Log the counts of records the rate limit held back."""
        self._log.flush()


def _player(session: Session) -> str:
    """The session's player id for a log line: bounded (a valid id is at most 128 characters; this also holds for
    a ``player_id`` the game set by hand)."""
    return shown(session.player_id, MAX_PLAYER_ID_LEN)


def close_quietly(session: Session) -> None:
    """``session.close()``, logging (not raising) a connection whose close raised."""
    try:
        session.close()
    except Exception:
        log.exception("default kick: closing session %d raised", session.id)


def force_close(session: Session) -> None:
    """Close the session's connection now: the adapter's ``abort()`` when it has one, else ``close()``; logging (not
    raising) a connection whose close raised."""
    connection = session.connection
    if connection is None:
        return
    abort = getattr(connection, "abort", None)
    try:
        if abort is not None:
            abort()
        else:
            connection.close()
    except Exception:
        log.exception("forced close of session %d raised", session.id)
