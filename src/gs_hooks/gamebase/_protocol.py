"""Gamebase server API: response models, envelope decoding, result codes, dates, maintenance state machine.

Pure: no IO, imports neither anyio nor httpx. The client (``_client.py``) moves bytes; everything it learns
from an answer is decided here.

Envelope: every answer is HTTP 200 with ``{"header": {"isSuccessful", "resultCode", "resultMessage",
"transactionId"}, ...}``. :func:`decode_result` first reads the header alone (cheap: msgspec skips the rest),
raises :class:`~gs_hooks.PlatformError` for a failed header, and only then decodes the typed body. Unknown
fields are ignored everywhere (the vendor adds fields without notice).

Dates: member dates are epoch milliseconds; maintenance dates are ISO 8601; ban-history dates are documented
as epoch millis in one place and ISO strings in another, so :func:`parse_date` accepts both (and numeric
strings). An ISO date without a zone is read as KST, the platform's home zone.

Maintenance: :class:`MaintenanceState` plus :data:`MAINTENANCE_TRANSITIONS` is the whole lifecycle;
:func:`derive_maintenance` maps what the last poll said (and the time) to the state we should be in, and
:func:`maintenance_path` spells out the legal moves to get there.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final, TypeVar
from urllib.parse import quote

import msgspec

from .._exceptions import PlatformError, ProtocolError
from .._ids import only_dots

__all__ = [
    "CONFIG_CODES",
    "CONFIG_SETTINGS",
    "KNOWN_RESULT_CODES",
    "MAINTENANCE_TRANSITIONS",
    "AuthInfo",
    "AuthKeyInfo",
    "BanPage",
    "BanRecord",
    "GamebaseResult",
    "Header",
    "IdpInfo",
    "LaunchingApp",
    "LaunchingData",
    "LaunchingStatus",
    "LinkedIdp",
    "MaintenanceDetails",
    "MaintenanceInfo",
    "MaintenanceState",
    "Member",
    "MemberDetail",
    "MemberInfo",
    "MemberList",
    "PagingInfo",
    "ResultClass",
    "SimpleLaunching",
    "TokenInfo",
    "UnderMaintenance",
    "UserIds",
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
_KST = timezone(timedelta(hours=9), "KST")

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


# -- models -----------------------------------------------------------------------------------------------------


class Header(msgspec.Struct, frozen=True, kw_only=True):
    """The response header every Gamebase answer carries.

    Attributes:
        transaction_id: the call's transaction id (ours, echoed; or one Gamebase made up).
        is_successful: whether the call succeeded.
        result_code: 0 on success, else an error code (see :data:`KNOWN_RESULT_CODES`).
        result_message: Gamebase's message.
    """

    transaction_id: str | None = msgspec.field(default=None, name="transactionId")
    is_successful: bool = msgspec.field(default=False, name="isSuccessful")
    result_code: int = msgspec.field(default=-1, name="resultCode")
    result_message: str | None = msgspec.field(default=None, name="resultMessage")


class _Head(msgspec.Struct, frozen=True):
    header: Header | None = None


class _Result(msgspec.Struct, frozen=True, kw_only=True):
    """Base of every typed result: the header plus the transaction id of the call."""

    header: Header

    @property
    def transaction_id(self) -> str | None:
        """The ``X-TCGB-Transaction-Id`` of the call that produced this result."""
        return self.header.transaction_id


class AuthInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One IdP mapping of a member (``authList[]``)."""

    user_id: str | None = msgspec.field(default=None, name="userId")
    auth_system: str | None = msgspec.field(default=None, name="authSystem")
    idp_code: str | None = msgspec.field(default=None, name="idPCode")
    auth_key: str | None = msgspec.field(default=None, name="authKey")
    reg_date: int | None = msgspec.field(default=None, name="regDate")


class Member(msgspec.Struct, frozen=True, kw_only=True):
    """A Gamebase member.

    Attributes:
        user_id: the Gamebase user id.
        valid: ``Y`` normal, ``D`` withdrawn, ``B`` banned, ``T``/``P`` ban-suspended, ``M`` missing account.
        app_id: the app id.
        reg_date / last_login_date: epoch milliseconds (last login is absent on a first login).
        auth_list: the member's IdP mappings.
    """

    user_id: str = msgspec.field(name="userId")
    valid: str
    app_id: str | None = msgspec.field(default=None, name="appId")
    reg_date: int | None = msgspec.field(default=None, name="regDate")
    last_login_date: int | None = msgspec.field(default=None, name="lastLoginDate")
    auth_list: tuple[AuthInfo, ...] = msgspec.field(default=(), name="authList")


class LinkedIdp(msgspec.Struct, frozen=True, kw_only=True):
    """The IdP a token was issued through (``linkedIdP``)."""

    idp_code: str | None = msgspec.field(default=None, name="idPCode")
    idp_id: str | None = msgspec.field(default=None, name="idPId")


class TokenInfo(_Result, frozen=True, kw_only=True):
    """Result of token authentication: the member the access token belongs to.

    Attributes:
        member: the member (``member.valid == "Y"`` is the only state a login accepts).
        linked_idp: the IdP of the token, when asked for (``linkedIdP=true``).
    """

    member: Member
    linked_idp: LinkedIdp | None = msgspec.field(default=None, name="linkedIdP")


class _TokenAnswer(TokenInfo, frozen=True, kw_only=True):
    """What the token endpoint's answer is read as: :class:`TokenInfo` plus the one field that tells a Get Member
    answer (``memberInfo``) apart, so :func:`token_answer` can refuse an answer from another endpoint."""

    member_info: Any = msgspec.field(default=msgspec.UNSET, name="memberInfo")


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


class MemberInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A member's device details (``memberInfo``)."""

    device_country_code: str | None = msgspec.field(default=None, name="deviceCountryCode")
    usim_country_code: str | None = msgspec.field(default=None, name="usimCountryCode")
    language: str | None = None
    os_code: str | None = msgspec.field(default=None, name="osCode")
    telecom: str | None = None
    store_code: str | None = msgspec.field(default=None, name="storeCode")
    network: str | None = None
    device_model: str | None = msgspec.field(default=None, name="deviceModel")
    os_version: str | None = msgspec.field(default=None, name="osVersion")
    sdk_version: str | None = msgspec.field(default=None, name="sdkVersion")
    client_version: str | None = msgspec.field(default=None, name="clientVersion")


class MemberDetail(_Result, frozen=True, kw_only=True):
    """Result of Get Member."""

    member: Member
    member_info: MemberInfo | None = msgspec.field(default=None, name="memberInfo")


class MemberList(_Result, frozen=True, kw_only=True):
    """Result of Get Members (brief information, no auth list)."""

    members: tuple[Member, ...] = msgspec.field(default=(), name="memberList")


class AuthKeyInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One IdP mapping in Get IdP Information."""

    auth_key: str | None = msgspec.field(default=None, name="authKey")
    idp_code: str | None = msgspec.field(default=None, name="idPCode")
    auth_system: str | None = msgspec.field(default=None, name="authSystem")


class IdpInfo(_Result, frozen=True, kw_only=True):
    """Result of Get IdP Information: user id → IdP mappings."""

    result: dict[str, tuple[AuthKeyInfo, ...]] = msgspec.field(default_factory=dict)


class UserIds(_Result, frozen=True, kw_only=True):
    """Result of Get UserId Information with Auth key: auth key → user id."""

    result: dict[str, str] = msgspec.field(default_factory=dict)


class LaunchingStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Client status: 200 OK, 201 update recommended, 300 update required, 302 terminated, 303 maintenance."""

    code: int
    message: str | None = None


class MaintenanceInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A maintenance window as Gamebase sends it (dates are ISO 8601 strings)."""

    type_code: str | None = msgspec.field(default=None, name="typeCode")
    begin_date: str | int | None = msgspec.field(default=None, name="beginDate")
    end_date: str | int | None = msgspec.field(default=None, name="endDate")
    url: str | None = None
    reason: str | None = None
    message: str | None = None


class LaunchingApp(msgspec.Struct, frozen=True, kw_only=True):
    """The app part of simple launching, as raw mappings (``accessInfo``, ``relatedUrls``, ``install``)."""

    store_code: str | None = msgspec.field(default=None, name="storeCode")
    access_info: dict[str, Any] | None = msgspec.field(default=None, name="accessInfo")
    related_urls: dict[str, Any] | None = msgspec.field(default=None, name="relatedUrls")
    install: dict[str, Any] | None = None


class LaunchingData(msgspec.Struct, frozen=True, kw_only=True):
    """``launchingData`` of simple launching."""

    status: LaunchingStatus
    app: LaunchingApp | None = None
    maintenance: MaintenanceInfo | None = None


class SimpleLaunching(_Result, frozen=True, kw_only=True):
    """Result of Get Simple Launching."""

    launching_data: LaunchingData = msgspec.field(name="launchingData")

    @property
    def under_maintenance(self) -> bool:
        """True when the client status is 303 (maintenance in progress)."""
        return self.launching_data.status.code == 303


class UnderMaintenance(_Result, frozen=True, kw_only=True):
    """Result of Check Maintenance Set."""

    app_id: str | None = msgspec.field(default=None, name="appId")
    under_maintenance: bool = msgspec.field(default=False, name="underMaintenance")
    maintenances: tuple[MaintenanceInfo, ...] = ()


class PagingInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Paging of the ban history queries (a missing block means a single, last page)."""

    first: bool = True
    last: bool = True
    number_of_elements: int = msgspec.field(default=0, name="numberOfElements")
    page: int = 0
    size: int = 0
    total_elements: int = msgspec.field(default=0, name="totalElements")
    total_pages: int = msgspec.field(default=0, name="totalPages")


class _BanWire(msgspec.Struct, frozen=True, kw_only=True):
    app_id: str | None = msgspec.field(default=None, name="appId")
    ban_caller: str | None = msgspec.field(default=None, name="banCaller")
    ban_reason: str | None = msgspec.field(default=None, name="banReason")
    ban_type: str | None = msgspec.field(default=None, name="banType")
    begin_date: int | float | str | None = msgspec.field(default=None, name="beginDate")
    end_date: int | float | str | None = msgspec.field(default=None, name="endDate")
    flags: str | None = None
    message: str | None = None
    name: str | None = None
    reg_user: str | None = msgspec.field(default=None, name="regUser")
    release_caller: str | None = msgspec.field(default=None, name="releaseCaller")
    release_date: int | float | str | None = msgspec.field(default=None, name="releaseDate")
    release_reason: str | None = msgspec.field(default=None, name="releaseReason")
    release_user: str | None = msgspec.field(default=None, name="releaseUser")
    seq: int | None = None
    template_code: int | None = msgspec.field(default=None, name="templateCode")
    user_id: str = msgspec.field(name="userId")


class _BanPageWire(msgspec.Struct, frozen=True, kw_only=True):
    header: Header
    paging_info: PagingInfo = msgspec.field(default_factory=PagingInfo, name="pagingInfo")
    result: tuple[_BanWire, ...] = ()


class BanRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One ban (or unban) history entry, dates parsed to aware datetimes.

    Attributes:
        user_id: the banned user.
        seq: the history sequence number.
        ban_type: ``TEMPORARY`` or ``PERMANENT``.
        begins_at / ends_at: the ban period (``ends_at`` None: no end given).
        released_at: when the ban was lifted (release history), else None.
        message / ban_reason / release_reason / ...: as Gamebase sends them.
    """

    user_id: str
    seq: int | None = None
    ban_type: str | None = None
    begins_at: datetime | None = None
    ends_at: datetime | None = None
    released_at: datetime | None = None
    app_id: str | None = None
    ban_caller: str | None = None
    ban_reason: str | None = None
    flags: str | None = None
    message: str | None = None
    name: str | None = None
    reg_user: str | None = None
    release_caller: str | None = None
    release_reason: str | None = None
    release_user: str | None = None
    template_code: int | None = None


class BanPage(_Result, frozen=True, kw_only=True):
    """One page of ban (or ban release) history."""

    paging: PagingInfo
    records: tuple[BanRecord, ...]


class GamebaseResult(_Result, frozen=True, kw_only=True):
    """Result of an IAP or Leaderboard wrapper route: the header and the rest of the answer, undecoded."""

    data: dict[str, Any]


# -- dates ------------------------------------------------------------------------------------------------------

_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?"
)


def parse_date(value: int | float | str | None) -> datetime | None:
    """A Gamebase date as an aware datetime: epoch millis (int or numeric string) or ISO 8601.

    ISO dates without a zone are read as KST. ``None``, ``""`` and ``0`` mean "no date".

    Raises:
        ValueError: the value is neither.
    """
    if value is None or value == "" or value == 0:
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a date: {value!r}")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000.0, UTC)
    text = value.strip()
    if re.fullmatch(r"-?\d+", text):
        return datetime.fromtimestamp(int(text) / 1000.0, UTC)
    m = _ISO.fullmatch(text)
    if m is None:
        raise ValueError(f"not an ISO 8601 date or epoch millis: {value!r}")
    year, month, day, hour, minute = (int(m.group(i)) for i in range(1, 6))
    second = int(m.group(6) or 0)
    micro = int((m.group(7) or "0").ljust(6, "0")[:6])
    zone = m.group(8)
    if zone is None:
        tz: timezone = _KST
    elif zone in ("Z", "z"):
        tz = UTC
    else:
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0)))
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)


def format_date(moment: datetime) -> str:
    """``yyyy-MM-dd'T'HH:mm:ss.SSSXXX`` (the ban-history query format) for an aware datetime.

    Raises:
        ValueError: ``moment`` is naive.
    """
    if moment.tzinfo is None:
        raise ValueError("naive datetime: give an aware datetime (e.g. tzinfo=gs_hooks.KST)")
    return moment.isoformat(timespec="milliseconds")


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


# -- maintenance --------------------------------------------------------------------------------------------------


class MaintenanceState(enum.Enum):
    """Where the app stands with respect to maintenance."""

    NONE = "none"  # no maintenance known
    ANNOUNCED = "announced"  # a window is set and begins in the future
    ACTIVE = "active"  # a window is in progress
    ENDED = "ended"  # the last window ended (behaves like NONE)


MAINTENANCE_TRANSITIONS: Final[dict[MaintenanceState, frozenset[MaintenanceState]]] = {
    # A self-transition is a change of the window (moved, extended, new message).
    MaintenanceState.NONE: frozenset({MaintenanceState.ANNOUNCED, MaintenanceState.ACTIVE}),
    MaintenanceState.ANNOUNCED: frozenset(
        {MaintenanceState.ANNOUNCED, MaintenanceState.ACTIVE, MaintenanceState.NONE}  # NONE: cancelled
    ),
    MaintenanceState.ACTIVE: frozenset({MaintenanceState.ACTIVE, MaintenanceState.ENDED}),
    MaintenanceState.ENDED: frozenset({MaintenanceState.ANNOUNCED, MaintenanceState.ACTIVE}),
}


class MaintenanceDetails(msgspec.Struct, frozen=True, kw_only=True):
    """One maintenance window (the ``details`` of maintenance kicks, changes and notices).

    Attributes:
        type_code: ``APP`` (set for the game) or ``SYSTEM`` (Gamebase-wide).
        begins_at / ends_at: the window (aware datetimes; None when Gamebase gave none).
        message: the maintenance message to show players.
        url: a page with details, when set.
        reason: the maintenance reason (simple launching only).
    """

    type_code: str | None = None
    begins_at: datetime | None = None
    ends_at: datetime | None = None
    message: str = ""
    url: str | None = None
    reason: str | None = None

    @classmethod
    def from_info(cls, info: MaintenanceInfo) -> MaintenanceDetails:
        """Convert Gamebase's window (ISO strings) to details.

        Raises:
            ValueError: a date is unreadable.
        """
        return cls(
            type_code=info.type_code,
            begins_at=parse_date(info.begin_date),
            ends_at=parse_date(info.end_date),
            message=info.message or info.reason or "",
            url=info.url or None,
            reason=info.reason,
        )


def _window_state(w: MaintenanceDetails, now: float) -> MaintenanceState:
    begin = w.begins_at.timestamp() if w.begins_at is not None else None
    end = w.ends_at.timestamp() if w.ends_at is not None else None
    if end is not None and now >= end:
        return MaintenanceState.ENDED
    if begin is not None and now < begin:
        return MaintenanceState.ANNOUNCED
    return MaintenanceState.ACTIVE


def derive_maintenance(
    current: MaintenanceState,
    windows: Sequence[MaintenanceDetails],
    now: float,
    *,
    under_maintenance: bool = False,
    fresh: bool = True,
) -> tuple[MaintenanceState, MaintenanceDetails | None]:
    """The state the app is in, given the known windows and the time.

    A window is active when ``begin <= now < end`` by our clock (a missing date is open-ended), announced when
    ``now < begin``. ``under_maintenance`` with no window at all is an active window of unknown extent. Only a
    *fresh* answer ends a maintenance: with stale knowledge (the last poll failed) an active state stays active,
    so an outage never ends a maintenance early or makes the gate flap.

    Args:
        current: the state we are in.
        windows: the windows the last successful poll reported.
        now: epoch seconds.
        under_maintenance: Gamebase's ``underMaintenance`` flag (or simple launching status 303).
        fresh: whether ``windows`` come from a poll that just succeeded.

    Returns:
        (state, window): the state to be in and its window (None for NONE/ENDED without a window).
    """
    active = [w for w in windows if _window_state(w, now) is MaintenanceState.ACTIVE]
    if active:
        return MaintenanceState.ACTIVE, min(active, key=_begin_key)
    if under_maintenance and not windows:
        return MaintenanceState.ACTIVE, MaintenanceDetails()
    upcoming = [w for w in windows if _window_state(w, now) is MaintenanceState.ANNOUNCED]
    if current is MaintenanceState.ACTIVE and not fresh:
        return MaintenanceState.ACTIVE, None
    if upcoming:
        return MaintenanceState.ANNOUNCED, min(upcoming, key=_begin_key)
    if current is MaintenanceState.ACTIVE:
        return MaintenanceState.ENDED, None
    if current is MaintenanceState.ANNOUNCED:
        return MaintenanceState.NONE, None
    return current, None


def _begin_key(w: MaintenanceDetails) -> float:
    return w.begins_at.timestamp() if w.begins_at is not None else float("-inf")


def maintenance_path(current: MaintenanceState, target: MaintenanceState) -> list[MaintenanceState]:
    """The legal moves from ``current`` to ``target`` (through ENDED when there is no direct move).

    Raises:
        ValueError: ``target`` cannot be reached from ``current``.
    """
    allowed = MAINTENANCE_TRANSITIONS[current]
    if target in allowed:
        return [target]
    if MaintenanceState.ENDED in allowed and target in MAINTENANCE_TRANSITIONS[MaintenanceState.ENDED]:
        return [MaintenanceState.ENDED, target]
    raise ValueError(f"illegal maintenance transition {current.value} -> {target.value}")


def due_warnings(
    begins_at: float, lead_times: Iterable[float], sent: frozenset[float], now: float
) -> tuple[list[float], float | None]:
    """Which warning lead times are due now, and when the next one is.

    Args:
        begins_at: the window's begin (epoch seconds).
        lead_times: seconds before the begin at which to warn.
        sent: lead times already warned for this window.
        now: epoch seconds.

    Returns:
        (due, next_at): the unsent lead times whose moment has come (send one warning for all of them), and
        the epoch second of the next unsent lead time (None when none is left).
    """
    due: list[float] = []
    next_at: float | None = None
    if now >= begins_at:
        return due, None
    for lead in sorted(set(lead_times), reverse=True):
        if lead in sent:
            continue
        at = begins_at - lead
        if at <= now:
            due.append(lead)
        elif next_at is None or at < next_at:
            next_at = at
    return due, next_at
