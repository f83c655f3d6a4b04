"""The operator-facing methods of :class:`~gs_hooks.Hooks`: health, readiness and liveness.

:class:`ProbesApi` is a mixin: :class:`~gs_hooks.Hooks` inherits these methods and provides :attr:`services` and
the :class:`~gs_hooks.ops.Probes` the ops install made. The same documents are served as ``/healthz``,
``/readyz`` and ``/livez``.
"""

from __future__ import annotations

from typing import Any

from .._health import ComponentHealth, HealthReporter
from .._services import Services
from ._probes import Probes

__all__ = ["ProbesApi"]


class ProbesApi:
    """Health, readiness and liveness of the hooks (mixed into :class:`~gs_hooks.Hooks`).

    Attributes:
        services: the hooks' services.
    """

    services: Services
    _probes: Probes

    def stores_health(self) -> tuple[ComponentHealth, ...]:
        """The health of each opened sqlite store: the state store (``store``) and a CCU spool of its own
        (``ccu_spool``). A store that could not be written since its last failure reports ``ok=False``."""
        return self._probes.stores_health()

    def health(self) -> dict[str, Any]:
        """The ``/healthz`` document: ``status`` (``ok`` while running), live ``sessions``, ``components``,
        the listener's counters when it is on, ``stores``: each opened sqlite store's health (a failing store
        does not change ``status``: what it could not write is held in memory, which a restart would lose),
        and readiness: ``ready`` and every report in ``checks``."""
        return self._probes.health_document()

    @property
    def live(self) -> bool:
        """True while the hooks run and their task group was not cancelled (a component crashed) (``/livez``)."""
        return self._probes.live

    def add_health(self, reporter: HealthReporter) -> None:
        """Make readiness (``/readyz``) also depend on ``reporter.health()`` (the game's own database, say).

        Components, the store and the ban book are asked already when they report health.
        """
        self.services.add_health(reporter)

    def readiness(self) -> tuple[ComponentHealth, ...]:
        """The health report of everything that has one: the opened sqlite stores, components, the ban book,
        and what :meth:`add_health` added. Cheap and synchronous (no IO)."""
        return self._probes.readiness()

    def ready_document(self) -> dict[str, Any]:
        """The ``/readyz`` document: ``ready`` (the hooks are live and every report is ok), ``status``,
        ``failing`` (names) and every report in ``checks`` (name, ok, error without any secret, since)."""
        return self._probes.ready_document()

    def live_document(self) -> dict[str, Any]:
        """The ``/livez`` document: ``live`` and ``status`` (``live``, or the lifecycle state)."""
        return self._probes.live_document()
