"""The :class:`Hooks` object :func:`gs_hooks.setup` returns.

:class:`Hooks` owns everything with a lifetime: the services (the shared HTTP client, the sqlite store,
the session registry) and one anyio task group in which every background component (CCU reporter, maintenance
watcher, ban timer and poller, listener) runs. Components that are not configured are not created. Shutdown is
orderly: each component is asked to flush (in reverse start order), then the task group is cancelled, then the
client and the store are closed. Its lifecycle is :mod:`gs_hooks._lifecycle`'s table.

``start()`` and ``aclose()`` must be awaited from the same task (the task group's cancel scope belongs to it);
``async with hooks:`` does that for you.

Its game-facing session methods (``kick``, ``bind_player``, ``track_streams``...) come from
:class:`~gs_hooks.sessions._api.SessionsApi`; the login flow is :mod:`gs_hooks._login`'s; the probe documents are
:mod:`gs_hooks.ops`'. Only :mod:`gs_hooks._setup` (and ``gs_hooks/__init__.py``) import this module.
"""

from __future__ import annotations

import logging
from types import TracebackType

import anyio
import anyio.to_thread

from ._clock import Clock
from ._component import Component, component_name
from ._config import Config, ConfigWarning, Secret
from ._exceptions import ConfigError, LifecycleError
from ._http_client import HttpClient
from ._ids import player_id as _player_id
from ._lifecycle import State
from ._login import LoginFlow
from ._services import Services
from ._store import Store
from .bans import BanBook
from .bans._api import BansApi
from .bans._install import Bans
from .ccu import CcuCounter, CcuReporter
from .ccu._install import Ccu
from .fleet import Fleet
from .gamebase import GamebaseClient, MaintenanceWatcher, TokenInfo, TokenVerifier
from .gamebase._install import Gamebase
from .gamepot import CcuHistorySource, GamePotClient, GamePotInquiry
from .gamepot._install import GamePot
from .http._app import Router
from .http._asgi import ASGIApp, as_asgi
from .http._listener import Listener, limits_from_config
from .ops import Dashboard, Probes, StartFacts, config_warnings, start_warnings, startup_summary
from .ops._api import ProbesApi
from .ops._install import Ops
from .sessions._api import SessionsApi
from .sessions._kicker import Kicker, OnKick
from .sessions._kicks import KickWatch
from .sessions._registry import SessionRegistry
from .sessions._session import Session

__all__ = ["Hooks"]

log = logging.getLogger("gs_hooks")


class Hooks(SessionsApi, BansApi, ProbesApi):
    """The object :func:`setup` returns; use it as ``async with hooks:``.

    Attributes:
        config: the configuration.
        clock: the injected clock.
        registry: the :class:`~gs_hooks.SessionRegistry` of live sessions.
        kick_watch: the kick safety net (``kick_watch.grace_s``, settable).
        router: the routes served by the embedded listener and :meth:`asgi_app`.
        bans: the :class:`~gs_hooks.BanBook` (always there: ``ban``/``unban`` and the login gate use it).
        verifier / gamebase / maintenance: the Gamebase token verifier, client and maintenance watcher (None: off).
        ccu / ccu_counter: the CCU reporter and what it samples (None: off).
        gamepot_inquiry: the GamePot CCU inquiry route (None: off).
        dashboard: ``/dashboard`` (None: off).
        listener: the embedded HTTP listener (None: ``GS_HOOKS_LISTEN`` unset).
        fleet: this process in the fleet (process id, leader or not, live members); None: fleet mode off.
    """

    def __init__(
        self,
        config: Config,
        services: Services,
        *,
        kicker: Kicker,
        bans: Bans,
        gamebase: Gamebase | None,
        ccu: Ccu | None,
        gamepot: GamePot,
        listener: Listener | None,
        fleet: Fleet | None = None,
        ops: Ops,
        login: LoginFlow,
        webstore_callback: bool,
    ) -> None:
        self.config = config
        self.services = services
        self.clock: Clock = services.clock
        self.kicker = kicker
        self.registry: SessionRegistry = kicker.registry
        self.kick_watch: KickWatch = kicker.watch
        self.router: Router = services.router
        self.bans: BanBook = bans.book
        self.gamebase: GamebaseClient | None = gamebase.client if gamebase else None
        self.maintenance: MaintenanceWatcher | None = gamebase.maintenance if gamebase else None
        self.ccu: CcuReporter | None = ccu.reporter if ccu else None
        self.ccu_counter: CcuCounter | None = ccu.counter if ccu else None
        self._gamepot = gamepot
        self.gamepot_inquiry: GamePotInquiry | None = gamepot.inquiry
        self.dashboard: Dashboard | None = ops.dashboard
        self.listener = listener
        self.fleet = fleet
        self._probes: Probes = ops.probes
        self._login = login
        self._webstore_callback = webstore_callback
        self._asgi_mounted = False  # asgi_app() was called: the routes are served by the game's ASGI server

    # -- shared resources ------------------------------------------------------------------------------------

    @property
    def on_kick(self) -> OnKick | None:
        """The game's kick callback (settable: read at each kick)."""
        return self.kicker.on_kick

    @on_kick.setter
    def on_kick(self, callback: OnKick | None) -> None:
        self.kicker.on_kick = callback

    @property
    def verifier(self) -> TokenVerifier | None:
        """The Gamebase token verifier logins ask and bans clear (None: Gamebase is off); replaceable."""
        return self._login.verifier.verifier

    @verifier.setter
    def verifier(self, verifier: TokenVerifier | None) -> None:
        self._login.verifier.verifier = verifier

    @property
    def gamepot_history(self) -> CcuHistorySource | None:
        """The CCU history the GamePot inquiry and the dashboard read (the CCU reporter's spool by default);
        a game may replace it (e.g. with a :class:`~gs_hooks.MemoryCcuHistory`) after setup."""
        return self._gamepot.history.source

    @gamepot_history.setter
    def gamepot_history(self, source: CcuHistorySource | None) -> None:
        self._gamepot.history.source = source

    @property
    def http(self) -> HttpClient:
        """The one shared HTTP client of the platform calls (created on first use): the library's own client
        on asyncio (aiohttp with proxies or ``GS_HOOKS_HTTP_CLIENT=aiohttp``), httpx on trio or the
        ``httpx.AsyncClient`` given to ``setup(http_client=...)``. ``await hooks.http.request(method, url,
        headers=..., content=..., timeout_s=...)`` answers an :class:`~gs_hooks.HttpAnswer`."""
        return self.services.http

    @property
    def store(self) -> Store:
        """The sqlite store (opened on first use; :meth:`start` opens an existing one).

        Raises:
            StoreError: the file cannot be used as a store (empty, damaged, read-only, disk full).
        """
        return self.services.store

    def add_component(self, component: Component) -> None:
        """Add a background component (before :meth:`start`).

        Raises:
            LifecycleError: (a ``RuntimeError``) the hooks have started.
        """
        self.services.add_component(component)

    @property
    def components(self) -> tuple[Component, ...]:
        """The configured background components, in start order."""
        return self.services.components

    # -- lifecycle ---------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every configured component. Pair with :meth:`aclose` in the same task.

        Raises:
            LifecycleError: (a ``RuntimeError``) the hooks are not new.
        """
        lifecycle = self.services.lifecycle
        if lifecycle.state is not State.NEW:
            raise LifecycleError(f"cannot start hooks in state {lifecycle.state.value!r}")
        lifecycle.move(State.STARTING)
        for warning in self.config_warnings():
            log.warning("configuration: %s", warning)
        try:  # an existing store that cannot be used stops the start here, before anything reads it
            await anyio.to_thread.run_sync(self.services.open_existing_store)
        except BaseException:
            lifecycle.move(State.CLOSED)
            await self.services.aclose()
            raise
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self.services.attach(tg)
        try:
            for component in self.services.components:
                await tg.start(component.run)
        except BaseException:
            tg.cancel_scope.cancel()
            try:
                await tg.__aexit__(None, None, None)
            finally:
                self.services.detach()
                lifecycle.move(State.CLOSED)
                await self.services.aclose()
            raise
        lifecycle.move(State.RUNNING)
        log.info("%s", startup_summary(self.config, self._start_facts()))

    def config_warnings(self) -> list[ConfigWarning]:
        """Settings that silently do nothing as configured (unknown ``GS_HOOKS_*`` names, a key without the
        setting that turns its feature on, routes configured but not served...) and operator routes a public
        bind opens: what :meth:`start` logs as WARNINGs, one each. A game may refuse to start on any.

        Returns:
            One :class:`~gs_hooks.ConfigWarning` per case, naming the setting.
        """
        return [*config_warnings(self.config), *start_warnings(self.config, self._start_facts())]

    def _start_facts(self) -> StartFacts:
        return StartFacts(
            listener_url=self.listener.url if self.listener is not None and self.listener.port else None,
            asgi_mounted=self._asgi_mounted,
            webstore_callback=self._webstore_callback,
        )

    async def aclose(self) -> None:
        """Orderly shutdown: flush components (reverse order), stop tasks, close the client and the store."""
        lifecycle = self.services.lifecycle
        state = self.services.observe()
        if state is State.CLOSING:  # another aclose() is under way
            return
        if state is State.CLOSED:
            await self.services.aclose()
            return
        if state is State.NEW:
            lifecycle.move(State.CLOSED)
            await self.services.aclose()
            return
        lifecycle.move(State.CLOSING)
        with anyio.CancelScope(shield=True):
            for component in reversed(self.services.components):
                try:
                    await component.aclose()
                except Exception:
                    log.exception("component %s failed to flush", component_name(component))
            await self.bans.flush()  # bans whose write still failed: one last try (after the ban timer's)
            self.kicker.close_nowait()  # kicked connections still in their grace: closed now
            self._login.flush()
        tg = self.services.detach()
        try:
            if tg is not None:
                tg.cancel_scope.cancel()
                await tg.__aexit__(None, None, None)  # raises what a crashed component raised
        finally:
            lifecycle.move(State.CLOSED)
            await self.services.aclose()

    async def __aenter__(self) -> Hooks:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def running(self) -> bool:
        """True between start() and aclose()."""
        return self.services.lifecycle.started

    # -- sessions ----------------------------------------------------------------------------------------------

    def forget_token(self, user_id: str | int) -> None:
        """Drop cached token verifications of a player (called when the player is banned).

        Raises:
            TypeError / ValueError: ``user_id`` cannot be a player id.
        """
        self._login.verifier.forget(_player_id(user_id, what="user id"))

    def __repr__(self) -> str:
        names = ", ".join(component_name(c) for c in self.services.components)
        return (
            f"Hooks(state={self.services.lifecycle.state.value!r}, sessions={len(self.registry)}, components=[{names}])"
        )

    # -- ccu ---------------------------------------------------------------------------------------------------

    def saw_user(self, user_id: str | int, server_id: str | None = None) -> None:
        """Count a request by ``user_id`` towards web-mode CCU (unique users of the trailing period).

        A no-op in socket mode or when CCU reporting is off, so a game may always call it.

        Raises:
            TypeError / ValueError: ``user_id`` cannot be a player id (checked in every mode).
            ValueError: a server id not in ``GS_HOOKS_SERVER_ID`` (web mode).
        """
        user_id = _player_id(user_id, what="user id")
        counter = self.ccu_counter
        saw = getattr(counter, "saw_user", None)
        if saw is not None:
            saw(user_id, server_id)

    async def resend_refused(self) -> int:
        """Queue every CCU sample the collector refused (200–204, 301, 302) again, with the current game key.

        Returns:
            How many samples were queued (0 when CCU reporting is off); in fleet mode also the fleet's refused
            samples made sendable again.

        Raises:
            FleetError: fleet mode, and Redis could not be reached.
        """
        if self.ccu is None:
            return 0
        n = int(await self.ccu.resend_refused())
        if self.fleet is not None and self.fleet.ccu is not None:  # the fleet's refused sums (leader sends them)
            n += await self.fleet.ccu.resend_refused()
        return n

    # -- gamebase ----------------------------------------------------------------------------------------------

    async def login(self, session: Session, user_id: str | int | None, access_token: str | Secret | None) -> TokenInfo:
        """Log a player in: verify the Gamebase access token, then bind the player to the session.

        Order: the input check (no platform call), the maintenance gate, the token (cached, single-flight), the
        gate again, the ban book, then the duplicate-login policy (older sessions are kicked with reason
        ``duplicate_login``).

        Args:
            session: the connection's session (``gs_hooks.current_session()``).
            user_id: the Gamebase user id the client sent; an ``int`` (a JSON number) is bound as its decimal
                string, so ``7101`` and ``"7101"`` are the same player everywhere (registry, bans, kicks). Pass
                the client's value as it came: ``None`` (a missing field) or any other bad value is refused.
            access_token: the Gamebase access token the client sent (a ``str`` or a :class:`~gs_hooks.Secret`;
                ``None`` or anything else is refused).

        Returns:
            The verified token's member information.

        Raises:
            InvalidLoginError: (``reason`` ``invalid_login``, ``.field``) the user id or token cannot be one
                (missing, empty, wrong type, whitespace, ``/``, only dots, too long...); no platform call was made.
            MaintenanceError: (``maintenance``) maintenance is active and the gate is on (``.ends_at``, ``.url``).
            TokenInvalidError: (``token_invalid``) the token is invalid or expired (``.code``).
            MemberNotValidError: (``member_not_valid``) Gamebase reports the member banned, withdrawn or missing.
            BannedError: (``banned``) the ban book holds an active ban for the player (``.ends_at``).
            DuplicateLoginError: (``duplicate_login``) the player is logged in elsewhere and the policy is
                ``refuse_newer``.
            LoginRefusedError: (``refused``) the session closed while the login ran. Every refusal above is a
                ``LoginRefusedError``: catch it to answer the client with ``.reason`` and ``.message`` (no secret
                is ever in them).
            PlatformUnavailableError: Gamebase is unreachable or kept failing (policy ``fail_closed``, or nothing
                cached): tell the player to try again in ``.retry_after_s`` seconds.
            PlatformError: Gamebase refused the call for a reason that is ours (e.g. a wrong secret key: the
                message names the setting), or answered something that is not a token answer for this user.
            ConfigError: Gamebase is not configured.
            ClosedError: the hooks are closed.
        """
        return await self._login.login(session, user_id, access_token)

    async def verify_token(self, user_id: str | int | None, access_token: str | Secret | None) -> TokenInfo:
        """Verify a Gamebase access token without binding a session (for games that log in elsewhere).

        Raises:
            InvalidLoginError / TokenInvalidError / MemberNotValidError / PlatformUnavailableError / PlatformError /
            ConfigError / ClosedError: as :meth:`login`.
        """
        return await self._login.verify_token(user_id, access_token)

    # -- gamepot ----------------------------------------------------------------------------------------------

    def gamepot_client(self, *, project_id: str | None = None, api_key: Secret | str | None = None) -> GamePotClient:
        """A :class:`~gs_hooks.GamePotClient` for ``gamepot.base_url`` on the shared HTTP client.

        Args:
            project_id / api_key: default to ``gamepot.project_id`` / ``gamepot.api_key``.

        Raises:
            ConfigError: no project id or key is given or configured.
        """
        gp = self.config.gamepot
        pid = project_id or gp.project_id
        key = api_key or gp.api_key
        if not pid:
            raise ConfigError("GS_HOOKS_GAMEPOT_PROJECT_ID", "a GamePot project id is needed for the client")
        if not key:
            raise ConfigError("GS_HOOKS_GAMEPOT_API_KEY", "a GamePot x-api-key is needed for the client")
        return GamePotClient(pid, key, gp.base_url, http=self.http)

    # -- probes ------------------------------------------------------------------------------------------------

    def asgi_app(self) -> ASGIApp:
        """The routes of :attr:`router` as an ASGI app, to mount in a Starlette/FastAPI app served by uvicorn
        instead of (or beside) the embedded listener. Limits come from ``config.listener``.

        Call it before :meth:`start`: the start-up checks then know the routes are served (no "not served"
        warning). Links the routes produce are relative, so the app works under any mount prefix.
        """
        self._asgi_mounted = True
        return as_asgi(self.router, limits=limits_from_config(self.config.listener))
