"""Plugging the operator's side in: the probes (``/livez``, ``/readyz``, ``/healthz``, ``/metrics``), the admin
API and the dashboard. Installed last: it reads every capability and is read by none."""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from .._config import Config, operator_allow
from .._fleet_ops import FleetOps
from .._services import Services
from ..bans._install import Bans
from ..gamebase._install import Gamebase
from ..gamebase._verifier import TokenVerifier
from ..gamepot._history import CcuHistorySource
from ..http._app import Router
from ..http._listener import Listener
from ._admin import AdminApi
from ._dashboard import Dashboard
from ._exposition import exposition
from ._probes import Probes, add_probe_routes
from ._sources import OpsSources
from ._webhook import observe_webhook

__all__ = ["Ops", "install"]


class Ops(msgspec.Struct, frozen=True, kw_only=True):
    """What the ops install made.

    Attributes:
        probes: the probe documents (``hooks.health()``, ``hooks.ready_document()``...).
        admin: the admin API (``admin/...`` routes).
        dashboard: ``/dashboard`` (``hooks.dashboard``), when ``listener.dashboard`` is on.
    """

    probes: Probes
    admin: AdminApi
    dashboard: Dashboard | None = None


def install(
    services: Services,
    config: Config,
    *,
    bans: Bans,
    gamebase: Gamebase | None,
    verifier: Callable[[], TokenVerifier | None],
    history: CcuHistorySource,
    listener: Listener | None,
    fleet: FleetOps | None = None,
) -> Ops:
    """Add the probe routes, the admin API (allowlist ``listener.admin_allow``, loopback only while it is empty;
    key ``listener.admin_key``, else ``listener.dashboard_key``) and, when ``listener.dashboard`` is on, the
    dashboard (allowlist ``listener.dashboard_allow``; key ``listener.dashboard_key``).

    Args:
        services: the hooks' services.
        config: the configuration (reads ``listener``, ``ccu`` and ``hive``).
        bans: what the bans install made (the book, the Gamebase ban poller).
        gamebase: what the Gamebase install made (the maintenance watcher), or None.
        verifier: returns the token verifier the logins use (``hooks.verifier``, replaceable).
        history: the CCU history (the dashboard's chart and delivery health).
        listener: the embedded listener (its counters go into ``/healthz`` and ``/metrics``), or None.
        fleet: the admin API's kick and owner lookup across the fleet (``hooks.fleet.admin``), or None.

    Returns:
        The probes, the admin API and the dashboard.
    """
    probes = Probes(services, listener=listener)
    src = _sources(services, probes, bans=bans, gamebase=gamebase, verifier=verifier, history=history, fleet=fleet)
    li = config.listener
    admin_allow = operator_allow(li.admin_allow)
    add_probe_routes(
        services.router,
        health=probes.health_document,
        admin_allow=admin_allow,
        ready=probes.ready_document,
        live=probes.live_document,
        metrics=lambda: exposition(src, probes.health_document()),
    )
    admin = AdminApi(
        src,
        key=li.admin_key or li.dashboard_key,
        key_setting="GS_HOOKS_ADMIN_KEY",
    )
    admin.install(services.router, allow=admin_allow)
    _observe_hive(services.router, config)
    dashboard = None
    if li.dashboard:
        dashboard = Dashboard(
            src,
            period_s=config.ccu.period_s,
            server_ids=config.ccu.server_ids if config.ccu.url is not None else (),
            key=li.dashboard_key,
            admin_key_is_dashboard_key=li.admin_key is None and li.dashboard_key is not None,
            webhook=config.hive.auth_key is not None and config.hive.game_index is not None,
            admin_on=admin.enabled,
        )
        dashboard.install(services.router, allow=operator_allow(li.dashboard_allow))
    return Ops(probes=probes, admin=admin, dashboard=dashboard)


def _sources(
    services: Services,
    probes: Probes,
    *,
    bans: Bans,
    gamebase: Gamebase | None,
    verifier: Callable[[], TokenVerifier | None],
    history: CcuHistorySource,
    fleet: FleetOps | None,
) -> OpsSources:
    """What the operator's side reads, from what the installs made."""
    return OpsSources(
        clock=services.clock,
        lifecycle=services.lifecycle,
        registry=services.registry,
        kicker=services.kicker,
        book=bans.book,
        poller=bans.poller,
        maintenance=gamebase.maintenance if gamebase else None,
        verifier=verifier,
        listener=probes.listener,
        history=history,
        readiness=probes.readiness,
        live=lambda: probes.live,
        fleet=fleet,
    )


def _observe_hive(router: Router, config: Config) -> None:
    """Time and count the Hive suspension webhook's answers (when the route is there)."""
    path = config.hive.suspension_path
    for route in router.routes():
        if route.method == "POST" and route.pattern == path:
            observe_webhook(route)
