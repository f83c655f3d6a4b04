"""The pure GamePot inquiry core: strict dates, defaults, key checks, the per-minute rule, answer shapes."""

from __future__ import annotations

import sys
from datetime import date, datetime

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gs_hooks import KST, GamePotError, HistorySample, PlatformError, ProtocolError
from gs_hooks.gamepot import _protocol as p


@pytest.mark.parametrize("good", ["2020-03-01", "2024-02-29", "1999-12-31"])
def test_parse_date_accepts_exactly_yyyy_mm_dd(good: str) -> None:
    assert p.parse_date(good, -13, "oneDate") == date.fromisoformat(good)


@pytest.mark.parametrize(
    "bad",
    [
        "2020-3-01",
        "2020-03-1",
        "20200301",
        "2020/03/01",
        " 2020-03-01",
        "2020-03-01 ",
        "2023-02-29",
        "2020-13-01",
        "2020-00-10",
        "２０２０-03-01",
        "2020-03-01T00:00",
        "x",
        "-2020-03-01",
        "2020-W10-1",
    ],
)
def test_parse_date_refuses_everything_else(bad: str) -> None:
    with pytest.raises(GamePotError) as info:
        p.parse_date(bad, -12, "twoDate")
    assert info.value.status == -12 == info.value.code
    assert "twoDate" in str(info.value) and "YYYY-MM-DD" in str(info.value)
    assert isinstance(info.value, PlatformError) and info.value.platform == "gamepot"
    assert info.value.is_date_error and not info.value.is_key_error


def test_resolve_dates_defaults_each_missing_or_empty_date() -> None:
    today = date(2026, 3, 1)
    assert p.resolve_dates({}, today) == p.InquiryDates(date(2026, 3, 1), date(2026, 2, 28), date(2026, 2, 27))
    got = p.resolve_dates({"oneDate": "", "twoDate": "2020-04-01"}, today)
    assert got == p.InquiryDates(date(2026, 3, 1), date(2020, 4, 1), date(2026, 2, 27))
    got = p.resolve_dates({"oneDate": "2020-03-01", "twoDate": "2020-04-01", "threeDate": "2020-05-09"}, today)
    assert got == p.InquiryDates(date(2020, 3, 1), date(2020, 4, 1), date(2020, 5, 9))


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"threeDate": "bad"}, -11),
        ({"twoDate": "bad"}, -12),
        ({"oneDate": "bad"}, -13),
        ({"oneDate": "bad", "threeDate": "bad"}, -11),
        ({"oneDate": "bad", "twoDate": "bad"}, -12),
    ],
)
def test_resolve_dates_error_codes_three_then_two_then_one(query: dict[str, str], status: int) -> None:
    with pytest.raises(GamePotError) as info:
        p.resolve_dates(query, date(2026, 1, 1))
    assert info.value.status == status


def test_check_key_and_project() -> None:
    p.check_key("k3y", "k3y")
    for sent, status in ((None, -1), ("", -1), ("k3y ", -2), ("K3Y", -2), ("other", -2)):
        with pytest.raises(GamePotError) as info:
            p.check_key(sent, "k3y")
        assert info.value.status == status and info.value.is_key_error
        assert "k3y" not in str(info.value)
    p.check_project("abc", "abc")
    with pytest.raises(GamePotError) as info:
        p.check_project("abd", "abc")
    assert info.value.status == -6 and info.value.message == "projectId was wrong."


def _at(day: date, hh: int, mm: int, ss: int = 0) -> float:
    return datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=KST).timestamp()


def test_minute_values_two_minute_slots_sum_over_servers() -> None:
    d = date(2026, 5, 5)
    samples = [
        HistorySample(at=_at(d, 0, 0), server_id="1", users=10),
        HistorySample(at=_at(d, 0, 0), server_id="2", users=5),
        HistorySample(at=_at(d, 0, 4), server_id="1", users=7),
        HistorySample(at=_at(d, 23, 58), server_id="2", users=3),
        HistorySample(at=_at(d, 0, 0) - 120, server_id="1", users=1000),  # the day before
        HistorySample(at=_at(d, 0, 0) + 86_400, server_id="1", users=2000),  # the day after
    ]
    v = p.minute_values(samples, d, 120)
    assert len(v) == 1440
    assert v[0] == v[1] == 15
    assert v[2] is None and v[3] is None
    assert v[4] == v[5] == 7
    assert v[1438] == v[1439] == 3
    assert sum(x is not None for x in v) == 6


def test_minute_values_one_minute_period_and_latest_sample_per_server_in_a_slot() -> None:
    d = date(2026, 5, 5)
    samples = [
        HistorySample(at=_at(d, 10, 0), server_id="1", users=10),
        HistorySample(at=_at(d, 10, 1), server_id="1", users=12),
    ]
    v60 = p.minute_values(samples, d, 60)
    assert (v60[600], v60[601], v60[602]) == (10, 12, None)
    v120 = p.minute_values(samples, d, 120)  # both fall in the 10:00 slot: the latest counts once
    assert (v120[600], v120[601], v120[602]) == (12, 12, None)
    with pytest.raises(ValueError):
        p.minute_values(samples, d, 90)


def test_build_answer_is_the_documents_shape() -> None:
    one = [None] * 1440
    two = list(range(1440))
    three = [0] * 1440
    body = msgspec.json.decode(msgspec.json.encode(p.build_answer(one, two, three)))
    assert list(body) == ["status", "result"] and body["status"] == 1
    assert body["result"]["totalCount"] == 1440
    assert body["result"]["edges"][0] == {"node": {"createdAt": "00:00", "one": None, "two": 0, "three": 0}}
    assert body["result"]["edges"][-1] == {"node": {"createdAt": "23:59", "one": None, "two": 1439, "three": 0}}
    assert [e["node"]["createdAt"] for e in body["result"]["edges"][59:62]] == ["00:59", "01:00", "01:01"]
    with pytest.raises(ValueError):
        p.build_answer(one[:-1], two, three)


def test_decode_answer_rows_and_errors() -> None:
    body = msgspec.json.encode(p.build_answer([1] * 1440, [None] * 1440, [3] * 1440))
    rows = p.decode_answer(body)
    assert len(rows) == 1440 and rows[75].time == "01:15" and rows[75].minute == 75
    assert (rows[75].one, rows[75].two, rows[75].three) == (1, None, 3)
    with pytest.raises(GamePotError) as info:
        p.decode_answer(b'{"status": -6, "message": "projectId was wrong."}')
    assert info.value.status == -6 and info.value.message == "projectId was wrong."
    with pytest.raises(GamePotError) as info:
        p.decode_answer(b'{"status": -5}')
    assert info.value.status == -5 and "expired" in info.value.message
    for bad in (
        b"<html>",
        b'{"status": "1"}',
        b'{"status": 1}',
        b'{"status":1,"result":{"totalCount":1,"edges":[{"node":{"createdAt":"1:00","one":1,"two":1,"three":1}}]}}',
    ):
        with pytest.raises(ProtocolError):
            p.decode_answer(bad)


def test_protocol_module_is_not_importing_anyio_at_runtime_either() -> None:
    # the package imports anyio elsewhere; the module object itself must hold no reference to IO modules
    names = {getattr(v, "__name__", "") for v in vars(p).values() if isinstance(v, type(sys))}
    assert not {n for n in names if n.split(".")[0] in {"anyio", "httpx", "h11", "sqlite3"}}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 719), st.sampled_from(["1", "2", "x9"]), st.integers(0, 100_000)),
        max_size=60,
        unique_by=lambda t: (t[0], t[1]),
    )
)
def test_minute_values_match_the_rule_for_any_samples(entries: list[tuple[int, str, int]]) -> None:
    d = date(2026, 7, 1)
    samples = [HistorySample(at=_at(d, 0, 0) + slot * 120, server_id=sid, users=u) for slot, sid, u in entries]
    got = p.minute_values(samples, d, 120)
    for minute in range(1440):
        in_slot = [u for slot, _, u in entries if slot == minute // 2]
        assert got[minute] == (sum(in_slot) if in_slot else None)
