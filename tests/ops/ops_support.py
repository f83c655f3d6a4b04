"""Shared pieces of the operator's-side tests: a running world (the platform sandbox, hooks wired to it with the
listener on loopback, the admin API and the dashboard) and helpers to act in it as a game and as an operator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from gs_hooks import (
    KST,
    Config,
    FakeClock,
    GamebaseConfig,
    HiveConfig,
    Hooks,
    KickRequest,
    ListenerConfig,
    Secret,
    SessionsConfig,
    setup,
)
from gs_hooks.sandbox import Sandbox

ADMIN_KEY = "ops-admin-key-0123456789"
DASH_KEY = "ops-dash-key-0123456789"
HIVE_KEY = "ops-hive-key-0123456789"
GAME_INDEX = 539
APP = "ops-app"
GB_SECRET = "ops-gamebase-secret"
NOW = datetime(2026, 11, 22, 14, 36, 10, tzinfo=KST)

FAMILIES = {  # the hooks' own families, as the parser names them (no _total) -> type
    # name (as the parser names it) -> type
    "gs_hooks_up": "gauge",
    "gs_hooks_build_info": "gauge",
    "gs_hooks_start_time_seconds": "gauge",
    "gs_hooks_ready": "gauge",
    "gs_hooks_component_ok": "gauge",
    "gs_hooks_sessions": "gauge",
    "gs_hooks_server_sessions": "gauge",
    "gs_hooks_server_players": "gauge",
    "gs_hooks_http_connections": "gauge",
    "gs_hooks_http_responses": "counter",
    "gs_hooks_http_refused_connections": "counter",
    "gs_hooks_http_forbidden_connections": "counter",
    "gs_hooks_http_accept_failures": "counter",
    "gs_hooks_logins": "counter",
    "gs_hooks_kicks": "counter",
    "gs_hooks_bans_applied": "counter",
    "gs_hooks_bans_lifted": "counter",
    "gs_hooks_bans_active": "gauge",
    "gs_hooks_webhook_batches": "counter",
    "gs_hooks_webhook_seconds": "histogram",
    "gs_hooks_gamebase_request_seconds": "histogram",
    "gs_hooks_gamebase_errors": "counter",
    "gs_hooks_gamebase_retries": "counter",
    "gs_hooks_admin_requests": "counter",
    "gs_hooks_token_cache_hits": "counter",
    "gs_hooks_token_cache_misses": "counter",
    "gs_hooks_token_verifications": "counter",
    "gs_hooks_token_verifications_in_flight": "gauge",
}


@dataclass
class World:
    sandbox: Sandbox
    hooks: Hooks
    url: str
    clock: FakeClock | None
    kicks: list[KickRequest] = field(default_factory=list)

    def headers(self, key: str = ADMIN_KEY) -> dict[str, str]:
        return {"authorization": f"Bearer {key}"}

    async def login(self, player: str, *, server_id: str = "1", token: str | None = None) -> Any:
        """Open a session on ``server_id`` and log ``player`` in with a sandbox token (or ``token``)."""
        self.sandbox.gamebase.add_member(player)
        session = self.hooks.registry.open_nowait(server_id=server_id)
        return session, await self.hooks.login(session, player, token or self.sandbox.gamebase.issue_token(player))

    async def metrics(self) -> dict[str, Any]:
        """``/metrics`` parsed by prometheus_client's parser: family name -> family."""
        async with httpx.AsyncClient(base_url=self.url) as client:
            r = await client.get("/metrics")
        assert r.status_code == 200, r.text
        return {f.name: f for f in text_string_to_metric_families(r.text)}


def config(sb: Sandbox, *, sessions: SessionsConfig | None = None, **listener: Any) -> Config:
    options: dict[str, Any] = {"listen": "127.0.0.1:0", "dashboard": True, "admin_key": Secret(ADMIN_KEY)}
    options.update(listener)
    return Config(
        state_path=":memory:",
        sessions=sessions or SessionsConfig(),
        gamebase=GamebaseConfig(
            url=sb.url,
            app_id=APP,
            secret_key=Secret(GB_SECRET),
            retries=1,
            maintenance_poll_s=0,
            ban_poll_s=0,
        ),
        hive=HiveConfig(auth_key=Secret(HIVE_KEY), game_index=GAME_INDEX),
        listener=ListenerConfig(**options),
    )


@asynccontextmanager
async def world(
    *, fake_clock: bool = False, sessions: SessionsConfig | None = None, **listener: Any
) -> AsyncIterator[World]:
    """The sandbox and hooks wired to it (listener on a free loopback port, admin key ``ADMIN_KEY``)."""
    clock = FakeClock(NOW) if fake_clock else None
    async with Sandbox.serve(clock=clock, gamebase_app_id=APP, gamebase_secret=GB_SECRET) as sb:
        kicks: list[KickRequest] = []
        hooks = setup(config(sb, sessions=sessions, **listener), clock=clock, on_kick=kicks.append)
        async with hooks:
            assert hooks.listener is not None
            sb.hive.register(hooks.listener.url + hooks.config.hive.suspension_path, HIVE_KEY, GAME_INDEX)
            yield World(sb, hooks, hooks.listener.url, clock, kicks)


def sample_value(family: Any, **labels: str) -> float:
    """The value of the sample of ``family`` with exactly these labels (the ``_total``/``_count`` one for counters
    and histograms)."""
    for s in family.samples:
        if s.labels == labels and not s.name.endswith(("_bucket", "_sum", "_created")):
            return float(s.value)
    raise AssertionError(f"{family.name} has no sample {labels}: {[x.labels for x in family.samples]}")
