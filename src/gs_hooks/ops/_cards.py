"""The dashboard's incident cards (pure HTML from the view): logins and kicks over the last hour, Gamebase and
Hive webhook health, the live sessions and the ban list (searchable, paged, with kick and unban buttons).

Links keep the page's view (key, zoom, dates, searches) and are relative to the page (``dashboard?...``), so they
work under any mount prefix. The search boxes belong to the page's one form (``form="view"``), which carries the
key: a search submits the whole view.
"""

from __future__ import annotations

import html
import time
from urllib.parse import urlencode

from ._view import BanLine, DashboardView, PeerHealth, RatePanel, SessionLine, Table, fmt_dt

__all__ = ["card_peer", "card_rates", "e", "fmt_age", "href", "table_bans", "table_sessions"]


def e(value: object) -> str:
    """HTML-escaped text."""
    return html.escape(str(value), quote=True)


def fmt_age(now: float, ts: float) -> str:
    """``12 s ago``, ``5 min ago``, ``3 h ago``, ``2 days ago``."""
    s = max(0, int(now - ts))
    if s < 90:
        return f"{s} s ago"
    if s < 5400:
        return f"{s // 60} min ago"
    if s < 172_800:
        return f"{s // 3600} h ago"
    return f"{s // 86_400} days ago"


def href(view: DashboardView, **changes: str | None) -> str:
    """A link to the page with the view's parameters, some changed (None drops one)."""
    params = dict(view.params)
    for name, value in changes.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
    query = urlencode(sorted(params.items()))
    return e("dashboard" + (f"?{query}" if query else ""))


def _spark(counts: tuple[int, ...]) -> str:
    """A bar per minute, oldest first (the last hour)."""
    top = max(counts, default=0) or 1
    width = 2 * len(counts)
    bars = "".join(
        f'<rect x="{2 * i}" y="{20 - 20 * n / top:.1f}" width="1.6" height="{20 * n / top:.1f}"/>'
        for i, n in enumerate(counts)
        if n
    )
    return f'<svg class="spark" viewBox="0 0 {width} 20" width="{width}" height="20" aria-hidden="true">{bars}</svg>'


def card_rates(panel: RatePanel, ident: str) -> str:
    """Counts over the last hour by outcome (logins) or reason (kicks), with a bar per minute."""
    out = [f'<section class="card half" id="{ident}"><h2>{e(panel.title)} · last hour</h2>']
    if not panel.rows:
        out.append(f'<div class="muted">no {e(panel.title.lower())} in the last hour</div></section>')
        return "".join(out)
    out.append('<table><tr><th></th><th class="num">last hour</th><th class="num">per min</th>')
    out.append('<th class="num">last 5 min</th><th>per minute</th></tr>')
    for row in panel.rows:
        out.append(
            f'<tr data-label="{e(row.label)}"><td><b>{e(row.label)}</b></td><td class="num total">{row.total:,}</td>'
            f'<td class="num">{row.total / max(len(row.per_minute), 1):.2f}</td>'
            f'<td class="num">{sum(row.per_minute[-5:]):,}</td><td>{_spark(row.per_minute)}</td></tr>'
        )
    out.append("</table></section>")
    return "".join(out)


def card_peer(peer: PeerHealth, ident: str) -> str:
    """A platform's health: its state, last success, last error code, latency (wall clock)."""
    out = [f'<section class="card half" id="{ident}"><h2>{e(peer.name)}</h2>']
    if not peer.configured:
        out.append('<div class="big muted">off</div><div class="muted">not configured</div></section>')
        return "".join(out)
    now = time.time()
    ok_at, err_at = peer.last_success_at, peer.last_error_at
    if ok_at is None and err_at is None:
        word, cls = "no exchange yet", "muted"
    elif err_at is not None and (ok_at is None or err_at > ok_at):
        word, cls = "failing", "bad"
    else:
        word, cls = "ok", "ok"
    out.append(f'<div class="big"><span class="badge big-badge {cls} state">{e(word)}</span></div><table>')
    success = f"{fmt_dt(ok_at)} ({fmt_age(now, ok_at)})" if ok_at is not None else "never"
    out.append(f'<tr><th>last success</th><td class="last-success">{e(success)}</td></tr>')
    error = "none" if err_at is None else f"{peer.last_error_code} at {fmt_dt(err_at)} ({fmt_age(now, err_at)})"
    out.append(f'<tr><th>last error</th><td class="last-error">{e(error)}</td></tr>')
    latency = "—" if peer.last_latency_s is None else f"{peer.last_latency_s * 1000:.0f} ms"
    out.append(f'<tr><th>latency (latest)</th><td class="latency">{e(latency)}</td></tr></table></section>')
    return "".join(out)


def _pager(view: DashboardView, table: Table, param: str, anchor: str) -> str:
    parts = [f'<div class="pager" id="{anchor}-pager">']
    if table.page > 1:
        parts.append(f'<a href="{href(view, **{param: str(table.page - 1)})}#{anchor}" class="prev">‹ previous</a>')
    parts.append(f'<span class="where">page {table.page:,} of {table.pages:,} · {table.total:,} rows</span>')
    if table.page < table.pages:
        parts.append(f'<a href="{href(view, **{param: str(table.page + 1)})}#{anchor}" class="next">next ›</a>')
    parts.append("</div>")
    return "".join(parts)


def _search(name: str, value: str, label: str) -> str:
    return (
        f'<input type="search" name="{name}" value="{e(value)}" form="view" placeholder="{e(label)}" '
        f'aria-label="{e(label)}"> <button type="submit" form="view" class="plain">search</button>'
    )


def table_sessions(view: DashboardView, table: Table) -> str:
    """The live sessions, searchable by player, paged, each logged-in one with a kick button."""
    out = ['<section class="card wide" id="sessions"><h2>Live sessions</h2><div class="toolbar">']
    out.append(_search("sq", table.query, "player id contains"))
    out.append("</div><table><tr><th>session</th><th>player</th><th>server id</th><th>connected</th><th></th></tr>")
    for row in table.rows:
        assert isinstance(row, SessionLine)
        player = row.player_id
        button = (
            f'<button type="button" class="danger" data-action="kick" data-player="{e(player)}">kick</button>'
            if player is not None and view.admin_on
            else ""
        )
        out.append(
            f'<tr data-session="{row.id}" data-player="{e(player or "")}"><td>{row.id}</td>'
            f"<td><b>{e(player) if player is not None else '<span class=muted>not logged in</span>'}</b></td>"
            f"<td>{e(row.server_id)}</td><td>{e(fmt_dt(row.connected_at))}</td><td>{button}</td></tr>"
        )
    if not table.rows:
        out.append('<tr><td colspan="5" class="muted">no live session matches</td></tr>')
    out.append("</table>")
    out.append(_pager(view, table, "sp", "sessions"))
    out.append("</section>")
    return "".join(out)


def table_bans(view: DashboardView, table: Table) -> str:
    """Every ban in force, searchable by player, paged (newest first), each with an unban button."""
    out = ['<section class="card wide" id="ban-list"><h2>Bans in force</h2><div class="toolbar">']
    out.append(_search("bq", table.query, "player id contains"))
    out.append(
        "</div><table><tr><th>player</th><th>source</th><th>since (KST)</th><th>until (KST)</th>"
        "<th>message</th><th></th></tr>"
    )
    for row in table.rows:
        assert isinstance(row, BanLine)
        until = fmt_dt(row.ends_at) if row.ends_at is not None else "permanent"
        since = fmt_dt(row.starts_at) if row.starts_at is not None else ""
        button = (
            f'<button type="button" data-action="unban" data-player="{e(row.player_id)}">unban</button>'
            if view.admin_on
            else ""
        )
        out.append(
            f'<tr data-player="{e(row.player_id)}"><td><b>{e(row.player_id)}</b></td><td>{e(row.source)}</td>'
            f"<td>{e(since)}</td><td>{e(until)}</td><td>{e(row.reason[:120])}</td><td>{button}</td></tr>"
        )
    if not table.rows:
        out.append('<tr><td colspan="6" class="muted">no ban in force matches</td></tr>')
    out.append("</table>")
    out.append(_pager(view, table, "bp", "ban-list"))
    out.append("</section>")
    return "".join(out)
