"""What the maintenance watcher reads and what it tells the game: the callback payloads
(:class:`MaintenanceChange`, :class:`NoticeRequest`), the callbacks' types, and the source seam
(:class:`MaintenanceSource`: Gamebase by default, :class:`GamebaseMaintenanceSource`; the fleet's published result in
fleet mode). The watcher itself is :mod:`._maintenance`.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import Protocol

import msgspec

from ..sessions._session import Session
from ._client import GamebaseClient
from ._protocol import MaintenanceDetails, MaintenanceState

__all__ = [
    "GamebaseMaintenanceSource",
    "MaintenanceChange",
    "MaintenanceReading",
    "MaintenanceSource",
    "NoticeRequest",
    "OnMaintenance",
    "OnNotice",
]


class MaintenanceChange(msgspec.Struct, frozen=True, kw_only=True):
    """What ``on_maintenance`` receives on each maintenance transition.

    Attributes:
        previous: the state before.
        state: the state now (equal to ``previous`` when the window itself changed).
        details: the window concerned (for ENDED: the window that ended), None when unknown.
        at: when the transition happened (aware datetime, KST).
    """

    previous: MaintenanceState
    state: MaintenanceState
    details: MaintenanceDetails | None
    at: datetime


class NoticeRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What ``on_notice`` receives: show ``message`` to the player of ``session``.

    Attributes:
        session: the session to notify.
        kind: ``maintenance_warning``.
        message: the maintenance message (or a default text).
        seconds_left: seconds until the maintenance begins.
        details: the maintenance window.
    """

    session: Session
    kind: str
    message: str
    seconds_left: float
    details: MaintenanceDetails | None = None


class OnMaintenance(Protocol):
    """The game's maintenance callback (sync or async)."""

    def __call__(self, change: MaintenanceChange, /) -> Awaitable[None] | None: ...


class OnNotice(Protocol):
    """The game's notice callback (sync or async): show a message to one session."""

    def __call__(self, request: NoticeRequest, /) -> Awaitable[None] | None: ...


class MaintenanceReading(msgspec.Struct, frozen=True, kw_only=True):
    """What one maintenance poll found.

    Attributes:
        windows: the maintenance windows Gamebase reported (announced, active or past).
        under_maintenance: Gamebase's ``underMaintenance`` flag (or simple launching status 303).
    """

    windows: tuple[MaintenanceDetails, ...] = ()
    under_maintenance: bool = False


class MaintenanceSource(Protocol):
    """Where the watcher reads the maintenance state.

    Attributes:
        period_s: how often the watcher reads this source (None: the watcher's ``poll_s``).
    """

    period_s: float | None

    async def fetch(self) -> MaintenanceReading:
        """Read the maintenance state now.

        Raises:
            GsHooksError: it could not be read (the watcher keeps its state and backs off).
            ValueError: a date was unreadable.
        """
        ...


class GamebaseMaintenanceSource:
    """Gamebase's under-maintenance API, plus simple launching (status 303 = maintenance) when configured.

    Args:
        client: the Gamebase client.
        launching: ``(os_code, client_version)`` to also poll simple launching, or None.
    """

    period_s: float | None = None

    def __init__(self, client: GamebaseClient, launching: tuple[str, str] | None = None) -> None:
        self.client = client
        self.launching = launching

    async def fetch(self) -> MaintenanceReading:
        """Poll Gamebase once (no retries: the watcher's next poll is the retry).

        Raises:
            GsHooksError: Gamebase is unreachable or refused the call.
            ValueError: a maintenance date is unreadable.
        """
        under = await self.client.under_maintenance(retries=0)
        windows = [MaintenanceDetails.from_info(m) for m in under.maintenances]
        flag = under.under_maintenance
        if self.launching is not None:
            launching = await self.client.simple_launching(*self.launching, retries=0)
            data = launching.launching_data
            if data.status.code == 303:
                flag = True
                if data.maintenance is not None:
                    extra = MaintenanceDetails.from_info(data.maintenance)
                    if not any(_same_window(extra, w) for w in windows):
                        windows.append(extra)
        return MaintenanceReading(windows=tuple(windows), under_maintenance=flag)

    def __repr__(self) -> str:
        return "GamebaseMaintenanceSource()"


def _same_window(a: MaintenanceDetails, b: MaintenanceDetails) -> bool:
    return a.begins_at == b.begins_at and a.ends_at == b.ends_at
