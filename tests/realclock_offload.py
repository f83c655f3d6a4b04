"""Real-clock process tests run in child pytest sessions started when collection ends, beside the rest of the run.

A test marked ``realclock`` drives real OS processes on the wall clock (the example server on a 60 s CCU grid, a
maintenance window that has to pass): it spends most of its minute waiting, not computing. When such tests are
selected together with other tests, each of their modules runs in a child ``python -m pytest`` started as soon as
collection ends; the parent runs everything else meanwhile, then reports each real-clock test under its own node
id from the child's report: passed, failed (with the child's traceback and captured output), skipped, or
xfailed (with its reason). Nothing is dropped or loosened: the child runs the same test bodies with the same
plugins, ini options, markers and timeouts (and the same session-end secrets guard: a child session that fails
after its tests passed fails them).

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
                "xfail": getattr(report, "wasxfail", None),  # an expected failure: the reason (also when empty)
                "duration": report.duration,
                "sections": [list(s) for s in report.sections],
            }
        )

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self) -> None:
        self.path.write_text(json.dumps(self.reports), encoding="utf-8")


def _skip_reason(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")  # raising the skip again adds it back
    return ""


# -- in the parent: start the children, stand in for their tests ----------------------------------------------
#
# A child's files in the shared directory: NAME.out (its output), NAME.json (its reports), NAME.rc (its exit code,
# written when it has exited), NAME.pgid (its process group, for stopping it early). Under pytest-xdist every worker
# collects the same items and makes the same stand-ins; the first worker to claim the directory starts the children,
# the stand-ins (on whichever worker runs them) wait for the files, and the controller, which made the directory and
# handed it to the workers, stops what still runs and removes it at the end. Without xdist the one process does all.

_SHARED_DIR = "realclock_dir"  # the key of the directory in xdist's workerinput
_RC_WRAPPER = "import subprocess, sys; rc = subprocess.call(sys.argv[2:]); open(sys.argv[1], 'w').write(str(rc))"


class _Child:
    """One child session running one module's real-clock tests, seen through its files."""

    def __init__(self, workdir: Path, name: str, nodeids: list[str], timeout_s: float) -> None:
        self.name = name
        self.nodeids = nodeids
        self.timeout_s = timeout_s
        self.output = workdir / f"{name}.out"
        self.results = workdir / f"{name}.json"
        self.rc_file = workdir / f"{name}.rc"
        self.pgid_file = workdir / f"{name}.pgid"
        self._reports: dict[str, list[dict[str, Any]]] | None = None
        self.returncode: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None  # in the process that started it

    def start(self, rootdir: Path, options: list[str]) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
        env[RESULTS_ENV] = str(self.results)
        pytest_argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *options, *self.nodeids]
        with self.output.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _RC_WRAPPER, str(self.rc_file), *pytest_argv],
                cwd=rootdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped whole (with its servers) if we stop early
            )
        self.pgid_file.write_text(str(self.proc.pid), encoding="utf-8")

    def reap(self, *, stop: bool) -> None:
        """(In the process that started it.) Stop it first when ``stop``, else let it finish; then wait for it."""
        if self.proc is None:
            return
        if not stop:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=max(0.0, self.pgid_file.stat().st_mtime + self.timeout_s - time.time()))
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def finish(self) -> dict[str, list[dict[str, Any]]]:
        """Wait for the child session to exit; its reports by node id.

        Raises:
            TimeoutError: it did not exit within its tests' timeouts (and a margin) from its start.
        """
        if self._reports is None:
            deadline = time.time() + _WAIT_MARGIN_S  # for the start itself (by another xdist worker)
            started = False
            while not self.rc_file.exists() or not self.rc_file.read_text(encoding="utf-8"):
                if not started and self.pgid_file.exists():
                    started = True
                    deadline = self.pgid_file.stat().st_mtime + self.timeout_s
                if time.time() > deadline:
                    what = "finish" if started else "start"
                    raise TimeoutError(f"the child session did not {what} in time ({self.timeout_s:.0f} s)")
                time.sleep(0.1)
            self.returncode = int(self.rc_file.read_text(encoding="utf-8"))
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


def _stop_children(workdir: Path) -> None:
    """Stop every child session still running (its whole process group)."""
    for pgid_file in workdir.glob("*.pgid"):
        if not pgid_file.with_suffix(".rc").exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.killpg(int(pgid_file.read_text(encoding="utf-8")), signal.SIGKILL)


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
        child = self.child
        try:
            reports = child.finish().get(self.nodeid, [])
        except TimeoutError as exc:
            raise ChildSessionFailure(f"{exc}:\n{child.tail()}") from None
        if reports:  # a report carries the sections of the phases before it: the last one has them all
            for title, text in reports[-1]["sections"]:
                self.add_report_section("call", "child", f"[{title}]\n{text}")
        failed = [r for r in reports if r["outcome"] == "failed"]
        if failed:
            raise ChildSessionFailure(
                "\n\n".join(f"(in the child session, {r['when']})\n{r['longrepr']}" for r in failed)
            )
        skipped = [r for r in reports if r["outcome"] == "skipped"]
        xfailed = [r["xfail"] for r in skipped if r.get("xfail") is not None]
        if xfailed:
            pytest.xfail(xfailed[0] or "an expected failure in the child session")  # reported XFAIL, as inline
        if skipped:
            reason = skipped[0]["skip_reason"] or "skipped in the child session"
            raise pytest.skip.Exception(reason, _use_item_location=True)  # reported at the test, as inline
        if not any(r["when"] == "call" and r["outcome"] == "passed" for r in reports):
            raise ChildSessionFailure(
                f"the child session (exit {child.returncode}) reported no result for this test:\n{child.tail()}"
            )
        if child.returncode != 0 and not child.any_test_failed():
            # e.g. the secrets guard failed the child session at its end
            raise ChildSessionFailure(
                f"the test passed but its child session failed (exit {child.returncode}):\n{child.tail()}"
            )

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ChildSessionFailure):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style=style))


class _Offloader:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.own_dir: tempfile.TemporaryDirectory[str] | None = None  # made here: stopped and removed here
        self.started: list[_Child] = []
        workerinput = getattr(config, "workerinput", None)
        self.shared_dir = Path(workerinput[_SHARED_DIR]) if workerinput and _SHARED_DIR in workerinput else None

    def _workdir(self) -> Path:
        if self.shared_dir is not None:
            return self.shared_dir
        if self.own_dir is None:
            self.own_dir = tempfile.TemporaryDirectory(prefix="gs_hooks_realclock_")
        return Path(self.own_dir.name)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """(xdist controller) Every worker gets the same directory for the children's files."""
        node.workerinput[_SHARED_DIR] = str(self._workdir())

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
        workdir = self._workdir()
        by_module: dict[str, list[pytest.Item]] = {}
        for item in realclock:
            by_module.setdefault(item.nodeid.split("::", 1)[0], []).append(item)
        children = [
            _Child(workdir, f"child{i}", [item.nodeid for item in module_items], _timeout_of(module_items))
            for i, module_items in enumerate(by_module.values())
        ]
        if _claim(workdir):  # the first (or only) process here starts them
            for child in children:
                child.start(self.config.rootpath, _passed_on(self.config))
            self.started = children
        standins: list[pytest.Item] = []
        for child, module_items in zip(children, by_module.values(), strict=True):
            for item in module_items:
                assert item.parent is not None
                standin = RealClockTest.from_parent(item.parent, name=item.name, child=child, original=item)
                assert standin.nodeid == item.nodeid, (standin.nodeid, item.nodeid)
                standins.append(standin)
        # the others first, then the stand-ins: by then the children have had the whole run to do their waiting
        items[:] = [item for item in items if item.get_closest_marker(MARKER) is None] + standins

    def pytest_unconfigure(self) -> None:
        # an xdist worker lets its children finish (other workers' stand-ins may still wait for them); a process
        # that owns the directory stops them (it is done, or was interrupted)
        for child in self.started:
            child.reap(stop=self.shared_dir is None)
        if self.own_dir is not None:
            _stop_children(Path(self.own_dir.name))
            self.own_dir.cleanup()


def _claim(workdir: Path) -> bool:
    try:
        os.close(os.open(workdir / "claimed", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def _timeout_of(items: list[pytest.Item]) -> float:
    """How long a child may take: the sum of its tests' timeouts, and a margin for its start."""
    total = _WAIT_MARGIN_S
    for item in items:
        marker = item.get_closest_marker("timeout")
        total += float(marker.args[0] if marker is not None and marker.args else item.config.getini("timeout") or 120)
    return total


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
