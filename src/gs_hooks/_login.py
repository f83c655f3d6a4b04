"""The login flow: input check, maintenance gate, token, gate again, ban book, then the duplicate-login policy.

Each step may refuse with a :class:`~gs_hooks.LoginRefusedError` (whose ``reason`` names it); the order is the
one :meth:`gs_hooks.Hooks.login` documents. The input check costs no platform call; the gate is checked again
after the token because maintenance may begin while Gamebase answers. Binding applies the registry's
duplicate-login policy; older sessions it names are kicked with reason ``duplicate_login``.

Fleet mode plugs in at :attr:`LoginFlow.claims`: the player is claimed across processes after the token and around
the ban check and the bind (a ban that arrived while the claim waited on Redis is seen; a failed login gives the
claim back). Without fleet mode the step claims nothing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from ._config import Secret
from ._exceptions import BannedError, ClosedError, ConfigError, LoginRefusedError, PlatformError
from ._ids import SHOWN_LEN, shown
from ._metrics import counts_logins
from ._ratelog import RateLimitedLog
from ._services import Services
from .bans._book import BanBook
from .gamebase._maintenance import MaintenanceWatcher
from .gamebase._protocol import TokenInfo
from .gamebase._tokens import login_input
from .gamebase._verifier import TokenVerifier
from .sessions._session import Session

__all__ = ["LoginClaims", "LoginFlow", "NoClaims", "VerifierSlot"]

log = logging.getLogger("gs_hooks.login")


class VerifierSlot:
    """The token verifier the login flow asks and the ban book clears (``hooks.verifier``, replaceable).

    Args:
        verifier: the Gamebase token verifier, or None (Gamebase off).

    Attributes:
        verifier: the current verifier, settable.
    """

    def __init__(self, verifier: TokenVerifier | None) -> None:
        self.verifier = verifier

    def forget(self, user_id: str) -> None:
        """Drop the cached verifications of a (banned) player; nothing without a verifier."""
        if self.verifier is not None:
            self.verifier.forget(user_id)


class LoginClaims(Protocol):
    """The duplicate-login step across processes (fleet mode's ``FleetLogins``)."""

    def claim(self, session: Session, user: str, /) -> AbstractAsyncContextManager[None]:
        """Hold ``user`` for ``session`` around the ban check and the bind; raises ``DuplicateLoginError`` when the
        policy refuses the login; a login that fails inside gives the claim back."""
        ...


class NoClaims:
    """The claim step of one process alone: nothing to claim (the registry applies the policy at the bind)."""

    def claim(self, session: Session, user: str, /) -> AbstractAsyncContextManager[None]:
        """A no-op."""
        return contextlib.nullcontext()


class LoginFlow:
    """Logs players in against the Gamebase verifier, the maintenance gate and the ban book.

    Args:
        services: the hooks' services (registry, kicker, lifecycle).
        book: the ban book (a banned player is refused).
        verifier: holds the Gamebase token verifier (None in it: Gamebase is off, every login is a
            :class:`ConfigError`).
        maintenance: the maintenance watcher whose gate refuses logins (None: no gate).

    Attributes:
        claims: the duplicate-login step across processes (fleet mode sets it; :class:`NoClaims` otherwise).
    """

    def __init__(
        self,
        services: Services,
        *,
        book: BanBook,
        verifier: VerifierSlot,
        maintenance: MaintenanceWatcher | None,
    ) -> None:
        self.services = services
        self.book = book
        self.verifier = verifier
        self.maintenance = maintenance
        self.claims: LoginClaims = NoClaims()
        self._refusals = RateLimitedLog(log)

    @counts_logins
    async def login(self, session: Session, user_id: str | int | None, access_token: str | Secret | None) -> TokenInfo:
        """See :meth:`gs_hooks.Hooks.login`; every refusal is logged (rate-limited per reason, never the token)."""
        try:
            return await self._login(session, user_id, access_token)
        except LoginRefusedError as exc:
            self._log_failure(logging.INFO, session, user_id, exc.reason, exc)
            raise
        except PlatformError as exc:
            self._log_failure(logging.WARNING, session, user_id, "platform", exc)
            raise

    def verify_token(self, user_id: str | int | None, access_token: str | Secret | None) -> Awaitable[TokenInfo]:
        """See :meth:`gs_hooks.Hooks.verify_token`, which awaits what this returns: the checks run here, then the
        verifier's own coroutine is handed back (not a coroutine itself: one frame less held by each login waiting
        in a storm's backlog, see :class:`~gs_hooks.gamebase._tokens.Flight`)."""
        verifier = self._open_verifier()
        user, token = login_input(user_id, access_token)  # refused here, before any platform call
        return verifier.verify(user, token)

    async def _login(self, session: Session, user_id: str | int | None, access_token: str | Secret | None) -> TokenInfo:
        verifier = self._open_verifier()
        user, token = login_input(user_id, access_token)  # refused here, before any platform call
        self._gate()
        info = await verifier.verify(user, token)
        self._gate()  # maintenance may have begun while we waited for Gamebase
        async with self.claims.claim(session, user):  # fleet mode: the player across processes (else a no-op)
            self._check_ban(user)  # after the claim: a ban that arrived while it waited on Redis is seen
            await self.bind(session, user)
        return info

    def _open_verifier(self) -> TokenVerifier:
        if self.services.lifecycle.closed:
            raise ClosedError("hooks are closed")
        verifier = self.verifier.verifier
        if verifier is None:
            raise ConfigError(
                "GS_HOOKS_GAMEBASE_URL", "Gamebase is not configured: set the Gamebase URL to verify tokens"
            )
        return verifier

    def _gate(self) -> None:
        watcher = self.maintenance
        if watcher is not None:
            error = watcher.gate_error()
            if error is not None:
                raise error

    def _check_ban(self, user: str) -> None:
        ban = self.book.active_ban(user)
        if ban is not None:
            until = f"until {ban.ends_at.isoformat()}" if ban.ends_at is not None else "permanently"
            raise BannedError(f"player {user!r} is banned {until}", ends_at=ban.ends_at, source=ban.source)

    async def bind(self, session: Session, user: str) -> None:
        """Bind the player to the live session under the duplicate-login policy; kick the older sessions it names.

        Raises:
            LoginRefusedError: the session closed while the login ran.
            DuplicateLoginError: policy ``refuse_newer`` and the player is logged in elsewhere.
        """
        registry = self.services.registry
        if session not in registry:
            raise LoginRefusedError(f"cannot log in player {user!r}: the session is closed (the client went away)")
        try:
            older = registry.bind_player_nowait(session, user)
        except ValueError as exc:
            raise LoginRefusedError(f"cannot log in player {user!r}: {exc}") from exc
        if older:  # bounded: the kick grace at most, whatever the older sessions' peers do
            await self.services.kicker.kick_sessions(tuple(older), "duplicate_login", "logged in from another session")

    def _log_failure(
        self, level: int, session: Session, user_id: object, reason: str, exc: LoginRefusedError | PlatformError
    ) -> None:
        """One line on ``gs_hooks.login`` per refusal (rate-limited per reason); never the token. The client's user
        id is shown cut (:func:`~gs_hooks._ids.shown`): a line stays short whatever the client sent."""
        self._refusals.log(
            level,
            reason,
            "login refused: player %s on server %r (session %d): %s: %s",
            shown(user_id),
            session.server_id,
            session.id,
            reason,
            exc.message,
            extra={
                "player": user_id[:SHOWN_LEN] if isinstance(user_id, str) else shown(user_id),  # bounded
                "server_id": session.server_id,
                "reason": reason,
                "result_code": getattr(exc, "code", None),
            },
        )

    def flush(self) -> None:
        """Log the counts of refusals the rate limit held back (at shutdown)."""
        self._refusals.flush()
