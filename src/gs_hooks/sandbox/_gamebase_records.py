"""The Gamebase emulator's records: members, tokens, bans, maintenance windows, purchases (plain data)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .._clock import to_timestamp
from .._exceptions import GsHooksError

__all__ = [
    "BAN_TYPES",
    "LAUNCHING_STATUS_CODES",
    "MAINTENANCE_TYPES",
    "MEMBER_VALID_STATES",
    "BanRecord",
    "GamebaseSimError",
    "MaintenanceWindow",
    "SimAuth",
    "SimMember",
    "SimPurchase",
    "SimToken",
    "timestamp_of",
]

MEMBER_VALID_STATES = frozenset({"Y", "D", "B", "M", "T", "P"})
"""Member states: Y normal, D withdrawn, B banned, M missing account, T and P ban-suspended."""

LAUNCHING_STATUS_CODES = frozenset({200, 201, 300, 302})
"""Launching statuses that can be scripted; 303 (maintenance) comes from a maintenance window."""

MAINTENANCE_TYPES = frozenset({"APP", "SYSTEM"})
BAN_TYPES = frozenset({"TEMPORARY", "PERMANENT"})


class GamebaseSimError(GsHooksError, ValueError):
    """The Gamebase emulator was scripted with something it cannot represent (bad state, unknown id)."""


def timestamp_of(moment: datetime | float | None, default: float) -> float:
    """Epoch seconds of ``moment`` (``default`` when None); a naive datetime is a :class:`GamebaseSimError`."""
    if moment is None:
        return default
    try:
        return to_timestamp(moment)
    except ValueError as exc:
        raise GamebaseSimError(str(exc)) from exc


@dataclass(slots=True)
class SimAuth:
    """One IdP mapping of a member (an ``authList`` entry)."""

    user_id: str
    auth_system: str
    idp_code: str
    auth_key: str
    reg_ts: float


@dataclass(slots=True)
class SimMember:
    """A Gamebase member as the emulator stores it (``valid`` is the scripted state, see the module docstring)."""

    user_id: str
    valid: str
    reg_ts: float
    last_login_ts: float | None = None
    auth: list[SimAuth] = field(default_factory=list)
    info: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class SimToken:
    """An issued access token."""

    user_id: str
    issued_ts: float
    expires_ts: float | None
    idp_code: str
    idp_id: str
    revoked: bool = False


@dataclass(slots=True)
class BanRecord:
    """One ban history row (release fields filled once released)."""

    seq: int
    user_id: str
    ban_type: str
    begin_ts: float
    end_ts: float | None
    ban_caller: str = "CONSOLE"
    ban_reason: str = ""
    message: str = ""
    name: str = ""
    reg_user: str = ""
    template_code: int = 0
    flags: str = ""
    release_caller: str | None = None
    release_ts: float | None = None
    release_reason: str | None = None
    release_user: str | None = None

    def active_at(self, now: float) -> bool:
        """Whether the ban is in force at ``now``."""
        if self.release_ts is not None:
            return False
        return self.begin_ts <= now and (self.end_ts is None or now < self.end_ts)


@dataclass(slots=True)
class MaintenanceWindow:
    """A maintenance window set in the console (``[begin, end)``)."""

    window_id: int
    type_code: str
    begin_ts: float
    end_ts: float
    message: str
    url: str | None
    reason: str


@dataclass(slots=True)
class SimPurchase:
    """A purchase (IAP), consumable until consumed."""

    payment_seq: str
    item_seq: int
    user_id: str
    purchase_token: str
    market_id: str
    price: float
    currency: str
    purchase_ts: float
    consumed: bool = False
