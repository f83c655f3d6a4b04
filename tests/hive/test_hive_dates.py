"""parse_hive_date builds datetimes directly; it must accept and refuse exactly what strptime does."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from gs_hooks.hive._protocol import parse_hive_date, zone_of

_EDGES = (timezone(timedelta(hours=14)), timezone(timedelta(hours=-14)))


def reference(value: str, zone: timezone) -> datetime | None:
    """The strptime form the parser replaced (None where it refuses)."""
    try:
        moment = datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=zone)
        ts = moment.timestamp()
        for edge in _EDGES:
            datetime.fromtimestamp(ts, edge)
    except (ValueError, OverflowError):
        return None
    return moment


def ours(value: str, zone: timezone) -> datetime | None:
    try:
        return parse_hive_date(value, zone)
    except ValueError:
        return None


EDGE_CASES = [
    "2024-02-29 12:00:00",
    "2023-02-29 12:00:00",
    "2024-04-31 00:00:00",
    "2024-13-01 00:00:00",
    "2024-00-10 00:00:00",
    "2024-01-00 00:00:00",
    "2024-01-01 24:00:00",
    "2024-01-01 23:60:00",
    "2024-01-01 23:59:60",
    "0000-01-01 00:00:00",
    "0001-01-01 00:00:00",
    "0001-01-01 23:59:59",
    "0001-01-02 00:00:00",
    "9999-12-31 00:00:00",
    "9999-12-31 23:59:59",
    "9998-12-31 23:59:59",
]
# Unlike strptime, the parser refuses other scripts' digits (Arabic-Indic, fullwidth...): the format is ASCII
# (tests/hive/test_hive_input_bounds.py).


@pytest.mark.parametrize("value", EDGE_CASES)
@pytest.mark.parametrize("offset", [9.0, 0.0, -13.5, 14.0])
def test_edge_dates_match_strptime(value: str, offset: float) -> None:
    zone = zone_of(offset)
    assert ours(value, zone) == reference(value, zone)


def test_random_dates_match_strptime() -> None:
    rng = random.Random(6)
    zone = zone_of(9.0)
    refused = 0
    for _ in range(5_000):
        y, mo, d = rng.randint(0, 9999), rng.randint(0, 14), rng.randint(0, 33)
        h, mi, s = rng.randint(0, 25), rng.randint(0, 61), rng.randint(0, 61)
        value = f"{y:04d}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}:{s:02d}"
        expected = reference(value, zone)
        refused += expected is None
        assert ours(value, zone) == expected, value
    assert 0 < refused < 5_000  # both kinds were drawn
