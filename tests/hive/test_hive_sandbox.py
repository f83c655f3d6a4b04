"""Against the sandbox's Hive sender: 2,000 suspended users in 20 batches kick exactly their sessions; a
retransmission changes nothing; a restart keeps the bans; an expired ban lets the player pass the gate; and the
sandbox's web-store validator finds no violation in the document's five shapes as our handler produces them."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_hive_protocol import DOC_EXAMPLES, GAME_PROFILES

import gs_hooks
from gs_hooks import KST, FakeClock
from gs_hooks.bans import BanEvent
from gs_hooks.http import serve_http
from gs_hooks.sandbox import Sandbox, SuspensionItem

pytestmark = pytest.mark.anyio

KEY = "sandbox-hive-game-server-key"
GAME_INDEX = 539
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=KST)


class Game:
    """A game server's view: its Hooks, a recording on_kick and on_ban."""

    def __init__(self, path: Path, clock: FakeClock) -> None:
        self.kicks: list[gs_hooks.KickRequest] = []
        self.bans: list[BanEvent] = []
        cfg = gs_hooks.Config(
            state_path=str(path),
            sessions=gs_hooks.SessionsConfig(duplicate_login="allow"),
            hive=gs_hooks.HiveConfig(auth_key=gs_hooks.Secret(KEY), game_index=GAME_INDEX),
        )
        self.hooks = gs_hooks.setup(cfg, on_kick=self.kicks.append, on_ban=self.bans.append, clock=clock)

    def login(self, player: str) -> gs_hooks.Session:
        session = self.hooks.registry.open_nowait()
        self.hooks.bind_player(session, player)
        return session


@asynccontextmanager
async def game_and_sandbox(path: Path, clock: FakeClock) -> AsyncIterator[tuple[Game, Sandbox]]:
    game = Game(path, clock)
    async with (
        game.hooks,
        serve_http(game.hooks.router, port=0) as server,
        Sandbox.serve(port=0, clock=clock) as sb,
    ):
        sb.hive.register(server.url + "/hive/suspensions", KEY, GAME_INDEX)
        yield game, sb


def suspensions(n: int) -> list[SuspensionItem]:
    """n suspended players 100000.. with a mix of periods and permanent bans (KST dates)."""
    out = []
    for i in range(n):
        permanent = i % 10 == 0
        out.append(
            SuspensionItem(
                player_id=100_000 + i,
                status="P" if permanent else "B",
                start_date="2026-03-01 11:00:00",
                end_date="9999-12-31 00:00:00" if permanent else f"2026-03-{2 + i % 20:02d} 11:00:00",
            )
        )
    return out


def db_rows(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return sorted(conn.execute("SELECT * FROM bans_book").fetchall())


async def test_2000_suspended_users_in_20_batches_kick_exactly_their_sessions(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    path = tmp_path / "state.db"
    items = suspensions(2000)
    async with game_and_sandbox(path, clock) as (game, sb):
        banned_sessions = set()
        for i in range(2000):
            banned_sessions.add(game.login(str(100_000 + i)).id)
            if i % 7 == 0:  # some players are on two devices
                banned_sessions.add(game.login(str(100_000 + i)).id)
        others = [game.login(str(500_000 + i)) for i in range(3000)]
        # players whose ids are close to the banned ones, but not banned
        others += [game.login(str(100_000 + 2000 + i)) for i in range(50)]

        report = await sb.hive.push_suspensions(items)

        assert report.ok, report.to_json()["attempts"][:3]
        assert report.batches == 20 and len(report.attempts) == 20
        assert all(a.size == 100 and a.result_code == 0 for a in report.attempts)
        assert {k.session.id for k in game.kicks} == banned_sessions
        assert len(game.kicks) == len(banned_sessions)
        assert all(k.reason == "ban" and k.details.source == "hive" for k in game.kicks)
        assert all(s in game.hooks.registry for s in others)
        assert len(game.hooks.registry) == len(others)
        assert len(game.bans) == 2000
        ban = game.hooks.bans.active_ban("100000")
        assert ban is not None and ban.status == "permanent" and ban.ends_at is None
        ban = game.hooks.bans.active_ban("100001")
        assert ban is not None and ban.ends_at == datetime(2026, 3, 3, 11, 0, tzinfo=KST)
        assert len(db_rows(path)) == 2000

        # Hive retransmits (all 20 batches): nothing changes, nobody is kicked twice
        comeback = game.login("100001")  # a banned player who got a session anyway (the game skipped the gate)
        rows_before, kicks_before, events_before = db_rows(path), len(game.kicks), len(game.bans)
        again = await sb.hive.push_suspensions(items)
        assert again.ok and len(again.attempts) == 20
        assert db_rows(path) == rows_before
        assert len(game.kicks) == kicks_before and len(game.bans) == events_before
        assert comeback in game.hooks.registry


async def test_a_restart_keeps_the_bans_and_expiry_reopens_the_gate(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    path = tmp_path / "state.db"
    items = suspensions(300)
    async with game_and_sandbox(path, clock) as (_game, sb):
        assert (await sb.hive.push_suspensions(items)).ok
    # a new process on the same sqlite file
    async with game_and_sandbox(path, clock) as (game2, sb2):
        for i in range(300):
            assert game2.hooks.bans.active_ban(str(100_000 + i)) is not None
        assert game2.hooks.bans.active_ban("100300") is None
        # the platform resends after our restart: still idempotent
        assert (await sb2.hive.push_suspensions(items)).ok
        assert game2.kicks == [] and game2.bans == []
        # 100001's ban ends 2026-03-03 11:00 KST; 100000's is permanent
        await clock.advance_to(datetime(2026, 3, 3, 10, 59, 59, tzinfo=KST))
        assert game2.hooks.bans.active_ban("100001") is not None
        await clock.advance(1)
        assert game2.hooks.bans.active_ban("100001") is None
        assert game2.hooks.bans.active_ban("100000") is not None
        assert game2.hooks.bans.active_ban("100021") is None  # same end date (i % 20 == 1)
        assert game2.hooks.bans.active_ban("100002") is not None  # ends on the 4th
        await clock.advance(timedelta(days=30).total_seconds())
        assert {b.player_key for b in game2.hooks.bans.active_bans()} == {str(100_000 + i) for i in range(0, 300, 10)}


async def test_a_wrong_key_from_the_sender_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    async with game_and_sandbox(tmp_path / "s.db", clock) as (game, sb):
        report = await sb.hive.push_suspensions(suspensions(150), auth_key="not-the-key-at-all")
        assert not report.ok and report.failed_batches == [0, 1]
        assert {a.http_status for a in report.attempts} == {401}
        assert {a.result_code for a in report.attempts} == {401}
        assert game.hooks.bans.active_bans() == []


async def test_a_malformed_item_fails_its_batch_only(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    items: list[Any] = list(suspensions(200))
    items[150] = {"player_id": "100150", "status": "B", "start_date": "2026-03-01 11:00:00", "end_date": "x"}
    async with game_and_sandbox(tmp_path / "s.db", clock) as (game, sb):
        report = await sb.hive.push_suspensions(items)
        assert report.failed_batches == [1]
        assert report.attempts[1].http_status == 400 and report.attempts[1].result_code == 400
        assert len(game.hooks.bans.active_bans()) == 100


@pytest.mark.parametrize("shape", range(5))
async def test_the_sandbox_validator_accepts_the_documents_five_shapes(tmp_path: Path, shape: int) -> None:
    async def profile(cs_code: str) -> gs_hooks.WebstoreProfile | None:
        return GAME_PROFILES[shape] if cs_code == "c_123412341234" else None

    cfg = gs_hooks.Config(state_path=":memory:")
    hooks = gs_hooks.setup(cfg, clock=FakeClock(T0), webstore_profile=profile)
    async with hooks, serve_http(hooks.router, port=0) as server, Sandbox.serve(port=0) as sb:
        report = await sb.hive.call_webstore(server.url + "/webstore-profile", "c_123412341234")
        assert report.violations == []
        assert report.body == DOC_EXAMPLES[shape]
        nobody = await sb.hive.call_webstore(server.url + "/webstore-profile", "c_unknown")
        assert nobody.violations == [] and nobody.body["result_code"] == 204


async def test_the_sandbox_validator_accepts_our_500(tmp_path: Path) -> None:
    async def failing(cs_code: str) -> gs_hooks.WebstoreProfile:
        raise RuntimeError("game database down")

    hooks = gs_hooks.setup(gs_hooks.Config(state_path=":memory:"), clock=FakeClock(T0), webstore_profile=failing)
    async with hooks, serve_http(hooks.router, port=0) as server, Sandbox.serve(port=0) as sb:
        report = await sb.hive.call_webstore(server.url + "/webstore-profile", "c_1")
        assert report.violations == [] and report.body["result_code"] == 500


async def test_end_to_end_through_the_embedded_listener_component(tmp_path: Path) -> None:
    """The production path: GS_HOOKS_LISTEN serves the webhook and the web-store route from hooks.router."""
    clock = FakeClock(T0)
    kicks: list[gs_hooks.KickRequest] = []
    cfg = gs_hooks.Config(
        state_path=str(tmp_path / "s.db"),
        hive=gs_hooks.HiveConfig(auth_key=gs_hooks.Secret(KEY), game_index=GAME_INDEX),
        listener=gs_hooks.ListenerConfig(listen="127.0.0.1:0"),
    )

    async def profile(cs_code: str) -> gs_hooks.WebstoreProfile | None:
        return GAME_PROFILES[1] if cs_code == "c_123412341234" else None

    hooks = gs_hooks.setup(cfg, on_kick=kicks.append, clock=clock, webstore_profile=profile)
    async with hooks, Sandbox.serve(port=0, clock=clock) as sb:
        assert hooks.listener is not None
        session = hooks.registry.open_nowait()
        hooks.bind_player(session, "100003")
        sb.hive.register(hooks.listener.url + "/hive/suspensions", KEY, GAME_INDEX)
        report = await sb.hive.push_suspensions(suspensions(250))
        assert report.ok and report.batches == 3
        assert [k.session.id for k in kicks] == [session.id]
        assert len(hooks.bans.active_bans()) == 250
        refused = await sb.hive.push_suspensions(suspensions(1), auth_key="wrong-key-from-elsewhere")
        assert [a.http_status for a in refused.attempts] == [401]
        web = await sb.hive.call_webstore(hooks.listener.url + "/webstore-profile", "c_123412341234")
        assert web.violations == [] and web.body == DOC_EXAMPLES[1]
