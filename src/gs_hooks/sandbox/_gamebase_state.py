"""The Gamebase emulator's state: members, tokens, bans, maintenance, launching, IAP and leaderboard data.

Sync core of :class:`gs_hooks.sandbox._gamebase.GamebaseSim`: plain data and ``*``-style mutators, no IO. Time is
read from the injected clock on every call, so a :class:`gs_hooks.FakeClock` drives expiry, ban ends and
maintenance windows without anyone sleeping.

Semantics chosen where the document is open (see also the module docstring of ``_gamebase``):

* A member's effective ``valid`` is its scripted state, except that a scripted ``"Y"`` reads ``"B"`` while the
  member has an active ban (``begin <= now < end``, not released). A ban therefore ends by itself at its end
  date, and :meth:`GamebaseState.release_ban` makes the member ``"Y"`` again. ``D``/``M``/``T``/``P`` set with
  :meth:`GamebaseState.set_member_valid` win over bans.
* Ban history rows carry a ``seq`` that grows by one per ban; queries order by ``seq`` so new bans land on the
  last page and paging stays stable while bans are added. Release history orders by release order.
* ``lastLoginDate`` is the time of the member's latest :meth:`GamebaseState.issue_token` (absent before one).
"""

from __future__ import annotations

import itertools
import secrets
from datetime import datetime
from typing import Any

from .._clock import Clock, SystemClock
from .._config import Secret
from ._gamebase_records import (
    BAN_TYPES,
    LAUNCHING_STATUS_CODES,
    MAINTENANCE_TYPES,
    MEMBER_VALID_STATES,
    BanRecord,
    GamebaseSimError,
    MaintenanceWindow,
    SimAuth,
    SimMember,
    SimPurchase,
    SimToken,
    timestamp_of,
)

__all__ = [
    "LAUNCHING_STATUS_CODES",
    "MEMBER_VALID_STATES",
    "BanRecord",
    "GamebaseSimError",
    "GamebaseState",
    "MaintenanceWindow",
    "SimAuth",
    "SimMember",
    "SimPurchase",
    "SimToken",
]


class GamebaseState:
    """Scriptable state of the Gamebase emulator (sync; every method works without an event loop).

    Args:
        app_id: the app id (NHN Cloud project id) requests must name.
        secret_key: the ``X-Secret-Key`` requests must carry (kept as a :class:`gs_hooks.Secret`).
        clock: time source (a :class:`gs_hooks.FakeClock` in tests).
    """

    def __init__(self, *, app_id: str, secret_key: str | Secret, clock: Clock | None = None) -> None:
        self.app_id = app_id
        self.secret_key: Secret = secret_key if isinstance(secret_key, Secret) else Secret(secret_key)
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.reset_nowait()

    def reset_nowait(self) -> None:
        """Forget every scripted thing (members, tokens, bans, maintenance, launching, IAP, leaderboard); the app id,
        secret key and clock stay."""
        self.product_enabled = True
        self.members: dict[str, SimMember] = {}
        self.tokens: dict[str, SimToken] = {}
        self.bans: list[BanRecord] = []
        self.releases: list[BanRecord] = []
        self.maintenances: list[MaintenanceWindow] = []
        self.launching_status: tuple[int, str] = (200, "OK")
        self.launching_by_version: dict[str, tuple[int, str]] = {}
        self.launching_app: dict[str, Any] = {
            "accessInfo": {"serverAddress": "127.0.0.1:7000", "csInfo": "sandbox customer center"},
            "relatedUrls": {
                "termsUrl": "https://sandbox.invalid/terms",
                "csUrl": "https://sandbox.invalid/cs",
                "punishRuleUrl": "https://sandbox.invalid/punish",
                "personalInfoCollectionUrl": "https://sandbox.invalid/privacy",
            },
            "install": {"url": "https://sandbox.invalid/install"},
        }
        self.iap_items: dict[str, dict[int, dict[str, Any]]] = {}
        self.purchases: dict[str, SimPurchase] = {}
        self.leaderboard: dict[str, dict[str, tuple[float, str, float]]] = {}
        self._window_ids = itertools.count(1)
        self._payment_ids = itertools.count(1)

    # -- members ------------------------------------------------------------------------------------------

    def add_member(
        self,
        user_id: str,
        valid: str = "Y",
        *,
        idp: str = "guest",
        auth_key: str | None = None,
        auth_system: str = "gbid",
        info: dict[str, str] | None = None,
        reg_date: datetime | float | None = None,
    ) -> SimMember:
        """Create (or replace) a member with one IdP mapping.

        Args:
            user_id: the Gamebase user id.
            valid: scripted state, one of Y D B M T P.
            idp: IdP code of the first mapping (``guest``, ``google``...).
            auth_key: the mapping's auth key (default ``"<idp>-<user_id>"``).
            auth_system: the mapping's auth system (Gamebase's own is ``gbid``).
            info: ``memberInfo`` fields (device, OS...); defaults are filled in.
            reg_date: account creation time (default now).

        Returns:
            The stored member.
        """
        self._check_valid(valid)
        now = self.clock.time()
        reg = timestamp_of(reg_date, now)
        member = SimMember(user_id=user_id, valid=valid, reg_ts=reg)
        member.auth.append(SimAuth(user_id, auth_system, idp, auth_key or f"{idp}-{user_id}", reg))
        member.info = {
            "deviceCountryCode": "KR",
            "usimCountryCode": "KR",
            "language": "ko",
            "osCode": "AOS",
            "telecom": "SKT",
            "storeCode": "GG",
            "network": "WIFI",
            "deviceModel": "SM-S918N",
            "osVersion": "14",
            "sdkVersion": "2.60.0",
            "clientVersion": "1.0.0",
            **(info or {}),
        }
        self.members[user_id] = member
        return member

    def link_idp(self, user_id: str, idp: str, *, auth_key: str | None = None, auth_system: str = "gbid") -> None:
        """Add an IdP mapping to an existing member."""
        member = self._member(user_id)
        member.auth.append(SimAuth(user_id, auth_system, idp, auth_key or f"{idp}-{user_id}", self.clock.time()))

    def set_member_valid(self, user_id: str, valid: str) -> None:
        """Script a member's state (Y D B M T P)."""
        self._check_valid(valid)
        self._member(user_id).valid = valid

    def member_valid(self, user_id: str) -> str | None:
        """The member's effective ``valid`` now (None for an unknown member)."""
        member = self.members.get(user_id)
        if member is None:
            return None
        if member.valid == "Y" and self.active_ban(user_id) is not None:
            return "B"
        return member.valid

    def _member(self, user_id: str) -> SimMember:
        member = self.members.get(user_id)
        if member is None:
            raise GamebaseSimError(f"no member {user_id!r}: add it with add_member() first")
        return member

    @staticmethod
    def _check_valid(valid: str) -> None:
        if valid not in MEMBER_VALID_STATES:
            raise GamebaseSimError(f"member valid state must be one of {sorted(MEMBER_VALID_STATES)}, got {valid!r}")

    # -- tokens -------------------------------------------------------------------------------------------

    def issue_token(self, user_id: str, *, ttl: float | None = None, idp: str | None = None) -> str:
        """Issue a new access token for ``user_id`` (a login). Unknown users get a token too (auth says -4010204).

        Args:
            user_id: the user the token is for.
            ttl: seconds until the token expires (None: never).
            idp: the IdP the login used (default: the member's first mapping, else ``guest``).

        Returns:
            The token (random, unique).
        """
        if ttl is not None and ttl <= 0:
            raise GamebaseSimError(f"token ttl must be positive seconds or None, got {ttl!r}")
        now = self.clock.time()
        member = self.members.get(user_id)
        idp_code, idp_id = idp or "guest", f"{idp or 'guest'}-{user_id}"
        if member is not None:
            member.last_login_ts = now
            mapping = next((a for a in member.auth if idp is None or a.idp_code == idp), None)
            if mapping is not None:
                idp_code, idp_id = mapping.idp_code, mapping.auth_key
        while True:
            token = secrets.token_urlsafe(24)
            if token not in self.tokens:
                break
        self.tokens[token] = SimToken(user_id, now, None if ttl is None else now + ttl, idp_code, idp_id)
        return token

    def expire_token(self, token: str) -> None:
        """Make a token expired from now on (auth answers -4010208)."""
        self._token(token).expires_ts = self.clock.time()

    def revoke_token(self, token: str) -> None:
        """Revoke a token (auth answers -4010203, like a token never issued)."""
        self._token(token).revoked = True

    def _token(self, token: str) -> SimToken:
        record = self.tokens.get(token)
        if record is None:
            raise GamebaseSimError("no such token was issued by this emulator")
        return record

    # -- bans ---------------------------------------------------------------------------------------------

    def add_ban(
        self,
        user_id: str,
        begin: datetime | float | None = None,
        end: datetime | float | None = None,
        ban_type: str | None = None,
        message: str = "",
        *,
        reason: str = "",
        caller: str = "CONSOLE",
        name: str = "",
        reg_user: str = "sandbox",
        template_code: int = 0,
        flags: str = "",
    ) -> BanRecord:
        """Ban a user: records a ban history row with the next ``seq``.

        Args:
            user_id: the banned user (need not be a member: the row is recorded either way).
            begin: ban start (default now).
            end: ban end (None: permanent).
            ban_type: TEMPORARY or PERMANENT (default from ``end``).
            message / reason / caller / name / reg_user / template_code / flags: the row's other fields.

        Returns:
            The history row.
        """
        now = self.clock.time()
        begin_ts = timestamp_of(begin, now)
        end_ts = None if end is None else timestamp_of(end, now)
        if end_ts is not None and end_ts <= begin_ts:
            raise GamebaseSimError("ban end must be after its begin")
        kind = ban_type or ("PERMANENT" if end_ts is None else "TEMPORARY")
        if kind not in BAN_TYPES:
            raise GamebaseSimError(f"ban_type must be TEMPORARY or PERMANENT, got {kind!r}")
        record = BanRecord(
            seq=len(self.bans) + 1,
            user_id=user_id,
            ban_type=kind,
            begin_ts=begin_ts,
            end_ts=end_ts,
            ban_caller=caller,
            ban_reason=reason,
            message=message,
            name=name,
            reg_user=reg_user,
            template_code=template_code,
            flags=flags,
        )
        self.bans.append(record)
        return record

    def active_ban(self, user_id: str) -> BanRecord | None:
        """The user's ban in force now, if any."""
        now = self.clock.time()
        for record in reversed(self.bans):
            if record.user_id == user_id and record.active_at(now):
                return record
        return None

    def release_ban(
        self, user_id: str, *, reason: str = "", caller: str = "CONSOLE", release_user: str = "sandbox"
    ) -> list[BanRecord]:
        """Release the user's unreleased bans (a release history row each); the member reads ``"Y"`` again.

        Returns:
            The released rows.

        Raises:
            GamebaseSimError: the user has no unreleased ban that has not ended.
        """
        now = self.clock.time()
        released = [
            r
            for r in self.bans
            if r.user_id == user_id and r.release_ts is None and (r.end_ts is None or now < r.end_ts)
        ]
        if not released:
            raise GamebaseSimError(f"user {user_id!r} has no ban to release")
        for record in released:
            record.release_ts = now
            record.release_caller = caller
            record.release_reason = reason
            record.release_user = release_user
            self.releases.append(record)
        member = self.members.get(user_id)
        if member is not None and member.valid == "B":
            member.valid = "Y"
        return released

    # -- maintenance and launching ------------------------------------------------------------------------

    def set_maintenance(
        self,
        begin: datetime | float,
        end: datetime | float,
        message: str = "Under maintenance",
        url: str | None = None,
        type_code: str = "APP",
        reason: str = "",
    ) -> MaintenanceWindow:
        """Set (announce) a maintenance window ``[begin, end)``; several may be set.

        Returns:
            The window (its ``window_id`` clears it alone).
        """
        begin_ts, end_ts = timestamp_of(begin, 0.0), timestamp_of(end, 0.0)
        if end_ts <= begin_ts:
            raise GamebaseSimError("maintenance end must be after its begin")
        if type_code not in MAINTENANCE_TYPES:
            raise GamebaseSimError(f"maintenance type_code must be APP or SYSTEM, got {type_code!r}")
        window = MaintenanceWindow(next(self._window_ids), type_code, begin_ts, end_ts, message, url, reason)
        self.maintenances.append(window)
        self.maintenances.sort(key=lambda w: (w.begin_ts, w.window_id))
        return window

    def clear_maintenance(self, window_id: int | None = None) -> None:
        """Remove every maintenance window, or only the one with ``window_id``."""
        if window_id is None:
            self.maintenances.clear()
            return
        before = len(self.maintenances)
        self.maintenances = [w for w in self.maintenances if w.window_id != window_id]
        if len(self.maintenances) == before:
            raise GamebaseSimError(f"no maintenance window {window_id}")

    def announced_maintenances(self) -> list[MaintenanceWindow]:
        """Windows set and not yet over (current or upcoming), by begin time."""
        now = self.clock.time()
        return [w for w in self.maintenances if now < w.end_ts]

    def current_maintenance(self) -> MaintenanceWindow | None:
        """The window in effect now, if any."""
        now = self.clock.time()
        return next((w for w in self.maintenances if w.begin_ts <= now < w.end_ts), None)

    def set_launching_status(self, code: int, message: str = "", *, client_version: str | None = None) -> None:
        """Script the launching status (200 OK, 201 update recommended, 300 update required, 302 terminated).

        303 is reported while a maintenance window is in effect; script it with :meth:`set_maintenance`.

        Args:
            code: the status code.
            message: the status message.
            client_version: only for this client version (default: every version without its own status).
        """
        if code not in LAUNCHING_STATUS_CODES:
            raise GamebaseSimError(
                f"launching status must be one of {sorted(LAUNCHING_STATUS_CODES)}; 303 comes from set_maintenance()"
            )
        value = (code, message or {200: "OK", 201: "Update recommended", 300: "Update required"}.get(code, ""))
        if client_version is None:
            self.launching_status = value
        else:
            self.launching_by_version[client_version] = value

    # -- IAP ----------------------------------------------------------------------------------------------

    def add_iap_item(
        self, app_seq: str, item_seq: int, name: str, *, market_item_id: str = "", usage: str = "CONSUMABLE"
    ) -> None:
        """Register an item of the IAP app ``app_seq``."""
        self.iap_items.setdefault(str(app_seq), {})[item_seq] = {
            "itemSeq": item_seq,
            "itemName": name,
            "marketItemId": market_item_id or f"item.{item_seq}",
            "usingStatus": "USE",
            "usage": usage,
            "regYmdt": self.clock.now().isoformat(timespec="seconds"),
        }

    def add_purchase(
        self,
        user_id: str,
        item_seq: int,
        *,
        market_id: str = "GG",
        price: float = 1.0,
        currency: str = "USD",
    ) -> SimPurchase:
        """Record an unconsumed purchase of ``item_seq`` by ``user_id``.

        Returns:
            The purchase (its ``payment_seq`` and ``purchase_token`` are what a consume call names).
        """
        payment_seq = f"2026{next(self._payment_ids):010d}"
        purchase = SimPurchase(
            payment_seq=payment_seq,
            item_seq=item_seq,
            user_id=user_id,
            purchase_token=secrets.token_urlsafe(16),
            market_id=market_id,
            price=price,
            currency=currency,
            purchase_ts=self.clock.time(),
        )
        self.purchases[payment_seq] = purchase
        return purchase

    # -- leaderboard --------------------------------------------------------------------------------------

    def set_score(self, factor: str, user_id: str, score: float, extra: str = "") -> None:
        """Register a user's score in a leaderboard factor (replaces the previous one)."""
        self.leaderboard.setdefault(str(factor), {})[user_id] = (float(score), extra, self.clock.time())

    def ranking(self, factor: str) -> list[tuple[str, float, str, float, int]]:
        """The factor's entries, best first, as (user id, score, extra, time, rank); ties share a rank."""
        entries = sorted(self.leaderboard.get(str(factor), {}).items(), key=lambda kv: (-kv[1][0], kv[1][2], kv[0]))
        out: list[tuple[str, float, str, float, int]] = []
        for position, (user_id, (score, extra, when)) in enumerate(entries, start=1):
            rank = out[-1][4] if out and out[-1][1] == score else position
            out.append((user_id, score, extra, when, rank))
        return out
