"""Plugging the operator's side in: the probes (``/livez``, ``/readyz``, ``/healthz``, ``/metrics``) and the
dashboard. Installed last: it reads every capability and is read by none."""

from __future__ import annotations

import msgspec

from .._config import Config, operator_allow
from .._services import Services
from ..bans._book import BanBook
from ..gamebase._maintenance import MaintenanceWatcher
from ..gamepot._history import CcuHistorySource
from ..http._listener import Listener
from ._dashboard import Dashboard
from ._probes import Probes, add_probe_routes

__all__ = ["Ops", "install"]


class Ops(msgspec.Struct, frozen=True, kw_only=True):
    """What the ops install made.

    Attributes:
        probes: the probe documents (``hooks.health()``, ``hooks.ready_document()``...).
        dashboard: ``/dashboard`` (``hooks.dashboard``), when ``listener.dashboard`` is on.
    """

    probes: Probes
    dashboard: Dashboard | None = None


def install(
    services: Services,
    config: Config,
    *,
    book: BanBook,
    maintenance: MaintenanceWatcher | None,
    history: CcuHistorySource,
    listener: Listener | None,
) -> Ops:
    """Add the probe routes and, when ``listener.dashboard`` is on, the dashboard (allowlist
    ``listener.dashboard_allow``, loopback only while it is empty; key ``listener.dashboard_key``).

    Args:
        services: the hooks' services.
        config: the configuration (reads ``listener`` and ``ccu``).
        book: the ban book (the dashboard lists active bans).
        maintenance: the maintenance watcher (the dashboard shows its state), or None.
        history: the CCU history (the dashboard's chart and delivery health).
        listener: the embedded listener (its counters go into ``/healthz``), or None.

    Returns:
        The probes and the dashboard.
    """
    probes = Probes(services, listener=listener)
    li = config.listener
    add_probe_routes(
        services.router,
        health=probes.health_document,
        admin_allow=operator_allow(li.admin_allow),
        ready=probes.ready_document,
        live=probes.live_document,
    )
    dashboard = None
    if li.dashboard:
        dashboard = Dashboard(
            registry=services.registry,
            history=history,
            clock=services.clock,
            period_s=config.ccu.period_s,
            server_ids=config.ccu.server_ids if config.ccu.url is not None else (),
            key=li.dashboard_key,
            bans=lambda: book,
            maintenance=lambda: maintenance,
        )
        dashboard.install(services.router, allow=operator_allow(li.dashboard_allow))
    return Ops(probes=probes, dashboard=dashboard)
