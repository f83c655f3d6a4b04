"""Gamebase server API: result codes, envelope decoding, path segments, and the pure pieces beside them.

Pure: no IO, imports neither anyio nor httpx. The client (``_client.py``) moves bytes; everything it learns
from an answer is decided here. The answer models are in :mod:`._models`, dates in :mod:`._dates`, the
maintenance lifecycle in :mod:`._maintenance_state` and the endpoint table (shared with the sandbox) in
:mod:`._endpoints`; this module re-exports the names the rest of the package takes from it.

Envelope: every answer is HTTP 200 with ``{"header": {"isSuccessful", "resultCode", "resultMessage",
"transactionId"}, ...}``. :func:`decode_result` first reads the header alone (cheap: msgspec skips the rest),
raises :class:`~gs_hooks.PlatformError` for a failed header, and only then decodes the typed body.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from typing import Any, Final, TypeVar
from urllib.parse import quote

import msgspec

from .._exceptions import PlatformError, ProtocolError
from .._ids import only_dots
from ._dates import format_date, parse_date
from ._maintenance_state import (
    MAINTENANCE_TRANSITIONS,
    MaintenanceDetails,
    MaintenanceState,
    derive_maintenance,
    due_warnings,
    maintenance_path,
)
from ._models import (  # Header, Member and TokenInfo re-exported: the verifier, the login wiring and the bench
    BanPage,
    BanRecord,
    GamebaseResult,
    Header,
    Member,
    TokenInfo,
    _BanPageWire,
    _BanWire,
    _Head,
    _Result,
)

__all__ = [
    "CONFIG_CODES",
    "CONFIG_SETTINGS",
    "KNOWN_RESULT_CODES",
    "MAINTENANCE_TRANSITIONS",
    "PLATFORM",
    "Header",
    "MaintenanceDetails",
    "MaintenanceState",
    "Member",
    "ResultClass",
    "TokenInfo",
    "classify",
    "decode_ban_page",
    "decode_result",
    "decode_wrapped",
    "derive_maintenance",
    "due_warnings",
    "format_date",
    "is_transient",
    "maintenance_path",
    "parse_date",
    "path_segment",
    "redact",
    "token_answer",
]

PLATFORM: Final = "gamebase"

# -- result codes ---------------------------------------------------------------------------------------------


class ResultClass(enum.Enum):
    """What a Gamebase result code means for us."""

    SUCCESS = "success"
    TRANSIENT = "transient"  # Gamebase internal error: retry with backoff
    TOKEN_INVALID = "token_invalid"  # noqa: S105 - the access token is not valid: refuse the login
    TOKEN_EXPIRED = "token_expired"  # noqa: S105 - the access token expired: refuse the login (client logs in again)
    MEMBER_NOT_VALID = "member_not_valid"  # banned / withdrawn / missing member: refuse the login
    NO_SUCH_MEMBER = "no_such_member"  # the user id is unknown
    CONFIG = "config"  # our app id / secret key / API version is wrong: fix the configuration
    UNKNOWN = "unknown"  # any other code: an error, not retried


KNOWN_RESULT_CODES: Final[dict[int, tuple[ResultClass, str]]] = {
    0: (ResultClass.SUCCESS, "success"),
    -4010001: (ResultClass.CONFIG, "invalid App ID: check GS_HOOKS_GAMEBASE_APP_ID"),
    -4010002: (ResultClass.CONFIG, "invalid appkey: check GS_HOOKS_GAMEBASE_APP_ID"),
    -4010003: (ResultClass.CONFIG, "unauthenticated: check GS_HOOKS_GAMEBASE_SECRET_KEY"),
    -4010004: (ResultClass.CONFIG, "invalid secret key: check GS_HOOKS_GAMEBASE_SECRET_KEY"),
    -4000007: (ResultClass.CONFIG, "unsupported API version: check GS_HOOKS_GAMEBASE_API_VERSION"),
    -4060003: (ResultClass.CONFIG, "unsupported API version: check GS_HOOKS_GAMEBASE_API_VERSION"),
    -4010203: (ResultClass.TOKEN_INVALID, "invalid access token"),
    -4010204: (ResultClass.MEMBER_NOT_VALID, "banned, withdrawn or missing user"),
    -4010208: (ResultClass.TOKEN_EXPIRED, "access token expired"),
    -4040401: (ResultClass.NO_SUCH_MEMBER, "no such member"),
}
for _code in (*range(-5000015, -5000000), *range(-5000208, -5000200)):
    KNOWN_RESULT_CODES[_code] = (ResultClass.TRANSIENT, "Gamebase internal error (transient)")
del _code

CONFIG_CODES: Final = frozenset(c for c, (k, _) in KNOWN_RESULT_CODES.items() if k is ResultClass.CONFIG)
CONFIG_SETTINGS: Final[dict[int, str]] = {
    code: KNOWN_RESULT_CODES[code][1].rsplit("check ", 1)[1] for code in CONFIG_CODES
}
"""The setting each configuration result code names (``PlatformError.setting``)."""


def classify(code: int | None) -> ResultClass:
    """The class of a result code (``None``, no answer at all, is transient)."""
    if code is None:
        return ResultClass.TRANSIENT
    known = KNOWN_RESULT_CODES.get(code)
    return known[0] if known is not None else ResultClass.UNKNOWN


def is_transient(code: int | None) -> bool:
    """True for the internal-error codes -5000001..-5000015 and -5000201..-5000208 (and no answer)."""
    return classify(code) is ResultClass.TRANSIENT


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each (non-empty) secret replaced by ``***``."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, "***")
    return text


_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]+")


def path_segment(value: str | int, what: str = "value") -> str:
    """``value`` as exactly one URL path segment: percent-encoded with no safe character (``/ ? # %`` and every
    non-ASCII character encoded; RFC 3986's unreserved ``A-Z a-z 0-9 - . _ ~`` stay as they are).

    A value that is empty or only dots (also after NFKC: ``．．``, ``‥``) is refused: ``.`` and ``..`` are dot
    segments, which a client or server resolves away (``members/u1/tokens/..`` is ``members/u1``), and encoding
    them as ``%2E`` does not help, since RFC 3986 normalisation decodes unreserved characters again. The message
    never holds the value (it may be an access token).

    Args:
        value: the value (an int is written in decimal).
        what: what the value is, for the error message (``"user id"``, ``"access token"``...).

    Raises:
        ValueError: the value is empty or only dots.
    """
    text = value if type(value) is str else str(value)
    if _UNRESERVED.fullmatch(text) is not None:  # the common case (ids and tokens): nothing to encode
        if text.strip("."):
            return text
    elif text and not only_dots(text):
        return quote(text, safe="", errors="strict")
    raise ValueError(f"gamebase: the {what} cannot be a URL path segment: it is {'empty' if not text else 'only dots'}")


# -- token answers ---------------------------------------------------------------------------------------------


def token_answer(answer: TokenInfo, user_id: str, *, route: str = "verify_token") -> TokenInfo:
    """Accept only the token endpoint's own answer about ``user_id`` (the verifier's last line of defence).

    Path encoding keeps a token in its segment; this makes sure that, whatever a server did with the path, a
    login is never granted from another endpoint's member shape or from an answer about another user.

    Args:
        answer: the decoded answer (a :class:`TokenInfo` or the client's wire form of it).
        user_id: the user id the request was for.
        route: the endpoint name, for messages.

    Returns:
        The answer as a plain :class:`TokenInfo`.

    Raises:
        ProtocolError: the answer carries ``memberInfo`` (a Get Member answer), or its ``member.userId`` is not
            ``user_id``.
    """
    if getattr(answer, "member_info", msgspec.UNSET) is not msgspec.UNSET:
        raise ProtocolError(f"gamebase {route}: the answer is not a token-authentication answer (it has memberInfo)")
    if answer.member.user_id != user_id:
        raise ProtocolError(f"gamebase {route}: the answer is about another member than the one asked for")
    if type(answer) is TokenInfo:
        return answer
    return TokenInfo(header=answer.header, member=answer.member, linked_idp=answer.linked_idp)


# -- decoding ---------------------------------------------------------------------------------------------------

_head_decoder = msgspec.json.Decoder(_Head)
_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}
_any_decoder = msgspec.json.Decoder(dict[str, Any])

R = TypeVar("R", bound=_Result)


def _decoder(type_: type[Any]) -> msgspec.json.Decoder[Any]:
    dec = _decoders.get(type_)
    if dec is None:
        dec = _decoders[type_] = msgspec.json.Decoder(type_)
    return dec


def _check_header(body: bytes, route: str, transaction_id: str | None, secrets: Sequence[str]) -> Header:
    try:
        head = _head_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ProtocolError(f"gamebase {route}: the answer is not a Gamebase envelope: {exc}") from exc
    header = head.header
    if header is None:
        raise ProtocolError(f"gamebase {route}: the answer has no header")
    if not header.is_successful or header.result_code != 0:
        code = header.result_code
        known = KNOWN_RESULT_CODES.get(code)
        message = redact(header.result_message or (known[1] if known else "request failed"), secrets)
        if known is not None and known[0] is ResultClass.CONFIG and known[1] not in message:
            message = f"{message} ({known[1]})"
        raise PlatformError(
            PLATFORM,
            code,
            f"{route}: {message}",
            transaction_id=header.transaction_id or transaction_id,
            setting=CONFIG_SETTINGS.get(code),
        )
    return header


def _with_tx(header: Header, transaction_id: str | None) -> Header | None:
    if header.transaction_id is None and transaction_id is not None:
        return msgspec.structs.replace(header, transaction_id=transaction_id)
    return None


def decode_result(
    body: bytes,
    type_: type[R],
    *,
    route: str,
    transaction_id: str | None = None,
    secrets: Sequence[str] = (),
) -> R:
    """Decode a Gamebase answer into ``type_``.

    Args:
        body: the HTTP body.
        type_: the result type (:class:`TokenInfo`, :class:`UnderMaintenance`...).
        route: the endpoint name, for messages.
        transaction_id: the id the call was sent with; filled in when the answer carries none.
        secrets: strings to redact from any message (the access token).

    Raises:
        PlatformError: the header reports a failure (``code``/``message``/``transaction_id`` set).
        ProtocolError: the body is not a Gamebase envelope, or the success body does not fit ``type_``.
    """
    decoder = _decoder(type_)
    try:  # the common case, a success, in one pass
        result: R = decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        pass
    else:
        header = result.header
        if header.is_successful and header.result_code == 0:
            fixed = _with_tx(header, transaction_id)
            return result if fixed is None else msgspec.structs.replace(result, header=fixed)
    header = _check_header(body, route, transaction_id, secrets)
    try:
        result = decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ProtocolError(f"gamebase {route}: unexpected answer: {redact(str(exc), secrets)}") from exc
    fixed = _with_tx(header, transaction_id)
    if fixed is not None:
        result = msgspec.structs.replace(result, header=fixed)
    return result


def _convert_ban(w: _BanWire) -> BanRecord:
    return BanRecord(
        user_id=w.user_id,
        seq=w.seq,
        ban_type=w.ban_type,
        begins_at=parse_date(w.begin_date),
        ends_at=parse_date(w.end_date),
        released_at=parse_date(w.release_date),
        app_id=w.app_id,
        ban_caller=w.ban_caller,
        ban_reason=w.ban_reason,
        flags=w.flags,
        message=w.message,
        name=w.name,
        reg_user=w.reg_user,
        release_caller=w.release_caller,
        release_reason=w.release_reason,
        release_user=w.release_user,
        template_code=w.template_code,
    )


def decode_ban_page(body: bytes, *, route: str, transaction_id: str | None = None) -> BanPage:
    """Decode a ban (or ban release) history page; dates may be epoch millis or ISO 8601.

    Raises:
        PlatformError: the header reports a failure.
        ProtocolError: the body does not fit, or a date is unreadable.
    """
    header = _check_header(body, route, transaction_id, ())
    try:
        wire = _decoder(_BanPageWire).decode(body)
        records = tuple(_convert_ban(w) for w in wire.result)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        raise ProtocolError(f"gamebase {route}: unexpected answer: {exc}") from exc
    return BanPage(header=_with_tx(header, transaction_id) or header, paging=wire.paging_info, records=records)


def decode_wrapped(body: bytes, *, route: str, transaction_id: str | None = None) -> GamebaseResult:
    """Decode an IAP/Leaderboard wrapper answer: header checked, the rest kept as a mapping.

    Raises:
        PlatformError: the header reports a failure.
        ProtocolError: the body is not a JSON object with a header.
    """
    header = _check_header(body, route, transaction_id, ())
    try:
        data = _any_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:  # pragma: no cover - header decoded already
        raise ProtocolError(f"gamebase {route}: unexpected answer: {exc}") from exc
    data.pop("header", None)
    return GamebaseResult(header=_with_tx(header, transaction_id) or header, data=data)
