"""The sandbox serves many concurrent connections from one address (a load test's, a login storm's): the
listener's per-address limit, meant for exposed listeners, is raised to the sandbox's cap."""

from __future__ import annotations

import anyio
import anyio.abc
import pytest

from gs_hooks import FakeClock
from gs_hooks.sandbox import Sandbox

pytestmark = pytest.mark.anyio


async def test_a_hundred_concurrent_connections_from_one_address_are_served() -> None:
    async with Sandbox.serve(clock=FakeClock()) as sb:
        streams: list[anyio.abc.SocketStream] = []
        try:
            for _ in range(100):  # all open at once, more than a listener's default per-address limit (64)
                streams.append(await anyio.connect_tcp("127.0.0.1", sb.port))
            for stream in streams:
                await stream.send(b"GET /_sandbox HTTP/1.1\r\nHost: sandbox\r\n\r\n")
            for stream in streams:
                with anyio.fail_after(10):
                    head = await stream.receive()
                assert head.startswith(b"HTTP/1.1 200 "), head[:80]
        finally:
            for stream in streams:
                await stream.aclose()
