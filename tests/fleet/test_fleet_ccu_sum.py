"""CCU in fleet mode on a real Redis, with the real sampler, sink, freeze and sender posting to the sandbox
collector: several "processes" (each its own connection and pid) on shared and lone server ids; the sum frozen
and sent once; a late sampler; Redis unreachable for one process (a lone server id goes out directly, a shared
one is kept and sent late but right); Redis losing its data; a new leader's collect wait; a refusal, then the
operator's resend."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import anyio
import httpx
import pytest
from fleet_ccu_support import GAME, KEYS, Node, accepted, date, future_slots, local_reporter, sandbox_kwargs
from fleet_support import RedisServer, TcpProxy, make_config

from gs_hooks.ccu import CcuProblem
from gs_hooks.fleet import Fence, FleetConfig, FleetError
from gs_hooks.sandbox import Sandbox

pytestmark = pytest.mark.anyio


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox.serve(**sandbox_kwargs()) as sb:
        yield sb


@pytest.fixture
async def nodes() -> AsyncIterator[list[Node]]:
    """The test's Nodes, closed at the end whatever happened."""
    made: list[Node] = []
    yield made
    for n in made:
        await n.aclose()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def until(predicate: Callable[[], bool], timeout: float = 15) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.02)


async def lead_until(node: Node, fence: Fence, done: Callable[[], bool]) -> None:
    """Run the leader's job (settle, send) until ``done()`` and its sender is idle."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(node.leader, fence)
        await until(lambda: done() and node.leader.sender is not None and node.leader.sender.idle)
        tg.cancel_scope.cancel()


async def retried(call: Callable[[], Awaitable[object]]) -> None:
    for _ in range(5):
        try:
            await call()
            return
        except FleetError:
            await anyio.sleep(0.05)
    await call()


async def lead(node: Node) -> Fence:
    fence, _ = await node.leadership.acquire_once()
    assert fence is not None
    return fence


async def test_two_processes_on_one_server_id_send_the_sum_once(
    fleet_config: FleetConfig, sandbox: Sandbox, http: httpx.AsyncClient, nodes: list[Node]
) -> None:
    url = sandbox.urls()["ccu_url"]
    a = Node(fleet_config, "host/1/a", ("s1", "s2"), ccu_url=url, http=http)
    b = Node(fleet_config, "host/2/b", ("s1",), ccu_url=url, http=http)
    nodes += [a, b]
    for n in (a, b):
        await n.start()
    slots = future_slots(3)
    for i, slot in enumerate(slots):
        await a.take(slot, {"s1": 10 + i, "s2": 7})
        await b.take(slot, {"s1": 100 + i})
    assert await a.sink.publish() == 3
    fence = await lead(a)
    now_ms, live = await a.membership.members()
    assert await a.leader.settle_once(fence, now_ms, live, now_ms) == 3  # s2 is a's alone: frozen; s1 waits for b
    assert await b.sink.publish() == 3
    now_ms, live = await a.membership.members()
    assert await a.leader.settle_once(fence, now_ms, live, now_ms) == 3
    assert await a.fleet.open_slots() == []
    await lead_until(a, fence, lambda: len(sandbox.ccu.attempts) >= 6)
    got = accepted(sandbox)
    for i, slot in enumerate(slots):
        assert got[("s1", date(slot))] == [110 + 2 * i]
        assert got[("s2", date(slot))] == [7]
    assert sandbox.ccu.duplicate_requests == 0
    assert await a.fleet.pending() == []
    assert await a.fleet.history("s1", slots[0] * 1000, slots[-1] * 1000) == [
        (slot * 1000, 110 + 2 * i, 100) for i, slot in enumerate(slots)
    ]


async def test_a_sampler_that_woke_late_reports_no_count_and_is_not_waited_for(
    fleet_config: FleetConfig, sandbox: Sandbox, http: httpx.AsyncClient, nodes: list[Node]
) -> None:
    url = sandbox.urls()["ccu_url"]
    a = Node(fleet_config, "host/1/a", ("s1",), ccu_url=url, http=http, staleness_s=5)
    b = Node(fleet_config, "host/2/b", ("s1",), ccu_url=url, http=http, staleness_s=5)
    nodes += [a, b]
    for n in (a, b):
        await n.start()
    (slot,) = future_slots(1)
    await a.take(slot, {"s1": 4})
    await b.take(slot, {"s1": 50}, now=slot + 6)  # woke 6 s after the instant: its count is not reported
    await a.sink.publish()
    await b.sink.publish()
    assert b.reports == [(slot, {}, {})]
    fence = await lead(a)
    now_ms, live = await a.membership.members()
    assert await a.leader.settle_once(fence, now_ms, live, now_ms) == 1  # b's ccu_through moved: not waited for
    assert await a.fleet.frozen("s1", slot * 1000) == 4


async def test_redis_unreachable_a_lone_server_id_goes_out_directly_a_shared_one_late_but_right(
    redis_server: RedisServer, sandbox: Sandbox, http: httpx.AsyncClient, tmp_path: Path, nodes: list[Node]
) -> None:
    url = sandbox.urls()["ccu_url"]
    proxy = TcpProxy(redis_server.port)
    local = local_reporter(tmp_path, url, http, ("s1", "s2"))
    a = Node(make_config(proxy.url), "host/1/a", ("s1", "s2"), ccu_url=url, http=http, direct=local.sink)
    b = Node(make_config(redis_server.url), "host/2/b", ("s2",), ccu_url=url, http=http)
    nodes += [a, b]
    slot0, slot1 = future_slots(2)
    async with anyio.create_task_group() as tg:
        await tg.start(local.run)
        for n in (a, b):
            await n.start()
            await tg.start(n.sink.run)
        await a.take(slot0, {"s1": 3, "s2": 5})  # a learns the membership view: s1 is a's alone, s2 is shared
        await b.take(slot0, {"s2": 20})
        await until(lambda: a.sink.written == 1 and b.sink.written == 1)
        proxy.cut()
        await a.take(slot1, {"s1": 4, "s2": 6})
        await b.take(slot1, {"s2": 21})
        await until(lambda: accepted(sandbox).get(("s1", date(slot1))) == [4])  # lone: sent directly
        await until(lambda: b.sink.written == 2)
        fence = await lead(b)
        now_ms, live = await b.membership.members()
        await b.leader.settle_once(fence, now_ms, live, now_ms)
        assert await b.fleet.frozen("s2", slot1 * 1000) is None  # a is live and has not reported: waited for
        assert a.sink.waiting == 1
        proxy.restore()
        await until(lambda: a.sink.waiting == 0)
        assert a.reports[-1] == (slot1, {"s1": 4, "s2": 6}, {"s1": "ok", "s2": "ok"})  # late, yet taken on time
        await lead_until(b, fence, lambda: len(sandbox.ccu.attempts) >= 5)
        tg.cancel_scope.cancel()
    got = accepted(sandbox)
    assert got == {
        ("s1", date(slot0)): [3],
        ("s2", date(slot0)): [25],
        ("s1", date(slot1)): [4],
        ("s2", date(slot1)): [27],
    }
    assert sandbox.ccu.duplicate_requests == 1  # the fleet's s1 of slot1, after the direct one
    assert await b.fleet.history("s1", slot1 * 1000, slot1 * 1000) == [(slot1 * 1000, 4, 101)]
    proxy.close()
    await local.aclose()


async def test_redis_losing_its_data_replays_the_counts_so_a_frozen_unsent_sample_is_not_lost(
    redis_server: RedisServer, sandbox: Sandbox, http: httpx.AsyncClient, nodes: list[Node]
) -> None:
    url = sandbox.urls()["ccu_url"]
    config = make_config(redis_server.url)
    a = Node(config, "host/1/a", ("s1",), ccu_url=url, http=http)
    b = Node(config, "host/2/b", ("s1",), ccu_url=url, http=http)
    nodes += [a, b]
    for n in (a, b):
        await n.start()
    (slot,) = future_slots(1)
    await a.take(slot, {"s1": 8})
    await b.take(slot, {"s1": 9})
    await a.sink.publish()
    await b.sink.publish()
    fence = await lead(a)
    now_ms, live = await a.membership.members()
    assert await a.leader.settle_once(fence, now_ms, live, now_ms) == 1  # frozen, pending, not sent yet
    redis_server.restart()  # no persistence: the frozen value and the pending sample are gone
    for n in (a, b):
        await retried(n.membership.beat)  # the old connections are dead: the fleet's loops retry after a backoff
    assert await a.sink.publish() == 1  # a new epoch: the kept count is written again
    assert await b.sink.publish() == 1
    fence = await lead(a)
    await lead_until(a, fence, lambda: len(sandbox.ccu.attempts) >= 1)
    assert accepted(sandbox) == {("s1", date(slot)): [17]}


async def test_a_leader_gives_the_members_a_whole_collect_wait_after_reaching_redis(
    fleet_config: FleetConfig, sandbox: Sandbox, http: httpx.AsyncClient, nodes: list[Node]
) -> None:
    url = sandbox.urls()["ccu_url"]
    slot_ms = (int(time.time()) // 60 - 1) * 60_000  # a minute ago: its collect wait has passed
    joined = slot_ms - 60_000  # both processes were members before it
    a = Node(fleet_config, "host/1/a", ("s1",), ccu_url=url, http=http, collect_wait_s=10, started_ms=joined)
    b = Node(fleet_config, "host/2/b", ("s1",), ccu_url=url, http=http, collect_wait_s=10, started_ms=joined)
    nodes += [a, b]
    for n in (a, b):
        await n.start()
    assert await a.fleet.report(slot_ms, {"s1": 2}, late_ok=True) == {"s1": "ok"}  # kept while Redis was down
    fence = await lead(a)
    now_ms, live = await a.membership.members()
    assert await a.leader.settle_once(fence, now_ms, live, reached_ms=now_ms) == 0  # b may still write its count
    assert await a.leader.settle_once(fence, now_ms, live, reached_ms=now_ms - 10_000) == 1


async def test_a_refused_sample_waits_for_the_operator_then_goes_once(
    fleet_config: FleetConfig, sandbox: Sandbox, http: httpx.AsyncClient, nodes: list[Node]
) -> None:
    url = sandbox.urls()["ccu_url"]
    a = Node(fleet_config, "host/1/a", ("s1",), ccu_url=url, http=http)
    nodes.append(a)
    problems: list[CcuProblem] = []
    a.leader.on_problem = problems.append
    await a.start()
    sandbox.ccu.set_game_keys(["another_game"])  # the collector does not know our game key: 302
    (slot,) = future_slots(1)
    await a.take(slot, {"s1": 12})
    await a.sink.publish()
    fence = await lead(a)
    await lead_until(a, fence, lambda: len(sandbox.ccu.attempts) >= 1)
    assert [p.code for p in problems] == [302]
    assert await a.fleet.refused() == {f"s1|{slot * 1000}": GAME}
    assert await a.fleet.history("s1", slot * 1000, slot * 1000) == [(slot * 1000, 12, 302)]
    async with anyio.create_task_group() as tg:  # a new term does not send it again under the same game key
        tg.start_soon(a.leader, fence)
        await until(lambda: a.leader.sender is not None and a.leader.sender.idle)
        await anyio.sleep(0.3)
        assert len(sandbox.ccu.attempts) == 1
        sandbox.ccu.set_game_keys([GAME])
        assert await a.leader.resend_refused() == 1
        await until(lambda: len(sandbox.ccu.attempts) == 2)
        tg.cancel_scope.cancel()
    assert accepted(sandbox) == {("s1", date(slot)): [12]}
    assert await a.fleet.pending() == [] and await a.fleet.refused() == {}


async def test_after_redis_lost_its_data_the_leader_waits_for_the_members_to_register_again(
    fleet_config: FleetConfig, sandbox: Sandbox, http: httpx.AsyncClient, nodes: list[Node]
) -> None:
    url = sandbox.urls()["ccu_url"]
    a = Node(fleet_config, "host/1/a", ("s1",), ccu_url=url, http=http)
    b = Node(fleet_config, "host/2/b", ("s1",), ccu_url=url, http=http)
    nodes += [a, b]
    a.leader.rejoin_ms = 1500  # as after a data loss: b has not sent its heartbeat again yet
    await a.start()
    await b.redis.start()
    (slot,) = future_slots(1)
    await a.take(slot, {"s1": 5})
    await a.sink.publish()
    fence = await lead(a)
    async with anyio.create_task_group() as tg:
        tg.start_soon(a.leader, fence)
        await anyio.sleep(0.5)
        assert await a.fleet.frozen("s1", slot * 1000) is None  # every *registered* member reported: not enough
        await b.membership.beat()  # b is back, and writes its count
        await b.take(slot, {"s1": 6})
        await b.sink.publish()
        await until(lambda: len(sandbox.ccu.attempts) == 1)
        tg.cancel_scope.cancel()
    assert accepted(sandbox) == {("s1", date(slot)): [11]}


async def test_a_count_taken_on_time_and_kept_while_redis_was_unreachable_is_accepted_late(
    redis_server: RedisServer, sandbox: Sandbox, http: httpx.AsyncClient, nodes: list[Node]
) -> None:
    url = sandbox.urls()["ccu_url"]
    proxy = TcpProxy(redis_server.port)
    a = Node(make_config(proxy.url), "host/1/a", ("s1",), ccu_url=url, http=http, staleness_s=0.5)
    nodes.append(a)
    await a.start()
    slot = int(time.time())  # a real instant, now: Redis judges staleness on its own clock
    proxy.cut()
    async with anyio.create_task_group() as tg:
        await tg.start(a.sink.run)
        await a.take(slot, {"s1": 9}, now=slot + 0.01)  # on time
        await anyio.sleep(1.0)  # Redis unreachable for longer than the staleness bound
        proxy.restore()
        await until(lambda: a.sink.written == 1)
        tg.cancel_scope.cancel()
    assert a.reports == [(slot, {"s1": 9}, {"s1": "ok"})]
    proxy.close()


async def test_a_process_whose_member_hash_lapsed_after_its_report_is_not_waited_for_again(
    fleet_config: FleetConfig, sandbox: Sandbox, http: httpx.AsyncClient, nodes: list[Node]
) -> None:
    url = sandbox.urls()["ccu_url"]
    a = Node(fleet_config, "host/1/a", ("s1",), ccu_url=url, http=http)
    b = Node(fleet_config, "host/2/b", ("s1",), ccu_url=url, http=http)
    nodes += [a, b]
    for n in (a, b):
        await n.start()
    (slot,) = future_slots(1)
    for n, users in ((a, 3), (b, 4)):
        await n.take(slot, {"s1": users})
        await n.sink.publish()
    await b.redis.call("DEL", KEYS.member(b.pid))  # b's heartbeat came late: its hash lapsed, with its ccu_through
    await b.membership.beat()  # and is written anew, without it
    fence = await lead(a)
    now_ms, live = await a.membership.members()
    assert [m.ccu_through_ms for m in live if m.pid == b.pid] == [0]
    assert await a.leader.settle_once(fence, now_ms, live, now_ms) == 1  # b's count is there: it reported the slot
    assert await a.fleet.frozen("s1", slot * 1000) == 7
