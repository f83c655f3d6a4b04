"""Issue 13's three game servers, built from the README's own snippets, against the sandbox.

Each server wraps its handler with the README's adapter and uses the README Quickstart's ``kick_player`` as its
``on_kick``: websockets (``websockets.asyncio.server.serve`` + ``hooks.track_websockets``); Starlette under
uvicorn (``hooks.asgi_middleware``, the routes mounted with ``Mount("/gs", app=hooks.asgi_app())``, so the Hive
webhook is ``/gs/hive/suspensions``); and trio (anyio's TCP listener + ``hooks.track_anyio``). In each, two players
log in with sandbox Gamebase tokens, Hive pushes a ban for one through the sandbox, and from the client side the
banned player's socket is closed while the other one stays open and answering; ``/healthz``'s count matches.
The trio server also runs every other component the README says runs on trio (CCU, the Gamebase ban poller,
GamePot's inquiry, the dashboard), checked from outside.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

import gs_hooks
from gs_hooks import KST, FakeClock
from gs_hooks.sandbox import Sandbox
from readme_support import python_blocks, readme_kick_player

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 3, 1, 13, 0, 30, tzinfo=KST)
HIVE_KEY = "three-servers-hive-key-0123456789"
GAME_INDEX = 539
BANNED, OTHER = "7101", "7102"


def environment(sb: Sandbox, tmp_path: Path, **more: str) -> dict[str, str]:
    """The GS_HOOKS_* variables a game would set (the README's environment contract), pointed at the sandbox."""
    urls = sb.urls()
    env = {
        "GS_HOOKS_STATE": str(tmp_path / "state.sqlite3"),
        "GS_HOOKS_SERVER_ID": "s1",
        "GS_HOOKS_GAMEBASE_URL": urls["gamebase_url"],
        "GS_HOOKS_GAMEBASE_APP_ID": sb.gamebase.app_id,
        "GS_HOOKS_GAMEBASE_SECRET_KEY": sb.gamebase_secret,
        "GS_HOOKS_GAMEBASE_BAN_POLL_S": "0",
        "GS_HOOKS_HIVE_AUTH_KEY": HIVE_KEY,
        "GS_HOOKS_HIVE_GAME_INDEX": str(GAME_INDEX),
    }
    env.update(more)
    return env


def tokens(sb: Sandbox) -> dict[str, str]:
    return {uid: sb.gamebase.issue_token(sb.gamebase.add_member(uid).user_id) for uid in (BANNED, OTHER)}


async def push_ban(sb: Sandbox, url: str) -> None:
    sb.hive.register(url, HIVE_KEY, GAME_INDEX)
    start = (T0 - timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S")
    report = await sb.hive.push_suspensions(
        [{"player_id": int(BANNED), "status": "P", "start_date": start, "end_date": "9999-12-31 00:00:00"}]
    )
    assert report.ok, report.to_json()


def hooks_for(env: dict[str, str], clock: FakeClock) -> gs_hooks.Hooks:
    return gs_hooks.setup(gs_hooks.Config.from_env(env), on_kick=readme_kick_player(), clock=clock)


async def login_answer(hooks: gs_hooks.Hooks, raw: str | bytes) -> dict[str, Any]:
    """The game's login handler: the README's pattern (refusals answered with their reason)."""
    session = gs_hooks.current_session()
    assert session is not None
    msg = json.loads(raw)
    try:
        await hooks.login(session, msg["user_id"], msg["access_token"])
    except gs_hooks.LoginRefusedError as exc:
        return {"op": "error", "code": exc.reason}
    return {"op": "welcome", "player": msg["user_id"]}


# -- websockets ----------------------------------------------------------------------------------------------------


async def test_websockets_server_a_hive_ban_closes_the_banned_socket_only(tmp_path: Path) -> None:
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve
    from websockets.exceptions import ConnectionClosedOK

    clock = FakeClock(T0)
    async with Sandbox.serve(port=0, clock=clock) as sb:
        player_tokens = tokens(sb)
        hooks = hooks_for(environment(sb, tmp_path, GS_HOOKS_LISTEN="127.0.0.1:0"), clock)

        async def handle(websocket: Any) -> None:
            answer = await login_answer(hooks, await websocket.recv())
            await websocket.send(json.dumps(answer))
            if answer["op"] != "welcome":
                return
            async for message in websocket:
                await websocket.send(message)

        async with hooks, serve(hooks.track_websockets(handle), "127.0.0.1", 0) as server:
            assert hooks.listener is not None
            port = next(iter(server.sockets)).getsockname()[1]
            clients = {}
            for uid in (BANNED, OTHER):
                ws = await connect(f"ws://127.0.0.1:{port}/")
                await ws.send(json.dumps({"user_id": uid, "access_token": player_tokens[uid]}))
                assert json.loads(await ws.recv()) == {"op": "welcome", "player": uid}
                clients[uid] = ws
            assert hooks.health()["sessions"] == 2

            await push_ban(sb, hooks.listener.url + "/hive/suspensions")

            with anyio.fail_after(5), pytest.raises(ConnectionClosedOK) as closed:
                await clients[BANNED].recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
            await clients[OTHER].send("still here")
            with anyio.fail_after(5):
                assert await clients[OTHER].recv() == "still here"
            assert hooks.health()["sessions"] == 1 == len(server.connections)
            assert hooks.kick_watch.forced == 0  # the README's recipe closed it: the safety net had nothing to do
            for ws in clients.values():
                await ws.close()


# -- ASGI under uvicorn, routes mounted under /gs -------------------------------------------------------------------


@contextlib.asynccontextmanager
async def uvicorn_server(app: Any) -> AsyncIterator[tuple[str, Any]]:
    import asyncio

    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", ws="websockets-sansio", log_level="error")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        with anyio.fail_after(10):
            while not server.started:
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        await task


async def test_asgi_server_under_uvicorn_a_hive_ban_closes_the_banned_socket_only(tmp_path: Path) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount, WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosedOK

    clock = FakeClock(T0)
    async with Sandbox.serve(port=0, clock=clock) as sb:
        player_tokens = tokens(sb)
        hooks = hooks_for(environment(sb, tmp_path), clock)  # no GS_HOOKS_LISTEN: the routes are mounted
        disconnected: list[str] = []

        async def endpoint(websocket: WebSocket) -> None:
            await websocket.accept()
            answer = await login_answer(hooks, await websocket.receive_text())
            await websocket.send_json(answer)
            try:
                while True:
                    await websocket.send_text(await websocket.receive_text())
            except WebSocketDisconnect:
                disconnected.append(answer["player"])  # the game's own clean-up runs on a kick

        app = Starlette(routes=[WebSocketRoute("/ws", endpoint), Mount("/gs", app=hooks.asgi_app())])
        async with hooks, uvicorn_server(hooks.asgi_middleware(app)) as (addr, _):
            assert hooks.listener is None
            clients = {}
            for uid in (BANNED, OTHER):
                ws = await connect(f"ws://{addr}/ws")
                await ws.send(json.dumps({"user_id": uid, "access_token": player_tokens[uid]}))
                assert json.loads(await ws.recv()) == {"op": "welcome", "player": uid}
                clients[uid] = ws
            assert hooks.health()["sessions"] == 2

            await push_ban(sb, f"http://{addr}/gs/hive/suspensions")

            with anyio.fail_after(5), pytest.raises(ConnectionClosedOK) as closed:
                await clients[BANNED].recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
            await clients[OTHER].send("still here")
            with anyio.fail_after(5):
                assert await clients[OTHER].recv() == "still here"
            with anyio.fail_after(5):
                while not disconnected:
                    await anyio.sleep(0.01)
            assert disconnected == [BANNED]
            assert hooks.health()["sessions"] == 1
            async with httpx.AsyncClient() as http:  # the mounted routes answer under the prefix
                health = (await http.get(f"http://{addr}/gs/healthz")).json()
            assert health["sessions"] == 1
            assert hooks.kick_watch.forced == 0
            for ws in clients.values():
                await ws.close()


# -- trio: anyio's listener + track_anyio, and everything else the README says runs on trio ------------------------


async def trio_client(port: int, uid: str, token: str) -> tuple[anyio.abc.SocketStream, BufferedByteReceiveStream]:
    stream = await anyio.connect_tcp("127.0.0.1", port)
    reader = BufferedByteReceiveStream(stream)
    await stream.send(json.dumps({"user_id": uid, "access_token": token}).encode() + b"\n")
    with anyio.fail_after(5):
        assert json.loads(await reader.receive_until(b"\n", 4096)) == {"op": "welcome", "player": uid}
    return stream, reader


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_trio_server_a_hive_ban_closes_the_banned_socket_only_and_every_component_runs(
    anyio_backend: str, tmp_path: Path
) -> None:
    clock = FakeClock(T0)
    async with Sandbox.serve(port=0, clock=clock, game_keys=("tinyfarm_KR",)) as sb:
        player_tokens = tokens(sb)
        env = environment(
            sb,
            tmp_path,
            GS_HOOKS_LISTEN="127.0.0.1:0",
            GS_HOOKS_GAME="tinyfarm_KR",
            GS_HOOKS_CCU_URL=sb.urls()["ccu_url"],
            GS_HOOKS_GAMEBASE_BAN_POLL_S="30",
            GS_HOOKS_GAMEPOT_PROJECT_ID=sb.gamepot_project_id,
            GS_HOOKS_GAMEPOT_API_KEY=sb.gamepot_api_key,
            GS_HOOKS_DASHBOARD="1",
        )
        hooks = hooks_for(env, clock)

        async def handle(stream: anyio.abc.SocketStream) -> None:
            reader = BufferedByteReceiveStream(stream)
            answer = await login_answer(hooks, await reader.receive_until(b"\n", 4096))
            await stream.send(json.dumps(answer).encode() + b"\n")
            with contextlib.suppress(anyio.EndOfStream, anyio.IncompleteRead):
                while True:
                    await stream.send(await reader.receive_until(b"\n", 4096) + b"\n")

        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with hooks, listener, anyio.create_task_group() as tg, httpx.AsyncClient() as http:
            tg.start_soon(listener.serve, hooks.track_anyio(handle))
            assert hooks.listener is not None and hooks.ccu is not None
            clients = {uid: await trio_client(port, uid, player_tokens[uid]) for uid in (BANNED, OTHER)}
            assert hooks.health()["sessions"] == 2

            await push_ban(sb, hooks.listener.url + "/hive/suspensions")

            banned, _ = clients[BANNED]
            with anyio.fail_after(5), pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                await banned.receive()
            other, other_reader = clients[OTHER]
            await other.send(b"still here\n")
            with anyio.fail_after(5):
                assert await other_reader.receive_until(b"\n", 4096) == b"still here"
            assert hooks.health()["sessions"] == 1
            assert (await http.get(hooks.listener.url + "/healthz")).json()["sessions"] == 1
            assert hooks.kick_watch.forced == 0

            # CCU on trio: the next grid instant's sample reaches the collector, counting the one player left
            deadline = gs_hooks.next_grid_instant(clock.time(), 120).timestamp()
            while clock.time() < deadline:
                await clock.advance_to(min(deadline, (clock.next_deadline() or deadline)))
                await hooks.ccu.wait_idle()
            assert [(s.server, s.user) for s in sb.ccu.samples] == [("s1", 1)]

            # the Gamebase ban poller on trio: a ban recorded in Gamebase kicks the other player too
            sb.gamebase.add_ban(OTHER, clock.now() - timedelta(seconds=1), None, "PERMANENT", "cheating")
            with anyio.fail_after(10):
                while hooks.registry.sessions_of(OTHER):
                    await clock.advance(30)
                    await clock.settle()
                    await anyio.sleep(0.01)
            with anyio.fail_after(5), pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                await other.receive()

            # GamePot's inquiry and the dashboard answer from the listener on trio
            day = clock.now().strftime("%Y-%m-%d")
            inquiry = await http.get(
                f"{hooks.listener.url}/v1/api/project/{sb.gamepot_project_id}/user/statistics/ccu",
                params={"oneDate": day},
                headers={"x-api-key": sb.gamepot_api_key},
            )
            assert inquiry.json()["status"] == 1
            assert (await http.get(hooks.listener.url + "/dashboard")).status_code == 200
            for stream, _ in clients.values():
                await stream.aclose()
            tg.cancel_scope.cancel()


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_the_readme_trio_snippet_serves_and_stops_on_sigterm(
    anyio_backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's "Running on trio" snippet, as written (on a free port instead of 7777; its ``kick_player`` is
    the Quickstart's): a player connects, SIGTERM arrives, the player is kicked (reason shutdown) and main
    returns."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (block,) = [b for b in python_blocks() if 'backend="trio"' in b]
    source = block.replace("local_port=7777", f"local_port={port}").replace('anyio.run(main, backend="trio")', "")
    monkeypatch.setenv("GS_HOOKS_STATE", str(tmp_path / "state.sqlite3"))
    connected = anyio.Event()

    async def handle(stream: anyio.abc.SocketStream) -> None:
        connected.set()
        await stream.receive()

    namespace: dict[str, Any] = {}
    exec(source, namespace)  # noqa: S102 - the README's own snippet
    assert namespace["kick_player"].__code__.co_code == readme_kick_player().__code__.co_code  # the Quickstart's
    namespace["handle"] = handle  # the snippet's login handler needs Gamebase: this one only holds the connection
    async with anyio.create_task_group() as tg:
        tg.start_soon(namespace["main"])
        with anyio.fail_after(10):
            while True:
                try:
                    client = await anyio.connect_tcp("127.0.0.1", port)
                    break
                except OSError:
                    await anyio.sleep(0.01)
        with anyio.fail_after(10):
            await connected.wait()
            while signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
                await anyio.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)
        with anyio.fail_after(10), pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
            await client.receive()  # kicked at shutdown: the README's kick_player closed it
        await client.aclose()
