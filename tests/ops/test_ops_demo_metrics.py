"""The bar of issue 18: after the demo story (``python -m examples.asyncio_server --demo`` on the embedded sandbox),
every metric family is present and non-empty in ``/metrics``, with the story's own events in it; and
``promtool check metrics`` accepts the exposition where promtool is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ops_support import FAMILIES, sample_value
from prometheus_client.parser import text_string_to_metric_families

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
PROMTOOL = shutil.which("promtool")
STORY_FAMILIES = {
    **FAMILIES,
    "gs_hooks_maintenance_state": "gauge",
    "gs_hooks_maintenance_polls": "counter",
    "gs_hooks_maintenance_poll_failures": "gauge",
    "gs_hooks_ban_polls": "counter",
    "gs_hooks_ban_poll_failures": "counter",
    "gs_hooks_ban_poll_watermark_lag_seconds": "gauge",
    "gs_hooks_ccu_users": "gauge",
    "gs_hooks_ccu_samples_delivered": "counter",
    "gs_hooks_ccu_backlog_depth": "gauge",
    "gs_hooks_ccu_send_seconds": "histogram",
}


@pytest.fixture(scope="module")
def exposition(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("demo") / "metrics.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GS_HOOKS_")}
    env["PYTHONUNBUFFERED"] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "examples.asyncio_server", "--demo", "--port", "0", "--metrics-out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    assert done.returncode == 0 and "demo passed" in done.stdout, done.stdout + done.stderr
    for step in ("gamebase blip", "operator"):
        assert f"✔ {step}" in done.stdout, step
    return out.read_text(encoding="utf-8")


def test_every_family_is_present_and_non_empty_after_the_story(exposition: str) -> None:
    families = {f.name: f for f in text_string_to_metric_families(exposition)}
    missing = [name for name in STORY_FAMILIES if name not in families or not families[name].samples]
    assert missing == []
    assert {name: families[name].type for name in STORY_FAMILIES} == STORY_FAMILIES


def test_the_story_is_in_the_numbers(exposition: str) -> None:
    f = {fam.name: fam for fam in text_string_to_metric_families(exposition)}

    def v(name: str, **labels: str) -> float:
        return sample_value(f[name], **labels)

    assert v("gs_hooks_logins", outcome="ok") >= 9  # six bots, one back after maintenance, the blip, the forgiven
    assert v("gs_hooks_logins", outcome="banned") == 1 and v("gs_hooks_logins", outcome="maintenance") == 1
    assert v("gs_hooks_kicks", reason="ban") == 2 and v("gs_hooks_kicks", reason="maintenance") == 4
    assert v("gs_hooks_kicks", reason="admin") == 1
    assert v("gs_hooks_bans_applied", source="hive") == 2 and v("gs_hooks_bans_lifted", source="hive") == 1
    assert v("gs_hooks_webhook_batches", code="0") == 1 and v("gs_hooks_webhook_seconds") == 1
    assert v("gs_hooks_gamebase_errors", api="verify_token", code="http_5xx") == 1
    assert v("gs_hooks_gamebase_retries", api="verify_token", code="http_5xx") == 1
    assert v("gs_hooks_gamebase_request_seconds", api="verify_token") >= 10
    assert v("gs_hooks_gamebase_request_seconds", api="under_maintenance") >= 1
    assert v("gs_hooks_admin_requests", action="kick", status="200") == 1
    assert v("gs_hooks_admin_requests", action="unban", status="200") == 1
    assert v("gs_hooks_token_cache_misses") >= 9
    assert v("gs_hooks_maintenance_state", state="ended") == 1
    assert 0 <= v("gs_hooks_ban_poll_watermark_lag_seconds") < 60
    assert v("gs_hooks_ccu_samples_delivered", code="100") >= 1
    assert v("gs_hooks_server_players", server_id="demo1") >= 1
    assert v("gs_hooks_up") == 1 and v("gs_hooks_ready") == 1


@pytest.mark.skipif(PROMTOOL is None, reason="no promtool on PATH (Debian: the prometheus package, see .ci/run)")
def test_promtool_accepts_the_story_exposition(exposition: str) -> None:
    assert PROMTOOL is not None
    done = subprocess.run([PROMTOOL, "check", "metrics"], input=exposition, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
