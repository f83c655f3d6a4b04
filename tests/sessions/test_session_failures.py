"""One connection's failure never ends the game, on every adapter (issue 13.5).

An exception escaping the game's handler is logged once per kind on ``gs_hooks.sessions`` (rate-limited; the
server's own logger stays quiet), that connection is closed (websockets and ASGI: code 1011), and the server, the
embedded listener and every other connection carry on. The anyio adapter is checked on asyncio and trio with the
whole Hooks running (listener and CCU reporter), since anyio's ``serve`` would otherwise end with the error.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest
from adapter_support import WsprotoClient

import gs_hooks
from gs_hooks import FakeClock, current_session
from gs_hooks.sandbox import Sandbox


class Capture(logging.Handler):
    """Collects the records of one logger (also when it does not propagate, as uvicorn's)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def capture(name: str) -> Iterator[Capture]:
    handler = Capture()
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def failures(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    return [r for r in records if r.name == "gs_hooks.sessions" and r.levelno >= logging.ERROR]


async def test_websockets_a_raising_handler_is_logged_once_closed_1011_and_others_carry_on(anyio_backend: str) -> None:
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve
    from websockets.exceptions import ConnectionClosedError

    hooks = gs_hooks.setup(gs_hooks.Config())

    async def handle(websocket: Any) -> None:
        async for message in websocket:
            if message == "boom":
                raise RuntimeError("game bug")
            await websocket.send(message)

    with capture("gs_hooks.sessions") as ours, capture("websockets") as theirs:
        async with hooks, serve(hooks.track_websockets(handle), "127.0.0.1", 0) as server:
            url = f"ws://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}/"
            healthy = await connect(url)
            for _ in range(3):
                async with connect(url) as buggy:
                    await buggy.send("boom")
                    with anyio.fail_after(5), pytest.raises(ConnectionClosedError) as closed:
                        await buggy.recv()
                    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
            await healthy.send("ping")
            with anyio.fail_after(5):
                assert await healthy.recv() == "ping"
            await healthy.close()
    assert len(failures(ours.records)) == 1  # rate-limited: the first logged, the two repeats counted
    assert [r for r in theirs.records if r.levelno >= logging.ERROR] == []


async def test_asgi_a_raising_app_is_logged_once_closed_1011_and_others_carry_on(anyio_backend: str) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosedError

    hooks = gs_hooks.setup(gs_hooks.Config())

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                message = await websocket.receive_text()
                if message == "boom":
                    raise RuntimeError("game bug")
                await websocket.send_text(message)

    app = hooks.asgi_middleware(Starlette(routes=[WebSocketRoute("/ws", endpoint)]))
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", ws="websockets-sansio", log_level="error")
    server = uvicorn.Server(config)
    with capture("gs_hooks.sessions") as ours, capture("uvicorn.error") as theirs:
        async with hooks:
            task = asyncio.create_task(server.serve())
            try:
                with anyio.fail_after(10):
                    while not server.started:
                        await asyncio.sleep(0.01)
                url = f"ws://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/ws"
                healthy = await connect(url)
                for _ in range(3):
                    async with connect(url) as buggy:
                        await buggy.send("boom")
                        with anyio.fail_after(5), pytest.raises(ConnectionClosedError) as closed:
                            await buggy.recv()
                        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
                await healthy.send("ping")
                with anyio.fail_after(5):
                    assert await healthy.recv() == "ping"
                assert len(hooks.registry) == 1
                await healthy.close()
            finally:
                server.should_exit = True
                await task
    assert len(failures(ours.records)) == 1
    assert [r for r in theirs.records if r.levelno >= logging.ERROR] == []


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_anyio_a_raising_handler_leaves_the_listener_and_ccu_running(anyio_backend: str, tmp_path: Path) -> None:
    clock = FakeClock()
    async with Sandbox.serve(port=0, clock=clock, game_keys=("tinyfarm_KR",)) as sb:
        config = gs_hooks.Config.from_env(
            {
                "GS_HOOKS_STATE": str(tmp_path / "state.sqlite3"),
                "GS_HOOKS_GAME": "tinyfarm_KR",
                "GS_HOOKS_SERVER_ID": "s1",
                "GS_HOOKS_CCU_URL": sb.urls()["ccu_url"],
                "GS_HOOKS_LISTEN": "127.0.0.1:0",
            }
        )
        hooks = gs_hooks.setup(config, clock=clock)

        async def handle(stream: anyio.abc.SocketStream) -> None:
            session = current_session()
            assert session is not None
            data = await stream.receive()
            if data == b"boom":
                raise RuntimeError("game bug")
            hooks.bind_player(session, data.decode())
            with contextlib.suppress(anyio.EndOfStream):
                while True:
                    await stream.send(await stream.receive())

        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        with capture("gs_hooks.sessions") as ours:
            async with hooks, listener, anyio.create_task_group() as tg, httpx.AsyncClient() as http:
                tg.start_soon(listener.serve, hooks.track_anyio(handle))
                player = await anyio.connect_tcp("127.0.0.1", port)
                await player.send(b"p1")
                buggy = await anyio.connect_tcp("127.0.0.1", port)
                await buggy.send(b"boom")
                with anyio.fail_after(5), pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await buggy.receive()
                await buggy.aclose()
                # the game goes on: the player, the listener, the CCU reporter, new connections
                await player.send(b"ping")
                with anyio.fail_after(5):
                    assert await player.receive() == b"ping"
                assert hooks.running and hooks.listener is not None and hooks.ccu is not None
                health = (await http.get(hooks.listener.url + "/healthz")).json()
                assert health["status"] == "ok" and health["sessions"] == 1
                deadline = gs_hooks.next_grid_instant(clock.time(), 120).timestamp()
                while clock.time() < deadline:
                    await clock.advance_to(min(deadline, clock.next_deadline() or deadline))
                    await hooks.ccu.wait_idle()
                assert [(s.server, s.user) for s in sb.ccu.samples] == [("s1", 1)]
                await player.aclose()
                tg.cancel_scope.cancel()
    assert len(failures(ours.records)) == 1


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_asgi_under_hypercorn_trio_a_raising_app_is_logged_once_closed_1011(anyio_backend: str) -> None:
    import trio
    from hypercorn.config import Config as HypercornConfig
    from hypercorn.trio import serve
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket
    from wsproto.events import CloseConnection, TextMessage

    hooks = gs_hooks.setup(gs_hooks.Config())

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        while True:
            message = await websocket.receive_text()
            if message == "boom":
                raise RuntimeError("game bug")
            await websocket.send_text(message)

    config = HypercornConfig()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    app = hooks.asgi_middleware(Starlette(routes=[WebSocketRoute("/ws", endpoint)]))
    stop = trio.Event()
    with capture("gs_hooks.sessions") as ours, capture("hypercorn.error") as theirs:
        async with hooks, trio.open_nursery() as nursery:
            binds = await nursery.start(functools.partial(serve, app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
            port = int(binds[0].rsplit(":", 1)[1])

            async def connect() -> WsprotoClient:
                ws = WsprotoClient(await anyio.connect_tcp("127.0.0.1", port))
                await ws.open("/ws")
                return ws

            healthy_client = (await connect()).client(0)
            for _ in range(3):
                buggy = await connect()
                await buggy.stream.send(buggy.conn.send(TextMessage(data="boom")))
                with anyio.fail_after(5):
                    event = await buggy.event()
                assert isinstance(event, CloseConnection) and event.code == 1011
                await buggy.client(0).aclose()
            assert await healthy_client.roundtrip("ping") == "ping"
            assert len(hooks.registry) == 1
            await healthy_client.aclose()
            stop.set()
    assert len(failures(ours.records)) == 1
    assert [r for r in theirs.records if r.levelno >= logging.ERROR] == []
