"""Time without IO: KST, the reporting grid, and conversions between epoch seconds and aware datetimes.

Pure (the standard library's ``datetime`` only): time is epoch seconds (float, UTC) internally and datetimes are
made at the edges. Grid instants are aligned to KST midnight, so a period that divides 24 h gives the same
instants every day (the Hive CCU grid is 13:00, 13:02, ...). The clocks that sleep are in :mod:`gs_hooks._clock`.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

__all__ = ["KST", "format_kst", "grid_slot", "next_grid_instant", "to_datetime", "to_timestamp"]

KST = timezone(timedelta(hours=9), "KST")
_DAY = 86_400


def _check_period(period: float | timedelta) -> float:
    p = period.total_seconds() if isinstance(period, timedelta) else float(period)
    if p <= 0 or _DAY % p != 0:
        raise ValueError(f"grid period must be a positive number of seconds dividing 24 h, got {p!r}")
    return p


def to_timestamp(moment: datetime | float) -> float:
    """Epoch seconds of an aware datetime (or a float passed through)."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise ValueError("naive datetime: give an aware datetime (e.g. tzinfo=gs_hooks.KST)")
        return moment.timestamp()
    return float(moment)


def to_datetime(ts: float, tz: timezone = KST) -> datetime:
    """An aware datetime (KST by default) for epoch seconds."""
    return datetime.fromtimestamp(ts, tz)


def grid_slot(moment: datetime | float, period: float | timedelta) -> datetime:
    """The grid instant that starts the slot ``moment`` belongs to (the latest instant <= moment), in KST."""
    p = _check_period(period)
    ts = to_timestamp(moment)
    # KST midnight is at ts % 86400 == 15 h (UTC); offset by 9 h so slots align to KST midnight.
    shifted = ts + 9 * 3600
    start = shifted - (shifted % p) - 9 * 3600
    return to_datetime(start)


def next_grid_instant(now: datetime | float, period: float | timedelta) -> datetime:
    """The first grid instant strictly after ``now``, in KST.

    Args:
        now: an aware datetime or epoch seconds.
        period: seconds (or a timedelta) that divide 24 h.
    """
    p = _check_period(period)
    return to_datetime(grid_slot(now, p).timestamp() + p)


def format_kst(moment: datetime | float) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in KST, the platforms' zone-less date format."""
    return to_datetime(to_timestamp(moment)).strftime("%Y-%m-%d %H:%M:%S")
