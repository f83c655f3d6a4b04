"""No single kick blocks anything else, and a closed connection is gone (review findings 1 and 2).

Over real loopback sockets, with a player who stopped reading while the game's output is queued for it (its receive
buffer is full: a client with a tiny ``SO_RCVBUF`` that never reads). The README's kick recipe (``await
request.session.aclose()``) waits for that peer; before the fix it waited forever, and with it every later kick of
a ban batch, a login kicking the older session, and the shutdown. And a sync ``session.close()`` left the
connection ESTABLISHED with megabytes queued while the safety net believed it closed.

The grace is on the injected clock (the adapters' own close bound is set far out, so only the net acts); the tests
wait in real time only for sockets, with a bound that fails a hang, never a speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest

import gs_hooks
from gs_hooks import Config, FakeClock, GamebaseConfig, Secret
from gs_hooks.bans import Ban
from gs_hooks.sandbox import Sandbox
from gs_hooks.sessions import track_asyncio_streams, track_websockets
from readme_support import readme_kick_player

pytestmark = pytest.mark.parametrize("anyio_backend", ["asyncio"])

ESTABLISHED = 1  # Linux's TCP_ESTABLISHED, the first byte of TCP_INFO
FAR = 3600.0  # the adapters' own close bound, out of the way: the safety net (on the fake clock) must act


def tcp_state(sock: socket.socket) -> int:
    """The client socket's TCP state (no read: the client must not drain what the server queued)."""
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]


async def until(condition: Callable[[], object]) -> None:
    with anyio.fail_after(10):
        while not condition():
            await anyio.sleep(0.01)


def deaf_client(port: int, first: bytes = b"") -> socket.socket:
    """A client that never reads (a tiny receive buffer, soon full)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    if first:
        sock.sendall(first)
    return sock


def flood(writer: asyncio.StreamWriter) -> None:
    """Game output the peer will not read: more than every kernel buffer holds, so asyncio keeps some queued."""
    for _ in range(200):
        writer.write(b"x" * 65536)


@contextlib.asynccontextmanager
async def game(hooks: gs_hooks.Hooks, *, bind: bool = True) -> AsyncIterator[tuple[int, set[str]]]:
    """A line server: the first line names the player (bound); player ``deaf*`` gets flooded. Yields the port and
    the players whose handler has ended."""
    ended: set[str] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        player = (await reader.readline()).decode().strip()
        try:
            session = gs_hooks.current_session()
            assert session is not None
            if bind:
                hooks.bind_player(session, player)
            writer.write(b"welcome\n")
            if player.startswith("deaf"):
                flood(writer)
            while await reader.readline():
                pass
        finally:
            ended.add(player)

    server = await asyncio.start_server(
        track_asyncio_streams(hooks.registry, handle, close_timeout_s=FAR), "127.0.0.1", 0
    )
    async with server:
        yield server.sockets[0].getsockname()[1], ended


async def reading_client(port: int, player: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(player.encode() + b"\n")
    with anyio.fail_after(10):
        assert await reader.readline() == b"welcome\n"
    return reader, writer


def bans(now: Any, *players: str) -> list[Ban]:
    return [Ban(player_key=p, source="api", status="permanent", starts_at=now) for p in players]


async def test_a_player_who_stopped_reading_holds_up_no_other_kick_of_a_ban_batch(anyio_backend: str) -> None:
    clock = FakeClock()
    hooks = gs_hooks.setup(Config(state_path=":memory:"), on_kick=readme_kick_player(), clock=clock)
    async with hooks, game(hooks) as (port, ended):
        deaf = deaf_client(port, b"deaf\n")
        reader, writer = await reading_client(port, "b")
        await until(lambda: hooks.registry.sessions_of("deaf"))
        with anyio.fail_after(10):  # the fake clock does not move: the batch must not wait for deaf's grace
            await hooks.bans.apply(bans(clock.now(), "deaf", "b"))
        with anyio.fail_after(10):
            assert await reader.read() == b""  # b's connection was closed by its kick
        assert "b" in ended or await until(lambda: "b" in ended) is None
        assert "deaf" not in ended and tcp_state(deaf) == ESTABLISHED  # its on_kick still waits for the peer
        await clock.advance(hooks.kick_watch.grace_s)
        await until(lambda: "deaf" in ended)  # closed by force at the grace: the handler saw the end
        await until(lambda: tcp_state(deaf) != ESTABLISHED)  # reset: the output it never read is dropped
        assert hooks.kick_watch.forced == 1 and hooks.kick_watch.overran == 1
        deaf.close()
        writer.close()


async def test_a_kicked_connection_whose_peer_stopped_reading_is_not_closed_until_it_is_gone(
    anyio_backend: str,
) -> None:
    """``closing`` means gone: a sync ``session.close()`` with megabytes queued for a peer that does not read
    leaves the connection open, so the safety net closes it by force when the grace ends."""
    clock = FakeClock()
    hooks = gs_hooks.setup(Config(state_path=":memory:"), on_kick=lambda r: r.session.close(), clock=clock)
    async with hooks, game(hooks) as (port, ended):
        deaf = deaf_client(port, b"deaf\n")
        await until(lambda: hooks.registry.sessions_of("deaf"))
        (session,) = hooks.registry.sessions_of("deaf")
        assert session.connection is not None
        assert await hooks.kick(session, "ban") == 1
        await clock.settle()
        assert not session.connection.closing  # close() was called, but the queued output holds the connection
        assert hooks.kick_watch.armed == 1 and "deaf" not in ended and tcp_state(deaf) == ESTABLISHED
        await clock.advance(hooks.kick_watch.grace_s)
        await until(lambda: "deaf" in ended)
        assert session.connection.closing and hooks.kick_watch.forced == 1
        await until(lambda: tcp_state(deaf) != ESTABLISHED)
        deaf.close()


async def test_aclose_and_the_handlers_end_are_bounded_by_the_adapters_close_timeout(anyio_backend: str) -> None:
    """Outside any kick: ``await session.aclose()`` returns once the connection is gone, aborting it after the
    adapter's ``close_timeout_s``; a handler that ends with output queued has its connection aborted the same."""
    done: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = gs_hooks.current_session()
        assert session is not None
        mode = (await reader.readline()).decode().strip()
        flood(writer)
        if mode == "aclose":
            await session.aclose()
            assert session.connection is not None and session.connection.closing
        done.append(mode)  # "return": the handler ends with the output still queued

    hooks = gs_hooks.setup(Config(state_path=":memory:"), clock=FakeClock())
    server = await asyncio.start_server(
        track_asyncio_streams(hooks.registry, handle, close_timeout_s=0.2), "127.0.0.1", 0
    )
    async with server:
        port = server.sockets[0].getsockname()[1]
        clients = [deaf_client(port, b"aclose\n"), deaf_client(port, b"return\n")]
        await until(lambda: sorted(done) == ["aclose", "return"])
        for client in clients:
            await until(lambda client=client: tcp_state(client) != ESTABLISHED)
            client.close()
        assert len(hooks.registry) == 0


async def test_a_login_kicking_an_older_session_whose_peer_stopped_reading_waits_at_most_the_grace(
    anyio_backend: str,
) -> None:
    clock = FakeClock()
    async with Sandbox.serve(port=0, clock=clock) as sb:
        gamebase = GamebaseConfig(
            url=sb.url,
            app_id=sb.gamebase_app_id,
            secret_key=Secret(sb.gamebase_secret),
            retries=0,
            maintenance_poll_s=0,
            ban_poll_s=0,
        )
        hooks = gs_hooks.setup(
            Config(state_path=":memory:", gamebase=gamebase), on_kick=readme_kick_player(), clock=clock
        )
        async with hooks, game(hooks) as (port, ended), anyio.create_task_group() as tg:
            sb.gamebase.add_member("deaf1")
            deaf = deaf_client(port, b"deaf1\n")  # logged in (bound) earlier; has stopped reading since
            await until(lambda: hooks.registry.sessions_of("deaf1"))
            newer = hooks.registry.open_nowait()
            logged_in: list[str] = []

            async def login() -> None:
                await hooks.login(newer, "deaf1", sb.gamebase.issue_token("deaf1"))
                logged_in.append("deaf1")

            tg.start_soon(login)
            await until(lambda: len(hooks.registry.sessions_of("deaf1")) == 1 and newer.player_id == "deaf1")
            await clock.settle()
            assert logged_in == []  # the older session's on_kick waits for its peer, within the grace
            await clock.advance(hooks.kick_watch.grace_s)
            await until(lambda: logged_in == ["deaf1"])
            await until(lambda: "deaf1" in ended)
            assert hooks.registry.sessions_of("deaf1") == (newer,)
            deaf.close()


async def test_serve_until_signal_returns_within_the_grace_with_a_player_who_stopped_reading(
    anyio_backend: str,
) -> None:
    clock = FakeClock()
    hooks = gs_hooks.setup(Config(state_path=":memory:"), on_kick=readme_kick_player(), clock=clock)
    previous = signal.signal(signal.SIGUSR1, lambda *_: None)  # harmless if it came before the receiver
    try:
        async with hooks, game(hooks) as (port, ended), anyio.create_task_group() as tg:
            deaf = deaf_client(port, b"deaf\n")
            reader, writer = await reading_client(port, "b")
            await until(lambda: len(hooks.registry) == 2)
            returned: list[signal.Signals] = []

            async def serve() -> None:
                returned.append(await hooks.serve_until_signal(signals=(signal.SIGUSR1,)))

            tg.start_soon(serve)
            await clock.settle()
            os.kill(os.getpid(), signal.SIGUSR1)
            await until(lambda: len(hooks.registry) == 0)  # every session kicked, reason shutdown
            with anyio.fail_after(10):
                assert await reader.read() == b""  # the reading player was closed at once
            await clock.settle()
            assert returned == [] and "deaf" not in ended  # deaf's on_kick waits for its peer, within the grace
            await clock.advance(hooks.kick_watch.grace_s)
            await until(lambda: returned == [signal.SIGUSR1])
            await until(lambda: "deaf" in ended)
            deaf.close()
            writer.close()
    finally:
        signal.signal(signal.SIGUSR1, previous)


# -- websockets ------------------------------------------------------------------------------------------------------

UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


async def ws_client(port: int, *, deaf: bool) -> socket.socket:
    """A raw WebSocket client: the opening handshake, then nothing (it never answers a close frame)."""
    sock = deaf_client(port) if deaf else socket.create_connection(("127.0.0.1", port))
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(sock, UPGRADE)
    head = b""
    with anyio.fail_after(10):
        while b"\r\n\r\n" not in head:
            head += await loop.sock_recv(sock, 1)  # byte by byte: nothing of what follows is read
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


@pytest.mark.parametrize("peer", ["stopped reading", "never answers the close"])
async def test_a_websocket_whose_peer_does_not_complete_the_close_is_closed_by_force_at_the_grace(
    anyio_backend: str, peer: str
) -> None:
    from websockets.asyncio.server import serve

    clock = FakeClock()
    hooks = gs_hooks.setup(Config(state_path=":memory:"), on_kick=readme_kick_player(), clock=clock)
    ended: list[str] = []

    async def handle(websocket: Any) -> None:
        session = gs_hooks.current_session()
        assert session is not None
        hooks.bind_player(session, "p")
        try:
            if peer == "stopped reading":
                while True:
                    await websocket.send("x" * 65536)  # blocks once the peer's buffers are full
            else:
                await websocket.wait_closed()
        finally:
            ended.append(peer)

    drained = anyio.Event()

    async def drain(sock: socket.socket) -> None:  # reads everything, answers nothing
        loop = asyncio.get_running_loop()
        with contextlib.suppress(OSError):
            while await loop.sock_recv(sock, 65536):
                pass
        drained.set()

    # websockets' own close timeout is off: only gs_hooks bounds the close
    tracked = track_websockets(hooks.registry, handle, close_timeout_s=FAR)
    async with (
        hooks,
        serve(tracked, "127.0.0.1", 0, close_timeout=None, ping_interval=None) as server,
        anyio.create_task_group() as tg,
    ):
        port = next(iter(server.sockets)).getsockname()[1]
        client = await ws_client(port, deaf=peer == "stopped reading")
        if peer == "never answers the close":
            tg.start_soon(drain, client)
        await until(lambda: hooks.registry.sessions_of("p"))
        await anyio.sleep(0.2)  # the handler is blocked in send (flow control), or waiting
        kicked: list[int] = []

        async def kick() -> None:
            kicked.append(await hooks.kick("p", "ban"))

        tg.start_soon(kick)
        await clock.settle()
        assert kicked == [] and ended == []  # the close handshake waits for the peer
        await clock.advance(hooks.kick_watch.grace_s)
        await until(lambda: kicked == [1] and ended == [peer])
        assert hooks.kick_watch.forced == 1
        if peer == "never answers the close":
            with anyio.fail_after(10):
                await drained.wait()  # the client saw the connection end
        else:
            await until(lambda: tcp_state(client) != ESTABLISHED)
        client.close()
