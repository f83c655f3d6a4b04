"""One closer contract for every adapter, and the kick safety net, over real loopback sockets (issue 13.2).

For every adapter (asyncio streams, anyio on asyncio and trio, websockets, ASGI under uvicorn and under Hypercorn's
trio worker), a kick whose ``on_kick`` is the README Quickstart's recipe, a sync ``request.session.close()``, or an
``await request.session.aclose()`` closes the connection as seen from the client, with nothing logged as an error;
and an ``on_kick`` that forgets to close leaves the socket open only until the grace ends on the injected clock,
when the safety net closes it and says so once. ``/healthz``'s session count matches the open sockets.
"""

from __future__ import annotations

import logging

import pytest
from adapter_support import ADAPTERS, Serve

import gs_hooks
from gs_hooks import FakeClock, KickRequest
from readme_support import readme_kick_player


def sync_close(request: KickRequest) -> None:
    request.session.close()


async def async_aclose(request: KickRequest) -> None:
    await request.session.aclose()


def forgets_to_close(request: KickRequest) -> None:
    pass


def errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(("anyio_backend", "serve"), ADAPTERS)
@pytest.mark.parametrize("recipe", ["readme", "sync close()", "await aclose()"])
async def test_the_kick_recipes_close_the_connection_on_every_adapter(
    anyio_backend: str, serve: Serve, recipe: str, caplog: pytest.LogCaptureFixture
) -> None:
    on_kick = {"readme": readme_kick_player(), "sync close()": sync_close, "await aclose()": async_aclose}[recipe]
    clock = FakeClock()
    hooks = gs_hooks.setup(gs_hooks.Config(), on_kick=on_kick, clock=clock)
    with caplog.at_level(logging.INFO, logger="gs_hooks"):
        async with hooks, serve(hooks) as connect:
            kicked, other = await connect(), await connect()
            assert await kicked.roundtrip("hello") == "hello" and await other.roundtrip("hi") == "hi"
            assert hooks.health()["sessions"] == 2
            (target,) = (s for s in hooks.registry if s.remote and s.remote[1] == kicked.port)
            assert await hooks.kick(target, "ban", message="bye") == 1
            await kicked.wait_closed()  # the client sees the server close the kicked connection
            assert await other.roundtrip("still there?") == "still there?"
            assert hooks.health()["sessions"] == 1
            assert hooks.kick_watch.forced == 0  # the recipe closed it: the safety net had nothing to do
            for client in (kicked, other):
                await client.aclose()
    assert errors(caplog) == []  # nothing raised on the way (an on_kick that raised would be logged)
    kicks = [r for r in caplog.records if r.name == "gs_hooks.kicks"]
    assert len(kicks) == 1 and kicks[0].levelno == logging.INFO
    assert f"session {target.id}" in kicks[0].getMessage() and "reason 'ban'" in kicks[0].getMessage()


@pytest.mark.parametrize(("anyio_backend", "serve"), ADAPTERS)
async def test_a_kick_whose_on_kick_forgets_to_close_is_closed_after_the_grace(
    anyio_backend: str, serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    hooks = gs_hooks.setup(gs_hooks.Config(), on_kick=forgets_to_close, clock=clock)
    with caplog.at_level(logging.WARNING, logger="gs_hooks.kicks"):
        async with hooks, serve(hooks) as connect:
            first, second = await connect(), await connect()
            assert await first.roundtrip("a") == "a" and await second.roundtrip("b") == "b"
            sessions = list(hooks.registry)
            for session in sessions:
                assert await hooks.kick(session, "ban") == 1
            assert hooks.health()["sessions"] == 0
            # the game's callback left both sockets open: the players still chat, for now
            assert await first.roundtrip("still") == "still" and await second.roundtrip("here") == "here"
            await clock.advance(hooks.kick_watch.grace_s - 0.5)
            assert await first.roundtrip("not yet") == "not yet"
            await clock.advance(0.5)
            await first.wait_closed()
            await second.wait_closed()
            assert hooks.kick_watch.forced == 2
            for client in (first, second):
                await client.aclose()
    warnings = [r for r in caplog.records if r.name == "gs_hooks.kicks" and r.levelno == logging.WARNING]
    # logged once; the second is only counted (rate-limited), and the count is logged at shutdown
    assert len(warnings) == 2
    assert "on_kick left session" in warnings[0].getMessage() and "request.session.close()" in warnings[0].getMessage()
    assert "(1 more like this, not logged one by one)" in warnings[1].getMessage()
