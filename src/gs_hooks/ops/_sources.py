"""What the operator's side reads: every part of the hooks it looks at, in one frozen bundle.

The ops install builds one :class:`OpsSources` from what the other installs made; ``/metrics``, the dashboard and
the admin API read it (none of those parts is written to by the capabilities they read).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass

from .._clock import Clock
from .._fleet_ops import FleetOps
from .._health import ComponentHealth
from .._lifecycle import Lifecycle
from ..bans._book import BanBook
from ..bans._poller import BanPoller
from ..gamebase._maintenance import MaintenanceWatcher
from ..gamebase._verifier import TokenVerifier
from ..gamepot._history import CcuHistorySource
from ..http._listener import Listener
from ..sessions._kicker import Kicker
from ..sessions._registry import SessionRegistry

__all__ = ["OpsSources", "hostname"]


def hostname() -> str:
    """This machine's host name (what the status and the dashboard show)."""
    return socket.gethostname()


@dataclass(frozen=True, slots=True, kw_only=True)
class OpsSources:
    """The parts of the hooks the operator's side reads.

    Attributes:
        clock: the hooks' clock.
        lifecycle: the hooks' lifecycle (state, running since).
        registry: the live sessions.
        kicker: kicks for the admin API.
        book: the ban book.
        poller: the Gamebase ban poller, or None.
        maintenance: the Gamebase maintenance watcher, or None.
        verifier: returns the token verifier the logins use (None: Gamebase off); read per request.
        listener: the embedded listener, or None.
        history: the CCU history.
        readiness: every health report (cheap, no IO).
        live: True while the hooks run and no component crashed.
        fleet: the fleet as the admin API sees it (kick on the player's process, the owner lookup), or None
            (fleet mode off: the admin API acts on this process only).
    """

    clock: Clock
    lifecycle: Lifecycle
    registry: SessionRegistry
    kicker: Kicker
    book: BanBook
    poller: BanPoller | None
    maintenance: MaintenanceWatcher | None
    verifier: Callable[[], TokenVerifier | None]
    listener: Listener | None
    history: CcuHistorySource
    readiness: Callable[[], tuple[ComponentHealth, ...]]
    live: Callable[[], bool]
    fleet: FleetOps | None = None
