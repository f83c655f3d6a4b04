"""The Gamebase server API emulator (every endpoint of gamebase-server-api.txt) for the sandbox.

Strategy: :class:`GamebaseSim` is the scriptable state (:class:`GamebaseState`, sync) plus one async handler per
endpoint. Every handler runs the same pipeline: count the request under its route name, take or make the
transaction id, check the API version, the app id, the Gamebase product, the secret key, apply an injected failure,
then run the endpoint. Results always go out as HTTP 200 with the common ``header``; failures add ``traceError``
like the document's example. ``X-TCGB-Transaction-Id`` is echoed (or generated) in the response header and body.
``counts`` tallies requests per route name; :meth:`GamebaseSim.error_response` gives a fault layer in front of a
route the same failure shape.

Checks and codes, in order:

======================================  ==========  =================================================
unsupported version in the path         -4000007    (-4060003 on the ``tcgb-launching`` service)
app id in the path is not ours          -4010001
Gamebase product disabled (scripted)    -4010002    ``sim.product_enabled = False``
``X-Secret-Key`` missing                -4010003
``X-Secret-Key`` wrong                  -4010004
injected (``fail_next``)                any         e.g. -5000001..-5000015, -5000201..-5000208
bad/missing parameter or body           -4000001    (vendor's 400 family; not in our document)
token: unknown, revoked, other user     -4010203
token: expired                          -4010208
token: member missing or valid != Y     -4010204
member: no such member                  -4040401
IAP/leaderboard: no such purchase/user  -4040002    (sandbox's choice; the wrappers' codes are not documented)
IAP: purchase already consumed          -4090001    (sandbox's choice)
======================================  ==========  =================================================

Decisions where the document is open:

* Versions ``v1.0`` (our document) and ``v1.3`` (the vendor's current guide) are served alike.
* ``under-maintenance``: ``underMaintenance`` is true only while the clock is inside a window ``[begin, end)``;
  ``maintenances`` lists every window that is set and not over, including announced ones that begin later (that
  is how a watcher sees an announcement). Simple launching answers status 303 with a ``maintenance`` block while a
  window is in effect, else the scripted status (200/201/300/302).
* Ban history ``beginDate``/``endDate``/``releaseDate``: epoch milliseconds by default (the sample's numbers);
  ``ban_date_format="iso"`` emits ``yyyy-MM-dd'T'HH:mm:ss.SSSXXX`` strings in KST (what the table says), so
  clients can be tested against both. Absent dates (no end, not released) are ``null``.
* Ban and release history select rows whose ``beginDate`` (release history: ``releaseDate``) lies in
  ``[begin, end]`` (both ends inclusive, so back-to-back polling windows lose nothing). ``begin``/``end`` must
  carry a UTC offset and arrive URL-encoded (a raw ``+`` decodes to a space and is refused with a hint).
  Paging follows Spring: ``page`` from 0, ``size`` default 20 and capped at 2000, ``numberOfElements`` is the
  count on this page. Rows are ordered by ``seq`` (release history: by release order).
* Success messages are ``"SUCCESS"``. Every body header carries ``transactionId`` (the launching samples omit it;
  the common section says every response carries it).
* The access token never appears in a result message; ``traceError.uri`` shows it as ``****``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from .._clock import Clock
from .._config import Secret
from ..gamebase import _endpoints as gb
from ..http._app import Request, Response
from ._gamebase_admin import GamebaseAdmin
from ._gamebase_endpoints import BanDateFormat
from ._gamebase_wire import (
    INVALID_APP_ID,
    INVALID_APPKEY,
    INVALID_SECRET_KEY,
    UNAUTHENTICATED,
    UNSUPPORTED_VERSION,
    UNSUPPORTED_VERSION_LAUNCHING,
    ApiError,
    Handler,
    RouteSpec,
    default_message,
    ms,
    transaction_id,
)

__all__ = ["SUPPORTED_VERSIONS", "GamebaseSim", "Handler", "RouteSpec", "transaction_id"]

SUPPORTED_VERSIONS = gb.VERSIONS
_Endpoint = Callable[[Request], dict[str, Any]]


class GamebaseSim(GamebaseAdmin):
    """A faithful local Gamebase server API (v1.0 and v1.3 paths), scriptable from Python and over HTTP.

    Serve :meth:`routes` and :meth:`admin_routes` on a :class:`gs_hooks.http.Router`, in the order given (more
    specific paths come first). Script state with the :class:`GamebaseState` methods (``add_member``,
    ``issue_token``, ``add_ban``, ``set_maintenance``...) or the ``/_sandbox/gamebase/...`` admin endpoints.

    Args:
        app_id: the app id requests must name.
        secret_key: the ``X-Secret-Key`` requests must carry (a str or a :class:`gs_hooks.Secret`).
        clock: time source (a :class:`gs_hooks.FakeClock` in tests).
        ban_date_format: ``"millis"`` (default) or ``"iso"`` for ban history dates.

    Attributes:
        counts: requests received per route name (every request that reached the route, failures included).
    """

    def __init__(
        self,
        *,
        app_id: str = "sandbox-app",
        secret_key: str | Secret = "sandbox-secret",  # noqa: S107 - the emulator's well-known default
        clock: Clock | None = None,
        ban_date_format: BanDateFormat = "millis",
    ) -> None:
        super().__init__(app_id=app_id, secret_key=secret_key, clock=clock, ban_date_format=ban_date_format)

    def routes(self) -> list[RouteSpec]:
        """Every API route as (name, method, path pattern, handler): v1.0 and v1.3 paths, then any other version
        (answered with the unsupported-version code). Register them in this order."""
        handlers = self._endpoint_handlers()
        out: list[RouteSpec] = []
        for version in [*SUPPORTED_VERSIONS, "{apiVersion}"]:
            for endpoint in gb.ENDPOINTS:
                handler = self._handler(endpoint.name, endpoint.service, handlers[endpoint.name])
                out.append((endpoint.name, endpoint.method, endpoint.pattern(version), handler))
        return out

    def _endpoint_handlers(self) -> dict[str, _Endpoint]:
        """What answers each endpoint of the table :data:`~gs_hooks.gamebase._endpoints.ENDPOINTS`, by name."""
        return {
            gb.TOKEN.name: self._token_auth,
            gb.LAUNCHING.name: self._launching,
            gb.MAINTENANCE.name: self._under_maintenance,
            gb.BANS.name: self._ban_history,
            gb.BAN_RELEASES.name: self._releases,
            gb.USER_IDS.name: self._user_ids,
            gb.MEMBER.name: self._member_one,
            gb.MEMBERS.name: self._members_many,
            gb.IDP.name: self._idp_info,
            gb.IAP_CONSUME.name: self._iap_consume,
            gb.IAP_ITEMS.name: self._iap_items,
            gb.IAP_CONSUMABLES.name: self._iap_unconsumed,
            gb.LB_USER_COUNT.name: self._lb_user_count,
            gb.LB_USERS.name: self._lb_users,
            gb.LB_GET_USERS.name: self._lb_get_users,
            gb.LB_SCORE.name: self._lb_score,
            gb.LB_SCORE_WITH_EXTRA.name: self._lb_score_extra,
            gb.LB_SCORES.name: self._lb_scores,
            gb.LB_SCORES_WITH_EXTRA.name: self._lb_scores_extra,
            gb.LB_DELETE_USERS.name: self._lb_delete,
        }

    # -- the pipeline -------------------------------------------------------------------------------------

    def _handler(self, name: str, service: str, endpoint: _Endpoint) -> Handler:
        throw_point = service.removeprefix("tcgb-")

        async def handle(request: Request) -> Response:
            self.counts[name] += 1
            tx = transaction_id(request)
            try:
                self._check(request, service)
                pending = self._failures.get(name)
                if pending:
                    code, text = pending.pop(0)
                    raise ApiError(code, text, throw_point)
                body = endpoint(request)
            except ApiError as exc:
                return self._failure(request, tx, exc, throw_point)
            return Response.json({"header": self._header(tx), **body}, headers=[("X-TCGB-Transaction-Id", tx)])

        return handle

    def _check(self, request: Request, service: str) -> None:
        parts = request.path.split("/")
        version = parts[2] if len(parts) > 2 else ""
        if version not in SUPPORTED_VERSIONS:
            code = UNSUPPORTED_VERSION_LAUNCHING if service == "tcgb-launching" else UNSUPPORTED_VERSION
            raise ApiError(code, f"Not supported API version: {version}", "gateway")
        app_id = request.path_params.get("appId", "")
        if app_id != self.app_id:
            raise ApiError(INVALID_APP_ID, f"Invalid appId: {app_id}", "gateway")
        if not self.product_enabled:
            raise ApiError(INVALID_APPKEY, f"Gamebase product appKey is invalid, appId:{app_id}", "gateway")
        key = request.header("x-secret-key")
        if not key:
            raise ApiError(UNAUTHENTICATED, "Unauthenticated: the X-Secret-Key header is missing", "gateway")
        if not hmac.compare_digest(key.encode("utf-8"), self.secret_key.get_secret_value().encode("utf-8")):
            raise ApiError(INVALID_SECRET_KEY, "Invalid secret key", "gateway")

    @staticmethod
    def _header(tx: str, code: int = 0, message: str = "SUCCESS") -> dict[str, Any]:
        return {"transactionId": tx, "isSuccessful": code == 0, "resultCode": code, "resultMessage": message}

    def error_response(
        self, request: Request, code: int, message: str | None = None, *, throw_point: str = "gateway"
    ) -> Response:
        """A Gamebase failure answer for ``request`` (HTTP 200, envelope with ``traceError``, transaction id echo).

        For a fault layer that answers in place of a route: the result looks like the platform's.

        Args:
            request: the request being answered.
            code: the result code, e.g. -5000001.
            message: the result message (default: a generic one for the code).
            throw_point: ``traceError.throwPoint``.
        """
        text = message or default_message(code)
        return self._failure(request, transaction_id(request), ApiError(code, text, throw_point), throw_point)

    def _failure(self, request: Request, tx: str, exc: ApiError, throw_point: str) -> Response:
        uri = request.path
        token = request.path_params.get("accessToken")
        if token:
            uri = uri.replace(token, "****")
        header = self._header(tx, exc.code, exc.message)
        header["traceError"] = {
            "trackingTime": ms(self.clock.time()),
            "throwPoint": exc.throw_point or throw_point,
            "uri": uri,
        }
        return Response.json({"header": header}, headers=[("X-TCGB-Transaction-Id", tx)])
