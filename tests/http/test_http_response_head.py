"""The server writes response heads itself: byte for byte what h11 writes, and refused wherever h11 refuses."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import h11
import pytest

from gs_hooks.http import Response
from gs_hooks.http._head import encode_head


def h11_head(status: Any, headers: list[Any], body: bytes, close: bool) -> bytes:
    """What h11 sends for the same response (the way the server used to build it)."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    assert type(conn.next_event()) is h11.Request
    wire = [(k, v) for k, v in headers if k.lower() not in ("content-length", "connection", b"content-length")]
    if status not in (204, 304):  # no Content-Length on a response without a body
        wire.append(("content-length", str(len(body))))
    if close:
        wire.append(("connection", "close"))
    return conn.send(h11.Response(status_code=status, headers=wire)) or b""


VALID = [
    (200, [], b""),
    (200, [("content-type", "application/json; charset=utf-8")], b'{"a":1}'),
    (204, [("X-Custom", "v")], b""),
    (304, [("etag", '"x"')], b""),
    (404, [("content-type", "text/plain"), ("allow", "GET, POST")], b"nope"),
    (HTTPStatus.SERVICE_UNAVAILABLE, [("retry-after", "1")], b"busy"),
    (999, [("x-empty", "")], b""),
    (200, [("x-obs-text", "a\tb  c"), ("x-bytes", b"raw")], b"x"),
    (200, [("Content-Length", "999"), ("Connection", "keep-alive"), ("x", "y")], b"abc"),
    (200, [["x-list", "pair"]], b""),
]


@pytest.mark.parametrize(("status", "headers", "body"), VALID)
@pytest.mark.parametrize("close", [False, True])
def test_valid_heads_are_what_h11_writes(status: Any, headers: list[Any], body: bytes, close: bool) -> None:
    for _ in range(2):  # the second time from the cache of checked fields
        ours = encode_head(Response(status, body, list(headers), close))
        assert ours == h11_head(status, headers, body, close)


INVALID = [
    (200, [("x-user", "a\r\nSet-Cookie: x=1")]),
    (200, [("x-user", "a\nb")]),
    (200, [("x-user", "a\x00b")]),
    (200, [("x-user", " leading")]),
    (200, [("x-user", "trailing ")]),
    (200, [("bad name", "v")]),
    (200, [("bad:name", "v")]),
    (200, [("", "v")]),
    (200, [("x-user", "caf\u00e9")]),
    (200, [("x-user", 5)]),
    (200, [("x-triple", "a", "b")]),
    (200, [("transfer-encoding", "gzip")]),
    (199, []),
    (100, []),
    (1000, []),
    (200.0, []),
]


@pytest.mark.parametrize(("status", "headers"), INVALID)
def test_what_h11_refuses_is_refused(status: Any, headers: list[Any]) -> None:
    with pytest.raises((h11.LocalProtocolError, UnicodeEncodeError, TypeError, ValueError)):
        h11_head(status, headers, b"", False)
    for _ in range(2):
        assert encode_head(Response(status, b"", list(headers))) is None


@pytest.mark.parametrize("status", [204, 304])
def test_a_body_on_a_response_that_has_none_is_refused(status: int) -> None:
    assert encode_head(Response(status, b"")) == h11_head(status, [], b"", False)
    assert b"content-length" not in (encode_head(Response(status, b"")) or b"")
    assert encode_head(Response(status, b"body")) is None  # the server sends a 500 instead


@pytest.mark.parametrize("value", ["chunked", "gzip", "gzip, chunked"])
def test_a_handlers_transfer_encoding_is_refused(value: str) -> None:
    # h11 turned "chunked" into a chunked body and refused the rest; our bodies always go with a Content-Length,
    # and both headers together invite a desync behind a proxy
    assert encode_head(Response(200, b"hello", [("Transfer-Encoding", value)])) is None


def test_only_fields_with_repeating_values_are_cached() -> None:
    from gs_hooks.http import _head

    encode_head(Response(200, b"", [("x-request-id", "per-request-1"), ("content-type", "text/plain")]))
    assert ("x-request-id", "per-request-1") not in _head._field_lines
    assert ("content-type", "text/plain") in _head._field_lines
