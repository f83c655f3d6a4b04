"""The CCU bench runs (once, briefly). No timing is asserted: lateness and spool cost are measured by
``python -m bench.ccu``."""

from __future__ import annotations

from bench import ccu


def test_ccu_bench_smoke_measures_every_post_and_both_spool_writes() -> None:
    result = ccu.run(smoke=True)
    lateness = result["lateness"]
    # every POST of the warm ticks was seen at the collector (two server ids), and the baseline's too
    assert lateness["ours"]["n"] == 2 * result["ticks"]
    assert lateness["baseline_bare_post"]["n"] == 2 * result["ticks"]
    assert isinstance(lateness["never_early"], bool)
    disk = result["spool_write"]["disk"]
    assert disk["bare_insert_us"] > 0 and disk["spool_1_server_us_per_sample"] > 0
