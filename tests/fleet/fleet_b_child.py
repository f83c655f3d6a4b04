"""A fleet game process for the multi-process tests of the CCU sum and duplicate login; JSON lines on stdout,
commands as JSON lines on stdin.

    python fleet_b_child.py ccu REDIS_URL INDEX SERVERS CCU_URL
        The real CCU parts of one fleet process: heartbeat, lease, the sink's task, the leader job (settle, send to
        the collector at CCU_URL). Command ``{"op": "take", "slot": S, "at": T, "counts": {...}}``: the sampler's
        step for the grid instant S with these counts, taken ``now - T`` seconds after the instant (the test sends
        T when the instant is due, so a paused process takes it late). Prints ``ready``, ``report`` (each written
        report: slot, counts, outcomes), ``leader`` (each term).

    python fleet_b_child.py logins REDIS_URL INDEX GAMEBASE_URL APP_ID SECRET POLICY STATE
        Hooks (``gs_hooks.setup``) against the sandbox's Gamebase, a fleet process by its settings alone
        (``GS_HOOKS_REDIS_URL``...: setup() makes FleetLogins the login flow's claim step). Command
        ``{"op": "logins", "player": P, "token": T, "n": N}``:
        N concurrent logins of P, each on its own session; prints their outcomes. ``{"op": "state"}``: prints the
        live sessions of the player, the kicks and the owner key.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleet_ccu_support import SetCounter

import gs_hooks
from gs_hooks import CcuConfig, KickRequest, SystemClock
from gs_hooks._signal import Changed
from gs_hooks.ccu._metrics import CcuMetrics
from gs_hooks.ccu._sampler import CcuSampler
from gs_hooks.fleet import (
    Fence,
    FleetCcu,
    FleetConfig,
    FleetError,
    FleetRedis,
    Keys,
    Leadership,
    Membership,
    new_process_id,
)
from gs_hooks.fleet._ccu_leader import FleetCcuLeader
from gs_hooks.fleet._ccu_sink import FleetSink

GAME = "tinyfarm_KR"
KEYS = Keys("t", GAME)


def say(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def config(url: str) -> FleetConfig:
    return FleetConfig(url=url, game=GAME, prefix="t", socket_timeout_s=1.0, block_s=0.3)


async def connect(url: str) -> FleetRedis:
    redis = FleetRedis(config(url))
    while True:
        try:
            await redis.start()
            return redis
        except FleetError:
            await anyio.sleep(0.1)


async def commands() -> Any:
    while True:
        line = await anyio.to_thread.run_sync(sys.stdin.readline)
        if not line:
            return
        yield json.loads(line)


# -- CCU ---------------------------------------------------------------------------------------------------------


async def ccu(url: str, index: int, servers: tuple[str, ...], ccu_url: str) -> None:
    redis = await connect(url)
    pid = new_process_id()
    membership = Membership(redis, KEYS, pid, heartbeat_s=0.2, member_ttl_s=1.5, server_ids=servers)
    lead = Leadership(redis, KEYS, pid, ttl_s=1.5, renew_s=0.5)
    fleet = FleetCcu(redis, KEYS, pid, lead, staleness_s=1.0)
    sink = FleetSink(
        fleet,
        membership,
        staleness_s=1.0,
        clock=SystemClock(),
        on_report=lambda slot, counts, outcomes: say(type="report", slot=slot, counts=counts, outcomes=outcomes),
    )
    counter = SetCounter()
    sampler = CcuSampler(
        game=GAME,
        server_ids=servers,
        counter=counter,
        period_s=60,
        clock=SystemClock(),
        sink=sink,
        metrics=CcuMetrics(),
        changed=Changed(),
    )
    async with httpx.AsyncClient() as http:
        leader = FleetCcuLeader(
            fleet,
            membership,
            CcuConfig(game=GAME, server_ids=servers, url=ccu_url, backoff_base_s=0.1, backoff_max_s=0.5, timeout_s=5),
            url=ccu_url,
            http=http,
            clock=SystemClock(),
            collect_wait_s=3.0,
            poll_s=0.05,
        )

        async def job(fence: Fence) -> None:
            say(type="leader", token=fence.token, os_pid=os.getpid())
            await leader(fence)

        async with anyio.create_task_group() as tg:
            await tg.start(membership.run)
            await tg.start(lead.run, [job])
            await tg.start(sink.run)
            say(type="ready", pid=pid, os_pid=os.getpid())
            async for command in commands():
                if command["op"] == "take":
                    slot = int(command["slot"])
                    for server, n in command["counts"].items():
                        counter.counts[(server, slot)] = int(n)
                    await sampler.take(slot, slot + (time.time() - float(command["at"])))
            tg.cancel_scope.cancel()


# -- logins ------------------------------------------------------------------------------------------------------


async def logins(url: str, index: int, gamebase_url: str, app_id: str, secret: str, policy: str, state: str) -> None:
    env = {
        "GS_HOOKS_STATE": state,
        "GS_HOOKS_SERVER_ID": "s1",
        "GS_HOOKS_GAMEBASE_URL": gamebase_url,
        "GS_HOOKS_GAMEBASE_APP_ID": app_id,
        "GS_HOOKS_GAMEBASE_SECRET_KEY": secret,
        "GS_HOOKS_GAMEBASE_BAN_POLL_S": "0",
        "GS_HOOKS_DUPLICATE_LOGIN": policy,
        "GS_HOOKS_REDIS_URL": url,
        "GS_HOOKS_GAME": GAME,
        "GS_HOOKS_REDIS_PREFIX": "t",
        "GS_HOOKS_FLEET_HEARTBEAT_S": "0.2",
        "GS_HOOKS_FLEET_MEMBER_TTL_S": "2",
        "GS_HOOKS_FLEET_SOCKET_TIMEOUT_S": "1",
        "GS_HOOKS_FLEET_BLOCK_S": "0.3",
        "GS_HOOKS_FLEET_RECHECK_S": "60",
    }
    kicks: list[KickRequest] = []
    hooks = gs_hooks.setup(gs_hooks.Config.from_env(env), on_kick=kicks.append)
    fleet = hooks.fleet
    assert fleet is not None and fleet.logins is not None
    presence = fleet.logins.presence
    async with hooks:
        while not fleet.connected:  # started alone (Redis not answering yet): the parts start once it answers
            await anyio.sleep(0.1)
        say(type="ready", pid=fleet.pid)
        async for command in commands():
            if command["op"] == "logins":
                await login_storm(hooks, command["player"], command["token"], int(command["n"]))
            elif command["op"] == "state":
                player = command["player"]
                owner = await presence.get(player)
                say(
                    type="state",
                    pid=fleet.pid,
                    sessions=[s.id for s in hooks.registry.sessions_of(player)],
                    kicked=[(k.session.id, k.reason) for k in kicks],
                    owner=None if owner is None else owner.encode(),
                )


async def login_storm(hooks: gs_hooks.Hooks, player: str, token: str, n: int) -> None:
    outcomes: list[tuple[int, str]] = []

    async def one() -> None:
        session = hooks.registry.open_nowait()
        try:
            await hooks.login(session, player, token)
            outcomes.append((session.id, "ok"))
        except gs_hooks.LoginRefusedError as exc:
            outcomes.append((session.id, exc.reason))

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(one)
    say(type="logins", outcomes=outcomes)


def main() -> None:
    role, url, index, *rest = sys.argv[1:]
    if role == "ccu":
        anyio.run(ccu, url, int(index), tuple(rest[0].split(",")), rest[1])
    elif role == "logins":
        anyio.run(logins, url, int(index), *rest)
    else:
        raise SystemExit(f"unknown role {role}")


if __name__ == "__main__":
    main()
