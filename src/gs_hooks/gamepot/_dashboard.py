"""The ops dashboard at ``/dashboard`` on the embedded listener.

One server-rendered HTML page (no CDN, no JS framework; six lines of JS reload it every 30 s): live CCU per
server id, a three-date overlay chart of CCU over the day (today, yesterday and a week ago by default, like
GamePot's view; other dates via ``?one=&two=&three=``) as inline SVG, delivery health of the CCU reporter,
active bans and maintenance state.

Strategy: :meth:`Dashboard.collect` gathers everything into a frozen :class:`DashboardView` (the only async
part); :func:`render_dashboard` turns a view into HTML and is pure. Every chart point is an SVG ``circle`` with
``data-series``/``data-date``/``data-minute``/``data-time``/``data-value``, one per grid slot that has a sample,
so a test (or a scraper) can read the numbers back.

Access: off unless ``listener.dashboard``; behind ``listener.dashboard_allow`` (IP allowlist) and, when set,
``listener.dashboard_key`` given as ``?key=`` or the ``x-gs-hooks-key`` header (constant-time compare). When the
key came in the query, the date form carries it along (the page only goes to whoever sent it).
"""

from __future__ import annotations

import hmac
import html
import math
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import quote

import msgspec

from .._clock import Clock
from .._config import Secret
from ..http._app import Request, Response, Route, Router
from ..sessions._registry import SessionRegistry
from ._history import CcuHistorySource, DeliveryHealth, HealthSource
from ._protocol import KST, GamePotError, day_bounds, minute_label, parse_date, slot_sums

if TYPE_CHECKING:
    from ..bans import BanBook
    from ..gamebase import MaintenanceWatcher

__all__ = [
    "DASHBOARD_KEY_HEADER",
    "BanLine",
    "ChartSeries",
    "Dashboard",
    "DashboardView",
    "LiveServer",
    "render_dashboard",
]

DASHBOARD_KEY_HEADER = "x-gs-hooks-key"
_SERIES = ("one", "two", "three")
_COLORS = {"one": "#2563eb", "two": "#ea580c", "three": "#64748b"}
_DASH = {"one": "", "two": "", "three": "5 4"}
_DELIVERED = (100, 101)
_RESULT_TEXT = {
    100: "saved",
    101: "duplicate (delivered)",
    200: "bad request",
    201: "bad game key",
    202: "bad server id",
    203: "bad date",
    204: "bad reqkey",
    300: "platform DB error",
    301: "sum check failed",
    302: "not allowed",
}


class LiveServer(msgspec.Struct, frozen=True):
    """Live counts of one server id."""

    server_id: str
    players: int
    connections: int


class ChartSeries(msgspec.Struct, frozen=True):
    """One day of the overlay chart.

    Attributes:
        name: ``one``, ``two`` or ``three``.
        day: the KST day.
        slots: slot index → users summed over server ids (slots with a sample only).
    """

    name: str
    day: date
    slots: dict[int, int]


class BanLine(msgspec.Struct, frozen=True):
    """One active ban as the dashboard lists it."""

    player_id: str
    source: str = ""
    ends_at: float | None = None
    reason: str = ""


class DashboardView(msgspec.Struct, frozen=True, kw_only=True):
    """Everything one dashboard page shows (built by :meth:`Dashboard.collect`)."""

    now: float
    period_s: int
    live: tuple[LiveServer, ...]
    series: tuple[ChartSeries, ...]
    health: DeliveryHealth | None
    bans: tuple[BanLine, ...] | None
    bans_total: int | None = None
    maintenance: str | None = None
    maintenance_detail: str = ""
    error: str | None = None
    key: str | None = None
    refresh_s: int = 30


# -- collecting -------------------------------------------------------------------------------------------------


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def ban_lines(bans: BanBook | None) -> tuple[tuple[BanLine, ...], int] | None:
    """Active bans from the ban book, soonest end first (the first 50) and their count; None without a book."""
    if bans is None:
        return None
    lines = [
        BanLine(player_id=b.player_key, source=b.source, ends_at=_ts(b.ends_at), reason=b.message)
        for b in bans.active_bans()
    ]
    lines.sort(key=lambda b: (b.ends_at is None, b.ends_at or 0.0, b.player_id))
    return tuple(lines[:50]), len(lines)


def maintenance_text(watcher: MaintenanceWatcher | None) -> tuple[str, str] | None:
    """The watcher's state word (none / announced / active / ended) and a detail line (its window, its poll
    failures), or None when there is no watcher."""
    if watcher is None:
        return None
    parts = []
    window = watcher.window
    if window is not None:
        if window.begins_at is not None:
            parts.append(f"from {_fmt_dt(window.begins_at.timestamp())[:16]}")
        if window.ends_at is not None:
            parts.append(f"until {_fmt_dt(window.ends_at.timestamp())[:16]}")
        if window.message:
            parts.append(window.message[:120])
    if watcher.consecutive_failures > 0:
        parts.append(f"Gamebase poll failing ({watcher.consecutive_failures} in a row)")
    return watcher.state.value, " · ".join(parts)


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
        for name, day in zip(_SERIES, days, strict=True):
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
        for i, name in enumerate(_SERIES):
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


# -- rendering (pure) ---------------------------------------------------------------------------------------------


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _fmt_int(n: int | None) -> str:
    return "—" if n is None else f"{n:,}"


def _fmt_dt(ts: float) -> str:
    return datetime.fromtimestamp(ts, KST).strftime("%Y-%m-%d %H:%M:%S")


def _fmt_age(now: float, ts: float) -> str:
    s = max(0, int(now - ts))
    if s < 90:
        return f"{s} s ago"
    if s < 5400:
        return f"{s // 60} min ago"
    if s < 172_800:
        return f"{s // 3600} h ago"
    return f"{s // 86_400} days ago"


def _day_label(day: date, today: date) -> str:
    delta = (today - day).days
    rel = {0: "today", 1: "yesterday", 7: "a week ago"}.get(delta)
    if rel is None:
        rel = f"{delta} days ago" if delta > 0 else ("tomorrow" if delta == -1 else f"in {-delta} days")
    return f"{rel} · {day.strftime('%a')}"


def _nice_scale(top: int) -> tuple[int, int]:
    """(axis maximum, tick step) for values up to ``top``: steps of 1, 2, 2.5 or 5 × 10^k, about 5 ticks."""
    if top <= 0:
        return 10, 2
    raw = top / 5
    mag = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = mag
    for m in (1, 2, 2.5, 5, 10):
        step = max(1, int(m * mag))
        if step >= raw:
            break
    axis = math.ceil(top / step) * step
    if axis == top:
        axis += step
    return axis, step


_W, _H = 1100, 380
_ML, _MR, _MT, _MB = 70, 24, 18, 52


def render_chart(series: Sequence[ChartSeries], period_s: int, now: float) -> str:
    """The overlay chart as an inline SVG."""
    pw, ph = _W - _ML - _MR, _H - _MT - _MB
    per_slot = period_s // 60
    top = max((v for s in series for v in s.slots.values()), default=0)
    axis, step = _nice_scale(top)

    def x(minute: float) -> float:
        return _ML + minute / 1440 * pw

    def y(value: float) -> float:
        return _MT + ph - value / axis * ph

    out = [
        f'<svg id="ccu-chart" viewBox="0 0 {_W} {_H}" width="100%" role="img" '
        f'aria-label="concurrent users over the day, three dates" xmlns="http://www.w3.org/2000/svg">',
        f'<rect x="{_ML}" y="{_MT}" width="{pw}" height="{ph}" class="plot"/>',
    ]
    for v in range(0, axis + 1, step):
        yy = y(v)
        out.append(f'<line x1="{_ML}" x2="{_ML + pw}" y1="{yy:.1f}" y2="{yy:.1f}" class="grid"/>')
        out.append(f'<text x="{_ML - 8}" y="{yy + 4:.1f}" class="ylab">{v:,}</text>')
    for h in range(0, 25, 3):
        xx = x(h * 60)
        out.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{_MT}" y2="{_MT + ph}" class="grid"/>')
        out.append(f'<text x="{xx:.1f}" y="{_MT + ph + 18}" class="xlab">{h:02d}:00</text>')
    out.append(f'<text x="{_ML + pw / 2:.0f}" y="{_H - 8}" class="axis-title">time of day (KST)</text>')
    out.append(
        f'<text x="16" y="{_MT + ph / 2:.0f}" class="axis-title" '
        f'transform="rotate(-90 16 {_MT + ph / 2:.0f})">concurrent users</text>'
    )
    today = datetime.fromtimestamp(now, KST).date()
    for s in reversed(series):  # today's line last, on top
        color, dash = _COLORS[s.name], _DASH[s.name]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        slots = sorted(s.slots)
        run: list[int] = []
        runs: list[list[int]] = []
        for slot in slots:
            if run and slot != run[-1] + 1:
                runs.append(run)
                run = []
            run.append(slot)
        if run:
            runs.append(run)
        out.append(
            f'<g class="series s-{s.name}" data-series="{s.name}" data-date="{s.day.isoformat()}" fill="{color}">'
            f"<title>{_e(s.day.isoformat())} (KST)</title>"
        )
        for r in runs:
            if len(r) > 1:
                pts = " ".join(f"{x(i * per_slot):.1f},{y(s.slots[i]):.1f}" for i in r)
                out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" class="line"{dash_attr}/>')
        radius = 1.8 if s.name == "one" else 1.3
        day_s = s.day.isoformat()
        for i in slots:
            minute = i * per_slot
            value = s.slots[i]
            out.append(
                f'<circle class="pt" cx="{x(minute):.1f}" cy="{y(value):.1f}" r="{radius}" '
                f'data-series="{s.name}" data-date="{day_s}" data-minute="{minute}" '
                f'data-time="{minute_label(minute)}" data-value="{value}"/>'
            )
        out.append("</g>")
    if any(s.day == today for s in series):
        now_min = (now - day_bounds(today)[0]) / 60
        xx = x(now_min)
        out.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{_MT}" y2="{_MT + ph}" class="now"/>')
        out.append(f'<text x="{xx + 4:.1f}" y="{_MT + 12}" class="nowlab">now {minute_label(int(now_min))}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _result_badge(code: int | None) -> str:
    if code is None:
        return '<span class="badge muted">no answer yet</span>'
    cls = "ok" if code in _DELIVERED else ("warn" if code == 300 else "bad")
    return f'<span class="badge {cls}">{code} {_e(_RESULT_TEXT.get(code, ""))}</span>'


_CSS = """
:root{--fg:#0f172a;--muted:#64748b;--line:#e2e8f0;--bg:#f1f5f9;--card:#fff}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans KR",sans-serif;
color:var(--fg);background:var(--bg)}
header{display:flex;align-items:baseline;gap:16px;padding:14px 24px;background:#0f172a;color:#fff}
header h1{font-size:18px;margin:0;font-weight:600}
header .sub{color:#cbd5e1}
header .right{margin-left:auto;color:#cbd5e1;font-size:13px}
main{padding:16px 24px;display:grid;gap:16px;grid-template-columns:repeat(4,minmax(0,1fr))}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px}
.card h2{font-size:13px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);margin:0 0 10px}
.wide{grid-column:1/-1}.half{grid-column:span 2}
.big{font-size:34px;font-weight:650;line-height:1.1}
.muted{color:var(--muted)}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);font-variant-numeric:tabular-nums}
th{color:var(--muted);font-weight:500;font-size:12px}
td.num,th.num{text-align:right}
.badge{display:inline-block;padding:1px 8px;border-radius:999px;font-size:12px;font-weight:600}
.badge.ok{background:#dcfce7;color:#166534}.badge.warn{background:#fef9c3;color:#854d0e}
.badge.bad{background:#fee2e2;color:#991b1b}.badge.muted{background:#f1f5f9;color:#64748b}
.sw{display:inline-block;width:24px;height:0;border-top:3px solid}
.sw.three{border-top-style:dashed}
form.dates{display:flex;flex-wrap:wrap;gap:12px 28px;align-items:flex-start;margin:0 0 4px}
form.dates .item .head{display:flex;align-items:center;gap:8px}
form.dates .item .stats{color:var(--muted);font-size:12px;margin:2px 0 0 32px}
form.dates input{font:inherit;font-size:13px;padding:2px 6px;border:1px solid var(--line);border-radius:6px}
form.dates .actions{margin-left:auto;align-self:center}
form.dates button{font:inherit;padding:4px 14px;border:0;border-radius:6px;background:#2563eb;color:#fff}
form.dates a{color:var(--muted);margin-left:6px}
.big-badge{font-size:20px;padding:2px 12px}
ul.bans{list-style:none;margin:6px 0 0;padding:0;font-size:13px}
.error{background:#fee2e2;color:#991b1b;padding:8px 12px;border-radius:8px}
svg .plot{fill:#fff}
svg .grid{stroke:#e2e8f0;stroke-width:1}
svg .ylab{font-size:12px;fill:#64748b;text-anchor:end}
svg .xlab{font-size:12px;fill:#64748b;text-anchor:middle}
svg .axis-title{font-size:12px;fill:#334155;text-anchor:middle}
svg .line{stroke-width:2;stroke-linejoin:round}
svg .s-one .line{stroke-width:2.5}
svg .now{stroke:#dc2626;stroke-width:1;stroke-dasharray:3 3}
svg .nowlab{font-size:11px;fill:#dc2626}
@media (max-width:900px){main{grid-template-columns:1fr}.half{grid-column:auto}}
"""

_JS = """
(function(){var s=%d;if(!s)return;var box=document.getElementById('auto');
setInterval(function(){if(box&&box.checked)location.reload();},s*1000);})();
"""


def _card_live(view: DashboardView) -> str:
    players = sum(srv.players for srv in view.live)
    conns = sum(srv.connections for srv in view.live)
    return (
        '<section class="card" id="live"><h2>Live now</h2>'
        f'<div class="big" id="live-total">{players:,}</div>'
        f'<div class="muted">players · {conns:,} connections</div></section>'
    )


def _card_delivery(view: DashboardView) -> str:
    out = ['<section class="card" id="delivery"><h2>CCU delivery</h2>']
    health = view.health
    if health is None:
        out.append('<div class="big muted">n/a</div><div class="muted">no CCU reporter configured</div></section>')
        return "".join(out)
    depth = health.backlog_depth
    failing = [h for h in health.servers if h.last_result is not None and h.last_result not in _DELIVERED]
    cls = "bad" if failing else ("warn" if depth else "ok")
    word = f"{len(failing)} failing" if failing else ("catching up" if depth else "healthy")
    out.append(f'<div class="big"><span class="badge big-badge {cls}" id="delivery-state">{word}</span></div>')
    last_ok = max((h.last_success_at for h in health.servers if h.last_success_at is not None), default=None)
    when = f"last delivered {_fmt_age(view.now, last_ok)}" if last_ok is not None else "nothing delivered yet"
    out.append(f'<div class="muted">backlog <b id="backlog">{_fmt_int(depth)}</b> samples · {_e(when)}</div></section>')
    return "".join(out)


def _card_maintenance(view: DashboardView) -> str:
    out = ['<section class="card" id="maintenance"><h2>Maintenance</h2>']
    if view.maintenance is None:
        out.append('<div class="big muted">n/a</div><div class="muted">no maintenance watcher configured</div>')
    else:
        word = view.maintenance.lower()
        cls = {"none": "ok", "ended": "ok", "announced": "warn"}.get(word, "bad")
        out.append(
            f'<div class="big"><span class="badge big-badge {cls}" id="maintenance-state">'
            f"{_e(view.maintenance)}</span></div>"
        )
        out.append(f'<div class="muted">{_e(view.maintenance_detail or "no window announced")}</div>')
    out.append("</section>")
    return "".join(out)


def _card_bans(view: DashboardView) -> str:
    out = ['<section class="card" id="bans"><h2>Active bans</h2>']
    if view.bans is None:
        out.append('<div class="big muted">n/a</div><div class="muted">no ban book configured</div></section>')
        return "".join(out)
    total = view.bans_total or 0
    out.append(f'<div class="big" id="bans-total">{total:,}</div>')
    if view.bans:
        rows = []
        for b in view.bans[:3]:
            until = f"until {_fmt_dt(b.ends_at)[5:16]}" if b.ends_at is not None else "permanent"
            rows.append(f"<li><b>{_e(b.player_id)}</b> <span class='muted'>{_e(b.source)} · {_e(until)}</span></li>")
        more = f"<li class='muted'>and {total - 3:,} more</li>" if total > 3 else ""
        out.append(f'<ul class="bans">{"".join(rows)}{more}</ul>')
    else:
        out.append('<div class="muted">no player is banned</div>')
    out.append("</section>")
    return "".join(out)


def _card_chart(view: DashboardView, today: date) -> str:
    per_slot = view.period_s // 60
    out = ['<section class="card wide" id="chart"><h2>Concurrent users over the day (KST)</h2>']
    # Links are relative to the page ("dashboard" resolves next to it), so they stay right under any mount prefix
    # (ASGI root_path, a reverse proxy's path) without the page knowing it.
    out.append('<form class="dates" method="get" action="dashboard">')
    for s in view.series:
        peak = max(s.slots.items(), key=lambda kv: (kv[1], -kv[0]), default=None)
        stats = (
            f"peak {peak[1]:,} at {minute_label(peak[0] * per_slot)} · {len(s.slots):,} samples"
            if peak
            else "no samples"
        )
        out.append(
            f'<div class="item" data-series="{s.name}">'
            f'<div class="head"><span class="sw {s.name}" style="border-top-color:{_COLORS[s.name]}"></span>'
            f"<b>{_e(_day_label(s.day, today))}</b>"
            f'<input type="date" name="{s.name}" value="{s.day.isoformat()}" aria-label="date {s.name}"></div>'
            f'<div class="stats">{_e(stats)}</div></div>'
        )
    if view.key:
        out.append(f'<input type="hidden" name="key" value="{_e(view.key)}">')
    reset = "dashboard" + (f"?key={_e(quote(view.key, safe=''))}" if view.key else "")
    out.append(f'<div class="actions"><button type="submit">Show</button> <a href="{reset}">reset</a></div></form>')
    out.append(render_chart(view.series, view.period_s, view.now))
    out.append("</section>")
    return "".join(out)


def _card_servers(view: DashboardView) -> str:
    health = {h.server_id: h for h in view.health.servers} if view.health is not None else {}
    ids = list(dict.fromkeys([*(srv.server_id for srv in view.live), *health]))
    live = {srv.server_id: srv for srv in view.live}
    out = ['<section class="card wide" id="servers"><h2>Server ids</h2><table>']
    out.append(
        '<tr><th>server id</th><th class="num">players</th><th class="num">connections</th>'
        "<th>last CCU result</th><th>last delivered (KST)</th><th></th></tr>"
    )
    for sid in ids:
        srv = live.get(sid)
        h = health.get(sid)
        ok_at = h.last_success_at if h is not None else None
        result = _result_badge(h.last_result) if h is not None else '<span class="muted">n/a</span>'
        out.append(
            f'<tr data-server="{_e(sid)}"><td><b>{_e(sid)}</b></td>'
            f'<td class="num">{srv.players if srv else 0:,}</td><td class="num">{srv.connections if srv else 0:,}</td>'
            f"<td>{result}</td><td>{_e(_fmt_dt(ok_at)) if ok_at is not None else ('never' if h else '—')}</td>"
            f'<td class="muted">{_e(_fmt_age(view.now, ok_at)) if ok_at is not None else ""}</td></tr>'
        )
    if not ids:
        out.append('<tr><td colspan="6" class="muted">no sessions and no CCU server ids</td></tr>')
    out.append("</table></section>")
    return "".join(out)


def render_dashboard(view: DashboardView) -> str:
    """The page's HTML for a view."""
    today = datetime.fromtimestamp(view.now, KST).date()
    refresh = (
        f' · <label><input type="checkbox" id="auto" checked> auto-refresh {view.refresh_s} s</label>'
        if view.refresh_s
        else ""
    )
    parts: list[str] = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>gs_hooks · CCU dashboard</title>",
        f"<style>{_CSS}</style></head><body>",
        "<header><h1>gs_hooks · CCU dashboard</h1>",
        f'<span class="sub">samples every {view.period_s // 60} min · times in KST</span>',
        f'<span class="right"><span id="now">{_e(_fmt_dt(view.now))} KST</span>{refresh}</span>',
        "</header><main>",
    ]
    if view.error:
        parts.append(f'<div class="wide error" id="error">{_e(view.error)}</div>')
    parts += [
        _card_live(view),
        _card_delivery(view),
        _card_maintenance(view),
        _card_bans(view),
        _card_chart(view, today),
        _card_servers(view),
        "</main>",
    ]
    if view.refresh_s:
        parts.append(f"<script>{_JS % view.refresh_s}</script>")
    parts.append("</body></html>")
    return "\n".join(parts)
