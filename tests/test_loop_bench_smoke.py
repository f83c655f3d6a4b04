"""The loop and HTTP-client benches run (once, small). No timing is asserted: ``python -m bench.loop`` and
``python -m bench.http_clients`` measure; this checks they measure what they say."""

from __future__ import annotations

import pytest
from bench import http_clients, loop

pytestmark = pytest.mark.slow


def test_loop_bench_smoke_ticks_beside_a_ban_batch_and_a_login_storm() -> None:
    result = loop.run(smoke=True)
    bans, logins = result["bans"], result["logins"]
    assert bans["runs"] and all(r["ticks"] > 0 and r["applied_ms"] > 0 for r in bans["runs"])
    assert bans["idle"]["ticks"] > 0
    assert logins["logins"] == 200 and logins["ticks"] > 0 and logins["verifications_per_s"] > 0
    assert logins["plain_aiohttp_same_storm"]["ticks"] > 0
    assert set(result["bars"]) >= {"logins_p99_ms", "logins_max_ms"}


def test_http_clients_bench_smoke_measures_every_installed_candidate() -> None:
    result = http_clients.run(smoke=True)
    rows = result["c16"]
    assert {"plain_aiohttp", "plain_httpx", "gs_hooks_aiohttp_client", "gs_hooks_fast_client"} <= set(rows)
    assert set(rows) | set(result["skipped"]) == set(http_clients.CANDIDATES)
    assert rows["plain_aiohttp"]["cpu_vs_aiohttp"] == 1.0
    assert all(row["cpu_us_per_request"] > 0 for row in rows.values())
