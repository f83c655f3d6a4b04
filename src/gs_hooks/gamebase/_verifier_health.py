"""The token verifier's readiness: the current streak of failed requests to Gamebase and what it means.

Not ready at once when Gamebase refused our configuration (a result code that names a setting, e.g. -4010004:
``GS_HOOKS_GAMEBASE_SECRET_KEY``); for other failures (Gamebase unreachable, internal errors) only when they
persist. A token or member refusal is a proper answer, not a failure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from .._exceptions import PlatformError
from .._health import ComponentHealth

__all__ = ["FAILING_WINDOW_S", "FailureStreak"]

FAILING_WINDOW_S: Final = 60.0
"""Readiness: verification requests must keep failing this long (none answered between) to count, and a failure
older than this no longer counts (logins are what drive the requests: a pod out of its load balancer gets none)."""


class FailureStreak:
    """The latest streak of failed requests: its latest error, when it began and when its latest failure was, how
    many, and the client's ``answered`` count then (a later answer through the same client clears it).

    Args:
        name: the component's name in the health report.
        time: the clock (epoch seconds).
        answered: the client's count of requests Gamebase answered (any caller: the maintenance and ban polls too).
    """

    def __init__(self, name: str, time: Callable[[], float], answered: Callable[[], int]) -> None:
        self.name = name
        self._time = time
        self._answered = answered
        self._last_error: PlatformError | None = None
        self._failing_since: float | None = None
        self._last_failure_at = 0.0
        self._failures = 0
        self._answered_then = 0

    def done(self, error: PlatformError | None) -> None:
        """A request ended: answered (None) or failed with ``error``."""
        if error is None:
            self._last_error = None
            self._failing_since = None
            self._failures = 0
            return
        now = self._time()
        if self._last_error is None:
            self._failing_since = now
        self._last_error = error
        self._last_failure_at = now
        self._failures += 1
        self._answered_then = self._answered()

    def health(self) -> ComponentHealth:
        """Not ok at once for an error that names a setting; for others when requests have failed for
        :data:`FAILING_WINDOW_S` with none answered between, the latest less than that ago. Cleared by an answered
        request (of the verifier, or any later call of the same client), or, for the persisting kind, by a window
        without a failure."""
        error = self._last_error
        if error is None or self._answered() > self._answered_then:
            return ComponentHealth(name=self.name, ok=True)
        since = self._failing_since
        if error.setting is not None:
            return ComponentHealth(
                name=self.name,
                ok=False,
                error=f"the last token verification failed on our configuration: {error}",
                since=since,
            )
        last = self._last_failure_at
        if (
            since is not None
            and self._failures >= 2
            and last - since >= FAILING_WINDOW_S
            and self._time() - last < FAILING_WINDOW_S
        ):
            return ComponentHealth(
                name=self.name,
                ok=False,
                error=f"token verifications have failed for {last - since:.0f} s ({self._failures} in a row): {error}",
                since=since,
            )
        return ComponentHealth(name=self.name, ok=True)
