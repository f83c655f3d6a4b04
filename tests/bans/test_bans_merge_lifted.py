"""The book's lifts by identity (``merge_lifted``: fleet mode's tombstones from other processes): the book's own
rules, a tombstone kept where no row was held, persisted and read back, and no kick for a lift."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from gs_hooks import KST, FakeClock
from gs_hooks._store import Store
from gs_hooks.bans import Ban, BanBook

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=KST)


def ban(player: str, start: datetime = T0, end: datetime | None = None) -> Ban:
    status = "permanent" if end is None else "temporary"
    return Ban(player_key=player, source="hive", status=status, starts_at=start, ends_at=end)


async def test_a_lift_of_a_held_ban_lifts_it_once(tmp_path: Path) -> None:
    kicks: list[str] = []
    book = BanBook(Store(str(tmp_path / "s.sqlite3")), clock=FakeClock(T0), kick=lambda p, m, d: kicks.append(p) or 1)
    await book.apply([ban("p1")])
    assert book.active_ban("p1") is not None and kicks == ["p1"]
    lifted_at = T0.timestamp() + 5
    assert await book.merge_lifted([(ban("p1"), lifted_at)]) == [ban("p1")]
    assert book.active_ban("p1") is None
    assert await book.merge_lifted([(ban("p1"), lifted_at)]) == []  # the same lift again: nothing
    assert await book.apply([ban("p1")]) == []  # the lifted ban read again does not come back
    assert kicks == ["p1"]  # a lift kicks nobody


async def test_a_lift_is_kept_where_no_ban_was_held_and_survives_a_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sqlite3")
    book = BanBook(Store(path), clock=FakeClock(T0))
    assert await book.merge_lifted([(ban("p2"), T0.timestamp())]) == [ban("p2")]
    assert ("hive", "p2") in book.recorded_keys and book.active_ban("p2") is None
    again = BanBook(Store(path), clock=FakeClock(T0))
    assert await again.apply([ban("p2")]) == []  # the tombstone was written: still a no-op after a restart
    assert again.active_ban("p2") is None


async def test_stale_lifts_and_later_bans_follow_the_books_rules(tmp_path: Path) -> None:
    book = BanBook(Store(str(tmp_path / "s.sqlite3")), clock=FakeClock(T0))
    later = ban("p3", T0 + timedelta(minutes=1))
    await book.apply([later])
    assert await book.merge_lifted([(ban("p3"), T0.timestamp())]) == []  # lifts an older ban: stale
    assert book.active_ban("p3") is None  # (later starts in a minute: recorded, not in force yet)
    assert book.bans_of("p3") == [later]
    newer = ban("p3", T0 + timedelta(minutes=2), T0 + timedelta(days=1))
    assert await book.merge_lifted([(newer, T0.timestamp())]) == [newer]  # a lift of a later ban replaces it
    assert book.bans_of("p3") == []
    assert await book.apply([later]) == []  # older than the tombstone: stale
    even_later = ban("p3", T0 + timedelta(minutes=3))
    assert await book.apply([even_later]) == [even_later]  # a ban after the lifted one counts again
