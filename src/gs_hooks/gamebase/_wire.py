"""Wiring Gamebase into :class:`~gs_hooks.Hooks`: the client, the verifier, the watcher, and the login flow."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .._config import Secret
from .._exceptions import BannedError, ConfigError, LoginRefusedError
from ._client import GamebaseClient
from ._maintenance import MaintenanceWatcher
from ._protocol import TokenInfo
from ._verifier import TokenVerifier, login_input

if TYPE_CHECKING:
    from .._setup import Hooks
    from ..sessions._registry import Session

__all__ = ["login", "verify_token", "wire_gamebase"]

log = logging.getLogger("gs_hooks.gamebase")


def wire_gamebase(hooks: Hooks) -> None:
    """Create the Gamebase client, verifier and (when its period is > 0) the maintenance watcher."""
    g = hooks.config.gamebase
    if g.url is None:
        return
    assert g.secret_key is not None  # the config validation requires it with a URL
    client = GamebaseClient(
        hooks.http,
        base_url=g.url,
        app_id=g.app_id,
        secret_key=g.secret_key,
        api_version=g.api_version,
        timeout_s=g.timeout_s,
        retries=g.retries,
        clock=hooks.clock,
    )
    hooks.gamebase = client
    verifier = TokenVerifier(
        client,
        clock=hooks.clock,
        concurrency=g.verify_concurrency,
        ttl_s=g.token_cache_ttl_s,
        negative_ttl_s=g.negative_cache_ttl_s,
        failure_policy=g.failure_policy,
    )
    hooks.verifier = verifier
    hooks.add_component(verifier)
    if g.maintenance_poll_s > 0:
        launching = None
        if g.launching_os_code and g.launching_client_version:
            launching = (g.launching_os_code, g.launching_client_version)
        watcher = MaintenanceWatcher(
            client,
            hooks,
            clock=hooks.clock,
            poll_s=g.maintenance_poll_s,
            gate=g.maintenance_gate,
            kick=g.maintenance_kick,
            warn_s=g.maintenance_warn_s,
            launching=launching,
            backoff_max_s=g.poll_backoff_max_s,
        )
        hooks.maintenance = watcher
        hooks.add_component(watcher)


def _verifier(hooks: Hooks) -> TokenVerifier:
    verifier = hooks.verifier
    if verifier is None:
        raise ConfigError("GS_HOOKS_GAMEBASE_URL", "Gamebase is not configured: set the Gamebase URL to verify tokens")
    assert isinstance(verifier, TokenVerifier)
    return verifier


def _gate(hooks: Hooks) -> None:
    watcher = hooks.maintenance
    if watcher is not None:
        error = watcher.gate_error()
        if error is not None:
            raise error


async def verify_token(hooks: Hooks, user_id: str | int | None, access_token: str | Secret | None) -> TokenInfo:
    """See :meth:`gs_hooks.Hooks.verify_token`."""
    hooks._check_open()
    verifier = _verifier(hooks)
    user, token = login_input(user_id, access_token)  # refused here, before any platform call
    return await verifier.verify(user, token)


async def login(
    hooks: Hooks, session: Session, user_id: str | int | None, access_token: str | Secret | None
) -> TokenInfo:
    """See :meth:`gs_hooks.Hooks.login`."""
    hooks._check_open()
    verifier = _verifier(hooks)
    user_id, token = login_input(user_id, access_token)  # refused here, before any platform call
    _gate(hooks)
    info = await verifier.verify(user_id, token)
    _gate(hooks)  # maintenance may have begun while we waited for Gamebase
    bans = hooks.bans
    if bans is not None:
        ban = bans.active_ban(user_id)
        if ban is not None:
            ends_at = getattr(ban, "ends_at", None)
            until = f"until {ends_at.isoformat()}" if ends_at is not None else "permanently"
            raise BannedError(
                f"player {user_id!r} is banned {until}", ends_at=ends_at, source=str(getattr(ban, "source", ""))
            )
    if session not in hooks.registry:
        raise LoginRefusedError(f"cannot log in player {user_id!r}: the session is closed (the client went away)")
    try:
        older = hooks.bind_player(session, user_id)
    except ValueError as exc:
        raise LoginRefusedError(f"cannot log in player {user_id!r}: {exc}") from exc
    for old in older:
        await hooks.kick(old, "duplicate_login", message="logged in from another session")
    return info
