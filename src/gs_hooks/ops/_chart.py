"""The dashboard's CCU charts as inline SVG (pure): the three-date overlay of the day, and the zoomed window.

Day view: every point is an SVG ``circle`` with ``data-series``/``data-date``/``data-minute``/``data-time``/
``data-value``, one per grid slot that has a sample, so a test (or a scraper) can read the numbers back. Zoomed
view (the last hour or six hours): the axis runs from ``now - span`` to now (the ``svg`` carries ``data-span``,
``data-start``, ``data-end``; each tick ``data-ts``), one series, points with ``data-ts``/``data-time``/
``data-value``. Lines join consecutive slots only: a gap in the samples is a gap in the line.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from .._time import KST
from ..gamepot._protocol import day_bounds, minute_label
from ._view import COLORS, DASH, ChartSeries, WindowChart

__all__ = ["render_chart", "render_window_chart"]

_W, _H = 1100, 380
_ML, _MR, _MT, _MB = 70, 24, 18, 52


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


@dataclass(frozen=True)
class _Plot:
    """The plot area: minutes of the day map to x, users (up to ``axis``) to y."""

    axis: int
    pw: int = _W - _ML - _MR
    ph: int = _H - _MT - _MB

    def x(self, minute: float) -> float:
        return _ML + minute / 1440 * self.pw

    def y(self, value: float) -> float:
        return _MT + self.ph - value / self.axis * self.ph


def render_chart(series: Sequence[ChartSeries], period_s: int, now: float) -> str:
    """The overlay chart as an inline SVG."""
    top = max((v for s in series for v in s.slots.values()), default=0)
    axis, step = _nice_scale(top)
    plot = _Plot(axis)
    out = _frame(plot, step)
    for s in reversed(series):  # today's line last, on top
        out += _series(plot, s, period_s // 60)
    today = datetime.fromtimestamp(now, KST).date()
    if any(s.day == today for s in series):
        out += _now_marker(plot, now, today)
    out.append("</svg>")
    return "\n".join(out)


def _opening(plot: _Plot, step: int, label: str, attrs: str = "") -> list[str]:
    """The SVG's opening, the plot area and the horizontal grid with its labels."""
    pw = plot.pw
    out = [
        f'<svg id="ccu-chart" viewBox="0 0 {_W} {_H}" width="100%" role="img" '
        f'aria-label="{label}"{attrs} xmlns="http://www.w3.org/2000/svg">',
        f'<rect x="{_ML}" y="{_MT}" width="{pw}" height="{plot.ph}" class="plot"/>',
    ]
    for v in range(0, plot.axis + 1, step):
        yy = plot.y(v)
        out.append(f'<line x1="{_ML}" x2="{_ML + pw}" y1="{yy:.1f}" y2="{yy:.1f}" class="grid"/>')
        out.append(f'<text x="{_ML - 8}" y="{yy + 4:.1f}" class="ylab">{v:,}</text>')
    return out


def _frame(plot: _Plot, step: int) -> list[str]:
    """The SVG's opening, the plot area, the grid lines with their labels and the axis titles."""
    pw, ph = plot.pw, plot.ph
    out = _opening(plot, step, "concurrent users over the day, three dates")
    for h in range(0, 25, 3):
        xx = plot.x(h * 60)
        out.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{_MT}" y2="{_MT + ph}" class="grid"/>')
        out.append(f'<text x="{xx:.1f}" y="{_MT + ph + 18}" class="xlab">{h:02d}:00</text>')
    out.append(f'<text x="{_ML + pw / 2:.0f}" y="{_H - 8}" class="axis-title">time of day (KST)</text>')
    out.append(
        f'<text x="16" y="{_MT + ph / 2:.0f}" class="axis-title" '
        f'transform="rotate(-90 16 {_MT + ph / 2:.0f})">concurrent users</text>'
    )
    return out


def _runs(slots: list[int]) -> list[list[int]]:
    """Consecutive slot indexes, grouped (a line is drawn through each group)."""
    run: list[int] = []
    runs: list[list[int]] = []
    for slot in slots:
        if run and slot != run[-1] + 1:
            runs.append(run)
            run = []
        run.append(slot)
    if run:
        runs.append(run)
    return runs


def _series(plot: _Plot, s: ChartSeries, per_slot: int) -> list[str]:
    """One date's group: its lines, then a point per sampled slot."""
    color, dash = COLORS[s.name], DASH[s.name]
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    slots = sorted(s.slots)
    out = [
        f'<g class="series s-{s.name}" data-series="{s.name}" data-date="{s.day.isoformat()}" fill="{color}">'
        f"<title>{html.escape(s.day.isoformat(), quote=True)} (KST)</title>"
    ]
    for r in _runs(slots):
        if len(r) > 1:
            pts = " ".join(f"{plot.x(i * per_slot):.1f},{plot.y(s.slots[i]):.1f}" for i in r)
            out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" class="line"{dash_attr}/>')
    radius = 1.8 if s.name == "one" else 1.3
    day_s = s.day.isoformat()
    for i in slots:
        minute = i * per_slot
        value = s.slots[i]
        out.append(
            f'<circle class="pt" cx="{plot.x(minute):.1f}" cy="{plot.y(value):.1f}" r="{radius}" '
            f'data-series="{s.name}" data-date="{day_s}" data-minute="{minute}" '
            f'data-time="{minute_label(minute)}" data-value="{value}"/>'
        )
    out.append("</g>")
    return out


def _now_marker(plot: _Plot, now: float, today: date) -> list[str]:
    """The red line at the current time of day (when today is one of the dates)."""
    now_min = (now - day_bounds(today)[0]) / 60
    xx = plot.x(now_min)
    return [
        f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{_MT}" y2="{_MT + plot.ph}" class="now"/>',
        f'<text x="{xx + 4:.1f}" y="{_MT + 12}" class="nowlab">now {minute_label(int(now_min))}</text>',
    ]


_TICK_S = {"1h": 600, "6h": 3600}


def render_window_chart(window: WindowChart, period_s: int) -> str:
    """The zoomed chart (the last hour or six hours) as an inline SVG."""
    top = max((v for _, v in window.points), default=0)
    axis, step = _nice_scale(top)
    plot = _Plot(axis)
    pw, ph = plot.pw, plot.ph
    start, end = window.start, window.end
    length = max(end - start, 1.0)

    def x(ts: float) -> float:
        return _ML + (ts - start) / length * pw

    attrs = f' data-span="{window.span}" data-start="{start:.0f}" data-end="{end:.0f}"'
    out = _opening(plot, step, f"concurrent users over the last {window.span}", attrs)
    tick = _TICK_S.get(window.span, 3600)
    first = (int(start) // tick + 1) * tick
    for at in range(first, int(end) + 1, tick):
        xx = x(at)
        label = datetime.fromtimestamp(at, KST).strftime("%H:%M")
        out.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{_MT}" y2="{_MT + ph}" class="grid"/>')
        out.append(f'<text x="{xx:.1f}" y="{_MT + ph + 18}" class="xlab tick" data-ts="{at}">{label}</text>')
    out.append(f'<text x="{_ML + pw / 2:.0f}" y="{_H - 8}" class="axis-title">time (KST), last {window.span}</text>')
    out.append(
        f'<text x="16" y="{_MT + ph / 2:.0f}" class="axis-title" '
        f'transform="rotate(-90 16 {_MT + ph / 2:.0f})">concurrent users</text>'
    )
    color = COLORS["one"]
    out.append(f'<g class="series s-one" data-series="window" fill="{color}">')
    runs: list[list[tuple[float, int]]] = []
    for ts, users in window.points:
        if runs and ts - runs[-1][-1][0] <= period_s:
            runs[-1].append((ts, users))
        else:
            runs.append([(ts, users)])
    for run in runs:
        if len(run) > 1:
            pts = " ".join(f"{x(ts):.1f},{plot.y(v):.1f}" for ts, v in run)
            out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" class="line"/>')
    for ts, users in window.points:
        label = datetime.fromtimestamp(ts, KST).strftime("%H:%M")
        out.append(
            f'<circle class="pt" cx="{x(ts):.1f}" cy="{plot.y(users):.1f}" r="2.2" data-ts="{ts:.0f}" '
            f'data-time="{label}" data-value="{users}"/>'
        )
    out.append("</g>")
    xx = x(end)
    now_label = datetime.fromtimestamp(end, KST).strftime("%H:%M")
    out.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{_MT}" y2="{_MT + ph}" class="now"/>')
    out.append(f'<text x="{xx - 4:.1f}" y="{_MT + 12}" class="nowlab" text-anchor="end">now {now_label}</text>')
    out.append("</svg>")
    return "\n".join(out)
