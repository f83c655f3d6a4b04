"""What one dashboard page shows, as frozen data, and how parts of it are read from the live objects.

:meth:`~gs_hooks.ops.Dashboard.collect` builds a :class:`DashboardView`; :func:`~gs_hooks.ops.render_dashboard`
turns it into HTML (pure). The helpers here read the ban book, the maintenance watcher and the event counters
into view parts.
"""

from __future__ import annotations

from datetime import date, datetime

import msgspec

from .. import _metrics
from .._time import KST
from ..bans._model import Ban
from ..gamebase._maintenance import MaintenanceWatcher
from ..gamepot._history import DeliveryHealth

__all__ = [
    "COLORS",
    "DASH",
    "SERIES",
    "SPANS",
    "About",
    "BanLine",
    "ChartSeries",
    "DashboardView",
    "LiveServer",
    "PeerHealth",
    "RatePanel",
    "RateRow",
    "SessionLine",
    "Table",
    "WindowChart",
    "ban_line",
    "fmt_dt",
    "maintenance_text",
    "rate_panel",
]

SERIES = ("one", "two", "three")
"""The chart's three dates, in the order of the query parameters (``?one=&two=&three=``)."""
COLORS = {"one": "#2563eb", "two": "#ea580c", "three": "#64748b"}
DASH = {"one": "", "two": "", "three": "5 4"}
SPANS = {"1h": 3600, "6h": 6 * 3600, "24h": 86_400}
"""The time axis' zoom levels (``?span=``): the last hour, the last six hours, the day (three-date overlay)."""


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


class WindowChart(msgspec.Struct, frozen=True):
    """The zoomed chart: CCU over ``[start, end]`` (the last hour or six hours).

    Attributes:
        span: ``1h`` or ``6h``.
        start / end: epoch seconds of the axis' ends (``end`` is now).
        points: (slot start, users summed over server ids), oldest first, slots with a sample only.
    """

    span: str
    start: float
    end: float
    points: tuple[tuple[float, int], ...]


class BanLine(msgspec.Struct, frozen=True):
    """One active ban as the dashboard lists it."""

    player_id: str
    source: str = ""
    ends_at: float | None = None
    reason: str = ""
    starts_at: float | None = None
    status: str = ""


class SessionLine(msgspec.Struct, frozen=True):
    """One live session as the dashboard lists it."""

    id: int
    player_id: str | None
    server_id: str
    connected_at: float


class Table(msgspec.Struct, frozen=True, kw_only=True):
    """One page of a searchable table (bans, sessions).

    Attributes:
        query: the search text (a substring of the player id).
        page: the page shown (from 1).
        pages: how many pages match (at least 1).
        total: how many rows match.
        rows: the rows of the page.
    """

    query: str
    page: int
    pages: int
    total: int
    rows: tuple[BanLine, ...] | tuple[SessionLine, ...]


class RateRow(msgspec.Struct, frozen=True):
    """One outcome (or reason) over the last hour: its total and one count per minute (oldest first)."""

    label: str
    total: int
    per_minute: tuple[int, ...]


class RatePanel(msgspec.Struct, frozen=True):
    """Logins by outcome, or kicks by reason, over the last hour."""

    title: str
    rows: tuple[RateRow, ...]


class PeerHealth(msgspec.Struct, frozen=True, kw_only=True):
    """How the latest exchanges with a platform went (wall-clock times).

    Attributes:
        name: ``Gamebase`` or ``Hive webhook``.
        configured: False when it is off (the card says so).
        last_success_at / last_error_at: epoch seconds, None if never.
        last_error_code: the latest failure's code (a result code, ``transport``, ``http_5xx``...).
        last_latency_s: the latest exchange's duration.
    """

    name: str
    configured: bool
    last_success_at: float | None = None
    last_error_at: float | None = None
    last_error_code: str | None = None
    last_latency_s: float | None = None


class About(msgspec.Struct, frozen=True, kw_only=True):
    """What runs: version, host, uptime."""

    version: str
    python: str
    host: str
    state: str
    uptime_s: float | None = None


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
    span: str = "24h"
    window: WindowChart | None = None
    about: About | None = None
    rates: tuple[RatePanel, ...] = ()
    peers: tuple[PeerHealth, ...] = ()
    ban_table: Table | None = None
    session_table: Table | None = None
    admin_key: str | None = None
    admin_on: bool = False
    params: tuple[tuple[str, str], ...] = ()


def fmt_dt(ts: float) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in KST."""
    return datetime.fromtimestamp(ts, KST).strftime("%Y-%m-%d %H:%M:%S")


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def ban_line(ban: Ban) -> BanLine:
    """A ban of the book as a table row."""
    return BanLine(
        player_id=ban.player_key,
        source=ban.source,
        ends_at=_ts(ban.ends_at),
        reason=ban.message,
        starts_at=ban.starts_at.timestamp(),
        status=ban.status,
    )


def rate_panel(title: str, tally: _metrics.Tally, minutes: int = 60) -> RatePanel:
    """A tally's last ``minutes`` minutes, busiest first (label values with no event in the window are left out)."""
    _, recent = tally.recent(minutes)
    rows = [RateRow(" ".join(key), sum(counts), tuple(counts)) for key, counts in recent.items() if sum(counts)]
    rows.sort(key=lambda r: (-r.total, r.label))
    return RatePanel(title, tuple(rows))


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
