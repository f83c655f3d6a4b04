"""The Gamebase client's calls to the IAP and Leaderboard wrappers (answers kept as mappings, header checked)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._endpoints import (
    IAP_CONSUMABLES,
    IAP_CONSUME,
    IAP_ITEMS,
    LB_DELETE_USERS,
    LB_GET_USERS,
    LB_SCORE,
    LB_SCORE_WITH_EXTRA,
    LB_SCORES,
    LB_SCORES_WITH_EXTRA,
    LB_USER_COUNT,
    LB_USERS,
)
from ._models import GamebaseResult
from ._protocol import path_segment as _seg
from ._request_core import RequestCore

__all__ = ["WrapperCalls"]


class WrapperCalls(RequestCore):
    """IAP and Leaderboard calls of :class:`~gs_hooks.gamebase.GamebaseClient`."""

    # -- IAP --------------------------------------------------------------------------------------------------------

    async def iap_consume(
        self,
        payment_seq: str,
        item_seq: str | int,
        body: Mapping[str, Any] | None = None,
        *,
        transaction_id: str | None = None,
    ) -> GamebaseResult:
        """IAP Consume Items (``/inapp/v3/consume/{paymentSeq}/items/{itemSeq}``)."""
        segments = {"paymentSeq": _seg(payment_seq, "payment seq"), "itemSeq": _seg(item_seq, "item seq")}
        return await self._wrapped(
            "iap_consume", IAP_CONSUME, segments=segments, body=dict(body or {}), transaction_id=transaction_id
        )

    async def iap_items(self, app_seq: str | int, *, transaction_id: str | None = None) -> GamebaseResult:
        """IAP Retrieve Items of an app (``/standard/item/list/{appSeq}``)."""
        segments = {"appSeq": _seg(app_seq, "app seq")}
        return await self._wrapped("iap_items", IAP_ITEMS, segments=segments, transaction_id=transaction_id)

    async def iap_consumables(self, body: Mapping[str, Any], *, transaction_id: str | None = None) -> GamebaseResult:
        """IAP Retrieve List of Non-consumed Purchases (``/standard/inapp/v1/consumable/list``)."""
        return await self._wrapped("iap_consumables", IAP_CONSUMABLES, body=dict(body), transaction_id=transaction_id)

    # -- Leaderboard ------------------------------------------------------------------------------------------------

    async def leaderboard_user_count(self, factor: str | int, *, transaction_id: str | None = None) -> GamebaseResult:
        """Leaderboard: number of users registered at a factor."""
        segments = {"factor": _seg(factor, "factor")}
        return await self._wrapped(
            "leaderboard_user_count", LB_USER_COUNT, segments=segments, transaction_id=transaction_id
        )

    async def leaderboard_user(
        self, factor: str | int, user_id: str, *, transaction_id: str | None = None
    ) -> GamebaseResult:
        """Leaderboard: score and rank of one user."""
        segments = {"factor": _seg(factor, "factor")}
        return await self._wrapped(
            "leaderboard_user", LB_USERS, segments=segments, params={"userId": user_id}, transaction_id=transaction_id
        )

    async def leaderboard_users(self, body: Mapping[str, Any], *, transaction_id: str | None = None) -> GamebaseResult:
        """Leaderboard: scores and ranks of several users (``get-users``)."""
        return await self._wrapped("leaderboard_users", LB_GET_USERS, body=dict(body), transaction_id=transaction_id)

    async def leaderboard_range(
        self, factor: str | int, start: int, size: int, *, transaction_id: str | None = None
    ) -> GamebaseResult:
        """Leaderboard: the scores and ranks of a range (``start`` is 1-based)."""
        segments = {"factor": _seg(factor, "factor")}
        params = {"start": str(start), "size": str(size)}
        return await self._wrapped(
            "leaderboard_range", LB_USERS, segments=segments, params=params, transaction_id=transaction_id
        )

    async def leaderboard_set_score(
        self, factor: str | int, user_id: str, body: Mapping[str, Any], *, transaction_id: str | None = None
    ) -> GamebaseResult:
        """Leaderboard: register the score of one user."""
        segments = {"factor": _seg(factor, "factor"), "userId": _seg(user_id, "user id")}
        return await self._wrapped(
            "leaderboard_set_score", LB_SCORE, segments=segments, body=dict(body), transaction_id=transaction_id
        )

    async def leaderboard_set_score_with_extra(
        self, factor: str | int, user_id: str, body: Mapping[str, Any], *, transaction_id: str | None = None
    ) -> GamebaseResult:
        """Leaderboard: register the score and extra data of one user."""
        segments = {"factor": _seg(factor, "factor"), "userId": _seg(user_id, "user id")}
        return await self._wrapped(
            "leaderboard_set_score_with_extra",
            LB_SCORE_WITH_EXTRA,
            segments=segments,
            body=dict(body),
            transaction_id=transaction_id,
        )

    async def leaderboard_set_scores(
        self, body: Mapping[str, Any], *, transaction_id: str | None = None
    ) -> GamebaseResult:
        """Leaderboard: register the scores of several users."""
        return await self._wrapped("leaderboard_set_scores", LB_SCORES, body=dict(body), transaction_id=transaction_id)

    async def leaderboard_set_scores_with_extra(
        self, body: Mapping[str, Any], *, transaction_id: str | None = None
    ) -> GamebaseResult:
        """Leaderboard: register the scores and extra data of several users."""
        return await self._wrapped(
            "leaderboard_set_scores_with_extra", LB_SCORES_WITH_EXTRA, body=dict(body), transaction_id=transaction_id
        )

    async def leaderboard_delete_user(
        self, factor: str | int, user_id: str, *, transaction_id: str | None = None
    ) -> GamebaseResult:
        """Leaderboard: delete the leaderboard information of one user at a factor."""
        segments = {"factor": _seg(factor, "factor")}
        return await self._wrapped(
            "leaderboard_delete_user",
            LB_DELETE_USERS,
            segments=segments,
            params={"userId": user_id},
            transaction_id=transaction_id,
        )
