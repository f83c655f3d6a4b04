"""The Gamebase token verifier under platform faults, against the sandbox over loopback, on a FakeClock.

tests/gamebase covers each code once; here: every kind of outage costs a bounded, jittered number of attempts per
call (and one flight for many concurrent callers), the failure policy holds steadily through a long outage with no
flapping, and the caches stay bounded when a stream of bad tokens arrives.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import anyio
import httpx
import pytest
from faults_support import closed_base_url, drive, fault_hits, gamebase_client, gamebase_requests, sandbox

from gs_hooks import KST, FakeClock, PlatformUnavailableError, TokenInvalidError
from gs_hooks.gamebase import TokenInfo, TokenVerifier
from gs_hooks.sandbox import Sandbox

pytestmark = pytest.mark.anyio

ROUTE = "gamebase.token"
START = datetime(2026, 3, 1, 13, 0, tzinfo=KST)


@pytest.fixture
async def env() -> AsyncIterator[tuple[FakeClock, Sandbox, httpx.AsyncClient]]:
    clock = FakeClock(START)
    async with sandbox(clock) as sb, httpx.AsyncClient() as http:
        yield clock, sb, http


def outage(sb: Sandbox, kind: Any, duration_s: float = 1e9) -> None:
    """Start a Gamebase outage of ``kind`` (a fault spec) on the token route."""
    sb.faults.add(ROUTE, duration_s=duration_s, **kind)


FAULTS: list[Any] = [
    pytest.param({"kind": "drop"}, id="dropped-connections"),
    pytest.param({"kind": "status", "status": 503}, id="http-503"),
    pytest.param({"kind": "status", "status": 500}, id="http-500"),
    pytest.param({"kind": "result", "code": -5000001}, id="result-5000001"),
    pytest.param({"kind": "result", "code": -5000208}, id="result-5000208"),
    # the sandbox holds the answer on its fake clock, which does not move while the request is in flight: only
    # the client's own (real, 0.25 s) timeout ends each attempt
    pytest.param({"kind": "delay", "delay_s": 1e7}, id="slower-than-timeout"),
]


@pytest.mark.parametrize("fault", FAULTS)
async def test_each_outage_kind_costs_retries_plus_one_jittered_attempts_then_fails_closed(
    env: tuple[FakeClock, Sandbox, httpx.AsyncClient], fault: dict[str, Any]
) -> None:
    clock, sb, http = env
    sb.gamebase.add_member("u1")
    token = sb.gamebase.issue_token("u1")
    client = gamebase_client(http, sb.url, clock, retries=3, timeout_s=0.25, backoff_base_s=1.0, backoff_max_s=4.0)
    v = TokenVerifier(client, clock=clock, ttl_s=60.0)
    await drive(clock, lambda: v.verify("u1", token))
    await clock.advance(61)
    before = gamebase_requests(sb, ROUTE)
    outage(sb, fault)
    with pytest.raises(PlatformUnavailableError) as info:
        await drive(clock, lambda: v.verify("u1", token))
    assert token not in str(info.value)
    # exactly 1 + retries attempts reached the sandbox, all answered (or held) by the fault
    assert gamebase_requests(sb, ROUTE) - before == 4
    assert fault_hits(sb, ROUTE) == 4
    # the gaps between attempts follow the jittered exponential backoff on the clock: [d/2, d], d = 1, 2, 4
    times = [hit.at for hit in sb.faults.fired if hit.route == ROUTE]
    for n, (t0, t1) in enumerate(itertools.pairwise(times)):
        d = min(4.0, 1.0 * 2**n)
        assert d / 2 - 1e-9 <= t1 - t0 <= d + 1e-9, (n, t1 - t0)
    # nothing was cached: the platform comes back and the next call asks again and succeeds
    sb.faults.clear()
    assert (await drive(clock, lambda: v.verify("u1", token))).member.user_id == "u1"


async def test_connection_refused_costs_retries_plus_one_attempts(
    env: tuple[FakeClock, Sandbox, httpx.AsyncClient],
) -> None:
    clock, sb, http = env
    sb.gamebase.add_member("u1")
    token = sb.gamebase.issue_token("u1")
    client = gamebase_client(http, sb.url, clock, retries=2)
    v = TokenVerifier(client, clock=clock, ttl_s=60.0)
    await drive(clock, lambda: v.verify("u1", token))
    await clock.advance(61)
    client.base_url = closed_base_url()
    sent = client.requests_sent
    t0 = clock.time()
    with pytest.raises(PlatformUnavailableError) as info:
        await drive(clock, lambda: v.verify("u1", token))
    assert client.requests_sent - sent == 3
    assert info.value.code is None and "gave up after 3 attempts" in str(info.value)
    assert token not in str(info.value)
    # two jittered backoffs on the clock: [0.25, 0.5] + [0.5, 1.0]
    assert 0.75 - 1e-9 <= clock.time() - t0 <= 1.5 + 1e-9
    client.base_url = sb.url
    assert (await drive(clock, lambda: v.verify("u1", token))).member.user_id == "u1"


async def test_two_clients_retry_on_different_schedules(env: tuple[FakeClock, Sandbox, httpx.AsyncClient]) -> None:
    """Jitter: two processes failing together do not retry in lockstep."""
    clock, sb, http = env
    for user in ("a", "b"):
        sb.gamebase.add_member(user)
    tokens = {u: sb.gamebase.issue_token(u) for u in ("a", "b")}
    outage(sb, {"kind": "status", "status": 503})
    verifiers = {
        u: TokenVerifier(gamebase_client(http, sb.url, clock, retries=6, backoff_base_s=2.0, backoff_max_s=60.0))
        for u in ("a", "b")
    }
    # one after the other, each from the same virtual start offset, so the fault log tells the attempts apart
    schedules: dict[str, list[float]] = {}
    for user, v in verifiers.items():
        start = len(sb.faults.fired)
        t0 = clock.time()
        with pytest.raises(PlatformUnavailableError):
            await drive(clock, lambda v=v, user=user: v.verify(user, tokens[user]))
        schedules[user] = [hit.at - t0 for hit in sb.faults.fired[start:]]
    assert len(schedules["a"]) == len(schedules["b"]) == 7
    gaps = {u: [t1 - t0 for t0, t1 in itertools.pairwise(s)] for u, s in schedules.items()}
    assert sum(1 for x, y in zip(gaps["a"], gaps["b"], strict=True) if abs(x - y) > 1e-3) >= 4, gaps


async def test_concurrent_logins_during_an_outage_share_one_bounded_flight(
    env: tuple[FakeClock, Sandbox, httpx.AsyncClient],
) -> None:
    clock, sb, http = env
    sb.gamebase.add_member("u1")
    token = sb.gamebase.issue_token("u1")
    v = TokenVerifier(gamebase_client(http, sb.url, clock, retries=2), clock=clock)
    outage(sb, {"kind": "drop"})
    errors: list[BaseException] = []

    async def storm() -> None:
        async def one() -> None:
            try:
                await v.verify("u1", token)
            except PlatformUnavailableError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            for _ in range(200):
                tg.start_soon(one)

    await drive(clock, storm)
    assert len(errors) == 200
    assert fault_hits(sb, ROUTE) == 3  # one flight: 1 + 2 retries, not 200 × 3


# -- no flapping ------------------------------------------------------------------------------------------------------


async def run_outage(
    clock: FakeClock, v: TokenVerifier, token: str, *, calls: int, every_s: float = 120.0
) -> list[TokenInfo | BaseException]:
    """Call verify every ``every_s`` virtual seconds (from the start of the test); the outcomes, in order."""
    outcomes: list[TokenInfo | BaseException] = []
    for k in range(calls):
        await clock.advance_to(max(clock.time(), START.timestamp() + k * every_s))
        try:
            outcomes.append(await drive(clock, lambda: v.verify("u1", token)))
        except PlatformUnavailableError as exc:
            outcomes.append(exc)
    return outcomes


# (trio: its "all tasks blocked" check is exact, anyio's asyncio one polls every 0.1 s; the code is
# backend-neutral and the short tests above run on asyncio)
@pytest.mark.parametrize("anyio_backend", ["trio"])
@pytest.mark.parametrize(
    "fault", [pytest.param({"kind": "drop"}, id="drop"), pytest.param({"kind": "status", "status": 502}, id="502")]
)
async def test_allow_cached_serves_the_cached_verification_through_a_long_outage(
    env: tuple[FakeClock, Sandbox, httpx.AsyncClient], fault: dict[str, Any], anyio_backend: str
) -> None:
    clock, sb, http = env
    sb.gamebase.add_member("u1")
    token = sb.gamebase.issue_token("u1")
    v = TokenVerifier(gamebase_client(http, sb.url, clock, retries=1), clock=clock, ttl_s=300.0,
                      failure_policy="allow_cached")  # fmt: skip
    first = await drive(clock, lambda: v.verify("u1", token))
    outage(sb, fault, duration_s=3 * 3600)
    outcomes = await run_outage(clock, v, token, calls=90)  # every 2 minutes for 3 hours
    # every call of the three hours got the cached member: not one refusal, before or after the TTL
    assert all(o is first for o in outcomes), [type(o).__name__ for o in outcomes if o is not first][:3]
    # inside the TTL (calls at 0, 2, 4 min) they were cache hits; after it, each call asked once (+1 retry) and
    # fell back on the cache
    assert fault_hits(sb, ROUTE) == 2 * (len(outcomes) - 3)
    # the platform is back: a fresh verification replaces the stale one
    await clock.advance_to(START.timestamp() + 3 * 3600 + 1)
    fresh = await drive(clock, lambda: v.verify("u1", token))
    assert fresh is not first and fresh.member.user_id == "u1"
    assert v.cached_nowait("u1", token) is fresh


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_fail_closed_refuses_steadily_through_a_long_outage_then_recovers(
    env: tuple[FakeClock, Sandbox, httpx.AsyncClient], anyio_backend: str
) -> None:
    clock, sb, http = env
    sb.gamebase.add_member("u1")
    token = sb.gamebase.issue_token("u1")
    v = TokenVerifier(gamebase_client(http, sb.url, clock, retries=1), clock=clock, ttl_s=300.0)
    first = await drive(clock, lambda: v.verify("u1", token))
    outage(sb, {"kind": "result", "code": -5000005}, duration_s=2 * 3600)
    outcomes = await run_outage(clock, v, token, calls=60)  # every 2 minutes for 2 hours
    served = [isinstance(o, TokenInfo) for o in outcomes]
    # the still-valid cache entry serves the first five minutes, then every call is refused: one switch, no flap
    assert served == [True] * 3 + [False] * (len(outcomes) - 3)
    assert all(o is first for o in outcomes[:3])
    assert all(isinstance(o, PlatformUnavailableError) and o.code == -5000005 for o in outcomes[3:])
    assert fault_hits(sb, ROUTE) == 2 * (len(outcomes) - 3)
    # the refusals were never cached: the outage ends and the very next call succeeds
    await clock.advance_to(START.timestamp() + 2 * 3600 + 1)
    assert (await drive(clock, lambda: v.verify("u1", token))).member.user_id == "u1"
    # a definitive refusal after recovery is still specific (the outage did not poison the negative cache)
    sb.gamebase.revoke_token(token)
    v.forget("u1")
    with pytest.raises(TokenInvalidError):
        await drive(clock, lambda: v.verify("u1", token))


# -- bounded memory ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_a_stream_of_bad_tokens_does_not_grow_the_caches_without_bound(
    env: tuple[FakeClock, Sandbox, httpx.AsyncClient], anyio_backend: str
) -> None:
    """An attacker (or a broken client) sends a new invalid token every second for 10 virtual minutes: refusals
    live ``negative_ttl_s`` (5 s), so at most a handful are worth keeping; the caches must not keep all 600."""
    clock, sb, http = env
    v = TokenVerifier(gamebase_client(http, sb.url, clock, retries=0), clock=clock, negative_ttl_s=5.0,
                      max_entries=1000)  # fmt: skip
    sizes: list[int] = []
    for i in range(600):
        with pytest.raises(TokenInvalidError):
            await v.verify(f"user{i % 50}", f"bad-token-{i}")
        await clock.advance(1.0)
        if i % 100 == 99:
            sizes.append(len(v._negative) + sum(len(t) for t in v._by_user.values()))
    assert sb.gamebase.counts[ROUTE] == 600
    # bounded by what is live (negative_ttl_s worth of refusals: 5 or 6 entries and their user index), not by
    # the 600 refusals of the history
    assert max(sizes) <= 2 * 6, sizes
