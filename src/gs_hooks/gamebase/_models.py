"""Gamebase server API answers as typed structs (pure: no IO).

Field names follow the document (``msgspec.field(name=...)``); unknown fields are ignored everywhere (the vendor
adds fields without notice). Every typed result carries the common ``header``; decoding lives in :mod:`._protocol`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

__all__ = [
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
    "MaintenanceInfo",
    "Member",
    "MemberDetail",
    "MemberInfo",
    "MemberList",
    "PagingInfo",
    "SimpleLaunching",
    "TokenInfo",
    "UnderMaintenance",
    "UserIds",
]


class Header(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The response header every Gamebase answer carries.

    (``gc=False`` here and on the token answer's other parts: they hold only strings, numbers and each other,
    never a cycle, so the garbage collector need not track them; the verifier caches thousands in a login storm,
    which would otherwise drive full collections that stop the game's loop: ``python -m bench.loop``.)

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


class AuthInfo(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One IdP mapping of a member (``authList[]``)."""

    user_id: str | None = msgspec.field(default=None, name="userId")
    auth_system: str | None = msgspec.field(default=None, name="authSystem")
    idp_code: str | None = msgspec.field(default=None, name="idPCode")
    auth_key: str | None = msgspec.field(default=None, name="authKey")
    reg_date: int | None = msgspec.field(default=None, name="regDate")


class Member(msgspec.Struct, frozen=True, kw_only=True, gc=False):
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


class LinkedIdp(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The IdP a token was issued through (``linkedIdP``)."""

    idp_code: str | None = msgspec.field(default=None, name="idPCode")
    idp_id: str | None = msgspec.field(default=None, name="idPId")


class TokenInfo(_Result, frozen=True, kw_only=True, gc=False):
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
