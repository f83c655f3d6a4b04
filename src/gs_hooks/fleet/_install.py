"""Plugging fleet mode in: the fleet component, and the capabilities it changes (leader-only Gamebase polls).

Without ``GS_HOOKS_REDIS_URL`` nothing is made and nothing changes. With it, :func:`install` makes the
:class:`~gs_hooks.fleet.Fleet` component (its Redis connection, membership, lease and inbox) and:

- the ban book writes through :class:`FleetBanStore` (each local batch's rows commit with an outbox entry, each
  batch read from the fleet with the stream cursor), and :class:`BanSync` publishes the outbox and applies the
  other processes' batches (its first catch-up is waited for at start: a process started after a ban refuses
  the player from its first login); the leader drops from the fleet's ban set what every book has purged;
- the maintenance watcher reads the leader's published result (:class:`FleetMaintenanceSource`) instead of
  polling Gamebase, and the leader polls Gamebase for everyone (:class:`MaintenancePublisher`);
- the Gamebase ban poller (left out of the components by the bans install in fleet mode) runs on the leader only,
  its watermark in Redis (:class:`LeaderBanPoller`).
"""

from __future__ import annotations

from .._config import Config
from .._services import Services
from ..bans._book import BanBook
from ..bans._poller import BanPoller
from ..gamebase._maintenance import MaintenanceWatcher
from ._bans import BanSetPruner, BanSync, FleetBanStore
from ._maintenance import FleetMaintenanceSource, MaintenancePublisher
from ._node import Fleet
from ._poller import LeaderBanPoller

__all__ = ["install"]

STALE_PERIODS = 3
"""A published maintenance result older than this many poll periods (plus the lease TTL) is not used."""


def install(
    services: Services,
    config: Config,
    *,
    book: BanBook,
    ban_poller: BanPoller | None,
    maintenance: MaintenanceWatcher | None,
) -> Fleet | None:
    """Make this process a fleet member when ``fleet.url`` is set; else do nothing.

    Call it after the capabilities it changes (gamebase, bans) and before the listener, so the fleet starts after
    the ban book's timer and closes (flushing the outbox, releasing the lease) after the listener stopped taking
    webhooks.

    Args:
        services: the hooks' services.
        config: the configuration (reads ``fleet``, ``ccu.server_ids`` and ``gamebase``).
        book: the ban book (its persistence publishes local batches and applies the fleet's).
        ban_poller: the Gamebase ban poller (run on the leader only), when configured.
        maintenance: the maintenance watcher (it reads the leader's poll), when configured.

    Returns:
        The fleet component (``hooks.fleet``), or None when fleet mode is off.

    Raises:
        ConfigError: the ``redis`` package is missing (the message says how to install it), or the running
            backend is trio (fleet mode is asyncio-only).
    """
    f = config.fleet
    if not f.enabled:
        return None
    fleet = Fleet(f, clock=services.clock, server_ids=config.ccu.server_ids)
    persistence = FleetBanStore(lambda: services.store, stream=fleet.keys.bans, wake=lambda: None)
    sync = BanSync(
        fleet.redis,
        fleet.keys,
        fleet.pid,
        book=book,
        store=persistence,
        block_ms=int(f.block_s * 1000),
        maxlen=f.bans_maxlen,
    )
    persistence.wake = sync.publisher.wake
    book.persistence = persistence
    fleet.bans = sync
    fleet.add_task("ban outbox publisher", sync.run_publisher)
    fleet.add_task("ban stream reader", sync.run_reader, wait=True)
    fleet.add_flush(sync.flush)
    fleet.add_leader_job(BanSetPruner(fleet.leadership, fleet.keys, retention_s=book.retention_s, clock=services.clock))
    g = config.gamebase
    watcher = maintenance
    if watcher is not None:
        publisher = MaintenancePublisher(
            watcher.source,
            fleet.leadership,
            fleet.keys,
            clock=services.clock,
            poll_s=watcher.poll_s,
            backoff_max_s=g.poll_backoff_max_s,
        )
        fleet.add_leader_job(publisher)
        watcher.source = FleetMaintenanceSource(
            fleet.redis,
            fleet.keys,
            clock=services.clock,
            stale_after_s=STALE_PERIODS * watcher.poll_s + f.lease_ttl_s,
            period_s=min(1.0, watcher.poll_s),
        )
    if ban_poller is not None:
        job = LeaderBanPoller(ban_poller, fleet.leadership, fleet.keys)
        fleet.add_leader_job(job)
        services.add_health(job)  # the poller's readiness while this process leads
    services.add_component(fleet)
    return fleet
