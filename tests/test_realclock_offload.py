"""The real-clock offload (``realclock_offload.py``): a ``realclock`` test runs in a child session beside the rest
and is reported under its own id with what the child saw (pass, failure with its traceback and output, skip,
xfail with its reason), with and without pytest-xdist; a child session failing at its end (the secrets guard) fails
its tests; the secrets guard fails an xdist run whose leak happened in a worker."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parent

CONFTEST = f"""
import sys

sys.path.insert(0, {str(TESTS)!r})

from gs_secrets_guard import pytest_sessionfinish, pytest_sessionstart, pytest_testnodedown
from realclock_offload import pytest_addoption, pytest_configure
"""

INI = """
[pytest]
markers =
    realclock: runs in a child session
addopts = -rA -p no:cacheprovider
"""

REALCLOCK = """
import logging
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.realclock


def test_fails() -> None:
    Path("pids", "fails").write_text(str(os.getpid()))
    print("the child says hi")
    x = 3
    assert x == 4, "boom"


def test_skips() -> None:
    pytest.skip("nothing to see")


def test_xfails() -> None:
    pytest.xfail("a known gap")


@pytest.mark.parametrize("n", [1, 2])
def test_passes(n: int) -> None:
    Path("pids", f"passes{n}").write_text(str(os.getpid()))
"""

REALCLOCK_LEAKING = """
import logging
import os

import pytest
from gs_secrets_guard import remember_secret


@pytest.mark.realclock
def test_passes_but_leaks() -> None:
    if os.environ.get("LEAK_IN_CHILD"):
        remember_secret("child-secret-value")
        logging.getLogger("x").warning("here: child-secret-value")
"""

PLAIN = """
import logging
import os
from pathlib import Path

import pytest
from gs_secrets_guard import remember_secret


@pytest.mark.parametrize("n", range(4))
def test_plain(n: int) -> None:
    Path("pids", f"plain{n}").write_text(str(os.getpid()))
    if os.environ.get("LEAK_IN_PARENT") and n == 2:
        remember_secret("parent-secret-value")
        logging.getLogger("x").warning("here: parent-secret-value")
"""


def run(tmp_path: Path, *args: str, **env: str) -> tuple[int, str]:
    for name, text in {
        "conftest.py": CONFTEST,
        "pytest.ini": INI,
        "test_realclock.py": REALCLOCK,
        "test_realclock_leaking.py": REALCLOCK_LEAKING,
        "test_plain.py": PLAIN,
    }.items():
        (tmp_path / name).write_text(textwrap.dedent(text), encoding="utf-8")
    (tmp_path / "pids").mkdir(exist_ok=True)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "GSH_TESTS_"))}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *args],
        cwd=tmp_path,
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def outcomes(out: str) -> dict[str, str]:
    """Node id -> PASSED / FAILED / ERROR from the ``-rA`` summary. A failure's message may quote a child session's
    own output, summary included (with ``CI`` set pytest does not cut summary lines), where the test passed: so a
    FAILED or ERROR line of an id wins over a PASSED one."""
    rank = {"PASSED": 0, "ERROR": 1, "FAILED": 2}
    found: dict[str, str] = {}
    for m in re.finditer(r"^(PASSED|FAILED|ERROR) (\S+)", out, re.M):
        if rank[m[1]] >= rank[found.get(m[2], "PASSED")]:
            found[m[2]] = m[1]
    return found


def pids(tmp_path: Path) -> dict[str, int]:
    return {p.name: int(p.read_text()) for p in (tmp_path / "pids").iterdir()}


def test_each_realclock_test_is_reported_as_its_child_session_saw_it(tmp_path: Path) -> None:
    rc, out = run(tmp_path, LEAK_IN_CHILD="1")
    assert rc == 1, out
    assert outcomes(out) == {
        "test_plain.py::test_plain[0]": "PASSED",
        "test_plain.py::test_plain[1]": "PASSED",
        "test_plain.py::test_plain[2]": "PASSED",
        "test_plain.py::test_plain[3]": "PASSED",
        "test_realclock.py::test_fails": "FAILED",
        "test_realclock.py::test_passes[1]": "PASSED",
        "test_realclock.py::test_passes[2]": "PASSED",
        "test_realclock_leaking.py::test_passes_but_leaks": "FAILED",  # its child session failed at its end
    }, out
    assert "the test passed but its child session failed" in out and "secrets guard" in out
    assert re.search(r"^SKIPPED \[1\] test_realclock\.py:\d+: nothing to see$", out, re.M), out
    assert re.search(r"^XFAIL test_realclock\.py::test_xfails - a known gap$", out, re.M), out  # not a skip
    assert "AssertionError: boom" in out and "assert 3 == 4" in out  # the child's traceback
    assert "the child says hi" in out  # and its captured output
    # the real-clock tests ran in another process than the others, one child session per module
    seen = pids(tmp_path)
    assert seen["fails"] == seen["passes1"] == seen["passes2"]
    assert seen["fails"] not in {seen[f"plain{n}"] for n in range(4)}


def test_under_xdist_too_and_a_leak_in_a_worker_fails_the_run(tmp_path: Path) -> None:
    rc, out = run(tmp_path, "-n", "2", "-k", "not test_fails", "test_plain.py", "test_realclock.py", LEAK_IN_PARENT="1")
    assert set(outcomes(out).values()) == {"PASSED"} and len(outcomes(out)) == 6, out
    assert re.search(r"^SKIPPED \[1\] test_realclock\.py:\d+: nothing to see$", out, re.M), out
    assert re.search(r"^XFAIL test_realclock\.py::test_xfails - a known gap$", out, re.M), out  # not a skip
    seen = pids(tmp_path)
    assert seen["passes1"] == seen["passes2"]
    assert seen["passes1"] not in {seen[f"plain{n}"] for n in range(4)}
    assert rc == 1, out
    assert "secrets guard: a secret appeared in 1 log record" in out


def test_inline_runs_them_here(tmp_path: Path) -> None:
    rc, out = run(tmp_path, "--realclock-inline", "test_plain.py", "test_realclock.py::test_passes")
    assert rc == 0, out
    seen = pids(tmp_path)
    assert seen["passes1"] == seen["passes2"] == seen["plain0"]
