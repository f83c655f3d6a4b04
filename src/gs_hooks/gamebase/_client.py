"""The Gamebase server-API client: one method per endpoint of the v1.0 document.

Thin IO shell over :mod:`._protocol`: builds the URL from the endpoint table (:mod:`._endpoints`, shared with the
sandbox), sends the request through the library's HTTP client (:class:`~gs_hooks.HttpClient`: aiohttp on asyncio,
httpx on trio or a game's own ``httpx.AsyncClient``) and hands the body to the pure decoder. The request core
(retries, result codes, redaction) is :mod:`._request_core`; transaction ids and quiet httpx request logs are
:mod:`._transport`; the IAP and Leaderboard wrapper calls are :mod:`._client_wrappers`.

Paths: every value placed in a URL path (app id, user id, access token, payment/item/app seq, factor) goes
through :func:`~gs_hooks.gamebase._protocol.path_segment`, so it stays exactly one segment (empty and dot-only
values are refused before any request). The token answer is accepted only when it is the token endpoint's own
shape about the user asked for (:func:`~gs_hooks.gamebase._protocol.token_answer`).

Secrets: the secret key only ever sits in the request headers; the access token is a URL path segment, so no
URL is ever put in a message (transport errors are translated to the route name, a token segment masked), and
httpx's request log lines for our requests are demoted to DEBUG with the token segment masked (aiohttp logs none).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime

from .._config import Secret
from ._client_wrappers import WrapperCalls
from ._endpoints import BAN_RELEASES, BANS, IDP, LAUNCHING, MAINTENANCE, MEMBER, MEMBERS, TOKEN, USER_IDS, Endpoint
from ._models import (
    BanPage,
    IdpInfo,
    MemberDetail,
    MemberList,
    SimpleLaunching,
    TokenInfo,
    UnderMaintenance,
    UserIds,
    _TokenAnswer,
)
from ._protocol import decode_ban_page, decode_result, format_date, token_answer
from ._protocol import path_segment as _seg

__all__ = ["GamebaseClient"]


def _decode_token(raw: bytes, tx: str, hidden: Sequence[str]) -> TokenInfo:
    return decode_result(raw, _TokenAnswer, route="verify_token", transaction_id=tx, secrets=hidden)


class GamebaseClient(WrapperCalls):
    """Typed client of the Gamebase server API.

    Every method takes an optional ``transaction_id`` (one is generated when omitted); the result's
    ``transaction_id`` and every raised :class:`~gs_hooks.PlatformError`'s ``transaction_id`` carry it.

    Args:
        http: the HTTP client: ``hooks.http`` (an :class:`~gs_hooks.HttpClient`), or an ``httpx.AsyncClient``
            (wrapped, left open).
        base_url: e.g. ``https://api-gamebase.cloud.toast.com``.
        app_id: the NHN Cloud project id.
        secret_key: the ``X-Secret-Key`` value.
        api_version: the path version (``v1.0``).
        timeout_s: timeout of one HTTP attempt.
        retries: extra attempts on transient failures.
        clock: the clock the backoff sleeps on.
        backoff_base_s / backoff_max_s: the backoff before retry ``n`` is drawn from
            ``[d/2, d]`` with ``d = min(backoff_max_s, backoff_base_s * 2**n)``.

    Attributes:
        answered: how many calls got a proper answer (a success, or a refusal about the request such as an invalid
            token): each proves Gamebase reachable and our app id, key and version accepted (readiness uses it).
    """

    def __repr__(self) -> str:
        return (
            f"GamebaseClient(base_url={self.base_url!r}, app_id={self.app_id!r}, "
            f"api_version={self.api_version!r}, secret_key={self._secret!r})"
        )

    # -- authentication -------------------------------------------------------------------------------------------

    async def verify_token(
        self,
        user_id: str,
        access_token: str | Secret,
        *,
        linked_idp: bool = False,
        transaction_id: str | None = None,
        retries: int | None = None,
    ) -> TokenInfo:
        """Token Authentication: the member an access token belongs to.

        The caller decides what ``member.valid`` means (a login accepts only ``"Y"``).

        Raises:
            PlatformError: e.g. code -4010203 (invalid token), -4010208 (expired), -4010204 (not a valid
                member), or a configuration code (-4010001/2/3/4, -4000007, -4060003).
            PlatformUnavailableError: Gamebase could not be reached or kept failing transiently.
        """
        token = access_token.get_secret_value() if isinstance(access_token, Secret) else access_token
        user = user_id if type(user_id) is str else str(user_id)
        seg = _seg(token, "access token")
        query = "?linkedIdP=true" if linked_idp else "?linkedIdP=false"
        url = self._url(TOKEN, userId=_seg(user, "user id"), accessToken=seg) + query
        # straight to the request core (no _typed layer, no closure): the login storm's hot path
        answer = await self._request(
            "verify_token",
            "GET",
            url,
            _decode_token,
            transaction_id=transaction_id,
            retries=retries,
            hidden=(token, seg, self._secret.get_secret_value()),
        )
        return token_answer(answer, user)

    # -- launching --------------------------------------------------------------------------------------------------

    async def simple_launching(
        self,
        os_code: str,
        client_version: str,
        *,
        transaction_id: str | None = None,
        retries: int | None = None,
    ) -> SimpleLaunching:
        """Get Simple Launching for a client (``os_code``: AOS, IOS, WEB, WINDOWS)."""
        return await self._typed(
            "simple_launching",
            LAUNCHING,
            SimpleLaunching,
            params={"osCode": os_code, "clientVersion": client_version},
            transaction_id=transaction_id,
            retries=retries,
        )

    # -- member ---------------------------------------------------------------------------------------------------

    async def member(
        self, user_id: str, *, include_member_info: bool = True, transaction_id: str | None = None
    ) -> MemberDetail:
        """Get Member (code -4040401 when the user id is unknown)."""
        return await self._typed(
            "member",
            MEMBER,
            MemberDetail,
            segments={"userId": _seg(user_id, "user id")},
            params={"includeMemberInfo": "true" if include_member_info else "false"},
            transaction_id=transaction_id,
        )

    async def members(self, user_ids: Sequence[str], *, transaction_id: str | None = None) -> MemberList:
        """Get Members: brief information of several members."""
        return await self._typed(
            "members", MEMBERS, MemberList, body={"userIdList": list(user_ids)}, transaction_id=transaction_id
        )

    async def idp_info(self, user_ids: Sequence[str], *, transaction_id: str | None = None) -> IdpInfo:
        """Get IdP Information: user id → IdP mappings."""
        return await self._typed(
            "idp_info", IDP, IdpInfo, body={"userIdList": list(user_ids)}, transaction_id=transaction_id
        )

    async def user_ids_by_auth_key(
        self, auth_keys: Sequence[str], *, auth_system: str = "gbid", transaction_id: str | None = None
    ) -> UserIds:
        """Get UserId Information with Auth key: auth key → user id."""
        return await self._typed(
            "user_ids_by_auth_key",
            USER_IDS,
            UserIds,
            params={"authSystem": auth_system},
            body={"authKeyList": list(auth_keys)},
            transaction_id=transaction_id,
        )

    # -- ban histories --------------------------------------------------------------------------------------------

    async def _ban_page(
        self,
        route: str,
        endpoint: Endpoint,
        begin: datetime,
        end: datetime,
        page: int,
        size: int,
        transaction_id: str | None,
    ) -> BanPage:
        def decode(raw: bytes, tx: str, hidden: Sequence[str]) -> BanPage:
            return decode_ban_page(raw, route=route, transaction_id=tx)

        params = {"begin": format_date(begin), "end": format_date(end), "page": str(page), "size": str(size)}
        url = self._url(endpoint)
        return await self._request(route, endpoint.method, url, decode, params=params, transaction_id=transaction_id)

    async def ban_histories(
        self,
        begin: datetime,
        end: datetime,
        *,
        page: int = 0,
        size: int = 100,
        transaction_id: str | None = None,
    ) -> BanPage:
        """One page of Ban Histories: bans made between ``begin`` and ``end`` (aware datetimes)."""
        return await self._ban_page("ban_histories", BANS, begin, end, page, size, transaction_id)

    async def ban_release_histories(
        self,
        begin: datetime,
        end: datetime,
        *,
        page: int = 0,
        size: int = 100,
        transaction_id: str | None = None,
    ) -> BanPage:
        """One page of Ban Release Histories: bans lifted between ``begin`` and ``end``."""
        return await self._ban_page("ban_release_histories", BAN_RELEASES, begin, end, page, size, transaction_id)

    def iter_ban_histories(self, begin: datetime, end: datetime, *, page_size: int = 100) -> AsyncIterator[BanPage]:
        """Every page of Ban Histories between ``begin`` and ``end``, in order."""
        return _pages(lambda p: self.ban_histories(begin, end, page=p, size=page_size))

    def iter_ban_release_histories(
        self, begin: datetime, end: datetime, *, page_size: int = 100
    ) -> AsyncIterator[BanPage]:
        """Every page of Ban Release Histories between ``begin`` and ``end``, in order."""
        return _pages(lambda p: self.ban_release_histories(begin, end, page=p, size=page_size))

    # -- maintenance ------------------------------------------------------------------------------------------------

    async def under_maintenance(
        self, *, transaction_id: str | None = None, retries: int | None = None
    ) -> UnderMaintenance:
        """Check Maintenance Set: whether maintenance is set, and its windows."""
        return await self._typed(
            "under_maintenance", MAINTENANCE, UnderMaintenance, transaction_id=transaction_id, retries=retries
        )


async def _pages(fetch: Callable[[int], Awaitable[BanPage]]) -> AsyncIterator[BanPage]:
    page = 0
    while True:
        result = await fetch(page)
        yield result
        info = result.paging
        if info.last or not result.records or (info.total_pages and page + 1 >= info.total_pages):
            return
        page += 1
