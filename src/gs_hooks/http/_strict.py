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

__all__ = ["ChunkedFramingError", "ChunkedScanner", "chunked_body_is_strict", "head_is_strict"]

_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = rb'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
_CHUNK_LINE = re.compile(
    rb"([0-9A-Fa-f]{1,16})((?:[ \t]*;[ \t]*" + _TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + _TOKEN + rb"|" + _QUOTED + rb"))?)*)"
)
# A request line, field lines not starting with whitespace (obs-fold), every line ended by CRLF, no CR or LF
# anywhere else, up to the first empty line.
_STRICT_HEAD = re.compile(rb"[^\r\n]+\r\n(?:[^\r\n \t][^\r\n]*\r\n)*\r\n")
_FIELD_LINE = re.compile(_TOKEN + rb":[ \t]*(?:[!-~\x80-\xff](?:[ \t!-~\x80-\xff]*[!-~\x80-\xff])?)?[ \t]*")


def head_is_strict(data: bytes) -> bool:
    """Whether the request head at the start of ``data`` uses CRLF line ends only and no obsolete folding.

    Args:
        data: the raw bytes received for this request, starting at its request line (they may run on into
            the body).

    Returns:
        False when the head has a bare LF or bare CR, obs-fold, or does not end at the first CRLFCRLF.
    """
    return _STRICT_HEAD.match(data) is not None


class ChunkedFramingError(ValueError):
    """A chunked body's framing is not strictly well-formed (``status`` is 400, or 413 when too large)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


_SIZE, _DATA, _DATA_END, _TRAILER, _DONE = range(5)


class ChunkedScanner:
    """Incremental strict check of a chunked body's framing, fed the same raw bytes as h11.

    It keeps no body data: only the current line (bounded) and counters, so a trickled body costs O(n).
    It raises as soon as a line is wrong, and as soon as a chunk-size line announces more data than allowed,
    without waiting for the data.

    Args:
        max_body: largest total of chunk data (413 past it).
        max_line: longest chunk-size or trailer line (its CRLF not counted), however its bytes arrive.

    Attributes:
        consumed: bytes of the body seen so far (the scanner stops consuming at the body's end).
        done: the final CRLF after the trailers has been seen.
    """

    __slots__ = ("_left", "_line", "_max_body", "_max_line", "_state", "_total", "consumed")

    def __init__(self, max_body: int, max_line: int = 4096) -> None:
        self._max_body = max_body
        self._max_line = max_line
        self._line = bytearray()
        self._state = _SIZE
        self._left = 0
        self._total = 0
        self.consumed = 0

    @property
    def done(self) -> bool:
        """Whether the whole body (trailers and final CRLF included) has been seen."""
        return self._state == _DONE

    def feed(self, data: bytes) -> None:
        """Check the next raw bytes.

        Raises:
            ChunkedFramingError: the framing is malformed (400) or announces too much data (413).
        """
        i = 0
        n = len(data)
        while i < n and self._state != _DONE:
            if self._state == _DATA:
                take = min(self._left, n - i)
                i += take
                self._left -= take
                if not self._left:
                    self._state = _DATA_END
                continue
            j = data.find(b"\n", i)
            if j < 0:
                self._line += data[i:]
                i = n
                if len(self._line) > self._max_line + 1:  # + its CR
                    raise ChunkedFramingError("chunked framing line too long")
                break
            # The same bound when the whole line came in one read (or in the last of several).
            if len(self._line) + j + 1 - i > self._max_line + 2:
                raise ChunkedFramingError("chunked framing line too long")
            self._line += data[i : j + 1]
            i = j + 1
            line = bytes(self._line)
            self._line.clear()
            self._end_of_line(line)
        self.consumed += i

    def _end_of_line(self, line: bytes) -> None:
        if len(line) < 2 or line[-2] != 13:
            raise ChunkedFramingError("bare LF in chunked framing")
        content = line[:-2]
        if self._state == _DATA_END:
            if content:
                raise ChunkedFramingError("chunk data longer than its size")
            self._state = _SIZE
        elif self._state == _SIZE:
            m = _CHUNK_LINE.fullmatch(content)
            if m is None:
                raise ChunkedFramingError("malformed chunk-size line")
            size = int(m.group(1), 16)
            self._total += size
            if self._total > self._max_body:
                raise ChunkedFramingError("chunked body too large", 413)
            if size:
                self._left = size
                self._state = _DATA
            else:
                self._state = _TRAILER
        elif not content:  # _TRAILER: the empty line ends the body
            self._state = _DONE
        elif _FIELD_LINE.fullmatch(content) is None:
            raise ChunkedFramingError("malformed trailer field")


def chunked_body_is_strict(raw: bytes) -> bool:
    """Whether ``raw`` is exactly one strictly well-formed chunked body (chunks, last chunk, trailers, CRLF).

    Args:
        raw: the bytes of the body, from the first chunk-size line to the final CRLF.
    """
    scanner = ChunkedScanner(max_body=len(raw), max_line=len(raw) + 2)
    try:
        scanner.feed(raw)
    except ChunkedFramingError:
        return False
    return scanner.done and scanner.consumed == len(raw)
