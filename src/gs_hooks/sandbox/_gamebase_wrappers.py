"""The Gamebase emulator's IAP and Leaderboard wrapper endpoints (the sandbox's choices where no code is documented)."""

from __future__ import annotations

from typing import Any

from ..http._app import Request
from ._gamebase_endpoints import GamebaseEndpoints
from ._gamebase_wire import (
    ALREADY_CONSUMED,
    NOT_FOUND,
    ApiError,
    bad,
    iso,
    json_body,
    multi,
    number,
    parse_int,
    str_list,
)

__all__ = ["GamebaseWrappers"]


class GamebaseWrappers(GamebaseEndpoints):
    """IAP and Leaderboard endpoints over the emulator's state."""

    # -- IAP wrapper --------------------------------------------------------------------------------------

    def _iap_consume(self, request: Request) -> dict[str, Any]:
        params = request.path_params
        body = json_body(request) if request.body else {}
        token = body.get("purchaseToken")
        if not isinstance(token, str) or not token:
            raise bad("'purchaseToken' is mandatory")
        purchase = self.purchases.get(params["paymentSeq"])
        if purchase is None or str(purchase.item_seq) != params["itemSeq"] or purchase.purchase_token != token:
            raise ApiError(NOT_FOUND, "Purchase not found", "inapp")
        if purchase.consumed:
            raise ApiError(ALREADY_CONSUMED, "Purchase already consumed", "inapp")
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
        body = json_body(request)
        user = body.get("userKey")
        if not isinstance(user, str) or not user:
            raise bad("'userKey' is mandatory")
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
                    "purchaseTime": iso(p.purchase_ts),
                }
                for p in self.purchases.values()
                if p.user_id == user and not p.consumed and (market is None or p.market_id == market)
            ]
        }

    # -- leaderboard wrapper ------------------------------------------------------------------------------

    @staticmethod
    def _user_info(entry: tuple[str, float, str, float, int]) -> dict[str, Any]:
        user_id, score, extra, when, rank = entry
        return {"userId": user_id, "score": score, "rank": rank, "extra": extra, "date": iso(when)}

    def _lb_user_count(self, request: Request) -> dict[str, Any]:
        return {"totalCount": len(self.leaderboard.get(request.path_params["factor"], {}))}

    def _lb_users(self, request: Request) -> dict[str, Any]:
        query = request.query
        factor = request.path_params["factor"]
        ranking = self.ranking(factor)
        if "userId" in query:
            entry = next((e for e in ranking if e[0] == query["userId"]), None)
            if entry is None:
                raise ApiError(NOT_FOUND, "User not registered in this factor", "leaderboard")
            return {"userInfo": self._user_info(entry)}
        if "start" not in query or "size" not in query:
            raise bad("give 'userId', or 'start' and 'size'")
        start = parse_int("start", query["start"], 1, 1)
        size = parse_int("size", query["size"], 1, 1)
        chunk = ranking[start - 1 : start - 1 + size]
        return {"totalCount": len(ranking), "userInfos": [self._user_info(e) for e in chunk]}

    def _lb_get_users(self, request: Request) -> dict[str, Any]:
        body = json_body(request)
        users = set(str_list(body, "userIds"))
        factors = str_list(body, "factors")
        return {
            "userInfosByFactor": [
                {"factor": f, "userInfos": [self._user_info(e) for e in self.ranking(f) if e[0] in users]}
                for f in factors
            ]
        }

    def _lb_score(self, request: Request) -> dict[str, Any]:
        params = request.path_params
        self.set_score(params["factor"], params["userId"], number(json_body(request), "score"))
        return {}

    def _lb_score_extra(self, request: Request) -> dict[str, Any]:
        params = request.path_params
        body = json_body(request)
        extra = body.get("extra", "")
        if not isinstance(extra, str):
            raise bad("'extra' must be a string")
        self.set_score(params["factor"], params["userId"], number(body, "score"), extra)
        return {}

    def _bulk_scores(self, request: Request, *, with_extra: bool) -> dict[str, Any]:
        groups = json_body(request).get("factorUserScoreInfoList")
        if not isinstance(groups, list):
            raise bad("'factorUserScoreInfoList' must be an array")
        staged: list[tuple[str, str, float, str]] = []
        for group in groups:
            if not isinstance(group, dict) or not isinstance(group.get("userScoreInfoList"), list):
                raise bad("each factor entry needs 'factor' and 'userScoreInfoList'")
            factor = str(group.get("factor", ""))
            if not factor:
                raise bad("each factor entry needs 'factor'")
            for item in group["userScoreInfoList"]:
                if not isinstance(item, dict) or not isinstance(item.get("userId"), str):
                    raise bad("each score needs 'userId' and 'score'")
                extra = item.get("extra", "") if with_extra else ""
                if not isinstance(extra, str):
                    raise bad("'extra' must be a string")
                staged.append((factor, item["userId"], number(item, "score"), extra))
        for factor, user_id, score, extra in staged:
            self.set_score(factor, user_id, score, extra)
        return {"resultCount": len(staged)}

    def _lb_scores(self, request: Request) -> dict[str, Any]:
        return self._bulk_scores(request, with_extra=False)

    def _lb_scores_extra(self, request: Request) -> dict[str, Any]:
        return self._bulk_scores(request, with_extra=True)

    def _lb_delete(self, request: Request) -> dict[str, Any]:
        users = multi(request, "userId", "userIds")
        if not users:
            raise bad("'userId' (or 'userIds') is mandatory")
        table = self.leaderboard.get(request.path_params["factor"], {})
        for user_id in users:
            table.pop(user_id, None)
        return {}
