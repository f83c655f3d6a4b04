"""The listener bench runs end to end (one short round; it measures nothing here, bench/ does)."""

from __future__ import annotations

import pytest
from bench import listener


@pytest.mark.slow
def test_listener_bench_smoke() -> None:
    result = listener.run(smoke=True)
    assert set(result["req_per_s"]) == set(listener.SERVERS)
    assert all(rate > 0 for rate in result["req_per_s"].values())
    assert set(result["ratios"]) >= {"ours/starlette", "ours/asgi", "ours/h11"}
    assert result["setup"]["rounds"] == 1


def test_bench_validator_accepts_the_payload_and_refuses_a_bad_one() -> None:
    assert listener.validate(listener.payload(100))
    assert not listener.validate(b'[{"player_id":"x","status":"B","start_date":"","end_date":""}]')
