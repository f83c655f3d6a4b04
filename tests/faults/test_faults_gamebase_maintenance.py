"""The maintenance watcher under poll outages, against the sandbox's Gamebase over loopback, on a FakeClock.

No flapping: through an outage the watcher keeps its last known state — no ``on_maintenance`` call, no kick, no
gate change — until Gamebase answers again, whatever the fault (refused, dropped, 5xx, -5000xxx, slower than the
timeout). An announced window still begins on time by the clock (it was announced before the outage); an active
window only ends on a fresh answer. Failed polls back off to ``backoff_max_s``, jittered: bounded polls over
hours, and watchers that lost Gamebase together do not poll in lockstep.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import httpx
import pytest
from faults_support import GB_APP, GB_KEY, closed_base_url, gamebase_client, gamebase_requests, quiet, sandbox

from gs_hooks import KST, Config, FakeClock, GamebaseConfig, Hooks, KickRequest, Secret, setup
from gs_hooks.gamebase import MaintenanceChange, MaintenanceState, MaintenanceWatcher
from gs_hooks.sandbox import Sandbox

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["trio"])]

ROUTE = "gamebase.maintenance"
START = datetime(2026, 3, 1, 13, 0, 5, tzinfo=KST)
T0 = START.timestamp()
NONE, ANNOUNCED, ACTIVE, ENDED = (
    MaintenanceState.NONE,
    MaintenanceState.ANNOUNCED,
    MaintenanceState.ACTIVE,
    MaintenanceState.ENDED,
)


class Game:
    """What the game sees: maintenance changes, kicks, and the gate, sampled over time."""

    def __init__(self, hooks: Hooks, watcher: MaintenanceWatcher, sb: Sandbox, clock: FakeClock) -> None:
        self.hooks, self.watcher, self.sb, self.clock = hooks, watcher, sb, clock
        self.changes: list[tuple[MaintenanceState, MaintenanceState]] = []
        self.kicks: list[str] = []
        self.gate: list[bool] = []

    def on_maintenance(self, change: MaintenanceChange) -> None:
        self.changes.append((change.previous, change.state))

    def on_kick(self, request: KickRequest) -> None:
        self.kicks.append(request.reason)

    async def run_for(self, seconds: float) -> None:
        """Advance virtual time, one sleeper's deadline at a time, letting the watcher finish each turn (its real
        HTTP poll included); the gate is sampled after every turn."""
        target = self.clock.time() + seconds
        while True:
            await self.watcher.wait_idle()
            await self.clock.settle()
            self.gate.append(self.watcher.gate_error() is not None)
            deadline = self.clock.next_deadline()
            if deadline is None or deadline > target:
                break
            await self.clock.advance_to(max(deadline, self.clock.time()))
        await self.clock.advance_to(target)
        await self.watcher.wait_idle()
        self.gate.append(self.watcher.gate_error() is not None)

    def polls(self) -> int:
        return gamebase_requests(self.sb, ROUTE)


@asynccontextmanager
async def game(**settings: Any) -> AsyncIterator[Game]:
    clock = FakeClock(START)
    async with sandbox(clock) as sb, httpx.AsyncClient() as http:
        gb = GamebaseConfig(
            url=sb.url,
            app_id=GB_APP,
            secret_key=Secret(GB_KEY),
            maintenance_poll_s=30.0,
            maintenance_warn_s=(),
            timeout_s=0.25,
            **settings,
        )
        holder: dict[str, Game] = {}
        hooks = setup(
            Config(state_path=":memory:", gamebase=gb),
            clock=clock,
            http_client=http,
            on_maintenance=lambda change: holder["g"].on_maintenance(change),
            on_kick=lambda request: holder["g"].on_kick(request),
        )
        assert hooks.maintenance is not None
        g = holder["g"] = Game(hooks, hooks.maintenance, sb, clock)
        for k in range(3):
            s = hooks.registry.open_nowait(server_id="1")
            hooks.registry.bind_player_nowait(s, f"p{k}")
        with quiet("gs_hooks.gamebase"):  # a warning per failed poll: the harness would keep them all
            async with hooks:
                yield g


def start_outage(g: Game, fault: Any, duration_s: float) -> None:
    if fault == "refused":
        assert g.hooks.gamebase is not None
        g.hooks.gamebase.base_url = closed_base_url()
    else:
        g.sb.faults.add(ROUTE, duration_s=duration_s, **fault)


def end_outage(g: Game, fault: Any) -> None:
    if fault == "refused":
        assert g.hooks.gamebase is not None
        g.hooks.gamebase.base_url = g.sb.url
    else:
        g.sb.faults.clear()


FAULTS: list[Any] = [
    pytest.param("refused", id="connection-refused"),
    pytest.param({"kind": "drop"}, id="dropped-connections"),
    pytest.param({"kind": "status", "status": 503}, id="http-503"),
    pytest.param({"kind": "result", "code": -5000003}, id="result-5000003"),
    # held on the sandbox's fake clock, which does not move during the request: the client's 0.25 s timeout ends it
    pytest.param({"kind": "delay", "delay_s": 1e7}, id="slower-than-timeout"),
]


@pytest.mark.parametrize("fault", FAULTS)
async def test_an_active_maintenance_holds_through_a_poll_outage(fault: Any, anyio_backend: str) -> None:
    """Maintenance 13:05–13:30 begins; Gamebase becomes unreachable at 13:10 until 14:10. The window ends at
    13:30 by Gamebase's account, but the watcher only learns it at 14:10: until then the gate stays shut, with no
    callback and no kick; the first fresh answer ends the maintenance exactly once."""
    async with game() as g:
        g.sb.gamebase.set_maintenance(T0 + 295, T0 + 1795, message="patch 1.2")
        await g.run_for(60)
        assert g.changes == [(NONE, ANNOUNCED)]
        await g.run_for(600 - 60)  # 13:10: active, everyone kicked once
        assert g.changes == [(NONE, ANNOUNCED), (ANNOUNCED, ACTIVE)]
        assert g.kicks == ["maintenance"] * 3
        assert g.watcher.state is ACTIVE
        polls_before, gate_samples = g.polls(), len(g.gate)
        start_outage(g, fault, 3600)
        await g.run_for(3600)
        # an hour of failed polls: nothing changed, the gate stayed shut at every turn
        assert g.changes == [(NONE, ANNOUNCED), (ANNOUNCED, ACTIVE)]
        assert g.kicks == ["maintenance"] * 3
        assert g.watcher.state is ACTIVE
        assert all(g.gate[gate_samples:])
        assert g.watcher.consecutive_failures >= 5 and g.watcher.last_error is not None
        # bounded polling: back-off doubles from 30 s to the 300 s cap (60, 120, 240, then 300), each wait jittered
        # down to no less than half: at least 30+60+120, then at least 150 s between polls
        failed = g.watcher.consecutive_failures
        assert failed <= 3 + 3600 // 150 + 1
        if fault != "refused":
            assert g.polls() - polls_before == failed
        end_outage(g, fault)
        await g.run_for(300)
        assert g.watcher.consecutive_failures == 0 and g.watcher.last_error is None
        assert g.changes[2:] in ([(ACTIVE, ENDED)], [(ACTIVE, ENDED), (ENDED, NONE)])
        assert g.watcher.gate_error() is None
        assert g.kicks == ["maintenance"] * 3


@pytest.mark.parametrize("fault", FAULTS[:4])
async def test_no_maintenance_stays_no_maintenance_through_an_outage(fault: Any, anyio_backend: str) -> None:
    async with game() as g:
        await g.run_for(60)
        start_outage(g, fault, 2 * 3600)
        await g.run_for(2 * 3600)
        assert g.changes == [] and g.kicks == [] and not any(g.gate)
        assert g.watcher.state is NONE
        end_outage(g, fault)
        await g.run_for(300)
        assert g.changes == [] and g.kicks == [] and not any(g.gate)
        assert g.watcher.consecutive_failures == 0


async def test_an_announced_window_begins_on_time_during_an_outage_and_ends_only_after_it(anyio_backend: str) -> None:
    """Announced 13:10–13:20, Gamebase unreachable 13:05–14:00: the window begins at 13:10 by the clock (one
    change, one round of kicks), stays active past 13:20 while blind, and ends once at the first fresh answer."""
    async with game() as g:
        g.sb.gamebase.set_maintenance(T0 + 595, T0 + 1195)
        await g.run_for(280)
        assert g.changes == [(NONE, ANNOUNCED)]
        start_outage(g, {"kind": "status", "status": 502}, 3300)
        await g.run_for(595 - 280 + 1)
        assert g.changes == [(NONE, ANNOUNCED), (ANNOUNCED, ACTIVE)]
        assert g.kicks == ["maintenance"] * 3
        await g.run_for(3300 - 316)
        assert g.changes == [(NONE, ANNOUNCED), (ANNOUNCED, ACTIVE)]
        assert g.watcher.state is ACTIVE and g.watcher.gate_error() is not None
        await g.run_for(600)  # the outage is over (14:00): the next poll ends the maintenance
        assert g.changes[2:] in ([(ACTIVE, ENDED)], [(ACTIVE, ENDED), (ENDED, NONE)])
        assert g.kicks == ["maintenance"] * 3


async def test_a_poll_outage_of_days_keeps_backing_off_without_stopping_the_watcher(anyio_backend: str) -> None:
    """More than 1,024 failed polls in a row (about 3.5 days at the default 30 s / 300 s) must not crash the
    watcher. A tiny period reaches that streak in a few virtual minutes."""
    clock = FakeClock(START)
    async with sandbox(clock) as sb, httpx.AsyncClient() as http:
        hooks = setup(Config(state_path=":memory:"), clock=clock, http_client=http)
        client = gamebase_client(http, closed_base_url(), clock, timeout_s=0.25)
        watcher = MaintenanceWatcher(client, hooks.kicker, clock=clock, poll_s=0.01, backoff_max_s=0.02, warn_s=())
        hooks.add_component(watcher)
        with quiet("gs_hooks.gamebase"):
            async with hooks:
                while watcher.consecutive_failures < 1030:
                    await watcher.wait_idle()
                    await clock.settle()
                    deadline = clock.next_deadline()
                    assert deadline is not None
                    await clock.advance_to(max(deadline, clock.time()))
                client.base_url = sb.url
                await clock.advance(1.0)
                await watcher.wait_idle()
                assert watcher.consecutive_failures == 0
                assert watcher.state is NONE


async def test_two_watchers_back_off_on_different_schedules(anyio_backend: str) -> None:
    clock = FakeClock(START)
    async with sandbox(clock) as sb, httpx.AsyncClient() as http:
        hooks = setup(Config(state_path=":memory:"), clock=clock, http_client=http)
        watchers = [
            MaintenanceWatcher(
                gamebase_client(http, sb.url, clock),
                hooks.kicker,
                clock=clock,
                poll_s=30.0,
                backoff_max_s=300.0,
                warn_s=(),
            )
            for _ in range(2)
        ]
        for w in watchers:
            hooks.add_component(w)
        sb.faults.add(ROUTE, "status", status=503)
        with quiet("gs_hooks.gamebase"):
            async with hooks:
                target = clock.time() + 3600
                while True:
                    for w in watchers:
                        await w.wait_idle()
                    await clock.settle()
                    deadline = clock.next_deadline()
                    if deadline is None or deadline > target:
                        break
                    await clock.advance_to(max(deadline, clock.time()))
        times = [hit.at for hit in sb.faults.fired]
        # two watchers, in lockstep, would poll at the same instants: every instant twice
        assert len(set(times)) > len(times) // 2 + 1
