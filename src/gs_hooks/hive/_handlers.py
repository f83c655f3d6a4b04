"""Listener handlers for Hive: the suspended-user webhook and the web-store profile API.

The webhook's Bearer check is a route *guard*: it runs on the request head, before any body byte is read, so a
sender without the key cannot make us read (or buffer) a body. The key comparison is constant-time over SHA-256
digests (no early exit on the first differing byte, no length leak). A good batch is answered
``{"result_code": 0}`` only after :meth:`BanBook.apply` has recorded it in sqlite (and kicked the players'
live sessions).
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import logging
from collections.abc import Awaitable
from typing import Any, Protocol

import anyio

from .._clock import Clock
from .._config import Config, Secret
from .._exceptions import ProtocolError
from .._ids import lookup_key
from .._ids import player_id as _player_id
from .._ratelog import RateLimitedLog
from .._time import KST
from ..bans._book import BanBook
from ..bans._model import Ban
from ..http._app import Request, Response, Router
from ._protocol import (
    RESULT_BAD_VALUE,
    RESULT_OK,
    RESULT_STORE_FAILED,
    RESULT_UNAUTHORIZED,
    WEBSTORE_SERVER_ERROR,
    WEBSTORE_UNAUTHORIZED,
    HiveRequestError,
    SuspendedPlayer,
    WebstoreProfile,
    decode_suspension_batch,
    decode_webstore_request,
    encode_webstore_response,
    webstore_error,
)

__all__ = [
    "SuspensionWebhook",
    "WebstoreEndpoint",
    "WebstoreProfileCallback",
    "hive_player_key",
    "register_hive_routes",
]

log = logging.getLogger("gs_hooks.hive")

WEBSTORE_PATH = "/webstore-profile"
_JSON = ("content-type", "application/json; charset=utf-8")


def hive_player_key(player_key_format: str, player_id: int | str) -> str:
    """The session registry's player key for a platform id (``{id}`` in the format is replaced).

    Raises:
        TypeError / ValueError: the result cannot be a player id (see ``gs_hooks._ids``).
    """
    return _player_id(player_key_format.replace("{id}", lookup_key(player_id)), what="player key")


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


def _key_matches(given: str, expected: Secret) -> bool:
    return hmac.compare_digest(_digest(given.encode("latin-1")), _digest(expected.get_secret_value().encode()))


def _headers_named(request: Request, name: bytes) -> list[bytes]:
    return [v for k, v in request.headers if k == name]


class SuspensionWebhook:
    """The Hive suspended-user webhook.

    Args:
        book: where bans are recorded.
        auth_key: the Bearer key Hive sends.
        game_index: the game index requests must carry.
        utc_offset_h: zone of the zone-less dates (9 = KST).
        player_key_format: maps a Hive ``player_id`` to the player key (``{id}``).
    """

    def __init__(
        self,
        book: BanBook,
        *,
        auth_key: Secret,
        game_index: int,
        utc_offset_h: float = 9.0,
        player_key_format: str = "{id}",
    ) -> None:
        self.book = book
        self._auth_key = auth_key
        self.game_index = game_index
        self.utc_offset_h = utc_offset_h
        self.player_key_format = player_key_format
        self.batches_accepted = 0
        self.batches_rejected = 0
        self._refusals = RateLimitedLog(log)  # a sender without the key must not flood the log

    @staticmethod
    def answer(result_code: int, message: str | None = None, *, status: int = 200) -> Response:
        """The webhook's answer shape: ``{"result_code": N}`` plus ``result_message`` on errors."""
        body: dict[str, Any] = {"result_code": result_code}
        if message is not None:
            body["result_message"] = message
        return Response.json(body, status)

    def guard(self, request: Request) -> Response | None:
        """Check ``Authorization: Bearer <key>`` on the head; a 401 answer when it is missing or wrong."""
        values = _headers_named(request, b"authorization")
        problem = None
        if not values:
            problem = "Authorization header missing: send 'Authorization: Bearer <game server key>'"
        elif len(values) > 1:
            problem = "more than one Authorization header"
        else:
            scheme, _, token = values[0].decode("latin-1").strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                problem = "Authorization is not 'Bearer <game server key>'"
            elif not _key_matches(token.strip(), self._auth_key):
                problem = "the game server authentication key is not the one configured"
        if problem is None:
            return None
        self.batches_rejected += 1
        self._refusals.log(
            logging.WARNING, problem, "hive suspension webhook: refused (401) from %s: %s", _peer(request), problem
        )
        response = self.answer(RESULT_UNAUTHORIZED, problem, status=401)
        response.headers.append(("www-authenticate", 'Bearer realm="gs_hooks"'))
        return response

    def to_bans(self, players: list[SuspendedPlayer]) -> list[Ban]:
        """Ban book entries for validated suspensions."""
        return [
            Ban(
                player_key=hive_player_key(self.player_key_format, p.player_id),
                source="hive",
                status="permanent" if p.permanent else "temporary",
                starts_at=p.starts_at.astimezone(KST),
                ends_at=None if p.ends_at is None else p.ends_at.astimezone(KST),
            )
            for p in players
        ]

    async def handle(self, request: Request) -> Response:
        """Validate the batch, record it durably, then answer ``{"result_code": 0}``."""
        try:
            players = decode_suspension_batch(request.body, game_index=self.game_index, utc_offset_h=self.utc_offset_h)
        except HiveRequestError as exc:
            self.batches_rejected += 1
            log.warning("hive suspension webhook: refused (%d) from %s: %s", exc.result_code, _peer(request), exc)
            return self.answer(exc.result_code, exc.message, status=400)
        try:
            bans = self.to_bans(players)
        except ValueError as exc:  # the mapped key cannot be a player id (e.g. too long for the format)
            self.batches_rejected += 1
            log.warning("hive suspension webhook: refused (%d) from %s: %s", RESULT_BAD_VALUE, _peer(request), exc)
            return self.answer(RESULT_BAD_VALUE, str(exc), status=400)
        try:
            changed = await self.book.apply(bans)
        except Exception:
            log.exception("hive suspension webhook: recording %d suspensions failed", len(players))
            return self.answer(RESULT_STORE_FAILED, "suspensions could not be recorded; send again", status=503)
        self.batches_accepted += 1
        log.info("hive suspension webhook: %d suspensions, %d new or changed", len(players), len(changed))
        return self.answer(RESULT_OK)


class WebstoreProfileCallback(Protocol):
    """The game's ``webstore_profile`` callback: ``async (cs_code) -> WebstoreProfile | None`` (a sync function
    works too, but its deadline cannot cut it)."""

    def __call__(self, cs_code: str, /) -> Awaitable[WebstoreProfile | None] | WebstoreProfile | None: ...


class WebstoreEndpoint:
    """Hive's ``POST /webstore-profile``: ``cs_code`` → the game's servers, channels and characters.

    Args:
        callback: ``async (cs_code) -> WebstoreProfile | None`` (a sync function works too but cannot be cut).
        clock: the injected clock (the callback's deadline runs on it).
        timeout_s: the callback's deadline; past it the answer is 500.
        key: optional shared key required in ``key_header``.
        key_header: the header carrying ``key``.
    """

    def __init__(
        self,
        callback: WebstoreProfileCallback,
        *,
        clock: Clock,
        timeout_s: float = 3.0,
        key: Secret | None = None,
        key_header: str = "x-gs-hooks-key",
    ) -> None:
        self.callback = callback
        self.clock = clock
        self.timeout_s = timeout_s
        self._key = key
        self.key_header = key_header.lower().encode("latin-1")
        self._refusals = RateLimitedLog(log)

    def guard(self, request: Request) -> Response | None:
        """Check the optional shared key on the head."""
        if self._key is None:
            return None
        values = _headers_named(request, self.key_header)
        if len(values) == 1 and _key_matches(values[0].decode("latin-1").strip(), self._key):
            return None
        self._refusals.log(
            logging.WARNING, 401, "webstore profile: refused (401) from %s: shared key missing or wrong", _peer(request)
        )
        return Response(401, webstore_error(WEBSTORE_UNAUTHORIZED, "shared key missing or wrong"), [_JSON], close=True)

    async def _profile(self, cs_code: str) -> tuple[bool, Any]:
        """(done, result) — done is False when the deadline passed first. The callback's exception propagates."""
        outcome: list[Any] = []
        failure: list[BaseException] = []

        async def call() -> None:
            try:
                result = self.callback(cs_code)
                if inspect.isawaitable(result):
                    result = await result
                outcome.append(result)
            except Exception as exc:
                failure.append(exc)
            tg.cancel_scope.cancel()

        async def deadline() -> None:
            await self.clock.sleep(self.timeout_s)
            tg.cancel_scope.cancel()

        async with anyio.create_task_group() as tg:
            tg.start_soon(call)
            tg.start_soon(deadline)
        if failure:
            raise failure[0]
        return (True, outcome[0]) if outcome else (False, None)

    async def handle(self, request: Request) -> Response:
        """Answer per the document (HTTP 200, outcome in ``result_code``): 200 with data, 204 with ``data: []``,
        500 when the game's callback fails, is late or returns a malformed profile. A request without a
        ``cs_code`` gets HTTP 400 with result_code 400 (Hive never sends one)."""
        try:
            cs_code = decode_webstore_request(request.body)
        except HiveRequestError as exc:
            log.info("webstore profile: bad request from %s: %s", _peer(request), exc.message)
            return Response(400, webstore_error(exc.result_code, exc.message), [_JSON])
        try:
            done, profile = await self._profile(cs_code)
        except Exception:
            log.exception("webstore profile: the webstore_profile callback raised")
            return self._server_error(cs_code, "server error")
        if not done:
            log.error("webstore profile: the webstore_profile callback took longer than %.1fs", self.timeout_s)
            return self._server_error(cs_code, "server error (timeout)")
        try:
            _, body = encode_webstore_response(cs_code, profile)
        except ProtocolError as exc:
            log.error("%s", exc)
            return self._server_error(cs_code, "server error")
        return Response(200, body, [_JSON])

    @staticmethod
    def _server_error(cs_code: str, message: str) -> Response:
        # The document carries the outcome in result_code; the HTTP status stays 200 (as Hive reads it).
        return Response(200, webstore_error(WEBSTORE_SERVER_ERROR, message, cs_code), [_JSON])


def _peer(request: Request) -> str:
    return f"{request.client[0]}:{request.client[1]}" if request.client else "?"


def register_hive_routes(
    router: Router,
    config: Config,
    *,
    book: BanBook,
    clock: Clock,
    webstore_profile: WebstoreProfileCallback | None,
) -> tuple[SuspensionWebhook | None, WebstoreEndpoint | None]:
    """Add the configured Hive routes: the suspension webhook (when ``hive.auth_key`` is set) and the web-store
    profile (when ``hive.webstore_enabled`` and a ``webstore_profile`` callback is given)."""
    hive = config.hive
    webhook = None
    if hive.auth_key is not None and hive.game_index is not None:
        webhook = SuspensionWebhook(
            book,
            auth_key=hive.auth_key,
            game_index=hive.game_index,
            utc_offset_h=hive.date_utc_offset_h,
            player_key_format=hive.player_key_format,
        )
        router.add(
            "POST",
            hive.suspension_path,
            webhook.handle,
            guard=webhook.guard,
            allow=config.listener.suspension_allow,
        )
    webstore = None
    if hive.webstore_enabled and webstore_profile is not None:
        webstore = WebstoreEndpoint(
            webstore_profile,
            clock=clock,
            timeout_s=hive.webstore_timeout_s,
            key=hive.webstore_key,
            key_header=hive.webstore_key_header,
        )
        router.add(
            "POST",
            WEBSTORE_PATH,
            webstore.handle,
            guard=webstore.guard,
            allow=config.listener.webstore_allow,
            max_body=4096,
        )
    return webhook, webstore
