"""Player ids and login tokens: one canonical form, checked at every public entry point.

Pure (no IO, stdlib only): imported by the registry, the ban book, the Gamebase client and the login flow.

A player id is a ``str``. A Python ``int`` (not a ``bool``) is normalised to its decimal string, so a JSON
``"user_id": 7101``, Hive's integer ``player_id`` and Gamebase's string ``userId`` all meet as ``"7101"``. Any
other type raises :class:`TypeError`. A string is refused (:class:`ValueError`, the reason in the message) when
it is empty, longer than :data:`MAX_PLAYER_ID_LEN`, has leading or trailing whitespace, holds a control, surrogate
or line/paragraph separator character, holds ``/`` or ``\\``, or is only dots (``.``, ``..``) — the last two
also after Unicode NFKC normalisation, which maps e.g. ``．`` (fullwidth), ``․`` (one-dot leader), ``‥``, ``…``
to dots and ``／``, ``＼`` to slashes. Such values are what would let a player id change the meaning of a URL
path or a log line; nothing else is refused (interior spaces, ``%``, ``?``, ``#`` and non-ASCII letters are fine:
URL paths encode them).

Strategy: the commonest ids (ASCII letters and digits: Hive's numbers, Gamebase's user ids) pass two C-level
string tests; other printable ASCII ids one precompiled regex; anything else takes the slow path, which says what
is wrong. Lookups (:func:`lookup_key`) only normalise: a lookup with an id that cannot exist
finds nothing, and costs one type check.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

__all__ = [
    "MAX_PLAYER_ID_LEN",
    "MAX_TOKEN_LEN",
    "SHOWN_LEN",
    "lookup_key",
    "only_dots",
    "player_id",
    "player_id_problem",
    "shown",
    "token_problem",
]

MAX_PLAYER_ID_LEN: Final = 128
"""Longest player id, in characters (Gamebase user ids are ~20; Hive ids are integers)."""

MAX_TOKEN_LEN: Final = 4096
"""Longest access token a login accepts, in characters."""

# Printable ASCII without "/" and "\", no space at either end, 1..128 characters, not only dots.
_PLAIN_ID = re.compile(r"(?!\.+\Z)[!-.0-\[\]-~](?:[ -.0-\[\]-~]{0,126}[!-.0-\[\]-~])?\Z")
# Printable ASCII without space, "/" and "\", not only dots (the length is checked apart).
_PLAIN_TOKEN = re.compile(r"(?!\.+\Z)[!-.0-\[\]-~]+\Z")
_BAD_CATEGORIES: Final = frozenset({"Cc", "Cs", "Zl", "Zp"})


def only_dots(text: str) -> bool:
    """True when ``text`` is non-empty and only dots, as is or after NFKC (``..``, ``．．``, ``‥``...).

    Such a value is a dot segment in a URL path: a client or a server may resolve it away.
    """
    if not text:
        return False
    if not text.strip("."):
        return True
    if text.isascii():
        return False
    folded = unicodedata.normalize("NFKC", text)
    return bool(folded) and not folded.strip(".")


def player_id_problem(text: str) -> str | None:
    """Why ``text`` cannot be a player id, or None when it can (see the module docstring)."""
    if _PLAIN_ID.match(text) is not None:
        return None
    if not text:
        return "it is empty"
    if len(text) > MAX_PLAYER_ID_LEN:
        return f"it is longer than {MAX_PLAYER_ID_LEN} characters"
    if text.strip() != text:
        return "it has leading or trailing whitespace"
    if any(unicodedata.category(ch) in _BAD_CATEGORIES for ch in text):
        return "it holds a control character (or a line separator or lone surrogate)"
    folded = text if text.isascii() else unicodedata.normalize("NFKC", text)
    if "/" in folded or "\\" in folded:
        return "it holds '/' or '\\'"
    if only_dots(text):
        return "it is only dots"
    return None


def player_id(value: object, *, what: str = "player id") -> str:
    """The canonical form of a player id: the ``str`` itself, or an ``int``'s decimal string.

    Args:
        value: a ``str`` or an ``int`` (not a ``bool``).
        what: what the value is, for the error message (``"user id"``, ``"player"``...).

    Returns:
        The player id as a ``str``.

    Raises:
        TypeError: ``value`` is neither a ``str`` nor an ``int``.
        ValueError: the string cannot be a player id (the message says why).
    """
    if type(value) is str:
        if (value.isascii() and value.isalnum() and len(value) <= MAX_PLAYER_ID_LEN) or _PLAIN_ID.match(value):
            return value
        text = value
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(int(value))
    elif isinstance(value, str):  # a str subclass: its plain value
        text = str.__str__(value)
    else:
        raise TypeError(f"{what} must be a str (or an int), not {type(value).__name__}")
    problem = player_id_problem(text)
    if problem is not None:
        raise ValueError(f"{what} {shown(text)} is not allowed: {problem}")
    return text


def lookup_key(value: object, *, what: str = "player id") -> str:
    """The key a lookup uses: ``player_id``'s normalisation without its checks (an id that cannot exist finds
    nothing).

    Raises:
        TypeError: ``value`` is neither a ``str`` nor an ``int``.
    """
    if type(value) is str:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(int(value))
    if isinstance(value, str):
        return str.__str__(value)
    raise TypeError(f"{what} must be a str (or an int), not {type(value).__name__}")


def token_problem(token: str) -> str | None:
    """Why ``token`` cannot be an access token, or None when it can.

    An access token is an opaque string the platform issued: 1 to :data:`MAX_TOKEN_LEN` printable ASCII
    characters, without whitespace, ``/`` or ``\\``, and not only dots. (Stricter than a player id on
    purpose: a token travels as a URL path segment and has no reason to hold anything else.)
    """
    if not token:
        return "it is empty"
    if len(token) > MAX_TOKEN_LEN:
        return f"it is longer than {MAX_TOKEN_LEN} characters"
    if _PLAIN_TOKEN.match(token) is not None:
        return None
    if not token.isascii():
        return "it holds a non-ASCII character"
    if any(ch.isspace() for ch in token):
        return "it holds whitespace"
    if not token.isprintable():
        return "it holds a control character"
    if "/" in token or "\\" in token:
        return "it holds '/' or '\\'"
    return "it is only dots"


SHOWN_LEN: Final = 40
"""How much of a value from outside a log line or an error message shows (:func:`shown`)."""


def shown(value: object, limit: int = SHOWN_LEN) -> str:
    """A short, printable rendering of a value from outside (a client's user id, a refused value) for a log line or
    an error message: the ``repr`` of at most ``limit`` characters of a string (``...`` after it when cut; control
    characters escaped), a number as is (a huge int by its size), any other type by its name. Bounded whatever
    the value: a client cannot grow a log record with it.
    """
    if isinstance(value, str | bytes):
        cut = repr(value[:limit])
        return cut if len(value) <= limit else cut + "..."
    if value is None or isinstance(value, bool | float):
        return repr(value)
    if isinstance(value, int):
        return repr(value) if value.bit_length() <= 128 else f"<an int of {value.bit_length()} bits>"
    return f"<{type(value).__name__}>"
