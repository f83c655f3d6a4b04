"""What one dashboard page shows, as frozen data, and how it is read from the live objects.

:meth:`~gs_hooks.ops.Dashboard.collect` builds a :class:`DashboardView`; :func:`~gs_hooks.ops.render_dashboard`
turns it into HTML (pure). The helpers here read the ban book and the maintenance watcher into view parts.
"""

from __future__ import annotations

from datetime import date, datetime

import msgspec

from .._time import KST
from ..bans._book import BanBook
from ..gamebase._maintenance import MaintenanceWatcher
from ..gamepot._history import DeliveryHealth

__all__ = [
    "COLORS",
    "DASH",
    "SERIES",
    "BanLine",
    "ChartSeries",
    "DashboardView",
    "LiveServer",
    "ban_lines",
    "fmt_dt",
    "maintenance_text",
]

SERIES = ("one", "two", "three")
"""The chart's three dates, in the order of the query parameters (``?one=&two=&three=``)."""
COLORS = {"one": "#2563eb", "two": "#ea580c", "three": "#64748b"}
DASH = {"one": "", "two": "", "three": "5 4"}


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


def fmt_dt(ts: float) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in KST."""
    return datetime.fromtimestamp(ts, KST).strftime("%Y-%m-%d %H:%M:%S")


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
            parts.append(f"from {fmt_dt(window.begins_at.timestamp())[:16]}")
        if window.ends_at is not None:
            parts.append(f"until {fmt_dt(window.ends_at.timestamp())[:16]}")
        if window.message:
            parts.append(window.message[:120])
    if watcher.consecutive_failures > 0:
        parts.append(f"Gamebase poll failing ({watcher.consecutive_failures} in a row)")
    return watcher.state.value, " · ".join(parts)
