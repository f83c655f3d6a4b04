from __future__ import annotations

import logging

import pytest

from gs_hooks._ratelog import RateLimitedLog


class Now:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_first_record_logged_repeats_counted_then_summarised(caplog: pytest.LogCaptureFixture) -> None:
    now = Now()
    log = RateLimitedLog(logging.getLogger("t.ratelog"), interval_s=10, time=now)
    with caplog.at_level(logging.WARNING, "t.ratelog"):
        assert log.log(logging.WARNING, "accept", "accept failed: %s", "EMFILE")
        for _ in range(999):
            assert not log.log(logging.WARNING, "accept", "accept failed: %s", "EMFILE")
        assert log.suppressed("accept") == 999
        now.t += 10
        assert log.log(logging.WARNING, "accept", "accept failed: %s", "EMFILE")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["accept failed: EMFILE", "accept failed: EMFILE (and 999 more like this in the last 10 s)"]


def test_keys_are_independent_and_flush_summarises(caplog: pytest.LogCaptureFixture) -> None:
    now = Now()
    log = RateLimitedLog(logging.getLogger("t.ratelog2"), interval_s=10, time=now)
    with caplog.at_level(logging.INFO, "t.ratelog2"):
        log.log(logging.INFO, ("401", "10.0.0.1"), "refused %s", "a")
        log.log(logging.INFO, ("401", "10.0.0.2"), "refused %s", "b")
        log.log(logging.INFO, ("401", "10.0.0.2"), "refused %s", "b")
        assert log.flush() == 1
        assert log.flush() == 0
    assert [r.getMessage() for r in caplog.records] == [
        "refused a",
        "refused b",
        "refused b (1 more like this, not logged one by one)",
    ]


def test_memory_is_bounded_and_evicted_counts_are_not_lost(caplog: pytest.LogCaptureFixture) -> None:
    now = Now()
    log = RateLimitedLog(logging.getLogger("t.ratelog3"), interval_s=10, time=now, max_keys=2)
    with caplog.at_level(logging.INFO, "t.ratelog3"):
        log.log(logging.INFO, 1, "k %d", 1)
        log.log(logging.INFO, 1, "k %d", 1)
        now.t += 1
        log.log(logging.INFO, 2, "k %d", 2)
        now.t += 1
        log.log(logging.INFO, 3, "k %d", 3)  # evicts key 1, summarising its one suppressed record
    assert [r.getMessage() for r in caplog.records] == [
        "k 1",
        "k 2",
        "k 1 (1 more like this, not logged one by one)",
        "k 3",
    ]
    assert log.suppressed(1) == 0


def test_disabled_level_costs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    log = RateLimitedLog(logging.getLogger("t.ratelog4"), interval_s=10, time=Now())
    logging.getLogger("t.ratelog4").setLevel(logging.ERROR)
    assert not log.log(logging.INFO, "k", "nothing")
    assert log.suppressed("k") == 0
