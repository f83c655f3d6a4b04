"""The suite-wide secrets guard (imported by tests/conftest.py).

Tests run on asyncio through anyio's pytest plugin; backend-neutral modules also run on trio by parametrizing
``anyio_backend``.

Secrets guard: every value wrapped in :class:`gs_hooks.Secret` during the run, and every access token the
sandbox issues, is remembered; every log record (message and traceback) and the text of every
``GsHooksError`` created during the whole run is captured. At the end of the session, any captured text that
contains a remembered secret fails the run, naming the record (never the secret).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

import gs_hooks
from gs_hooks import _config, _exceptions

_SECRETS: set[str] = set()
_TEXTS: list[tuple[str, str]] = []  # (where, text), each pair once
_SEEN: set[tuple[str, str]] = set()  # the pairs in _TEXTS
_MIN_SECRET_LEN = 6  # shorter values ("a", "k") would match by accident


def remember_secret(value: str) -> None:
    """Register a value that must never appear in logs or error messages."""
    if len(value) >= _MIN_SECRET_LEN:
        _SECRETS.add(value)


_orig_secret_init = _config.Secret.__init__


def _recording_secret_init(self: _config.Secret, value: str) -> None:
    remember_secret(value)
    _orig_secret_init(self, value)


_config.Secret.__init__ = _recording_secret_init  # type: ignore[method-assign]


def _capture(where: str, text: str) -> None:
    """Keep ``(where, text)`` for the end-of-run check, once: a test that fails the same way thousands of times
    (a long outage) keeps one copy, so the guard does not grow the process it watches (the memory censuses of
    tests/faults would count it)."""
    pair = (where, text)
    if pair not in _SEEN:
        _SEEN.add(pair)
        _TEXTS.append(pair)


def _recording_error_init(self: BaseException, *args: Any) -> None:
    Exception.__init__(self, *args)
    _capture(f"{type(self).__name__} message", " ".join(str(a) for a in args))


_exceptions.GsHooksError.__init__ = _recording_error_init  # type: ignore[method-assign]


def _wrap_token_issuers() -> None:
    try:
        from gs_hooks.sandbox import _gamebase
    except ImportError:
        return
    sim = getattr(_gamebase, "GamebaseSim", None)
    issue = getattr(sim, "issue_token", None)
    if sim is None or issue is None:
        return

    def issue_token(self: Any, *args: Any, **kwargs: Any) -> Any:
        token = issue(self, *args, **kwargs)
        if isinstance(token, str):
            remember_secret(token)
        return token

    sim.issue_token = issue_token


_wrap_token_issuers()


class _CaptureAll(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:
            text = str(record.msg)
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        _capture(f"log record {record.name}:{record.levelname} ({record.pathname}:{record.lineno})", text)


_handler = _CaptureAll(level=logging.DEBUG)


def pytest_sessionstart(session: pytest.Session) -> None:
    root = logging.getLogger()
    root.addHandler(_handler)
    # capture gs_hooks' debug records too
    logging.getLogger("gs_hooks").setLevel(logging.DEBUG)


def leaked_secrets() -> list[str]:
    """Where a remembered secret appeared (descriptions only)."""
    return find_leaks(_SECRETS, _TEXTS)


def find_leaks(secrets: Iterable[str], texts: Iterable[tuple[str, str]]) -> list[str]:
    """The ``where`` of every ``(where, text)`` whose text holds one of ``secrets`` (each ``_MIN_SECRET_LEN`` or
    more characters long), in order.

    A text holds a secret only at a position where the secret's first ``_MIN_SECRET_LEN`` characters stand: one
    dict lookup per position of a text, rather than one substring search per secret and text (thousands of each in
    a full run). Repeated texts are looked at once.
    """
    by_prefix: dict[str, list[str]] = {}
    for secret in secrets:
        assert len(secret) >= _MIN_SECRET_LEN, "a shorter secret would be missed"
        by_prefix.setdefault(secret[:_MIN_SECRET_LEN], []).append(secret)
    verdicts: dict[str, bool] = {}
    found = []
    for where, text in texts:
        leaked = verdicts.get(text)
        if leaked is None:
            leaked = verdicts[text] = _holds_a_secret(text, by_prefix)
        if leaked:
            found.append(where)
    return found


def _holds_a_secret(text: str, by_prefix: dict[str, list[str]]) -> bool:
    n = _MIN_SECRET_LEN
    for i in range(len(text) - n + 1):
        candidates = by_prefix.get(text[i : i + n])
        if candidates is not None and any(text.startswith(secret, i) for secret in candidates):
            return True
    return False


_WORKER_LEAKS: list[str] = []  # (xdist controller) what the workers found


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """(xdist controller) A worker is done: keep what its guard found, to fail the run here."""
    _WORKER_LEAKS.extend(getattr(node, "workeroutput", {}).get("secrets_guard_leaks", []))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    logging.getLogger().removeHandler(_handler)
    leaks = leaked_secrets()
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller fails the run (a worker's exit status is lost)
        workeroutput["secrets_guard_leaks"] = leaks
        return
    leaks += _WORKER_LEAKS
    if leaks:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = [f"secrets guard: a secret appeared in {len(leaks)} log record(s)/error message(s):", *leaks[:20]]
        if reporter is not None:
            reporter.write_line("\n".join(lines), red=True)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def secrets_guard() -> Iterator[None]:
    """Fail the test itself (not only the session) if a secret leaked while it ran."""
    start = len(_TEXTS)
    yield
    leaks = find_leaks(_SECRETS, _TEXTS[start:])
    assert leaks == [], f"secret leaked in: {leaks}"


__all__ = ["anyio_backend", "gs_hooks", "leaked_secrets", "remember_secret", "secrets_guard"]
