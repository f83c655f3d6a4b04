"""Shared pieces of the gamebase tests: the sandbox's Gamebase served over loopback, and a client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec

from gs_hooks import Config, FakeClock, GamebaseConfig, Hooks, KickRequest, Secret, SessionsConfig, setup
from gs_hooks.gamebase import GamebaseClient
from gs_hooks.http import Request, Response, Router, serve_http
from gs_hooks.http._server import HttpServer
from gs_hooks.sandbox._gamebase import GamebaseSim

APP = "C3JmSctU"
KEY = "IgsaAP-test-secret-key"

Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class Faults:
    """HTTP-level faults in front of the sim: answer the next ``http_500`` requests with HTTP 500, and track how
    many requests are inside the sim at once."""

    http_500: int = 0
    retry_after: str | None = None  # a Retry-After header on those HTTP 500 answers
    inside: int = 0
    max_inside: int = 0
    gate: Any = None  # an anyio.Event the handler waits on before answering (None: answer at once)
    valid_as: str | None = None  # rewrite ``"valid":"Y"`` in successful answers to this state
    seen_paths: list[str] = field(default_factory=list)

    def wrap(self, handler: Handler) -> Handler:
        async def wrapped(request: Request) -> Response:
            self.seen_paths.append(request.path)
            if self.http_500 > 0:
                self.http_500 -= 1
                failure = Response.text("internal error", status=500)
                if self.retry_after is not None:
                    failure.headers.append(("retry-after", self.retry_after))
                return failure
            self.inside += 1
            self.max_inside = max(self.max_inside, self.inside)
            try:
                if self.gate is not None:
                    await self.gate.wait()
                response = await handler(request)
            finally:
                self.inside -= 1
            if self.valid_as is not None:
                response.body = response.body.replace(b'"valid":"Y"', f'"valid":"{self.valid_as}"'.encode())
            return response

        return wrapped


@dataclass
class Env:
    sim: GamebaseSim
    clock: FakeClock
    server: HttpServer
    http: httpx.AsyncClient
    faults: Faults

    @property
    def url(self) -> str:
        return self.server.url

    def client(self, **kwargs: Any) -> GamebaseClient:
        options: dict[str, Any] = {"base_url": self.url, "app_id": APP, "secret_key": KEY, "clock": self.clock}
        options.update(kwargs)
        return GamebaseClient(self.http, **options)


@asynccontextmanager
async def serve_gamebase(
    clock: FakeClock | None = None, *, max_connections: int = 100, **kwargs: Any
) -> AsyncIterator[Env]:
    """The sandbox's Gamebase on a free loopback port, with a shared httpx client."""
    clock = clock or FakeClock()
    sim = GamebaseSim(app_id=APP, secret_key=KEY, clock=clock, **kwargs)
    faults = Faults()
    router = Router()
    for _, method, path, handler in sim.routes() + sim.admin_routes():
        router.add(method, path, faults.wrap(handler))
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    async with serve_http(router, port=0) as server, httpx.AsyncClient(limits=limits) as http:
        yield Env(sim, clock, server, http, faults)


def gamebase_config(env: Env, **settings: Any) -> Config:
    """A Config with Gamebase pointed at the served sim (no retries: a fake clock would hold their backoff)."""
    options: dict[str, Any] = {
        "url": env.url,
        "app_id": APP,
        "secret_key": Secret(KEY),
        "retries": 0,
        "maintenance_poll_s": 30.0,
        "ban_poll_s": 0.0,  # the ban poller is another capability's; keep its requests out of these tests
    }
    sessions = settings.pop("duplicate_login", None)
    options.update(settings)
    config = Config(state_path=":memory:", gamebase=GamebaseConfig(**options))
    if sessions is not None:
        config = msgspec.structs.replace(config, sessions=SessionsConfig(duplicate_login=sessions))
    return config


@dataclass
class Recorder:
    """Collects what the callbacks receive."""

    kicks: list[KickRequest] = field(default_factory=list)
    changes: list[Any] = field(default_factory=list)
    notices: list[Any] = field(default_factory=list)

    def on_kick(self, request: KickRequest) -> None:
        self.kicks.append(request)

    def on_maintenance(self, change: Any) -> None:
        self.changes.append(change)

    def on_notice(self, request: Any) -> None:
        self.notices.append(request)


def make_hooks(env: Env, recorder: Recorder, **settings: Any) -> Hooks:
    return setup(
        gamebase_config(env, **settings),
        clock=env.clock,
        on_kick=recorder.on_kick,
        on_maintenance=recorder.on_maintenance,
        on_notice=recorder.on_notice,
    )


async def run_until(clock: FakeClock, watcher: Any, target: float) -> None:
    """Move the fake clock to ``target`` one wake-up at a time, letting the watcher finish each turn (its polls
    are real HTTP round trips) before time moves on."""
    while True:
        await watcher.wait_idle()
        deadline = clock.next_deadline()
        if deadline is None or deadline > target:
            break
        await clock.advance_to(deadline)
    if target > clock.time():
        await clock.advance_to(target)
    await watcher.wait_idle()


async def refused_token(env: Env, script: str, *, ttl: float) -> tuple[str, str]:
    """Make Gamebase refuse member ``u1``'s login in the way ``script`` names; the (user id, token) to verify.

    ``forged``: a token Gamebase never issued; ``revoked``: revoked after issue; ``other_user``: ``u1``'s token
    presented for ``u2``; ``expired``: ``ttl`` seconds have passed; ``banned``: ``u1`` is banned on Gamebase;
    ``withdrawn``: ``u1``'s member state is ``D``; ``missing``: a token of a user who is not a member. ``u1`` (and
    ``u2`` for ``other_user``) must be members.
    """
    token = env.sim.issue_token("u1", ttl=ttl)
    user = "u1"
    if script == "forged":
        token = "never-issued-token"
    elif script == "revoked":
        env.sim.revoke_token(token)
    elif script == "other_user":
        user = "u2"
    elif script == "expired":
        await env.clock.advance(ttl)
    elif script == "banned":
        env.sim.add_ban("u1")
    elif script == "withdrawn":
        env.sim.set_member_valid("u1", "D")
    elif script == "missing":
        user = "ghost"
        token = env.sim.issue_token(user)
    else:
        raise ValueError(f"no refusal script {script!r}")
    return user, token
