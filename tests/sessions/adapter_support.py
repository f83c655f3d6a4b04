"""Echo servers for every adapter and a client for each, for the sessions tests: the same ``Client`` interface
whatever the server (asyncio streams, anyio on asyncio or trio, websockets, Starlette under uvicorn, Starlette under
Hypercorn's trio worker)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import anyio.abc
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

import gs_hooks


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


class WsprotoClient:
    """A minimal WebSocket client over an anyio stream (wsproto): the trio side has no ``websockets`` client."""

    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        import wsproto

        self.stream = stream
        self.conn = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        self.pending: list[Any] = []

    async def open(self, path: str) -> None:
        from wsproto.events import AcceptConnection, Request

        await self.stream.send(self.conn.send(Request(host="127.0.0.1", target=path)))
        assert isinstance(await self.event(), AcceptConnection)

    async def event(self) -> Any:
        """The next event; None once the connection is closed."""
        from wsproto.events import CloseConnection

        while not self.pending:
            try:
                data: bytes | None = await self.stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                data = None
            self.conn.receive_data(data)
            self.pending.extend(self.conn.events())
            if data is None and not self.pending:
                return None
        event = self.pending.pop(0)
        if isinstance(event, CloseConnection) and self.conn.state.name == "REMOTE_CLOSING":
            await self.stream.send(self.conn.send(event.response()))
        return event

    def client(self, port: int) -> Client:
        from wsproto.events import CloseConnection, Message, TextMessage

        async def roundtrip(text: str) -> str:
            await self.stream.send(self.conn.send(TextMessage(data=text)))
            with anyio.fail_after(5):
                event = await self.event()
            assert isinstance(event, Message), event
            return str(event.data)

        async def closed() -> bool:
            while True:
                event = await self.event()
                if event is None or isinstance(event, CloseConnection):
                    return True

        async def aclose() -> None:
            if self.conn.state.name == "OPEN":
                with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                    await self.stream.send(self.conn.send(CloseConnection(code=1000)))
            await self.stream.aclose()

        return Client(port, roundtrip, closed, aclose)


@contextlib.asynccontextmanager
async def hypercorn_trio_server(hooks: gs_hooks.Hooks) -> AsyncIterator[Callable[[], Awaitable[Client]]]:
    """Starlette under Hypercorn's trio worker: the ASGI middleware on trio."""
    import trio
    from hypercorn.config import Config as HypercornConfig
    from hypercorn.trio import serve
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await websocket.send_text(await websocket.receive_text())

    config = HypercornConfig()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = config.errorlog = None
    app = hooks.asgi_middleware(Starlette(routes=[WebSocketRoute("/ws", echo)]))
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(functools.partial(serve, app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
        port = int(binds[0].rsplit(":", 1)[1])

        async def connect() -> Client:
            stream = await anyio.connect_tcp("127.0.0.1", port)
            ws = WsprotoClient(stream)
            await ws.open("/ws")
            return ws.client(stream.extra(anyio.abc.SocketAttribute.local_port))

        yield connect
        stop.set()


ADAPTERS: list[Any] = [
    pytest.param("asyncio", streams_server, id="streams"),
    pytest.param("asyncio", anyio_server, id="anyio-asyncio"),
    pytest.param("trio", anyio_server, id="anyio-trio"),
    pytest.param("asyncio", websockets_server, id="websockets"),
    pytest.param("asyncio", asgi_server, id="asgi-uvicorn"),
    pytest.param("trio", hypercorn_trio_server, id="asgi-hypercorn-trio"),
]
