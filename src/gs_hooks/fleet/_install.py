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
  its watermark in Redis (:class:`LeaderBanPoller`);
- duplicate login applies across processes: :class:`FleetLogins` (``fleet.logins``, which ``setup()`` makes the
  login flow's claim step) claims the player in Redis and kicks an older session through its process's inbox;
- CCU (when reporting is on): the reporter's sampler writes its counts to the fleet (:class:`FleetSink`, the local
  spool sink kept for a lone server id while Redis is unreachable), and the leader freezes and sends one summed
  sample per server id and slot (:class:`FleetCcuLeader`, ``fleet.ccu``); the GamePot history slot reads the
  fleet's history (:class:`FleetCcuHistory`, the local spool as its fallback);
- the web-store route's callback (when the route is on) asks the player's process (:class:`FleetWebstore`);
- the admin API's kick reaches the player's process, and its sessions list names the player's owner
  (:class:`FleetAdmin`, ``fleet.admin``, which ``setup()`` hands to the ops install).

Requests to another process and their answers (web store, admin kick) share one :class:`Asker`: the inbox verb, a
reply key, BLPOP with a deadline; the answers run in its task group.

At shutdown the fleet first writes the ban book's unsaved rows (so a ban whose write had failed gets its outbox
entry while the publisher still runs), then publishes the outbox, then gives back this process's players.
"""

from __future__ import annotations

from collections.abc import Awaitable

from .._config import Config
from .._services import Services
from ..bans._book import BanBook
from ..bans._poller import BanPoller
from ..ccu._model import CcuProblem
from ..ccu._reporter import CcuReporter
from ..gamebase._maintenance import MaintenanceWatcher
from ..gamepot._history import HistorySlot
from ..hive._handlers import WebstoreEndpoint
from ._admin import OP_ADMIN_KICK, FleetAdmin
from ._ask import Asker
from ._bans import BanSetPruner, BanSync, FleetBanStore
from ._ccu import FleetCcu
from ._ccu_leader import FleetCcuLeader
from ._ccu_sink import FleetSink
from ._history import FleetCcuHistory
from ._logins import FleetLogins
from ._maintenance import FleetMaintenanceSource, MaintenancePublisher
from ._node import Fleet
from ._poller import LeaderBanPoller
from ._presence import Presence
from ._protocol import OP_KICK
from ._webstore import OP_WEBSTORE, FleetWebstore

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
    ccu: CcuReporter | None = None,
    history: HistorySlot | None = None,
    webstore: WebstoreEndpoint | None = None,
) -> Fleet | None:
    """Make this process a fleet member when ``fleet.url`` is set; else do nothing.

    Call it after the capabilities it changes (gamebase, bans) and before the listener, so the fleet starts after
    the ban book's timer and closes (flushing the outbox, releasing the lease) after the listener stopped taking
    webhooks.

    Args:
        services: the hooks' services.
        config: the configuration (reads ``fleet``, ``ccu.server_ids``, ``gamebase`` and ``duplicate_login``
            through the registry).
        book: the ban book (its persistence publishes local batches and applies the fleet's).
        ban_poller: the Gamebase ban poller (run on the leader only), when configured.
        maintenance: the maintenance watcher (it reads the leader's poll), when configured.
        ccu: the CCU reporter (its sampler writes to the fleet; the leader sends the sums), when configured.
        history: the GamePot CCU history slot (it reads the fleet's history when ``ccu`` is given).
        webstore: the web-store route (its callback asks the player's process), when it is on.

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
    _install_bans(services, config, fleet, book)
    _install_polls(services, config, fleet, maintenance, ban_poller)
    presence = Presence(fleet.redis, fleet.keys, fleet.pid, inbox_maxlen=f.inbox_maxlen)
    asker = Asker(fleet.redis, fleet.keys, fleet.pid, inbox_maxlen=f.inbox_maxlen)
    fleet.add_task("inbox answers", asker.run)
    _install_logins(services, config, fleet, presence)
    if ccu is not None:
        _install_ccu(services, config, fleet, ccu, history)
    if webstore is not None:
        _install_webstore(config, fleet, presence, asker, webstore)
    _install_admin(services, config, fleet, presence, asker)
    services.add_component(fleet)
    return fleet


def _install_bans(services: Services, config: Config, fleet: Fleet, book: BanBook) -> None:
    """The book writes through the fleet's store (outbox, cursor); the sync publishes and reads the stream; the
    leader prunes the fleet's ban set; at shutdown the unsaved rows are written first, then the outbox published."""
    f = config.fleet
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
    fleet.add_flush(book.flush)  # first: a ban whose write failed gets its outbox entry while the publisher runs
    fleet.add_flush(sync.flush)
    fleet.add_leader_job(BanSetPruner(fleet.leadership, fleet.keys, retention_s=book.retention_s, clock=services.clock))


def _install_polls(
    services: Services,
    config: Config,
    fleet: Fleet,
    watcher: MaintenanceWatcher | None,
    ban_poller: BanPoller | None,
) -> None:
    """The leader polls Gamebase (maintenance, published for every watcher; the ban poller, its watermark in
    Redis); every watcher reads the published result."""
    if watcher is not None:
        publisher = MaintenancePublisher(
            watcher.source,
            fleet.leadership,
            fleet.keys,
            clock=services.clock,
            poll_s=watcher.poll_s,
            backoff_max_s=config.gamebase.poll_backoff_max_s,
        )
        fleet.add_leader_job(publisher)
        watcher.source = FleetMaintenanceSource(
            fleet.redis,
            fleet.keys,
            clock=services.clock,
            stale_after_s=STALE_PERIODS * watcher.poll_s + config.fleet.lease_ttl_s,
            period_s=min(1.0, watcher.poll_s),
        )
    if ban_poller is not None:
        job = LeaderBanPoller(ban_poller, fleet.leadership, fleet.keys)
        fleet.add_leader_job(job)
        services.add_health(job)  # the poller's readiness while this process leads


def _install_webstore(
    config: Config, fleet: Fleet, presence: Presence, asker: Asker, webstore: WebstoreEndpoint
) -> None:
    """The web-store route's callback asks the process the player is logged in on (through its inbox)."""
    forwarder = FleetWebstore(
        webstore.callback,
        redis=fleet.redis,
        keys=fleet.keys,
        presence=presence,
        timeout_s=webstore.timeout_s,
        inbox_maxlen=config.fleet.inbox_maxlen,
        asker=asker,
    )
    webstore.callback = forwarder
    fleet.webstore = forwarder
    fleet.on_inbox(OP_WEBSTORE, forwarder.on_request)


def _install_admin(services: Services, config: Config, fleet: Fleet, presence: Presence, asker: Asker) -> None:
    """The admin API's kick across the fleet (``fleet.admin``) and its inbox verb."""
    admin = FleetAdmin(
        asker,
        presence,
        fleet.membership,
        services.registry,
        services.kicker,
        timeout_s=config.fleet.admin_timeout_s,
    )
    fleet.admin = admin
    fleet.on_inbox(OP_ADMIN_KICK, admin.on_request)


def _install_logins(services: Services, config: Config, fleet: Fleet, presence: Presence) -> None:
    """Duplicate login across the fleet: the claim step (``fleet.logins``), its inbox verb, the release and
    re-check task, and the release of this process's players at shutdown."""
    logins = FleetLogins(
        presence, services.registry, services.kicker, clock=services.clock, recheck_s=config.fleet.recheck_s
    )
    fleet.logins = logins
    fleet.on_inbox(OP_KICK, logins.on_kick_notice)
    fleet.on_inbox_reload(logins.on_inbox_reload)
    fleet.add_task("duplicate logins", logins.run)
    fleet.add_flush(logins.release_all)


def _install_ccu(
    services: Services, config: Config, fleet: Fleet, reporter: CcuReporter, history: HistorySlot | None
) -> None:
    """The CCU sum: the sampler's sink writes to the fleet, the leader freezes and sends; the fleet's history."""
    f = config.fleet
    primitives = FleetCcu(fleet.redis, fleet.keys, fleet.pid, fleet.leadership, staleness_s=f.ccu_staleness_s)
    sink = FleetSink(
        primitives,
        fleet.membership,
        staleness_s=f.ccu_staleness_s,
        clock=services.clock,
        direct=reporter.sink,  # a lone server id while Redis is unreachable: the local spool and sender
        metrics=reporter.metrics,
    )
    reporter.sampler.sink = sink
    leader = FleetCcuLeader(
        primitives,
        fleet.membership,
        reporter.config,
        url=reporter.url,
        http=reporter.http,
        clock=services.clock,
        collect_wait_s=f.ccu_collect_wait_s,
        metrics=reporter.metrics,
        on_problem=lambda problem: _on_problem(reporter, problem),  # hooks.ccu.on_problem, also set later
        retention_s=reporter.retention_s,
    )
    fleet.ccu = leader
    fleet.ccu_sink = sink
    fleet.add_task("CCU counts", sink.run)
    fleet.add_leader_job(leader)
    if history is not None:
        history.source = FleetCcuHistory(primitives, fallback=history.source)


def _on_problem(reporter: CcuReporter, problem: CcuProblem) -> Awaitable[None] | None:
    """The reporter's current ``on_problem`` (the game may set ``hooks.ccu.on_problem`` after setup)."""
    callback = reporter.on_problem
    return None if callback is None else callback(problem)
