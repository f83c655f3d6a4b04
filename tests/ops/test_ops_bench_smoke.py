"""The dashboard bench runs (smoke mode) and produces every figure; no timing is asserted here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_dashboard_bench_smoke_produces_figures() -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from bench import dashboard

    result = dashboard.run(smoke=True)
    assert result["bans"] == 2_000 and result["page_kib"] > 5
    for key in ("dashboard_ms", "dashboard_search_ms", "dashboard_last_page_ms", "admin_bans_ms"):
        assert result[key] > 0, key
    assert set(result["baseline"]) == {"healthz_ms", "active_bans_ms", "full_list_ms"}
    assert "200 ms" in result["bar"]
