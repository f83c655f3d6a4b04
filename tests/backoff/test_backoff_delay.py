"""The shared jittered exponential backoff: bounds, cap, the exponent clamp, reproducible with a seeded rng."""

from __future__ import annotations

import random

import pytest

from gs_hooks._backoff import backoff_delay


@pytest.mark.parametrize(("attempt", "bound"), [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (4, 10.0), (50, 10.0)])
def test_each_delay_lies_in_half_to_whole_of_the_capped_doubling(attempt: int, bound: float) -> None:
    rng = random.Random(7)
    delays = [backoff_delay(attempt, 1.0, 10.0, rng) for _ in range(2000)]
    assert all(bound / 2 <= d <= bound for d in delays)
    # jittered: spread over the range, not one value
    assert max(delays) - min(delays) > bound / 4


def test_huge_attempt_counts_do_not_overflow() -> None:
    rng = random.Random(1)
    for attempt in (1023, 1024, 1025, 10**6, 10**18):
        assert 150.0 <= backoff_delay(attempt, 30.0, 300.0, rng) <= 300.0


def test_negative_attempt_counts_as_zero_and_zero_base_means_no_wait() -> None:
    rng = random.Random(2)
    assert 0.5 <= backoff_delay(-3, 1.0, 10.0, rng) <= 1.0
    assert backoff_delay(5, 0.0, 10.0, rng) == 0.0


def test_the_same_seed_gives_the_same_schedule_and_different_seeds_differ() -> None:
    def schedule(seed: int) -> list[float]:
        rng = random.Random(seed)
        return [backoff_delay(n, 30.0, 300.0, rng) for n in range(1, 12)]

    assert schedule(3) == schedule(3)
    assert schedule(3) != schedule(4)
