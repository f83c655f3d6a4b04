"""Wiring of the GamePot capability into :class:`~gs_hooks.Hooks` (called from ``_wire_components``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .._config import operator_allow
from ._dashboard import Dashboard
from ._history import CcuHistorySource, DeliveryHealth, HealthSource, ReporterHistory
from ._inquiry import GamePotInquiry
from ._protocol import HistorySample

if TYPE_CHECKING:
    from .._setup import Hooks

__all__ = ["HooksHistory", "wire_gamepot"]


class HooksHistory:
    """Reads whatever :attr:`Hooks.gamepot_history` is at request time (so a game may replace it after setup)."""

    def __init__(self, hooks: Hooks) -> None:
        self._hooks = hooks

    def _source(self) -> Any:
        return self._hooks.gamepot_history

    @property
    def available(self) -> bool:
        """Whether a history with delivery health is there."""
        source = self._source()
        return isinstance(source, HealthSource) and bool(getattr(source, "available", True))

    async def samples(self, start_ts: float, end_ts: float, server_id: str | None = None) -> Sequence[HistorySample]:
        """Samples of the current history source."""
        source: CcuHistorySource | None = self._source()
        return [] if source is None else await source.samples(start_ts, end_ts, server_id)

    async def delivery_health(self, server_ids: Iterable[str]) -> DeliveryHealth:
        """Delivery health of the current history source (empty when it has none)."""
        source = self._source()
        if isinstance(source, HealthSource):
            return await source.delivery_health(server_ids)
        return DeliveryHealth()


def wire_gamepot(hooks: Hooks) -> None:
    """Create the GamePot parts the configuration turns on.

    - ``hooks.gamepot_history``: the CCU reporter's spool (:class:`ReporterHistory`), always;
    - ``hooks.gamepot_inquiry``: the inquiry route, when ``gamepot.project_id`` is set (allowlist
      ``listener.admin_allow``, loopback only while it is empty);
    - ``hooks.dashboard``: ``/dashboard``, when ``listener.dashboard`` is on (allowlist ``listener.dashboard_allow``,
      loopback only while it is empty; key ``listener.dashboard_key``).
    """
    config = hooks.config
    hooks.gamepot_history = ReporterHistory(lambda: getattr(hooks, "ccu", None))
    history = HooksHistory(hooks)
    gp = config.gamepot
    if gp.project_id is not None and gp.api_key is not None:
        inquiry = GamePotInquiry(
            project_id=gp.project_id,
            api_key=gp.api_key,
            history=history,
            period_s=config.ccu.period_s,
            clock=hooks.clock,
        )
        inquiry.install(hooks.router, allow=operator_allow(config.listener.admin_allow))
        hooks.gamepot_inquiry = inquiry
    li = config.listener
    if li.dashboard:
        dashboard = Dashboard(
            registry=hooks.registry,
            history=history,
            clock=hooks.clock,
            period_s=config.ccu.period_s,
            server_ids=config.ccu.server_ids if config.ccu.url is not None else (),
            key=li.dashboard_key,
            bans=lambda: hooks.bans,
            maintenance=lambda: hooks.maintenance,
        )
        dashboard.install(hooks.router, allow=operator_allow(li.dashboard_allow))
        hooks.dashboard = dashboard
