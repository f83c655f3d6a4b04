"""Safe by default (issue 13.7): the operator routes (``/metrics``, ``/dashboard``, the GamePot inquiry) answer
loopback only until their allowlist opens them; the platform routes (Hive webhook, web-store) stay reachable; a
public bind that opens an operator route, or serves ``/webstore-profile`` with neither key nor allowlist, is a
warning at start naming the setting.

The "other machine" is this machine's own non-loopback address: a listener bound to ``0.0.0.0`` sees a
connection to that address come from it, exactly as it would see a peer on the network.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

import gs_hooks
from gs_hooks import Config, GamePotConfig, ListenerConfig, Secret, WebstoreProfile, WebstoreServer

pytestmark = pytest.mark.anyio

PROJECT = "proj-exposure"
API_KEY = "gamepot-exposure-key-1"
INQUIRY = f"/v1/api/project/{PROJECT}/user/statistics/ccu"
OPERATOR_ROUTES = ("/metrics", "/dashboard", INQUIRY)


def own_address() -> str | None:
    """This machine's address on its default route (no packet is sent), or None when it has only loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = str(s.getsockname()[0])
    return None if ipaddress.ip_address(address).is_loopback else address


OWN = own_address()
needs_own_address = pytest.mark.skipif(OWN is None, reason="this machine has no non-loopback IPv4 address")


async def profile(cs_code: str) -> WebstoreProfile | None:
    return WebstoreProfile(servers=(WebstoreServer(server_id="1", server_name="one"),))


def config(listen: str | None, **listener: Any) -> Config:
    return Config(
        state_path=":memory:",
        listener=ListenerConfig(listen=listen, dashboard=True, **listener),
        gamepot=GamePotConfig(project_id=PROJECT, api_key=Secret(API_KEY)),
    )


@asynccontextmanager
async def running(cfg: Config) -> AsyncIterator[gs_hooks.Hooks]:
    hooks = gs_hooks.setup(cfg, webstore_profile=profile)
    async with hooks:
        yield hooks


async def statuses(base_url: str) -> dict[str, int]:
    async with httpx.AsyncClient(base_url=base_url, headers={"x-api-key": API_KEY}) as client:
        out = {path: (await client.get(path)).status_code for path in OPERATOR_ROUTES}
        for path in ("/healthz", "/livez", "/readyz"):
            out[path] = (await client.get(path)).status_code
        out["/webstore-profile"] = (await client.post("/webstore-profile", json={"cs_code": "c_1"})).status_code
    return out


def configuration_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "gs_hooks" and r.levelno == logging.WARNING and r.getMessage().startswith("configuration:")
    ]


@needs_own_address
async def test_public_bind_keeps_operator_routes_to_loopback_and_platform_routes_open() -> None:
    async with running(config("0.0.0.0:0")) as hooks:
        assert hooks.listener is not None
        port = hooks.listener.port
        from_network = await statuses(f"http://{OWN}:{port}")
        from_loopback = await statuses(f"http://127.0.0.1:{port}")
    assert from_network == {
        "/metrics": 403,
        "/dashboard": 403,
        INQUIRY: 403,
        "/healthz": 200,
        "/livez": 200,
        "/readyz": 200,
        "/webstore-profile": 200,  # Hive calls it from the internet: reachable as before
    }
    assert from_loopback == {**from_network, "/metrics": 200, "/dashboard": 200, INQUIRY: 200}


@needs_own_address
async def test_an_explicit_allowlist_opens_them_and_a_public_one_is_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    opened = config("0.0.0.0:0", admin_allow=("0.0.0.0/0", "::/0"), dashboard_allow=("0.0.0.0/0",))
    with caplog.at_level(logging.INFO, logger="gs_hooks"):
        async with running(opened) as hooks:
            assert hooks.listener is not None
            from_network = await statuses(f"http://{OWN}:{hooks.listener.port}")
            hooks.health()
    assert from_network["/metrics"] == from_network["/dashboard"] == from_network[INQUIRY] == 200
    assert configuration_warnings(caplog) == [
        "configuration: GS_HOOKS_LISTEN_ADMIN_ALLOW: opens /metrics and the GamePot CCU inquiry to public addresses "
        "(0.0.0.0/0, ::/0) on the public bind 0.0.0.0:0; list only your monitoring networks",
        "configuration: GS_HOOKS_LISTEN_DASHBOARD_ALLOW: opens /dashboard (live counts, banned player ids) to public "
        "addresses (0.0.0.0/0) on the public bind 0.0.0.0:0, without GS_HOOKS_DASHBOARD_KEY",
        "configuration: GS_HOOKS_HIVE_WEBSTORE_KEY: unset, and GS_HOOKS_LISTEN_WEBSTORE_ALLOW is empty: "
        "/webstore-profile answers anyone on the public bind 0.0.0.0:0 with player profiles; set a key (and the "
        "same one in the Hive console) or an allowlist",
    ]


@needs_own_address
async def test_a_private_network_allowlist_is_deliberate_and_quiet(caplog: pytest.LogCaptureFixture) -> None:
    assert OWN is not None
    network = str(ipaddress.ip_network(f"{OWN}/24", strict=False))
    cfg = config("0.0.0.0:0", admin_allow=(network,), webstore_allow=(network,))
    with caplog.at_level(logging.INFO, logger="gs_hooks"):
        async with running(cfg) as hooks:
            assert hooks.listener is not None
            from_network = await statuses(f"http://{OWN}:{hooks.listener.port}")
    assert from_network["/metrics"] == from_network[INQUIRY] == 200
    assert from_network["/dashboard"] == 403  # its own allowlist is still empty
    if ipaddress.ip_network(network).is_private:
        assert configuration_warnings(caplog) == []


async def test_loopback_bind_is_quiet(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="gs_hooks"):
        async with running(config("127.0.0.1:0")) as hooks:
            assert hooks.listener is not None
            assert (await statuses(hooks.listener.url))["/metrics"] == 200
    assert configuration_warnings(caplog) == []


async def test_the_asgi_app_applies_the_same_default() -> None:
    hooks = gs_hooks.setup(config(None), webstore_profile=profile)
    app = hooks.asgi_app()
    async with hooks:
        remote = httpx.ASGITransport(app=app, client=("198.51.100.7", 4711))
        local = httpx.ASGITransport(app=app, client=("127.0.0.1", 4711))
        from_network = await _asgi_statuses(remote)
        from_loopback = await _asgi_statuses(local)
    assert from_network == {"/metrics": 403, "/dashboard": 403, INQUIRY: 403, "/webstore-profile": 200}
    assert from_loopback == {"/metrics": 200, "/dashboard": 200, INQUIRY: 200, "/webstore-profile": 200}


async def _asgi_statuses(transport: httpx.ASGITransport) -> dict[str, int]:
    async with httpx.AsyncClient(transport=transport, base_url="http://game", headers={"x-api-key": API_KEY}) as c:
        out = {path: (await c.get(path)).status_code for path in OPERATOR_ROUTES}
        out["/webstore-profile"] = (await c.post("/webstore-profile", json={"cs_code": "c_1"})).status_code
    return out
