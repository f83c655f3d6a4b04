"""The Gamebase server API's endpoints, written once: the client builds its URLs from them, the sandbox serves them.

Pure data (no IO). Every endpoint lives at ``/{service}/{version}/apps/{appId}/{path}``: the service is the API
family (``tcgb-gateway`` for token authentication, ``tcgb-launching``, ``tcgb-member``, and the IAP and
Leaderboard wrappers ``tcgb-inapp`` and ``tcgb-leaderboard``), the version one of :data:`VERSIONS`. ``{name}``
segments of a path take one percent-encoded path segment each (see :func:`._protocol.path_segment`).
:data:`ENDPOINTS` lists them with more specific paths before the ones a ``{userId}`` segment would also match.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BANS",
    "BAN_RELEASES",
    "ENDPOINTS",
    "IAP_CONSUMABLES",
    "IAP_CONSUME",
    "IAP_ITEMS",
    "IDP",
    "LAUNCHING",
    "LB_DELETE_USERS",
    "LB_GET_USERS",
    "LB_SCORE",
    "LB_SCORES",
    "LB_SCORES_WITH_EXTRA",
    "LB_SCORE_WITH_EXTRA",
    "LB_USERS",
    "LB_USER_COUNT",
    "MAINTENANCE",
    "MEMBER",
    "MEMBERS",
    "TOKEN",
    "USER_IDS",
    "VERSIONS",
    "Endpoint",
]

VERSIONS = ("v1.0", "v1.3")
"""The path versions: our document's (the client's default) and the vendor's current guide's."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One endpoint of the Gamebase server API.

    Attributes:
        name: its name in the sandbox (request counts, injected failures), e.g. ``gamebase.token``.
        service: the API family, the first path segment (``tcgb-member``...).
        method: the HTTP method.
        path: the path below ``apps/{appId}/``, with ``{name}`` segments.
    """

    name: str
    service: str
    method: str
    path: str

    def pattern(self, version: str) -> str:
        """The full path pattern at ``version`` (which may itself be a ``{segment}``), e.g. for a router."""
        return f"/{self.service}/{version}/apps/{{appId}}/{self.path}"

    def url(self, base_url: str, version: str, app_id: str, **segments: str) -> str:
        """The URL of this endpoint; ``app_id`` and ``segments`` must already be path segments (encoded)."""
        path = self.path.format(**segments) if segments else self.path
        return f"{base_url}/{self.service}/{version}/apps/{app_id}/{path}"


TOKEN = Endpoint("gamebase.token", "tcgb-gateway", "GET", "members/{userId}/tokens/{accessToken}")
LAUNCHING = Endpoint("gamebase.launching", "tcgb-launching", "GET", "launching/simple")
MAINTENANCE = Endpoint("gamebase.maintenance", "tcgb-launching", "GET", "maintenances/under-maintenance")
BANS = Endpoint("gamebase.bans", "tcgb-member", "GET", "members/bans")
BAN_RELEASES = Endpoint("gamebase.ban_releases", "tcgb-member", "GET", "members/bans/release")
USER_IDS = Endpoint("gamebase.userids", "tcgb-member", "POST", "members/userIds/authKeys")
MEMBER = Endpoint("gamebase.member", "tcgb-member", "GET", "members/{userId}")
MEMBERS = Endpoint("gamebase.members", "tcgb-member", "POST", "members")
IDP = Endpoint("gamebase.idp", "tcgb-member", "POST", "auth/authKeys")
IAP_CONSUME = Endpoint("gamebase.iap.consume", "tcgb-inapp", "POST", "consume/{paymentSeq}/items/{itemSeq}")
IAP_ITEMS = Endpoint("gamebase.iap.items", "tcgb-inapp", "GET", "item/list/{appSeq}")
IAP_CONSUMABLES = Endpoint("gamebase.iap.consumables", "tcgb-inapp", "POST", "consumable/list")
LB_USER_COUNT = Endpoint("gamebase.leaderboard.user_count", "tcgb-leaderboard", "GET", "factors/{factor}/user-count")
LB_USERS = Endpoint("gamebase.leaderboard.users", "tcgb-leaderboard", "GET", "factors/{factor}/users")
LB_GET_USERS = Endpoint("gamebase.leaderboard.get_users", "tcgb-leaderboard", "POST", "get-users")
LB_SCORE = Endpoint("gamebase.leaderboard.score", "tcgb-leaderboard", "POST", "factors/{factor}/users/{userId}/score")
LB_SCORE_WITH_EXTRA = Endpoint(
    "gamebase.leaderboard.score_with_extra",
    "tcgb-leaderboard",
    "POST",
    "factors/{factor}/users/{userId}/score-with-extra",
)
LB_SCORES = Endpoint("gamebase.leaderboard.scores", "tcgb-leaderboard", "POST", "scores")
LB_SCORES_WITH_EXTRA = Endpoint(
    "gamebase.leaderboard.scores_with_extra", "tcgb-leaderboard", "POST", "scores-with-extra"
)
LB_DELETE_USERS = Endpoint("gamebase.leaderboard.delete_users", "tcgb-leaderboard", "DELETE", "factors/{factor}/users")

ENDPOINTS: tuple[Endpoint, ...] = (
    TOKEN,
    LAUNCHING,
    MAINTENANCE,
    BANS,
    BAN_RELEASES,
    USER_IDS,
    MEMBER,
    MEMBERS,
    IDP,
    IAP_CONSUME,
    IAP_ITEMS,
    IAP_CONSUMABLES,
    LB_USER_COUNT,
    LB_USERS,
    LB_GET_USERS,
    LB_SCORE,
    LB_SCORE_WITH_EXTRA,
    LB_SCORES,
    LB_SCORES_WITH_EXTRA,
    LB_DELETE_USERS,
)
"""Every endpoint, in the order a router must try them."""
