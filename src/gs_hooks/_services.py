"""What every capability's ``install()`` receives: the shared resources and the ways to plug into the hooks.

:class:`Services` holds the clock, the shared HTTP client (:class:`~gs_hooks.HttpClient`: the library's own
or aiohttp on asyncio, httpx on trio or the game's own ``httpx.AsyncClient``) and the sqlite store (both made on
first use), the session registry and the kicker (provided by the sessions install, which comes first), the router
every capability adds its routes to, and the lists the hooks run: components, health reporters, stores. It also starts
tasks in the hooks' task group (:meth:`Services.spawn`).

Only the wiring sees it (the ``_install.py`` and ``_api.py`` modules, the login flow, ``ops``, ``Hooks``): a
capability's working code takes the narrow dependencies its install hands it (a clock, a client, a callback, the
kicker), so it can be built in a test without the hooks (``tests/test_layers.py`` checks it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx

from ._clock import Clock
from ._component import Component
from ._exceptions import LifecycleError
from ._health import ComponentHealth, HealthReporter
from ._http_client import AutoHttpClient, Backend, HttpClient
from ._lifecycle import Lifecycle, State
from ._store import Store
from .http._app import Router
from .sessions._kicker import Kicker
from .sessions._registry import SessionRegistry

__all__ = ["Services"]

log = logging.getLogger("gs_hooks")


class Services:
    """The shared resources and plug points of one :class:`~gs_hooks.Hooks`.

    Args:
        state_path: the sqlite store's path (``config.state_path``).
        clock: the injected clock.
        http_client: the game's ``httpx.AsyncClient``: every platform call goes through it (left open); without
            it the services make and own an :class:`~gs_hooks._http_client.AutoHttpClient` (the library's own
            client on asyncio, or aiohttp: ``http_backend``; httpx on trio).
        http_backend: the shared client's choice on asyncio (``config.http_backend``: ``fast`` or ``aiohttp``).

    Attributes:
        clock: the injected clock.
        router: the routes served by the listener and the ASGI app.
        lifecycle: the hooks' lifecycle (components may be added while it is new).
    """

    def __init__(
        self,
        state_path: str,
        *,
        clock: Clock,
        http_client: httpx.AsyncClient | None = None,
        http_backend: Backend = "fast",
    ) -> None:
        self.clock = clock
        self.router = Router()
        self.lifecycle = Lifecycle()
        self._state_path = state_path
        self._given_http = http_client
        self._http_backend: Backend = http_backend
        self._http: HttpClient | None = None
        self._store: Store | None = None
        self._extra_stores: list[Store] = []
        self._registry: SessionRegistry | None = None
        self._kicker: Kicker | None = None
        self._components: list[Component] = []
        self._health: list[HealthReporter] = []
        self._tg: anyio.abc.TaskGroup | None = None

    # -- shared resources ------------------------------------------------------------------------------------

    @property
    def http(self) -> HttpClient:
        """The one shared HTTP client of the platform calls (created on first use)."""
        if self._http is None:
            self._http = AutoHttpClient(self._given_http, prefer=self._http_backend)
        return self._http

    @property
    def store(self) -> Store:
        """The sqlite state store (opened on first use).

        Raises:
            StoreError: the file cannot be used as a store (empty, damaged, read-only, disk full).
        """
        if self._store is None:
            self._store = Store(self._state_path)
        return self._store

    @property
    def opened_store(self) -> Store | None:
        """The state store when it was opened, else None (nothing is created)."""
        return self._store

    def replace_store(self, store: Store | None) -> None:
        """Use ``store`` as the state store from now on (tests swap in a failing one)."""
        self._store = store

    def open_existing_store(self) -> None:
        """Open (and so check) the state store when its file exists; a new one is still made on first use.
        Blocks on sqlite: run it on a worker thread."""
        state = self._state_path
        if self._store is None and state != ":memory:" and Path(state).expanduser().exists():
            self._store = Store(state)

    def add_store(self, store: Store) -> None:
        """Report ``store``'s health beside the state store's (a component's own sqlite file, e.g. a CCU spool)."""
        self._extra_stores.append(store)

    def stores(self) -> tuple[Store, ...]:
        """Every opened sqlite store: the state store (when opened) and those :meth:`add_store` added."""
        opened = [] if self._store is None else [self._store]
        return (*opened, *(s for s in self._extra_stores if s is not self._store))

    async def aclose(self) -> None:
        """Close the HTTP client's connections (a client the game gave stays open) and the state store. Shielded."""
        with anyio.CancelScope(shield=True):
            if self._http is not None:
                await self._http.aclose()
                self._http = None
            if self._store is not None:
                self._store.close()

    # -- sessions ---------------------------------------------------------------------------------------------

    def provide_sessions(self, registry: SessionRegistry, kicker: Kicker) -> None:
        """Make the session registry and the kicker available to the installs that follow (the sessions install)."""
        self._registry = registry
        self._kicker = kicker

    @property
    def registry(self) -> SessionRegistry:
        """The live sessions.

        Raises:
            LifecycleError: the sessions install has not run yet.
        """
        if self._registry is None:
            raise LifecycleError("the sessions capability must be installed first")
        return self._registry

    @property
    def kicker(self) -> Kicker:
        """The kick engine.

        Raises:
            LifecycleError: the sessions install has not run yet.
        """
        if self._kicker is None:
            raise LifecycleError("the sessions capability must be installed first")
        return self._kicker

    # -- components and health --------------------------------------------------------------------------------

    def add_component(self, component: Component) -> None:
        """Run ``component`` in the task group from start to close (start order = add order).

        Raises:
            LifecycleError: the hooks have started.
        """
        if self.lifecycle.state is not State.NEW:
            raise LifecycleError("components must be added before start()")
        self._components.append(component)

    @property
    def components(self) -> tuple[Component, ...]:
        """The components, in start order."""
        return tuple(self._components)

    def add_health(self, reporter: HealthReporter) -> None:
        """Make readiness also depend on ``reporter.health()`` (beside the components and the stores)."""
        self._health.append(reporter)

    def readiness(self) -> tuple[ComponentHealth, ...]:
        """Every health report: the opened stores, then the components and reporters that have ``health()``.
        A ``health()`` that raises is reported as failing. Cheap and synchronous (no IO)."""
        reports = [store.health() for store in self.stores()]
        for obj in (*self._components, *self._health):
            if not isinstance(obj, HealthReporter):
                continue
            try:
                reports.append(obj.health())
            except Exception as exc:
                name = str(getattr(obj, "name", type(obj).__name__))
                log.exception("health() of %s raised", name)
                reports.append(ComponentHealth(name=name, ok=False, error=f"health() raised {type(exc).__name__}"))
        return tuple(reports)

    # -- the task group ---------------------------------------------------------------------------------------

    def attach(self, tg: anyio.abc.TaskGroup | None) -> None:
        """Set (or, with None, drop) the task group :meth:`spawn` starts tasks in (the hooks' start)."""
        self._tg = tg

    def detach(self) -> anyio.abc.TaskGroup | None:
        """Drop the task group (the hooks' close) and return it."""
        tg, self._tg = self._tg, None
        return tg

    def spawn(self, fn: Callable[[], Coroutine[Any, Any, Any]]) -> bool:
        """Start ``fn()`` in the task group; False when there is none running (before start, while closing)."""
        tg = self._tg
        if tg is None or self.lifecycle.state not in (State.STARTING, State.RUNNING):
            return False
        tg.start_soon(fn)
        return True

    @property
    def live(self) -> bool:
        """True while running and the task group was not cancelled (a component crashed)."""
        tg = self._tg
        return self.lifecycle.state is State.RUNNING and tg is not None and not tg.cancel_scope.cancel_called

    def observe(self) -> State:
        """The lifecycle state, having noted a crash: running hooks whose task group was cancelled (a component
        or a spawned task raised) are ``CRASHED``."""
        lifecycle = self.lifecycle
        tg = self._tg
        if lifecycle.state is State.RUNNING and tg is not None and tg.cancel_scope.cancel_called:
            lifecycle.move(State.CRASHED)
        return lifecycle.state
