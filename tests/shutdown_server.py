"""The README Quickstart's server, as a real process for the SIGTERM test (``tests/test_shutdown_signal.py``).

Same shape as the Quickstart: the README's own ``kick_player`` as ``on_kick``, ``hooks.track_streams``, and
``await hooks.serve_until_signal()`` inside ``async with hooks`` and ``async with server``. The login is a plain
``bind_player`` (the test is about shutdown, not Gamebase); a ``flood`` line queues megabytes of output for that
player (one who stopped reading). Configured only through GS_HOOKS_* variables.

    python tests/shutdown_server.py [--no-helper]     # prints "ready <game port> <listener url>"

``--no-helper`` runs the pre-13.11 Quickstart (``await server.serve_forever()``), for comparison.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gs_hooks
from readme_support import readme_kick_player

kick_player = readme_kick_player()
hooks: gs_hooks.Hooks


async def handle_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    session = gs_hooks.current_session()
    assert session is not None
    hooks.bind_player(session, (await reader.readline()).decode().strip())
    writer.write(b"welcome\n")
    await writer.drain()
    while line := await reader.readline():
        if line == b"flood\n":  # output this player will not read: the kick's close waits for it
            for _ in range(200):
                writer.write(b"x" * 65536)
            continue
        writer.write(line)
        await writer.drain()


async def main(helper: bool) -> None:
    global hooks
    hooks = gs_hooks.setup(gs_hooks.Config.from_env(), on_kick=kick_player)
    async with hooks:
        server = await asyncio.start_server(hooks.track_streams(handle_client), "127.0.0.1", 0)
        async with server:
            assert hooks.listener is not None
            print("ready", server.sockets[0].getsockname()[1], hooks.listener.url, flush=True)
            if helper:
                await hooks.serve_until_signal()
            else:
                await server.serve_forever()
    print("hooks closed", flush=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(main(helper="--no-helper" not in sys.argv))
