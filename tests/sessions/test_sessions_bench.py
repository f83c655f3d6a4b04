"""The sessions bench runs (smoke mode) and produces every figure; no timing is asserted here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_sessions_bench_smoke_produces_figures() -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from bench import sessions

    result = sessions.run(smoke=True)
    pair, memory, echo = result["pair"], result["memory"], result["echo"]
    for key in ("pair_ns", "bare_pair_ns", "login_pair_ns", "bare_login_pair_ns"):
        assert pair[key] > 0, key
    assert memory["sessions"] == 10_000
    assert memory["bytes_per_session"] > memory["bytes_per_session_connected_only"] > 0
    assert memory["gc_ms_with"] > 0 and memory["gc_ms_without"] > 0
    assert echo["bare_roundtrips_per_s"] > 0 and echo["tracked_roundtrips_per_s"] > 0 and echo["echo_ratio"] > 0
    assert set(result["bars"]) == {"pair_ns", "bytes_per_session", "gc_delta_ms", "echo_ratio"}
