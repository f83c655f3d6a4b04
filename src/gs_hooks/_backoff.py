"""Jittered exponential backoff, as one pure function shared by every retry loop.

Retry ``attempt`` waits a delay drawn uniformly from ``[d/2, d]`` with ``d = min(cap, base * 2**attempt)``: the
bound doubles per attempt up to the cap, and the jitter spreads processes that failed together (one outage seen by
a whole fleet) so they do not retry in lockstep. The exponent is clamped: ``2.0 ** 1024`` does not fit a float, and
an outage of days reaches that many attempts with a short base.
"""

from __future__ import annotations

import random

__all__ = ["backoff_delay"]

_MAX_EXPONENT = 1000  # 2.0 ** 1000 ~ 1e301: any cap is reached long before, and it still fits a float


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait before retry ``attempt``, jittered.

    Args:
        attempt: how many doublings (0 = ``base`` itself); negative counts as 0, huge values are clamped.
        base: the un-doubled delay (seconds, >= 0).
        cap: the largest delay (seconds, >= 0).
        rng: the source of the jitter (inject a seeded one for reproducible schedules).

    Returns:
        A delay in ``[d/2, d]`` with ``d = min(cap, base * 2**attempt)``.
    """
    d = min(cap, base * 2.0 ** min(max(0, attempt), _MAX_EXPONENT))
    return d / 2 + rng.random() * d / 2
