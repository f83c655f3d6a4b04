"""The ban book when the store fails or a batch is cut short: memory stays the truth, nothing is lost or stuck.

The stores here are real sqlite stores; a failing one is either closed (every call fails) or fails only for
calls made on the event loop's thread (``FailsOnLoop``), which lets a write on a worker thread go through while
a blocking write fails, as a disk error on one call would.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest

import gs_hooks
from gs_hooks import KST, FakeClock
from gs_hooks._store import Store
from gs_hooks.bans import Ban, BanBook, BanEvent, BanTimer
from gs_hooks.bans._book import PURGE_EVERY_S, RETRY_WRITE_S
from kick_support import FakeConnection

pytestmark = pytest.mark.anyio

T = TypeVar("T")
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=KST)


class FailsOnLoop(Store):
    """A real store; while ``failing``, calls made on the main thread raise a disk error. While ``slow`` is
    clear, a call on a worker thread keeps the store after its work until it is set (a slow commit)."""

    failing = False
    slow: threading.Event | None = None

    def run_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        on_loop = threading.current_thread() is threading.main_thread()
        if self.failing and on_loop:
            raise sqlite3.OperationalError("disk I/O error")
        slow = self.slow
        if on_loop or slow is None:
            return super().run_sync(fn)

        def then_wait(conn: sqlite3.Connection) -> T:
            out = fn(conn)
            slow.wait(10)  # still holding the store
            return out

        return super().run_sync(then_wait)


def closed_store(tmp_path: Path) -> Store:
    store = Store(str(tmp_path / "broken.db"))
    store.close()
    return store


def on_disk(store: Store) -> list[tuple[Any, ...]]:
    return store.run_sync(
        lambda conn: sorted(conn.execute("SELECT player_key, starts_at, lifted_at FROM bans_book").fetchall())
    )


def ban(player: str, start: datetime = T0, end: datetime | None = None) -> Ban:
    status = "permanent" if end is None else "temporary"
    return Ban(player_key=player, source="hive", status=status, starts_at=start, ends_at=end)


async def test_a_failed_write_stays_unsaved_when_an_older_write_of_the_key_lands_after_it(tmp_path: Path) -> None:
    store = FailsOnLoop(str(tmp_path / "s.db"))
    clock = FakeClock(T0)
    book = BanBook(store, clock=clock)
    await book.load()
    older, newer = ban("p"), ban("p", T0 + timedelta(seconds=1))
    store.slow = threading.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(book.apply, [older])  # writes `older` on a worker thread, then commits slowly
        await anyio.wait_all_tasks_blocked()
        store.failing = True
        with pytest.raises(sqlite3.OperationalError):
            book.apply_many_nowait([newer])  # memory has `newer`; its blocking write fails
        store.failing = False
        store.slow.set()  # `older`'s write completes after the failure
    store.slow = None
    assert book.bans_of("p") == [newer]
    assert book.unsaved_keys == {("hive", "p")}  # not settled by the older write
    await clock.advance(RETRY_WRITE_S)
    await book.tick()
    assert on_disk(store) == [("p", newer.starts_at.timestamp(), None)]
    assert book.unsaved_count == 0


async def test_a_failed_write_of_an_older_key_is_retried_when_memory_moved_on(tmp_path: Path) -> None:
    store = FailsOnLoop(str(tmp_path / "s.db"))
    clock = FakeClock(T0)
    book = BanBook(store, clock=clock)
    await book.load()
    store.failing = True
    with pytest.raises(sqlite3.OperationalError):
        book.apply_many_nowait([ban("p")])
    assert book.unsaved_keys == {("hive", "p")}
    # a write of another key succeeds: p stays unsaved
    store.failing = False
    book.apply_many_nowait([ban("q")])
    assert book.unsaved_keys == {("hive", "p")}
    await clock.advance(RETRY_WRITE_S)
    await book.tick()
    assert book.unsaved_count == 0 and book.next_retry_at is None
    assert [r[0] for r in on_disk(store)] == ["p", "q"]


async def test_a_purged_unsaved_ban_does_not_keep_the_timer_busy(tmp_path: Path) -> None:
    good = Store(str(tmp_path / "s.db"))
    current = {"store": good}
    clock = FakeClock(T0)
    book = BanBook(lambda: current["store"], clock=clock)
    await book.load()
    current["store"] = closed_store(tmp_path)
    ended_long_ago = ban("p", T0 - timedelta(days=30), T0 - timedelta(days=20))
    with pytest.raises(RuntimeError):
        await book.apply([ended_long_ago])
    await clock.advance(PURGE_EVERY_S)
    with pytest.raises(RuntimeError):
        await book.tick()  # the retry fails again, the hourly purge drops the row (and its delete fails too)
    assert ("hive", "p") not in book.recorded_keys
    current["store"] = good
    await clock.advance(RETRY_WRITE_S)
    await book.tick()
    assert book.unsaved_count == 0
    deadline = book.next_deadline()
    assert deadline is not None and deadline > clock.time()  # not in the past: no busy loop


async def test_an_unban_resent_after_a_failed_one_writes_the_lift(tmp_path: Path) -> None:
    good = Store(str(tmp_path / "s.db"))
    current = {"store": good}
    clock = FakeClock(T0)
    book = BanBook(lambda: current["store"], clock=clock)
    await book.apply([ban("p")])
    current["store"] = closed_store(tmp_path)
    with pytest.raises(RuntimeError):
        await book.lift("p")
    assert book.active_ban("p") is None
    current["store"] = good
    assert await book.lift("p") == []  # nothing left to lift in memory...
    assert on_disk(good)[0][2] is not None  # ...but the lift is written
    assert BanBook(good, clock=clock).active_ban("p") is None  # a restart keeps it lifted


async def test_without_a_platform_ban_source_the_timer_still_retries_the_write(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    hooks = gs_hooks.setup(gs_hooks.Config(state_path=str(tmp_path / "s.db")), clock=clock)
    async with hooks:
        (timer,) = hooks.components  # no platform ban source: the book's timer runs all the same
        assert isinstance(timer, BanTimer)
        hooks.bans.active_ban("x")  # loaded
        good = hooks.store
        hooks.services.replace_store(closed_store(tmp_path))
        with pytest.raises(RuntimeError):
            await hooks.ban("p", T0 + timedelta(days=1))
        hooks.services.replace_store(good)
        await clock.advance(RETRY_WRITE_S)
        with anyio.fail_after(10):
            await timer.wait_idle()  # the retry's write ran on a worker thread
        assert [r[0] for r in on_disk(good)] == ["p"]
        assert hooks.bans.unsaved_count == 0


async def test_a_ban_lifted_while_an_earlier_on_ban_is_awaited_is_not_enforced() -> None:
    log: list[str] = []
    clock = FakeClock(T0)

    async def on_ban(event: BanEvent) -> None:
        if event.player_key == "a":
            await clock.sleep(1)  # a slow async on_ban (an async on_kick is not awaited by the batch)
        log.append(f"ban {event.player_key}")

    hooks = gs_hooks.setup(
        gs_hooks.Config(state_path=":memory:"),
        on_kick=lambda r: log.append(f"kick {r.session.player_id}"),
        on_ban=on_ban,
        clock=clock,
    )
    async with hooks:
        for p in ("a", "b"):
            hooks.bind_player(hooks.registry.open_nowait(), p)
        async with anyio.create_task_group() as tg:
            tg.start_soon(hooks.bans.apply, [ban("a"), ban("b")])
            await clock.settle()
            assert await hooks.unban("b") == 1  # while a's on_ban is awaited
            await clock.advance(1)
    assert log == ["kick a", "ban a"]
    assert hooks.registry.sessions_of("b") != ()


async def test_a_batch_cancelled_in_a_callback_hands_the_rest_to_the_timer(tmp_path: Path) -> None:
    closed: list[str] = []
    handed: list[str] = []
    events: list[tuple[str, int]] = []

    def on_kick(request: gs_hooks.KickRequest) -> None:
        handed.append(request.session.channel)
        request.session.close()

    async def on_ban(event: BanEvent) -> None:
        if not events:
            events.append(("hung", 0))
            await anyio.sleep_forever()  # the game hangs in the first on_ban; the batch is cancelled
        events.append((event.player_key, event.sessions_kicked))

    clock = FakeClock(T0)
    config = gs_hooks.Config(
        state_path=str(tmp_path / "s.db"),
        sessions=gs_hooks.SessionsConfig(duplicate_login="allow"),
        hive=gs_hooks.HiveConfig(auth_key=gs_hooks.Secret("k"), game_index=1),  # the timer runs
    )
    hooks = gs_hooks.setup(config, on_kick=on_kick, on_ban=on_ban, clock=clock)
    async with hooks:
        for name, player in (("a1", "a"), ("a2", "a"), ("b1", "b")):
            session = hooks.registry.open_nowait(
                channel=name, connection=FakeConnection(lambda name=name: closed.append(name))
            )
            hooks.bind_player(session, player)
        async with anyio.create_task_group() as tg:
            tg.start_soon(hooks.bans.apply, [ban("a"), ban("b")])
            await clock.settle()
            assert handed == ["a1", "a2"] and events == [("hung", 0)]
            tg.cancel_scope.cancel()
        await clock.settle()
        # the timer finished the batch: a's on_ban again (its kicks were done), b kicked through on_kick
        assert handed == ["a1", "a2", "b1"] and closed == ["a1", "a2", "b1"]
        assert sorted(events[1:]) == [("a", 0), ("b", 1)]
        assert len(hooks.registry) == 0
        assert [r[0] for r in on_disk(hooks.store)] == ["a", "b"]


async def test_shutdown_writes_bans_whose_write_failed(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    path = tmp_path / "s.db"
    hooks = gs_hooks.setup(gs_hooks.Config(state_path=str(path)), clock=clock)
    async with hooks:
        hooks.bans.active_ban("x")  # loaded
        good = hooks.store
        hooks.services.replace_store(closed_store(tmp_path))
        with pytest.raises(RuntimeError):
            await hooks.ban("p", T0 + timedelta(days=1))
        hooks.services.replace_store(good)  # the store is back before the retry is due: shutdown writes it
    assert [r[0] for r in on_disk(Store(str(path)))] == ["p"]


async def test_shutdown_logs_the_bans_it_could_not_write(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    hooks = gs_hooks.setup(gs_hooks.Config(state_path=str(tmp_path / "s.db")), clock=FakeClock(T0))
    async with hooks:
        hooks.bans.active_ban("x")  # loaded
        hooks.services.replace_store(closed_store(tmp_path))
        with pytest.raises(RuntimeError):
            await hooks.ban("p", T0 + timedelta(days=1))
    assert any("1 bans could not be written" in r.getMessage() for r in caplog.records)
