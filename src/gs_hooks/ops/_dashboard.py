"""The ops dashboard at ``/dashboard`` on the embedded listener (or the ASGI app): an incident tool on one page.

One server-rendered HTML page, no CDN and no external asset (air-gapped ops networks): live counts per server id;
CCU on a zoomable time axis (``?span=1h``, ``6h``, or ``24h``: the three-date overlay of the day, today / yesterday
/ a week ago by default, other dates via ``?one=&two=&three=``); CCU delivery health; logins by outcome and kicks
by reason over the last hour; Gamebase and Hive webhook health (last success, last error code, latency); the
maintenance state; every ban in force, searchable and paged (``?bq=&bp=``); the live sessions, searchable and
paged (``?sq=&sp=``); unban and kick buttons that call the admin API (with its key, after a confirmation);
version, host and uptime. It reads the capabilities and is written to by none of them.

Strategy: :meth:`Dashboard.collect` gathers everything into a frozen :class:`~gs_hooks.ops._view.DashboardView`
(the only async part); :func:`~gs_hooks.ops._page.render_dashboard` turns a view into HTML and is pure.

Access: off unless ``listener.dashboard``; behind ``listener.dashboard_allow`` (IP allowlist) and, when set,
``listener.dashboard_key`` given as ``?key=`` or the ``x-gs-hooks-key`` header (constant-time compare). When the
key came in the query, the page's forms and links carry it along (the page only goes to whoever sent it).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterable, Sequence
from datetime import date, timedelta

from .. import _metrics
from .._config import Secret
from .._time import KST
from ..gamepot._history import HealthSource
from ..gamepot._protocol import GamePotError, HistorySample, day_bounds, parse_date, slot_sums
from ..http._app import Request, Response, Route, Router
from ._admin_protocol import Page
from ._lists import find_bans, find_sessions, soonest_ending
from ._page import render_dashboard
from ._sources import OpsSources, hostname
from ._view import (
    SERIES,
    SPANS,
    About,
    BanLine,
    ChartSeries,
    DashboardView,
    LiveServer,
    PeerHealth,
    SessionLine,
    Table,
    WindowChart,
    ban_line,
    maintenance_text,
    rate_panel,
)

__all__ = ["DASHBOARD_KEY_HEADER", "PAGE_ROWS", "Dashboard"]

DASHBOARD_KEY_HEADER = "x-gs-hooks-key"
PAGE_ROWS = 25
"""Rows per page of the ban and session tables."""
_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'"
_KEPT = ("key", "span", *SERIES, "bq", "bp", "sq", "sp")  # the query parameters links and forms carry along


def window_points(samples: Iterable[HistorySample], start: float, end: float, period_s: int) -> list[tuple[float, int]]:
    """(slot start, users summed over server ids) for the slots in ``[start, end]`` that have a sample; a server
    id with several samples in one slot counts its latest."""
    latest: dict[tuple[int, str], tuple[float, int]] = {}
    for s in samples:
        if not start - period_s < s.at <= end:
            continue
        key = (int(s.at // period_s), s.server_id)
        seen = latest.get(key)
        if seen is None or s.at >= seen[0]:
            latest[key] = (s.at, s.users)
    sums: dict[int, int] = {}
    for (slot, _), (_, users) in latest.items():
        sums[slot] = sums.get(slot, 0) + users
    return [(float(slot * period_s), users) for slot, users in sorted(sums.items()) if slot * period_s >= start]


def _page_number(raw: str, name: str) -> tuple[int, str | None]:
    if not raw:
        return 1, None
    if raw.isascii() and raw.isdigit() and len(raw) <= 7 and int(raw) >= 1:
        return int(raw), None
    return 1, f"{name}={raw[:20]!r} is not a page number: use 1, 2, 3..."


class Dashboard:
    """The ``/dashboard`` page.

    Args:
        src: what the page reads (registry, ban book, history, watchers...).
        period_s: the CCU grid period.
        server_ids: the server ids the CCU reporter reports (listed even at zero).
        key: optional dashboard key.
        admin_key_is_dashboard_key: the admin API takes the dashboard key (no admin key of its own): the page
            then fills the key in for its buttons when it was opened with ``?key=``.
        webhook: the Hive suspension webhook is configured (its health card says "off" otherwise).
        admin_on: the admin API has a key (its buttons work).
        refresh_s: auto-refresh period of the page (0 = off).
    """

    def __init__(
        self,
        src: OpsSources,
        *,
        period_s: int,
        server_ids: Sequence[str] = (),
        key: Secret | None = None,
        admin_key_is_dashboard_key: bool = False,
        webhook: bool = False,
        admin_on: bool = False,
        refresh_s: int = 30,
    ) -> None:
        self.src = src
        self.registry = src.registry
        self.history = src.history
        self.clock = src.clock
        self.period_s = period_s
        self.server_ids = tuple(server_ids)
        self._key = key
        self._share_key = admin_key_is_dashboard_key
        self.webhook = webhook
        self.admin_on = admin_on
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

    async def _series(self, days: Sequence[date]) -> tuple[ChartSeries, ...]:
        series = []
        for name, day in zip(SERIES, days, strict=True):
            start, end = day_bounds(day)
            samples = await self.history.samples(start, end)
            series.append(ChartSeries(name, day, slot_sums(samples, day, self.period_s)))
        return tuple(series)

    async def _window(self, span: str, now: float) -> WindowChart:
        start = now - SPANS[span]
        samples = await self.history.samples(start - self.period_s, now + 1)
        return WindowChart(span, start, now, tuple(window_points(samples, start, now, self.period_s)))

    def _peers(self) -> tuple[PeerHealth, ...]:
        gamebase = self.src.verifier() is not None or self.src.maintenance is not None
        return (
            PeerHealth(name="Gamebase", configured=gamebase, **_metrics.GAMEBASE.snapshot()),
            PeerHealth(name="Hive webhook", configured=self.webhook, **_metrics.WEBHOOK.snapshot()),
        )

    def _tables(
        self, bans_q: str, bans_page: int, sessions_q: str, sessions_page: int
    ) -> tuple[Table, Table, int, tuple[BanLine, ...]]:
        """The ban and session tables' pages, the count of bans in force and the three that end soonest."""
        active = self.src.book.active_bans()
        found = find_bans(self.src.book, Page(q=bans_q, offset=(bans_page - 1) * PAGE_ROWS, limit=PAGE_ROWS), active)
        ban_table = Table(
            query=bans_q,
            page=bans_page,
            pages=max(1, -(-found.total // PAGE_ROWS)),
            total=found.total,
            rows=tuple(ban_line(b) for b in found.bans),
        )
        people = find_sessions(
            self.registry, Page(q=sessions_q, offset=(sessions_page - 1) * PAGE_ROWS, limit=PAGE_ROWS)
        )
        session_table = Table(
            query=sessions_q,
            page=sessions_page,
            pages=max(1, -(-people.total // PAGE_ROWS)),
            total=people.total,
            rows=tuple(SessionLine(s.id, s.player_id, s.server_id, s.connected_at) for s in people.sessions),
        )
        return ban_table, session_table, len(active), tuple(ban_line(b) for b in soonest_ending(active))

    async def collect(
        self,
        days: Sequence[date],
        *,
        error: str | None = None,
        key: str | None = None,
        span: str = "24h",
        bans_q: str = "",
        bans_page: int = 1,
        sessions_q: str = "",
        sessions_page: int = 1,
        params: Sequence[tuple[str, str]] = (),
    ) -> DashboardView:
        """Gather everything one page shows."""
        now = self.clock.time()
        ids = list(dict.fromkeys([*self.server_ids, *sorted(self.registry.server_ids())]))
        live = tuple(
            LiveServer(sid, self.registry.count_players(sid), self.registry.count_connections(sid)) for sid in ids
        )
        health = None
        if isinstance(self.history, HealthSource) and getattr(self.history, "available", True):
            health = await self.history.delivery_health(ids)
        ban_table, session_table, bans_total, soonest = self._tables(bans_q, bans_page, sessions_q, sessions_page)
        maint = maintenance_text(self.src.maintenance)
        since = self.src.lifecycle.running_since
        return DashboardView(
            now=now,
            period_s=self.period_s,
            live=live,
            series=await self._series(days),
            health=health,
            bans=soonest,
            bans_total=bans_total,
            maintenance=maint[0] if maint else None,
            maintenance_detail=maint[1] if maint else "",
            error=error,
            key=key,
            refresh_s=self.refresh_s,
            span=span,
            window=None if span == "24h" else await self._window(span, now),
            about=About(
                version=_metrics.VERSION,
                python=_metrics.PYTHON,
                host=hostname(),
                state=self.src.lifecycle.state.value,
                uptime_s=None if since is None else max(0.0, time.time() - since),
            ),
            rates=(rate_panel("Logins", _metrics.LOGINS), rate_panel("Kicks", _metrics.KICKS)),
            peers=self._peers(),
            ban_table=ban_table,
            session_table=session_table,
            admin_key=key if self._share_key else None,
            admin_on=self.admin_on,
            params=tuple(params),
        )

    async def handle(self, request: Request) -> Response:
        """Serve the page (the route handler)."""
        query = request.query
        days = list(self.default_days())
        errors = []
        for i, name in enumerate(SERIES):
            raw = query.get(name, "")
            if raw:
                try:
                    days[i] = parse_date(raw, 0, name)
                except GamePotError:
                    errors.append(f"{name}={raw[:40]!r} is not a date: use YYYY-MM-DD")
        span = query.get("span", "") or "24h"
        if span not in SPANS:
            errors.append(f"span={span[:20]!r} is not a zoom level: use 1h, 6h or 24h")
            span = "24h"
        bans_page, bad = _page_number(query.get("bp", ""), "bp")
        sessions_page, bad2 = _page_number(query.get("sp", ""), "sp")
        errors += [e for e in (bad, bad2) if e]
        view = await self.collect(
            days,
            error="; ".join(errors) or None,
            key=query.get("key") or None,
            span=span,
            bans_q=query.get("bq", "")[:128],
            bans_page=bans_page,
            sessions_q=query.get("sq", "")[:128],
            sessions_page=sessions_page,
            params=[(k, query[k]) for k in _KEPT if query.get(k)],
        )
        response = Response.text(render_dashboard(view), 400 if errors else 200, "text/html; charset=utf-8")
        response.headers += [
            ("cache-control", "no-store"),
            ("content-security-policy", _CSP),
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "no-referrer"),
        ]
        return response

    def __repr__(self) -> str:
        return f"Dashboard(period_s={self.period_s}, key={'set' if self._key else 'none'})"
