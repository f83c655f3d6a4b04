"""The client's pool gate: our requests enter httpx's pool one at a time until each holds a connection.

httpcore's pool hands an idle connection to every request that arrives before the first has marked it active; the
others fail with ConnectionNotAvailable and go round again. A transport wrapper in front of the real httpx
transport counts how many of our requests are inside the pool without a connection yet (``pending``): with the
gate, never more than one.
"""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest
from gamebase_client_support import APP, KEY, Env

from gs_hooks.gamebase import GamebaseClient

pytestmark = pytest.mark.anyio

CLAIMS = ("send_request_headers.started", "connect_tcp.started", "connect_unix_socket.started")


class ClaimWatch(httpx.AsyncBaseTransport):
    """The real transport, watched: requests between pool entry and holding a connection (``report``: pass the
    claim traces on to the request's own trace callback; otherwise hide them, as a transport without traces)."""

    def __init__(self, *, report: bool = True) -> None:
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        self.inner = httpx.AsyncHTTPTransport(limits=limits)
        self.report = report
        self.pending = 0
        self.max_pending = 0
        self.sent = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        theirs = request.extensions.pop("trace", None)
        self.sent += 1
        self.pending += 1
        self.max_pending = max(self.max_pending, self.pending)
        claimed = False

        async def trace(name: str, info: dict[str, Any]) -> None:
            nonlocal claimed
            if not claimed and name.endswith(CLAIMS):
                claimed = True
                self.pending -= 1
            if theirs is not None and self.report:
                await theirs(name, info)

        request.extensions["trace"] = trace
        try:
            return await self.inner.handle_async_request(request)
        finally:
            if not claimed:
                self.pending -= 1

    async def aclose(self) -> None:
        await self.inner.aclose()


def _tokens(env: Env, n: int) -> list[tuple[str, str]]:
    pairs = []
    for i in range(n):
        env.sim.add_member(f"u{i}")
        pairs.append((f"u{i}", env.sim.issue_token(f"u{i}")))
    return pairs


async def _all_at_once(client: GamebaseClient, pairs: list[tuple[str, str]]) -> list[str]:
    users: list[str] = []

    async def one(user: str, token: str) -> None:
        users.append((await client.verify_token(user, token)).member.user_id)

    async with anyio.create_task_group() as tg:
        for user, token in pairs:
            tg.start_soon(one, user, token)
    return users


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_concurrent_requests_enter_the_pool_one_at_a_time(gb: Env, anyio_backend: str) -> None:
    watch = ClaimWatch()
    async with httpx.AsyncClient(transport=watch) as http:
        client = GamebaseClient(http, base_url=gb.url, app_id=APP, secret_key=KEY, clock=gb.clock)
        pairs = _tokens(gb, 25)
        # the first request teaches the client that the transport reports claims; then 8 connections open
        assert (await client.verify_token(*pairs[0])).member.user_id == "u0"
        assert sorted(await _all_at_once(client, pairs[1:9])) == sorted(u for u, _ in pairs[1:9])
        watch.max_pending = 0
        # 16 requests at once over 8 warm idle connections (and new ones): each waits for the previous to hold one
        users = await _all_at_once(client, pairs[9:25])
        assert sorted(users) == sorted(u for u, _ in pairs[9:25])
        assert watch.max_pending == 1
        assert watch.sent == 25 == gb.sim.counts["gamebase.token"]


async def test_without_the_gate_requests_pile_up_before_holding_a_connection(gb: Env) -> None:
    """The control of the test above: the same burst with the claim traces hidden from the client (so it never
    gates) has several requests waiting for a connection at once — the watch can tell the difference."""
    watch = ClaimWatch(report=False)
    async with httpx.AsyncClient(transport=watch) as http:
        client = GamebaseClient(http, base_url=gb.url, app_id=APP, secret_key=KEY, clock=gb.clock)
        pairs = _tokens(gb, 25)
        await client.verify_token(*pairs[0])
        await _all_at_once(client, pairs[1:9])
        watch.max_pending = 0
        users = await _all_at_once(client, pairs[9:25])
        assert sorted(users) == sorted(u for u, _ in pairs[9:25])
        assert watch.max_pending > 1


async def test_a_transport_without_claim_traces_keeps_requests_concurrent(gb: Env) -> None:
    """No traces, no gate: the requests are not serialised (4 answers held at once inside the sim)."""
    watch = ClaimWatch(report=False)
    async with httpx.AsyncClient(transport=watch) as http:
        client = GamebaseClient(http, base_url=gb.url, app_id=APP, secret_key=KEY, clock=gb.clock)
        pairs = _tokens(gb, 5)
        await client.verify_token(*pairs[0])
        gb.faults.gate = anyio.Event()
        async with anyio.create_task_group() as tg:
            for user, token in pairs[1:]:
                tg.start_soon(client.verify_token, user, token)
            with anyio.fail_after(10):
                while gb.faults.inside < 4:
                    await anyio.sleep(0.01)
            gb.faults.gate.set()
        assert gb.faults.max_inside == 4


async def test_a_request_cancelled_in_the_pool_opens_the_gate(gb: Env) -> None:
    """A request cancelled while it waits for the gate, or while inside the pool, never leaves it shut."""
    watch = ClaimWatch()
    async with httpx.AsyncClient(transport=watch) as http:
        client = GamebaseClient(http, base_url=gb.url, app_id=APP, secret_key=KEY, clock=gb.clock, retries=0)
        pairs = _tokens(gb, 12)
        await client.verify_token(*pairs[0])
        gb.faults.gate = anyio.Event()  # answers held: the requests sit on their connections
        async with anyio.create_task_group() as tg:
            for user, token in pairs[1:6]:
                tg.start_soon(client.verify_token, user, token)
            with anyio.fail_after(10):
                while gb.faults.inside < 5:
                    await anyio.sleep(0.01)
            tg.cancel_scope.cancel()
        gb.faults.gate = None
        with anyio.CancelScope() as scope:  # cancelled at once: in the gate or the pool, never answered
            scope.cancel()
            await client.verify_token(*pairs[6])
        with anyio.fail_after(10):
            users = await _all_at_once(client, pairs[7:12])
        assert sorted(users) == sorted(u for u, _ in pairs[7:12])
        assert client._pool_gate.borrowed == 0


async def test_a_request_waits_for_the_gate_at_most_one_timeout(gb: Env) -> None:
    """The request ahead may sit in a full pool: after ``timeout_s`` at the gate a request goes in regardless."""
    watch = ClaimWatch()
    async with httpx.AsyncClient(transport=watch) as http:
        # retries=0: a slow answer on a loaded machine must not turn into a retry sleeping on the fake clock
        client = GamebaseClient(
            http, base_url=gb.url, app_id=APP, secret_key=KEY, clock=gb.clock, timeout_s=0.2, retries=0
        )
        pairs = _tokens(gb, 2)
        await client.verify_token(*pairs[0])
        gate = client._pool_gate
        assert gate.acquire_nowait()  # a request ahead that never gets a connection
        with anyio.fail_after(5):
            assert (await client.verify_token(*pairs[1])).member.user_id == "u1"
        assert gate.borrowed == 1  # not released by the request that did not hold it
        gate.release()
        assert gate.borrowed == 0


class Tracing(httpx.AsyncBaseTransport):
    """A game's observability wrapper: records every httpcore trace event, chaining the request's own trace."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.events: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        theirs = request.extensions.get("trace")

        async def trace(name: str, info: dict[str, Any]) -> None:
            self.events.append(name)
            if theirs is not None:
                await theirs(name, info)

        request.extensions["trace"] = trace
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_transports_own_trace_keeps_every_event(gb: Env) -> None:
    tracing = Tracing()
    async with httpx.AsyncClient(transport=tracing) as http:
        await http.get(gb.url + "/_sandbox/gamebase/state")
        plain = [e for e in tracing.events if e.endswith(".started")]
        tracing.events.clear()
        client = GamebaseClient(http, base_url=gb.url, app_id=APP, secret_key=KEY, clock=gb.clock, retries=0)
        pairs = _tokens(gb, 2)
        for pair in pairs:  # the second one with the gate on (the first taught the client that traces come)
            assert (await client.verify_token(*pair)).member.user_id == pair[0]
            through_gate = [e for e in tracing.events if e.endswith(".started")]
            tracing.events.clear()
            assert through_gate == [e for e in plain if "connect" not in e]  # same events (a kept-alive connection)
