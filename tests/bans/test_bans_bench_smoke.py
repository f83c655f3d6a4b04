"""The bans bench runs (once, small). No timing is asserted: speed is measured by ``python -m bench.bans``."""

from __future__ import annotations

from bench import bans


def test_bans_bench_smoke_runs_and_kicks_every_banned_session() -> None:
    result = bans.run(smoke=True)
    for store in ("memory_store", "file_store"):
        figures = result[store]
        assert figures["kicked_per_repeat"] == figures["bans"] == 200
        assert 0 < figures["applied_ms_median"] <= figures["recorded_ms_median"]
        assert figures["lookups_ms_median"] > 0
        loop = figures["loop"]  # the ticker ran beside the batch, and alone before it
        assert all(ticks > 0 for ticks in loop["idle_ticks_per_interpreter"])
        assert loop["applied_ms_median"] > 0
        assert loop["longest_piece_ms"] > 0  # the spinner ran beside the batch
    assert "met" in result["loop_goal"]
