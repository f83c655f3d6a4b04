"""Plugging GamePot in: the CCU history (the reporter's spool, replaceable) and the CCU inquiry route."""

from __future__ import annotations

import msgspec

from .._config import Config, operator_allow
from .._services import Services
from ..ccu._reporter import CcuReporter
from ._history import HistorySlot, ReporterHistory
from ._inquiry import GamePotInquiry

__all__ = ["GamePot", "install"]


class GamePot(msgspec.Struct, frozen=True, kw_only=True):
    """What the GamePot install made.

    Attributes:
        history: the CCU history the inquiry and the dashboard read; its ``source`` is
            ``hooks.gamepot_history`` (the reporter's spool until the game replaces it).
        inquiry: the inquiry route's handler (``hooks.gamepot_inquiry``), when ``gamepot.project_id`` and
            ``gamepot.api_key`` are set.
    """

    history: HistorySlot
    inquiry: GamePotInquiry | None = None


def install(services: Services, config: Config, *, ccu: CcuReporter | None) -> GamePot:
    """Make the CCU history and, when configured, add the inquiry route (allowlist ``listener.admin_allow``,
    loopback only while it is empty).

    Args:
        services: the hooks' services.
        config: the configuration (reads ``gamepot``, ``ccu.period_s`` and ``listener.admin_allow``).
        ccu: the CCU reporter whose spool is the history (None: the history is empty until replaced).

    Returns:
        The history and the inquiry.
    """
    history = HistorySlot(ReporterHistory(lambda: ccu))
    gp = config.gamepot
    inquiry = None
    if gp.project_id is not None and gp.api_key is not None:
        inquiry = GamePotInquiry(
            project_id=gp.project_id,
            api_key=gp.api_key,
            history=history,
            period_s=config.ccu.period_s,
            clock=services.clock,
        )
        inquiry.install(services.router, allow=operator_allow(config.listener.admin_allow))
    return GamePot(history=history, inquiry=inquiry)
