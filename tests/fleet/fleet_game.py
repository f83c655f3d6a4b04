"""A real game process in a fleet, for the multi-process tests: ``python tests/fleet/fleet_game.py``.

The example's game server (newline-delimited JSON over TCP, ``examples/asyncio_server/server.py``) on gs_hooks,
configured only by ``GS_HOOKS_*`` variables (fleet mode, the sandbox's Gamebase, the Hive webhook listener). It
speaks JSON lines on stdout and takes commands on stdin.

stdout: ``ready`` (game port, listener URL, fleet process id, OS pid) once the hooks started; ``kick`` each time
the game's kick callback runs (player, session, reason, ``t`` = ``time.perf_counter()``, the system-wide
monotonic clock); ``leader`` when this process starts or stops leading; answers to commands.

stdin (one JSON object a line): ``{"op": "ban", "player": ..., "message": ...}``, ``{"op": "unban", "player":
...}``, ``{"op": "state"}`` (leader, members, outbox, bans held, maintenance state, Gamebase polls made as
leader), ``{"op": "banned", "player": ...}``.

``FLEET_GAME_FAULT=die_before_answer``: the process kills itself (SIGKILL) right after the suspension webhook's
handler returned (the batch recorded, the outbox entry committed) and before the answer is written.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root: ``examples`` is importable

import anyio
from examples.asyncio_server.server import GameServer

import gs_hooks
from gs_hooks.fleet._maintenance import MaintenancePublisher
from gs_hooks.http._app import Request, Response


def say(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


async def main() -> None:
    config = gs_hooks.Config.from_env()
    game = GameServer(server_id=config.sessions.server_id)

    async def on_kick(request: gs_hooks.KickRequest) -> None:
        say(
            type="kick",
            player=request.session.player_id,
            session=request.session.id,
            reason=request.reason,
            t=time.perf_counter(),
        )
        await game.on_kick(request)

    hooks = gs_hooks.setup(config, on_kick=on_kick)
    if os.environ.get("FLEET_GAME_FAULT") == "die_before_answer":
        route, _, _ = hooks.router.resolve("POST", config.hive.suspension_path)
        assert route is not None
        handler = route.handler

        async def die_before_answer(request: Request) -> Response:
            response = await handler(request)
            os.kill(os.getpid(), signal.SIGKILL)
            return response

        route.handler = die_before_answer
    fleet = hooks.fleet
    assert fleet is not None
    async with hooks:
        port = await game.start(hooks, "127.0.0.1", 0)
        listener = hooks.listener.url if hooks.listener is not None else None
        say(type="ready", game_port=port, listener=listener, pid=fleet.pid, os_pid=os.getpid())
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch_leader, fleet)
            await commands(hooks, fleet)
            tg.cancel_scope.cancel()
        await game.close()


async def watch_leader(fleet: gs_hooks.fleet.Fleet) -> None:
    leading = False
    while True:
        if fleet.is_leader != leading:
            leading = fleet.is_leader
            say(type="leader", leading=leading, t=time.time())
        await anyio.sleep(0.01)


async def commands(hooks: gs_hooks.Hooks, fleet: gs_hooks.fleet.Fleet) -> None:
    while True:
        line = await anyio.to_thread.run_sync(sys.stdin.readline)
        if not line:
            return
        msg = json.loads(line)
        op = msg["op"]
        if op == "ban":
            ban = await hooks.ban(msg["player"], message=msg.get("message", ""))
            say(type="banned", player=ban.player_key)
        elif op == "unban":
            say(type="unbanned", player=msg["player"], lifted=await hooks.unban(msg["player"]))
        elif op == "banned":
            say(type="ban_state", player=msg["player"], banned=hooks.bans.active_ban(msg["player"]) is not None)
        elif op == "state":
            sync = fleet.bans
            watcher = hooks.maintenance
            polls = sum(j.polls for j in fleet._jobs if isinstance(j, MaintenancePublisher))
            say(
                type="state",
                leader=fleet.is_leader,
                members=[m.pid for m in fleet.members],
                outbox=await sync.outbox.count() if sync is not None else None,
                applied=sync.applied if sync is not None else None,
                reloads=sync.reloads if sync is not None else None,
                bans=sorted(b.player_key for b in hooks.bans.active_bans()),
                maintenance=watcher.state.value if watcher is not None else None,
                maintenance_polls=polls,
                sessions=len(hooks.registry),
            )
        elif op == "quit":
            return


if __name__ == "__main__":
    asyncio.run(main())
