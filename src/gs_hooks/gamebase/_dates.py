"""Gamebase dates (pure): epoch milliseconds or ISO 8601, read as aware datetimes; the ban-history query format.

Member dates are epoch milliseconds; maintenance dates are ISO 8601; ban-history dates are documented as epoch
millis in one place and ISO strings in another, so :func:`parse_date` accepts both (and numeric strings). An ISO
date without a zone is read as KST, the platform's home zone.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

__all__ = ["format_date", "parse_date"]

_KST = timezone(timedelta(hours=9), "KST")
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?"
)


def parse_date(value: int | float | str | None) -> datetime | None:
    """A Gamebase date as an aware datetime: epoch millis (int or numeric string) or ISO 8601.

    ISO dates without a zone are read as KST. ``None``, ``""`` and ``0`` mean "no date".

    Raises:
        ValueError: the value is neither.
    """
    if value is None or value == "" or value == 0:
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a date: {value!r}")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000.0, UTC)
    text = value.strip()
    if re.fullmatch(r"-?\d+", text):
        return datetime.fromtimestamp(int(text) / 1000.0, UTC)
    m = _ISO.fullmatch(text)
    if m is None:
        raise ValueError(f"not an ISO 8601 date or epoch millis: {value!r}")
    year, month, day, hour, minute = (int(m.group(i)) for i in range(1, 6))
    second = int(m.group(6) or 0)
    micro = int((m.group(7) or "0").ljust(6, "0")[:6])
    zone = m.group(8)
    if zone is None:
        tz: timezone = _KST
    elif zone in ("Z", "z"):
        tz = UTC
    else:
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0)))
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)


def format_date(moment: datetime) -> str:
    """``yyyy-MM-dd'T'HH:mm:ss.SSSXXX`` (the ban-history query format) for an aware datetime.

    Raises:
        ValueError: ``moment`` is naive.
    """
    if moment.tzinfo is None:
        raise ValueError("naive datetime: give an aware datetime (e.g. tzinfo=gs_hooks.KST)")
    return moment.isoformat(timespec="milliseconds")
