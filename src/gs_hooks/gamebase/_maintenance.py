"""The maintenance watcher: polls Gamebase, keeps the maintenance state machine, warns, gates and kicks.

Strategy: one loop. Each turn it sleeps until the earliest of: the next poll, the next warning lead time, the
announced window's begin, the active window's end. Then it polls when a poll is due or a boundary was reached,
and hands the known windows and the time to :func:`._protocol.derive_maintenance`, which says which state we
should be in; :func:`._protocol.maintenance_path` gives the legal moves, and each move calls
``on_maintenance(MaintenanceChange)``. Entering ACTIVE kicks every session (``maintenance_kick``); the login gate
is simply "state is ACTIVE" (``maintenance_gate``).

What the watcher reads is its :class:`MaintenanceSource`: Gamebase by default
(:class:`GamebaseMaintenanceSource`: under-maintenance, plus simple launching when configured); in fleet mode the
leader polls Gamebase and every process's watcher reads the leader's published result instead, so the transitions,
notices, kicks and the gate stay local to each process while Gamebase is polled once per period for the fleet.

A failed poll changes nothing: the last known windows stay, so an announced window still begins on time by the
clock, but an active one only ends on a successful poll (no flapping gate). Failures back off (after ``n``
failures in a row the next poll waits a jittered ``min(poll_s * 2**n, backoff_max_s)``, drawn from ``[d/2, d]``,
so watchers that lost Gamebase together do not poll in lockstep) and are logged;
:attr:`MaintenanceWatcher.last_error` holds the latest.
"""

from __future__ import annotations

import logging
import random

import anyio
import anyio.abc

from .._backoff import backoff_delay
from .._callbacks import call_callback
from .._clock import Clock
from .._exceptions import GsHooksError, MaintenanceError, PlatformError
from .._health import ComponentHealth
from .._time import to_datetime
from ..sessions._kicker import Kicker
from ._client import GamebaseClient
from ._maintenance_source import (
    GamebaseMaintenanceSource,
    MaintenanceChange,
    MaintenanceReading,
    MaintenanceSource,
    NoticeRequest,
    OnMaintenance,
    OnNotice,
)
from ._protocol import (
    MaintenanceDetails,
    MaintenanceState,
    derive_maintenance,
    due_warnings,
    maintenance_path,
)

__all__ = [
    "GamebaseMaintenanceSource",
    "MaintenanceChange",
    "MaintenanceReading",
    "MaintenanceSource",
    "MaintenanceWatcher",
    "NoticeRequest",
    "OnMaintenance",
    "OnNotice",
]

log = logging.getLogger("gs_hooks.gamebase.maintenance")


class MaintenanceWatcher:
    """Background component watching Gamebase maintenance (see the module docstring).

    Args:
        client: the Gamebase client.
        kicker: kicks the sessions of its registry when maintenance begins; the registry's sessions are warned.
        clock: the clock.
        on_maintenance: the game's callback, called on each transition.
        on_notice: the game's callback, called per session for each warning (none: warnings are only logged).
        poll_s: the poll period.
        gate: refuse logins while active (read by ``hooks.login``).
        kick: kick every session when a window becomes active.
        warn_s: lead times (seconds before begin) at which sessions are warned.
        launching: ``(os_code, client_version)`` to also poll simple launching, or None.
        backoff_max_s: the longest wait between failing polls.
        rng: randomness for the backoff jitter.
        source: where the state is read (default: Gamebase through ``client``, see
            :class:`GamebaseMaintenanceSource`); settable before start (fleet mode reads the leader's result).

    Attributes:
        state: the current :class:`MaintenanceState`.
        window: the current window (announced or active), else None.
        last_error: the error of the latest failed poll (None after a success).
        consecutive_failures: failed polls in a row.
        polls: polls attempted.
    """

    name = "gamebase-maintenance"

    def __init__(
        self,
        client: GamebaseClient,
        kicker: Kicker,
        *,
        clock: Clock,
        on_maintenance: OnMaintenance | None = None,
        on_notice: OnNotice | None = None,
        poll_s: float = 30.0,
        gate: bool = True,
        kick: bool = True,
        warn_s: tuple[float, ...] = (600.0, 300.0, 60.0),
        launching: tuple[str, str] | None = None,
        backoff_max_s: float = 300.0,
        rng: random.Random | None = None,
        source: MaintenanceSource | None = None,
    ) -> None:
        if poll_s <= 0:
            raise ValueError("poll_s must be > 0")
        self.client = client
        self.kicker = kicker
        self.clock = clock
        self.on_maintenance = on_maintenance
        self.on_notice = on_notice
        self.poll_s = poll_s
        self.gate = gate
        self.kick = kick
        self.warn_s = tuple(sorted(set(warn_s), reverse=True))
        self.launching = launching
        self.source: MaintenanceSource = source or GamebaseMaintenanceSource(client, launching)
        self.backoff_max_s = max(backoff_max_s, poll_s)
        self.state = MaintenanceState.NONE
        self.window: MaintenanceDetails | None = None
        self.last_error: GsHooksError | None = None
        self.consecutive_failures = 0
        self.polls = 0
        self._failing_since: float | None = None  # first failed poll of the current streak, for health()
        self._windows: tuple[MaintenanceDetails, ...] = ()
        self._under = False
        self._next_poll = 0.0
        self._warned: set[float] = set()
        self._sleeping = False
        self._idle = anyio.Event()
        self._closed = False
        self._rng = rng or random.Random()

    def __repr__(self) -> str:
        return f"MaintenanceWatcher(state={self.state.value}, failures={self.consecutive_failures})"

    # -- queries ----------------------------------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        """True while a maintenance window is in progress."""
        return self.state is MaintenanceState.ACTIVE

    def gate_error(self) -> MaintenanceError | None:
        """The error a login gets now (gate on and maintenance active), else None."""
        if not (self.gate and self.state is MaintenanceState.ACTIVE):
            return None
        w = self.window
        message = (w.message if w is not None else "") or "the game is under maintenance"
        return MaintenanceError(
            message, ends_at=w.ends_at if w is not None else None, url=w.url if w is not None else None
        )

    def health(self) -> ComponentHealth:
        """Readiness: not ok while polls keep failing (a poll and its retry, Gamebase unreachable: the maintenance
        state is then not known), or at once when Gamebase refused our configuration (a result code that names a
        setting, e.g. -4010004 for a wrong secret key); a poll that succeeds clears it. One failed poll alone is a
        blip its retry decides. No IO."""
        error = self.last_error
        if error is None:
            return ComponentHealth(name=self.name, ok=True)
        names_a_setting = isinstance(error, PlatformError) and error.setting is not None
        if not names_a_setting and self.consecutive_failures < 2:
            return ComponentHealth(name=self.name, ok=True)
        return ComponentHealth(
            name=self.name,
            ok=False,
            error=f"the maintenance poll failed ({self.consecutive_failures} in a row): {self.last_error}",
            since=self._failing_since,
        )

    # -- the loop ---------------------------------------------------------------------------------------------------

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Poll once, report started, then watch until cancelled."""
        await self._turn(poll=True)
        task_status.started()
        while True:
            wake = self._next_wake()
            self._sleeping = True
            self._idle.set()
            try:
                await self.clock.sleep_until(wake)
            finally:
                self._sleeping = False
                self._idle = anyio.Event()
            now = self.clock.time()
            await self._turn(poll=now >= self._next_poll or self._boundary_reached(wake))

    async def aclose(self) -> None:
        """Nothing to flush: the state is re-read from Gamebase on start."""
        self._closed = True

    async def wait_idle(self) -> None:
        """Return once the watcher is asleep until its next wake-up (for tests driving a fake clock)."""
        while not self._sleeping:
            await self._idle.wait()

    def _boundary(self) -> float | None:
        w = self.window
        if w is None:
            return None
        if self.state is MaintenanceState.ANNOUNCED and w.begins_at is not None:
            return w.begins_at.timestamp()
        if self.state is MaintenanceState.ACTIVE and w.ends_at is not None:
            return w.ends_at.timestamp()
        return None

    def _boundary_reached(self, wake: float) -> bool:
        b = self._boundary()
        return b is not None and b <= wake

    def _next_wake(self) -> float:
        now = self.clock.time()
        wake = self._next_poll
        b = self._boundary()
        if b is not None and b > now:
            wake = min(wake, b)
        nxt = self._next_warning(now)
        if nxt is not None:
            wake = min(wake, nxt)
        return wake

    def _next_warning(self, now: float) -> float | None:
        w = self.window
        if self.state is not MaintenanceState.ANNOUNCED or w is None or w.begins_at is None:
            return None
        _, nxt = due_warnings(w.begins_at.timestamp(), self.warn_s, frozenset(self._warned), now)
        return nxt

    async def _turn(self, *, poll: bool) -> None:
        fresh = await self.poll_once() if poll else False
        now = self.clock.time()
        target, window = derive_maintenance(self.state, self._windows, now, under_maintenance=self._under, fresh=fresh)
        await self._apply(target, window, now)
        await self._warn(now)

    @property
    def period_s(self) -> float:
        """How often the source is read: its own period when it has one, else ``poll_s``."""
        return self.source.period_s or self.poll_s

    async def poll_once(self) -> bool:
        """Read the source (Gamebase by default) now; True on success. A failure keeps the last known windows."""
        self.polls += 1
        now = self.clock.time()
        try:
            reading = await self.source.fetch()
        except (GsHooksError, ValueError) as exc:
            error = exc if isinstance(exc, GsHooksError) else GsHooksError(f"unreadable maintenance date: {exc}")
            self.last_error = error
            if not self.consecutive_failures:
                self._failing_since = now
            self.consecutive_failures += 1
            # (backoff_delay clamps the exponent: 2**n stops fitting a float after 1,024 failures, ~3.5 days at 300 s)
            delay = backoff_delay(self.consecutive_failures, self.period_s, self.backoff_max_s, self._rng)
            self._next_poll = now + delay
            log.warning(
                "maintenance poll failed (%d in a row): %s; keeping state %s, next poll in %.0fs",
                self.consecutive_failures,
                error,
                self.state.value,
                delay,
            )
            return False
        if self.consecutive_failures:
            log.info("maintenance poll recovered after %d failures", self.consecutive_failures)
        self.last_error = None
        self.consecutive_failures = 0
        self._windows = reading.windows
        self._under = reading.under_maintenance
        self._next_poll = now + self.period_s
        return True

    # -- transitions --------------------------------------------------------------------------------------------------

    async def _apply(self, target: MaintenanceState, window: MaintenanceDetails | None, now: float) -> None:
        if target is self.state:
            if (
                window is not None
                and window != self.window
                and target
                in (
                    MaintenanceState.ANNOUNCED,
                    MaintenanceState.ACTIVE,
                )
            ):
                old = self.window
                self.window = window
                if old is None or old.begins_at != window.begins_at:
                    self._warned.clear()
                await self._changed(target, target, window, now)
            return
        for step in maintenance_path(self.state, target):
            previous = self.state
            self.state = step
            if step is MaintenanceState.ENDED or step is MaintenanceState.NONE:
                details = self.window
                self.window = None
            else:
                details = window
                if self.window is None or window is None or self.window.begins_at != window.begins_at:
                    self._warned.clear()
                self.window = window
            log.info("maintenance %s -> %s", previous.value, step.value)
            await self._changed(previous, step, details, now)
            if step is MaintenanceState.ACTIVE and self.kick:
                await self._kick_all(window)

    async def _changed(
        self,
        previous: MaintenanceState,
        state: MaintenanceState,
        details: MaintenanceDetails | None,
        now: float,
    ) -> None:
        change = MaintenanceChange(previous=previous, state=state, details=details, at=to_datetime(now))
        await call_callback(self.on_maintenance, change, what="on_maintenance")

    async def _kick_all(self, window: MaintenanceDetails | None) -> None:
        message = (window.message if window is not None else "") or "the game is under maintenance"
        sessions = tuple(self.kicker.registry)
        # one kick for all: their callbacks run side by side, bounded by the kick grace
        await self.kicker.kick_sessions(sessions, "maintenance", message, window)
        if sessions:
            log.info("maintenance began: kicked %d sessions", len(sessions))

    async def _warn(self, now: float) -> None:
        w = self.window
        if self.state is not MaintenanceState.ANNOUNCED or w is None or w.begins_at is None:
            return
        begins = w.begins_at.timestamp()
        due, _ = due_warnings(begins, self.warn_s, frozenset(self._warned), now)
        if not due:
            return
        self._warned.update(due)
        seconds_left = begins - now
        on_notice = self.on_notice
        message = w.message or f"Maintenance begins in {max(1, round(seconds_left / 60))} min"
        if on_notice is None:
            log.info("maintenance begins in %.0fs (no on_notice callback to warn sessions)", seconds_left)
            return
        for session in list(self.kicker.registry):
            request = NoticeRequest(
                session=session,
                kind="maintenance_warning",
                message=message,
                seconds_left=seconds_left,
                details=w,
            )
            await call_callback(on_notice, request, what="on_notice")
