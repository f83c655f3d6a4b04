"""Real-clock process tests run in child pytest sessions started when collection ends, beside the rest of the run.

A test marked ``realclock`` drives real OS processes on the wall clock (the example server on a 60 s CCU grid, a
maintenance window that has to pass): it spends most of its minute waiting, not computing. When such tests are
selected together with other tests, each of their modules runs in a child ``python -m pytest`` started as soon as
collection ends; the parent runs everything else meanwhile, then reports each real-clock test under its own node
id from the child's report: passed, failed (with the child's traceback and captured output), or skipped. Nothing
is dropped or loosened: the child runs the same test bodies with the same plugins, ini options, markers and
timeouts (and the same session-end secrets guard: a child session that fails after its tests passed fails them).

``--realclock-inline`` runs them in the parent process instead (in collection order), as does a run that selects
only real-clock tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

MARKER = "realclock"
RESULTS_ENV = "GSH_TESTS_REALCLOCK_RESULTS"  # set in a child session: the file it writes its reports to
_WAIT_MARGIN_S = 60.0  # beyond the sum of the child's own test timeouts


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--realclock-inline",
        action="store_true",
        help="run the tests marked realclock in this process, in order, instead of in child sessions beside the rest",
    )


def pytest_configure(config: pytest.Config) -> None:
    results = os.environ.get(RESULTS_ENV)
    if results:
        config.pluginmanager.register(_ChildRecorder(Path(results)), "realclock-child-recorder")
    else:
        config.pluginmanager.register(_Offloader(config), "realclock-offloader")


# -- in the child: record every report ------------------------------------------------------------------------


@dataclass
class _ChildRecorder:
    path: Path
    reports: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.reports.setdefault(report.nodeid, []).append(
            {
                "when": report.when,
                "outcome": report.outcome,
                "longrepr": report.longreprtext,
                "skip_reason": _skip_reason(report),
                "duration": report.duration,
                "sections": [list(s) for s in report.sections],
            }
        )

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self) -> None:
        self.path.write_text(json.dumps(self.reports), encoding="utf-8")


def _skip_reason(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2])
    return ""


# -- in the parent: start the children, stand in for their tests ----------------------------------------------


class _Child:
    """One child session running one module's real-clock tests."""

    def __init__(
        self, rootdir: Path, options: list[str], workdir: Path, name: str, nodeids: list[str], timeout_s: float
    ) -> None:
        self.results = workdir / f"{name}.json"
        self.output = workdir / f"{name}.out"
        self.timeout_s = timeout_s
        env = dict(os.environ)
        env[RESULTS_ENV] = str(self.results)
        with self.output.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *options, *nodeids],
                cwd=rootdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped whole (with its servers) if we stop early
            )
        self.started = time.monotonic()
        self._reports: dict[str, list[dict[str, Any]]] | None = None

    def finish(self) -> dict[str, list[dict[str, Any]]]:
        """Wait for the child session; its reports by node id."""
        if self._reports is None:
            try:
                self.proc.wait(timeout=max(0.0, self.started + self.timeout_s - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stop()
                raise
            try:
                self._reports = json.loads(self.results.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                self._reports = {}
        return self._reports

    def any_test_failed(self) -> bool:
        """Whether a test of the child session failed (which explains a failed exit by itself)."""
        return any(r["outcome"] == "failed" for reports in self.finish().values() for r in reports)

    def tail(self, lines: int = 60) -> str:
        try:
            text = self.output.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no output)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class ChildSessionFailure(Exception):
    """What the child session reported for a test it ran (its traceback, or why it has none)."""


class RealClockTest(pytest.Item):
    """Stands in, under the same node id, for a real-clock test that a child session runs."""

    def __init__(self, *, child: _Child, original: pytest.Item, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.child = child
        self.own_markers = list(original.own_markers)
        self.keywords.update(original.keywords)
        _, self._line, self._domain = original.location

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, self._line, self._domain

    def runtest(self) -> None:
        try:
            reports = self.child.finish().get(self.nodeid, [])
        except subprocess.TimeoutExpired:
            raise ChildSessionFailure(
                f"the child session did not finish within {self.child.timeout_s:.0f} s:\n{self.child.tail()}"
            ) from None
        if reports:  # a report carries the sections of the phases before it: the last one has them all
            for title, text in reports[-1]["sections"]:
                self.add_report_section("call", "child", f"[{title}]\n{text}")
        failed = [r for r in reports if r["outcome"] == "failed"]
        if failed:
            raise ChildSessionFailure(
                "\n\n".join(f"(in the child session, {r['when']})\n{r['longrepr']}" for r in failed)
            )
        skipped = [r for r in reports if r["outcome"] == "skipped"]
        if skipped:
            reason = skipped[0]["skip_reason"] or "skipped in the child session"
            raise pytest.skip.Exception(reason, _use_item_location=True)  # reported at the test, as inline
        if not any(r["when"] == "call" and r["outcome"] == "passed" for r in reports):
            raise ChildSessionFailure(
                f"the child session (exit {self.child.proc.returncode}) reported no result for this test:\n"
                + self.child.tail()
            )
        if self.child.proc.returncode != 0 and not self.child.any_test_failed():
            # e.g. the secrets guard failed the child session at its end
            raise ChildSessionFailure(
                f"the test passed but its child session failed (exit {self.child.proc.returncode}):\n"
                + self.child.tail()
            )

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ChildSessionFailure):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style=style))


class _Offloader:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.children: list[_Child] = []
        self.workdir: tempfile.TemporaryDirectory[str] | None = None

    @pytest.hookimpl(trylast=True)  # after -k/-m/--deselect have chosen the items
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        realclock = [item for item in items if item.get_closest_marker(MARKER) is not None]
        if (
            not realclock
            or len(realclock) == len(items)
            or self.config.getoption("realclock_inline")
            or self.config.getoption("collectonly")
        ):
            return
        self.workdir = tempfile.TemporaryDirectory(prefix="gs_hooks_realclock_")
        by_module: dict[str, list[pytest.Item]] = {}
        for item in realclock:
            by_module.setdefault(item.nodeid.split("::", 1)[0], []).append(item)
        standins: list[pytest.Item] = []
        for i, module_items in enumerate(by_module.values()):
            timeout = sum(_timeout_of(item) for item in module_items) + _WAIT_MARGIN_S
            child = _Child(
                self.config.rootpath,
                _passed_on(self.config),
                Path(self.workdir.name),
                f"child{i}",
                [item.nodeid for item in module_items],
                timeout,
            )
            self.children.append(child)
            for item in module_items:
                assert item.parent is not None
                standin = RealClockTest.from_parent(item.parent, name=item.name, child=child, original=item)
                assert standin.nodeid == item.nodeid, (standin.nodeid, item.nodeid)
                standins.append(standin)
        # the others first, then the stand-ins: by then the children have had the whole run to do their waiting
        items[:] = [item for item in items if item.get_closest_marker(MARKER) is None] + standins

    def pytest_unconfigure(self) -> None:
        for child in self.children:
            child.stop()
        if self.workdir is not None:
            self.workdir.cleanup()


def _timeout_of(item: pytest.Item) -> float:
    marker = item.get_closest_marker("timeout")
    if marker is not None and marker.args:
        return float(marker.args[0])
    return float(item.config.getini("timeout") or 120)


def _passed_on(config: pytest.Config) -> list[str]:
    """The parent's ``-p``, ``-o`` and ``-W`` options, for the child (the ini file it reads itself)."""
    out: list[str] = []
    for plugin in config.option.plugins or []:
        out += ["-p", plugin]
    for override in config.option.override_ini or []:
        out += ["-o", override]
    for warning in config.option.pythonwarnings or []:
        out += ["-W", warning]
    return out
