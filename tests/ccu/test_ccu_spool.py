"""The durable spool: write-before-send, lifecycle as data, survival across reopen, history and pruning."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gs_hooks import format_kst
from gs_hooks._store import Store
from gs_hooks.ccu import CcuSample, CcuSampleRow, CcuSpool, SampleState, make_reqkey
from gs_hooks.ccu._model import TRANSITIONS, advance, transition

DAY0 = 1_790_000_000 - (1_790_000_000 + 9 * 3600) % 86_400  # a KST midnight


def sample(server: str, slot: int, user: int = 7, game: str = "g_KR") -> tuple[CcuSample, int]:
    return CcuSample.create(game=game, server=server, date=format_kst(slot), user=user), slot


@pytest.fixture
def spool(tmp_path: Path) -> CcuSpool:
    s = CcuSpool(Store(str(tmp_path / "spool.sqlite3")))
    s.open_sync()
    return s


def test_day0_is_kst_midnight() -> None:
    assert format_kst(DAY0).endswith(" 00:00:00")


def test_added_rows_are_pending_and_durable_across_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sqlite3")
    sp = CcuSpool(Store(path))
    sp.open_sync()
    added = sp.add_sync([sample("1", DAY0), sample("2", DAY0)], now=DAY0 + 0.5)
    assert [r.key for r in added] == [("1", DAY0), ("2", DAY0)]
    assert all(r.state is SampleState.PENDING for r in added)
    sp.store.close()
    # another connection (another process would be the same) sees the committed rows
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT count(*) FROM ccu_samples WHERE state='pending'").fetchone()[0] == 2
    conn.close()
    again = CcuSpool(Store(path))
    again.open_sync()
    rows = again.due_sync(DAY0 + 1, 10)
    assert [(r.server, r.date, r.user, r.reqkey) for r in rows] == [
        ("1", format_kst(DAY0), 7, make_reqkey("g_KR", "1", format_kst(DAY0))),
        ("2", format_kst(DAY0), 7, make_reqkey("g_KR", "2", format_kst(DAY0))),
    ]
    again.store.close()


def test_one_sample_per_server_and_slot(spool: CcuSpool) -> None:
    assert len(spool.add_sync([sample("1", DAY0, user=5)], now=DAY0)) == 1
    assert spool.add_sync([sample("1", DAY0, user=9)], now=DAY0 + 1) == []
    rows = spool.rows_sync()
    assert [(r.key, r.user) for r in rows] == [(("1", DAY0), 5)]


def test_due_is_oldest_first_and_respects_backoff_and_exclusions(spool: CcuSpool) -> None:
    for k in range(5):
        spool.add_sync([sample("1", DAY0 + 120 * k)], now=DAY0 + 120 * k)
    now = DAY0 + 1000
    spool.record_sync(("1", DAY0), "retry", code=300, error="DB error", now=now, next_attempt_at=now + 50)
    due = spool.due_sync(now, 10)
    assert [r.slot_ts for r in due] == [DAY0 + 120 * k for k in range(1, 5)]
    assert [r.slot_ts for r in spool.due_sync(now, 2, exclude={("1", DAY0 + 120)})] == [DAY0 + 240, DAY0 + 360]
    assert spool.next_due_sync(exclude={r.key for r in due}) == now + 50
    assert [r.slot_ts for r in spool.due_sync(now + 50, 1)] == [DAY0]
    assert spool.pull_forward_sync(now) == 1
    assert spool.due_sync(now, 1)[0].slot_ts == DAY0


def test_lifecycle_records_codes_attempts_and_timestamps(spool: CcuSpool) -> None:
    spool.add_sync([sample("1", DAY0), sample("2", DAY0)], now=DAY0)
    spool.record_sync(("1", DAY0), "retry", code=None, error="transport error: ConnectError", now=DAY0 + 1)
    spool.record_sync(("1", DAY0), "delivered", code=101, now=DAY0 + 9)
    spool.record_sync(("2", DAY0), "refused", code=302, error="no such game key", now=DAY0 + 2)
    one = spool.get_sync("1", DAY0)
    two = spool.get_sync("2", DAY0)
    assert one is not None and two is not None
    assert (one.state, one.attempts, one.last_code, one.last_error, one.delivered_at) == (
        SampleState.DELIVERED,
        2,
        101,
        "",
        DAY0 + 9,
    )
    assert (two.state, two.attempts, two.last_code, two.last_error) == (
        SampleState.REFUSED,
        1,
        302,
        "no such game key",
    )
    assert spool.due_sync(DAY0 + 100, 10) == []  # refused rows are not looped on
    assert spool.backlog_depth_sync() == 0
    assert spool.last_success_at_sync("1") == DAY0 + 9
    assert spool.last_success_at_sync("2") is None
    last = spool.last_result_sync("2")
    assert last is not None and last.last_code == 302


def test_illegal_moves_raise(spool: CcuSpool) -> None:
    spool.add_sync([sample("1", DAY0)], now=DAY0)
    spool.record_sync(("1", DAY0), "delivered", code=100, now=DAY0)
    with pytest.raises(RuntimeError, match="not allowed in state 'delivered'"):
        spool.record_sync(("1", DAY0), "retry", code=300, now=DAY0)
    with pytest.raises(RuntimeError, match="not in the spool"):
        spool.record_sync(("9", DAY0), "delivered", code=100, now=DAY0)
    with pytest.raises(RuntimeError, match="not allowed"):
        transition(SampleState.DELIVERED, "requeue")
    # the table is the whole lifecycle
    assert set(TRANSITIONS.values()) == set(SampleState)


def test_requeue_refused_restamps_game_and_reqkey(spool: CcuSpool) -> None:
    spool.add_sync([sample("1", DAY0, game="wrong"), sample("2", DAY0, game="right")], now=DAY0)
    spool.record_sync(("1", DAY0), "refused", code=302, error="", now=DAY0)
    spool.record_sync(("2", DAY0), "refused", code=202, error="", now=DAY0)
    # at start with the game key unchanged for row 2, only the row refused under the other key is requeued
    assert spool.requeue_refused_sync(DAY0 + 5, game="right", only_other_game=True) == 1
    row = spool.get_sync("1", DAY0)
    assert row is not None and row.state is SampleState.PENDING
    assert (row.game, row.reqkey) == ("right", make_reqkey("right", "1", format_kst(DAY0)))
    assert spool.requeue_refused_sync(DAY0 + 5) == 1  # the operator's resend takes the rest
    assert spool.rows_sync(SampleState.REFUSED) == []
    assert spool.backlog_depth_sync() == 2


def test_history_filters_by_server_day_and_state(spool: CcuSpool) -> None:
    for k in range(3):
        spool.add_sync([sample("1", DAY0 - 120 + 120 * k, user=k), sample("2", DAY0 - 120 + 120 * k)], now=DAY0)
    spool.record_sync(("1", DAY0), "delivered", code=100, now=DAY0)
    day = spool.history_sync(None, DAY0, DAY0 + 86_400)
    assert [(r.server, r.slot_ts) for r in day] == [("1", DAY0), ("2", DAY0), ("1", DAY0 + 120), ("2", DAY0 + 120)]
    assert [r.user for r in spool.history_sync("1", DAY0, DAY0 + 86_400)] == [1, 2]
    only = spool.history_sync("1", DAY0, DAY0 + 86_400, delivered_only=True)
    assert [(r.slot_ts, r.state) for r in only] == [(DAY0, SampleState.DELIVERED)]
    assert isinstance(only[0], CcuSampleRow) and only[0].sample().reqkey == only[0].reqkey


def test_prune_keeps_pending_rows(spool: CcuSpool) -> None:
    spool.add_sync([sample("1", DAY0), sample("2", DAY0), sample("1", DAY0 + 120)], now=DAY0)
    spool.record_sync(("1", DAY0), "delivered", code=100, now=DAY0)
    spool.record_sync(("1", DAY0 + 120), "delivered", code=100, now=DAY0)
    assert spool.prune_sync(DAY0 + 60) == 1
    assert [r.key for r in spool.rows_sync()] == [("2", DAY0), ("1", DAY0 + 120)]


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_async_reads(spool: CcuSpool, anyio_backend: str) -> None:
    spool.add_sync([sample("1", DAY0)], now=DAY0)
    assert await spool.backlog_depth() == 1
    assert [r.slot_ts for r in await spool.history("1", DAY0, DAY0 + 1)] == [DAY0]
    assert await spool.last_result("1") is None
    assert await spool.last_success_at("1") is None
    spool.record_sync(("1", DAY0), "delivered", code=100, now=DAY0 + 3)
    assert await spool.backlog_depth() == 0
    last = await spool.last_result("1")
    assert last is not None and last.last_code == 100
    assert await spool.last_success_at("1") == DAY0 + 3


def test_advance_in_memory_matches_what_record_writes_and_put_writes_it_back(spool: CcuSpool) -> None:
    spool.add_sync([sample("1", DAY0), sample("2", DAY0), sample("1", DAY0 + 120)], now=DAY0)
    moves = [
        (("1", DAY0), "retry", {"code": 300, "error": "DB error", "next_attempt_at": DAY0 + 40}),
        (("1", DAY0), "delivered", {"code": 101}),
        (("2", DAY0), "refused", {"code": 302, "error": "bad game"}),
        (("1", DAY0 + 120), "retry", {"code": None, "error": "transport error: ConnectError"}),
    ]
    for now, (key, event, kw) in enumerate(moves, start=DAY0 + 1):
        before = spool.get_sync(*key)
        assert before is not None
        in_memory = advance(before, event, now=now, **kw)  # type: ignore[arg-type]
        spool.record_sync(key, event, now=now, **kw)  # type: ignore[arg-type]
        assert spool.get_sync(*key) == in_memory
    with pytest.raises(RuntimeError, match="not allowed"):
        advance(spool.rows_sync(SampleState.DELIVERED)[0], "retry", code=300, now=DAY0)
    # put_sync writes rows exactly as memory holds them: a new slot, and a newer state of a spooled one
    fresh = CcuSampleRow(
        server="2",
        slot_ts=DAY0 + 120,
        date=format_kst(DAY0 + 120),
        game="g_KR",
        user=3,
        reqkey=make_reqkey("g_KR", "2", format_kst(DAY0 + 120)),
        state=SampleState.DELIVERED,
        attempts=1,
        last_code=100,
        created_at=DAY0 + 120,
        next_attempt_at=DAY0 + 120,
        delivered_at=DAY0 + 121,
    )
    pending = spool.get_sync("1", DAY0 + 120)
    assert pending is not None
    newer = advance(pending, "delivered", code=100, now=DAY0 + 200)
    spool.put_sync([fresh, newer])
    assert spool.get_sync("2", DAY0 + 120) == fresh
    assert spool.get_sync("1", DAY0 + 120) == newer
    assert len(spool.rows_sync()) == 4
