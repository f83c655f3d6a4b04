"""The ban book's persistence seam: what a write tells its persistence (the batch's origin), extra writes in the
rows' transaction, and a book running on a second implementation of the interface (as fleet mode's will)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from gs_hooks import KST, FakeClock
from gs_hooks._store import Store
from gs_hooks.bans import Ban, BanBook
from gs_hooks.bans._book import RETRY_WRITE_S
from gs_hooks.bans._model import LOCAL, BanKey, BanRow, BatchOrigin
from gs_hooks.bans._persistence import BanStore, Current, SqliteBanStore

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=KST)
REMOTE = BatchOrigin(remote=True, cursor="1767225600000-0")


def ban(player: str, start: datetime = T0) -> Ban:
    return Ban(player_key=player, source="hive", status="permanent", starts_at=start)


class Outbox:
    """An ``also`` step: records, inside the rows' transaction, what it was given (or fails when told to)."""

    def __init__(self) -> None:
        self.entries: list[tuple[list[str], BatchOrigin, bool]] = []
        self.failing = False

    def __call__(self, conn: sqlite3.Connection, rows: Sequence[BanRow], origin: BatchOrigin) -> None:
        if self.failing:
            raise sqlite3.OperationalError("outbox: disk I/O error")
        conn.execute("CREATE TABLE IF NOT EXISTS outbox (player TEXT, lifted INTEGER, remote INTEGER)")
        conn.executemany(
            "INSERT INTO outbox VALUES (?, ?, ?)",
            [(r.ban.player_key, r.lifted_at is not None, origin.remote) for r in rows],
        )
        self.entries.append(([r.ban.player_key for r in rows], origin, conn.in_transaction))


def table(store: Store, sql: str) -> list[tuple[object, ...]]:
    return store.run_sync(lambda conn: sorted(conn.execute(sql).fetchall()))


async def test_each_write_tells_the_persistence_its_origin_inside_the_rows_transaction(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "s.db"))
    outbox = Outbox()
    book = BanBook(store, clock=FakeClock(T0), persistence=SqliteBanStore(store, also=outbox))
    await book.apply([ban("a"), ban("b")])
    book.apply_many_nowait([ban("c")], origin=REMOTE)
    await book.lift("a")
    book.lift_nowait("c", origin=REMOTE)
    assert outbox.entries == [
        (["a", "b"], LOCAL, True),
        (["c"], REMOTE, True),
        (["a"], LOCAL, True),
        (["c"], REMOTE, True),
    ]
    assert table(store, "SELECT player, lifted, remote FROM outbox") == [
        ("a", 0, 0),
        ("a", 1, 0),
        ("b", 0, 0),
        ("c", 0, 1),
        ("c", 1, 1),
    ]


async def test_a_failing_extra_write_rolls_the_rows_back_and_the_retry_keeps_the_origin(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "s.db"))
    clock = FakeClock(T0)
    outbox = Outbox()
    book = BanBook(store, clock=clock, persistence=SqliteBanStore(store, also=outbox))
    await book.load()
    outbox.failing = True
    with pytest.raises(sqlite3.OperationalError):
        await book.apply([ban("p")], origin=REMOTE)
    assert book.active_ban("p") == ban("p")  # in force in memory
    assert book.unsaved_keys == {("hive", "p")}
    assert table(store, "SELECT player_key FROM bans_book") == []  # the rows went with the failed extra write
    outbox.failing = False
    await clock.advance(RETRY_WRITE_S)
    await book.tick()
    assert book.unsaved_count == 0
    assert table(store, "SELECT player_key FROM bans_book") == [("p",)]
    assert [(players, origin) for players, origin, _ in outbox.entries] == [(["p"], REMOTE)]


class DictBanStore:
    """A second persistence: rows kept in a dict (what a restart would read back), origins noted."""

    def __init__(self) -> None:
        self.rows: dict[BanKey, BanRow] = {}
        self.origins: list[BatchOrigin] = []

    def describe(self) -> str:
        return "dict"

    def load_sync(self, purge_before: float) -> list[BanRow]:
        return [BanRow.of(r.ban, r.recorded_at, r.lifted_at) for r in self.rows.values()]

    async def load(self, purge_before: float) -> list[BanRow]:
        return self.load_sync(purge_before)

    def write_sync(self, keys: Sequence[BanKey], current: Current, origin: BatchOrigin) -> list[BanRow]:
        written = [row for row in map(current, keys) if row is not None]
        self.rows.update((row.key, row) for row in written)
        self.origins.append(origin)
        return written

    async def write(self, keys: Sequence[BanKey], current: Current, origin: BatchOrigin) -> list[BanRow]:
        return self.write_sync(keys, current, origin)

    async def delete(self, keys: Sequence[BanKey], current: Current) -> None:
        for key in keys:
            if current(key) is None:
                self.rows.pop(key, None)


async def test_the_book_runs_on_another_persistence() -> None:
    persistence: BanStore = DictBanStore()
    clock = FakeClock(T0)
    kicks: list[str] = []

    def kick(player: str, message: str, details: object) -> int:
        kicks.append(player)
        return 1

    book = BanBook(Store(":memory:"), clock=clock, kick=kick, persistence=persistence)
    later = ban("later", T0 + timedelta(minutes=5))
    assert await book.apply([ban("a"), later], origin=REMOTE) == [ban("a"), later]
    assert await book.lift("a") == [ban("a")]
    assert kicks == ["a"]
    again = BanBook(Store(":memory:"), clock=clock, persistence=persistence)  # a restart reads it back
    assert again.active_ban("a") is None  # the lift's tombstone
    assert again.bans_of("later") == [later]
    assert isinstance(persistence, DictBanStore) and persistence.origins == [REMOTE, LOCAL]
