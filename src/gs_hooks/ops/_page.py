"""The dashboard page's HTML, from a :class:`~gs_hooks.ops._view.DashboardView` (pure).

One server-rendered page, no CDN, no external asset and no JS framework (:mod:`gs_hooks.ops._assets`): a card per
subject (live counts, CCU delivery, maintenance, bans; logins and kicks over the last hour; Gamebase and the Hive
webhook), the CCU chart on a zoomable axis (:mod:`gs_hooks.ops._chart`), a table per server id, the live sessions
and the ban list (:mod:`gs_hooks.ops._cards`). Every value is escaped; links are relative to the page, so it works
under any mount prefix.
"""

from __future__ import annotations

from datetime import date, datetime
from urllib.parse import quote

from .._time import KST
from ..gamepot._protocol import minute_label
from ._assets import CSS, script
from ._cards import card_peer, card_rates, e, fmt_age, href, table_bans, table_sessions
from ._chart import render_chart, render_window_chart
from ._view import COLORS, SPANS, DashboardView, fmt_dt

__all__ = ["render_dashboard"]

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


def _fmt_int(n: int | None) -> str:
    return "—" if n is None else f"{n:,}"


def _day_label(day: date, today: date) -> str:
    delta = (today - day).days
    rel = {0: "today", 1: "yesterday", 7: "a week ago"}.get(delta)
    if rel is None:
        rel = f"{delta} days ago" if delta > 0 else ("tomorrow" if delta == -1 else f"in {-delta} days")
    return f"{rel} · {day.strftime('%a')}"


def _result_badge(code: int | None) -> str:
    if code is None:
        return '<span class="badge muted">no answer yet</span>'
    cls = "ok" if code in _DELIVERED else ("warn" if code == 300 else "bad")
    return f'<span class="badge {cls}">{code} {e(_RESULT_TEXT.get(code, ""))}</span>'


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
    when = f"last delivered {fmt_age(view.now, last_ok)}" if last_ok is not None else "nothing delivered yet"
    out.append(f'<div class="muted">backlog <b id="backlog">{_fmt_int(depth)}</b> samples · {e(when)}</div></section>')
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
            f"{e(view.maintenance)}</span></div>"
        )
        out.append(f'<div class="muted">{e(view.maintenance_detail or "no window announced")}</div>')
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
            until = f"until {fmt_dt(b.ends_at)[5:16]}" if b.ends_at is not None else "permanent"
            rows.append(f"<li><b>{e(b.player_id)}</b> <span class='muted'>{e(b.source)} · {e(until)}</span></li>")
        out.append(f'<ul class="bans">{"".join(rows)}</ul>')
        out.append(f'<a href="#ban-list" class="muted" id="bans-all">all {total:,} in the ban list ↓</a>')
    else:
        out.append('<div class="muted">no player is banned</div>')
    out.append("</section>")
    return "".join(out)


def _spans(view: DashboardView) -> str:
    links = []
    for span in SPANS:
        cls = ' class="on"' if span == view.span else ""
        links.append(f'<a href="{href(view, span=None if span == "24h" else span)}"{cls} data-span="{span}">{span}</a>')
    return f'<nav class="spans" aria-label="time axis">{"".join(links)}</nav>'


def _card_chart(view: DashboardView, today: date) -> str:
    per_slot = view.period_s // 60
    title = "Concurrent users over the day (KST)" if view.window is None else f"Concurrent users, last {view.span}"
    out = [f'<section class="card wide" id="chart"><h2>{title}</h2>', _spans(view)]
    # Links are relative to the page ("dashboard" resolves next to it), so they stay right under any mount prefix
    # (ASGI root_path, a reverse proxy's path) without the page knowing it. The form is the page's view: the
    # search boxes of the tables below belong to it (form="view").
    out.append('<form class="dates" id="view" method="get" action="dashboard">')
    if view.window is None:
        for s in view.series:
            peak = max(s.slots.items(), key=lambda kv: (kv[1], -kv[0]), default=None)
            stats = (
                f"peak {peak[1]:,} at {minute_label(peak[0] * per_slot)} · {len(s.slots):,} samples"
                if peak
                else "no samples"
            )
            out.append(
                f'<div class="item" data-series="{s.name}">'
                f'<div class="head"><span class="sw {s.name}" style="border-top-color:{COLORS[s.name]}"></span>'
                f"<b>{e(_day_label(s.day, today))}</b>"
                f'<input type="date" name="{s.name}" value="{s.day.isoformat()}" aria-label="date {s.name}"></div>'
                f'<div class="stats">{e(stats)}</div></div>'
            )
    else:
        out.append(f'<input type="hidden" name="span" value="{e(view.span)}">')
    if view.key:
        out.append(f'<input type="hidden" name="key" value="{e(view.key)}">')
    reset = "dashboard" + (f"?key={e(quote(view.key, safe=''))}" if view.key else "")
    show = '<button type="submit">Show</button> ' if view.window is None else ""
    out.append(f'<div class="actions">{show}<a href="{reset}">reset</a></div></form>')
    if view.window is None:
        out.append(render_chart(view.series, view.period_s, view.now))
    else:
        out.append(render_window_chart(view.window, view.period_s))
    out.append("</section>")
    return "".join(out)


def _operator_bar(view: DashboardView) -> str:
    out = ['<section class="card wide" id="operator"><div class="toolbar">']
    if view.admin_on:
        value = f' value="{e(view.admin_key)}"' if view.admin_key else ""
        out.append(
            '<label>admin key <input type="password" id="admin-key" autocomplete="off"'
            f'{value} placeholder="GS_HOOKS_ADMIN_KEY"></label>'
            '<span class="muted">kick and unban ask for a confirmation, then call the admin API</span>'
        )
    else:
        out.append(
            '<span class="muted" id="admin-off">admin API off: set GS_HOOKS_ADMIN_KEY (or GS_HOOKS_DASHBOARD_KEY) '
            "for the kick and unban buttons</span>"
        )
    out.append('</div><div id="action-status" role="status"></div></section>')
    return "".join(out)


def _about(view: DashboardView) -> str:
    about = view.about
    if about is None:
        return ""
    up = "—" if about.uptime_s is None else _uptime(about.uptime_s)
    return (
        f'<span class="sub" id="about">v<span id="version">{e(about.version)}</span> · '
        f'<span id="host">{e(about.host)}</span> · up <span id="uptime">{e(up)}</span> · {e(about.state)}</span>'
    )


def _uptime(seconds: float) -> str:
    s = int(seconds)
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    if s < 86_400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86_400} d {s % 86_400 // 3600} h"


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
            f'<tr data-server="{e(sid)}"><td><b>{e(sid)}</b></td>'
            f'<td class="num">{srv.players if srv else 0:,}</td><td class="num">{srv.connections if srv else 0:,}</td>'
            f"<td>{result}</td><td>{e(fmt_dt(ok_at)) if ok_at is not None else ('never' if h else '—')}</td>"
            f'<td class="muted">{e(fmt_age(view.now, ok_at)) if ok_at is not None else ""}</td></tr>'
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
        "<title>gs_hooks · operations</title>",
        f"<style>{CSS}</style></head><body>",
        "<header><h1>gs_hooks · operations</h1>",
        f'<span class="sub">CCU samples every {view.period_s // 60} min · times in KST</span>',
        _about(view),
        f'<span class="right"><span id="now">{e(fmt_dt(view.now))} KST</span>{refresh}</span>',
        "</header><main>",
    ]
    if view.error:
        parts.append(f'<div class="wide error" id="error">{e(view.error)}</div>')
    parts += [_operator_bar(view), _card_live(view), _card_delivery(view), _card_maintenance(view), _card_bans(view)]
    parts += [card_rates(panel, f"rates-{panel.title.lower()}") for panel in view.rates]
    parts += [card_peer(peer, "peer-" + peer.name.split()[-1].lower()) for peer in view.peers]
    parts += [_card_chart(view, today), _card_servers(view)]
    if view.session_table is not None:
        parts.append(table_sessions(view, view.session_table))
    if view.ban_table is not None:
        parts.append(table_bans(view, view.ban_table))
    parts += ["</main>", f"<script>{script(view.refresh_s)}</script>", "</body></html>"]
    return "\n".join(parts)
