"""Every connection-tracking adapter over real loopback sockets.

For each adapter: sessions appear on connect with the peer address and ``current_session()`` set; and they
always go away (normal end, handler raising, handler cancelled mid-read, peer vanishing with a TCP reset),
leaving the registry empty with exact counts; and the default kick closes the real connection.

Tests wait for registry changes through an observer (no sleeping, no polling).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import anyio.abc
import pytest

import gs_hooks
from gs_hooks import Session, SessionEvent, SessionRegistry, current_session
from gs_hooks.sessions import TrackWebSocketsMiddleware, track_anyio, track_asyncio_streams, track_websockets

MODES = ("raise", "cancel", "reset", "eof")


class Watch:
    """Wakes a waiting test on every registry event."""

    def __init__(self, registry: SessionRegistry) -> None:
        self.registry = registry
        self.events: list[SessionEvent] = []
        self._changed = anyio.Event()
        registry.add_observer(self._on_event)

    def _on_event(self, event: SessionEvent) -> None:
        self.events.append(event)
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    async def until(self, predicate: Callable[[], bool], what: str = "") -> None:
        with anyio.fail_after(10):
            while not predicate():
                await self._changed.wait()

    async def count(self, n: int) -> None:
        await self.until(lambda: len(self.registry) == n)


def assert_empty(reg: SessionRegistry) -> None:
    assert len(reg) == 0
    assert reg.server_ids() == () and reg.player_ids() == ()
    for sid in ("s1", "s2"):
        assert reg.count_connections(sid) == 0 and reg.count_players(sid) == 0
    assert reg._players == {} and reg._players_on == {}


def reset_socket(sock: socket.socket) -> None:
    """Make the next close send a TCP RST (the peer vanishes abruptly)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _login_and_pick(reg: SessionRegistry, mode_line: bytes, players: list[str]) -> str:
    """Bind a player from the first line ``<mode> <player>`` and return the mode."""
    mode, player = mode_line.decode().split()
    session = current_session()
    assert session is not None
    reg.bind_player_nowait(session, player)
    players.append(player)
    return mode


# -- asyncio streams ---------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def asyncio_server(handler: Callable[[Any, Any], Any]) -> AsyncIterator[int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_asyncio_streams_track_each_connection(anyio_backend: str) -> None:
    reg = SessionRegistry(default_server_id="s1")
    watch = Watch(reg)
    seen: list[Session | None] = []

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(current_session())
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    async with asyncio_server(track_asyncio_streams(reg, echo, channel="lobby")) as port:
        clients = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        await watch.count(3)
        assert reg.count_connections("s1") == 3
        ports = {w.get_extra_info("sockname")[1] for _, w in clients}
        assert {s.remote[1] for s in reg if s.remote} == ports
        assert {s.channel for s in reg} == {"lobby"}
        for reader, writer in clients:
            writer.write(b"hi\n")
            assert await reader.readline() == b"hi\n"
        assert set(seen) == set(reg)
        for _, writer in clients:
            writer.close()
            await writer.wait_closed()
        await watch.count(0)
    assert_empty(reg)
    assert current_session() is None


async def test_asyncio_streams_always_unregister(anyio_backend: str, caplog: pytest.LogCaptureFixture) -> None:
    reg = SessionRegistry(default_server_id="s1", duplicate_login="allow")
    watch = Watch(reg)
    waiting: dict[str, list[asyncio.Task[Any]]] = {m: [] for m in MODES}
    players: list[str] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        mode = _login_and_pick(reg, await reader.readline(), players)
        if mode == "raise":
            raise RuntimeError("game bug")
        task = asyncio.current_task()
        assert task is not None
        waiting[mode].append(task)
        await reader.read()  # blocks until cancelled, reset or EOF
        writer.close()

    loop_errors: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: loop_errors.append(context))
    async with asyncio_server(track_asyncio_streams(reg, handler)) as port:
        clients: dict[str, list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = {m: [] for m in MODES}
        for i in range(12):
            mode = MODES[i % 4]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"{mode} p{i % 5}\n".encode())
            clients[mode].append((reader, writer))
        await watch.until(lambda: len(players) == 12 and sum(map(len, waiting.values())) == 9)
        assert len(reg) == 9 and reg.count_players("s1") == 9  # the three raisers are gone already
        for _, writer in clients["reset"]:
            reset_socket(writer.get_extra_info("socket"))
            writer.transport.abort()
        for _, writer in clients["eof"]:
            writer.close()
        await watch.count(3)
        assert reg.count_players("s1") == 3
        for task in waiting["cancel"]:
            task.cancel()
        await watch.count(0)
        # the adapter closed the connections of the raising and cancelled handlers
        for mode in ("raise", "cancel"):
            for reader, _ in clients[mode]:
                with anyio.fail_after(5):
                    assert await reader.read() == b""
        for group in clients.values():
            for _, writer in group:
                writer.close()
    loop.set_exception_handler(None)
    assert_empty(reg)
    assert [e.kind for e in watch.events].count("close") == 12
    # the adapter logged the handlers' errors (game bug, peer reset) itself instead of asyncio's loop report:
    # rate-limited, the first of each kind at once (the three repeats of each are counted for the next summary)
    failures = [r for r in caplog.records if r.name == "gs_hooks.sessions" and "failed" in r.getMessage()]
    assert sorted(type(r.exc_info[1]).__name__ for r in failures if r.exc_info) == [
        "ConnectionResetError",
        "RuntimeError",
    ]
    # Python 3.11's asyncio reports a cancelled client_connected_cb task as a loop error (fixed in 3.12)
    assert all(isinstance(c.get("exception"), asyncio.CancelledError) for c in loop_errors)
    if sys.version_info >= (3, 12):
        assert loop_errors == []


async def test_asyncio_streams_default_kick_closes_the_connection(anyio_backend: str) -> None:
    hooks = gs_hooks.setup(gs_hooks.Config())
    watch = Watch(hooks.registry)
    ended = anyio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert await reader.read() == b""  # EOF: the kick closed our side
        ended.set()

    async with hooks, asyncio_server(hooks.track_streams(handler)) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await watch.count(1)
        (session,) = hooks.registry
        assert await hooks.kick(session, "manual") == 1
        assert len(hooks.registry) == 0
        with anyio.fail_after(5):
            assert await reader.read() == b""  # the client sees the server close the connection
            await ended.wait()
        assert await hooks.kick(session) == 0
        writer.close()
        await writer.wait_closed()
    assert_empty(hooks.registry)


# -- anyio ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_anyio_tracks_and_always_unregisters(anyio_backend: str) -> None:
    reg = SessionRegistry(default_server_id="s1", duplicate_login="allow")
    watch = Watch(reg)
    players: list[str] = []
    blocked: list[str] = []
    seen: list[Session | None] = []

    async def handler(stream: anyio.abc.SocketStream) -> None:
        seen.append(current_session())
        mode = _login_and_pick(reg, await stream.receive(), players)
        blocked.append(mode)
        with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
            await stream.receive()  # blocks until cancelled, reset or EOF
        await stream.aclose()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    clients: dict[str, list[anyio.abc.SocketStream]] = {m: [] for m in ("cancel", "reset", "eof")}
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, track_anyio(reg, handler, server_id="s2", channel="c"))
        for i in range(9):
            mode = ("cancel", "reset", "eof")[i % 3]
            client = await anyio.connect_tcp("127.0.0.1", port)
            await client.send(f"{mode} p{i}".encode())
            clients[mode].append(client)
        await watch.until(lambda: len(blocked) == 9)
        assert reg.count_connections("s2") == 9 and reg.count_players("s2") == 9
        local_ports = {c.extra(anyio.abc.SocketAttribute.local_port) for group in clients.values() for c in group}
        assert {s.remote[1] for s in reg if s.remote} == local_ports
        assert set(seen) == set(reg) and {s.channel for s in reg} == {"c"}
        for client in clients["reset"]:
            reset_socket(client.extra(anyio.abc.SocketAttribute.raw_socket))
            await client.aclose()
        for client in clients["eof"]:
            await client.send_eof()
        await watch.count(3)
        assert reg.count_players("s2") == 3
        tg.cancel_scope.cancel()  # cancels serve and the three handlers blocked mid-read
    assert_empty(reg)
    for client in clients["cancel"]:
        with anyio.fail_after(5):
            with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                await client.receive()  # the adapter closed the cancelled handlers' connections
    for group in clients.values():
        for client in group:
            await client.aclose()


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_anyio_raising_handler_is_logged_and_serve_carries_on(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 13.5: one connection's exception must not reach ``serve`` (whose task group would end the listener
    and everything beside it): logged (rate-limited), the connection closed, the other connections served."""
    reg = SessionRegistry(default_server_id="s1")
    watch = Watch(reg)

    async def handler(stream: anyio.abc.SocketStream) -> None:
        with contextlib.suppress(anyio.EndOfStream):
            while True:
                data = await stream.receive()
                if data.startswith(b"boom"):
                    raise RuntimeError("game bug")
                await stream.send(data)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, track_anyio(reg, handler))
        healthy = await anyio.connect_tcp("127.0.0.1", port)
        buggy = [await anyio.connect_tcp("127.0.0.1", port) for _ in range(3)]
        await watch.count(4)
        for client in buggy:
            await client.send(b"boom")
        await watch.count(1)
        for client in buggy:  # each failing connection was closed by the adapter
            with anyio.fail_after(5), pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                await client.receive()
            await client.aclose()
        # serve and the other connection carry on; new connections are still accepted
        await healthy.send(b"ping")
        with anyio.fail_after(5):
            assert await healthy.receive() == b"ping"
        late = await anyio.connect_tcp("127.0.0.1", port)
        await late.send(b"pong")
        with anyio.fail_after(5):
            assert await late.receive() == b"pong"
        await healthy.aclose()
        await late.aclose()
        await watch.count(0)
        tg.cancel_scope.cancel()
    assert_empty(reg)
    failures = [r for r in caplog.records if r.name == "gs_hooks.sessions" and "failed" in r.getMessage()]
    assert len(failures) == 1  # rate-limited: the first logged, the two repeats counted for the summary
    assert failures[0].levelno == logging.ERROR
    assert failures[0].exc_info is not None and str(failures[0].exc_info[1]) == "game bug"


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_anyio_default_kick_cancels_the_handler_and_closes(anyio_backend: str) -> None:
    hooks = gs_hooks.setup(gs_hooks.Config())
    watch = Watch(hooks.registry)
    outcome: list[str] = []

    async def handler(stream: anyio.abc.SocketStream) -> None:
        try:
            await stream.receive()
            outcome.append("received")
        except anyio.get_cancelled_exc_class():
            outcome.append("cancelled")
            raise

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with hooks, listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, hooks.track_anyio(handler))
        client = await anyio.connect_tcp("127.0.0.1", port)
        await watch.count(1)
        (session,) = hooks.registry
        assert await hooks.kick(session) == 1
        with anyio.fail_after(5), pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
            await client.receive()  # the server closed the connection
        await client.aclose()
        assert outcome == ["cancelled"]
        tg.cancel_scope.cancel()  # serve kept running: the kick was no error
    assert_empty(hooks.registry)


# -- websockets ------------------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def websockets_server(handler: Callable[[Any], Any]) -> AsyncIterator[str]:
    from websockets.asyncio.server import serve

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/"


async def test_websockets_track_and_always_unregister(anyio_backend: str) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    reg = SessionRegistry(default_server_id="s1", duplicate_login="allow")
    watch = Watch(reg)
    players: list[str] = []
    waiting: dict[str, list[asyncio.Task[Any]]] = {m: [] for m in MODES}
    seen: list[Session | None] = []

    async def handler(ws: Any) -> None:
        seen.append(current_session())
        mode = _login_and_pick(reg, (await ws.recv()).encode(), players)
        if mode == "raise":
            raise RuntimeError("game bug")
        task = asyncio.current_task()
        assert task is not None
        waiting[mode].append(task)
        async for message in ws:  # ends on a clean close; raises ConnectionClosedError on a reset
            await ws.send(message)

    clients: dict[str, list[Any]] = {m: [] for m in MODES}
    async with websockets_server(track_websockets(reg, handler, channel="ws")) as url:
        for i in range(12):
            mode = MODES[i % 4]
            ws = await connect(url)
            await ws.send(f"{mode} p{i % 5}")
            clients[mode].append(ws)
        await watch.until(lambda: len(players) == 12 and sum(map(len, waiting.values())) == 9)
        assert len(reg) == 9 and reg.count_players("s1") == 9
        assert {s.channel for s in reg} == {"ws"} and all(s.remote and s.remote[0] == "127.0.0.1" for s in reg)
        assert set(seen) >= set(reg)
        for ws in clients["reset"]:
            reset_socket(ws.transport.get_extra_info("socket"))
            ws.transport.abort()
        for ws in clients["eof"]:
            await ws.close()
        await watch.count(3)
        for task in waiting["cancel"]:
            task.cancel()
        await watch.count(0)
        for mode in ("raise", "cancel"):
            for ws in clients[mode]:
                with anyio.fail_after(5), pytest.raises(ConnectionClosed):
                    await ws.recv()
        for group in clients.values():
            for ws in group:
                await ws.close()
    assert_empty(reg)


async def test_websockets_default_kick_closes_the_connection(anyio_backend: str) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosedOK

    hooks = gs_hooks.setup(gs_hooks.Config())
    watch = Watch(hooks.registry)
    ended_cleanly = anyio.Event()

    async def handler(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)
        ended_cleanly.set()

    async with hooks, websockets_server(hooks.track_websockets(handler)) as url, connect(url) as ws:
        await watch.count(1)
        (session,) = hooks.registry
        assert await hooks.kick(session, "maintenance") == 1
        with anyio.fail_after(5):
            with pytest.raises(ConnectionClosedOK) as excinfo:
                await ws.recv()
            await ended_cleanly.wait()
        assert excinfo.value.rcvd is not None
        assert (excinfo.value.rcvd.code, excinfo.value.rcvd.reason) == (1000, "kicked")
    assert_empty(hooks.registry)


# -- ASGI (Starlette on uvicorn) ----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def uvicorn_server(app: Any) -> AsyncIterator[str]:
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", ws="websockets-sansio", log_level="error")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        with anyio.fail_after(10):
            while not server.started:
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def starlette_app(endpoint: Callable[[Any], Any], **middleware_kwargs: Any) -> Any:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route, WebSocketRoute

    async def hello(request: Any) -> PlainTextResponse:
        return PlainTextResponse("hello")

    return Starlette(
        routes=[Route("/", hello), WebSocketRoute("/ws", endpoint)],
        middleware=[Middleware(TrackWebSocketsMiddleware, **middleware_kwargs)],
    )


async def test_asgi_tracks_websockets_and_always_unregisters(anyio_backend: str) -> None:
    import httpx
    from starlette.websockets import WebSocket, WebSocketDisconnect
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    reg = SessionRegistry(default_server_id="s1", duplicate_login="allow")
    watch = Watch(reg)
    players: list[str] = []
    waiting: dict[str, list[asyncio.Task[Any]]] = {m: [] for m in MODES}
    seen: list[Session | None] = []

    async def endpoint(websocket: WebSocket) -> None:
        seen.append(current_session())
        await websocket.accept()
        mode = _login_and_pick(reg, (await websocket.receive_text()).encode(), players)
        if mode == "raise":
            raise RuntimeError("game bug")
        task = asyncio.current_task()
        assert task is not None
        waiting[mode].append(task)
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await websocket.send_text(await websocket.receive_text())

    app = starlette_app(endpoint, registry=reg, server_id="s2")
    clients: dict[str, list[Any]] = {m: [] for m in MODES}
    async with uvicorn_server(app) as addr:
        async with httpx.AsyncClient() as http:  # plain HTTP passes through untracked
            assert (await http.get(f"http://{addr}/")).text == "hello"
        assert len(reg) == 0
        for i in range(12):
            mode = MODES[i % 4]
            ws = await connect(f"ws://{addr}/ws")
            await ws.send(f"{mode} p{i % 5}")
            clients[mode].append(ws)
        await watch.until(lambda: len(players) == 12 and sum(map(len, waiting.values())) == 9)
        assert reg.count_connections("s2") == 9 and reg.count_players("s2") == 9
        local_ports = {ws.local_address[1] for group in clients.values() for ws in group}
        assert {s.remote[1] for s in reg if s.remote} <= local_ports
        assert set(seen) >= set(reg)
        for ws in clients["reset"]:
            reset_socket(ws.transport.get_extra_info("socket"))
            ws.transport.abort()
        for ws in clients["eof"]:
            await ws.close()
        await watch.count(3)
        assert reg.count_players("s2") == 3
        for task in waiting["cancel"]:
            task.cancel()
        await watch.count(0)
        for mode in ("raise", "cancel"):
            for ws in clients[mode]:
                with anyio.fail_after(5), pytest.raises(ConnectionClosed):
                    await ws.recv()
        for group in clients.values():
            for ws in group:
                await ws.close()
    assert_empty(reg)


async def test_asgi_default_kick_closes_the_connection(anyio_backend: str) -> None:
    from starlette.websockets import WebSocket, WebSocketDisconnect
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosedOK

    hooks = gs_hooks.setup(gs_hooks.Config())
    watch = Watch(hooks.registry)
    disconnected = anyio.Event()

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                await websocket.send_text(await websocket.receive_text())
        except WebSocketDisconnect:
            disconnected.set()

    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute

    app = hooks.asgi_middleware(Starlette(routes=[WebSocketRoute("/ws", endpoint)]))
    async with hooks, uvicorn_server(app) as addr, connect(f"ws://{addr}/ws") as ws:
        await ws.send("ping")
        assert await ws.recv() == "ping"
        await watch.count(1)
        (session,) = hooks.registry
        assert current_session() is None
        assert await hooks.kick(session, "ban") == 1
        with anyio.fail_after(5):
            with pytest.raises(ConnectionClosedOK) as excinfo:
                await ws.recv()
            await disconnected.wait()
        assert excinfo.value.rcvd is not None
        assert (excinfo.value.rcvd.code, excinfo.value.rcvd.reason) == (1000, "kicked")
        assert await hooks.kick(session) == 0
    assert_empty(hooks.registry)
