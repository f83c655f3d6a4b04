"""Response heads, written by the server rather than by h11 (pure: a :class:`Response` in, bytes out).

h11 validates and rebuilds the header list twice per response, which costs more than the rest of the
listener's per-request path. The checks here are h11's own (its token and field-value grammar, a final status
code), so a handler still cannot put CR/LF on the wire (response splitting); the status line has h11's form.
Repeated fields (content type, ``Allow``...) are validated once and kept, bounded.
"""

from __future__ import annotations

import contextlib
import re

from ._app import Response

__all__ = ["encode_head", "refusal"]

_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
_FIELD_VALUE = re.compile(rb"(?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?")
_FRAMING_FIELDS = frozenset({b"content-length", b"connection"})  # the server sets these itself
_REFUSED_FIELDS = frozenset({b"transfer-encoding"})  # bodies go out with a Content-Length: never beside one
# Only fields whose values repeat (not per-request ids, cookies or locations that may carry a token) are cached.
_CACHED_FIELDS = frozenset({"content-type", "allow", "www-authenticate", "retry-after", "cache-control"})
_SKIP = b""
_NO_BODY = frozenset({204, 304})
_status_lines: dict[int, bytes] = {}
_field_lines: dict[tuple[str, str], bytes] = {}  # validated (name, value) -> encoded line, for repeated headers
_FIELD_CACHE_SIZE = 256
_FIELD_CACHE_VALUE = 128  # values longer than this are checked every time, never kept


def _ascii(text: object) -> bytes | None:
    if isinstance(text, str):
        return text.encode("ascii") if text.isascii() else None
    return bytes(text) if isinstance(text, bytes | bytearray) else None


def _field_line(field: object) -> bytes | None:
    """``name: value\r\n``, ``_SKIP`` for a framing field the server sets itself, None when invalid."""
    if not isinstance(field, tuple | list) or len(field) != 2:
        return None
    raw_name, raw_value = _ascii(field[0]), _ascii(field[1])
    if raw_name is None or raw_value is None:
        return None
    if _TOKEN.fullmatch(raw_name) is None or _FIELD_VALUE.fullmatch(raw_value) is None:
        return None
    lowered = raw_name.lower()
    if lowered in _FRAMING_FIELDS:
        return _SKIP
    if lowered in _REFUSED_FIELDS:
        return None
    return b"%s: %s\r\n" % (raw_name, raw_value)


def encode_head(response: Response) -> bytes | None:
    """The response's status line and header block (Content-Length and Connection added), or None when the
    handler gave a status or header field that must not go on the wire."""
    status = response.status
    line = _status_lines.get(status) if type(status) is int else None
    if line is None:
        if not isinstance(status, int) or not 200 <= status < 1000:  # an IntEnum such as HTTPStatus is fine
            return None
        line = b"HTTP/1.1 %d \r\n" % status
        _status_lines[int(status)] = line
    parts = [line]
    for field in response.headers:
        try:
            parts.append(_field_lines[field])
        except (KeyError, TypeError):  # not seen yet, or unhashable (a list pair): check it
            encoded = _field_line(field)
            if encoded is None:
                return None
            parts.append(encoded)
            if (
                len(_field_lines) < _FIELD_CACHE_SIZE
                and len(encoded) <= _FIELD_CACHE_VALUE
                and type(field) is tuple
                and type(field[0]) is str
                and field[0].lower() in _CACHED_FIELDS
            ):
                with contextlib.suppress(TypeError):
                    _field_lines[field] = encoded
    if status not in _NO_BODY:
        parts.append(b"content-length: %d\r\n" % len(response.body))
    elif response.body:  # a 204/304 has no body (RFC 9110 8.6: and no Content-Length)
        return None
    parts.append(b"connection: close\r\n\r\n" if response.close else b"\r\n")
    return b"".join(parts)


def refusal(status: int, message: str, *extra: tuple[str, str]) -> bytes:
    """A whole closing error answer (head and JSON body), for refusals sent before any request is read."""
    response = Response.error(status, message, close=True)
    response.headers.extend(extra)
    head = encode_head(response)
    assert head is not None
    return head + response.body
