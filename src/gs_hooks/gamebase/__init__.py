"""Gamebase: the server-API client, the login-token verifier and the maintenance watcher."""

from ._client import GamebaseClient
from ._maintenance import MaintenanceChange, MaintenanceWatcher, NoticeRequest, OnMaintenance, OnNotice
from ._maintenance_state import MaintenanceDetails, MaintenanceState
from ._models import (
    AuthInfo,
    BanPage,
    BanRecord,
    GamebaseResult,
    IdpInfo,
    Member,
    MemberDetail,
    MemberInfo,
    MemberList,
    PagingInfo,
    SimpleLaunching,
    TokenInfo,
    UnderMaintenance,
    UserIds,
)
from ._verifier import TokenVerifier

__all__ = [
    "AuthInfo",
    "BanPage",
    "BanRecord",
    "GamebaseClient",
    "GamebaseResult",
    "IdpInfo",
    "MaintenanceChange",
    "MaintenanceDetails",
    "MaintenanceState",
    "MaintenanceWatcher",
    "Member",
    "MemberDetail",
    "MemberInfo",
    "MemberList",
    "NoticeRequest",
    "OnMaintenance",
    "OnNotice",
    "PagingInfo",
    "SimpleLaunching",
    "TokenInfo",
    "TokenVerifier",
    "UnderMaintenance",
    "UserIds",
]
