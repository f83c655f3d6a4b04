"""Shared fixtures; the suite-wide secrets guard lives in gs_secrets_guard.py (its hooks are re-exported here).

Tests run on asyncio through anyio's pytest plugin; backend-neutral modules also run on trio by parametrizing
``anyio_backend``.
"""

from __future__ import annotations

from gs_secrets_guard import anyio_backend, pytest_sessionfinish, pytest_sessionstart, secrets_guard

__all__ = ["anyio_backend", "pytest_sessionfinish", "pytest_sessionstart", "secrets_guard"]
