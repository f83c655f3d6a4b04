"""The ban book through the Hooks object: durable, idempotent, enforced on live sessions, expiring on time."""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import anyio
import pytest

import gs_hooks
from gs_hooks import KST, FakeClock
from gs_hooks._store import Store
from gs_hooks.bans import Ban, BanBook, BanDetails, BanEvent, BanTimer
from gs_hooks.bans._book import RETRY_WRITE_S

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=KST)


class Recorder:
    def __init__(self) -> None:
        self.kicks: list[gs_hooks.KickRequest] = []
        self.bans: list[BanEvent] = []

    def on_kick(self, request: gs_hooks.KickRequest) -> None:
        self.kicks.append(request)

    async def on_ban(self, event: BanEvent) -> None:
        self.bans.append(event)


class TokenCache:
    """Stands in for the token verifier's cache: records what the ban book asks it to drop."""

    def __init__(self) -> None:
        self.forgotten: list[str] = []

    def forget(self, user_id: str) -> None:
        self.forgotten.append(user_id)


def make_hooks(path: Path, clock: FakeClock, rec: Recorder, *, hive: bool = False) -> gs_hooks.Hooks:
    """Hooks on a sqlite file; ``hive=True`` configures the webhook (a platform ban source: the timer runs)."""
    hive_config = gs_hooks.HiveConfig(auth_key=gs_hooks.Secret("hive-key-for-the-timer"), game_index=1)
    config = gs_hooks.Config(state_path=str(path), hive=hive_config if hive else gs_hooks.HiveConfig())
    return gs_hooks.setup(config, on_kick=rec.on_kick, on_ban=rec.on_ban, clock=clock)


async def idle(hooks: gs_hooks.Hooks) -> None:
    """Wait until the ban book's timer has done its work (its writes included) and sleeps."""
    (timer,) = [c for c in hooks.components if isinstance(c, BanTimer)]
    with anyio.fail_after(10):
        await timer.wait_idle()


def login(hooks: gs_hooks.Hooks, player: str) -> gs_hooks.Session:
    session = hooks.registry.open_nowait()
    hooks.bind_player(session, player)
    return session


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_ban_kicks_every_session_of_the_player_and_no_other(tmp_path: Path) -> None:
    clock, rec = FakeClock(T0), Recorder()
    hooks = make_hooks(tmp_path / "s.db", clock, rec)
    hooks.registry.duplicate_login = "allow"
    async with hooks:
        tokens = TokenCache()
        hooks.verifier = tokens
        a1, a2, b = login(hooks, "alice"), login(hooks, "alice"), login(hooks, "bob")
        ban = await hooks.ban("alice", T0 + timedelta(hours=1), message="cheating")
        assert {k.session.id for k in rec.kicks} == {a1.id, a2.id}
        assert all(k.reason == "ban" and k.message == "cheating" for k in rec.kicks)
        assert rec.kicks[0].details == BanDetails(
            source="api", status="temporary", starts_at=T0, ends_at=T0 + timedelta(hours=1), message="cheating"
        )
        assert b in hooks.registry and a1 not in hooks.registry and a2 not in hooks.registry
        assert rec.bans == [BanEvent(player_key="alice", ban=ban, sessions_kicked=2)]
        assert tokens.forgotten == ["alice"]
        assert hooks.bans.active_ban("alice") == ban
        assert hooks.bans.active_ban("bob") is None


async def test_same_ban_twice_is_a_no_op(tmp_path: Path) -> None:
    clock, rec = FakeClock(T0), Recorder()
    async with make_hooks(tmp_path / "s.db", clock, rec) as hooks:
        until = T0 + timedelta(days=1)
        ban = Ban(player_key="p", source="hive", status="temporary", starts_at=T0, ends_at=until)
        assert await hooks.bans.apply([ban]) == [ban]
        login(hooks, "p")  # logs in again somehow (e.g. before the gate existed)
        assert await hooks.bans.apply([ban]) == []
        assert rec.kicks == []
        assert len(rec.bans) == 1
        assert hooks.registry.sessions_of("p")  # the identical re-send kicked nobody


async def test_changed_ban_replaces_and_stale_ban_is_ignored(tmp_path: Path) -> None:
    clock, rec = FakeClock(T0), Recorder()
    async with make_hooks(tmp_path / "s.db", clock, rec) as hooks:
        first = Ban(player_key="p", source="hive", status="temporary", starts_at=T0, ends_at=T0 + timedelta(days=1))
        longer = Ban(player_key="p", source="hive", status="permanent", starts_at=T0)
        older = Ban(
            player_key="p",
            source="hive",
            status="temporary",
            starts_at=T0 - timedelta(days=3),
            ends_at=T0 + timedelta(days=9),
        )
        await hooks.bans.apply([first])
        assert await hooks.bans.apply([longer]) == [longer]
        assert hooks.bans.active_ban("p") == longer
        assert await hooks.bans.apply([older]) == []
        assert hooks.bans.active_ban("p") == longer


async def test_bans_survive_a_restart_and_are_not_enforced_twice(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    clock, rec = FakeClock(T0), Recorder()
    async with make_hooks(path, clock, rec) as hooks:
        ban = await hooks.ban("p", None, message="bye")
        temp = await hooks.ban("q", T0 + timedelta(hours=2))
    rec2 = Recorder()
    async with make_hooks(path, clock, rec2) as hooks2:
        assert hooks2.bans.active_ban("p") == ban
        assert hooks2.bans.active_ban("q") == temp
        # the platform re-sends after our restart: nothing happens
        assert await hooks2.bans.apply([ban, temp]) == []
        assert rec2.bans == [] and rec2.kicks == []


@pytest.mark.parametrize("hive", [True, False])
async def test_expired_ban_lets_the_player_pass_the_gate(tmp_path: Path, hive: bool) -> None:
    clock, rec = FakeClock(T0), Recorder()
    async with make_hooks(tmp_path / "s.db", clock, rec, hive=hive) as hooks:
        await hooks.ban("p", T0 + timedelta(minutes=30))
        await clock.advance(29 * 60)
        ban = hooks.bans.active_ban("p")
        assert ban is not None and ban.ends_at == T0 + timedelta(minutes=30)
        await clock.advance(60)
        assert hooks.bans.active_ban("p") is None
        assert hooks.bans.bans_of("p") == []  # the timer dropped it from memory
        s = login(hooks, "p")
        assert s in hooks.registry


@pytest.mark.parametrize("hive", [True, False])
async def test_future_ban_is_enforced_by_the_timer_when_it_starts(tmp_path: Path, hive: bool) -> None:
    clock, rec = FakeClock(T0), Recorder()
    async with make_hooks(tmp_path / "s.db", clock, rec, hive=hive) as hooks:
        s = login(hooks, "p")
        start = T0 + timedelta(minutes=10)
        ban = Ban(player_key="p", source="gamebase", status="temporary", starts_at=start, ends_at=start + timedelta(1))
        await hooks.bans.apply([ban])
        assert rec.kicks == [] and hooks.bans.active_ban("p") is None
        await clock.advance(9 * 60)
        assert rec.kicks == []
        await clock.advance(60)
        assert [k.session.id for k in rec.kicks] == [s.id]
        assert hooks.bans.active_ban("p") == ban
        assert len(rec.bans) == 1


@pytest.mark.parametrize("hive", [True, False])
async def test_nowait_apply_is_durable_at_once_and_enforced_soon(tmp_path: Path, hive: bool) -> None:
    path = tmp_path / "s.db"
    clock, rec = FakeClock(T0), Recorder()
    async with make_hooks(path, clock, rec, hive=hive) as hooks:
        assert [c.name for c in hooks.components] == ["bans"]  # the timer runs with or without a platform source
        s = login(hooks, "p")
        ban = Ban(player_key="p", source="api", status="permanent", starts_at=T0)
        assert hooks.bans.apply_nowait(ban) is True
        assert hooks.bans.apply_nowait(ban) is False
        # durable before any await: a second book on the same file sees it
        other = BanBook(Store(str(path)), clock=clock)
        assert other.active_ban("p") == ban
        other.store.close()
        await clock.settle()
        assert [k.session.id for k in rec.kicks] == [s.id]


async def test_unban_lifts_and_a_reread_of_the_same_ban_does_not_bring_it_back(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    clock, rec = FakeClock(T0), Recorder()
    ban = Ban(player_key="p", source="hive", status="permanent", starts_at=T0 - timedelta(minutes=1))
    async with make_hooks(path, clock, rec) as hooks:
        await hooks.bans.apply([ban])
        assert await hooks.unban("p") == 1
        assert hooks.bans.active_ban("p") is None
        assert await hooks.bans.apply([ban]) == []
        assert await hooks.unban("p") == 0
    async with make_hooks(path, clock, Recorder()) as hooks2:
        assert hooks2.bans.active_ban("p") is None
        assert await hooks2.bans.apply([ban]) == []
        newer = Ban(player_key="p", source="hive", status="permanent", starts_at=T0 + timedelta(seconds=1))
        await clock.advance(1)
        assert await hooks2.bans.apply([newer]) == [newer]
        assert hooks2.bans.active_ban("p") == newer


async def test_release_lifts_only_bans_started_by_then(tmp_path: Path) -> None:
    clock, rec = FakeClock(T0), Recorder()
    async with make_hooks(tmp_path / "s.db", clock, rec) as hooks:
        early = Ban(player_key="p", source="hive", status="permanent", starts_at=T0 - timedelta(hours=2))
        late = Ban(player_key="p", source="api", status="permanent", starts_at=T0)
        await hooks.bans.apply([early, late])
        lifted = await hooks.bans.lift("p", started_by=T0 - timedelta(hours=1))
        assert lifted == [early]
        assert hooks.bans.active_ban("p") == late


async def test_the_longest_ban_wins_across_sources(tmp_path: Path) -> None:
    clock, rec = FakeClock(T0), Recorder()
    async with make_hooks(tmp_path / "s.db", clock, rec) as hooks:
        short = Ban(player_key="p", source="hive", status="temporary", starts_at=T0, ends_at=T0 + timedelta(hours=1))
        long_ = Ban(player_key="p", source="api", status="temporary", starts_at=T0, ends_at=T0 + timedelta(hours=5))
        await hooks.bans.apply([short, long_])
        assert hooks.bans.active_ban("p") == long_
        perm = Ban(player_key="p", source="gamebase", status="permanent", starts_at=T0)
        await hooks.bans.apply([perm])
        assert hooks.bans.active_ban("p") == perm
        assert len(hooks.bans.active_bans()) == 3


def on_disk(path: Path) -> list[tuple[str, str, float | None]]:
    """Rows of the ban table as another connection sees them: (source, player_key, lifted_at)."""
    conn = sqlite3.connect(path)
    try:
        return sorted(conn.execute("SELECT source, player_key, lifted_at FROM bans_book").fetchall())
    finally:
        conn.close()


def broken_store(tmp_path: Path) -> Store:
    """A real store whose connection is closed: every write fails."""
    store = Store(str(tmp_path / "broken.db"))
    store.close()
    return store


async def test_a_failing_store_keeps_the_ban_in_force_and_the_timer_writes_it_later(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "s.db"
    clock, rec = FakeClock(T0), Recorder()
    ban = Ban(player_key="p", source="api", status="permanent", starts_at=T0)
    async with make_hooks(path, clock, rec, hive=True) as hooks:
        s = login(hooks, "p")
        hooks.bans.active_ban("x")  # loaded
        good = hooks.store
        hooks.services.replace_store(broken_store(tmp_path))
        with pytest.raises(RuntimeError, match="store is closed"):
            await hooks.bans.apply([ban])
        # enforced at once all the same, and held in memory: the player stays out
        assert [k.session.id for k in rec.kicks] == [s.id]
        assert [e.ban for e in rec.bans] == [ban]
        assert hooks.bans.active_ban("p") == ban  # what hooks.login checks
        assert ("api", "p", None) not in on_disk(path)

        # the timer tries again later; still failing, it keeps the ban and tries again after that
        def retries() -> list[str]:
            return [r.getMessage() for r in caplog.records if "failed again" in r.getMessage()]

        with caplog.at_level(logging.WARNING, logger="gs_hooks.bans"):
            await clock.advance(RETRY_WRITE_S)
            await idle(hooks)
        assert retries() == ["writing 1 bans to the store failed again (store is closed); retrying later"]
        assert hooks.bans.active_ban("p") == ban
        hooks.services.replace_store(good)
        await clock.advance(RETRY_WRITE_S)
        await idle(hooks)
        assert ("api", "p", None) in on_disk(path) and not hooks.bans.unsaved_keys
        assert len(rec.kicks) == 1 and len(rec.bans) == 1  # written, not enforced a second time
    async with make_hooks(path, clock, Recorder()) as again:
        assert again.bans.active_ban("p") == ban


async def test_a_resent_ban_is_written_when_its_first_write_failed(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    clock, rec = FakeClock(T0), Recorder()
    ban = Ban(player_key="p", source="hive", status="permanent", starts_at=T0)
    async with make_hooks(path, clock, rec) as hooks:
        login(hooks, "p")
        hooks.bans.active_ban("x")  # loaded
        good = hooks.store
        hooks.services.replace_store(broken_store(tmp_path))
        with pytest.raises(RuntimeError):
            await hooks.bans.apply([ban])
        with pytest.raises(RuntimeError):  # re-sent while the store is still down: fails again, no second kick
            await hooks.bans.apply([ban])
        assert len(rec.kicks) == 1 and len(rec.bans) == 1
        hooks.services.replace_store(good)
        # the re-send after the store is back: no change to the book (no kick, no event), but it is written
        assert await hooks.bans.apply([ban]) == []
        assert ("hive", "p", None) in on_disk(path)
        assert len(rec.kicks) == 1 and len(rec.bans) == 1


async def test_a_failing_store_on_unban_keeps_the_lift_and_writes_it_when_resent(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    clock, rec = FakeClock(T0), Recorder()
    ban = Ban(player_key="p", source="api", status="permanent", starts_at=T0)
    async with make_hooks(path, clock, rec) as hooks:
        await hooks.bans.apply([ban])
        good = hooks.store
        hooks.services.replace_store(broken_store(tmp_path))
        with pytest.raises(RuntimeError):
            await hooks.bans.lift("p")
        assert hooks.bans.active_ban("p") is None  # lifted in memory
        assert on_disk(path) == [("api", "p", None)]  # not on disk yet
        hooks.services.replace_store(good)
        assert await hooks.bans.apply([ban]) == []  # the tombstone keeps the re-read out, and is written
        assert on_disk(path)[0][2] is not None


async def test_ban_rejects_bad_arguments(tmp_path: Path) -> None:
    clock, rec = FakeClock(T0), Recorder()
    async with make_hooks(tmp_path / "s.db", clock, rec) as hooks:
        with pytest.raises(ValueError, match="not in the future"):
            await hooks.ban("p", T0)
        with pytest.raises(ValueError, match="aware"):
            await hooks.ban("p", datetime(2027, 1, 1))
    with pytest.raises(ValueError, match="permanent ban has no end"):
        Ban(player_key="p", source="api", status="permanent", starts_at=T0, ends_at=T0 + timedelta(1))
    with pytest.raises(ValueError, match="needs an end"):
        Ban(player_key="p", source="api", status="temporary", starts_at=T0)


async def test_no_store_file_is_created_when_nothing_is_banned(tmp_path: Path) -> None:
    path = tmp_path / "never.db"
    async with make_hooks(path, FakeClock(T0), Recorder()):
        pass
    assert not path.exists()


async def test_old_rows_are_purged_by_the_timer_after_the_retention(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    clock, rec = FakeClock(T0), Recorder()
    async with make_hooks(path, clock, rec, hive=True) as hooks:
        hooks.bans.retention_s = 86_400
        await hooks.ban("short", T0 + timedelta(hours=1))
        await hooks.ban("lifted", None)
        await hooks.unban("lifted")
        await hooks.ban("perm", None)
        await clock.advance(86_400)  # not yet past the retention
        assert hooks.bans.recorded_keys == {("api", "short"), ("api", "lifted"), ("api", "perm")}
        await clock.advance(2 * 3600)
        await idle(hooks)  # the purge's sqlite delete runs on a worker thread
        assert hooks.bans.recorded_keys == {("api", "perm")}
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT player_key FROM bans_book").fetchall() == [("perm",)]
