"""The GamePot-compatible CCU inquiry served on the embedded listener.

``GET /v1/api/project/{projectId}/user/statistics/ccu?oneDate=&twoDate=&threeDate=`` with ``x-api-key``:
the same path, query, header and answer as GamePot's dashboard API, answered from our own CCU history, so ops
tools written for GamePot can point at a game server. Validation and the answer are :mod:`._protocol`'s; this
is the thin IO shell (read history, write JSON).

Every answer is HTTP 200 and the outcome is the body's ``status`` (GamePot's document shows only bodies; the
sandbox settles the same way), so a tool written for GamePot reads our errors exactly as it reads GamePot's.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from .._clock import Clock
from .._config import Secret
from ..http._app import Request, Response, Route, Router
from ._history import CcuHistorySource
from ._protocol import (
    ErrorAnswer,
    GamePotError,
    InquiryDates,
    build_answer,
    check_key,
    check_project,
    day_bounds,
    minute_values,
    resolve_dates,
)

__all__ = ["INQUIRY_PATH", "GamePotInquiry"]

INQUIRY_PATH = "/v1/api/project/{projectId}/user/statistics/ccu"

_encoder = msgspec.json.Encoder()


class GamePotInquiry:
    """The inquiry route's handler.

    Args:
        project_id: the project id the path must carry.
        api_key: the ``x-api-key`` the request must carry.
        history: where the samples come from.
        period_s: the CCU grid period (``ccu.period_s``).
        clock: for "today" (KST).
    """

    def __init__(
        self,
        *,
        project_id: str,
        api_key: Secret,
        history: CcuHistorySource,
        period_s: int,
        clock: Clock,
    ) -> None:
        self.project_id = project_id
        self._api_key = api_key
        self.history = history
        self.period_s = period_s
        self.clock = clock

    def install(self, router: Router, *, allow: Iterable[str] = ()) -> Route:
        """Add ``GET`` :data:`INQUIRY_PATH` to ``router`` (``allow``: IP allowlist, empty = any)."""
        return router.add("GET", INQUIRY_PATH, self.handle, allow=allow)

    async def answer(self, dates: InquiryDates) -> bytes:
        """The success body for three dates."""
        series = []
        for day in (dates.one, dates.two, dates.three):
            start, end = day_bounds(day)
            samples = await self.history.samples(start, end)
            series.append(minute_values(samples, day, self.period_s))
        return _encoder.encode(build_answer(series[0], series[1], series[2]))

    async def handle(self, request: Request) -> Response:
        """Answer one inquiry (the route handler)."""
        try:
            check_key(request.header("x-api-key"), self._api_key.get_secret_value())
            check_project(request.path_params.get("projectId", ""), self.project_id)
            dates = resolve_dates(request.query, self.clock.now().date())
        except GamePotError as exc:
            body = _encoder.encode(ErrorAnswer(exc.status, exc.message))
            return Response(200, body, [("content-type", "application/json"), ("cache-control", "no-store")])
        body = await self.answer(dates)
        return Response(200, body, [("content-type", "application/json"), ("cache-control", "no-store")])

    def __repr__(self) -> str:
        return f"GamePotInquiry(project_id={self.project_id!r}, period_s={self.period_s})"
