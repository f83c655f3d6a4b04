"""TokenVerifier against the sandbox's Gamebase: single-flight, caches, cap, failure policy, forget."""

from __future__ import annotations

import anyio
import pytest
from gamebase_client_support import Env, refused_token, serve_gamebase

from gs_hooks import (
    GamebaseConfig,
    MemberNotValidError,
    PlatformError,
    PlatformUnavailableError,
    Secret,
    TokenInvalidError,
)
from gs_hooks.gamebase import TokenVerifier
from gs_hooks.gamebase._slots import Slots

pytestmark = pytest.mark.anyio


def verifier(env: Env, **kwargs: object) -> TokenVerifier:
    client = env.client(retries=int(kwargs.pop("retries", 1)), backoff_base_s=0.0)  # type: ignore[call-overload]
    kwargs.setdefault("clock", env.clock)
    return TokenVerifier(client, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["standalone", "running"])
async def test_10000_concurrent_calls_over_1000_tokens_send_exactly_1000_requests(mode: str) -> None:
    async with serve_gamebase() as gb, anyio.create_task_group() as host:
        users = [f"user{i}" for i in range(1000)]
        tokens = []
        for user in users:
            gb.sim.add_member(user)
            tokens.append(gb.sim.issue_token(user))
        v = verifier(gb)
        if mode == "running":  # as hooks runs it: a few worker tasks make the requests
            await host.start(v.run)
        gb.faults.gate = anyio.Event()  # hold every answer until all 10,000 calls are waiting
        results: dict[int, str] = {}

        async def one(i: int) -> None:
            info = await v.verify(users[i % 1000], tokens[i % 1000])
            results[i] = info.member.user_id

        async with anyio.create_task_group() as tg:
            for i in range(10_000):
                tg.start_soon(one, i)
            await anyio.wait_all_tasks_blocked()
            # tasks waiting for a TCP connect count as blocked: let the connects finish (they reach the sandbox)
            for _ in range(10_000):
                if gb.faults.inside >= v.concurrency:
                    break
                await anyio.wait_all_tasks_blocked()
            assert len(v._flights) == 1000  # every (user, token) is in the air once
            # the cap (the configured default) holds the rest back
            assert gb.faults.max_inside == v.concurrency == GamebaseConfig().verify_concurrency
            gb.faults.gate.set()
        assert gb.sim.counts["gamebase.token"] == 1000
        assert v.requests == 1000
        assert gb.faults.max_inside == v.concurrency
        assert results == {i: users[i % 1000] for i in range(10_000)}
        # a second wave is served from the cache
        for i in range(0, 10_000, 7):
            assert (await v.verify(users[i % 1000], tokens[i % 1000])).member.user_id == users[i % 1000]
        assert gb.sim.counts["gamebase.token"] == 1000
        assert v.cached_nowait(users[5], tokens[5]) is not None
        assert v.cached_nowait(users[5], tokens[6]) is None
        host.cancel_scope.cancel()


async def test_positive_cache_expires_after_its_ttl(gb: Env) -> None:
    gb.sim.add_member("u1")
    token = gb.sim.issue_token("u1")
    v = verifier(gb, ttl_s=300.0)
    await v.verify("u1", token)
    await gb.clock.advance(299)
    await v.verify("u1", Secret(token))
    assert gb.sim.counts["gamebase.token"] == 1
    assert v.hits == 1
    await gb.clock.advance(2)
    await v.verify("u1", token)
    assert gb.sim.counts["gamebase.token"] == 2


@pytest.mark.parametrize(
    ("script", "error", "code", "valid"),
    [
        ("forged", TokenInvalidError, -4010203, None),
        ("expired", TokenInvalidError, -4010208, None),
        ("banned", MemberNotValidError, -4010204, None),
        ("no_member_code", MemberNotValidError, -4040401, "M"),
        ("valid_B", MemberNotValidError, None, "B"),
        ("valid_D", MemberNotValidError, None, "D"),
        ("valid_T", MemberNotValidError, None, "T"),
        ("valid_P", MemberNotValidError, None, "P"),
        ("valid_M", MemberNotValidError, None, "M"),
    ],
)
async def test_refusals_are_specific_and_negatively_cached(
    gb: Env, script: str, error: type[Exception], code: int | None, valid: str | None
) -> None:
    gb.sim.add_member("u1")
    if script == "no_member_code":
        token = gb.sim.issue_token("u1", ttl=100)
        gb.sim.fail_next("gamebase.token", -4040401, n=2)
    elif script.startswith("valid_"):
        token = gb.sim.issue_token("u1", ttl=100)
        gb.faults.valid_as = script[-1]  # Gamebase answers success with member.valid != "Y"
    else:
        _, token = await refused_token(gb, script, ttl=100)
    v = verifier(gb, negative_ttl_s=5.0)
    with pytest.raises(error) as info:
        await v.verify("u1", token)
    assert getattr(info.value, "code", None) == code
    if error is MemberNotValidError:
        assert info.value.valid == valid  # type: ignore[attr-defined]
    assert token not in str(info.value)
    # within the negative TTL: refused again without asking
    await gb.clock.advance(4)
    with pytest.raises(error):
        await v.verify("u1", token)
    assert gb.sim.counts["gamebase.token"] == 1
    # after it: asked again
    await gb.clock.advance(2)
    with pytest.raises(error):
        await v.verify("u1", token)
    assert gb.sim.counts["gamebase.token"] == 2


async def test_configuration_errors_are_raised_and_not_cached(gb: Env) -> None:
    gb.sim.add_member("u1")
    token = gb.sim.issue_token("u1")
    gb.sim.fail_next("gamebase.token", -4010004, n=2)
    v = verifier(gb)
    for _ in range(2):
        with pytest.raises(PlatformError) as info:
            await v.verify("u1", token)
        assert info.value.code == -4010004
        assert not isinstance(info.value, PlatformUnavailableError)
    assert (await v.verify("u1", token)).member.user_id == "u1"
    assert gb.sim.counts["gamebase.token"] == 3


async def test_single_flight_followers_share_the_leaders_refusal(gb: Env) -> None:
    gb.sim.add_member("u1")
    v = verifier(gb)
    gb.faults.gate = anyio.Event()
    errors: list[BaseException] = []

    async def one() -> None:
        try:
            await v.verify("u1", "bad-token-value")
        except TokenInvalidError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(one)
        await anyio.wait_all_tasks_blocked()
        gb.faults.gate.set()
    assert len(errors) == 50
    assert len({id(e) for e in errors}) == 50  # each caller gets its own error object
    assert gb.sim.counts["gamebase.token"] == 1


async def test_fail_closed_refuses_when_gamebase_is_unreachable(gb: Env) -> None:
    gb.sim.add_member("u1")
    token = gb.sim.issue_token("u1")
    v = verifier(gb, ttl_s=60.0, retries=1)
    await v.verify("u1", token)
    await gb.clock.advance(61)
    gb.sim.fail_next("gamebase.token", -5000003, n=2)
    with pytest.raises(PlatformUnavailableError) as info:
        await v.verify("u1", token)
    assert info.value.code == -5000003
    assert gb.sim.counts["gamebase.token"] == 3  # 1 + the failed attempt and its retry
    # not cached: once Gamebase is back, the next call asks and succeeds
    assert (await v.verify("u1", token)).member.user_id == "u1"


async def test_allow_cached_accepts_a_previous_verification_of_the_same_token(gb: Env) -> None:
    gb.sim.add_member("u1")
    gb.sim.add_member("u2")
    token = gb.sim.issue_token("u1")
    other = gb.sim.issue_token("u2")
    v = verifier(gb, ttl_s=60.0, retries=0, failure_policy="allow_cached")
    first = await v.verify("u1", token)
    await gb.clock.advance(3600)
    gb.faults.http_500 = 2
    assert await v.verify("u1", token) is first
    # a token never verified is still refused
    with pytest.raises(PlatformUnavailableError):
        await v.verify("u2", other)
    # a definitive refusal is not overridden by the cache
    gb.sim.revoke_token(token)
    with pytest.raises(TokenInvalidError):
        await v.verify("u1", token)
    assert gb.faults.http_500 == 0


async def test_allow_cached_does_not_cover_configuration_errors(gb: Env) -> None:
    gb.sim.add_member("u1")
    token = gb.sim.issue_token("u1")
    v = verifier(gb, ttl_s=60.0, failure_policy="allow_cached")
    await v.verify("u1", token)
    await gb.clock.advance(61)
    gb.sim.fail_next("gamebase.token", -4010004)
    with pytest.raises(PlatformError) as info:
        await v.verify("u1", token)
    assert info.value.code == -4010004


async def test_forget_drops_a_users_entries(gb: Env) -> None:
    gb.sim.add_member("u1")
    gb.sim.add_member("u2")
    t1 = gb.sim.issue_token("u1")
    t1b = gb.sim.issue_token("u1")
    t2 = gb.sim.issue_token("u2")
    v = verifier(gb)
    for user, token in (("u1", t1), ("u1", t1b), ("u2", t2)):
        await v.verify(user, token)
    with pytest.raises(TokenInvalidError):
        await v.verify("u1", "junk-token-1")
    assert v.forget("u1") == 3
    assert v.cached_nowait("u1", t1) is None
    assert v.cached_nowait("u2", t2) is not None
    await v.verify("u1", t1)
    assert gb.sim.counts["gamebase.token"] == 5
    assert v.forget("nobody") == 0


async def test_forget_during_a_flight_keeps_its_answer_out_of_the_cache(gb: Env) -> None:
    gb.sim.add_member("u1")
    token = gb.sim.issue_token("u1")
    v = verifier(gb)
    gb.faults.gate = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(v.verify, "u1", token)
        await anyio.wait_all_tasks_blocked()
        v.forget("u1")  # e.g. the player was banned meanwhile
        gb.faults.gate.set()
    assert v.cached_nowait("u1", token) is None


async def test_a_cancelled_leader_hands_over_to_a_follower(gb: Env) -> None:
    gb.sim.add_member("u1")
    token = gb.sim.issue_token("u1")
    v = verifier(gb)
    gb.faults.gate = anyio.Event()
    got: list[str] = []
    leader_scope = anyio.CancelScope()

    async def leader() -> None:
        with leader_scope:
            await v.verify("u1", token)

    async def follower() -> None:
        got.append((await v.verify("u1", token)).member.user_id)

    async with anyio.create_task_group() as tg:
        tg.start_soon(leader)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(follower)
        await anyio.wait_all_tasks_blocked()
        assert v.requests == 1
        leader_scope.cancel()
        await anyio.wait_all_tasks_blocked()
        gb.faults.gate.set()
    assert leader_scope.cancelled_caught
    assert got == ["u1"]
    assert v.requests == 2  # the follower asked again itself
    assert v.cached_nowait("u1", token) is not None


async def test_eviction_bounds_the_cache(gb: Env) -> None:
    v = verifier(gb, max_entries=10)
    for i in range(25):
        gb.sim.add_member(f"u{i}")
        await v.verify(f"u{i}", gb.sim.issue_token(f"u{i}"))
    assert len(v._positive) <= 10
    assert sum(len(t) for t in v._by_user.values()) == len(v._positive)


async def test_repr_shows_no_token(gb: Env) -> None:
    gb.sim.add_member("u1")
    token = gb.sim.issue_token("u1")
    v = verifier(gb)
    await v.verify("u1", token)
    assert token not in repr(v)
    assert "cached=1" in repr(v)


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_slots_cap_fifo_and_cancellation() -> None:
    slots = Slots(1)
    order: list[int] = []
    gate = anyio.Event()

    async def user(i: int) -> None:
        async with slots:
            order.append(i)
            await gate.wait()

    async with anyio.create_task_group() as tg:
        for i in range(5):
            tg.start_soon(user, i)
            await anyio.wait_all_tasks_blocked()
        assert (slots.borrowed, slots.waiting) == (1, 4)
        assert order == [0]
        # a waiter cancelled while queued leaves the queue
        with anyio.CancelScope() as scope:
            scope.cancel()
            with pytest.raises(anyio.get_cancelled_exc_class()):
                await slots.acquire()
        assert slots.waiting == 4
        gate.set()
    assert order == [0, 1, 2, 3, 4]  # FIFO
    assert (slots.borrowed, slots.waiting) == (0, 0)
    with pytest.raises(ValueError, match=">= 1"):
        Slots(0)


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_slots_hand_over_a_slot_given_to_a_cancelled_waiter() -> None:
    slots = Slots(1)
    await slots.acquire()
    got: list[str] = []
    waiter_scope = anyio.CancelScope()

    async def cancelled_waiter() -> None:
        with waiter_scope:
            await slots.acquire()
            got.append("waiter")  # pragma: no cover - cancelled first
            slots.release()  # pragma: no cover

    async def next_waiter() -> None:
        async with slots:
            got.append("next")

    async with anyio.create_task_group() as tg:
        tg.start_soon(cancelled_waiter)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(next_waiter)
        await anyio.wait_all_tasks_blocked()
        waiter_scope.cancel()  # the first waiter is being cancelled...
        slots.release()  # ...when the slot is handed to it: it passes the slot on
    assert got == ["next"]
    assert waiter_scope.cancelled_caught
    assert (slots.borrowed, slots.waiting) == (0, 0)


async def test_running_mode_a_cancelled_caller_does_not_cancel_the_request(gb: Env) -> None:
    gb.sim.add_member("u1")
    token = gb.sim.issue_token("u1")
    v = verifier(gb)
    async with anyio.create_task_group() as host:
        await host.start(v.run)
        gb.faults.gate = anyio.Event()
        with anyio.move_on_after(0.05):
            await v.verify("u1", token)  # the caller gives up (e.g. the client disconnected)
        gb.faults.gate.set()
        while v.cached_nowait("u1", token) is None:  # the worker still gets and caches the answer
            await anyio.sleep(0.01)
        assert v.requests == 1
        host.cancel_scope.cancel()


async def test_running_mode_shutdown_hands_queued_requests_back_to_their_callers(gb: Env) -> None:
    for i in range(3):
        gb.sim.add_member(f"u{i}")
    tokens = [gb.sim.issue_token(f"u{i}") for i in range(3)]
    v = verifier(gb, concurrency=1)
    got: list[str] = []

    async def login(i: int) -> None:
        got.append((await v.verify(f"u{i}", tokens[i])).member.user_id)

    gb.faults.gate = anyio.Event()
    async with anyio.create_task_group() as outer:
        async with anyio.create_task_group() as host:
            await host.start(v.run)
            for i in range(3):
                outer.start_soon(login, i)
            await anyio.wait_all_tasks_blocked()
            assert len(v._queue) == 2  # one request in the air, two queued for the single worker
            host.cancel_scope.cancel()  # hooks shutting down the verifier
        assert not v._queue
        gb.faults.gate.set()
    # the abandoned ones asked again themselves; the cancelled in-flight one too
    assert sorted(got) == ["u0", "u1", "u2"]
