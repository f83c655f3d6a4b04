"""The Gamebase emulator's ``/_sandbox/gamebase/...`` control endpoints: script its state over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec

from ..http._app import Request, Response
from ._gamebase_records import GamebaseSimError
from ._gamebase_wire import Handler, RouteSpec, iso
from ._gamebase_wrappers import GamebaseWrappers

__all__ = ["GamebaseAdmin"]


class GamebaseAdmin(GamebaseWrappers):
    """The control endpoints (every API endpoint below them)."""

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
            "now": iso(self.clock.time()),
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
