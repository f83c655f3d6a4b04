"""The fleet bench runs (once, small). No timing is asserted: speed is measured by ``python -m bench.fleet``."""

from __future__ import annotations

import pytest
from bench import fleet
from fleet_support import need_redis_server


@pytest.mark.slow
def test_fleet_bench_smoke_runs_with_and_without_hiredis() -> None:
    need_redis_server()
    result = fleet.run(smoke=True)
    assert result["pure_python_parser"]["hiredis_in_use"] is False
    assert result["hiredis"]["hiredis_in_use"] is True
    for variant in ("pure_python_parser", "hiredis"):
        figures = result[variant]
        assert figures["fanout_ms_median"] > 0 and figures["fanout_one_entry_per_ban_ms_median"] > 0
        assert 0 < figures["round_trip_p50_ms"] <= figures["round_trip_p99_ms"]
