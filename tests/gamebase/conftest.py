"""The gamebase tests' Gamebase: ``gb`` serves the sandbox's Gamebase over loopback, with the members a module (or
a test) names in ``pytest.mark.members(...)``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from gamebase_client_support import Env, serve_gamebase


@pytest.fixture
async def gb(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    marker = request.node.get_closest_marker("members")
    async with serve_gamebase() as env:
        for user_id in marker.args if marker is not None else ():
            env.sim.add_member(user_id)
        yield env
