"""The endpoint table is the one list of Gamebase endpoints: the sandbox serves exactly it, in an order where every
URL the client builds from it lands on its own endpoint."""

from __future__ import annotations

import re

import pytest

from gs_hooks.gamebase._endpoints import ENDPOINTS, VERSIONS, Endpoint
from gs_hooks.http import Router
from gs_hooks.sandbox._gamebase import GamebaseSim


def test_the_sandbox_serves_every_endpoint_of_the_table_at_every_version() -> None:
    sim = GamebaseSim()
    served = {(name, method, path) for name, method, path, _ in sim.routes()}
    expected = {(e.name, e.method, e.pattern(version)) for e in ENDPOINTS for version in (*VERSIONS, "{apiVersion}")}
    assert served == expected
    assert sim.route_names == [e.name for e in ENDPOINTS]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_a_client_url_resolves_to_its_own_endpoint_in_the_sandbox(endpoint: Endpoint, version: str) -> None:
    router = Router()
    names = {}
    for name, method, path, handler in GamebaseSim().routes():
        names[id(router.add(method, path, handler))] = name
    segments = {name: f"v-{name}" for name in re.findall(r"\{(\w+)\}", endpoint.path)}
    url = endpoint.url("", version, "app-1", **segments)
    route, params, _ = router.resolve(endpoint.method, url, url)
    assert route is not None
    assert names[id(route)] == endpoint.name
    assert params == {"appId": "app-1", **segments}
