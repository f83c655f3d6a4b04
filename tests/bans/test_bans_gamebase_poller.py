"""The Gamebase ban poller against the sandbox's Gamebase simulator: paging, overlap, releases, a persisted
watermark, failures that keep the watermark."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

import gs_hooks
from gs_hooks import KST, FakeClock
from gs_hooks._time import to_datetime
from gs_hooks.bans._poller import BanPoller
from gs_hooks.sandbox import Sandbox

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=KST)


class Game:
    def __init__(self, hooks: gs_hooks.Hooks, kicks: list[gs_hooks.KickRequest]) -> None:
        self.hooks = hooks
        self.kicks = kicks

    @property
    def poller(self) -> BanPoller:
        (poller,) = [c for c in self.hooks.components if isinstance(c, BanPoller)]
        return poller

    def login(self, player: str) -> gs_hooks.Session:
        session = self.hooks.registry.open_nowait()
        self.hooks.bind_player(session, player)
        return session

    async def polled(self, n: int) -> None:
        """Wait (bounded) until the poller has completed ``n`` polls (the HTTP exchange takes real time)."""
        with anyio.fail_after(10):
            while self.poller.polls < n:
                await anyio.sleep(0.005)


@asynccontextmanager
async def sandbox(clock: FakeClock) -> AsyncIterator[Sandbox]:
    async with Sandbox.serve(port=0, clock=clock) as sb:
        yield sb


@asynccontextmanager
async def game(sb: Sandbox, path: Path, clock: FakeClock, **gamebase: Any) -> AsyncIterator[Game]:
    kicks: list[gs_hooks.KickRequest] = []
    settings: dict[str, Any] = {"ban_poll_s": 60.0, "ban_overlap_s": 300.0, "ban_page_size": 10}
    settings.update(gamebase)
    cfg = gs_hooks.Config(
        state_path=str(path),
        gamebase=gs_hooks.GamebaseConfig(
            url=sb.url,
            app_id="sandbox-app",
            secret_key=gs_hooks.Secret("sandbox-secret"),
            maintenance_poll_s=0,
            retries=0,
            **settings,
        ),
    )
    hooks = gs_hooks.setup(cfg, on_kick=kicks.append, clock=clock)
    async with hooks:
        yield Game(hooks, kicks)


async def test_bans_over_several_pages_kick_their_players(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    async with sandbox(clock) as sb:
        sim = sb.gamebase
        for i in range(25):
            end = None if i % 5 == 0 else T0 + timedelta(days=1 + i)
            sim.add_ban(f"u{i}", T0 - timedelta(minutes=30), end, message=f"ban {i}")
        async with game(sb, tmp_path / "s.db", clock) as g:
            sessions = {f"u{i}": g.login(f"u{i}") for i in range(30)}
            await g.poller.poll_once()
            assert {k.session.player_id for k in g.kicks} == {f"u{i}" for i in range(25)}
            assert all(sessions[f"u{i}"] in g.hooks.registry for i in range(25, 30))
            ban = g.hooks.bans.active_ban("u3")
            assert ban is not None and ban.source == "gamebase" and ban.message == "ban 3"
            assert ban.ends_at == T0 + timedelta(days=4) and ban.starts_at == T0 - timedelta(minutes=30)
            perm = g.hooks.bans.active_ban("u5")
            assert perm is not None and perm.status == "permanent" and perm.ends_at is None
            # the next poll re-reads the overlap: nothing new, nobody kicked twice
            before = len(g.kicks)
            await clock.advance(60)
            await g.polled(2)
            assert len(g.kicks) == before


async def test_overlap_catches_a_ban_that_appears_late(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    async with sandbox(clock) as sb, game(sb, tmp_path / "s.db", clock) as g:
        await g.polled(1)
        g.login("late")
        # a ban registered now whose begin date lies 2 minutes in the past, i.e. before the watermark
        await clock.advance(30)
        sb.gamebase.add_ban("late", clock.time() - 120, None)
        await clock.advance(30)
        await g.polled(2)
        assert g.hooks.bans.active_ban("late") is not None
        assert [k.session.player_id for k in g.kicks] == ["late"]


async def test_without_overlap_such_a_ban_would_be_missed(tmp_path: Path) -> None:
    # the control for the test above: the overlap is what finds it
    clock = FakeClock(T0)
    async with sandbox(clock) as sb, game(sb, tmp_path / "s.db", clock, ban_overlap_s=0.0) as g:
        await g.polled(1)
        await clock.advance(30)
        sb.gamebase.add_ban("late", clock.time() - 120, None)
        await clock.advance(30)
        await g.polled(2)
        assert g.hooks.bans.active_ban("late") is None


async def test_releases_lift_bans_and_a_reread_does_not_bring_them_back(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    async with sandbox(clock) as sb, game(sb, tmp_path / "s.db", clock) as g:
        sb.gamebase.add_ban("u1", T0 - timedelta(minutes=1), None)
        await g.poller.poll_once()
        assert g.hooks.bans.active_ban("u1") is not None
        await clock.advance(10)
        sb.gamebase.release_ban("u1")
        await g.poller.poll_once()
        assert g.hooks.bans.active_ban("u1") is None
        await clock.advance(10)
        await g.poller.poll_once()  # both histories re-read in the overlap
        assert g.hooks.bans.active_ban("u1") is None
        s = g.login("u1")
        assert s in g.hooks.registry


async def test_a_ban_released_within_one_window_kicks_nobody(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    async with sandbox(clock) as sb, game(sb, tmp_path / "s.db", clock) as g:
        await g.polled(1)
        s = g.login("u2")
        await clock.advance(5)
        sb.gamebase.add_ban("u2", clock.time(), None)
        await clock.advance(5)
        sb.gamebase.release_ban("u2")
        await clock.advance(50)
        await g.polled(2)
        assert g.kicks == [] and s in g.hooks.registry
        assert g.hooks.bans.active_ban("u2") is None


async def test_the_watermark_survives_a_restart(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    path = tmp_path / "s.db"
    async with sandbox(clock) as sb:
        async with game(sb, path, clock) as g:
            await g.polled(1)
            assert g.poller.watermark == T0
        # two days later: a ban that began 36 h ago is after the stored watermark but outside a fresh
        # process's first look-back (24 h): only the persisted watermark finds it
        clock.set_time_nowait(T0 + timedelta(days=2))
        sb.gamebase.add_ban("away", T0 + timedelta(hours=12), None)
        async with game(sb, path, clock) as g2:
            await g2.polled(1)
            assert g2.hooks.bans.active_ban("away") is not None
        async with game(sb, tmp_path / "fresh.db", clock) as g3:
            await g3.polled(1)
            assert g3.hooks.bans.active_ban("away") is None


async def test_a_failed_poll_keeps_the_watermark_and_the_next_one_catches_up(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    async with sandbox(clock) as sb, game(sb, tmp_path / "s.db", clock) as g:
        await g.polled(1)
        mark = g.poller.watermark
        sb.faults.add("*", "status", status=503, count=100)
        sb.gamebase.add_ban("u9", clock.time() + 1, None)
        await clock.advance(60)
        with anyio.fail_after(10):
            while g.poller.failures < 1:
                await anyio.sleep(0.005)
        assert g.poller.watermark == mark and g.poller.last_error
        assert g.hooks.bans.active_ban("u9") is None
        # the retry is backed off: one to two periods after the failure, jittered
        retry_at = clock.next_deadline()
        assert retry_at is not None and T0.timestamp() + 120 <= retry_at <= T0.timestamp() + 180
        sb.faults.clear()
        await clock.advance_to(retry_at)
        await g.polled(2)
        assert g.hooks.bans.active_ban("u9") is not None
        assert g.poller.watermark == to_datetime(retry_at)


async def test_the_login_gate_refuses_until_the_ban_ends_then_lets_the_player_in(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    async with sandbox(clock) as sb, game(sb, tmp_path / "s.db", clock, ban_poll_s=0.0) as g:
        sb.gamebase.add_member("p1")
        until = T0 + timedelta(hours=1)
        await g.hooks.ban("p1", until, message="spam")
        token = sb.gamebase.issue_token("p1", ttl=86_400)
        s = g.hooks.registry.open_nowait()
        with pytest.raises(gs_hooks.BannedError) as refused:
            await g.hooks.login(s, "p1", token)
        assert refused.value.ends_at == until and refused.value.source == "api"
        await clock.advance(3600)
        await g.hooks.login(s, "p1", token)
        assert g.hooks.registry.sessions_of("p1") == (s,)
