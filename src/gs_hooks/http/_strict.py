"""Strict wire checks where h11 is lenient (pure: bytes in, verdict out).

h11 parses every request; these checks only look again at the raw bytes h11 consumed and refuse what RFC 9112
allows a recipient to accept but what a front proxy may read differently (the classic request-smuggling
ambiguities):

- a head whose lines end with a bare LF or carry a bare CR, or that uses obsolete line folding (h11 unfolds it);
- a chunked body whose chunk-size lines carry whitespace, control characters or malformed chunk extensions
  (h11 accepts any byte but LF after ``;``), whose chunk data is not followed by CRLF, or whose trailer section
  has a bare LF or a malformed field line.
"""

from __future__ import annotations

import re

__all__ = ["chunked_body_is_strict", "head_is_strict"]

_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = rb'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
_CHUNK_LINE = re.compile(
    rb"([0-9A-Fa-f]{1,16})((?:[ \t]*;[ \t]*" + _TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + _TOKEN + rb"|" + _QUOTED + rb"))?)*)"
)
# A LF not after CR, a CR not before LF, or a line starting with whitespace (obs-fold).
_BAD_HEAD = re.compile(rb"(?<!\r)\n|\r(?!\n)|\n[ \t]")
_FIELD_LINE = re.compile(_TOKEN + rb":[ \t]*(?:[!-~\x80-\xff](?:[ \t!-~\x80-\xff]*[!-~\x80-\xff])?)?[ \t]*")


def head_is_strict(data: bytes) -> bool:
    """Whether the request head at the start of ``data`` uses CRLF line ends only and no obsolete folding.

    Args:
        data: the raw bytes received for this request, starting at its request line (they may run on into
            the body).

    Returns:
        False when the head has a bare LF or bare CR, obs-fold, or does not end at the first CRLFCRLF.
    """
    end = data.find(b"\r\n\r\n")
    return end >= 0 and _BAD_HEAD.search(data, 0, end + 2) is None


def chunked_body_is_strict(raw: bytes) -> bool:
    """Whether ``raw`` is exactly one strictly well-formed chunked body (chunks, last chunk, trailers, CRLF).

    Args:
        raw: the bytes h11 consumed for the body, from the first chunk-size line to the final CRLF.
    """
    pos = 0
    size = -1
    while size != 0:
        eol = raw.find(b"\r\n", pos)
        if eol < 0:
            return False
        m = _CHUNK_LINE.fullmatch(raw, pos, eol)
        if m is None:
            return False
        size = int(m.group(1), 16)
        pos = eol + 2
        if size:
            if raw[pos + size : pos + size + 2] != b"\r\n":
                return False
            pos += size + 2
    while True:
        eol = raw.find(b"\r\n", pos)
        if eol < 0:
            return False
        if eol == pos:
            return eol + 2 == len(raw)
        if _FIELD_LINE.fullmatch(raw, pos, eol) is None:
            return False
        pos = eol + 2
