"""The dashboard page's HTML, from a :class:`~gs_hooks.ops._view.DashboardView` (pure).

One server-rendered page, no CDN and no JS framework (six lines of JS reload it): a card per subject (live counts,
CCU delivery, maintenance, bans), the three-date chart (:mod:`gs_hooks.ops._chart`) and a table per server id.
Every value is escaped; links are relative to the page, so it works under any mount prefix.
"""

from __future__ import annotations

import html
from datetime import date, datetime
from urllib.parse import quote

from .._time import KST
from ..gamepot._protocol import minute_label
from ._chart import render_chart
from ._view import COLORS, DashboardView, fmt_dt

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


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _fmt_int(n: int | None) -> str:
    return "—" if n is None else f"{n:,}"


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
            until = f"until {fmt_dt(b.ends_at)[5:16]}" if b.ends_at is not None else "permanent"
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
            f'<div class="head"><span class="sw {s.name}" style="border-top-color:{COLORS[s.name]}"></span>'
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
            f"<td>{result}</td><td>{_e(fmt_dt(ok_at)) if ok_at is not None else ('never' if h else '—')}</td>"
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
        f'<span class="right"><span id="now">{_e(fmt_dt(view.now))} KST</span>{refresh}</span>',
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
