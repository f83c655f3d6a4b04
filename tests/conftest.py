"""Shared fixtures; the suite-wide secrets guard lives in gs_secrets_guard.py (its hooks are re-exported here).

Tests run on asyncio through anyio's pytest plugin; backend-neutral modules also run on trio by parametrizing
``anyio_backend``.

The event loop: ``GS_HOOKS_TEST_LOOP=uvloop`` runs every asyncio test on uvloop (its event loop policy is
installed for the whole session: anyio's plugin, ``anyio.run`` and ``asyncio.run`` all make uvloop loops) and
leaves out the trio cases, which the asyncio pass runs. ``scripts/test`` runs the suite once per loop.
"""

from __future__ import annotations

import asyncio
import os
import warnings

import pytest

from gs_secrets_guard import anyio_backend, pytest_sessionfinish, pytest_sessionstart, secrets_guard

__all__ = [
    "TEST_LOOP",
    "anyio_backend",
    "pytest_collection_modifyitems",
    "pytest_report_header",
    "pytest_sessionfinish",
    "pytest_sessionstart",
    "secrets_guard",
]

TEST_LOOP = os.environ.get("GS_HOOKS_TEST_LOOP", "asyncio")
if TEST_LOOP not in ("asyncio", "uvloop"):
    raise pytest.UsageError(f"GS_HOOKS_TEST_LOOP={TEST_LOOP!r}: use asyncio or uvloop")
if TEST_LOOP == "uvloop":
    import uvloop

    with warnings.catch_warnings():  # event loop policies are deprecated from Python 3.14 on
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def pytest_report_header(config: pytest.Config) -> str:
    return f"event loop: {TEST_LOOP} (GS_HOOKS_TEST_LOOP)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if TEST_LOOP != "uvloop":
        return
    kept: list[pytest.Item] = []
    trio: list[pytest.Item] = []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        (trio if "trio" in params.values() else kept).append(item)
    if trio:
        config.hook.pytest_deselected(items=trio)
        items[:] = kept
