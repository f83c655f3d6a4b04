"""The GamePot dashboard's CCU inquiry, answered from the samples the sandbox collector received.

``GET /v1/api/project/{projectId}/user/statistics/ccu?oneDate=&twoDate=&threeDate=`` with ``x-api-key``.

Answers are HTTP 200 in every case (GamePot's document shows only bodies; we settle on 200 and put the
outcome in ``status``): success is ``{"status": 1, "result": {"totalCount": 1440, "edges": [{"node":
{"createdAt": "HH:MM", "one": .., "two": .., "three": ..}}, ...]}}``, one row per minute ``00:00``..``23:59``;
a minute shows the sum over server ids of the sample of its grid slot (two-minute slots by default), ``null``
where no sample exists. Missing (or empty) dates default to today, yesterday and the day before (KST, sandbox
clock). Errors are ``{"status": code, "message": "..."}``, checked in this order:

====  =====================================================================================
-1    the key is not on the dashboard (or no ``x-api-key`` header)
-6    the project id does not exist
-2    the key exists but belongs to another project (dashboard key and header key differ)
-3    the key was deleted          (key state ``deleted``)
-4    the key is not in use        (key state ``unused``)
-5    the key has expired          (key state ``expired``, or its ``expires_at`` has passed)
-11   ``threeDate`` is not ``YYYY-MM-DD`` (then -12 ``twoDate``, then -13 ``oneDate``)
====  =====================================================================================
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

from .._clock import KST, Clock
from ..http._app import Request, Response

__all__ = ["GamePotKey", "GamePotSim", "KeyState"]

KeyState = Literal["active", "deleted", "unused", "expired"]
_KEY_STATES: tuple[str, ...] = ("active", "deleted", "unused", "expired")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_STATE_ERRORS: dict[str, tuple[int, str]] = {
    "deleted": (-3, "x-api-key was deleted."),
    "unused": (-4, "x-api-key is not in use."),
    "expired": (-5, "x-api-key has expired."),
}


@dataclass(slots=True)
class GamePotKey:
    """A dashboard API key: its project, state and optional expiry (epoch seconds)."""

    project_id: str
    state: KeyState = "active"
    expires_at: float | None = None


@dataclass(slots=True)
class GamePotSim:
    """GamePot dashboard projects and keys, answering from a totals source.

    Args:
        clock: the sandbox clock (defaults for missing dates, key expiry).
        totals: ``totals(games)`` → {slot epoch seconds: CCU summed over servers} (the collector's).
        period_s: the slot length a minute belongs to.

    Attributes:
        projects: project id → game keys whose samples it shows (None = every game).
        keys: API key → :class:`GamePotKey`.
    """

    clock: Clock
    totals: Callable[[Iterable[str] | None], dict[float, int]]
    period_s: int = 120
    projects: dict[str, tuple[str, ...] | None] = field(default_factory=dict)
    keys: dict[str, GamePotKey] = field(default_factory=dict)

    def add_project(self, project_id: str, games: Iterable[str] | None = None) -> None:
        """Create (or redefine) a project; ``games`` limits it to those game keys (None = all)."""
        self.projects[project_id] = None if games is None else tuple(games)

    def remove_project(self, project_id: str) -> None:
        """Delete a project (its keys then answer -6 on it)."""
        self.projects.pop(project_id, None)

    def set_key(
        self, key: str, project_id: str, state: KeyState = "active", *, expires_at: float | None = None
    ) -> None:
        """Create or change a dashboard key.

        Raises:
            ValueError: unknown state.
        """
        if state not in _KEY_STATES:
            raise ValueError(f"key state must be one of {', '.join(_KEY_STATES)}, got {state!r}")
        self.keys[key] = GamePotKey(project_id, state, expires_at)

    def remove_key(self, key: str) -> None:
        """Forget a key entirely (it then answers -1)."""
        self.keys.pop(key, None)

    def inquire(self, project_id: str, api_key: str | None, query: dict[str, str]) -> dict[str, Any]:
        """The answer body for one inquiry (sync core of the handler)."""
        entry = self.keys.get(api_key) if api_key else None
        if entry is None:
            return _error(-1, "x-api-key is not registered on the dashboard.")
        if project_id not in self.projects:
            return _error(-6, "projectId was wrong.")
        if entry.project_id != project_id:
            return _error(-2, "x-api-key does not match the dashboard key of this project.")
        if entry.state in _STATE_ERRORS:
            code, message = _STATE_ERRORS[entry.state]
            return _error(code, message)
        if entry.expires_at is not None and self.clock.time() >= entry.expires_at:
            return _error(-5, "x-api-key has expired.")
        today = self.clock.now().date()
        days: dict[str, date] = {}
        for name, code, back in (("threeDate", -11, 2), ("twoDate", -12, 1), ("oneDate", -13, 0)):
            value = query.get(name, "")
            if value == "":
                days[name] = today - timedelta(days=back)
                continue
            parsed = _parse_day(value)
            if parsed is None:
                return _error(code, f"{name} was wrong. only YYYY-MM-DD format is possible.")
            days[name] = parsed
        totals = self.totals(self.projects[project_id])
        columns = [_day_column(days[name], totals, self.period_s) for name in ("oneDate", "twoDate", "threeDate")]
        edges = [
            {
                "node": {
                    "createdAt": f"{minute // 60:02d}:{minute % 60:02d}",
                    "one": columns[0][minute],
                    "two": columns[1][minute],
                    "three": columns[2][minute],
                }
            }
            for minute in range(1440)
        ]
        return {"status": 1, "result": {"totalCount": len(edges), "edges": edges}}

    async def handle(self, request: Request) -> Response:
        """The HTTP handler of the inquiry route."""
        body = self.inquire(request.path_params.get("projectId", ""), request.header("x-api-key"), request.query)
        return Response.json(body)

    async def answer_injected(self, request: Request, code: int) -> Response:
        """Answer a fault-injected status code."""
        return Response.json(_error(code, "sandbox fault: injected error"))


def _error(code: int, message: str) -> dict[str, Any]:
    return {"status": code, "message": message}


def _parse_day(value: str) -> date | None:
    if not _DATE_RE.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _day_column(day: date, totals: dict[float, int], period_s: int) -> list[int | None]:
    midnight = datetime(day.year, day.month, day.day, tzinfo=KST).timestamp()
    # KST midnight is a grid instant (the period divides an hour), so a minute's slot is an offset from it.
    return [totals.get(midnight + 60 * minute - (60 * minute) % period_s) for minute in range(1440)]
