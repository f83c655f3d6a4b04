"""The example's game port, in-process over loopback: a deeply nested line gets an ``error``, not a dropped
connection and a RecursionError traceback."""

from __future__ import annotations

import asyncio
import logging

import msgspec
import pytest
from examples.asyncio_server.server import MAX_LINE, GameServer

import gs_hooks

pytestmark = pytest.mark.anyio


async def test_a_deeply_nested_line_gets_an_error_and_the_connection_stays(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    game = GameServer()
    hooks = gs_hooks.setup(gs_hooks.Config(state_path=":memory:"), on_kick=game.on_kick)
    async with hooks:
        port = await game.start(hooks, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            depth = (MAX_LINE - 2) // 2  # the 4 KB line of the report: ~2,000 levels
            for line in (b"[" * depth + b"]" * depth, b'{"op":"ping","x":' + b"[" * 1500 + b"]" * 1500 + b"}"):
                writer.write(line + b"\n")
                await writer.drain()
                answer = msgspec.json.decode(await asyncio.wait_for(reader.readline(), 10))
                assert answer["op"] == "error" and answer["code"] == "malformed"
                assert "deeper than" in answer["message"]
            writer.write(b'{"op":"ping"}\n')
            await writer.drain()
            assert msgspec.json.decode(await asyncio.wait_for(reader.readline(), 10)) == {"op": "pong"}
        finally:
            writer.close()
            await game.close()
    assert [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []
