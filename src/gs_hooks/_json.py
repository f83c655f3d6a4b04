"""Checks on JSON input that the decoder does not make (pure: bytes in, verdict out).

msgspec decodes nested arrays and objects recursively, so a body nested ~1,000 deep ends in a ``RecursionError``
(an answer 500 and a traceback per request) instead of a clear refusal; and, like every common decoder, it lets
the last of two equal keys in one object win. These checks run on the raw bytes:

- :func:`check_json_depth` bounds the nesting *before* decoding. Strings are cut out (with no backslash in the
  text: every byte but quotes and brackets deleted, then the empty strings ``""`` removed; when a string held a
  bracket or the text has escapes, the exact string pattern instead), and the depth is measured by removing the
  innermost ``()`` pairs, one level per pass: a few passes in C for a real payload, at most ``max_depth`` for
  any input.
- :func:`duplicate_key` finds an object that repeats a key: the keys of the text are its colons outside strings,
  the distinct ones are counted on the (depth-checked) text decoded without a type. A caller whose typed decode
  already shows that every key is accounted for skips it.
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec

from ._exceptions import ProtocolError

__all__ = ["MAX_JSON_DEPTH", "check_json_depth", "duplicate_key"]

MAX_JSON_DEPTH = 32
"""Deepest nesting of arrays and objects accepted by default (the webhook bodies need 3)."""

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_TO_PARENS = bytes.maketrans(b"[]{}", b"()()")


def _all_but(kept: bytes) -> bytes:
    return bytes(b for b in range(256) if b not in kept)


_BUT_BRACKETS = _all_but(b"[]{}")
_BUT_BRACKETS_QUOTES = _all_but(b'[]{}"')
_BUT_COLONS = _all_but(b":")
_BUT_COLONS_QUOTES = _all_but(b':"')


def _outside_strings(data: bytes, but: bytes, but_and_quotes: bytes) -> bytes:
    """The bytes of ``data`` outside strings that ``but`` does not delete, in order."""
    if b"\\" in data:  # maybe an escaped quote: the exact string pattern
        return _STRING.sub(b"", data).translate(None, but)
    # Every quote delimits a string: keep the quotes and the wanted bytes, then drop what lies between pairs.
    return b"".join(data.translate(None, but_and_quotes).split(b'"')[::2])


def _parens(data: bytes) -> bytes:
    """The brackets outside strings, as ``(``/``)``."""
    if b"\\" not in data:  # no escape, so no escaped quote
        # A string without brackets is left as ``""``; when every string is, removing the pairs leaves no quote
        # (a string with a bracket in it cannot be paired away, so a quote is left and the exact way is taken).
        parens = data.translate(None, _BUT_BRACKETS_QUOTES).replace(b'""', b"")
        if b'"' not in parens:
            return parens.translate(_TO_PARENS)
    return _outside_strings(data, _BUT_BRACKETS, _BUT_BRACKETS_QUOTES).translate(_TO_PARENS)


def _too_deep(parens: bytes, max_depth: int) -> bool:
    for passes in range(max_depth):
        if not parens:
            return False
        shorter = parens.replace(b"()", b"")
        if len(shorter) == len(parens):
            # Unbalanced (not JSON): bound the depth of what the decoder would read before it fails.
            return parens.count(b"(") + passes > max_depth
        parens = shorter
    return bool(parens)


def check_json_depth(data: bytes, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refuse a JSON text nested deeper than ``max_depth`` before handing it to a recursive decoder.

    A cheap byte scan (strings and escapes respected), meant to run before ``msgspec.json.decode`` or
    ``json.loads`` on input from a peer, e.g. a game's own line protocol.

    Args:
        data: the raw JSON text.
        max_depth: deepest nesting of arrays and objects allowed (default 32).

    Raises:
        ProtocolError: the text is nested deeper than ``max_depth``.
    """
    if _too_deep(_parens(data), max_depth):
        raise ProtocolError(f"JSON nested deeper than {max_depth} levels of arrays and objects")


class _Repeated(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_repeats(pairs: list[tuple[str, Any]]) -> None:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _Repeated(key)
        seen.add(key)


def _distinct_keys(value: Any) -> int:
    count = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            count += len(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def duplicate_key(data: bytes) -> str | None:
    """The key an object of ``data`` repeats (the decoders let the last one win), or None when there is none.

    Args:
        data: a JSON text that decodes and passed :func:`check_json_depth`.

    Returns:
        None, or the repeated key (empty when it could not be named).
    """
    keys = len(_outside_strings(data, _BUT_COLONS, _BUT_COLONS_QUOTES))  # a colon outside strings is a key's
    try:
        if _distinct_keys(msgspec.json.decode(data)) == keys:
            return None
    except msgspec.DecodeError:
        return None  # not JSON: the caller's typed decode says so
    try:
        json.loads(data, object_pairs_hook=_no_repeats)
    except _Repeated as found:
        return found.key
    except ValueError:  # e.g. an integer too long for the standard library
        pass
    return ""
