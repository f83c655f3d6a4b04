"""The Gamebase ban poller under platform faults, against the sandbox over loopback, on a FakeClock.

The poller is wired by :func:`gs_hooks.setup` (Gamebase URL and ``ban_poll_s`` set). No loss: a ban recorded in
Gamebase's history while the histories cannot be read is applied once they can (its player kicked once, the ban
book durable), a ban released inside the outage is not applied at all; bounded retries: each failed poll makes at
most ``retries + 1`` attempts per history route, and failed polls back off (jittered, doubling up to a cap) but
never stop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from faults_support import (
    GB_APP,
    GB_KEY,
    InflightTransport,
    SleepProbe,
    closed_base_url,
    gamebase_requests,
    quiet,
    run_clock,
    sandbox,
)

from gs_hooks import KST, Config, FakeClock, GamebaseConfig, Hooks, Secret, setup
from gs_hooks.sandbox import Sandbox

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["trio"])]

BANS, RELEASES = "gamebase.bans", "gamebase.ban_releases"
START = datetime(2026, 3, 1, 13, 0, 0, tzinfo=KST)
T0 = START.timestamp()
POLL_S, RETRIES = 60.0, 2
BACKOFF_MAX_S = 300.0  # the poller's default cap on the wait after failed polls
CLIENT_RETRY_S = RETRIES * 2.0  # the most virtual time one failed poll spends in the client's own retry back-off


def fewest_failed_polls(outage_s: float) -> int:
    """The fewest failed polls an outage of ``outage_s`` can see: the first comes within one period of its start,
    then each wait is at most the un-jittered back-off ``min(POLL_S * 2**n, BACKOFF_MAX_S)``."""
    t, n = POLL_S + CLIENT_RETRY_S, 0
    while t <= outage_s:
        n += 1
        t += min(POLL_S * 2**n, BACKOFF_MAX_S) + CLIENT_RETRY_S
    return n


@dataclass
class Game:
    hooks: Hooks
    sb: Sandbox
    clock: FakeClock
    transport: InflightTransport
    probe: SleepProbe
    kicks: list[tuple[str, str]] = field(default_factory=list)
    bans: list[str] = field(default_factory=list)

    async def run_for(self, seconds: float) -> None:
        await run_clock(self.clock, self.probe, seconds)

    @property
    def poller(self) -> Any:
        return next(c for c in self.hooks.components if type(c).__name__ == "BanPoller")


@asynccontextmanager
async def game(tmp_path: Path, start: float = T0) -> AsyncIterator[Game]:
    clock = FakeClock(start)
    transport = InflightTransport()
    async with sandbox(clock) as sb, httpx.AsyncClient(transport=transport) as http:
        gb = GamebaseConfig(
            url=sb.url,
            app_id=GB_APP,
            secret_key=Secret(GB_KEY),
            maintenance_poll_s=0,
            ban_poll_s=POLL_S,
            ban_overlap_s=300.0,
            retries=RETRIES,
            timeout_s=0.25,
        )
        holder: dict[str, Game] = {}
        hooks = setup(
            Config(state_path=str(tmp_path / "state.sqlite3"), gamebase=gb),
            clock=clock,
            http_client=http,
            on_kick=lambda r: holder["g"].kicks.append((r.session.player_id or "", r.reason)),
            on_ban=lambda e: holder["g"].bans.append(e.player_key),
        )
        # the poller and its client sleep on a probe of the clock: the driver then knows when a poll is over
        probe = SleepProbe(clock)
        g = holder["g"] = Game(hooks, sb, clock, transport, probe)
        g.poller.clock = probe
        assert hooks.gamebase is not None
        hooks.gamebase.clock = probe
        for player in ("u1", "u2", "u3"):
            sb.gamebase.add_member(player)
            hooks.registry.bind_player_nowait(hooks.registry.open_nowait(server_id="1"), player)
        with quiet("gs_hooks.gamebase"):
            async with hooks:
                yield g


def start_outage(g: Game, fault: Any) -> None:
    if fault == "refused":
        assert g.hooks.gamebase is not None
        g.hooks.gamebase.base_url = closed_base_url()
    else:
        for route in (BANS, RELEASES):
            g.sb.faults.add(route, **fault)


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
    pytest.param({"kind": "result", "code": -5000002}, id="result-5000002"),
    pytest.param({"kind": "delay", "delay_s": 1e7}, id="slower-than-timeout"),
]


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_ban_made_during_an_outage_is_applied_after_it(tmp_path: Path, fault: Any, anyio_backend: str) -> None:
    # a shorter outage for the slow kind: every attempt of it costs the client's real 0.25 s timeout
    outage_s = 330.0 if isinstance(fault, dict) and fault["kind"] == "delay" else 3600.0
    async with game(tmp_path) as g:
        await g.run_for(150)
        assert g.poller.polls >= 2 and g.poller.failures == 0
        watermark = g.poller.watermark
        start_outage(g, fault)
        before = {r: gamebase_requests(g.sb, r) for r in (BANS, RELEASES)}
        polls_before, sent_before = g.poller.polls + g.poller.failures, g.transport.sent
        await g.run_for(60)
        # during the outage: u1 banned for a week, u2 banned then released
        g.sb.gamebase.add_ban("u1", end=g.clock.time() + 7 * 86_400, message="cheating")
        await g.run_for(120)
        g.sb.gamebase.add_ban("u2", end=g.clock.time() + 86_400)
        await g.run_for(120)
        g.sb.gamebase.release_ban("u2")
        await g.run_for(outage_s - 300)
        # blind: nothing applied, nothing kicked, the watermark did not move
        assert g.kicks == [] and g.bans == []
        assert g.hooks.bans.active_ban("u1") is None
        assert g.poller.watermark == watermark
        failed_polls = g.poller.failures
        assert failed_polls >= fewest_failed_polls(outage_s)
        # bounded: a failed poll stops at the first history that fails, after 1 + retries attempts (one poll may
        # still be in flight, between its retries, when the clock stops: its attempts are sent, not yet counted)
        attempts = g.transport.sent - sent_before
        assert attempts <= (RETRIES + 1) * (g.poller.polls + g.poller.failures - polls_before + 1)
        if fault != "refused":
            assert gamebase_requests(g.sb, BANS) - before[BANS] == attempts
            assert gamebase_requests(g.sb, RELEASES) == before[RELEASES]
        end_outage(g, fault)
        await g.run_for(BACKOFF_MAX_S + 10)
        # the next (backed-off) poll reads the whole gap: u1 banned and kicked once, u2 (released already) not banned
        assert g.kicks == [("u1", "ban")]
        assert g.bans == ["u1"]
        ban = g.hooks.bans.active_ban("u1")
        assert ban is not None and ban.source == "gamebase" and ban.message == "cheating"
        assert g.hooks.bans.active_ban("u2") is None
        assert g.poller.last_error is None, g.poller.last_error
        assert g.poller.watermark is not None and watermark is not None and g.poller.watermark > watermark
        # re-reading the overlap later changes nothing (idempotent): no second kick or event
        await g.run_for(10 * POLL_S)
        assert g.kicks == [("u1", "ban")] and g.bans == ["u1"]
        restart_at = g.clock.time() + 60
    # durable: a new process on the same state file knows the ban without asking Gamebase
    async with game(tmp_path, restart_at) as again:
        again.sb.faults.add("*", "status", status=503)
        await again.run_for(5)
        assert again.hooks.bans.active_ban("u1") is not None
        assert again.hooks.bans.active_ban("u2") is None


async def test_the_release_history_failing_alone_loses_neither_bans_nor_releases(
    tmp_path: Path, anyio_backend: str
) -> None:
    """Only the release history fails (HTTP 500) for half an hour: bans read in those polls are not half-applied —
    the watermark stays, and the poll after recovery applies the bans and the releases together."""
    async with game(tmp_path) as g:
        await g.run_for(90)
        g.sb.faults.add(RELEASES, "status", status=500)
        g.sb.gamebase.add_ban("u1", end=g.clock.time() + 86_400)
        g.sb.gamebase.add_ban("u3", end=g.clock.time() + 86_400)
        await g.run_for(120)
        g.sb.gamebase.release_ban("u3")
        await g.run_for(1800)
        assert g.poller.failures >= fewest_failed_polls(1920)
        end_outage(g, {})
        await g.run_for(BACKOFF_MAX_S + 10)
        assert g.kicks == [("u1", "ban")]
        assert g.hooks.bans.active_ban("u1") is not None and g.hooks.bans.active_ban("u3") is None


async def test_polls_back_off_during_a_long_outage(tmp_path: Path, anyio_backend: str) -> None:
    async with game(tmp_path) as g:
        await g.run_for(90)
        start_outage(g, {"kind": "status", "status": 503})
        await g.run_for(6 * 3600)
        # with a back-off capped at even 5 minutes, six hours would cost well under half the polls of a fixed period
        assert g.poller.failures < (6 * 3600 / POLL_S) / 2
