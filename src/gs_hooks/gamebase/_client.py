"""The Gamebase server-API client: one method per endpoint of the v1.0 document.

Thin IO shell over :mod:`._protocol`: builds the path, sends the request through the shared
``httpx.AsyncClient`` and hands the body to the pure decoder. Retries: transport errors, HTTP 5xx and the
transient result codes (-5000001..-5000015, -5000201..-5000208) are retried ``retries`` times with jittered
exponential backoff on the injected clock, always with the same transaction id; when they run out the call
raises :class:`~gs_hooks.PlatformUnavailableError`. Any other error code raises
:class:`~gs_hooks.PlatformError` at once.

Pool gate: concurrent requests enter httpx's connection pool one at a time, each once the previous one holds a
connection (learned from httpcore's ``trace`` extension; see :class:`_Claim`), waiting at most ``timeout_s``;
a transport that reports no such traces is not gated.

Paths: every value placed in a URL path (app id, user id, access token, payment/item/app seq, factor) goes
through :func:`~gs_hooks.gamebase._protocol.path_segment`, so it stays exactly one segment (empty and dot-only
values are refused before any request). The token answer is accepted only when it is the token endpoint's own
shape about the user asked for (:func:`~gs_hooks.gamebase._protocol.token_answer`).

Secrets: the secret key only ever sits in the request headers; the access token is a URL path segment, so no
URL is ever put in a message (httpx errors are translated to the route name). httpx's own ``HTTP Request:`` log
line for our requests is demoted to DEBUG (kept only when the ``httpx`` logger is enabled for DEBUG) and its
token segment masked (:class:`_RedactTokenPaths`).
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, TypeVar
from urllib.parse import quote

import anyio
import httpx
import msgspec

from .._backoff import backoff_delay
from .._clock import Clock, SystemClock
from .._config import Secret
from .._exceptions import PlatformError, PlatformUnavailableError, ProtocolError
from ._protocol import (
    PLATFORM,
    BanPage,
    GamebaseResult,
    IdpInfo,
    MemberDetail,
    MemberList,
    SimpleLaunching,
    TokenInfo,
    UnderMaintenance,
    UserIds,
    _Result,
    _TokenAnswer,
    decode_ban_page,
    decode_result,
    decode_wrapped,
    format_date,
    is_transient,
    path_segment,
    redact,
    token_answer,
)
from ._slots import Slots

__all__ = ["GamebaseClient"]

log = logging.getLogger("gs_hooks.gamebase")

T = TypeVar("T")
R = TypeVar("R", bound=_Result)

_CONTENT_TYPE: Final = "application/json; charset=UTF-8"
_json_encoder = msgspec.json.Encoder()
_TOKEN_SEGMENT = re.compile(r"(/tokens/)[^/?#\s\"']+")


_OUR_URLS: set[str] = set()  # the URL prefix of every GamebaseClient made in this process


class _RedactTokenPaths(logging.Filter):
    """On httpx's logger: our requests' ``HTTP Request: GET <url>`` lines go to DEBUG, with the token masked.

    httpx logs every request at INFO; for the Gamebase client (a maintenance poll, a ban poll, a verification per
    login) that is noise at the level operators run. A line about a Gamebase API URL of one of our clients is
    demoted to DEBUG and only kept when the ``httpx`` logger is enabled for DEBUG (turn it on with
    ``logging.getLogger("httpx").setLevel(logging.DEBUG)``); the game's own httpx requests are left alone. Any
    ``/tokens/<token>`` path segment in a kept line is masked as ``/tokens/***``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and args:
            changed = False
            ours = False
            new: list[object] = []
            for arg in args:
                if isinstance(arg, httpx.URL | str):
                    text = str(arg)
                    if not ours and _OUR_URLS and text.startswith(tuple(_OUR_URLS)):
                        ours = True
                    if "/tokens/" in text:
                        arg = _TOKEN_SEGMENT.sub(r"\1***", text)
                        changed = True
                new.append(arg)
            if changed:
                record.args = tuple(new)
            if ours and record.levelno > logging.DEBUG:
                record.levelno = logging.DEBUG
                record.levelname = logging.getLevelName(logging.DEBUG)
                if not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
                    return False
        if isinstance(record.msg, str) and "/tokens/" in record.msg:
            record.msg = _TOKEN_SEGMENT.sub(r"\1***", record.msg)
        return True


def _install_log_filter(base_url: str) -> None:
    _OUR_URLS.add(base_url + "/tcgb-")  # every Gamebase service path starts so
    httpx_log = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactTokenPaths) for f in httpx_log.filters):
        httpx_log.addFilter(_RedactTokenPaths())


_seg = path_segment  # every value placed in a URL path goes through it

RETRY_AFTER_S: Final = 5.0
"""The ``retry_after_s`` hint of a :class:`~gs_hooks.PlatformUnavailableError` when Gamebase sent no Retry-After."""


def _retry_after(value: str | None) -> float | None:
    """A ``Retry-After`` in seconds (1..300), or None when absent or not delta-seconds."""
    text = (value or "").strip()
    if not (text.isascii() and text.isdigit()):
        return None
    return float(min(max(int(text[:6]), 1), 300))


def _tx_prefix() -> str:
    r = os.urandom(10).hex()
    return f"{r[:8]}-{r[8:12]}-4{r[12:15]}-{'89ab'[int(r[15], 16) & 3]}{r[16:19]}-"


_tx_state = [_tx_prefix()]
_tx_counter = itertools.count(random.getrandbits(40))


def _new_tx_prefix() -> None:
    _tx_state[0] = _tx_prefix()


if hasattr(os, "register_at_fork"):  # a forked process draws its own prefix
    os.register_at_fork(after_in_child=_new_tx_prefix)


def _new_transaction_id() -> str:
    """A fresh transaction id, shaped like a UUID: a random per-process prefix and a counter.

    Why not ``uuid.uuid4()``: it reads 16 bytes from the OS and builds a UUID object per request (measured in the
    login-storm bench); a random prefix plus a 48-bit counter is as unique within a process and across processes.
    """
    return f"{_tx_state[0]}{next(_tx_counter) & 0xFFFFFFFFFFFF:012x}"


def _decode_token(raw: bytes, tx: str, hidden: Sequence[str]) -> TokenInfo:
    return decode_result(raw, _TokenAnswer, route="verify_token", transaction_id=tx, secrets=hidden)


# httpcore's trace events that mean "this request holds its connection" (headers going out on one) or "opens
# one that no other request can take" (plain TCP, a SOCKS proxy's TCP, a unix socket).
_CLAIM_EVENTS = ("send_request_headers.started", "connect_tcp.started", "connect_unix_socket.started")


class _Claim:
    """The ``trace`` extension of one request: opens the pool gate once httpcore has put it on a connection.

    Why: httpcore's pool hands an idle connection to every request that arrives before the first one has marked
    it active (two lock checkpoints later); all but one then fail with ``ConnectionNotAvailable`` and go round
    the pool again, which measured up to a retry per request and ~30 % more CPU per verification at 8 concurrent
    requests (``bench.gamebase``). Letting our next request into the pool only once the previous one holds its
    connection (or is opening a new one, which no other request can take) avoids those retries.
    """

    __slots__ = ("client", "extensions", "gate")

    def __init__(self, client: GamebaseClient, extensions: dict[str, Any], gate: Slots | None) -> None:
        self.client = client
        self.extensions = extensions
        self.gate = gate

    async def __call__(self, name: str, info: Mapping[str, Any]) -> None:
        if name.endswith(_CLAIM_EVENTS):
            if self.extensions.get("trace") is self:  # a transport may have chained its own trace: keep that
                del self.extensions["trace"]  # nothing more to learn from this request
            self.client._claims_traced = True
            self.open()

    def open(self) -> None:
        gate = self.gate
        if gate is not None:
            self.gate = None
            gate.release()


class GamebaseClient:
    """Typed client of the Gamebase server API.

    Every method takes an optional ``transaction_id`` (one is generated when omitted); the result's
    ``transaction_id`` and every raised :class:`~gs_hooks.PlatformError`'s ``transaction_id`` carry it.

    Args:
        http: the shared ``httpx.AsyncClient``.
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

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        app_id: str,
        secret_key: Secret | str,
        api_version: str = "v1.0",
        timeout_s: float = 5.0,
        retries: int = 2,
        clock: Clock | None = None,
        backoff_base_s: float = 0.1,
        backoff_max_s: float = 2.0,
    ) -> None:
        if retries < 0:
            raise ValueError("retries must be >= 0")
        self._http = http
        self.base_url = base_url.rstrip("/")
        self.app_id = app_id
        self._secret = secret_key if isinstance(secret_key, Secret) else Secret(secret_key)
        self.api_version = api_version
        self.timeout_s = timeout_s
        self.retries = retries
        self.clock: Clock = clock or SystemClock()
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self._random = random.Random()
        self._timeout = httpx.Timeout(timeout_s)
        self._app = _seg(app_id, "app id")
        self._version = _seg(api_version, "API version")
        self.requests_sent = 0
        self.answered = 0
        self._pool_gate = Slots(1)
        self._claims_traced = False  # whether the transport reports when a request holds a connection
        _install_log_filter(self.base_url)

    def __repr__(self) -> str:
        return (
            f"GamebaseClient(base_url={self.base_url!r}, app_id={self.app_id!r}, "
            f"api_version={self.api_version!r}, secret_key={self._secret!r})"
        )

    def _path(self, service: str, rest: str) -> str:
        return f"{self.base_url}/{service}/{self._version}/apps/{self._app}/{rest}"

    # -- the request core ---------------------------------------------------------------------------------------

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry ``attempt`` (0-based), jittered."""
        return backoff_delay(attempt, self.backoff_base_s, self.backoff_max_s, self._random)

    async def _send(self, http: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
        """Send through the pool gate (see :class:`_Claim`); without claim traces from the transport, no gate."""
        extensions = request.extensions
        if "trace" in extensions:  # someone else traces this request: stay out of the way
            return await http.send(request)
        gate = None
        if self._claims_traced:
            gate = self._pool_gate
            if not gate.acquire_nowait():
                # the request ahead may be queued in a full pool: wait for it at most one timeout, then go in too
                with anyio.move_on_after(self.timeout_s) as waited:
                    await gate.acquire()
                if waited.cancelled_caught:
                    gate = None
        claim = _Claim(self, extensions, gate)
        extensions["trace"] = claim
        try:
            return await http.send(request)
        finally:
            claim.open()

    async def _request(
        self,
        route: str,
        method: str,
        url: str,
        decode: Callable[[bytes, str, Sequence[str]], T],
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        transaction_id: str | None,
        secrets: Sequence[str] = (),
        retries: int | None = None,
        hidden: tuple[str, ...] | None = None,
    ) -> T:
        tx = transaction_id or _new_transaction_id()
        content = _json_encoder.encode(body) if body is not None else None
        key = self._secret.get_secret_value()
        if hidden is None:
            hidden = (*secrets, *(quote(s, safe="") for s in secrets if s), key)
        http = self._http
        attempts = 1 + (self.retries if retries is None else retries)
        last: PlatformError | None = None
        cause: BaseException | None = None
        retry_after: float | None = None
        for attempt in range(attempts):
            if attempt:
                delay = self.backoff(attempt - 1)
                log.warning(
                    "gamebase %s: %s; retry %d/%d in %.2fs (transaction %s)",
                    route,
                    last.message if last is not None else "failed",
                    attempt,
                    attempts - 1,
                    delay,
                    tx,
                )
                await self.clock.sleep(delay)
            self.requests_sent += 1
            try:
                # our headers set on the built request: cheaper than httpx merging a per-request dict into the
                # client's headers (same result: ours replace any of the same name)
                request = http.build_request(method, url, params=params, content=content, timeout=self._timeout)
                headers = request.headers
                headers["Content-Type"] = _CONTENT_TYPE
                headers["X-Secret-Key"] = key
                headers["X-TCGB-Transaction-Id"] = tx
                response = await self._send(http, request)
            except httpx.HTTPError as exc:
                what = redact(str(exc), hidden)
                detail = f"{type(exc).__name__}: {what}" if what else type(exc).__name__
                last = PlatformUnavailableError(PLATFORM, None, f"{route}: {detail}", transaction_id=tx)
                cause = exc
                continue
            status = response.status_code
            echoed = response.headers.get("x-tcgb-transaction-id") or tx
            if status >= 500:
                last = PlatformUnavailableError(PLATFORM, None, f"{route}: HTTP {status}", transaction_id=echoed)
                cause = None
                retry_after = _retry_after(response.headers.get("retry-after"))
                continue
            try:
                result = decode(response.content, echoed, hidden)
            except PlatformError as err:
                if not is_transient(err.code):
                    log.info("gamebase %s failed: %s", route, err)
                    if err.setting is None and err.code is not None:  # Gamebase's answer about the request itself
                        self.answered += 1
                    raise
                last, cause = err, None
                continue
            except ProtocolError:
                if status != 200:
                    raise PlatformError(
                        PLATFORM, None, f"{route}: HTTP {status} with a body that is not a Gamebase answer"
                    ) from None
                raise
            log.debug("gamebase %s ok (transaction %s)", route, echoed)
            self.answered += 1
            return result
        assert last is not None
        raise PlatformUnavailableError(
            PLATFORM,
            last.code,
            f"{last.message} (gave up after {attempts} attempt{'s' if attempts > 1 else ''})",
            transaction_id=last.transaction_id or tx,
            retry_after_s=RETRY_AFTER_S if retry_after is None else retry_after,
        ) from cause

    async def _typed(
        self,
        route: str,
        method: str,
        url: str,
        type_: type[R],
        *,
        transaction_id: str | None,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        secrets: Sequence[str] = (),
        retries: int | None = None,
    ) -> R:
        def decode(raw: bytes, tx: str, hidden: Sequence[str]) -> R:
            return decode_result(raw, type_, route=route, transaction_id=tx, secrets=hidden)

        return await self._request(
            route,
            method,
            url,
            decode,
            params=params,
            body=body,
            transaction_id=transaction_id,
            secrets=secrets,
            retries=retries,
        )

    async def _wrapped(
        self,
        route: str,
        method: str,
        url: str,
        *,
        transaction_id: str | None,
        params: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> GamebaseResult:
        def decode(raw: bytes, tx: str, hidden: Sequence[str]) -> GamebaseResult:
            return decode_wrapped(raw, route=route, transaction_id=tx)

        return await self._request(route, method, url, decode, params=params, body=body, transaction_id=transaction_id)

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
        url = self._path("tcgb-gateway", f"members/{_seg(user, 'user id')}/tokens/{seg}{query}")
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
            "GET",
            self._path("tcgb-launching", "launching/simple"),
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
            "GET",
            self._path("tcgb-member", f"members/{_seg(user_id, 'user id')}"),
            MemberDetail,
            params={"includeMemberInfo": "true" if include_member_info else "false"},
            transaction_id=transaction_id,
        )

    async def members(self, user_ids: Sequence[str], *, transaction_id: str | None = None) -> MemberList:
        """Get Members: brief information of several members."""
        return await self._typed(
            "members",
            "POST",
            self._path("tcgb-member", "members"),
            MemberList,
            body={"userIdList": list(user_ids)},
            transaction_id=transaction_id,
        )

    async def idp_info(self, user_ids: Sequence[str], *, transaction_id: str | None = None) -> IdpInfo:
        """Get IdP Information: user id → IdP mappings."""
        return await self._typed(
            "idp_info",
            "POST",
            self._path("tcgb-member", "auth/authKeys"),
            IdpInfo,
            body={"userIdList": list(user_ids)},
            transaction_id=transaction_id,
        )

    async def user_ids_by_auth_key(
        self, auth_keys: Sequence[str], *, auth_system: str = "gbid", transaction_id: str | None = None
    ) -> UserIds:
        """Get UserId Information with Auth key: auth key → user id."""
        return await self._typed(
            "user_ids_by_auth_key",
            "POST",
            self._path("tcgb-member", "members/userIds/authKeys"),
            UserIds,
            params={"authSystem": auth_system},
            body={"authKeyList": list(auth_keys)},
            transaction_id=transaction_id,
        )

    # -- ban histories --------------------------------------------------------------------------------------------

    async def _ban_page(
        self,
        route: str,
        rest: str,
        begin: datetime,
        end: datetime,
        page: int,
        size: int,
        transaction_id: str | None,
    ) -> BanPage:
        def decode(raw: bytes, tx: str, hidden: Sequence[str]) -> BanPage:
            return decode_ban_page(raw, route=route, transaction_id=tx)

        params = {"begin": format_date(begin), "end": format_date(end), "page": str(page), "size": str(size)}
        return await self._request(
            route, "GET", self._path("tcgb-member", rest), decode, params=params, transaction_id=transaction_id
        )

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
        return await self._ban_page("ban_histories", "members/bans", begin, end, page, size, transaction_id)

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
        return await self._ban_page(
            "ban_release_histories", "members/bans/release", begin, end, page, size, transaction_id
        )

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
            "under_maintenance",
            "GET",
            self._path("tcgb-launching", "maintenances/under-maintenance"),
            UnderMaintenance,
            transaction_id=transaction_id,
            retries=retries,
        )

    # -- IAP wrapper ----------------------------------------------------------------------------------------------

    async def iap_consume(
        self,
        payment_seq: str,
        item_seq: str | int,
        body: Mapping[str, Any] | None = None,
        *,
        transaction_id: str | None = None,
    ) -> GamebaseResult:
        """IAP Consume Items (``/inapp/v3/consume/{paymentSeq}/items/{itemSeq}``)."""
        return await self._wrapped(
            "iap_consume",
            "POST",
            self._path("tcgb-inapp", f"consume/{_seg(payment_seq, 'payment seq')}/items/{_seg(item_seq, 'item seq')}"),
            body=dict(body or {}),
            transaction_id=transaction_id,
        )

    async def iap_items(self, app_seq: str | int, *, transaction_id: str | None = None) -> GamebaseResult:
        """IAP Retrieve Items of an app (``/standard/item/list/{appSeq}``)."""
        return await self._wrapped(
            "iap_items",
            "GET",
            self._path("tcgb-inapp", f"item/list/{_seg(app_seq, 'app seq')}"),
            transaction_id=transaction_id,
        )

    async def iap_consumables(self, body: Mapping[str, Any], *, transaction_id: str | None = None) -> GamebaseResult:
        """IAP Retrieve List of Non-consumed Purchases (``/standard/inapp/v1/consumable/list``)."""
        return await self._wrapped(
            "iap_consumables",
            "POST",
            self._path("tcgb-inapp", "consumable/list"),
            body=dict(body),
            transaction_id=transaction_id,
        )

    # -- Leaderboard wrapper ------------------------------------------------------------------------------------------

    async def leaderboard_user_count(self, factor: str | int, *, transaction_id: str | None = None) -> GamebaseResult:
        """Leaderboard: number of users registered at a factor."""
        return await self._wrapped(
            "leaderboard_user_count",
            "GET",
            self._path("tcgb-leaderboard", f"factors/{_seg(factor, 'factor')}/user-count"),
            transaction_id=transaction_id,
        )

    async def leaderboard_user(
        self, factor: str | int, user_id: str, *, transaction_id: str | None = None
    ) -> GamebaseResult:
        """Leaderboard: score and rank of one user."""
        return await self._wrapped(
            "leaderboard_user",
            "GET",
            self._path("tcgb-leaderboard", f"factors/{_seg(factor, 'factor')}/users"),
            params={"userId": user_id},
            transaction_id=transaction_id,
        )

    async def leaderboard_users(self, body: Mapping[str, Any], *, transaction_id: str | None = None) -> GamebaseResult:
        """Leaderboard: scores and ranks of several users (``get-users``)."""
        return await self._wrapped(
            "leaderboard_users",
            "POST",
            self._path("tcgb-leaderboard", "get-users"),
            body=dict(body),
            transaction_id=transaction_id,
        )

    async def leaderboard_range(
        self, factor: str | int, start: int, size: int, *, transaction_id: str | None = None
    ) -> GamebaseResult:
        """Leaderboard: the scores and ranks of a range (``start`` is 1-based)."""
        return await self._wrapped(
            "leaderboard_range",
            "GET",
            self._path("tcgb-leaderboard", f"factors/{_seg(factor, 'factor')}/users"),
            params={"start": str(start), "size": str(size)},
            transaction_id=transaction_id,
        )

    async def leaderboard_set_score(
        self, factor: str | int, user_id: str, body: Mapping[str, Any], *, transaction_id: str | None = None
    ) -> GamebaseResult:
        """Leaderboard: register the score of one user."""
        return await self._wrapped(
            "leaderboard_set_score",
            "POST",
            self._path("tcgb-leaderboard", f"factors/{_seg(factor, 'factor')}/users/{_seg(user_id, 'user id')}/score"),
            body=dict(body),
            transaction_id=transaction_id,
        )

    async def leaderboard_set_score_with_extra(
        self, factor: str | int, user_id: str, body: Mapping[str, Any], *, transaction_id: str | None = None
    ) -> GamebaseResult:
        """Leaderboard: register the score and extra data of one user."""
        return await self._wrapped(
            "leaderboard_set_score_with_extra",
            "POST",
            self._path(
                "tcgb-leaderboard",
                f"factors/{_seg(factor, 'factor')}/users/{_seg(user_id, 'user id')}/score-with-extra",
            ),
            body=dict(body),
            transaction_id=transaction_id,
        )

    async def leaderboard_set_scores(
        self, body: Mapping[str, Any], *, transaction_id: str | None = None
    ) -> GamebaseResult:
        """Leaderboard: register the scores of several users."""
        return await self._wrapped(
            "leaderboard_set_scores",
            "POST",
            self._path("tcgb-leaderboard", "scores"),
            body=dict(body),
            transaction_id=transaction_id,
        )

    async def leaderboard_set_scores_with_extra(
        self, body: Mapping[str, Any], *, transaction_id: str | None = None
    ) -> GamebaseResult:
        """Leaderboard: register the scores and extra data of several users."""
        return await self._wrapped(
            "leaderboard_set_scores_with_extra",
            "POST",
            self._path("tcgb-leaderboard", "scores-with-extra"),
            body=dict(body),
            transaction_id=transaction_id,
        )

    async def leaderboard_delete_user(
        self, factor: str | int, user_id: str, *, transaction_id: str | None = None
    ) -> GamebaseResult:
        """Leaderboard: delete the leaderboard information of one user at a factor."""
        return await self._wrapped(
            "leaderboard_delete_user",
            "DELETE",
            self._path("tcgb-leaderboard", f"factors/{_seg(factor, 'factor')}/users"),
            params={"userId": user_id},
            transaction_id=transaction_id,
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
