"""What a peer can hold in the example server, which users copy (issue 14.9): players leave ``players`` when their
last connection ends, the game port refuses connections past its cap and closes connections that stay silent, and
a bot nobody reads from holds bounded memory.

In-process: the sandbox, the hooks and the example's GameServer on loopback, real TCP clients.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest
from examples.asyncio_server.bots import Bot, SandboxAdmin
from examples.asyncio_server.embedded import embedded_environment
from examples.asyncio_server.server import GameServer

import gs_hooks
from gs_hooks.sandbox import Sandbox

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]


@asynccontextmanager
async def example(tmp_path: Path, **game_settings: Any) -> AsyncIterator[tuple[GameServer, int, SandboxAdmin]]:
    async with Sandbox.serve(port=0) as sandbox:
        env = embedded_environment({"GS_HOOKS_STATE": str(tmp_path / "state.sqlite3")}, sandbox, demo=False)
        config = gs_hooks.Config.from_env(env)
        game = GameServer(server_id=config.sessions.server_id, **game_settings)
        hooks = gs_hooks.setup(config, on_kick=game.on_kick, on_notice=game.on_notice)
        admin = SandboxAdmin(sandbox.url)
        async with hooks:
            port = await game.start(hooks, "127.0.0.1", 0)
            try:
                yield game, port, admin
            finally:
                await game.close()
                await admin.aclose()


async def until(condition: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def read_json(reader: asyncio.StreamReader) -> dict[str, Any]:
    async with asyncio.timeout(10):
        line = await reader.readline()
    assert line, "connection closed without an answer"
    msg: dict[str, Any] = msgspec.json.decode(line)
    return msg


async def test_players_leave_the_map_when_their_last_connection_ends(tmp_path: Path) -> None:
    async with example(tmp_path) as (game, port, admin):
        assert game.hooks is not None
        bots = [Bot(str(4000 + i)) for i in range(5)]
        tokens = {}
        for bot in bots:
            tokens[bot.user_id] = await admin.new_player(bot.user_id)
            await bot.connect("127.0.0.1", port)
            assert (await bot.login(tokens[bot.user_id]))["op"] == "welcome"
        assert sorted(game.players) == sorted(b.user_id for b in bots)
        for bot in bots[:4]:  # players who disconnect
            await bot.close()
        await until(lambda: len(game.writers) == 1)
        assert sorted(game.players) == [bots[4].user_id]
        # a player logged in twice (the older session is kicked): still a player until the newer one ends
        again = Bot(bots[4].user_id)
        await again.connect("127.0.0.1", port)
        assert (await again.login(tokens[again.user_id]))["op"] == "welcome"
        assert (await bots[4].expect("kick"))["reason"] == "duplicate_login"
        await until(lambda: len(game.writers) == 1)
        assert sorted(game.players) == [again.user_id]
        await bots[4].close()
        await again.close()
        await until(lambda: not game.writers)
        assert game.players == {}
        assert len(game.hooks.registry) == 0


async def test_the_game_port_refuses_connections_past_its_cap(tmp_path: Path) -> None:
    async with example(tmp_path, max_connections=3) as (game, port, _):
        assert game.hooks is not None
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        await until(lambda: len(game.writers) == 3)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        answer = await read_json(reader)
        assert answer["op"] == "error" and answer["code"] == "server_full"
        assert await reader.read() == b""  # closed
        writer.close()
        assert len(game.hooks.registry) == 3  # the refused one never became a session
        assert game.limits["refused_full"] == 1
        # a slot frees up: the next connection is served
        held[0][1].close()
        await until(lambda: len(game.writers) == 2)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b'{"op":"ping"}\n')
        assert await read_json(reader) == {"op": "pong"}
        for _, w in [*held[1:], (reader, writer)]:
            w.close()
        await until(lambda: not game.writers)


async def test_a_silent_connection_is_closed_and_a_pinging_one_stays(tmp_path: Path) -> None:
    async with example(tmp_path, idle_timeout_s=0.5) as (game, port, _):
        silent = await asyncio.open_connection("127.0.0.1", port)
        dripping = await asyncio.open_connection("127.0.0.1", port)  # bytes, never a whole line
        pinging = await asyncio.open_connection("127.0.0.1", port)
        await until(lambda: len(game.writers) == 3)

        async def drip() -> None:
            for _ in range(4):  # a byte every 0.1 s: activity, but no line within the timeout
                dripping[1].write(b" ")
                await dripping[1].drain()
                await asyncio.sleep(0.1)

        async def ping() -> list[dict[str, Any]]:
            answers = []
            for _ in range(8):  # 8 × 0.2 s: well past the idle timeout, never silent that long
                pinging[1].write(b'{"op":"ping"}\n')
                answers.append(await read_json(pinging[0]))
                await asyncio.sleep(0.2)
            return answers

        dripper = asyncio.create_task(drip())
        answers = await ping()
        assert answers == [{"op": "pong"}] * 8
        for reader, _ in (silent, dripping):
            answer = await read_json(reader)
            assert answer["op"] == "error" and answer["code"] == "idle_timeout"
            assert await reader.read() == b""
        await dripper
        assert game.limits["closed_idle"] == 2
        assert len(game.writers) == 1
        for _, writer in (silent, dripping, pinging):
            writer.close()


async def test_a_bot_nobody_reads_from_holds_bounded_memory(tmp_path: Path) -> None:
    async with example(tmp_path) as (game, port, admin):
        quiet, loud = Bot("4101", inbox_limit=100), Bot("4102")
        for bot in (quiet, loud):
            token = await admin.new_player(bot.user_id)
            await bot.connect("127.0.0.1", port)
            assert (await bot.login(token))["op"] == "welcome"
        for k in range(600):  # each chat line is broadcast to every player, the quiet bot included
            await loud.send({"op": "chat", "text": f"line {k}"})
            await loud.expect("chat")
        await until(lambda: quiet.dropped == 500)
        assert len(quiet.inbox) == 100
        assert quiet.inbox[-1] == {"op": "chat", "from": "4102", "text": "line 599"}  # the latest are kept
        for bot in (quiet, loud):
            await bot.close()
        await until(lambda: not game.writers)
