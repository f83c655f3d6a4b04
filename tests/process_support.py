"""Child processes in tests: read a child's output until a line shows up, stop a child and keep what it said."""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import time


def read_until(proc: subprocess.Popen[str], pattern: str, timeout: float = 30.0) -> tuple[re.Match[str], str]:
    """Read ``proc``'s stdout line by line until a line matches ``pattern``; the match and everything read.

    Raises:
        AssertionError: the pattern was not printed within ``timeout`` seconds or before the child exited (the
            message holds the output so far).
    """
    assert proc.stdout is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        seen += line
        m = re.search(pattern, line)
        if m:
            return m, seen
    raise AssertionError(f"{pattern!r} not printed; output so far:\n{seen}")


def stop(proc: subprocess.Popen[str], *, grace_s: float | None = None) -> str:
    """Stop ``proc`` if it still runs and return the rest of its output (its stdout is closed).

    With ``grace_s`` it gets SIGTERM and that long to exit first; then (or at once) SIGKILL.
    """
    if proc.poll() is None and grace_s is not None:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace_s)
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    out = ""
    if proc.stdout is not None and not proc.stdout.closed:
        out = proc.stdout.read()
        proc.stdout.close()
    return out
