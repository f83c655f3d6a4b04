"""The one setup call: :func:`setup` builds a :class:`~gs_hooks.Hooks` for a configuration.

It is the composition root: it makes the :class:`~gs_hooks._services.Services` and calls each capability's
``install(services, config, callbacks)`` in order (sessions first: every other capability uses the registry and
the kicker; the listener last among components: it starts after and closes before every other one; ops last: it
reads them all), then hands what the installs made to :class:`~gs_hooks.Hooks`.

Nothing in the package imports this module but ``gs_hooks/__init__.py``.
"""

from __future__ import annotations

import httpx
import msgspec

from ._clock import Clock, SystemClock
from ._config import Config
from ._exceptions import ConfigError
from ._hooks import Hooks
from ._login import LoginFlow, VerifierSlot
from ._services import Services
from .bans import OnBan
from .bans import _install as bans_install
from .ccu import OnCcuProblem
from .ccu import _install as ccu_install
from .fleet import _install as fleet_install
from .gamebase import OnMaintenance, OnNotice
from .gamebase import _install as gamebase_install
from .gamepot import _install as gamepot_install
from .hive import WebstoreProfileCallback
from .hive import _install as hive_install
from .http import _install as http_install
from .ops import _install as ops_install
from .sessions import OnKick
from .sessions import _install as sessions_install

__all__ = ["Callbacks", "setup"]


def setup(
    config: Config | None = None,
    *,
    on_kick: OnKick | None = None,
    clock: Clock | None = None,
    http_client: httpx.AsyncClient | None = None,
    on_ban: OnBan | None = None,
    on_maintenance: OnMaintenance | None = None,
    on_notice: OnNotice | None = None,
    on_ccu_problem: OnCcuProblem | None = None,
    webstore_profile: WebstoreProfileCallback | None = None,
) -> Hooks:
    """The one setup call: build a :class:`Hooks` for ``config``; configured components only.

    Args:
        config: the configuration (``Config.from_env()`` by default).
        on_kick: the game's kick callback; without it, kicks close the connection (``session.close()``).
        clock: inject a :class:`~gs_hooks.FakeClock` in tests.
        http_client: your own ``httpx.AsyncClient``: every platform call then goes through it (the hooks leave it
            open). Without it the hooks make their own client (``hooks.http``): the library's own on
            asyncio (aiohttp with proxies or ``config.http_backend="aiohttp"``), httpx on trio.
        on_ban: called with a ``BanEvent`` when a ban is applied.
        on_maintenance: called with a ``MaintenanceChange`` on each maintenance transition.
        on_notice: called with a ``NoticeRequest`` to show a message to a session (maintenance warnings).
        on_ccu_problem: called with a ``CcuProblem`` when a CCU sample is refused for a non-retryable reason.
        webstore_profile: ``async (cs_code) -> WebstoreProfile | None`` for Hive's ``/webstore-profile``.
    """
    if config is None:
        config = Config.from_env()
    callbacks = Callbacks(
        on_kick=on_kick,
        on_ban=on_ban,
        on_maintenance=on_maintenance,
        on_notice=on_notice,
        on_ccu_problem=on_ccu_problem,
        webstore_profile=webstore_profile,
    )
    services = Services(
        config.state_path, clock=clock or SystemClock(), http_client=http_client, http_backend=config.http_backend
    )
    return _install(services, config, callbacks)


class Callbacks(msgspec.Struct, frozen=True, kw_only=True):
    """The game's callbacks given to :func:`setup`, each typed by its capability's Protocol (None: not given)."""

    on_kick: OnKick | None = None
    on_ban: OnBan | None = None
    on_maintenance: OnMaintenance | None = None
    on_notice: OnNotice | None = None
    on_ccu_problem: OnCcuProblem | None = None
    webstore_profile: WebstoreProfileCallback | None = None

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if value is not None and not callable(value):  # e.g. a placeholder copied from an example
                raise ConfigError(name, f"setup({name}=...) must be a function or None, not {type(value).__name__}")


def _install(services: Services, config: Config, callbacks: Callbacks) -> Hooks:
    """Install every capability in order, then hand what they made to the :class:`Hooks`."""
    kicker = sessions_install.install(services, config, on_kick=callbacks.on_kick)
    gamebase = gamebase_install.install(
        services, config, on_maintenance=callbacks.on_maintenance, on_notice=callbacks.on_notice
    )
    maintenance = gamebase.maintenance if gamebase else None
    verifier = VerifierSlot(gamebase.verifier if gamebase else None)  # the login flow's, cleared by bans
    bans = bans_install.install(
        services,
        config,
        on_ban=callbacks.on_ban,
        forget_token=verifier.forget,
        gamebase=gamebase.client if gamebase else None,
    )
    hive = hive_install.install(services, config, book=bans.book, webstore_profile=callbacks.webstore_profile)
    ccu = ccu_install.install(services, config, on_ccu_problem=callbacks.on_ccu_problem)
    gamepot = gamepot_install.install(services, config, ccu=ccu.reporter if ccu else None)
    fleet = fleet_install.install(  # None: fleet mode off
        services,
        config,
        book=bans.book,
        ban_poller=bans.poller,
        maintenance=maintenance,
        ccu=ccu.reporter if ccu else None,
        history=gamepot.history,
        webstore=hive.webstore,
    )
    listener = http_install.install(services, config)  # the last component: starts after, closes before the rest
    login = LoginFlow(services, book=bans.book, verifier=verifier, maintenance=maintenance)
    if fleet is not None and fleet.logins is not None:
        login.claims = fleet.logins  # duplicate login across the fleet
    ops = ops_install.install(
        services,
        config,
        bans=bans,
        gamebase=gamebase,
        verifier=lambda: verifier.verifier,
        history=gamepot.history,
        listener=listener,
        fleet=fleet.admin if fleet is not None else None,  # the admin API's kick across the fleet
    )
    return Hooks(
        config,
        services,
        kicker=kicker,
        bans=bans,
        gamebase=gamebase,
        ccu=ccu,
        gamepot=gamepot,
        fleet=fleet,
        listener=listener,
        ops=ops,
        login=login,
        webstore_callback=callbacks.webstore_profile is not None,
    )
