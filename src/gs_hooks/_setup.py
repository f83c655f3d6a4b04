"""The one setup call, :func:`setup`, and the :class:`Hooks` object it returns.

:class:`Hooks` owns everything with a lifetime: the session registry, the shared ``httpx.AsyncClient``, the
sqlite store, and one anyio task group in which every background component (CCU reporter, maintenance watcher,
ban poller, listener) runs. Components that are not configured are not created. Shutdown is orderly: each
component is asked to flush (in reverse start order), then the task group is cancelled, then the client and
the store are closed.

``start()`` and ``aclose()`` must be awaited from the same task (the task group's cancel scope belongs to it);
``async with hooks:`` does that for you.
"""

from __future__ import annotations

import inspect
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import anyio.abc
import anyio.to_thread
import httpx
import msgspec

from ._clock import Clock, SystemClock
from ._config import Config, ConfigWarning, Secret, operator_allow
from ._exceptions import ClosedError, ConfigError, LoginRefusedError, PlatformError
from ._health import ComponentHealth, HealthReporter
from ._ids import player_id as _player_id
from ._ratelog import RateLimitedLog
from ._startup import StartFacts, config_warnings, start_warnings, startup_summary
from ._store import Store
from .bans import Ban, BanBook, BanEvent
from .gamebase._wire import login as _gamebase_login
from .gamebase._wire import verify_token as _gamebase_verify_token
from .http._app import Router
from .http._asgi import ASGIApp, as_asgi
from .http._listener import Listener, add_builtin_routes, limits_from_config
from .sessions._kicks import KickWatch, close_quietly
from .sessions._middleware import TrackWebSocketsMiddleware
from .sessions._registry import Session, SessionRegistry

if TYPE_CHECKING:
    from ._config import Secret
    from .ccu import CcuCounter, CcuReporter
    from .gamebase import GamebaseClient, MaintenanceWatcher, TokenInfo, TokenVerifier
    from .gamepot import CcuHistorySource, Dashboard, GamePotClient, GamePotInquiry

__all__ = ["Component", "Hooks", "KickRequest", "OnKick", "setup"]

log = logging.getLogger("gs_hooks")
_kicks_log = logging.getLogger("gs_hooks.kicks")
_login_log = logging.getLogger("gs_hooks.login")


class KickRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What the game's ``on_kick`` receives.

    Attributes:
        session: the session to disconnect (already removed from the registry).
        reason: ``ban``, ``maintenance``, ``duplicate_login``, ``manual``...
        message: a human-readable message to show the player.
        details: reason-specific frozen details (a ban's source/status/start/end, a maintenance window...).
    """

    session: Session
    reason: str
    message: str = ""
    details: Any = None


class OnKick(Protocol):
    """The game's kick callback (sync or async): tell the player, then close the connection with
    ``request.session.close()`` (sync) or ``await request.session.aclose()``, the same on every adapter. A
    connection still open when it returns is closed after ``hooks.kick_watch.grace_s`` (the safety net)."""

    def __call__(self, request: KickRequest, /) -> Awaitable[None] | None: ...


class Component(Protocol):
    """A background part owned by :class:`Hooks` (CCU reporter, watchers, listener...)."""

    name: str

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled; call ``task_status.started()`` once ready."""
        ...

    async def aclose(self) -> None:
        """Flush: finish or persist in-flight work. Called before the task group is cancelled."""
        ...


async def call_callback(callback: Callable[..., Any] | None, *args: Any, what: str) -> bool:
    """Call a sync or async user callback; log (do not raise) its exceptions. Returns True on success."""
    if callback is None:
        return True
    done = call_callback_nowait(callback, *args, what=what)
    return done if isinstance(done, bool) else await done


def call_callback_nowait(callback: Callable[..., Any], *args: Any, what: str) -> bool | Coroutine[Any, Any, bool]:
    """:func:`call_callback` without a coroutine when the callback is sync: the success flag, or (the callback
    returned an awaitable) a coroutine to await that finishes the call and returns the flag."""
    try:
        result = callback(*args)
    except Exception:
        log.exception("%s callback raised", what)
        return False
    if result is not None and inspect.isawaitable(result):
        return _finish_callback(result, what)
    return True


async def _finish_callback(result: Awaitable[Any], what: str) -> bool:
    try:
        await result
    except Exception:
        log.exception("%s callback raised", what)
        return False
    return True


class Hooks:
    """The object :func:`setup` returns; use it as ``async with hooks:``.

    Attributes:
        config: the configuration.
        clock: the injected clock.
        registry: the :class:`~gs_hooks.SessionRegistry` of live sessions.
    """

    def __init__(
        self,
        config: Config,
        *,
        on_kick: OnKick | None = None,
        clock: Clock | None = None,
        http_client: httpx.AsyncClient | None = None,
        callbacks: dict[str, Callable[..., Any] | None] | None = None,
    ) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.on_kick = on_kick
        self.callbacks = dict(callbacks or {})
        self.registry = SessionRegistry(
            default_server_id=config.sessions.server_id,
            duplicate_login=config.sessions.duplicate_login,
            time=self.clock.time,
        )
        self._own_http = http_client is None
        self._http = http_client
        self._store: Store | None = None
        self._components: list[Component] = []
        self._tg: anyio.abc.TaskGroup | None = None
        self._state = "new"
        # The kick safety net (closes what on_kick left open, after kick_watch.grace_s) and the kick log.
        self.kick_watch = KickWatch(self.clock, spawn=self._spawn)
        self._login_refusals = RateLimitedLog(_login_log)
        # Routes served by the embedded listener (and its ASGI twin); capabilities add theirs in _wire_components.
        self.router = Router()
        # The ban book is always there (hooks.ban / unban, login's gate); its sources are wired when configured.
        self.bans: BanBook = _new_ban_book(self)
        # Capability objects, set by _wire_components when configured (None = off).
        self.verifier: TokenVerifier | None = None  # the Gamebase token verifier
        self.ccu: CcuReporter | None = None  # the CCU reporter
        self.ccu_counter: CcuCounter | None = None  # what the reporter samples (socket or web mode)
        self.gamebase: GamebaseClient | None = None  # the Gamebase server-API client
        self.maintenance: MaintenanceWatcher | None = None  # the Gamebase maintenance watcher (its state)
        # gamepot: the CCU history the inquiry and dashboard read (replaceable), and the routes.
        self.gamepot_history: CcuHistorySource | None = None
        self.gamepot_inquiry: GamePotInquiry | None = None  # when gamepot.project_id is set
        self.dashboard: Dashboard | None = None  # when listener.dashboard is on
        # The embedded HTTP listener (issue 6): set by _wire_components when config.listener.listen is set.
        self.listener: Listener | None = None
        # Readiness: other objects reporting their health beside the components and the store (add_health).
        self._health_reporters: list[HealthReporter] = []
        self._asgi_mounted = False  # asgi_app() was called: the routes are served by the game's ASGI server

    # -- shared resources ------------------------------------------------------------------------------------

    @property
    def http(self) -> httpx.AsyncClient:
        """The one shared ``httpx.AsyncClient`` (created on first use)."""
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=10.0, limits=httpx.Limits(max_connections=64))
        return self._http

    @property
    def store(self) -> Store:
        """The sqlite store (opened on first use; :meth:`start` opens an existing one).

        Raises:
            StoreError: the file cannot be used as a store (empty, damaged, read-only, disk full).
        """
        if self._store is None:
            self._store = Store(self.config.state_path)
        return self._store

    def stores_health(self) -> tuple[ComponentHealth, ...]:
        """The health of each opened sqlite store: the state store (``store``) and a CCU spool of its own
        (``ccu_spool``). A store that could not be written since its last failure reports ``ok=False``."""
        stores: list[Store] = [] if self._store is None else [self._store]
        if self.ccu is not None and self.ccu.spool.store is not self._store:
            stores.append(self.ccu.spool.store)
        return tuple(store.health() for store in stores)

    def add_component(self, component: Component) -> None:
        """Add a background component (before :meth:`start`)."""
        if self._state != "new":
            raise RuntimeError("components must be added before start()")
        self._components.append(component)

    def _spawn(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> bool:
        """Start ``fn`` in the task group; False when there is none running (before start, while closing)."""
        tg = self._tg
        if tg is None or self._state not in ("starting", "running"):
            return False
        tg.start_soon(fn)
        return True

    @property
    def components(self) -> tuple[Component, ...]:
        """The configured background components, in start order."""
        return tuple(self._components)

    # -- lifecycle ---------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every configured component. Pair with :meth:`aclose` in the same task."""
        if self._state != "new":
            raise RuntimeError(f"cannot start hooks in state {self._state!r}")
        self._state = "starting"
        for warning in self.config_warnings():
            log.warning("configuration: %s", warning)
        try:  # an existing store that cannot be used stops the start here, before anything reads it
            await anyio.to_thread.run_sync(self._open_existing_store)
        except BaseException:
            self._state = "closed"
            await self._close_resources()
            raise
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        try:
            for component in self._components:
                await tg.start(component.run)
        except BaseException:
            tg.cancel_scope.cancel()
            await tg.__aexit__(None, None, None)
            self._state = "closed"
            await self._close_resources()
            raise
        self._state = "running"
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
            webstore_callback=self.callbacks.get("webstore_profile") is not None,
        )

    def _open_existing_store(self) -> None:
        """Open (and so check) the state store when its file exists; a new one is still made on first use."""
        state = self.config.state_path
        if self._store is None and state != ":memory:" and Path(state).expanduser().exists():
            self._store = Store(state)

    async def aclose(self) -> None:
        """Orderly shutdown: flush components (reverse order), stop tasks, close the client and the store."""
        if self._state in ("closed", "new"):
            self._state = "closed"
            await self._close_resources()
            return
        self._state = "closing"
        with anyio.CancelScope(shield=True):
            for component in reversed(self._components):
                try:
                    await component.aclose()
                except Exception:
                    log.exception("component %s failed to flush", getattr(component, "name", component))
            await self.bans.flush()  # bans whose write failed: one last try (with or without a ban timer)
            self.kick_watch.close_all_nowait()  # kicked connections still in their grace: closed now
            self.kick_watch.flush()
            self._login_refusals.flush()
        tg = self._tg
        self._tg = None
        if tg is not None:
            tg.cancel_scope.cancel()
            await tg.__aexit__(None, None, None)
        self._state = "closed"
        await self._close_resources()

    async def _close_resources(self) -> None:
        with anyio.CancelScope(shield=True):
            if self._http is not None and self._own_http:
                await self._http.aclose()
                self._http = None
            if self._store is not None:
                self._store.close()

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
        return self._state == "running"

    def _check_open(self) -> None:
        if self._state in ("closing", "closed"):
            raise ClosedError("hooks are closed")

    # -- sessions ----------------------------------------------------------------------------------------------

    async def kick(
        self,
        target: Session | str | int,
        reason: str = "manual",
        *,
        message: str = "",
        details: Any = None,
    ) -> int:
        """Disconnect a session, or every session of a player id.

        Each session is removed from the registry first (so a second kick of it is a no-op), then the game's
        ``on_kick`` receives a frozen :class:`KickRequest` and should close the connection
        (``request.session.close()``, or ``await request.session.aclose()``); with no ``on_kick``,
        ``session.close()`` is called. A raising ``on_kick`` is logged, the session stays removed, and the
        connection is closed so no untracked connection is left behind. When ``on_kick`` returns (or finishes)
        and the connection is still open, it is closed after ``kick_watch.grace_s`` (2 s) and that is logged
        (rate-limited) on ``gs_hooks.kicks``, where every kick is also logged at INFO.

        Args:
            target: a :class:`~gs_hooks.Session`, or a player id (every live session of that player; an ``int`` is
                normalised to its decimal string).
            reason: ``ban``, ``maintenance``, ``duplicate_login``, ``manual``...
            message: a human-readable message to show the player.
            details: reason-specific frozen details, passed through in the request.

        Returns:
            The number of sessions kicked (0 when none was live).

        Raises:
            TypeError: ``target`` is neither a session nor a player id.
            ValueError: ``target`` is a string that cannot be a player id (empty, ``/``, dots...).
        """
        if isinstance(target, Session):
            sessions: tuple[Session, ...] = (target,)
        elif isinstance(target, str | int) and not isinstance(target, bool):
            sessions = self.registry.sessions_of(_player_id(target))
        else:
            raise TypeError(f"kick() takes a Session or a player id (str), not {type(target).__name__}")
        kicked = self._kick_nowait(sessions, reason, message, details)
        return kicked if isinstance(kicked, int) else await kicked

    def _kick_nowait(
        self, sessions: tuple[Session, ...], reason: str, message: str = "", details: Any = None
    ) -> int | Coroutine[Any, Any, int]:
        """:meth:`kick` of these sessions: all removed from the registry, then each handed to ``on_kick``.

        Returns:
            See :meth:`_deliver_kicks_nowait`.
        """
        close = self.registry.close_nowait  # looked up per call: observers replace it
        live = tuple(session for session in sessions if close(session))
        return self._deliver_kicks_nowait(live, reason, message, details) if live else 0

    def _kick_banned_nowait(self, player_id: str, message: str, details: Any) -> int | Coroutine[Any, Any, int]:
        """Kick every live session of a banned player (one registry call). See :meth:`_deliver_kicks_nowait`."""
        sessions = self.registry.close_player_nowait(player_id)
        return self._deliver_kicks_nowait(sessions, "ban", message, details) if sessions else 0

    def _deliver_kicks_nowait(
        self, sessions: tuple[Session, ...], reason: str, message: str, details: Any
    ) -> int | Coroutine[Any, Any, int]:
        """Hand removed sessions to ``on_kick`` in order, without a coroutine while the callback is sync.

        Without ``on_kick``, or when it raises, the connection is closed at once (``session.close()``, sync on
        every adapter). When ``on_kick`` returns (or its awaitable finishes), the safety net is armed: the
        connection is closed after the grace if it is still open then (see :class:`KickWatch`).

        Returns:
            The number of sessions; or, when a callback returned an awaitable, a coroutine to await that
            finishes the job in the same order (the remaining sessions are handed over after that callback ends)
            and returns the number.
        """
        on_kick = self.on_kick
        watch = self.kick_watch
        log_kicks = _kicks_log.isEnabledFor(logging.INFO)
        for i, session in enumerate(sessions):
            if log_kicks:
                watch.log_kick(session, reason, message)
            if on_kick is None:
                close_quietly(session)
                continue
            request = KickRequest(session=session, reason=reason, message=message, details=details)
            try:
                result = on_kick(request)
            except Exception as exc:
                watch.log_failure("on_kick", session, exc)
                close_quietly(session)
                continue
            if result is None or not inspect.isawaitable(result):
                watch.watch_nowait(session, reason)
                continue
            pending = self._finish_kick(result, request)
            return self._deliver_rest(pending, sessions, i + 1, reason, message, details)
        return len(sessions)

    async def _deliver_rest(
        self,
        pending: Awaitable[Any],
        sessions: tuple[Session, ...],
        done: int,
        reason: str,
        message: str,
        details: Any,
    ) -> int:
        try:
            await pending
        except BaseException:
            # cancelled in a callback: the sessions not handed over yet are out of the registry already, so
            # close them the default way (no untracked connection is left behind)
            for session in sessions[done:]:
                close_quietly(session)
            raise
        if done < len(sessions):
            more = self._deliver_kicks_nowait(sessions[done:], reason, message, details)
            if not isinstance(more, int):
                await more
        return len(sessions)

    async def _finish_kick(self, pending: Awaitable[Any], request: KickRequest) -> None:
        session = request.session
        try:
            await pending
        except Exception as exc:
            self.kick_watch.log_failure("on_kick", session, exc)
            close_quietly(session)
        except BaseException:
            close_quietly(session)  # cancelled in on_kick: close it now, the cancellation goes on
            raise
        else:
            self.kick_watch.watch_nowait(session, request.reason)

    async def serve_until_signal(
        self, *, kick: bool = True, signals: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)
    ) -> signal.Signals:
        """Wait for SIGINT (Ctrl-C) or SIGTERM (what Docker, Kubernetes and systemd send), then kick every live
        session with reason ``shutdown``, and return.

        Call it inside ``async with hooks:`` and your server's own ``async with``: when it returns, leaving the
        blocks closes your server, then the hooks in order (components flush: the CCU spool, unsaved bans, the
        listener; then the HTTP client and the store close). The handlers are installed for the duration of the
        call (on asyncio and trio, through anyio); a second signal during the shutdown gets the default action.
        Unix only: on a platform without signal handlers (Windows) it waits until cancelled.

        Args:
            kick: kick every live session (reason ``shutdown``, through ``on_kick``) before returning, so the
                server's close does not wait for its players (Python ≥ 3.12's ``Server.wait_closed`` does).
            signals: the signals to wait for.

        Returns:
            The signal received.
        """
        try:
            with anyio.open_signal_receiver(*signals) as received:
                signum: signal.Signals = await anext(received)
        except NotImplementedError:  # no signal handlers on this platform's loop
            await anyio.sleep_forever()
        log.warning("received %s: shutting down (flushing, then closing)", signum.name)
        if kick and len(self.registry):
            kicked = self._kick_nowait(tuple(self.registry), "shutdown", "the server is shutting down")
            if not isinstance(kicked, int):
                await kicked
        return signum

    def bind_player(self, session: Session, player_id: str | int) -> list[Session]:
        """Bind a player to a session under the duplicate-login policy.

        Args:
            session: a live session.
            player_id: the player id (an ``int`` is bound as its decimal string).

        Returns:
            Older sessions the policy says to kick (the login flow kicks them with reason ``duplicate_login``).

        Raises:
            DuplicateLoginError: policy ``refuse_newer`` and the player is already logged in.
            TypeError / ValueError: ``player_id`` cannot be a player id; or (ValueError) the session is not live.
        """
        return self.registry.bind_player_nowait(session, player_id)

    def track_streams(
        self,
        handler: Callable[[Any, Any], Awaitable[None]],
        *,
        server_id: str | None = None,
        channel: str = "",
    ) -> Callable[[Any, Any], Awaitable[None]]:
        """Wrap an ``asyncio.start_server`` client handler so each connection is a tracked session.

        Inside the handler, :func:`gs_hooks.current_session` returns the connection's session;
        ``session.close()`` closes the writer. A handler's exception is logged (rate-limited), its connection
        closed.
        """
        from .sessions._middleware import track_asyncio_streams

        return track_asyncio_streams(self.registry, handler, server_id=server_id, channel=channel)

    def track_anyio(
        self,
        handler: Callable[[Any], Awaitable[None]],
        *,
        server_id: str | None = None,
        channel: str = "",
    ) -> Callable[[Any], Awaitable[None]]:
        """Wrap an anyio ``Listener.serve`` handler so each connection is a tracked session.

        ``session.close()`` cancels the handler and closes the stream. A handler's exception is logged
        (rate-limited) and its connection closed: it never reaches ``serve``. Works on asyncio and trio.
        """
        from .sessions._middleware import track_anyio

        return track_anyio(self.registry, handler, server_id=server_id, channel=channel)

    def track_websockets(
        self,
        handler: Callable[[Any], Awaitable[None]],
        *,
        server_id: str | None = None,
        channel: str = "",
    ) -> Callable[[Any], Awaitable[None]]:
        """Wrap a ``websockets.asyncio.server.serve`` handler (websockets ≥ 13) so each connection is tracked.

        ``session.close()`` starts the close handshake (code 1000, reason ``kicked``) in a task on the loop. A
        handler's exception is logged (rate-limited) and its connection closed with code 1011.
        """
        from .sessions._middleware import track_websockets

        return track_websockets(self.registry, handler, server_id=server_id, channel=channel)

    def asgi_middleware(
        self, app: ASGIApp, *, server_id: str | None = None, channel: str = ""
    ) -> TrackWebSocketsMiddleware:
        """Wrap an ASGI app (Starlette, FastAPI...) so each WebSocket connection is a tracked session.

        Returns:
            A :class:`~gs_hooks.TrackWebSocketsMiddleware` around ``app``; HTTP passes through untouched.
        """
        return TrackWebSocketsMiddleware(app, registry=self.registry, server_id=server_id, channel=channel)

    def forget_token(self, user_id: str | int) -> None:
        """Drop cached token verifications of a player (called when the player is banned).

        Raises:
            TypeError / ValueError: ``user_id`` cannot be a player id.
        """
        self._forget_token(_player_id(user_id, what="user id"))

    def _forget_token(self, user_id: str) -> None:
        """:meth:`forget_token` of a checked id (the ban book's, per ban)."""
        if self.verifier is not None:
            self.verifier.forget(user_id)

    def __repr__(self) -> str:
        names = ", ".join(getattr(c, "name", type(c).__name__) for c in self._components)
        return f"Hooks(state={self._state!r}, sessions={len(self.registry)}, components=[{names}])"

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
            How many samples were queued (0 when CCU reporting is off).
        """
        if self.ccu is None:
            return 0
        return int(await self.ccu.resend_refused())

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
        try:
            return await _gamebase_login(self, session, user_id, access_token)
        except LoginRefusedError as exc:
            self._log_login_failure(logging.INFO, session, user_id, exc.reason, exc)
            raise
        except PlatformError as exc:
            self._log_login_failure(logging.WARNING, session, user_id, "platform", exc)
            raise

    def _log_login_failure(
        self, level: int, session: Session, user_id: object, reason: str, exc: LoginRefusedError | PlatformError
    ) -> None:
        """One line on ``gs_hooks.login`` per refusal (rate-limited per reason); never the token."""
        self._login_refusals.log(
            level,
            reason,
            "login refused: player %r on server %r (session %d): %s: %s",
            user_id,
            session.server_id,
            session.id,
            reason,
            exc.message,
        )

    async def verify_token(self, user_id: str | int | None, access_token: str | Secret | None) -> TokenInfo:
        """Verify a Gamebase access token without binding a session (for games that log in elsewhere).

        Raises:
            InvalidLoginError / TokenInvalidError / MemberNotValidError / PlatformUnavailableError / PlatformError /
            ConfigError / ClosedError: as :meth:`login`.
        """
        return await _gamebase_verify_token(self, user_id, access_token)

    # -- bans ----------------------------------------------------------------------------------------------------

    async def ban(
        self,
        player: str | int,
        until: datetime | None = None,
        *,
        message: str = "",
    ) -> Ban:
        """Ban a player from now on: kick every live session, call ``on_ban``, refuse logins until ``until``.

        Args:
            player: the player id (as bound to sessions; an ``int`` is normalised to its decimal string).
            until: when the ban ends (aware datetime); None = permanent.
            message: shown to the player (in the kick and the login refusal).

        Returns:
            The recorded ban (source ``api``).

        Raises:
            TypeError: ``player`` is neither a ``str`` nor an ``int``.
            ValueError: ``player`` cannot be a player id (empty, whitespace at an end, ``/``, dots...), or
                ``until`` is naive or not in the future.
        """
        from .bans import Ban

        player = _player_id(player)
        self._check_open()
        now = self.clock.now()
        if until is not None:
            if until.tzinfo is None:
                raise ValueError("until must be an aware datetime (e.g. tzinfo=gs_hooks.KST)")
            if until <= now:
                raise ValueError(f"until ({until.isoformat()}) is not in the future")
        ban = Ban(
            player_key=player,
            source="api",
            status="permanent" if until is None else "temporary",
            starts_at=now,
            ends_at=until,
            message=message,
        )
        await self.bans.apply([ban])
        return ban

    async def unban(self, player: str | int) -> int:
        """Lift every ban of a player (all sources). Returns the number of bans lifted.

        Raises:
            TypeError / ValueError: ``player`` cannot be a player id (as :meth:`ban`).
        """
        player = _player_id(player)
        self._check_open()
        return len(await self.bans.lift(player))

    # -- gamepot ----------------------------------------------------------------------------------------------

    def gamepot_client(self, *, project_id: str | None = None, api_key: Secret | str | None = None) -> GamePotClient:
        """A :class:`~gs_hooks.GamePotClient` for ``gamepot.base_url`` on the shared HTTP client.

        Args:
            project_id / api_key: default to ``gamepot.project_id`` / ``gamepot.api_key``.

        Raises:
            ConfigError: no project id or key is given or configured.
        """
        from .gamepot import GamePotClient

        gp = self.config.gamepot
        pid = project_id or gp.project_id
        key = api_key or gp.api_key
        if not pid:
            raise ConfigError("GS_HOOKS_GAMEPOT_PROJECT_ID", "a GamePot project id is needed for the client")
        if not key:
            raise ConfigError("GS_HOOKS_GAMEPOT_API_KEY", "a GamePot x-api-key is needed for the client")
        return GamePotClient(pid, key, gp.base_url, http=self.http)

    # -- listener ----------------------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """The ``/healthz`` document: ``status`` (``ok`` while running), live ``sessions``, ``components``,
        the listener's counters when it is on, ``stores``: each opened sqlite store's health (a failing store
        does not change ``status``: what it could not write is held in memory, which a restart would lose),
        and readiness: ``ready`` and every report in ``checks``."""
        reports = self.readiness()
        return {
            "status": "ok" if self._state == "running" else self._state,
            "sessions": len(self.registry),
            "components": [getattr(c, "name", type(c).__name__) for c in self._components],
            "listener": self.listener.stats() if self.listener is not None else None,
            "stores": [msgspec.structs.asdict(h) for h in self.stores_health()],
            "ready": self.live and all(r.ok for r in reports),
            "checks": [msgspec.to_builtins(r) for r in reports],
        }

    @property
    def live(self) -> bool:
        """True while the hooks run and their task group was not cancelled (a component crashed) (``/livez``)."""
        tg = self._tg
        return self._state == "running" and tg is not None and not tg.cancel_scope.cancel_called

    def add_health(self, reporter: HealthReporter) -> None:
        """Make readiness (``/readyz``) also depend on ``reporter.health()`` (the game's own database, say).

        Components, the store and the ban book are asked already when they report health.
        """
        self._health_reporters.append(reporter)

    def readiness(self) -> tuple[ComponentHealth, ...]:
        """The health report of everything that has one: the opened sqlite stores, components, the ban book,
        and what :meth:`add_health` added. Cheap and synchronous (no IO)."""
        candidates: list[object] = [*self._components, self.bans, *self._health_reporters]
        reports = list(self.stores_health())
        for obj in candidates:
            if not isinstance(obj, HealthReporter):
                continue
            try:
                reports.append(obj.health())
            except Exception as exc:
                name = str(getattr(obj, "name", type(obj).__name__))
                log.exception("health() of %s raised", name)
                reports.append(ComponentHealth(name=name, ok=False, error=f"health() raised {type(exc).__name__}"))
        return tuple(reports)

    def ready_document(self) -> dict[str, Any]:
        """The ``/readyz`` document: ``ready`` (the hooks are live and every report is ok), ``status``,
        ``failing`` (names) and every report in ``checks`` (name, ok, error without any secret, since)."""
        reports = self.readiness()
        live = self.live
        failing = [r.name for r in reports if not r.ok]
        ready = live and not failing
        status = "ready" if ready else ("not ready" if live else self._state)
        return {
            "ready": ready,
            "status": status,
            "failing": failing,
            "checks": [msgspec.to_builtins(r) for r in reports],
        }

    def live_document(self) -> dict[str, Any]:
        """The ``/livez`` document: ``live`` and ``status`` (``live``, or the lifecycle state)."""
        live = self.live
        state = "crashed" if self._state == "running" and not live else self._state
        return {"live": live, "status": "live" if live else state}

    def asgi_app(self) -> ASGIApp:
        """The routes of :attr:`router` as an ASGI app, to mount in a Starlette/FastAPI app served by uvicorn
        instead of (or beside) the embedded listener. Limits come from ``config.listener``.

        Call it before :meth:`start`: the start-up checks then know the routes are served (no "not served"
        warning). Links the routes produce are relative, so the app works under any mount prefix.
        """
        self._asgi_mounted = True
        return as_asgi(self.router, limits=limits_from_config(self.config.listener))


def setup(
    config: Config | None = None,
    *,
    on_kick: OnKick | None = None,
    clock: Clock | None = None,
    http_client: httpx.AsyncClient | None = None,
    on_ban: Callable[..., Any] | None = None,
    on_maintenance: Callable[..., Any] | None = None,
    on_notice: Callable[..., Any] | None = None,
    on_ccu_problem: Callable[..., Any] | None = None,
    webstore_profile: Callable[..., Any] | None = None,
) -> Hooks:
    """The one setup call: build a :class:`Hooks` for ``config``; configured components only.

    Args:
        config: the configuration (``Config.from_env()`` by default).
        on_kick: the game's kick callback; without it, kicks close the connection (``session.close()``).
        clock: inject a :class:`~gs_hooks.FakeClock` in tests.
        http_client: a shared ``httpx.AsyncClient`` (one is created and owned otherwise).
        on_ban: called with a ``BanEvent`` when a ban is applied.
        on_maintenance: called with a ``MaintenanceChange`` on each maintenance transition.
        on_notice: called with a ``NoticeRequest`` to show a message to a session (maintenance warnings).
        on_ccu_problem: called with a ``CcuProblem`` when a CCU sample is refused for a non-retryable reason.
        webstore_profile: ``async (cs_code) -> WebstoreProfile | None`` for Hive's ``/webstore-profile``.
    """
    callbacks: dict[str, Callable[..., Any] | None] = {
        "on_ban": on_ban,
        "on_maintenance": on_maintenance,
        "on_notice": on_notice,
        "on_ccu_problem": on_ccu_problem,
        "webstore_profile": webstore_profile,
    }
    if config is None:
        config = Config.from_env()
    hooks = Hooks(config, on_kick=on_kick, clock=clock, http_client=http_client, callbacks=callbacks)
    _wire_components(hooks)
    return hooks


def _wire_components(hooks: Hooks) -> None:
    """Create the components the configuration turns on (each capability adds its block here)."""
    config = hooks.config
    _wire_bans(hooks, config)
    if config.ccu.url is not None:
        _wire_ccu(hooks)
    if config.gamebase.url is not None:
        from .gamebase._wire import wire_gamebase

        wire_gamebase(hooks)
        _wire_ban_poller(hooks, config)
    # gamepot (last: reads the CCU reporter lazily)
    from .gamepot._wire import wire_gamepot

    wire_gamepot(hooks)

    # -- listener (keep last: it starts after and closes before every other component) --
    add_builtin_routes(
        hooks.router,
        health=hooks.health,
        admin_allow=operator_allow(hooks.config.listener.admin_allow),
        ready=hooks.ready_document,
        live=hooks.live_document,
    )
    if hooks.config.listener.listen is not None:
        hooks.listener = Listener(hooks.router, hooks.config.listener)
        hooks.add_component(hooks.listener)


def _wire_ccu(hooks: Hooks) -> None:
    from .ccu import CcuReporter, CcuSpool, SocketCounter, WebCounter

    cc = hooks.config.ccu
    counter: SocketCounter | WebCounter
    if cc.count_mode == "web":
        counter = WebCounter(cc.server_ids, period_s=cc.period_s, time=hooks.clock.time)
        hooks.registry.add_observer(counter.observe)
    else:
        counter = SocketCounter(hooks.registry, cc.count)
    own = cc.spool_path is not None and cc.spool_path != hooks.config.state_path
    if own and cc.spool_path is not None:
        store = Store(cc.spool_path, setting="GS_HOOKS_CCU_SPOOL", name="ccu_spool")
    else:
        store = hooks.store
    hooks.ccu_counter = counter
    hooks.ccu = CcuReporter(
        cc,
        http=hooks.http,
        spool=CcuSpool(store),
        counter=counter,
        clock=hooks.clock,
        on_problem=hooks.callbacks.get("on_ccu_problem"),
        retention_days=hooks.config.gamepot.history_retention_days,
        owns_store=own,
    )
    hooks.add_component(hooks.ccu)


def _wire_ban_poller(hooks: Hooks, config: Config) -> None:
    """The Gamebase ban/release history poller (after the Gamebase client exists), when its period is > 0."""
    g = config.gamebase
    if hooks.gamebase is None or g.ban_poll_s <= 0:
        return
    from .gamebase._ban_poller import BanPoller

    hooks.add_component(
        BanPoller(
            hooks.gamebase,
            hooks.bans,
            store=lambda: hooks.store,
            clock=hooks.clock,
            poll_s=g.ban_poll_s,
            overlap_s=g.ban_overlap_s,
            page_size=g.ban_page_size,
            player_key_format=config.hive.player_key_format,
            backoff_max_s=g.poll_backoff_max_s,
        )
    )


def _new_ban_book(hooks: Hooks) -> BanBook:
    """The ban book, enforcing through the Hooks' kick and callbacks."""

    # Both answer synchronously while the game's callbacks are sync (no coroutine per ban); see BanBook.
    def deliver_ban(callback: Callable[..., Any]) -> Callable[[BanEvent], Awaitable[bool] | None]:
        def on_ban(event: BanEvent) -> Awaitable[bool] | None:
            done = call_callback_nowait(callback, event, what="on_ban")
            return None if isinstance(done, bool) else done

        return on_ban

    def on_ban_now() -> Callable[[BanEvent], Awaitable[bool] | None] | None:
        callback = hooks.callbacks.get("on_ban")  # read per batch: a game may set it after setup()
        return None if callback is None else deliver_ban(callback)

    book = BanBook(
        lambda: hooks.store,
        clock=hooks.clock,
        kick=hooks._kick_banned_nowait,
        on_ban_now=on_ban_now,
        forget_token=hooks._forget_token,
    )

    def spawn(fn: Callable[[], Coroutine[Any, Any, Any]]) -> bool:
        tg = hooks._tg
        if tg is None or not hooks.running:
            return False
        tg.start_soon(fn)
        return True

    book.spawn = spawn
    return book


def _wire_bans(hooks: Hooks, config: Config) -> None:
    """The ban book's timer, and the Hive routes that are configured."""
    from .bans import BanTimer
    from .hive import register_hive_routes

    register_hive_routes(
        hooks.router,
        config,
        book=hooks.bans,
        clock=hooks.clock,
        webstore_profile=hooks.callbacks.get("webstore_profile"),
    )

    # The timer (bans that start later, dropping ended ones) runs when a platform ban source is configured; it
    # reads the store at start when there is one already (no file is created for a process that bans nobody).
    if config.hive.auth_key is not None or (config.gamebase.url is not None and config.gamebase.ban_poll_s > 0):
        load_at_start = config.state_path == ":memory:" or Path(config.state_path).expanduser().exists()
        hooks.add_component(BanTimer(hooks.bans, load_at_start=load_at_start or config.hive.auth_key is not None))
