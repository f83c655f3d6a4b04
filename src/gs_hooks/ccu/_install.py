"""Plugging Hive CCU reporting in: the counter (socket or web mode), the durable spool and the reporter."""

from __future__ import annotations

import msgspec

from .._config import Config
from .._services import Services
from .._store import Store
from ._counter import SocketCounter, WebCounter
from ._model import OnCcuProblem
from ._reporter import CcuReporter
from ._spool import CcuSpool

__all__ = ["Ccu", "install"]


class Ccu(msgspec.Struct, frozen=True, kw_only=True):
    """What the CCU install made.

    Attributes:
        reporter: the reporter component (``hooks.ccu``); its spool is the CCU history.
        counter: what it samples (``hooks.ccu_counter``): live sessions, or the users of the trailing period.
    """

    reporter: CcuReporter
    counter: SocketCounter | WebCounter


def install(services: Services, config: Config, *, on_ccu_problem: OnCcuProblem | None) -> Ccu | None:
    """Make the counter, the spool and the reporter, when ``ccu.url`` is set.

    The spool lives in the state store, or in a file of its own (``ccu.spool_path``), whose health is then
    reported beside the state store's.

    Args:
        services: the hooks' services (after the sessions install: the counter reads the registry).
        config: the configuration (reads ``ccu``, ``state_path`` and ``gamepot.history_retention_days``).
        on_ccu_problem: the game's callback for a sample the collector refused.

    Returns:
        The reporter and its counter, or None when CCU reporting is off.
    """
    cc = config.ccu
    if cc.url is None:
        return None
    counter: SocketCounter | WebCounter
    if cc.count_mode == "web":
        counter = WebCounter(cc.server_ids, period_s=cc.period_s, time=services.clock.time)
        services.registry.add_observer(counter.observe)
    else:
        counter = SocketCounter(services.registry, cc.count)
    own = cc.spool_path is not None and cc.spool_path != config.state_path
    if own and cc.spool_path is not None:
        store = Store(cc.spool_path, setting="GS_HOOKS_CCU_SPOOL", name="ccu_spool")
        services.add_store(store)
    else:
        store = services.store
    reporter = CcuReporter(
        cc,
        http=services.http,
        spool=CcuSpool(store),
        counter=counter,
        clock=services.clock,
        on_problem=on_ccu_problem,
        retention_days=config.gamepot.history_retention_days,
        owns_store=own,
    )
    services.add_component(reporter)
    return Ccu(reporter=reporter, counter=counter)
