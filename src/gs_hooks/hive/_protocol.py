"""Hive payloads received on the listener: the suspended-user webhook and the web-store profile API. Pure.

Suspension webhook (``hive-suspended-user-webhook.txt``): ``{"game_index": int, "server_url": str, "data":
[{"player_id": int, "status": "P"|"B", "start_date": str, "end_date": str}, ...]}``. Validation is strict:
``game_index`` must be ours; every item must be well formed (``player_id`` a JSON integer from 0 to 2**63 - 1 —
not a bool, not a string —, status ``P``/``B``, dates exactly ``YYYY-MM-DD HH:MM:SS`` in ASCII digits, read in
the configured zone, KST by default). ``9999-12-31 00:00:00`` means no end; ``P`` is permanent whatever the end
date. One bad item rejects the whole request, so a malformed request changes nothing. Unknown fields are ignored;
a body nested deeper than 32 levels (checked before decoding) or with an object that repeats a key is refused.

Web-store profile (``hive-webstore-profile-api.txt``): request ``{"cs_code": str}``; the game's typed answer
(:class:`WebstoreProfile`) is turned into the documented response, with the documented defaults filled in by
the library: channel ``"0"``/``"-"``, character ``"-"``/``"-"``, level ``"0"``.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

import msgspec

from .._exceptions import ProtocolError
from .._json import MAX_JSON_DEPTH, check_json_depth, duplicate_key

__all__ = [
    "MAX_PLAYER_ID",
    "NO_END_DATE",
    "RESULT_BAD_BODY",
    "RESULT_BAD_VALUE",
    "RESULT_GAME_INDEX",
    "RESULT_OK",
    "RESULT_STORE_FAILED",
    "RESULT_UNAUTHORIZED",
    "WEBSTORE_BAD_REQUEST",
    "WEBSTORE_NO_USER",
    "WEBSTORE_OK",
    "WEBSTORE_SERVER_ERROR",
    "WEBSTORE_UNAUTHORIZED",
    "HiveRequestError",
    "HiveSuspension",
    "HiveSuspensionBatch",
    "SuspendedPlayer",
    "WebstoreChannel",
    "WebstoreCharacter",
    "WebstoreProfile",
    "WebstoreRequest",
    "WebstoreServer",
    "decode_suspension_batch",
    "decode_webstore_request",
    "encode_webstore_response",
    "parse_hive_date",
    "webstore_error",
]

# -- suspension webhook result codes (our answers; the document only fixes 0 = normal) -----------------------
RESULT_OK = 0
RESULT_BAD_BODY = 400  # not JSON, or not the documented shape / types
RESULT_UNAUTHORIZED = 401  # Authorization missing, not Bearer, or the wrong key
RESULT_GAME_INDEX = 409  # game_index is not the one this server is configured for
RESULT_BAD_VALUE = 422  # a value is not allowed: status, date format, end before start
RESULT_STORE_FAILED = 503  # the bans could not be recorded durably: send again

# -- web-store result codes (the document's 200/204/500, plus ours for requests Hive would not send) ---------
WEBSTORE_OK = 200
WEBSTORE_NO_USER = 204
WEBSTORE_SERVER_ERROR = 500
WEBSTORE_BAD_REQUEST = 400
WEBSTORE_UNAUTHORIZED = 401

NO_END_DATE = "9999-12-31 00:00:00"
MAX_PLAYER_ID = 2**63 - 1
"""Largest ``player_id`` accepted (a signed 64-bit integer, as Hive's ids are)."""
_EDGE_ZONES = (timezone(timedelta(hours=14)), timezone(timedelta(hours=-14)))
# ASCII digits only: str patterns' \d and int() also take other scripts' digits (２０２４, ٢٠٢٤).
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")


class HiveRequestError(ProtocolError):
    """A Hive request we refuse; ``result_code`` and ``message`` go into the answer.

    Attributes:
        result_code: the non-zero result code to answer with.
        message: what was wrong (no secret, bounded length).
    """

    def __init__(self, result_code: int, message: str) -> None:
        self.result_code = result_code
        self.message = message
        super().__init__(f"result_code {result_code}: {message}")


# -- suspension webhook --------------------------------------------------------------------------------------


class HiveSuspension(msgspec.Struct, frozen=True):
    """One item of the webhook's ``data`` list, as sent."""

    player_id: Annotated[int, msgspec.Meta(ge=0, le=MAX_PLAYER_ID)]
    status: str
    start_date: str
    end_date: str


class HiveSuspensionBatch(msgspec.Struct, frozen=True):
    """The webhook's request body, as sent."""

    game_index: int
    server_url: str
    data: list[HiveSuspension]


class SuspendedPlayer(msgspec.Struct, frozen=True, kw_only=True):
    """One validated suspension.

    Attributes:
        player_id: Hive player id.
        permanent: status ``P``, or end date ``9999-12-31 00:00:00``.
        starts_at: aware start.
        ends_at: aware end, None when permanent.
    """

    player_id: int
    permanent: bool
    starts_at: datetime
    ends_at: datetime | None


_batch_decoder = msgspec.json.Decoder(HiveSuspensionBatch)


def _clip(text: str, limit: int = 200) -> str:
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= limit else text[:limit] + "…"


def parse_hive_date(value: str, zone: timezone) -> datetime:
    """Parse ``YYYY-MM-DD HH:MM:SS`` (ASCII digits) in ``zone``.

    Raises:
        ValueError: not exactly that format, or not a real date/time.
    """
    if not _DATE.fullmatch(value):
        raise ValueError(f"{_clip(value, 40)!r} is not a date in the format YYYY-MM-DD HH:MM:SS")
    try:
        # The pattern fixed every field's place; datetime() refuses what strptime refuses (month 13, Feb 30, ...)
        # at a fraction of strptime's cost.
        moment = datetime(
            int(value[0:4]),
            int(value[5:7]),
            int(value[8:10]),
            int(value[11:13]),
            int(value[14:16]),
            int(value[17:19]),
            tzinfo=zone,
        )
        if moment.year <= 1 or moment.year >= 9999:
            # Representable as an instant in every zone (year 1 / 9999 at the zone's edge are not).
            ts = moment.timestamp()
            for edge in _EDGE_ZONES:
                datetime.fromtimestamp(ts, edge)
    except (ValueError, OverflowError):
        raise ValueError(f"{value!r} is not a real date and time") from None
    return moment


def zone_of(utc_offset_h: float) -> timezone:
    """The fixed zone of the webhook's dates (``9`` = KST)."""
    return timezone(timedelta(hours=utc_offset_h))


def decode_suspension_batch(body: bytes, *, game_index: int, utc_offset_h: float = 9.0) -> list[SuspendedPlayer]:
    """Decode and validate a suspension webhook body.

    Args:
        body: the raw request body.
        game_index: the Hive game index this server is configured for.
        utc_offset_h: zone of the dates (9 = KST).

    Returns:
        The validated suspensions, in request order.

    Raises:
        HiveRequestError: the body is not acceptable (result code 400, 409 or 422; the message says why).
    """
    batch = _decode_batch(body)
    if batch.game_index != game_index:
        raise HiveRequestError(
            RESULT_GAME_INDEX,
            f"game_index {batch.game_index} is not this server's game index {game_index}",
        )
    zone = zone_of(utc_offset_h)
    dates: dict[str, datetime] = {}  # a batch often repeats its dates: parse each once
    out: list[SuspendedPlayer] = []
    for i, item in enumerate(batch.data):
        if item.status not in ("P", "B"):
            raise HiveRequestError(
                RESULT_BAD_VALUE,
                f"{_where(i, item)}: status {_clip(item.status, 20)!r} is not P (permanent) or B (period)",
            )
        try:
            starts_at = dates.get(item.start_date)
            if starts_at is None:
                starts_at = dates[item.start_date] = parse_hive_date(item.start_date, zone)
            if item.end_date == NO_END_DATE:
                ends_at: datetime | None = None
            else:
                ends_at = dates.get(item.end_date)
                if ends_at is None:
                    ends_at = dates[item.end_date] = parse_hive_date(item.end_date, zone)
        except ValueError as exc:
            raise HiveRequestError(RESULT_BAD_VALUE, f"{_where(i, item)}: {exc}") from exc
        permanent = item.status == "P" or ends_at is None
        if permanent:
            ends_at = None
        elif ends_at is not None and ends_at <= starts_at:
            raise HiveRequestError(
                RESULT_BAD_VALUE,
                f"{_where(i, item)}: end_date {item.end_date} is not after start_date {item.start_date}",
            )
        out.append(SuspendedPlayer(player_id=item.player_id, permanent=permanent, starts_at=starts_at, ends_at=ends_at))
    return out


def _decode_batch(body: bytes) -> HiveSuspensionBatch:
    """The body as a batch: bounded nesting, the documented shape, no repeated key (result code 400 otherwise)."""
    _check_depth(body, RESULT_BAD_BODY)
    try:
        batch = _batch_decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise HiveRequestError(RESULT_BAD_BODY, f"body is not a suspension list: {_clip(str(exc))}") from exc
    except msgspec.DecodeError as exc:
        raise HiveRequestError(RESULT_BAD_BODY, f"body is not valid JSON: {_clip(str(exc))}") from exc
    # The decode needed every documented key once, and the strings among the values: when the body holds no
    # other string (quote), it has no other key either, so no repeated one.
    if body.count(b'"') != 2 * (4 + 7 * len(batch.data)):
        _refuse_repeated_keys(body, RESULT_BAD_BODY)
    return batch


def _check_depth(body: bytes, result_code: int) -> None:
    try:
        check_json_depth(body, MAX_JSON_DEPTH)
    except ProtocolError as exc:
        raise HiveRequestError(result_code, f"body is not acceptable: {exc}") from None


def _refuse_repeated_keys(body: bytes, result_code: int) -> None:
    key = duplicate_key(body)
    if key is not None:
        named = f"key {_clip(key, 40)!r}" if key else "a key"
        raise HiveRequestError(result_code, f"body is ambiguous: an object has {named} twice")


def _where(i: int, item: HiveSuspension) -> str:
    return f"data[{i}] (player_id {item.player_id})"


# -- web-store profile ---------------------------------------------------------------------------------------


class WebstoreRequest(msgspec.Struct, frozen=True):
    """The web-store request body: ``{"cs_code": "..."}``."""

    cs_code: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


_webstore_decoder = msgspec.json.Decoder(WebstoreRequest)


class WebstoreCharacter(msgspec.Struct, frozen=True, kw_only=True):
    """A character. Leave a field out (or empty) when the game does not use it: the library sends the default.

    Attributes:
        character_id: character id (default ``"-"``: characters not used).
        character_name: character name (default ``"-"``).
        character_level: level (default ``"0"``: not available); an int is sent as its string.
    """

    character_id: str = "-"
    character_name: str = "-"
    character_level: str | int = "0"


class WebstoreChannel(msgspec.Struct, frozen=True, kw_only=True):
    """A channel of a server.

    Attributes:
        channel_id: channel id (default ``"0"``: channels not used).
        channel_name: channel name (default ``"-"``).
        characters: the user's characters in the channel; none = one default character (``"-"``, level ``"0"``).
    """

    channel_id: str = "0"
    channel_name: str = "-"
    characters: tuple[WebstoreCharacter, ...] = ()


class WebstoreServer(msgspec.Struct, frozen=True, kw_only=True):
    """An app server.

    Attributes:
        server_id: server id (required).
        server_name: server name (required).
        channels: the server's channels; none = one default channel (``"0"``/``"-"``).
    """

    server_id: str
    server_name: str
    channels: tuple[WebstoreChannel, ...] = ()


class WebstoreProfile(msgspec.Struct, frozen=True, kw_only=True):
    """What the game's ``webstore_profile(cs_code)`` callback returns for a known user.

    Attributes:
        servers: the user's servers (empty = no information: answered like None, result 204).
    """

    servers: tuple[WebstoreServer, ...] = ()


_response_encoder = msgspec.json.Encoder()


def decode_webstore_request(body: bytes) -> str:
    """The ``cs_code`` of a web-store request.

    Raises:
        HiveRequestError: not JSON, nested too deep, an object with a repeated key, or no non-empty string
            ``cs_code`` (result code 400).
    """
    _check_depth(body, WEBSTORE_BAD_REQUEST)
    try:
        cs_code = _webstore_decoder.decode(body).cs_code
    except msgspec.ValidationError as exc:
        raise HiveRequestError(WEBSTORE_BAD_REQUEST, f"body needs a cs_code string: {_clip(str(exc))}") from exc
    except msgspec.DecodeError as exc:
        raise HiveRequestError(WEBSTORE_BAD_REQUEST, f"body is not valid JSON: {_clip(str(exc))}") from exc
    if body.count(b'"') != 4:  # more strings than the key and its value: another key, maybe a repeat
        _refuse_repeated_keys(body, WEBSTORE_BAD_REQUEST)
    return cs_code


def _text(value: Any, default: str, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ProtocolError(f"webstore profile: {what} must be a string, got {type(value).__name__}")
    text = str(value)
    return text if text else default


def _profile_data(profile: WebstoreProfile) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = []
    for server in profile.servers:
        if not isinstance(server, WebstoreServer):
            raise ProtocolError(f"webstore profile: servers must hold WebstoreServer, got {type(server).__name__}")
        server_id = _text(server.server_id, "", "server_id")
        server_name = _text(server.server_name, "", "server_name")
        if not server_id or not server_name:
            raise ProtocolError("webstore profile: every server needs a non-empty server_id and server_name")
        channels = []
        for channel in server.channels or (WebstoreChannel(),):
            if not isinstance(channel, WebstoreChannel):
                raise ProtocolError(
                    f"webstore profile: channels must hold WebstoreChannel, got {type(channel).__name__}"
                )
            characters = []
            for character in channel.characters or (WebstoreCharacter(),):
                if not isinstance(character, WebstoreCharacter):
                    raise ProtocolError(
                        f"webstore profile: characters must hold WebstoreCharacter, got {type(character).__name__}"
                    )
                characters.append(
                    {
                        "character_id": _text(character.character_id, "-", "character_id"),
                        "character_name": _text(character.character_name, "-", "character_name"),
                        "character_level": _text(character.character_level, "0", "character_level"),
                    }
                )
            channels.append(
                {
                    "channel_id": _text(channel.channel_id, "0", "channel_id"),
                    "channel_name": _text(channel.channel_name, "-", "channel_name"),
                    "characters": characters,
                }
            )
        data.append({"server_id": server_id, "server_name": server_name, "channels": channels})
    return data


def encode_webstore_response(cs_code: str, profile: WebstoreProfile | None) -> tuple[int, bytes]:
    """The documented answer for the game's profile (None = no information about the user).

    Returns:
        (result_code, JSON body): 200 with the filled-in data, or 204 with ``data: []``.

    Raises:
        ProtocolError: the game's profile is not well formed (the caller answers 500).
    """
    if profile is not None and not isinstance(profile, WebstoreProfile):
        raise ProtocolError(f"webstore_profile returned {type(profile).__name__}; return a WebstoreProfile or None")
    data = _profile_data(profile) if profile is not None else []
    if not data:
        return WEBSTORE_NO_USER, webstore_error(WEBSTORE_NO_USER, "no information about the user", cs_code)
    body = {"result_code": WEBSTORE_OK, "result_message": "success", "cs_code": cs_code, "data": data}
    return WEBSTORE_OK, _response_encoder.encode(body)


def webstore_error(result_code: int, message: str, cs_code: str = "") -> bytes:
    """A web-store answer without data: ``{"result_code", "result_message", "cs_code", "data": []}``."""
    body = {"result_code": result_code, "result_message": message, "cs_code": cs_code, "data": []}
    return _response_encoder.encode(body)
