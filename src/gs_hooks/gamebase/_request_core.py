"""The Gamebase client's request core: one call, its retries, and what its answer means.

A call is sent with the secret key and a transaction id in its headers; transport errors, HTTP 5xx and the
transient result codes (-5000001..-5000015, -5000201..-5000208) are retried ``retries`` times with jittered
exponential backoff on the injected clock, always with the same transaction id; when they run out the call raises
:class:`~gs_hooks.PlatformUnavailableError`. Any other error code raises :class:`~gs_hooks.PlatformError` at once.
No URL is ever put in a message (the access token is a path segment): transport errors are told by the route name.

The bytes move through the library's one HTTP client interface (:class:`~gs_hooks._http_client.HttpClient`:
aiohttp on asyncio, httpx on trio or when the game gives its own ``httpx.AsyncClient``).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar
from urllib.parse import quote, urlencode

import httpx
import msgspec

from .._backoff import backoff_delay
from .._clock import Clock, SystemClock
from .._config import Secret
from .._exceptions import HttpTransportError, PlatformError, PlatformUnavailableError, ProtocolError
from .._http_client import HttpClient, as_http_client
from ._endpoints import VERSIONS, Endpoint
from ._models import GamebaseResult, _Result
from ._observe import Retry, attempt_ended, attempt_raised, attempt_started
from ._protocol import PLATFORM, decode_result, decode_wrapped, is_transient, path_segment, redact
from ._transport import RETRY_AFTER_S, install_log_filter, new_transaction_id, retry_after

__all__ = ["RequestCore"]

log = logging.getLogger("gs_hooks.gamebase")

T = TypeVar("T")
R = TypeVar("R", bound=_Result)
Decode = Callable[[bytes, str, Sequence[str]], T]

_CONTENT_TYPE: Final = "application/json; charset=UTF-8"
_json_encoder = msgspec.json.Encoder()


@dataclass(slots=True)
class _Call:
    """What stays the same over the attempts of one call."""

    route: str
    method: str
    url: str  # the query included
    headers: dict[str, str]
    content: bytes | None
    tx: str
    hidden: Sequence[str]


class RequestCore:
    """The part of :class:`~gs_hooks.gamebase.GamebaseClient` every call goes through (arguments: see there)."""

    def __init__(
        self,
        http: HttpClient | httpx.AsyncClient,
        *,
        base_url: str,
        app_id: str,
        secret_key: Secret | str,
        api_version: str = VERSIONS[0],
        timeout_s: float = 5.0,
        retries: int = 2,
        clock: Clock | None = None,
        backoff_base_s: float = 0.1,
        backoff_max_s: float = 2.0,
    ) -> None:
        if retries < 0:
            raise ValueError("retries must be >= 0")
        self._http = as_http_client(http)
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
        self._app = path_segment(app_id, "app id")
        self._version = path_segment(api_version, "API version")
        self.requests_sent = 0
        # calls that got a proper answer (a success, or a refusal about the request such as an invalid token): each
        # proves Gamebase reachable and our app id, key and version accepted (readiness uses it)
        self.answered = 0
        install_log_filter(self.base_url)  # for requests through httpx

    def _url(self, endpoint: Endpoint, **segments: str) -> str:
        """The URL of ``endpoint`` for this client; ``segments`` already encoded by :func:`path_segment`."""
        return endpoint.url(self.base_url, self._version, self._app, **segments)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry ``attempt`` (0-based), jittered."""
        return backoff_delay(attempt, self.backoff_base_s, self.backoff_max_s, self._random)

    async def _request(
        self,
        route: str,
        method: str,
        url: str,
        decode: Decode[T],
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        transaction_id: str | None,
        secrets: Sequence[str] = (),
        retries: int | None = None,
        hidden: tuple[str, ...] | None = None,
    ) -> T:
        """One call: attempts until an answer, a final error, or the retries run out."""
        key = self._secret.get_secret_value()
        if hidden is None:
            hidden = (*secrets, *(quote(s, safe="") for s in secrets if s), key)
        content = _json_encoder.encode(body) if body is not None else None
        if params:
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(params, quote_via=quote)}"
        tx = transaction_id or new_transaction_id()
        headers = {"Content-Type": _CONTENT_TYPE, "X-Secret-Key": key, "X-TCGB-Transaction-Id": tx}
        call = _Call(route, method, url, headers, content, tx, hidden)
        attempts = 1 + (self.retries if retries is None else retries)
        last: Retry | None = None
        retry_after_s: float | None = None
        for attempt in range(attempts):
            if last is not None:
                delay = self.backoff(attempt - 1)
                log.warning(
                    "gamebase %s: %s; retry %d/%d in %.2fs (transaction %s)",
                    *(route, last.error.message, attempt, attempts - 1, delay, call.tx),
                    extra={"api": route, "result_code": last.error.code},
                )
                await self.clock.sleep(delay)
            started = attempt_started(route, call.tx)
            try:  # observed here, not by a decorating coroutine: one frame less per attempt (see ._observe)
                outcome = await self._attempt(call, decode)
            except (PlatformError, ProtocolError) as exc:
                attempt_raised(route, started, exc)
                raise
            attempt_ended(route, call.tx, started, outcome)
            if not isinstance(outcome, Retry):
                return outcome
            last = outcome
            if outcome.server_error:
                retry_after_s = outcome.retry_after
        assert last is not None
        raise PlatformUnavailableError(
            PLATFORM,
            last.error.code,
            f"{last.error.message} (gave up after {attempts} attempt{'s' if attempts > 1 else ''})",
            transaction_id=last.error.transaction_id or call.tx,
            retry_after_s=RETRY_AFTER_S if retry_after_s is None else retry_after_s,
        ) from last.cause

    async def _attempt(self, call: _Call, decode: Decode[T]) -> T | Retry:
        """One attempt: the decoded answer, a failure worth retrying, or a final error raised (the caller tells
        :mod:`._observe`)."""
        self.requests_sent += 1
        try:
            response = await self._http.request(
                call.method, call.url, headers=call.headers, content=call.content, timeout_s=self.timeout_s
            )
        except HttpTransportError as exc:
            detail = redact(str(exc), call.hidden)
            return Retry(
                PlatformUnavailableError(PLATFORM, None, f"{call.route}: {detail}", transaction_id=call.tx), exc
            )
        status = response.status
        echoed = response.headers.get("x-tcgb-transaction-id") or call.tx
        if status >= 500:
            error = PlatformUnavailableError(PLATFORM, None, f"{call.route}: HTTP {status}", transaction_id=echoed)
            return Retry(error, None, True, retry_after(response.headers.get("retry-after")))
        try:
            result = decode(response.content, echoed, call.hidden)
        except PlatformError as err:
            if not is_transient(err.code):
                log.info("gamebase %s failed: %s", call.route, err, extra={"api": call.route, "result_code": err.code})
                if err.setting is None and err.code is not None:  # Gamebase's answer about the request itself
                    self.answered += 1
                raise
            return Retry(err)
        except ProtocolError:
            if status != 200:
                raise PlatformError(
                    PLATFORM, None, f"{call.route}: HTTP {status} with a body that is not a Gamebase answer"
                ) from None
            raise
        log.debug("gamebase %s ok (transaction %s)", call.route, echoed)
        self.answered += 1
        return result

    async def _typed(
        self,
        route: str,
        endpoint: Endpoint,
        type_: type[R],
        *,
        transaction_id: str | None,
        segments: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        retries: int | None = None,
    ) -> R:
        """A call whose answer decodes into ``type_``."""

        def decode(raw: bytes, tx: str, hidden: Sequence[str]) -> R:
            return decode_result(raw, type_, route=route, transaction_id=tx, secrets=hidden)

        url = self._url(endpoint, **(segments or {}))
        return await self._request(
            route,
            endpoint.method,
            url,
            decode,
            params=params,
            body=body,
            transaction_id=transaction_id,
            retries=retries,
        )

    async def _wrapped(
        self,
        route: str,
        endpoint: Endpoint,
        *,
        transaction_id: str | None,
        segments: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> GamebaseResult:
        """A call of the IAP or Leaderboard wrappers (header checked, the rest of the answer kept as a mapping)."""

        def decode(raw: bytes, tx: str, hidden: Sequence[str]) -> GamebaseResult:
            return decode_wrapped(raw, route=route, transaction_id=tx)

        url = self._url(endpoint, **(segments or {}))
        return await self._request(
            route, endpoint.method, url, decode, params=params, body=body, transaction_id=transaction_id
        )
