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
    e2e = result["end_to_end"]
    kick = e2e["kick_on_another_process"]
    assert 0 < kick["from_listener_accepted_p50_ms"] <= kick["from_listener_accepted_p99_ms"]
    assert 0 < kick["from_post_sent_p50_ms"] <= kick["from_post_sent_p99_ms"]
    assert e2e["fanout_2000_bans_8_processes"]["after_last_answer_ms_runs"]
    assert e2e["leader_failover"]["takeover_s_runs"][0] > 0
    polls = e2e["maintenance_polls"]
    assert polls["polls_per_period_1_processes"] > 0 and polls["polls_per_period_4_processes"] > 0
    cost = result["game_loop_cost"]  # the tracked echo served by setup() hooks, fleet mode on vs off
    for variant in ("tracked_echo", "tracked_echo_with_logins"):
        figures = cost[variant]
        assert figures["fleet_on_roundtrips_per_s"] > 0 and figures["fleet_off_roundtrips_per_s"] > 0
        assert figures["ratio"] > 0 and len(figures["ratio_quartiles"]) == 2
        assert isinstance(figures["meets_bar"], bool)
    logins = cost["tracked_echo_with_logins"]
    assert logins["fleet_claims_on_redis"] == logins["logins_per_server"] > 0  # every login claimed on Redis
