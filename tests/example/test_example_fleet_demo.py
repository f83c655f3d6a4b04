"""Issue 16's example contract: ``python -m examples.asyncio_server --demo --fleet 3`` (a private redis-server, the
sandbox, three game processes) prints each step as it observes it, exits 0 only if every step was observed, and
stops every process it started (redis-server included) on every way out.

Where ``redis-server`` is missing the story test is skipped with a message naming ``apt-get install redis-server``;
with ``CI=true`` a missing server fails it instead (as tests/fleet does)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from example_support import ROOT

import gs_hooks
from gs_hooks._login import NoClaims

COMMAND = [sys.executable, "-m", "examples.asyncio_server", "--demo", "--fleet", "3"]
STEPS = ("fleet up", "ban kick", "ban refusal", "duplicate login", "ccu sum", "leader failover")
UNWIRED = ["duplicate login", "ccu sum"]


def need_redis_server() -> None:
    if shutil.which("redis-server") is None:
        message = "redis-server is not installed: apt-get install redis-server (the fleet demo needs a real Redis)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " -- CI=true: a missing server is a failure, not a skip")
        pytest.skip(message)


def demo_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GS_HOOKS_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def started_pids(out: str) -> list[int]:
    """The OS pids the demo printed: its redis-server and every game process."""
    pids = [int(p) for p in re.findall(r"^redis-server .*\(private, pid (\d+)\)", out, re.M)]
    pids += [int(p) for p in re.findall(r"^process \d+ +pid (\d+),", out, re.M)]
    return pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def fleet_logins_wired() -> bool:
    """Whether ``setup()`` in fleet mode installs the cross-process duplicate-login step (review2, finding 1: it
    does not yet; nor the CCU sum). Nothing is started: setup() only builds the parts."""
    with tempfile.TemporaryDirectory() as directory:
        env = {"GS_HOOKS_REDIS_URL": "redis://127.0.0.1:1/0", "GS_HOOKS_GAME": "g1"}
        hooks = gs_hooks.setup(gs_hooks.Config.from_env(env | {"GS_HOOKS_STATE": f"{directory}/s.sqlite3"}))
        return not isinstance(hooks._login.claims, NoClaims)


@pytest.mark.slow
@pytest.mark.realclock
@pytest.mark.timeout(200)
def test_fleet_demo_observes_every_step_and_stops_every_process() -> None:
    need_redis_server()
    done = subprocess.run(COMMAND, cwd=ROOT, env=demo_env(), capture_output=True, text=True, timeout=170, check=False)
    out = done.stdout + done.stderr
    pids = started_pids(out)
    assert len(pids) == 4, out  # redis-server and three game processes
    assert [p for p in pids if alive(p)] == [], out  # every one stopped before the demo exited
    assert "Traceback" not in out, out
    assert "SHORT DEMO GRID" in out
    missing = re.search(r"^fleet demo FAILED: missing (.*)$", out, re.M)
    if not fleet_logins_wired():
        # setup() does not wire fleet mode's duplicate-login claim nor its CCU sum yet: the demo must see exactly
        # those two steps fail, for that reason, and every other step, and exit non-zero naming them
        assert done.returncode == 1, out
        assert missing is not None and missing.group(1).split(", ") == UNWIRED, out
        for step in STEPS:
            assert f"✔ {step}:" in out or step in UNWIRED, (step, out)
        assert re.search(r"✘ duplicate login: TimeoutError: process 1's older session of 2002 was not kicked", out), out
        assert re.search(r"✘ ccu sum: AssertionError: demo1: sample \d+, sum of the processes' counts \d+", out), out
        pytest.xfail("setup() does not wire FleetLogins / FleetSink+FleetCcuLeader yet (review2 finding 1)")
    assert done.returncode == 0, out
    assert missing is None and "fleet demo passed" in out, out
    for step in STEPS:
        assert f"✔ {step}:" in out, (step, out)


@pytest.mark.slow
def test_sigterm_stops_every_process_it_started(tmp_path: Path) -> None:
    need_redis_server()
    log = tmp_path / "out.txt"
    with log.open("w") as sink:
        proc = subprocess.Popen(COMMAND, cwd=ROOT, env=demo_env(), stdout=sink, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 60
            while "✔ fleet up:" not in log.read_text() and proc.poll() is None:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            pids = started_pids(log.read_text())
            assert len(pids) == 4 and all(alive(p) for p in pids), log.read_text()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 143, log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    out = log.read_text()
    assert "stopped by SIGTERM" in out, out
    assert [p for p in pids if alive(p)] == [], out


def test_without_redis_server_on_path_it_says_how_to_install_it(tmp_path: Path) -> None:
    env = demo_env() | {"PATH": str(tmp_path)}  # an empty directory: no redis-server (python is called by path)
    done = subprocess.run(COMMAND, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert "apt-get install redis-server" in out, out
    assert "Traceback" not in out, out
