"""Hive's web-store profile and the CCU history answered on any process, on a real Redis: the sandbox calls one
process's ``/webstore-profile`` for a player logged in on another (forwarded through that process's inbox, its
callback answers), for nobody's player (the local callback), for a player of a dead process, with a callback that
fails or is late there; the GamePot inquiry and the dashboard's source read the fleet's history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import date, datetime
from pathlib import Path

import anyio
import pytest
from fleet_login_support import KEYS, LoginNode, Trampoline, make_hooks
from fleet_support import RedisServer

from gs_hooks import (
    KST,
    KickRequest,
    Secret,
    SystemClock,
    WebstoreChannel,
    WebstoreCharacter,
    WebstoreProfile,
    WebstoreServer,
)
from gs_hooks.fleet import FleetCcu, FleetConfig, FleetRedis, Leadership, Membership, Owner, PendingSample
from gs_hooks.fleet._history import FleetCcuHistory
from gs_hooks.gamepot import GamePotInquiry, MemoryCcuHistory
from gs_hooks.gamepot._protocol import InquiryDates, decode_answer
from gs_hooks.sandbox import Sandbox

pytestmark = pytest.mark.anyio

PLAYER = "7101"


def profile(name: str) -> WebstoreProfile:
    character = WebstoreCharacter(character_id="A", character_name=name, character_level="7")
    return WebstoreProfile(
        servers=(WebstoreServer(server_id="1", server_name=name, channels=(WebstoreChannel(characters=(character,)),)),)
    )


class Game:
    """One process's game callback: the profile of the players logged in here (None for the others)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.here: set[str] = set()
        self.calls: list[str] = []
        self.behaviour = "answer"

    async def __call__(self, cs_code: str) -> WebstoreProfile | None:
        self.calls.append(cs_code)
        if self.behaviour == "raise":
            raise RuntimeError("the game's database is down")
        if self.behaviour == "slow":
            await anyio.sleep(30)
        return profile(self.name) if cs_code in self.here else None


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox.serve() as sb:
        sb.gamebase.add_member(PLAYER)
        yield sb


@pytest.fixture
async def two(
    fleet_config: FleetConfig, sandbox: Sandbox, tmp_path: Path
) -> AsyncIterator[list[tuple[LoginNode, Game]]]:
    kicks: list[KickRequest] = []
    out = []
    async with AsyncExitStack() as stack:
        for i in range(2):
            game, trampoline = Game(f"proc{i}"), Trampoline()
            hooks = make_hooks(sandbox, tmp_path, f"p{i}", "kick_older", kicks, webstore=trampoline)
            node = LoginNode(fleet_config, f"host/{i}/p{i}", hooks, webstore=game, webstore_timeout_s=1.0)
            trampoline.target = node.webstore
            await stack.enter_async_context(hooks)
            await stack.enter_async_context(node.running())
            out.append((node, game))
        yield out


async def ask(sandbox: Sandbox, node: LoginNode, cs_code: str) -> dict[str, object]:
    assert node.hooks.listener is not None
    report = await sandbox.hive.call_webstore(node.hooks.listener.url + "/webstore-profile", cs_code)
    assert report.violations == [], report.violations
    assert report.body is not None
    return report.body


async def test_a_player_on_another_process_is_answered_by_that_process(
    two: list[tuple[LoginNode, Game]], sandbox: Sandbox
) -> None:
    (a, game_a), (b, game_b) = two
    session = b.hooks.registry.open_nowait()
    await b.hooks.login(session, PLAYER, sandbox.gamebase.issue_token(PLAYER))
    game_b.here.add(PLAYER)
    body = await ask(sandbox, a, PLAYER)  # Hive called process a
    assert body["result_code"] == 200
    assert body["data"][0]["server_name"] == "proc1"  # type: ignore[index]
    assert game_a.calls == [] and game_b.calls == [PLAYER]
    assert a.webstore is not None and a.webstore.forwarded == 1
    body = await ask(sandbox, b, PLAYER)  # Hive called the player's own process: its callback, no forwarding
    assert body["data"][0]["server_name"] == "proc1"  # type: ignore[index]
    assert b.webstore is not None and b.webstore.forwarded == 0


async def test_nobodys_player_and_a_dead_processs_player_get_the_local_callback(
    two: list[tuple[LoginNode, Game]], sandbox: Sandbox
) -> None:
    (a, game_a), (_, game_b) = two
    body = await ask(sandbox, a, "c_nobody")
    assert body["result_code"] == 204 and game_a.calls == ["c_nobody"] and game_b.calls == []
    await a.redis.call("SET", KEYS.owner("c_gone"), Owner("host/9/gone", "1", 1).encode())
    body = await ask(sandbox, a, "c_gone")
    assert body["result_code"] == 204 and game_a.calls == ["c_nobody", "c_gone"]


@pytest.mark.parametrize("behaviour", ["raise", "slow"])
async def test_a_failing_or_late_owner_process_gives_hive_the_usual_500(
    two: list[tuple[LoginNode, Game]], sandbox: Sandbox, behaviour: str
) -> None:
    (a, _), (b, game_b) = two
    session = b.hooks.registry.open_nowait()
    await b.hooks.login(session, PLAYER, sandbox.gamebase.issue_token(PLAYER))
    game_b.behaviour = behaviour
    with anyio.fail_after(10):
        body = await ask(sandbox, a, PLAYER)
    assert body["result_code"] == 500


async def test_the_gamepot_inquiry_and_the_dashboard_read_the_fleets_history(
    fleet_config: FleetConfig, redis_server: RedisServer
) -> None:
    redis = FleetRedis(fleet_config)
    await redis.start()
    try:
        lead = Leadership(redis, KEYS, "host/1/a", ttl_s=30, renew_s=1)
        await Membership(redis, KEYS, "host/1/a", heartbeat_s=1, member_ttl_s=30).beat()
        fleet = FleetCcu(redis, KEYS, "host/1/a", lead, staleness_s=5)
        fence, _ = await lead.acquire_once()
        assert fence is not None
        day = date(2026, 3, 1)
        base = int(datetime(2026, 3, 1, 10, 0, tzinfo=KST).timestamp())
        for i, (server, users) in enumerate([("s1", 30), ("s2", 12), ("s1", 31)]):
            slot_ms = (base + 120 * (i // 2)) * 1000
            await fleet.report(slot_ms, {server: users}, late_ok=True)
            await fleet.settle(fence, slot_ms, [server])
        await fleet.complete(fence, PendingSample("s1", base * 1000, 30), 100)
        await fleet.complete(fence, PendingSample("s2", base * 1000, 12), 101)  # s1 of base+120 still pending
        local = MemoryCcuHistory()
        history = FleetCcuHistory(fleet, fallback=local)
        got = [(s.at - base, s.server_id, s.users, s.state, s.result) for s in await history.samples(base, base + 600)]
        assert got == [
            (0, "s1", 30, "delivered", 100),
            (0, "s2", 12, "delivered", 101),
            (120, "s1", 31, "pending", None),
        ]
        health = await history.delivery_health(["s1", "s2"])
        assert health.backlog_depth == 1
        assert [(s.server_id, s.last_result, s.last_success_at) for s in health.servers] == [
            ("s1", 100, base),
            ("s2", 101, base),
        ]
        inquiry = GamePotInquiry(
            project_id="p", api_key=Secret("k" * 16), history=history, period_s=120, clock=SystemClock()
        )
        rows = {r.time: r.one for r in decode_answer(await inquiry.answer(InquiryDates(day, day, day)))}
        assert (rows["09:59"], rows["10:00"], rows["10:01"], rows["10:02"], rows["10:04"]) == (None, 42, 42, 31, None)
        redis_server.kill()  # Redis unreachable: this process's own spool answers (here, the memory history)
        local.record_nowait(base, "s9", 5)
        assert [(s.server_id, s.users) for s in await history.samples(base, base + 600)] == [("s9", 5)]
    finally:
        await redis.aclose()
