"""One closer contract for every adapter, and the kick safety net, over real loopback sockets (issue 13.2).

For every adapter (asyncio streams, anyio on asyncio and trio, websockets, ASGI under uvicorn), a kick whose
``on_kick`` is the README Quickstart's recipe, a sync ``request.session.close()``, or an ``await
request.session.aclose()`` closes the connection as seen from the client, with nothing logged as an error; and an
``on_kick`` that forgets to close leaves the socket open only until the grace ends on the injected clock, when
the safety net closes it and says so once. ``/healthz``'s session count matches the open sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import anyio.abc
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from readme_support import readme_kick_player

import gs_hooks
from gs_hooks import FakeClock, KickRequest


class Client:
    """One client connection, whatever the adapter: echo a line, or wait until the server closed it."""

    def __init__(
        self,
        port: int,
        roundtrip: Callable[[str], Awaitable[str]],
        closed: Callable[[], Awaitable[bool]],
        aclose: Callable[[], Awaitable[None]],
    ) -> None:
        self.port = port  # the client's own port: the server's session has it as remote[1]
        self.roundtrip = roundtrip
        self._closed = closed
        self.aclose = aclose

    async def wait_closed(self) -> None:
        """Returns once the server closed the connection (fails after 5 s)."""
        with anyio.fail_after(5):
            assert await self._closed()


Serve = Callable[[gs_hooks.Hooks], contextlib.AbstractAsyncContextManager[Callable[[], Awaitable[Client]]]]


# -- one echo server and client per adapter -------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def streams_server(hooks: gs_hooks.Hooks) -> AsyncIterator[Callable[[], Awaitable[Client]]]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()

    server = await asyncio.start_server(hooks.track_streams(echo), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    async def connect() -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)

        async def roundtrip(text: str) -> str:
            writer.write(text.encode() + b"\n")
            with anyio.fail_after(5):
                return (await reader.readline()).decode().rstrip("\n")

        async def closed() -> bool:
            return await reader.read() == b""

        async def aclose() -> None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

        return Client(writer.get_extra_info("sockname")[1], roundtrip, closed, aclose)

    async with server:
        yield connect


@contextlib.asynccontextmanager
async def anyio_server(hooks: gs_hooks.Hooks) -> AsyncIterator[Callable[[], Awaitable[Client]]]:
    async def echo(stream: anyio.abc.SocketStream) -> None:
        with contextlib.suppress(anyio.EndOfStream):
            while True:
                await stream.send(await stream.receive())

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def connect() -> Client:
        stream = await anyio.connect_tcp("127.0.0.1", port)
        reader = BufferedByteReceiveStream(stream)

        async def roundtrip(text: str) -> str:
            await stream.send(text.encode() + b"\n")
            with anyio.fail_after(5):
                return (await reader.receive_until(b"\n", 1024)).decode()

        async def closed() -> bool:
            try:
                await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return True
            return False

        return Client(stream.extra(anyio.abc.SocketAttribute.local_port), roundtrip, closed, stream.aclose)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, hooks.track_anyio(echo))
        yield connect
        tg.cancel_scope.cancel()


def websocket_client(ws: Any) -> Client:
    from websockets.exceptions import ConnectionClosed

    async def roundtrip(text: str) -> str:
        await ws.send(text)
        with anyio.fail_after(5):
            return str(await ws.recv())

    async def closed() -> bool:
        try:
            await ws.recv()
        except ConnectionClosed:
            return True
        return False

    return Client(ws.local_address[1], roundtrip, closed, ws.close)


@contextlib.asynccontextmanager
async def websockets_server(hooks: gs_hooks.Hooks) -> AsyncIterator[Callable[[], Awaitable[Client]]]:
    from websockets.asyncio.client import connect as ws_connect
    from websockets.asyncio.server import serve

    async def echo(websocket: Any) -> None:
        async for message in websocket:
            await websocket.send(message)

    async with serve(hooks.track_websockets(echo), "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]

        async def connect() -> Client:
            return websocket_client(await ws_connect(f"ws://127.0.0.1:{port}/"))

        yield connect


@contextlib.asynccontextmanager
async def asgi_server(hooks: gs_hooks.Hooks) -> AsyncIterator[Callable[[], Awaitable[Client]]]:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect
    from websockets.asyncio.client import connect as ws_connect

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await websocket.send_text(await websocket.receive_text())

    app = hooks.asgi_middleware(Starlette(routes=[WebSocketRoute("/ws", echo)]))
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", ws="websockets-sansio", log_level="error")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        with anyio.fail_after(10):
            while not server.started:
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]

        async def connect() -> Client:
            return websocket_client(await ws_connect(f"ws://127.0.0.1:{port}/ws"))

        yield connect
    finally:
        server.should_exit = True
        await task


ADAPTERS: list[Any] = [
    pytest.param("asyncio", streams_server, id="streams"),
    pytest.param("asyncio", anyio_server, id="anyio-asyncio"),
    pytest.param("trio", anyio_server, id="anyio-trio"),
    pytest.param("asyncio", websockets_server, id="websockets"),
    pytest.param("asyncio", asgi_server, id="asgi-uvicorn"),
]


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
