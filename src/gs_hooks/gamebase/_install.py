"""Plugging Gamebase in: the server-API client, the login-token verifier and the maintenance watcher."""

from __future__ import annotations

import msgspec

from .._config import Config
from .._services import Services
from ._client import GamebaseClient
from ._maintenance import MaintenanceWatcher, OnMaintenance, OnNotice
from ._verifier import TokenVerifier

__all__ = ["Gamebase", "install"]


class Gamebase(msgspec.Struct, frozen=True, kw_only=True):
    """What the Gamebase install made.

    Attributes:
        client: the server-API client (``hooks.gamebase``).
        verifier: the token verifier (``hooks.verifier``), a component.
        maintenance: the maintenance watcher (``hooks.maintenance``), when ``gamebase.maintenance_poll_s`` > 0.
    """

    client: GamebaseClient
    verifier: TokenVerifier
    maintenance: MaintenanceWatcher | None = None


def install(
    services: Services, config: Config, *, on_maintenance: OnMaintenance | None, on_notice: OnNotice | None
) -> Gamebase | None:
    """Make the Gamebase client and verifier, and (when its period is > 0) the maintenance watcher.

    Args:
        services: the hooks' services (after the sessions install: the watcher kicks through the kicker).
        config: the configuration (reads ``gamebase``).
        on_maintenance: the game's callback on each maintenance transition.
        on_notice: the game's callback that shows a maintenance warning to one session.

    Returns:
        The parts, or None when ``gamebase.url`` is unset (Gamebase off).
    """
    g = config.gamebase
    if g.url is None:
        return None
    assert g.secret_key is not None  # the config validation requires it with a URL
    client = GamebaseClient(
        services.http,
        base_url=g.url,
        app_id=g.app_id,
        secret_key=g.secret_key,
        api_version=g.api_version,
        timeout_s=g.timeout_s,
        retries=g.retries,
        clock=services.clock,
    )
    verifier = TokenVerifier(
        client,
        clock=services.clock,
        concurrency=g.verify_concurrency,
        ttl_s=g.token_cache_ttl_s,
        negative_ttl_s=g.negative_cache_ttl_s,
        failure_policy=g.failure_policy,
    )
    services.add_component(verifier)
    watcher = None
    if g.maintenance_poll_s > 0:
        launching = None
        if g.launching_os_code and g.launching_client_version:
            launching = (g.launching_os_code, g.launching_client_version)
        watcher = MaintenanceWatcher(
            client,
            services.kicker,
            clock=services.clock,
            on_maintenance=on_maintenance,
            on_notice=on_notice,
            poll_s=g.maintenance_poll_s,
            gate=g.maintenance_gate,
            kick=g.maintenance_kick,
            warn_s=g.maintenance_warn_s,
            launching=launching,
            backoff_max_s=g.poll_backoff_max_s,
        )
        services.add_component(watcher)
    return Gamebase(client=client, verifier=verifier, maintenance=watcher)
