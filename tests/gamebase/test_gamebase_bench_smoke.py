"""The gamebase bench runs (once, small). No timing is asserted: speed is measured by ``python -m bench.gamebase``."""

from __future__ import annotations

from bench import gamebase


def test_gamebase_bench_smoke_runs_against_the_sandbox_subprocess() -> None:
    result = gamebase.run(smoke=True)
    hit = result["cache_hit"]
    assert hit["await_verify_hit_us"] > 0 and hit["cached_nowait_hit_us"] > 0
    storm = result["login_storm"]
    # every cold token reached the sandbox exactly once: ours (a task per login, and loops), the aiohttp (loops,
    # and a task per login) and httpx baselines, then ours and aiohttp at the default cap and at 64 with a
    # simulated round trip
    assert storm["storms"] == 5 + 4
    assert storm["requests_counted_by_sandbox"] == storm["storms"] * storm["tokens_per_storm"]
    assert storm["default_cpu_us_per_verification"] > 0
    assert storm["default_worker_loop_cpu_us_per_verification"] > 0
    chosen = storm["sweep"][f"c{storm['default_concurrency']}"]
    assert chosen["loops_ratio_vs_aiohttp"] > 0 and chosen["ratio_vs_aiohttp_task_per_login"] > 0
    assert set(storm["bars"]) >= {"throughput_vs_aiohttp_loops", "throughput_vs_aiohttp_task_per_login"}
    assert storm["with_round_trip"]["c64"]["ours_cpu_us_per_verification"] > 0
