"""What a login storm costs the game's loop, tested by mechanism, not by the clock (issue 17, ``python -m bench.loop``).

In a 10,000-login storm that outpaces Gamebase, thousands of logins wait for their verification at once; whatever
each of them holds, CPython's full collections scan (a 17 ms pause in the bench), and whatever each verification
spends, the game's ticks do not get. Tested here:

- a login waiting for Gamebase holds few objects of ours that the collector tracks, beyond what any task parked
  on a future holds (each waiter awaits its own bare future, no event or coroutine between);
- the Gamebase request path runs no ``isinstance`` against a ``runtime_checkable`` Protocol (~15 µs each, a tenth
  of a verification's CPU: the attempt's outcome was classified so);
- a worker hands the loop back between an answer and its next request: the login it answered runs before the next
  request is made (else one loop step held both, for every worker whose answer came in together: the storm's
  longest steps, twice plain aiohttp's at the 99th percentile);
- waiters of one flight are independent: a cancelled one leaves the others their answer (asyncio and trio).
"""

from __future__ import annotations

import asyncio
import gc
import sys
import typing
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import anyio
import pytest
from gamebase_client_support import Env, Recorder, make_hooks, serve_gamebase

from gs_hooks import TokenInfo
from gs_hooks.gamebase import TokenVerifier

pytestmark = pytest.mark.anyio

WAITERS = 200
OURS_PER_WAITING_LOGIN = 4  # objects of ours per login waiting in the queue: 3.2 measured (12.2 before, see Flight)


@pytest.fixture
async def gb() -> AsyncIterator[Env]:
    async with serve_gamebase() as env:
        yield env


def tracked() -> int:
    gc.collect()
    return len(gc.get_objects())


async def test_a_login_waiting_for_gamebase_holds_few_objects_the_collector_tracks(gb: Env) -> None:
    users = [f"storm-{i}" for i in range(WAITERS + 1)]
    tokens = []
    for user in users:
        gb.sim.add_member(user)
        tokens.append(gb.sim.issue_token(user))
    hooks = make_hooks(gb, Recorder(), verify_concurrency=1)
    loop = asyncio.get_running_loop()
    async with hooks:
        await hooks.verify_token(users[-1], tokens[-1])  # the connection and the session exist from here on

        # Baseline: the same number of tasks, each parked on a future of its own.
        futures: list[asyncio.Future[None]] = []
        results: list[object] = []

        async def parked() -> None:
            future: asyncio.Future[None] = loop.create_future()
            futures.append(future)
            results.append(await future)

        before = tracked()
        async with anyio.create_task_group() as tg:
            for _ in range(WAITERS):
                tg.start_soon(parked)
            await anyio.wait_all_tasks_blocked()
            baseline = (tracked() - before) / WAITERS
            for future in futures:
                future.set_result(None)
        futures.clear()
        results.clear()

        # Ours: logins waiting for Gamebase (one request held in the sandbox, the others queued).
        gb.faults.gate = anyio.Event()

        async def login(i: int) -> None:
            results.append(await hooks.verify_token(users[i], tokens[i]))

        before = tracked()
        async with anyio.create_task_group() as tg:
            for i in range(WAITERS):
                tg.start_soon(login, i)
            await anyio.wait_all_tasks_blocked()
            for _ in range(1000):
                if gb.faults.inside == 1:
                    break
                await anyio.wait_all_tasks_blocked()
            assert gb.faults.inside == 1 and hooks.verifier is not None and hooks.verifier.in_flight == WAITERS
            ours = (tracked() - before) / WAITERS - baseline
            gb.faults.gate.set()
        assert [type(r) for r in results] == [TokenInfo] * WAITERS
    assert ours <= OURS_PER_WAITING_LOGIN, f"{ours:.2f} tracked objects of ours per waiting login"


@contextmanager
def protocol_isinstance_checks() -> Iterator[list[str]]:
    """Where ``isinstance`` against a ``runtime_checkable`` Protocol is called from, within gs_hooks (the caller's
    file and function), while the block runs."""
    check = typing._ProtocolMeta.__instancecheck__.__code__  # type: ignore[attr-defined]
    src = str(Path(__import__("gs_hooks").__file__).parent)
    seen: list[str] = []

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code is check and frame.f_back is not None:
            caller = frame.f_back.f_code
            if caller.co_filename.startswith(src):
                seen.append(f"{Path(caller.co_filename).name}:{caller.co_name}")

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield seen
    finally:
        sys.setprofile(previous)


async def test_a_verification_runs_no_runtime_protocol_isinstance_check(gb: Env) -> None:
    hooks = make_hooks(gb, Recorder())
    async with hooks:
        gb.sim.add_member("warm")
        await hooks.verify_token("warm", gb.sim.issue_token("warm"))
        pairs = []
        for i in range(3):
            gb.sim.add_member(f"p{i}")
            pairs.append((f"p{i}", gb.sim.issue_token(f"p{i}")))
        with protocol_isinstance_checks() as seen:
            for user, token in pairs:
                assert (await hooks.verify_token(user, token)).member.user_id == user
    assert seen == []


async def test_a_worker_lets_the_answered_login_run_before_it_sends_the_next_request(gb: Env) -> None:
    users = ["a", "b", "c"]
    tokens = []
    for user in users:
        gb.sim.add_member(user)
        tokens.append(gb.sim.issue_token(user))
    verifier = TokenVerifier(gb.client(retries=0), clock=gb.clock, concurrency=1)
    requests_seen: dict[str, int] = {}  # per login: how many requests the verifier had made when its answer came

    async def login(i: int) -> None:
        await verifier.verify(users[i], tokens[i])
        requests_seen[users[i]] = verifier.requests

    async with anyio.create_task_group() as host:
        await host.start(verifier.run)
        gb.faults.gate = anyio.Event()
        async with anyio.create_task_group() as tg:
            for i in range(3):
                tg.start_soon(login, i)
                await anyio.wait_all_tasks_blocked()
            for _ in range(1000):
                if gb.faults.inside == 1:
                    break
                await anyio.wait_all_tasks_blocked()
            assert verifier.requests == 1 and verifier.in_flight == 3  # a asked, b and c queued behind the cap
            gb.faults.gate.set()
        host.cancel_scope.cancel()
    assert requests_seen == {"a": 1, "b": 2, "c": 3}


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_a_cancelled_waiter_leaves_the_other_waiters_of_its_flight_their_answer(
    gb: Env, anyio_backend: str
) -> None:
    gb.sim.add_member("u1")
    token = gb.sim.issue_token("u1")
    verifier = TokenVerifier(gb.client(retries=0), clock=gb.clock)
    gb.faults.gate = anyio.Event()
    answers: list[str] = []
    with_scope: list[anyio.CancelScope] = []

    async def waiter(cancelled: bool) -> None:
        with anyio.CancelScope() as scope:
            if cancelled:
                with_scope.append(scope)
            answers.append((await verifier.verify("u1", token)).member.user_id)

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter, False)  # the leader first (trio shuffles the order in which new tasks start)
        for _ in range(1000):
            if gb.faults.inside == 1:
                break
            await anyio.wait_all_tasks_blocked()
        for cancelled in (True, False):  # two followers join its flight
            tg.start_soon(waiter, cancelled)
        await anyio.wait_all_tasks_blocked()
        assert verifier.in_flight == 1 and gb.faults.inside == 1
        with_scope[0].cancel()  # one follower goes away
        await anyio.wait_all_tasks_blocked()
        gb.faults.gate.set()
    assert answers == ["u1", "u1"]
    assert gb.sim.counts["gamebase.token"] == 1
