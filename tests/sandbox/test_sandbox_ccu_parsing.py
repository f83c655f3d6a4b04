"""The collector's pure checks, property-tested: every well-formed sample on the grid passes, and each broken
field gets its documented code. (The HTTP-level tests are in test_sandbox_ccu.py.)"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from gs_hooks import KST
from gs_hooks.sandbox import parse_sample

ALNUM = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=20)
DAY0 = datetime(2020, 1, 1, tzinfo=KST)


def payload(server: str, date: str, user: str, reqkey: str = "k") -> bytes:
    xml = (
        f'<?xml version="1.0" encoding="utf-8"?><r><game>g</game><server>{server}</server>'
        f"<reqkey>{reqkey}</reqkey><date>{date}</date><user>{user}</user></r>"
    )
    return base64.b64encode(xml.encode())


@given(server=ALNUM, slot=st.integers(0, 5 * 365 * 720), user=st.integers(0, 2_147_483_647))
def test_well_formed_samples_on_the_grid_pass(server: str, slot: int, user: int) -> None:
    moment = DAY0 + timedelta(minutes=2 * slot)
    date = moment.strftime("%Y-%m-%d %H:%M:%S")
    parsed = parse_sample(payload(server, date, str(user)), 120)
    assert not isinstance(parsed, tuple), parsed
    assert (parsed.server, parsed.user, parsed.date, parsed.slot) == (server, user, date, moment.timestamp())


@given(slot=st.integers(0, 365 * 1440), second=st.integers(0, 59))
def test_off_grid_dates_are_202(slot: int, second: int) -> None:
    moment = DAY0 + timedelta(minutes=slot, seconds=second)
    date = moment.strftime("%Y-%m-%d %H:%M:%S")
    parsed = parse_sample(payload("1", date, "3"), 120)
    on_grid = moment.minute % 2 == 0 and second == 0
    assert (not isinstance(parsed, tuple)) if on_grid else (isinstance(parsed, tuple) and parsed[0] == 202)
    parsed60 = parse_sample(payload("1", date, "3"), 60)
    assert (not isinstance(parsed60, tuple)) if second == 0 else (isinstance(parsed60, tuple) and parsed60[0] == 202)


XML_TEXT = st.text(st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="<&\ufffe\uffff"), max_size=30)


@given(server=XML_TEXT.filter(lambda s: s != "" and s.strip() == s))
def test_server_id_rule(server: str) -> None:
    parsed = parse_sample(payload(server, "2020-01-01 00:00:00", "1"), 120)
    valid = len(server) <= 20 and server.isascii() and server.isalnum()
    assert (not isinstance(parsed, tuple)) if valid else (isinstance(parsed, tuple) and parsed[0] == 202)


@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(raw: bytes) -> None:
    for data in (raw, base64.b64encode(raw)):
        parsed = parse_sample(data, 120)
        assert isinstance(parsed, tuple) and parsed[0] in (200, 201, 202, 203, 204)
