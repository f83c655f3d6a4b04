"""The README's main command: ``python -m examples.asyncio_server --demo`` passes (exit 0, every step observed)
on the embedded sandbox, within the 3 minutes issue 8 allows."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from example_support import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.realclock, pytest.mark.timeout(200)]


def test_demo_passes_on_the_embedded_sandbox() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GS_HOOKS_")}
    env["PYTHONUNBUFFERED"] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "examples.asyncio_server", "--demo", "--port", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "demo passed" in out
    assert "SHORT DEMO GRID" in out
    for step in (
        "login",
        "ccu",
        "ban kick",
        "ban refusal",
        "maintenance warning",
        "maintenance kick",
        "maintenance refusal",
        "login after maintenance",
        "web-store profile",
    ):
        assert f"✔ {step}" in out, step
    assert "Traceback" not in out
