"""Shared fixtures. Tests run on asyncio through anyio's pytest plugin; backend-neutral modules also run on
trio by parametrizing ``anyio_backend``."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
