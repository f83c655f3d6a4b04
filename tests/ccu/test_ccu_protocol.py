"""The pure CCU protocol: XML shape, base64, both sending methods, answers, reqkey, and the outcome of each code."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs

import pytest
from lxml import etree

from gs_hooks import ProtocolError
from gs_hooks.ccu import (
    CcuOutcome,
    CcuSample,
    build_xml,
    classify,
    decode_request,
    encode_request,
    make_reqkey,
    parse_response,
)
from gs_hooks.ccu._protocol import CODE_MESSAGES

SAMPLE = CcuSample.create(game="tinyfarm_KR", server="tinyfarm01", date="2016-06-23 16:24:00", user=1234)


def answer(code: object, *, wrap: str = "<response><result>{}</result></response>") -> bytes:
    xml = '<?xml version="1.0" encoding="utf-8"?>' + wrap.format(code)
    return base64.b64encode(xml.encode())


def test_reqkey_is_md5_of_game_server_date() -> None:
    expected = hashlib.md5(b"tinyfarm_KR|tinyfarm01|2016-06-23 16:24:00", usedforsecurity=False).hexdigest()
    assert SAMPLE.reqkey == expected == make_reqkey("tinyfarm_KR", "tinyfarm01", "2016-06-23 16:24:00")
    assert make_reqkey("g", "1", "2016-06-23 16:24:00") != make_reqkey("g", "2", "2016-06-23 16:24:00")
    assert make_reqkey("g", "1", "2016-06-23 16:24:00") != make_reqkey("g", "1", "2016-06-23 16:26:00")


def test_xml_has_declaration_root_and_five_children_in_order() -> None:
    xml = build_xml(SAMPLE)
    assert xml.startswith(b'<?xml version="1.0" encoding="utf-8"?><currentuser>')
    root = etree.fromstring(xml)
    assert root.tag == "currentuser"
    assert [(c.tag, c.text) for c in root] == [
        ("game", "tinyfarm_KR"),
        ("server", "tinyfarm01"),
        ("reqkey", SAMPLE.reqkey),
        ("date", "2016-06-23 16:24:00"),
        ("user", "1234"),
    ]
    assert etree.fromstring(build_xml(SAMPLE, "ccu")).tag == "ccu"


def test_form_method_sends_base64_in_field_value() -> None:
    body, ctype = encode_request(SAMPLE, method="form")
    assert ctype == "application/x-www-form-urlencoded"
    fields = parse_qs(body.decode("ascii"), strict_parsing=True)
    assert list(fields) == ["value"]
    assert base64.b64decode(fields["value"][0], validate=True) == build_xml(SAMPLE)
    assert decode_request(body) == SAMPLE


def test_body_method_sends_bare_base64() -> None:
    body, ctype = encode_request(SAMPLE, root="root2", method="body")
    assert ctype.startswith("text/plain")
    assert base64.b64decode(body, validate=True) == build_xml(SAMPLE, "root2")
    assert decode_request(body) == SAMPLE


def test_form_value_survives_base64_plus_and_slash() -> None:
    # a user count/game that makes the base64 contain + and / must round-trip through the form encoding
    for n in range(300):
        s = CcuSample.create(game="g?>~", server="s1", date="2026-01-01 00:00:00", user=n)
        b64 = base64.b64encode(build_xml(s))
        body, _ = encode_request(s, method="form")
        assert decode_request(body) == s
        if b"+" in b64 or b"/" in b64:
            assert b"+" not in body and b"/" not in body[6:]


def test_sample_rejects_bad_fields() -> None:
    with pytest.raises(ValueError, match="server id"):
        CcuSample.create(game="g", server="too-long-and-dashed", date="2026-01-01 00:00:00", user=1)
    with pytest.raises(ValueError, match="date"):
        CcuSample.create(game="g", server="1", date="2026-01-01T00:00:00", user=1)
    with pytest.raises(ValueError, match="negative"):
        CcuSample.create(game="g", server="1", date="2026-01-01 00:00:00", user=-1)
    with pytest.raises(ValueError, match="send method"):
        encode_request(SAMPLE, method="json")


@pytest.mark.parametrize(
    "wrap",
    [
        "<response><result>{}</result></response>",
        "<result>{}</result>",
        "<a><b><c><result> {} </result></c></b></a>",
        '<r xmlns="urn:x"><result>{}</result></r>',
    ],
)
def test_result_is_read_wherever_it_is(wrap: str) -> None:
    assert parse_response(answer(100, wrap=wrap)) == 100
    assert parse_response(answer(302, wrap=wrap) + b"\r\n") == 302


def test_plain_xml_answer_is_accepted() -> None:
    assert parse_response(b"<response><result>101</result></response>") == 101


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"", "empty"),
        (b"!!!not base64!!!", "base64"),
        (base64.b64encode(b"<unclosed>"), "XML"),
        (answer(1, wrap="<response><code>{}</code></response>"), "no result"),
        (answer("abc"), "not a number"),
        (b"<html><body>502 Bad Gateway</body></html>", "no result"),
    ],
)
def test_unreadable_answers_raise_protocol_error(body: bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        parse_response(body)


def test_entities_are_not_expanded() -> None:
    evil = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r><result>&x;</result></r>'
    with pytest.raises(ProtocolError):
        parse_response(base64.b64encode(evil))


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (100, CcuOutcome.DELIVERED),
        (101, CcuOutcome.DELIVERED),
        (200, CcuOutcome.OUR_FAULT),
        (201, CcuOutcome.OUR_FAULT),
        (202, CcuOutcome.OUR_FAULT),
        (203, CcuOutcome.OUR_FAULT),
        (204, CcuOutcome.OUR_FAULT),
        (300, CcuOutcome.RETRY),
        (301, CcuOutcome.OUR_FAULT),
        (302, CcuOutcome.CONFIG_FAULT),
        (None, CcuOutcome.RETRY),
        (999, CcuOutcome.RETRY),
    ],
)
def test_every_code_has_an_outcome(code: int | None, outcome: CcuOutcome) -> None:
    assert classify(code) is outcome


def test_every_documented_code_is_known() -> None:
    assert sorted(CODE_MESSAGES) == [100, 101, 200, 201, 202, 203, 204, 300, 301, 302]


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"value=", "XML"),
        (base64.b64encode(b"<currentuser><game>g</game></currentuser>"), "no server"),
        (
            base64.b64encode(b"<c><game>g</game><server>1</server><reqkey>k</reqkey><date>d</date><user>x</user></c>"),
            "not a count",
        ),
    ],
)
def test_decode_request_rejects_bad_bodies(body: bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        decode_request(body)
