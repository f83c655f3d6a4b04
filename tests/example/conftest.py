"""The sandbox as a separate process (``python -m gs_hooks sandbox``), for the example's process tests."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from example_support import ROOT

from process_support import read_until, stop


@pytest.fixture
def sandbox_process() -> Iterator[tuple[str, dict[str, str]]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gs_hooks", "sandbox", "--port", "0", "--ccu-period", "60"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        m, _ = read_until(proc, r"listening on (http://\S+)")
        settings: dict[str, str] = {}
        while True:
            line = proc.stdout.readline() if proc.stdout else ""
            if not line or line.startswith("# Ctrl-C"):
                break
            if "=" in line and line.startswith("GS_HOOKS_"):
                k, v = line.strip().split("=", 1)
                settings[k] = v
        yield m.group(1), settings
    finally:
        stop(proc, grace_s=10)
