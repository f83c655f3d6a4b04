"""The Gamebase emulator's API endpoints (token, launching, maintenance, member, ban history): state in, JSON out.

Each endpoint takes the request and returns the answer's body (without the common header), or raises
:class:`~._gamebase_wire.ApiError`; :class:`~._gamebase.GamebaseSim` runs them behind its checks. The request
counts and the injected failures (:meth:`GamebaseEndpoints.fail_next`) are kept here, by endpoint name.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Literal

from .._clock import Clock
from .._config import Secret
from ..gamebase import _endpoints as gb
from ..http._app import Request
from ._gamebase_records import BanRecord, GamebaseSimError, MaintenanceWindow, SimMember
from ._gamebase_state import GamebaseState
from ._gamebase_wire import (
    INVALID_TOKEN,
    MEMBER_NOT_VALID,
    NO_SUCH_MEMBER,
    OS_CODES,
    PAGE_DEFAULT,
    PAGE_MAX,
    STORE_CODES,
    TOKEN_EXPIRED,
    ApiError,
    bad,
    default_message,
    iso,
    json_body,
    ms,
    parse_bool,
    parse_int,
    parse_iso,
    str_list,
)

__all__ = ["BanDateFormat", "GamebaseEndpoints"]

BanDateFormat = Literal["millis", "iso"]


class GamebaseEndpoints(GamebaseState):
    """The core API endpoints over :class:`GamebaseState` (arguments: see :class:`~._gamebase.GamebaseSim`).

    Attributes:
        counts: requests received per route name (every request that reached the route, failures included).
        ban_date_format: ``"millis"`` or ``"iso"`` for ban history dates.
    """

    def __init__(
        self,
        *,
        app_id: str,
        secret_key: str | Secret,
        clock: Clock | None,
        ban_date_format: BanDateFormat,
    ) -> None:
        super().__init__(app_id=app_id, secret_key=secret_key, clock=clock)
        self.ban_date_format: BanDateFormat = ban_date_format

    def reset_nowait(self) -> None:
        """Forget every scripted thing, the request counts and pending injected failures (app id, secret key,
        clock and ban date format stay)."""
        super().reset_nowait()
        self.counts: Counter[str] = Counter()
        self._failures: dict[str, list[tuple[int, str]]] = {}

    @property
    def route_names(self) -> list[str]:
        """Every API route name, in registration order."""
        return [endpoint.name for endpoint in gb.ENDPOINTS]

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
        text = message or default_message(code)
        self._failures.setdefault(route_name, []).extend([(code, text)] * n)

    # -- shapes -------------------------------------------------------------------------------------------

    def _member_json(self, member: SimMember) -> dict[str, Any]:
        out: dict[str, Any] = {
            "userId": member.user_id,
            "valid": self.member_valid(member.user_id),
            "appId": self.app_id,
            "regDate": ms(member.reg_ts),
        }
        if member.last_login_ts is not None:
            out["lastLoginDate"] = ms(member.last_login_ts)
        out["authList"] = [
            {
                "userId": a.user_id,
                "authSystem": a.auth_system,
                "idPCode": a.idp_code,
                "authKey": a.auth_key,
                "regDate": ms(a.reg_ts),
            }
            for a in member.auth
        ]
        return out

    def _ban_date(self, ts: float | None) -> int | str | None:
        if ts is None:
            return None
        return iso(ts, millis=True) if self.ban_date_format == "iso" else ms(ts)

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
            "beginDate": iso(w.begin_ts),
            "endDate": iso(w.end_ts),
            "url": w.url,
        }
        if launching:
            out["reason"] = w.reason
        out["message"] = w.message
        return out

    # -- endpoints ----------------------------------------------------------------------------------------

    def _token_auth(self, request: Request) -> dict[str, Any]:
        params = request.path_params
        linked = parse_bool("linkedIdP", request.query.get("linkedIdP"), False)
        record = self.tokens.get(params["accessToken"])
        if record is None or record.revoked or record.user_id != params["userId"]:
            raise ApiError(INVALID_TOKEN, "Invalid access token", "gateway")
        if record.expires_ts is not None and self.clock.time() >= record.expires_ts:
            raise ApiError(TOKEN_EXPIRED, "Access token expired", "gateway")
        member = self.members.get(record.user_id)
        valid = self.member_valid(record.user_id)
        if member is None or valid != "Y":
            state = "missing" if member is None else f"valid={valid}"
            raise ApiError(MEMBER_NOT_VALID, f"Not a valid member ({state})", "gateway")
        out: dict[str, Any] = {}
        if linked:
            out["linkedIdP"] = {"idPCode": record.idp_code, "idPId": record.idp_id}
        out["member"] = self._member_json(member)
        return out

    def _launching(self, request: Request) -> dict[str, Any]:
        query = request.query
        os_code = query.get("osCode", "")
        version = query.get("clientVersion", "")
        if os_code not in OS_CODES:
            raise bad(f"'osCode' must be one of {', '.join(sorted(OS_CODES))}")
        if not version:
            raise bad("'clientVersion' is mandatory")
        window = self.current_maintenance()
        if window is not None:
            code, message = 303, "Maintenance in progress"
        else:
            code, message = self.launching_by_version.get(version, self.launching_status)
        data: dict[str, Any] = {
            "status": {"code": code, "message": message},
            "app": {"storeCode": STORE_CODES[os_code], **self.launching_app},
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
        include = parse_bool("includeMemberInfo", request.query.get("includeMemberInfo"), True)
        member = self.members.get(request.path_params["userId"])
        if member is None:
            raise ApiError(NO_SUCH_MEMBER, "Member not found", "member")
        out: dict[str, Any] = {"member": self._member_json(member)}
        if include:
            out["memberInfo"] = dict(member.info)
        return out

    def _members_many(self, request: Request) -> dict[str, Any]:
        ids = str_list(json_body(request), "userIdList")
        found = [self.members[i] for i in ids if i in self.members]
        return {
            "memberList": [
                {
                    "userId": m.user_id,
                    "valid": self.member_valid(m.user_id),
                    "appId": self.app_id,
                    "regDate": ms(m.reg_ts),
                }
                for m in found
            ]
        }

    def _idp_info(self, request: Request) -> dict[str, Any]:
        ids = str_list(json_body(request), "userIdList")
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
            raise bad("'authSystem' is mandatory (e.g. gbid)")
        keys = set(str_list(json_body(request), "authKeyList"))
        result: dict[str, str] = {}
        for member in self.members.values():
            for a in member.auth:
                if a.auth_system == system and a.auth_key in keys:
                    result[a.auth_key] = member.user_id
        return {"result": result}

    def _page(self, request: Request, rows: list[BanRecord]) -> dict[str, Any]:
        query = request.query
        page = parse_int("page", query.get("page"), 0, 0)
        size = min(parse_int("size", query.get("size"), PAGE_DEFAULT, 1), PAGE_MAX)
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
        begin = parse_iso("begin", query.get("begin"))
        end = parse_iso("end", query.get("end"))
        if end < begin:
            raise bad("'end' is before 'begin'")
        return begin, end

    def _ban_history(self, request: Request) -> dict[str, Any]:
        begin, end = self._window(request)
        rows = [r for r in list(self.bans) if begin <= r.begin_ts <= end]
        return self._page(request, rows)

    def _releases(self, request: Request) -> dict[str, Any]:
        begin, end = self._window(request)
        rows = [r for r in list(self.releases) if r.release_ts is not None and begin <= r.release_ts <= end]
        return self._page(request, rows)
