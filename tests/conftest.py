"""Shared fixtures; the suite-wide secrets guard lives in gs_secrets_guard.py, the child sessions of the
real-clock tests in realclock_offload.py (their hooks are re-exported here).

Tests run on asyncio through anyio's pytest plugin; backend-neutral modules also run on trio by parametrizing
``anyio_backend``.
"""

from __future__ import annotations

from gs_secrets_guard import (
    anyio_backend,
    pytest_sessionfinish,
    pytest_sessionstart,
    pytest_testnodedown,
    secrets_guard,
)
from realclock_offload import pytest_addoption, pytest_configure

__all__ = [
    "anyio_backend",
    "pytest_addoption",
    "pytest_configure",
    "pytest_sessionfinish",
    "pytest_sessionstart",
    "pytest_testnodedown",
    "secrets_guard",
]
