"""The sandbox: every platform API of the specs behind one loopback HTTP server, plus ``/_sandbox`` control.

Strategy: each platform part (CCU collector, GamePot inquiry, Gamebase simulator, Hive sender) keeps its own
state and handlers; :class:`Sandbox` composes them on one :class:`~gs_hooks.http.Router`, registering every
platform route through the fault-injection wrapper under a route name, and the admin routes directly. The
server is the project's own h11 listener (:class:`~gs_hooks.http.HttpServer`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx

from .._clock import Clock, SystemClock
from ..http._app import Handler, Request, Response, Router
from ..http._server import HttpLimits, HttpServer
from ._faults import Faults, ResultRenderer
from ._gamebase import GamebaseSim
from ._gamepot import GamePotSim
from ._hive_ccu import CcuCollector
from ._hive_sender import HiveSender

__all__ = ["CCU_PATH", "Sandbox"]

log = logging.getLogger("gs_hooks.sandbox")

CCU_PATH = "/modules/gameuser/currentuser/"
GAMEPOT_CCU_PATH = "/v1/api/project/{projectId}/user/statistics/ccu"
# Every client of the emulator is on this machine, usually one address: no per-address limit below the cap.
_LIMITS = HttpLimits(
    max_body_bytes=1 << 20, handler_timeout_s=3600.0, max_connections=1024, max_connections_per_address=1024
)


class _BadRequest(Exception):
    pass


def _json_body(request: Request) -> dict[str, Any]:
    if not request.body.strip():
        return {}
    try:
        doc = json.loads(request.body)
    except ValueError as exc:
        raise _BadRequest(f"body is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise _BadRequest("body must be a JSON object")
    return doc


def _admin(fn: Callable[[Request], Awaitable[Any]]) -> Handler:
    """An admin handler: returns JSON, turns bad input into a 400 with the reason."""

    async def handler(request: Request) -> Response:
        try:
            result = await fn(request)
        except (_BadRequest, ValueError, TypeError, KeyError, RuntimeError) as exc:
            return Response.error(400, str(exc) or type(exc).__name__)
        if isinstance(result, Response):
            return result
        return Response.json(result)

    return handler


def _mask(key: str) -> str:
    return key[:4] + "…" if len(key) > 4 else "…"


class Sandbox:
    """The platform emulator.

    Args:
        ccu_period_s: the CCU grid the collector checks dates against (120 → even minutes; 60 → every minute).
        clock: the clock for arrival times, date defaults, windows and delays (default: the system clock).
        game_keys: Hive game keys the collector accepts (others get 302).
        gamebase_app_id / gamebase_secret: what the Gamebase simulator requires.
        gamepot_project_id / gamepot_api_key: the GamePot project and its active key.

    Attributes:
        ccu: the Hive CCU collector (:class:`CcuCollector`: ``samples``, ``attempts``, ``duplicate_requests``,
            ``duplicates_saved``...).
        gamepot: the GamePot dashboard (:class:`GamePotSim`: projects and keys).
        hive: the Hive sender (:class:`HiveSender`: suspension pushes, web-store calls).
        gamebase: the Gamebase simulator (:class:`GamebaseSim`: members, tokens, bans, maintenance...).
        faults: fault rules (:class:`Faults`).
        game_keys: the accepted Hive game keys (configured order first).
        gamebase_app_id / gamebase_secret / gamepot_project_id / gamepot_api_key: the values given.
        router: the routes (mountable elsewhere).
        server: the running HTTP server (inside :meth:`serve`).
    """

    def __init__(
        self,
        *,
        ccu_period_s: int = 120,
        clock: Clock | None = None,
        game_keys: Iterable[str] = ("sandbox_game",),
        gamebase_app_id: str = "sandbox-app",
        gamebase_secret: str = "sandbox-secret",  # noqa: S107 - a sandbox default, not a credential
        gamepot_project_id: str = "sandbox-project",
        gamepot_api_key: str = "sandbox-gamepot-key",
    ) -> None:
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.faults = Faults(self.clock)
        self.ccu = CcuCollector(self.clock, ccu_period_s, set(game_keys))
        self.gamepot = GamePotSim(self.clock, self.ccu.totals, ccu_period_s)
        self.gamepot.add_project(gamepot_project_id)
        self.gamepot.set_key(gamepot_api_key, gamepot_project_id)
        self.gamepot_project_id = gamepot_project_id
        self.gamepot_api_key = gamepot_api_key
        self.hive = HiveSender(self.clock)
        self.gamebase_app_id = gamebase_app_id
        self.gamebase_secret = gamebase_secret
        self._configured_keys = tuple(dict.fromkeys(game_keys))
        self.gamebase = GamebaseSim(app_id=gamebase_app_id, secret_key=gamebase_secret, clock=self.clock)
        self.route_names: list[str] = []
        self.router = Router()
        self.server: HttpServer | None = None
        self._add_routes()

    # -- composition -------------------------------------------------------------------------------------

    def _platform(self, name: str, method: str, path: str, handler: Handler, render: ResultRenderer) -> None:
        self.router.add(method, path, self.faults.wrap(name, handler, render))
        if name not in self.route_names:
            self.route_names.append(name)

    def _add_routes(self) -> None:
        for path in (CCU_PATH, CCU_PATH.rstrip("/")):
            self._platform("ccu", "POST", path, self.ccu.handle, self.ccu.answer_injected)
        self._platform("gamepot.ccu", "GET", GAMEPOT_CCU_PATH, self.gamepot.handle, self.gamepot.answer_injected)
        for name, method, path, handler in self.gamebase.routes():
            self._platform(name, method, path, handler, self._gamebase_result)
        for _name, method, path, handler in self.gamebase.admin_routes():
            self.router.add(method, path, handler)
        admin: list[tuple[str, str, Callable[[Request], Awaitable[Any]]]] = [
            ("GET", "/_sandbox", self._a_info),
            ("POST", "/_sandbox/reset", self._a_reset),
            ("GET", "/_sandbox/ccu/samples", self._a_ccu_samples),
            ("GET", "/_sandbox/ccu/attempts", self._a_ccu_attempts),
            ("GET", "/_sandbox/ccu/stats", self._a_ccu_stats),
            ("PUT", "/_sandbox/ccu/game-keys", self._a_ccu_game_keys),
            ("PUT", "/_sandbox/ccu/sum-check", self._a_ccu_sum_check),
            ("GET", "/_sandbox/faults", self._a_faults),
            ("POST", "/_sandbox/faults", self._a_fault_add),
            ("DELETE", "/_sandbox/faults", self._a_faults_clear),
            ("DELETE", "/_sandbox/faults/{rule_id}", self._a_fault_remove),
            ("GET", "/_sandbox/gamepot", self._a_gamepot),
            ("PUT", "/_sandbox/gamepot/keys/{key}", self._a_gamepot_key),
            ("DELETE", "/_sandbox/gamepot/keys/{key}", self._a_gamepot_key_remove),
            ("PUT", "/_sandbox/gamepot/projects/{projectId}", self._a_gamepot_project),
            ("DELETE", "/_sandbox/gamepot/projects/{projectId}", self._a_gamepot_project_remove),
            ("POST", "/_sandbox/hive/register", self._a_hive_register),
            ("POST", "/_sandbox/hive/suspensions", self._a_hive_push),
            ("GET", "/_sandbox/hive/suspensions", self._a_hive_history),
            ("POST", "/_sandbox/hive/webstore", self._a_hive_webstore),
        ]
        for method, path, fn in admin:
            self.router.add(method, path, _admin(fn))

    # -- running -----------------------------------------------------------------------------------------

    @classmethod
    @asynccontextmanager
    async def serve(
        cls,
        port: int = 0,
        *,
        host: str = "127.0.0.1",
        ccu_period_s: int = 120,
        clock: Clock | None = None,
        game_keys: Iterable[str] = ("sandbox_game",),
        gamebase_app_id: str = "sandbox-app",
        gamebase_secret: str = "sandbox-secret",  # noqa: S107 - a sandbox default, not a credential
        gamepot_project_id: str = "sandbox-project",
        gamepot_api_key: str = "sandbox-gamepot-key",
        client: httpx.AsyncClient | None = None,
    ) -> AsyncIterator[Sandbox]:
        """Run a sandbox on ``host:port`` (0 = a free port) for the duration of the ``async with`` block.

        Args:
            port / host: where to listen (loopback by default).
            client: the ``httpx.AsyncClient`` the Hive sender uses (default: its own, made on first use).
            others: as for :class:`Sandbox`.

        Yields:
            the running :class:`Sandbox` (``sb.url``, ``sb.urls()``).
        """
        sandbox = cls(
            ccu_period_s=ccu_period_s,
            clock=clock,
            game_keys=game_keys,
            gamebase_app_id=gamebase_app_id,
            gamebase_secret=gamebase_secret,
            gamepot_project_id=gamepot_project_id,
            gamepot_api_key=gamepot_api_key,
        )
        sandbox.hive.client = client
        server = HttpServer(sandbox.router, host=host, port=port, limits=_LIMITS)
        try:
            async with anyio.create_task_group() as tg:
                await tg.start(server.run)
                sandbox.server = server
                try:
                    yield sandbox
                finally:
                    tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # One failure (a bind error, or the caller's own exception from the block): raise it as itself.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
        finally:
            sandbox.server = None
            with anyio.CancelScope(shield=True):
                await sandbox.hive.aclose()

    @property
    def url(self) -> str:
        """Base URL of the running sandbox."""
        if self.server is None:
            raise RuntimeError("the sandbox is not running: use `async with Sandbox.serve() as sb`")
        return self.server.url

    @property
    def port(self) -> int:
        """Port of the running sandbox."""
        return int(self.url.rsplit(":", 1)[1])

    @property
    def game_keys(self) -> tuple[str, ...]:
        """The Hive game keys the collector accepts now: the configured ones first, in order, then any added."""
        live = self.ccu.game_keys
        first = tuple(k for k in self._configured_keys if k in live)
        return first + tuple(sorted(live - set(first)))

    def urls(self) -> dict[str, str]:
        """The URLs to configure: ``ccu_url``, ``gamebase_url``, ``gamepot_url``, ``admin_url``."""
        base = self.url
        return {
            "ccu_url": base + CCU_PATH,
            "gamebase_url": base,
            "gamepot_url": base,
            "admin_url": base + "/_sandbox",
        }

    def reset_nowait(self) -> None:
        """Forget CCU samples and attempts, fault rules, Hive history and the Gamebase simulator's scripted state
        (game keys, GamePot projects and keys, the Hive registration and the app id / secret stay)."""
        self.ccu.reset_nowait()
        self.faults.clear()
        self.faults.fired.clear()
        self.hive.reset_nowait()
        self.gamebase.reset_nowait()

    async def _gamebase_result(self, request: Request, code: int) -> Response:
        """An injected Gamebase result code, answered by the simulator in the platform's failure shape."""
        return self.gamebase.error_response(
            request, code, f"Injected failure {code} (sandbox fault)", throw_point="sandbox"
        )

    # -- admin handlers ----------------------------------------------------------------------------------

    async def _a_info(self, request: Request) -> Any:
        return {
            "urls": self.urls(),
            "routes": self.route_names,
            "gamebase_app_id": self.gamebase_app_id,
            "gamepot_project_id": self.gamepot_project_id,
            "ccu": self.ccu.stats(),
            "faults": [r.to_json() for r in self.faults.rules],
        }

    async def _a_reset(self, request: Request) -> Any:
        self.reset_nowait()
        return {"reset": True}

    async def _a_ccu_samples(self, request: Request) -> Any:
        q = request.query
        samples = self.ccu.samples_for(q.get("game"), q.get("server"))
        return {"count": len(samples), "samples": [s.to_json() for s in samples]}

    async def _a_ccu_attempts(self, request: Request) -> Any:
        return {"count": len(self.ccu.attempts), "attempts": [a.to_json() for a in self.ccu.attempts]}

    async def _a_ccu_stats(self, request: Request) -> Any:
        return self.ccu.stats()

    async def _a_ccu_game_keys(self, request: Request) -> Any:
        keys = _json_body(request).get("game_keys")
        if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
            raise _BadRequest('expected {"game_keys": ["key", ...]}')
        self.ccu.set_game_keys(keys)
        return {"game_keys": sorted(self.ccu.game_keys)}

    async def _a_ccu_sum_check(self, request: Request) -> Any:
        enabled = _json_body(request).get("enabled")
        if not isinstance(enabled, bool):
            raise _BadRequest('expected {"enabled": true|false}')
        self.ccu.sum_check = enabled
        return {"sum_check": enabled}

    async def _a_faults(self, request: Request) -> Any:
        return {
            "rules": [r.to_json() for r in self.faults.rules],
            "fired": len(self.faults.fired),
            "routes": self.route_names,
        }

    async def _a_fault_add(self, request: Request) -> Any:
        spec = _json_body(request)
        route = spec.get("route", "*")
        if route != "*" and route not in self.route_names:
            raise _BadRequest(f"unknown route name {route!r}; known: {', '.join(['*', *self.route_names])}")
        return self.faults.add_from_json(spec).to_json()

    async def _a_faults_clear(self, request: Request) -> Any:
        return {"removed": self.faults.clear(request.query.get("route"))}

    async def _a_fault_remove(self, request: Request) -> Any:
        raw = request.path_params["rule_id"]
        if not raw.isdigit():
            raise _BadRequest("rule id must be an integer")
        if not self.faults.remove(int(raw)):
            return Response.error(404, f"no fault rule {raw}")
        return {"removed": 1}

    async def _a_gamepot(self, request: Request) -> Any:
        return {
            "projects": {p: (list(g) if g is not None else None) for p, g in self.gamepot.projects.items()},
            "keys": [
                {"key": _mask(k), "project_id": v.project_id, "state": v.state, "expires_at": v.expires_at}
                for k, v in self.gamepot.keys.items()
            ],
        }

    async def _a_gamepot_key(self, request: Request) -> Any:
        body = _json_body(request)
        project = body.get("project_id", self.gamepot_project_id)
        state = body.get("state", "active")
        expires_at = body.get("expires_at")
        if not isinstance(project, str) or not isinstance(state, str):
            raise _BadRequest("project_id and state must be strings")
        if expires_at is not None and not isinstance(expires_at, int | float):
            raise _BadRequest("expires_at must be epoch seconds")
        self.gamepot.set_key(request.path_params["key"], project, state, expires_at=expires_at)  # type: ignore[arg-type]
        return {"project_id": project, "state": state, "expires_at": expires_at}

    async def _a_gamepot_key_remove(self, request: Request) -> Any:
        self.gamepot.remove_key(request.path_params["key"])
        return {"removed": True}

    async def _a_gamepot_project(self, request: Request) -> Any:
        games = _json_body(request).get("games")
        if games is not None and (not isinstance(games, list) or not all(isinstance(g, str) for g in games)):
            raise _BadRequest('expected {"games": ["game key", ...]} or {"games": null} for every game')
        self.gamepot.add_project(request.path_params["projectId"], games)
        return {"project_id": request.path_params["projectId"], "games": games}

    async def _a_gamepot_project_remove(self, request: Request) -> Any:
        self.gamepot.remove_project(request.path_params["projectId"])
        return {"removed": True}

    async def _a_hive_register(self, request: Request) -> Any:
        body = _json_body(request)
        url, key, index = body.get("url"), body.get("auth_key"), body.get("game_index")
        server_url = body.get("server_url")
        if not isinstance(url, str) or not isinstance(key, str) or not isinstance(index, int):
            raise _BadRequest('expected {"url": str, "auth_key": str, "game_index": int, "server_url"?: str}')
        if server_url is not None and not isinstance(server_url, str):
            raise _BadRequest("server_url must be a string")
        target = self.hive.register(url, key, index, server_url=server_url)
        return {"url": target.url, "game_index": target.game_index, "server_url": target.server_url}

    async def _a_hive_push(self, request: Request) -> Any:
        body = _json_body(request)
        items = body.get("items")
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise _BadRequest('expected {"items": [{"player_id", "status", "start_date", "end_date"}, ...]}')
        retries = body.get("retries", 0)
        batch_size = body.get("batch_size", 100)
        delay = body.get("retry_delay_s", 0.0)
        auth_key = body.get("auth_key")
        if not isinstance(retries, int) or not isinstance(batch_size, int) or not isinstance(delay, int | float):
            raise _BadRequest("retries and batch_size must be integers, retry_delay_s a number")
        if auth_key is not None and not isinstance(auth_key, str):
            raise _BadRequest("auth_key must be a string")
        report = await self.hive.push_suspensions(
            items, batch_size=batch_size, retries=retries, retry_delay_s=float(delay), auth_key=auth_key
        )
        return report.to_json()

    async def _a_hive_history(self, request: Request) -> Any:
        return {"count": len(self.hive.history), "attempts": [a.to_json() for a in self.hive.history]}

    async def _a_hive_webstore(self, request: Request) -> Any:
        body = _json_body(request)
        url, cs_code, headers = body.get("url"), body.get("cs_code"), body.get("headers", {})
        if not isinstance(url, str) or not isinstance(cs_code, str) or not isinstance(headers, dict):
            raise _BadRequest('expected {"url": str, "cs_code": str, "headers"?: {name: value}}')
        report = await self.hive.call_webstore(url, cs_code, headers={str(k): str(v) for k, v in headers.items()})
        return report.to_json()
