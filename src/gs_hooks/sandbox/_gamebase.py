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
import math
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Literal
from urllib.parse import parse_qsl

import msgspec

from .._clock import KST, Clock, to_datetime
from .._config import Secret
from ..http._app import Request, Response
from ._gamebase_state import BanRecord, GamebaseSimError, GamebaseState, MaintenanceWindow, SimMember

__all__ = ["SUPPORTED_VERSIONS", "GamebaseSim", "Handler", "RouteSpec", "transaction_id"]

Handler = Callable[[Request], Awaitable[Response]]
RouteSpec = tuple[str, str, str, Handler]
"""(route name, method, path pattern, handler)."""

SUPPORTED_VERSIONS = ("v1.0", "v1.3")
BanDateFormat = Literal["millis", "iso"]

INVALID_PARAMETER = -4000001
UNSUPPORTED_VERSION = -4000007
UNSUPPORTED_VERSION_LAUNCHING = -4060003
INVALID_APP_ID = -4010001
INVALID_APPKEY = -4010002
UNAUTHENTICATED = -4010003
INVALID_SECRET_KEY = -4010004
INVALID_TOKEN = -4010203
MEMBER_NOT_VALID = -4010204
TOKEN_EXPIRED = -4010208
NO_SUCH_MEMBER = -4040401
NOT_FOUND = -4040002
ALREADY_CONSUMED = -4090001

_OS_CODES = frozenset({"AOS", "IOS", "WEB", "WINDOWS"})
_STORE_CODES = {"AOS": "GG", "IOS": "AS", "WEB": "WEB", "WINDOWS": "WINDOWS"}
_PAGE_DEFAULT = 20
_PAGE_MAX = 2000


class _ApiError(Exception):
    def __init__(self, code: int, message: str, throw_point: str = "") -> None:
        self.code = code
        self.message = message
        self.throw_point = throw_point
        super().__init__(message)


def _bad(message: str) -> _ApiError:
    return _ApiError(INVALID_PARAMETER, f"Invalid parameter: {message}")


def _ms(ts: float) -> int:
    return round(ts * 1000)


def _iso(ts: float, *, millis: bool = False) -> str:
    return to_datetime(ts, KST).isoformat(timespec="milliseconds" if millis else "seconds")


def _parse_iso(name: str, value: str | None) -> float:
    if not value:
        raise _bad(f"'{name}' is mandatory (ISO 8601, e.g. 2026-01-01T00:00:00.000+09:00)")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        hint = " (URL-encode '+' as %2B)" if " " in value else ""
        raise _bad(f"'{name}' is not an ISO 8601 time{hint}") from None
    if moment.tzinfo is None:
        raise _bad(f"'{name}' must carry a UTC offset, e.g. +09:00")
    return moment.timestamp()


def _parse_int(name: str, value: str | None, default: int, minimum: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise _bad(f"'{name}' must be an integer") from None
    if number < minimum:
        raise _bad(f"'{name}' must be >= {minimum}")
    return number


def _parse_bool(name: str, value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise _bad(f"'{name}' must be true or false")


def _default_message(code: int) -> str:
    return "Internal server error (sandbox)" if code <= -5000000 else f"Error {code} (sandbox)"


def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = msgspec.json.decode(request.body)
    except msgspec.DecodeError:
        raise _bad("the body is not JSON") from None
    if not isinstance(body, dict):
        raise _bad("the body must be a JSON object")
    return body


def _str_list(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(f"'{key}' must be an array of strings")
    return value


def _number(body: dict[str, Any], key: str) -> float:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"'{key}' must be a number")
    return float(value)


def _multi(request: Request, *names: str) -> list[str]:
    out: list[str] = []
    for key, value in parse_qsl(request.query_string, keep_blank_values=False):
        if key in names:
            out.extend(v for v in value.split(",") if v)
    return out


def transaction_id(request: Request) -> str:
    """The request's ``X-TCGB-Transaction-Id`` when it is printable ASCII of at most 128 characters, else a new
    UUID (a value that cannot be echoed in a response header is replaced, not echoed)."""
    value = request.header("x-tcgb-transaction-id")
    if value and len(value) <= 128 and all(32 <= ord(ch) < 127 for ch in value):
        return value
    return str(uuid.uuid4())


_Endpoint = Callable[[Request], dict[str, Any]]


class GamebaseSim(GamebaseState):
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
        super().__init__(app_id=app_id, secret_key=secret_key, clock=clock)
        self.counts: Counter[str] = Counter()
        self.ban_date_format: BanDateFormat = ban_date_format
        self._failures: dict[str, list[tuple[int, str]]] = {}
        self._endpoints: list[tuple[str, str, str, str, _Endpoint]] = [
            # (name, service, method, path after the version, endpoint); specific paths before {userId}.
            (
                "gamebase.token",
                "tcgb-gateway",
                "GET",
                "/apps/{appId}/members/{userId}/tokens/{accessToken}",
                self._token_auth,
            ),
            ("gamebase.launching", "tcgb-launching", "GET", "/apps/{appId}/launching/simple", self._launching),
            (
                "gamebase.maintenance",
                "tcgb-launching",
                "GET",
                "/apps/{appId}/maintenances/under-maintenance",
                self._under_maintenance,
            ),
            ("gamebase.bans", "tcgb-member", "GET", "/apps/{appId}/members/bans", self._ban_history),
            ("gamebase.ban_releases", "tcgb-member", "GET", "/apps/{appId}/members/bans/release", self._releases),
            ("gamebase.userids", "tcgb-member", "POST", "/apps/{appId}/members/userIds/authKeys", self._user_ids),
            ("gamebase.member", "tcgb-member", "GET", "/apps/{appId}/members/{userId}", self._member_one),
            ("gamebase.members", "tcgb-member", "POST", "/apps/{appId}/members", self._members_many),
            ("gamebase.idp", "tcgb-member", "POST", "/apps/{appId}/auth/authKeys", self._idp_info),
            (
                "gamebase.iap.consume",
                "tcgb-inapp",
                "POST",
                "/apps/{appId}/consume/{paymentSeq}/items/{itemSeq}",
                self._iap_consume,
            ),
            ("gamebase.iap.items", "tcgb-inapp", "GET", "/apps/{appId}/item/list/{appSeq}", self._iap_items),
            ("gamebase.iap.consumables", "tcgb-inapp", "POST", "/apps/{appId}/consumable/list", self._iap_unconsumed),
            (
                "gamebase.leaderboard.user_count",
                "tcgb-leaderboard",
                "GET",
                "/apps/{appId}/factors/{factor}/user-count",
                self._lb_user_count,
            ),
            (
                "gamebase.leaderboard.users",
                "tcgb-leaderboard",
                "GET",
                "/apps/{appId}/factors/{factor}/users",
                self._lb_users,
            ),
            (
                "gamebase.leaderboard.get_users",
                "tcgb-leaderboard",
                "POST",
                "/apps/{appId}/get-users",
                self._lb_get_users,
            ),
            (
                "gamebase.leaderboard.score",
                "tcgb-leaderboard",
                "POST",
                "/apps/{appId}/factors/{factor}/users/{userId}/score",
                self._lb_score,
            ),
            (
                "gamebase.leaderboard.score_with_extra",
                "tcgb-leaderboard",
                "POST",
                "/apps/{appId}/factors/{factor}/users/{userId}/score-with-extra",
                self._lb_score_extra,
            ),
            ("gamebase.leaderboard.scores", "tcgb-leaderboard", "POST", "/apps/{appId}/scores", self._lb_scores),
            (
                "gamebase.leaderboard.scores_with_extra",
                "tcgb-leaderboard",
                "POST",
                "/apps/{appId}/scores-with-extra",
                self._lb_scores_extra,
            ),
            (
                "gamebase.leaderboard.delete_users",
                "tcgb-leaderboard",
                "DELETE",
                "/apps/{appId}/factors/{factor}/users",
                self._lb_delete,
            ),
        ]

    # -- public control -----------------------------------------------------------------------------------

    def reset_nowait(self) -> None:
        """Forget every scripted thing, the request counts and pending injected failures (app id, secret key,
        clock and ban date format stay)."""
        super().reset_nowait()
        self.counts = Counter()
        self._failures = {}

    @property
    def route_names(self) -> list[str]:
        """Every API route name, in registration order."""
        return [e[0] for e in self._endpoints]

    def fail_next(self, route_name: str, code: int, n: int = 1, message: str | None = None) -> None:
        """Answer the next ``n`` requests to ``route_name`` with result ``code`` (after the auth checks).

        Args:
            route_name: an API route name (see :attr:`route_names`).
            code: the result code to answer, e.g. -5000001.
            n: how many requests.
            message: the result message (default: a generic one for the code).
        """
        if route_name not in self.route_names:
            raise GamebaseSimError(f"unknown Gamebase route {route_name!r}; known: {', '.join(self.route_names)}")
        if n < 1 or code == 0:
            raise GamebaseSimError("fail_next needs n >= 1 and a non-zero code")
        text = message or _default_message(code)
        self._failures.setdefault(route_name, []).extend([(code, text)] * n)

    def routes(self) -> list[RouteSpec]:
        """Every API route as (name, method, path pattern, handler): v1.0 and v1.3 paths, then any other version
        (answered with the unsupported-version code). Register them in this order."""
        out: list[RouteSpec] = []
        for version in [*SUPPORTED_VERSIONS, "{apiVersion}"]:
            for name, service, method, suffix, endpoint in self._endpoints:
                out.append((name, method, f"/{service}/{version}{suffix}", self._handler(name, service, endpoint)))
        return out

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
                    raise _ApiError(code, text, throw_point)
                body = endpoint(request)
            except _ApiError as exc:
                return self._failure(request, tx, exc, throw_point)
            return Response.json({"header": self._header(tx), **body}, headers=[("X-TCGB-Transaction-Id", tx)])

        return handle

    def _check(self, request: Request, service: str) -> None:
        parts = request.path.split("/")
        version = parts[2] if len(parts) > 2 else ""
        if version not in SUPPORTED_VERSIONS:
            code = UNSUPPORTED_VERSION_LAUNCHING if service == "tcgb-launching" else UNSUPPORTED_VERSION
            raise _ApiError(code, f"Not supported API version: {version}", "gateway")
        app_id = request.path_params.get("appId", "")
        if app_id != self.app_id:
            raise _ApiError(INVALID_APP_ID, f"Invalid appId: {app_id}", "gateway")
        if not self.product_enabled:
            raise _ApiError(INVALID_APPKEY, f"Gamebase product appKey is invalid, appId:{app_id}", "gateway")
        key = request.header("x-secret-key")
        if not key:
            raise _ApiError(UNAUTHENTICATED, "Unauthenticated: the X-Secret-Key header is missing", "gateway")
        if not hmac.compare_digest(key.encode("utf-8"), self.secret_key.get_secret_value().encode("utf-8")):
            raise _ApiError(INVALID_SECRET_KEY, "Invalid secret key", "gateway")

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
        text = message or _default_message(code)
        return self._failure(request, transaction_id(request), _ApiError(code, text, throw_point), throw_point)

    def _failure(self, request: Request, tx: str, exc: _ApiError, throw_point: str) -> Response:
        uri = request.path
        token = request.path_params.get("accessToken")
        if token:
            uri = uri.replace(token, "****")
        header = self._header(tx, exc.code, exc.message)
        header["traceError"] = {
            "trackingTime": _ms(self.clock.time()),
            "throwPoint": exc.throw_point or throw_point,
            "uri": uri,
        }
        return Response.json({"header": header}, headers=[("X-TCGB-Transaction-Id", tx)])

    # -- shapes -------------------------------------------------------------------------------------------

    def _member_json(self, member: SimMember) -> dict[str, Any]:
        out: dict[str, Any] = {
            "userId": member.user_id,
            "valid": self.member_valid(member.user_id),
            "appId": self.app_id,
            "regDate": _ms(member.reg_ts),
        }
        if member.last_login_ts is not None:
            out["lastLoginDate"] = _ms(member.last_login_ts)
        out["authList"] = [
            {
                "userId": a.user_id,
                "authSystem": a.auth_system,
                "idPCode": a.idp_code,
                "authKey": a.auth_key,
                "regDate": _ms(a.reg_ts),
            }
            for a in member.auth
        ]
        return out

    def _ban_date(self, ts: float | None) -> int | str | None:
        if ts is None:
            return None
        return _iso(ts, millis=True) if self.ban_date_format == "iso" else _ms(ts)

    def _ban_json(self, r: BanRecord) -> dict[str, Any]:
        return {
            "appId": self.app_id,
            "banCaller": r.ban_caller,
            "banReason": r.ban_reason,
            "banType": r.ban_type,
            "beginDate": self._ban_date(r.begin_ts),
            "endDate": self._ban_date(r.end_ts),
            "flags": r.flags,
            "message": r.message,
            "name": r.name,
            "regUser": r.reg_user,
            "releaseCaller": r.release_caller,
            "releaseDate": self._ban_date(r.release_ts),
            "releaseReason": r.release_reason,
            "releaseUser": r.release_user,
            "seq": r.seq,
            "templateCode": r.template_code,
            "userId": r.user_id,
        }

    @staticmethod
    def _window_json(w: MaintenanceWindow, *, launching: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "typeCode": w.type_code,
            "beginDate": _iso(w.begin_ts),
            "endDate": _iso(w.end_ts),
            "url": w.url,
        }
        if launching:
            out["reason"] = w.reason
        out["message"] = w.message
        return out

    # -- endpoints ----------------------------------------------------------------------------------------

    def _token_auth(self, request: Request) -> dict[str, Any]:
        params = request.path_params
        linked = _parse_bool("linkedIdP", request.query.get("linkedIdP"), False)
        record = self.tokens.get(params["accessToken"])
        if record is None or record.revoked or record.user_id != params["userId"]:
            raise _ApiError(INVALID_TOKEN, "Invalid access token", "gateway")
        if record.expires_ts is not None and self.clock.time() >= record.expires_ts:
            raise _ApiError(TOKEN_EXPIRED, "Access token expired", "gateway")
        member = self.members.get(record.user_id)
        valid = self.member_valid(record.user_id)
        if member is None or valid != "Y":
            state = "missing" if member is None else f"valid={valid}"
            raise _ApiError(MEMBER_NOT_VALID, f"Not a valid member ({state})", "gateway")
        out: dict[str, Any] = {}
        if linked:
            out["linkedIdP"] = {"idPCode": record.idp_code, "idPId": record.idp_id}
        out["member"] = self._member_json(member)
        return out

    def _launching(self, request: Request) -> dict[str, Any]:
        query = request.query
        os_code = query.get("osCode", "")
        version = query.get("clientVersion", "")
        if os_code not in _OS_CODES:
            raise _bad(f"'osCode' must be one of {', '.join(sorted(_OS_CODES))}")
        if not version:
            raise _bad("'clientVersion' is mandatory")
        window = self.current_maintenance()
        if window is not None:
            code, message = 303, "Maintenance in progress"
        else:
            code, message = self.launching_by_version.get(version, self.launching_status)
        data: dict[str, Any] = {
            "status": {"code": code, "message": message},
            "app": {"storeCode": _STORE_CODES[os_code], **self.launching_app},
        }
        if window is not None:
            data["maintenance"] = self._window_json(window, launching=True)
        return {"launchingData": data}

    def _under_maintenance(self, request: Request) -> dict[str, Any]:
        return {
            "appId": self.app_id,
            "underMaintenance": self.current_maintenance() is not None,
            "maintenances": [self._window_json(w, launching=False) for w in self.announced_maintenances()],
        }

    def _member_one(self, request: Request) -> dict[str, Any]:
        include = _parse_bool("includeMemberInfo", request.query.get("includeMemberInfo"), True)
        member = self.members.get(request.path_params["userId"])
        if member is None:
            raise _ApiError(NO_SUCH_MEMBER, "Member not found", "member")
        out: dict[str, Any] = {"member": self._member_json(member)}
        if include:
            out["memberInfo"] = dict(member.info)
        return out

    def _members_many(self, request: Request) -> dict[str, Any]:
        ids = _str_list(_json_body(request), "userIdList")
        found = [self.members[i] for i in ids if i in self.members]
        return {
            "memberList": [
                {
                    "userId": m.user_id,
                    "valid": self.member_valid(m.user_id),
                    "appId": self.app_id,
                    "regDate": _ms(m.reg_ts),
                }
                for m in found
            ]
        }

    def _idp_info(self, request: Request) -> dict[str, Any]:
        ids = _str_list(_json_body(request), "userIdList")
        return {
            "result": {
                i: [
                    {"authKey": a.auth_key, "idPCode": a.idp_code, "authSystem": a.auth_system}
                    for a in self.members[i].auth
                ]
                for i in ids
                if i in self.members
            }
        }

    def _user_ids(self, request: Request) -> dict[str, Any]:
        system = request.query.get("authSystem")
        if not system:
            raise _bad("'authSystem' is mandatory (e.g. gbid)")
        keys = set(_str_list(_json_body(request), "authKeyList"))
        result: dict[str, str] = {}
        for member in self.members.values():
            for a in member.auth:
                if a.auth_system == system and a.auth_key in keys:
                    result[a.auth_key] = member.user_id
        return {"result": result}

    def _page(self, request: Request, rows: list[BanRecord]) -> dict[str, Any]:
        query = request.query
        page = _parse_int("page", query.get("page"), 0, 0)
        size = min(_parse_int("size", query.get("size"), _PAGE_DEFAULT, 1), _PAGE_MAX)
        total = len(rows)
        pages = math.ceil(total / size)
        chunk = rows[page * size : (page + 1) * size]
        return {
            "pagingInfo": {
                "first": page == 0,
                "last": page >= pages - 1,
                "numberOfElements": len(chunk),
                "page": page,
                "size": size,
                "totalElements": total,
                "totalPages": pages,
            },
            "result": [self._ban_json(r) for r in chunk],
        }

    def _window(self, request: Request) -> tuple[float, float]:
        query = request.query
        begin = _parse_iso("begin", query.get("begin"))
        end = _parse_iso("end", query.get("end"))
        if end < begin:
            raise _bad("'end' is before 'begin'")
        return begin, end

    def _ban_history(self, request: Request) -> dict[str, Any]:
        begin, end = self._window(request)
        rows = [r for r in list(self.bans) if begin <= r.begin_ts <= end]
        return self._page(request, rows)

    def _releases(self, request: Request) -> dict[str, Any]:
        begin, end = self._window(request)
        rows = [r for r in list(self.releases) if r.release_ts is not None and begin <= r.release_ts <= end]
        return self._page(request, rows)

    # -- IAP wrapper --------------------------------------------------------------------------------------

    def _iap_consume(self, request: Request) -> dict[str, Any]:
        params = request.path_params
        body = _json_body(request) if request.body else {}
        token = body.get("purchaseToken")
        if not isinstance(token, str) or not token:
            raise _bad("'purchaseToken' is mandatory")
        purchase = self.purchases.get(params["paymentSeq"])
        if purchase is None or str(purchase.item_seq) != params["itemSeq"] or purchase.purchase_token != token:
            raise _ApiError(NOT_FOUND, "Purchase not found", "inapp")
        if purchase.consumed:
            raise _ApiError(ALREADY_CONSUMED, "Purchase already consumed", "inapp")
        purchase.consumed = True
        return {
            "result": {
                "paymentSeq": purchase.payment_seq,
                "itemSeq": purchase.item_seq,
                "userKey": purchase.user_id,
                "consumed": True,
            }
        }

    def _iap_items(self, request: Request) -> dict[str, Any]:
        items = self.iap_items.get(request.path_params["appSeq"], {})
        return {"result": [dict(v) for _, v in sorted(items.items())]}

    def _iap_unconsumed(self, request: Request) -> dict[str, Any]:
        body = _json_body(request)
        user = body.get("userKey")
        if not isinstance(user, str) or not user:
            raise _bad("'userKey' is mandatory")
        market = body.get("marketId")
        return {
            "result": [
                {
                    "paymentSeq": p.payment_seq,
                    "itemSeq": p.item_seq,
                    "purchaseToken": p.purchase_token,
                    "marketId": p.market_id,
                    "price": p.price,
                    "currency": p.currency,
                    "purchaseTime": _iso(p.purchase_ts),
                }
                for p in self.purchases.values()
                if p.user_id == user and not p.consumed and (market is None or p.market_id == market)
            ]
        }

    # -- leaderboard wrapper ------------------------------------------------------------------------------

    @staticmethod
    def _user_info(entry: tuple[str, float, str, float, int]) -> dict[str, Any]:
        user_id, score, extra, when, rank = entry
        return {"userId": user_id, "score": score, "rank": rank, "extra": extra, "date": _iso(when)}

    def _lb_user_count(self, request: Request) -> dict[str, Any]:
        return {"totalCount": len(self.leaderboard.get(request.path_params["factor"], {}))}

    def _lb_users(self, request: Request) -> dict[str, Any]:
        query = request.query
        factor = request.path_params["factor"]
        ranking = self.ranking(factor)
        if "userId" in query:
            entry = next((e for e in ranking if e[0] == query["userId"]), None)
            if entry is None:
                raise _ApiError(NOT_FOUND, "User not registered in this factor", "leaderboard")
            return {"userInfo": self._user_info(entry)}
        if "start" not in query or "size" not in query:
            raise _bad("give 'userId', or 'start' and 'size'")
        start = _parse_int("start", query["start"], 1, 1)
        size = _parse_int("size", query["size"], 1, 1)
        chunk = ranking[start - 1 : start - 1 + size]
        return {"totalCount": len(ranking), "userInfos": [self._user_info(e) for e in chunk]}

    def _lb_get_users(self, request: Request) -> dict[str, Any]:
        body = _json_body(request)
        users = set(_str_list(body, "userIds"))
        factors = _str_list(body, "factors")
        return {
            "userInfosByFactor": [
                {"factor": f, "userInfos": [self._user_info(e) for e in self.ranking(f) if e[0] in users]}
                for f in factors
            ]
        }

    def _lb_score(self, request: Request) -> dict[str, Any]:
        params = request.path_params
        self.set_score(params["factor"], params["userId"], _number(_json_body(request), "score"))
        return {}

    def _lb_score_extra(self, request: Request) -> dict[str, Any]:
        params = request.path_params
        body = _json_body(request)
        extra = body.get("extra", "")
        if not isinstance(extra, str):
            raise _bad("'extra' must be a string")
        self.set_score(params["factor"], params["userId"], _number(body, "score"), extra)
        return {}

    def _bulk_scores(self, request: Request, *, with_extra: bool) -> dict[str, Any]:
        groups = _json_body(request).get("factorUserScoreInfoList")
        if not isinstance(groups, list):
            raise _bad("'factorUserScoreInfoList' must be an array")
        staged: list[tuple[str, str, float, str]] = []
        for group in groups:
            if not isinstance(group, dict) or not isinstance(group.get("userScoreInfoList"), list):
                raise _bad("each factor entry needs 'factor' and 'userScoreInfoList'")
            factor = str(group.get("factor", ""))
            if not factor:
                raise _bad("each factor entry needs 'factor'")
            for item in group["userScoreInfoList"]:
                if not isinstance(item, dict) or not isinstance(item.get("userId"), str):
                    raise _bad("each score needs 'userId' and 'score'")
                extra = item.get("extra", "") if with_extra else ""
                if not isinstance(extra, str):
                    raise _bad("'extra' must be a string")
                staged.append((factor, item["userId"], _number(item, "score"), extra))
        for factor, user_id, score, extra in staged:
            self.set_score(factor, user_id, score, extra)
        return {"resultCount": len(staged)}

    def _lb_scores(self, request: Request) -> dict[str, Any]:
        return self._bulk_scores(request, with_extra=False)

    def _lb_scores_extra(self, request: Request) -> dict[str, Any]:
        return self._bulk_scores(request, with_extra=True)

    def _lb_delete(self, request: Request) -> dict[str, Any]:
        users = _multi(request, "userId", "userIds")
        if not users:
            raise _bad("'userId' (or 'userIds') is mandatory")
        table = self.leaderboard.get(request.path_params["factor"], {})
        for user_id in users:
            table.pop(user_id, None)
        return {}

    # -- admin ----------------------------------------------------------------------------------------------

    def admin_routes(self) -> list[RouteSpec]:
        """The ``/_sandbox/gamebase/...`` control endpoints as (name, method, path pattern, handler).

        JSON in, JSON out; bad input gets HTTP 400 ``{"error": {...}}``. Times are ISO 8601 strings with an offset
        or epoch seconds.
        """
        base = "/_sandbox/gamebase"
        table: list[tuple[str, str, str, Callable[[Request, dict[str, Any]], dict[str, Any]]]] = [
            ("gamebase.admin.state", "GET", f"{base}/state", self._admin_state),
            ("gamebase.admin.add_member", "POST", f"{base}/members", self._admin_add_member),
            ("gamebase.admin.member_valid", "PUT", f"{base}/members/{{userId}}/valid", self._admin_valid),
            ("gamebase.admin.issue_token", "POST", f"{base}/members/{{userId}}/tokens", self._admin_issue),
            ("gamebase.admin.expire_token", "POST", f"{base}/tokens/{{accessToken}}/expire", self._admin_expire),
            ("gamebase.admin.revoke_token", "POST", f"{base}/tokens/{{accessToken}}/revoke", self._admin_revoke),
            ("gamebase.admin.ban", "POST", f"{base}/bans", self._admin_ban),
            ("gamebase.admin.release_ban", "POST", f"{base}/bans/release", self._admin_release),
            ("gamebase.admin.set_maintenance", "POST", f"{base}/maintenance", self._admin_set_maintenance),
            ("gamebase.admin.clear_maintenance", "DELETE", f"{base}/maintenance", self._admin_clear_maintenance),
            ("gamebase.admin.launching", "PUT", f"{base}/launching", self._admin_launching),
            ("gamebase.admin.fail", "POST", f"{base}/fail", self._admin_fail),
            ("gamebase.admin.options", "PUT", f"{base}/options", self._admin_options),
            ("gamebase.admin.reset", "POST", f"{base}/reset", self._admin_reset),
        ]
        return [(name, method, path, self._admin_handler(fn)) for name, method, path, fn in table]

    def _admin_handler(self, fn: Callable[[Request, dict[str, Any]], dict[str, Any]]) -> Handler:
        async def handle(request: Request) -> Response:
            try:
                body: dict[str, Any] = {}
                if request.body:
                    decoded = msgspec.json.decode(request.body)
                    if not isinstance(decoded, dict):
                        return Response.error(400, "the body must be a JSON object")
                    body = decoded
                return Response.json(fn(request, body))
            except msgspec.DecodeError:
                return Response.error(400, "the body is not JSON")
            except (GamebaseSimError, KeyError, TypeError, ValueError) as exc:
                text = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
                return Response.error(400, text)

        return handle

    @staticmethod
    def _admin_time(value: Any) -> float | datetime | None:
        if value is None:
            return None
        if isinstance(value, bool):
            raise GamebaseSimError("a time must be an ISO 8601 string with an offset or epoch seconds")
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:
                raise GamebaseSimError(f"time {value!r} needs a UTC offset")
            return moment
        raise GamebaseSimError("a time must be an ISO 8601 string with an offset or epoch seconds")

    def _admin_state(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "appId": self.app_id,
            "now": _iso(self.clock.time()),
            "counts": dict(self.counts),
            "members": {uid: self.member_valid(uid) for uid in self.members},
            "tokens": len(self.tokens),
            "bans": len(self.bans),
            "releases": len(self.releases),
            "maintenances": [
                {"windowId": w.window_id, **self._window_json(w, launching=True)} for w in self.maintenances
            ],
            "launchingStatus": {"code": self.launching_status[0], "message": self.launching_status[1]},
            "banDateFormat": self.ban_date_format,
            "productEnabled": self.product_enabled,
        }

    def _admin_add_member(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        member = self.add_member(
            str(body["userId"]),
            valid=str(body.get("valid", "Y")),
            idp=str(body.get("idp", "guest")),
            auth_key=body.get("authKey"),
            auth_system=str(body.get("authSystem", "gbid")),
            info=body.get("info"),
        )
        return {"userId": member.user_id, "authKey": member.auth[0].auth_key}

    def _admin_valid(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        self.set_member_valid(request.path_params["userId"], str(body["valid"]))
        return {}

    def _admin_issue(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        ttl = body.get("ttl")
        token = self.issue_token(
            request.path_params["userId"], ttl=None if ttl is None else float(ttl), idp=body.get("idp")
        )
        return {"accessToken": token}

    def _admin_expire(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        self.expire_token(request.path_params["accessToken"])
        return {}

    def _admin_revoke(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        self.revoke_token(request.path_params["accessToken"])
        return {}

    def _admin_ban(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        record = self.add_ban(
            str(body["userId"]),
            begin=self._admin_time(body.get("begin")),
            end=self._admin_time(body.get("end")),
            ban_type=body.get("banType"),
            message=str(body.get("message", "")),
            reason=str(body.get("reason", "")),
            caller=str(body.get("caller", "CONSOLE")),
        )
        return {"seq": record.seq}

    def _admin_release(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        released = self.release_ban(str(body["userId"]), reason=str(body.get("reason", "")))
        return {"released": [r.seq for r in released]}

    def _admin_set_maintenance(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        begin = self._admin_time(body["begin"])
        end = self._admin_time(body["end"])
        if begin is None or end is None:
            raise GamebaseSimError("maintenance needs 'begin' and 'end'")
        window = self.set_maintenance(
            begin,
            end,
            message=str(body.get("message", "Under maintenance")),
            url=body.get("url"),
            type_code=str(body.get("typeCode", "APP")),
            reason=str(body.get("reason", "")),
        )
        return {"windowId": window.window_id}

    def _admin_clear_maintenance(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        raw = request.query.get("windowId")
        self.clear_maintenance(None if raw is None else int(raw))
        return {}

    def _admin_launching(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        self.set_launching_status(
            int(body["code"]), str(body.get("message", "")), client_version=body.get("clientVersion")
        )
        return {}

    def _admin_fail(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        self.fail_next(str(body["route"]), int(body["code"]), int(body.get("n", 1)), body.get("message"))
        return {}

    def _admin_reset(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        self.reset_nowait()
        return {}

    def _admin_options(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        if "banDateFormat" in body:
            fmt = body["banDateFormat"]
            if fmt not in ("millis", "iso"):
                raise GamebaseSimError("banDateFormat must be 'millis' or 'iso'")
            self.ban_date_format = fmt
        if "productEnabled" in body:
            self.product_enabled = bool(body["productEnabled"])
        return {}
