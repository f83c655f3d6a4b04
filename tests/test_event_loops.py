"""Which event loop the suite runs on: ``scripts/test`` runs it on asyncio's loop, then on uvloop's
(``GS_HOOKS_TEST_LOOP``); this checks the pass is on the loop it says, and (in the uvloop pass) that the demo
passes on uvloop."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEST_LOOP = os.environ.get("GS_HOOKS_TEST_LOOP", "asyncio")  # as tests/conftest.py reads it


@pytest.mark.anyio
async def test_the_asyncio_tests_run_on_the_loop_of_this_pass() -> None:
    loop = type(asyncio.get_running_loop())
    assert loop.__module__.startswith("uvloop") == (TEST_LOOP == "uvloop"), loop


def test_a_plain_asyncio_run_uses_the_loop_of_this_pass_too() -> None:
    async def which() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert asyncio.run(which()).startswith("uvloop") == (TEST_LOOP == "uvloop")


@pytest.mark.slow
@pytest.mark.timeout(200)
def test_the_demo_passes_on_uvloop() -> None:
    if TEST_LOOP != "uvloop":
        pytest.skip("the uvloop pass runs it (the asyncio demo is tests/example's)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GS_HOOKS_")}
    env["PYTHONUNBUFFERED"] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "examples.asyncio_server", "--demo", "--port", "0", "--loop", "uvloop"],
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
    assert "Traceback" not in out
