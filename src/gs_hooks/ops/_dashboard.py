"""The ops dashboard at ``/dashboard`` on the embedded listener (or the ASGI app).

One server-rendered HTML page: live CCU per server id, a three-date overlay chart of CCU over the day (today,
yesterday and a week ago by default, like GamePot's view; other dates via ``?one=&two=&three=``) as inline SVG,
delivery health of the CCU reporter, active bans and maintenance state. It reads the capabilities (registry, CCU
history, ban book, maintenance watcher) and is written to by none of them.

Strategy: :meth:`Dashboard.collect` gathers everything into a frozen :class:`~gs_hooks.ops._view.DashboardView`
(the only async part); :func:`~gs_hooks.ops._page.render_dashboard` turns a view into HTML and is pure.

Access: off unless ``listener.dashboard``; behind ``listener.dashboard_allow`` (IP allowlist) and, when set,
``listener.dashboard_key`` given as ``?key=`` or the ``x-gs-hooks-key`` header (constant-time compare). When the
key came in the query, the date form carries it along (the page only goes to whoever sent it).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Sequence
from datetime import date, timedelta

from .._clock import Clock
from .._config import Secret
from .._time import KST
from ..bans._book import BanBook
from ..gamebase._maintenance import MaintenanceWatcher
from ..gamepot._history import CcuHistorySource, HealthSource
from ..gamepot._protocol import GamePotError, day_bounds, parse_date, slot_sums
from ..http._app import Request, Response, Route, Router
from ..sessions._registry import SessionRegistry
from ._page import render_dashboard
from ._view import SERIES, ChartSeries, DashboardView, LiveServer, ban_lines, maintenance_text

__all__ = ["DASHBOARD_KEY_HEADER", "Dashboard"]

DASHBOARD_KEY_HEADER = "x-gs-hooks-key"


class Dashboard:
    """The ``/dashboard`` page.

    Args:
        registry: live sessions (live CCU per server id).
        history: the CCU history (chart; delivery health when it is also a health source).
        clock: "now" and "today" (KST).
        period_s: the CCU grid period.
        server_ids: the server ids the CCU reporter reports (listed even at zero).
        key: optional dashboard key.
        bans: returns the ban book (or None); called per page.
        maintenance: returns the Gamebase maintenance watcher (or None); called per page.
        refresh_s: auto-refresh period of the page (0 = off).
    """

    def __init__(
        self,
        *,
        registry: SessionRegistry,
        history: CcuHistorySource,
        clock: Clock,
        period_s: int,
        server_ids: Sequence[str] = (),
        key: Secret | None = None,
        bans: Callable[[], BanBook | None] | None = None,
        maintenance: Callable[[], MaintenanceWatcher | None] | None = None,
        refresh_s: int = 30,
    ) -> None:
        self.registry = registry
        self.history = history
        self.clock = clock
        self.period_s = period_s
        self.server_ids = tuple(server_ids)
        self._key = key
        self._bans = bans or (lambda: None)
        self._maintenance = maintenance or (lambda: None)
        self.refresh_s = refresh_s

    def install(self, router: Router, *, allow: Iterable[str] = ()) -> Route:
        """Add ``GET /dashboard`` to ``router`` (``allow``: IP allowlist, empty = any)."""
        return router.add("GET", "/dashboard", self.handle, guard=self.guard, allow=allow)

    def guard(self, request: Request) -> Response | None:
        """Refuse a request without the dashboard key (when one is set)."""
        if self._key is None or not self._key:
            return None
        given = request.query.get("key") or request.header(DASHBOARD_KEY_HEADER) or ""
        if hmac.compare_digest(given.encode("utf-8"), self._key.get_secret_value().encode("utf-8")):
            return None
        return Response.text(
            "dashboard key required: add ?key=<dashboard key> or the x-gs-hooks-key header\n", status=401
        )

    def default_days(self) -> tuple[date, date, date]:
        """Today, yesterday and a week ago (KST)."""
        today = self.clock.now().astimezone(KST).date()
        return today, today - timedelta(days=1), today - timedelta(days=7)

    async def collect(self, days: Sequence[date], *, error: str | None = None, key: str | None = None) -> DashboardView:
        """Gather everything one page shows."""
        now = self.clock.time()
        ids = list(dict.fromkeys([*self.server_ids, *sorted(self.registry.server_ids())]))
        live = tuple(
            LiveServer(sid, self.registry.count_players(sid), self.registry.count_connections(sid)) for sid in ids
        )
        series = []
        for name, day in zip(SERIES, days, strict=True):
            start, end = day_bounds(day)
            samples = await self.history.samples(start, end)
            series.append(ChartSeries(name, day, slot_sums(samples, day, self.period_s)))
        health = None
        if isinstance(self.history, HealthSource) and getattr(self.history, "available", True):
            health = await self.history.delivery_health(ids)
        bans = ban_lines(self._bans())
        maint = maintenance_text(self._maintenance())
        return DashboardView(
            now=now,
            period_s=self.period_s,
            live=live,
            series=tuple(series),
            health=health,
            bans=bans[0] if bans else None,
            bans_total=bans[1] if bans else None,
            maintenance=maint[0] if maint else None,
            maintenance_detail=maint[1] if maint else "",
            error=error,
            key=key,
            refresh_s=self.refresh_s,
        )

    async def handle(self, request: Request) -> Response:
        """Serve the page (the route handler)."""
        query = request.query
        days = list(self.default_days())
        error = None
        for i, name in enumerate(SERIES):
            raw = query.get(name, "")
            if raw:
                try:
                    days[i] = parse_date(raw, 0, name)
                except GamePotError:
                    error = f"{name}={raw[:40]!r} is not a date: use YYYY-MM-DD"
        view = await self.collect(days, error=error, key=query.get("key") or None)
        response = Response.text(render_dashboard(view), 400 if error else 200, "text/html; charset=utf-8")
        response.headers += [
            ("cache-control", "no-store"),
            ("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"),
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "no-referrer"),
        ]
        return response

    def __repr__(self) -> str:
        return f"Dashboard(period_s={self.period_s}, key={'set' if self._key else 'none'})"
