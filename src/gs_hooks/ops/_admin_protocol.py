"""The admin API's requests and answers, as data (pure: bytes and strings in, structs out; no IO).

Every request is checked completely here before anything acts on it, so a refused request changes nothing: a
body that is not a JSON object of the documented fields, a field of the wrong type, a player id that cannot be
one, a date that is not ISO 8601 with an offset, a page past the limits — each is an :class:`AdminInputError`
naming the field, answered 400 in the listener's error shape::

    {"error": {"status": 400, "message": "player: must be a string or an integer", "field": "player"}}
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec

from .._exceptions import ProtocolError
from .._ids import player_id

__all__ = [
    "MAX_LIMIT",
    "AdminInputError",
    "BanBody",
    "KickBody",
    "Page",
    "PlayerBody",
    "error_body",
    "parse_ban",
    "parse_kick",
    "parse_page",
    "parse_player",
]

MAX_LIMIT = 500
"""The largest page a list answers (``limit``)."""
DEFAULT_LIMIT = 50
MAX_REASON = 64
MAX_MESSAGE = 500
MAX_QUERY = 128
MAX_DURATION_S = 100 * 365 * 86_400


class AdminInputError(ProtocolError):
    """A malformed admin request (answered 400; nothing was done).

    Attributes:
        field: the field at fault (None: the body as a whole).
        message: what is wrong, for the caller.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        self.field = field
        self.message = f"{field}: {message}" if field else message
        super().__init__(self.message)


def error_body(status: int, message: str, field: str | None = None) -> dict[str, Any]:
    """The admin API's error answer (the listener's shape, plus ``field`` for bad input)."""
    error: dict[str, Any] = {"status": status, "message": message}
    if field is not None:
        error["field"] = field
    return {"error": error}


class KickBody(msgspec.Struct, frozen=True, kw_only=True):
    """``POST admin/kick``: every live session of ``player`` is kicked."""

    player: str
    reason: str = "admin"
    message: str = ""


class BanBody(msgspec.Struct, frozen=True, kw_only=True):
    """``POST admin/ban`` (source ``api``): permanent, or until ``until`` (aware) or for ``duration_s``."""

    player: str
    until: datetime | None = None
    duration_s: float | None = None
    message: str = ""


class PlayerBody(msgspec.Struct, frozen=True, kw_only=True):
    """``POST admin/unban``: every ban of ``player`` is lifted."""

    player: str


class Page(msgspec.Struct, frozen=True, kw_only=True):
    """A list's query: ``q`` (substring of the player id), ``player`` (exact), ``server_id`` (exact), ``source``
    (exact), ``offset`` and ``limit``."""

    q: str = ""
    player: str | None = None
    server_id: str | None = None
    source: str | None = None
    offset: int = 0
    limit: int = DEFAULT_LIMIT


def _object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise AdminInputError("the body is empty: send a JSON object")
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise AdminInputError(f"the body is not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise AdminInputError(f"the body must be a JSON object, not {type(value).__name__}")
    return value


def _only(obj: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(obj) - set(allowed))
    if unknown:
        raise AdminInputError(f"unknown field(s) {', '.join(map(repr, unknown))[:200]}; allowed: {', '.join(allowed)}")


def _player(obj: Mapping[str, Any]) -> str:
    if "player" not in obj:
        raise AdminInputError("missing", "player")
    value = obj["player"]
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise AdminInputError("must be a string or an integer", "player")
    try:
        return player_id(value)
    except (TypeError, ValueError) as exc:
        raise AdminInputError(str(exc)[:200], "player") from None


def _text(obj: Mapping[str, Any], field: str, default: str, limit: int, *, empty: bool = True) -> str:
    value = obj.get(field, default)
    if not isinstance(value, str):
        raise AdminInputError("must be a string", field)
    if len(value) > limit:
        raise AdminInputError(f"longer than {limit} characters", field)
    if not empty and not value.strip():
        raise AdminInputError("must not be empty", field)
    if not value.isprintable():
        raise AdminInputError("must be printable text (no control characters)", field)
    return value


def parse_kick(body: bytes) -> KickBody:
    """Check a kick request body.

    Raises:
        AdminInputError: it is not ``{"player": ..., "reason"?: str, "message"?: str}``.
    """
    obj = _object(body)
    _only(obj, ("player", "reason", "message"))
    return KickBody(
        player=_player(obj),
        reason=_text(obj, "reason", "admin", MAX_REASON, empty=False),
        message=_text(obj, "message", "", MAX_MESSAGE),
    )


def parse_ban(body: bytes, now: datetime) -> BanBody:
    """Check a ban request body against ``now`` (an ``until`` must be aware and later).

    Raises:
        AdminInputError: it is not ``{"player": ..., "until"?: ISO 8601 with offset | null, "duration_s"?: number,
            "message"?: str}``, or both ``until`` and ``duration_s`` are given.
    """
    obj = _object(body)
    _only(obj, ("player", "until", "duration_s", "message"))
    player = _player(obj)
    message = _text(obj, "message", "", MAX_MESSAGE)
    until = _until(obj.get("until"), now)
    duration = obj.get("duration_s")
    if duration is not None:
        if until is not None:
            raise AdminInputError("give until or duration_s, not both", "duration_s")
        if isinstance(duration, bool) or not isinstance(duration, int | float):
            raise AdminInputError("must be a number of seconds", "duration_s")
        if not 0 < duration <= MAX_DURATION_S:
            raise AdminInputError(f"must be more than 0 and at most {MAX_DURATION_S} (100 years)", "duration_s")
    return BanBody(
        player=player, until=until, duration_s=None if duration is None else float(duration), message=message
    )


def _until(value: Any, now: datetime) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise AdminInputError("must be an ISO 8601 date-time with an offset, e.g. 2026-12-01T09:00:00+09:00", "until")
    try:
        until = datetime.fromisoformat(value)
    except ValueError:
        raise AdminInputError(f"{value[:40]!r} is not an ISO 8601 date-time", "until") from None
    if until.tzinfo is None:
        raise AdminInputError("needs a UTC offset (e.g. +09:00 or Z)", "until")
    if until <= now:
        raise AdminInputError(f"{until.isoformat()} is not in the future", "until")
    return until


def parse_player(body: bytes) -> PlayerBody:
    """Check an unban request body.

    Raises:
        AdminInputError: it is not ``{"player": ...}``.
    """
    obj = _object(body)
    _only(obj, ("player",))
    return PlayerBody(player=_player(obj))


def _int(query: Mapping[str, str], field: str, default: int, low: int, high: int) -> int:
    raw = query.get(field)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise AdminInputError(f"must be a whole number from {low} to {high}", field)
    value = int(raw)
    if not low <= value <= high:
        raise AdminInputError(f"must be a whole number from {low} to {high}", field)
    return value


def _query_text(query: Mapping[str, str], field: str) -> str | None:
    value = query.get(field)
    if value is None or value == "":
        return None
    if len(value) > MAX_QUERY or not value.isprintable():
        raise AdminInputError(f"must be printable text of at most {MAX_QUERY} characters", field)
    return value


def parse_page(query: Mapping[str, str], allowed: tuple[str, ...]) -> Page:
    """Check a list's query string (``q``, the exact filters in ``allowed``, ``offset``, ``limit``).

    Raises:
        AdminInputError: an unknown parameter, or a value out of range.
    """
    _only(query, ("q", "offset", "limit", *allowed))
    values = {field: _query_text(query, field) for field in ("player", "server_id", "source") if field in allowed}
    return Page(
        q=_query_text(query, "q") or "",
        offset=_int(query, "offset", 0, 0, 10**9),
        limit=_int(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        **values,
    )
