"""The checks of the config sections' own settings (the generic ones are in :mod:`._setting`): each answers a
value's problem in words for the operator (what is allowed), or None when the value is allowed."""

from __future__ import annotations

import re

from .._exceptions import ConfigError
from .._ids import player_id_problem
from ._setting import at_least, one_of, parse_hostport

__all__ = [
    "CIDRS_HELP",
    "NON_NEGATIVE",
    "OFF_AT_ZERO",
    "api_version",
    "game_index",
    "game_key",
    "hostport",
    "lead_times",
    "os_code",
    "period",
    "player_key_format",
    "project_id",
    "route_path",
    "server_id",
    "server_ids",
    "xml_name",
]

_SERVER_ID = re.compile(r"[A-Za-z0-9]{1,20}")
_GAME = re.compile(r"[A-Za-z0-9_\-]{1,64}")
_PATH = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*")
NON_NEGATIVE = at_least(0)
OFF_AT_ZERO = at_least(0, "0 = off")
CIDRS_HELP = "CIDRs, empty = any"


def server_id(value: str) -> str | None:
    if _SERVER_ID.fullmatch(value):
        return None
    return f"{value!r} is not allowed: a server id must be 1–20 letters/digits"


def server_ids(values: tuple[str, ...]) -> str | None:
    if not values:
        return "at least one server id is required"
    for sid in values:
        if not _SERVER_ID.fullmatch(sid):
            return f"{sid!r} is not allowed: a CCU server id must be 1–20 letters/digits"
    return None if len(set(values)) == len(values) else "server ids must be distinct"


def period(value: int) -> str | None:
    if value > 0 and value % 60 == 0 and 3600 % value == 0:
        return None
    return (
        f"{value} is not allowed: the period must be a whole number of minutes dividing an hour "
        "(120 in production; 60 for demos)"
    )


def xml_name(value: str) -> str | None:
    if re.fullmatch(r"[A-Za-z_][\w.\-]*", value):
        return None
    return f"{value!r} is not an XML name: a letter or _, then letters, digits, _, . or -"


def game_key(value: str) -> str | None:
    """What is wrong with a Hive game key (checked while the CCU is on; the fleet checks its own use of it)."""
    if not value:
        return "the Hive game key is required when the CCU URL is set (letters, digits, _ and -, e.g. tinyfarm_KR)"
    if _GAME.fullmatch(value):
        return None
    return f"{value!r} is not a Hive game key: use 1–64 letters, digits, _ and - (e.g. tinyfarm_KR)"


_MAX_GAME_INDEX = 2**63 - 1


def game_index(value: int | None) -> str | None:
    """The Hive game index (the webhook's ``game_index``, an integer; 539 in the platform's example)."""
    if value is None or 0 <= value <= _MAX_GAME_INDEX:
        return None
    return f"{value} is not a Hive game index: use the non-negative integer the Hive console shows (e.g. 539)"


def api_version(value: str) -> str | None:
    return None if re.fullmatch(r"v\d+\.\d+", value) else f"{value!r} is not an API version like v1.0 or v1.3"


def lead_times(values: tuple[float, ...]) -> str | None:
    return None if all(v > 0 for v in values) else "must be > 0"


def route_path(value: str) -> str | None:
    if _PATH.fullmatch(value):
        return None
    return f"{value!r} must be a URL path starting with / (no spaces, ? or #), e.g. /hive/suspensions"


def project_id(value: str | None) -> str | None:
    if value is None or value.strip():
        return None
    return "is empty: give the project id, or leave it unset to turn the inquiry off"


_OS_CODES = ("AOS", "IOS", "WEB", "WINDOWS")


def os_code(value: str | None) -> str | None:
    """A Gamebase ``OsCode`` (simple launching's ``osCode``)."""
    return None if value is None or value in _OS_CODES else one_of(*_OS_CODES)(value)


def player_key_format(value: str) -> str | None:
    if "{id}" not in value:
        return "must contain {id}"
    problem = player_id_problem(value.replace("{id}", "1"))
    return None if problem is None else f"must make player ids, but {problem}"


def hostport(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parse_hostport(value)
    except ConfigError as exc:
        return exc.problem
    return None
