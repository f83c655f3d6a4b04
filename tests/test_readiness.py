"""Liveness and readiness (issue 13.9): ``/livez`` says the hooks run; ``/readyz`` says every configured component
works, names the failing ones with their last error (never a secret) and answers 503 until they recover;
``/healthz`` stays as it was (200 while running) and carries the readiness details.

Against the sandbox on loopback with a fake clock: a wrong Gamebase secret key, a collector refusing or
unreachable, and a check of the game's own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import httpx
import pytest

import gs_hooks
from gs_hooks import CcuConfig, ComponentHealth, Config, FakeClock, GamebaseConfig, ListenerConfig, Secret, setup
from gs_hooks.sandbox import Sandbox

pytestmark = pytest.mark.anyio

RIGHT_KEY = "gamebase-right-secret-1"
WRONG_KEY = "gamebase-wrong-secret-2"


@asynccontextmanager
async def gamebase_hooks(clock: FakeClock, **gamebase: Any) -> AsyncIterator[tuple[Sandbox, gs_hooks.Hooks, str]]:
    async with Sandbox.serve(clock=clock, gamebase_secret=RIGHT_KEY) as sb:
        config = Config(
            state_path=":memory:",
            listener=ListenerConfig(listen="127.0.0.1:0"),
            gamebase=GamebaseConfig(url=sb.url, app_id="sandbox-app", secret_key=Secret(WRONG_KEY), **gamebase),
        )
        hooks = setup(config, clock=clock)
        async with hooks:
            assert hooks.listener is not None
            yield sb, hooks, hooks.listener.url


async def probe(url: str) -> dict[str, tuple[int, Any]]:
    async with httpx.AsyncClient(base_url=url) as client:
        out = {}
        for path in ("/livez", "/readyz", "/healthz"):
            r = await client.get(path)
            assert RIGHT_KEY not in r.text and WRONG_KEY not in r.text
            out[path] = (r.status_code, r.json())
    return out


def failing(doc: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["error"] for c in doc["checks"] if not c["ok"]}


async def test_a_wrong_gamebase_secret_key_makes_readyz_503_until_it_is_fixed() -> None:
    clock = FakeClock()
    async with gamebase_hooks(clock, ban_poll_s=60) as (sb, _hooks, url):
        await clock.settle()  # the ban poller's first poll
        answers = await probe(url)
        status, ready = answers["/readyz"]
        assert status == 503 and ready["ready"] is False and ready["status"] == "not ready"
        errors = failing(ready)
        assert set(errors) == {"gamebase-maintenance", "gamebase.bans"} == set(ready["failing"])
        assert "-4010004" in errors["gamebase-maintenance"] and "-4010004" in errors["gamebase.bans"]
        assert "GS_HOOKS_GAMEBASE_SECRET_KEY" in errors["gamebase-maintenance"]  # what to fix, not the value
        assert answers["/livez"] == (200, {"live": True, "status": "live"})
        health_status, health = answers["/healthz"]
        assert health_status == 200 and health["status"] == "ok"  # as before: the process serves
        assert health["ready"] is False and failing(health) == errors

        sb.gamebase.secret_key = Secret(WRONG_KEY)  # the console now holds the key we were given: fixed
        await clock.advance(301)  # both polls come back after their backoff (at most 300 s)
        status, ready = (await probe(url))["/readyz"]
        assert status == 200, ready
        assert ready["ready"] is True and ready["status"] == "ready" and ready["failing"] == []
        assert {c["name"] for c in ready["checks"]} >= {"gamebase-verifier", "gamebase-maintenance", "listener"}


async def test_token_verification_failing_on_the_secret_key_is_not_ready() -> None:
    clock = FakeClock()
    async with gamebase_hooks(clock, maintenance_poll_s=0, ban_poll_s=0) as (sb, hooks, url):
        assert (await probe(url))["/readyz"][0] == 200  # no call yet: nothing known to be wrong
        sb.gamebase.add_member("u1")
        token = sb.gamebase.issue_token("u1")
        session = hooks.registry.open_nowait()
        with pytest.raises(gs_hooks.PlatformError) as caught:
            await hooks.login(session, "u1", token)
        assert caught.value.code == -4010004
        status, ready = (await probe(url))["/readyz"]
        assert status == 503
        assert "-4010004" in failing(ready)["gamebase-verifier"]
        # a refused token is a proper answer from Gamebase: not a readiness problem once the key is right
        sb.gamebase.secret_key = Secret(WRONG_KEY)
        with pytest.raises(gs_hooks.TokenInvalidError):
            await hooks.login(session, "u1", "not-a-token")
        assert (await probe(url))["/readyz"][0] == 200
        await hooks.login(session, "u1", token)
        assert (await probe(url))["/readyz"][0] == 200


@asynccontextmanager
async def sandbox_hooks(clock: FakeClock, **gamebase: Any) -> AsyncIterator[tuple[Sandbox, gs_hooks.Hooks, str]]:
    """Gamebase with the right key (one request per call: no retries)."""
    async with Sandbox.serve(clock=clock, gamebase_secret=RIGHT_KEY) as sb:
        config = Config(
            state_path=":memory:",
            listener=ListenerConfig(listen="127.0.0.1:0"),
            gamebase=GamebaseConfig(
                url=sb.url, app_id="sandbox-app", secret_key=Secret(RIGHT_KEY), retries=0, **gamebase
            ),
        )
        hooks = setup(config, clock=clock)
        async with hooks:
            assert hooks.listener is not None
            sb.gamebase.add_member("u1")
            yield sb, hooks, hooks.listener.url


async def login_fails(hooks: gs_hooks.Hooks, sb: Sandbox) -> None:
    with pytest.raises(gs_hooks.PlatformUnavailableError):
        await hooks.login(hooks.registry.open_nowait(), "u1", sb.gamebase.issue_token("u1"))


async def test_one_gamebase_blip_during_a_login_does_not_make_the_pod_unready() -> None:
    """Review finding 3: one failed verification kept /readyz 503 until a later login succeeded, and a load
    balancer that pulled the pod sends none."""
    clock = FakeClock()
    async with sandbox_hooks(clock, maintenance_poll_s=30, ban_poll_s=60) as (sb, hooks, url):
        sb.faults.add("gamebase.token", "status", status=503, count=1)
        await login_fails(hooks, sb)
        assert (await probe(url))["/readyz"][0] == 200  # one failure is a blip, not an outage
        for _ in range(20):  # ten minutes of polls reaching Gamebase, no login
            await clock.advance(30)
        status, ready = (await probe(url))["/readyz"]
        assert status == 200 and ready["failing"] == [], ready


async def test_verifications_failing_for_a_minute_are_not_ready_until_an_answer_or_a_quiet_minute() -> None:
    clock = FakeClock()
    async with sandbox_hooks(clock, maintenance_poll_s=0, ban_poll_s=0) as (sb, hooks, url):
        rule = sb.faults.add("gamebase.token", "status", status=503)  # Gamebase's token API is down
        for _ in range(2):
            await login_fails(hooks, sb)
            await clock.advance(30)
        assert (await probe(url))["/readyz"][0] == 200  # failing for 30 s: not yet an outage
        await login_fails(hooks, sb)  # failing for a whole minute, nothing answered between
        status, ready = (await probe(url))["/readyz"]
        assert status == 503 and "token verifications have failed for 60 s" in failing(ready)["gamebase-verifier"]
        await clock.advance(59)
        assert (await probe(url))["/readyz"][0] == 503
        await clock.advance(1)  # a minute without a failed verification (no login came): ready again
        assert (await probe(url))["/readyz"][0] == 200
        for _ in range(3):
            await login_fails(hooks, sb)
            await clock.advance(30)
        await login_fails(hooks, sb)
        assert (await probe(url))["/readyz"][0] == 503
        sb.faults.remove(rule.id)
        await hooks.login(hooks.registry.open_nowait(), "u1", sb.gamebase.issue_token("u1"))  # answered
        assert (await probe(url))["/readyz"][0] == 200


async def test_a_configuration_error_seen_by_a_login_clears_when_a_poll_gets_through() -> None:
    """A wrong secret key makes the verifier not ready at once; once the key is fixed, the maintenance poll's
    success through the same client clears it: no login has to come first."""
    clock = FakeClock()
    async with gamebase_hooks(clock, maintenance_poll_s=30, ban_poll_s=0) as (sb, hooks, url):
        sb.gamebase.add_member("u1")
        with pytest.raises(gs_hooks.PlatformError) as caught:
            await hooks.login(hooks.registry.open_nowait(), "u1", sb.gamebase.issue_token("u1"))
        assert caught.value.code == -4010004 and caught.value.setting == "GS_HOOKS_GAMEBASE_SECRET_KEY"
        status, ready = (await probe(url))["/readyz"]
        assert status == 503 and {"gamebase-verifier", "gamebase-maintenance"} <= set(ready["failing"])
        assert "GS_HOOKS_GAMEBASE_SECRET_KEY" in failing(ready)["gamebase-verifier"]
        sb.gamebase.secret_key = Secret(WRONG_KEY)  # the console now holds the key we were given: fixed
        await clock.advance(301)  # the maintenance poll comes back after its backoff and gets through
        status, ready = (await probe(url))["/readyz"]
        assert status == 200, ready


async def advance_until(clock: FakeClock, done: Callable[[], bool]) -> None:
    for _ in range(100):
        if done():
            return
        await clock.advance(10)
    assert done()


@pytest.mark.parametrize("route", ["gamebase.maintenance", "gamebase.bans"])
async def test_a_poll_that_fails_once_is_a_blip_and_one_whose_retry_fails_too_is_not_ready(route: str) -> None:
    clock = FakeClock()
    async with sandbox_hooks(clock, maintenance_poll_s=30, ban_poll_s=30) as (sb, hooks, url):
        name = {"gamebase.maintenance": "gamebase-maintenance", "gamebase.bans": "gamebase.bans"}[route]

        def ok() -> bool:
            return all(c.ok for c in hooks.readiness() if c.name == name)

        once = sb.faults.add(route, "status", status=503, count=1)
        await advance_until(clock, lambda: once.hits == 1)  # a poll failed (Gamebase unreachable)
        assert (await probe(url))["/readyz"][0] == 200  # its retry decides
        twice = sb.faults.add(route, "status", status=503, count=2)
        await advance_until(clock, lambda: twice.hits == 1)  # and its retry failed too
        status, ready = (await probe(url))["/readyz"]
        assert status == 503 and ready["failing"] == [name], ready
        await advance_until(clock, ok)  # the rule is used up: a poll gets through
        assert twice.hits == 2 and (await probe(url))["/readyz"][0] == 200


@asynccontextmanager
async def ccu_hooks(game: str) -> AsyncIterator[tuple[Sandbox, gs_hooks.Hooks, FakeClock, str]]:
    clock = FakeClock()
    async with Sandbox.serve(clock=clock) as sb:
        config = Config(
            state_path=":memory:",
            listener=ListenerConfig(listen="127.0.0.1:0"),
            ccu=CcuConfig(url=sb.urls()["ccu_url"], game=game, backoff_base_s=1, backoff_max_s=10),
        )
        hooks = setup(config, clock=clock)
        async with hooks:
            assert hooks.listener is not None and hooks.ccu is not None
            yield sb, hooks, clock, hooks.listener.url


async def _next_slot(hooks: gs_hooks.Hooks, clock: FakeClock) -> None:
    assert hooks.ccu is not None
    await clock.advance(120)
    await hooks.ccu.wait_idle()


async def test_a_refused_ccu_sample_is_not_ready_until_one_is_delivered() -> None:
    async with ccu_hooks("unregistered_game") as (sb, hooks, clock, url):
        assert (await probe(url))["/readyz"][0] == 200
        await _next_slot(hooks, clock)
        status, ready = (await probe(url))["/readyz"]
        assert status == 503
        assert "302" in failing(ready)["ccu"]
        sb.ccu.set_game_keys({"unregistered_game"})
        assert await hooks.resend_refused() == 1
        await hooks.ccu.wait_idle()
        assert (await probe(url))["/readyz"][0] == 200


async def test_one_sample_refused_for_its_data_is_a_blip_and_refusals_for_a_whole_period_are_not_ready() -> None:
    async with ccu_hooks("sandbox_game") as (sb, hooks, clock, url):
        sb.faults.add("ccu", "result", code=301, count=1)
        await _next_slot(hooks, clock)
        assert (await probe(url))["/readyz"][0] == 200  # one refusal of our data names no setting: not an outage
        rule = sb.faults.add("ccu", "result", code=301)  # from now on every sample is refused
        await _next_slot(hooks, clock)
        status, ready = (await probe(url))["/readyz"]
        assert status == 503 and "301" in failing(ready)["ccu"]
        sb.faults.remove(rule.id)
        await _next_slot(hooks, clock)  # delivered
        assert (await probe(url))["/readyz"][0] == 200


async def test_an_unreachable_collector_is_not_ready_after_a_whole_period() -> None:
    async with ccu_hooks("sandbox_game") as (sb, hooks, clock, url):
        rule = sb.faults.add("ccu", "status", status=503)
        await _next_slot(hooks, clock)  # the sample fails, then retries with backoff
        assert (await probe(url))["/readyz"][0] == 200  # a hiccup shorter than a period is not an outage
        await clock.advance(120)  # a whole period after the first failure (and the next slot fails too)
        await hooks.ccu.wait_idle()
        status, ready = (await probe(url))["/readyz"]
        assert status == 503
        assert "the collector has failed for" in failing(ready)["ccu"] and "HTTP status 503" in failing(ready)["ccu"]
        sb.faults.remove(rule.id)
        await clock.advance(11)  # the next probe (backoff at most 10 s) is delivered
        await hooks.ccu.wait_idle()
        assert (await probe(url))["/readyz"][0] == 200


class GameDatabase:
    """The game's own dependency, reporting through the same protocol."""

    def __init__(self) -> None:
        self.error: str | None = None

    def health(self) -> ComponentHealth:
        return ComponentHealth(name="game-db", ok=self.error is None, error=self.error)


async def test_any_object_with_health_plugs_into_readiness() -> None:
    hooks = setup(Config(state_path=":memory:", listener=ListenerConfig(listen="127.0.0.1:0")))
    db = GameDatabase()
    hooks.add_health(db)
    async with hooks:
        assert hooks.listener is not None
        url = hooks.listener.url
        assert (await probe(url))["/readyz"][0] == 200
        db.error = "connection refused by 10.0.0.5:5432"
        status, ready = (await probe(url))["/readyz"]
        assert status == 503 and ready["failing"] == ["game-db"]
        assert failing(ready) == {"game-db": "connection refused by 10.0.0.5:5432"}
        async with httpx.AsyncClient(base_url=url) as client:
            metrics = (await client.get("/metrics")).text  # from loopback: allowed by default
        assert "gs_hooks_ready 0.0" in metrics
        assert 'gs_hooks_component_ok{name="game-db"} 0.0' in metrics
        assert 'gs_hooks_component_ok{name="listener"} 1.0' in metrics


async def test_livez_and_readyz_follow_the_lifecycle_on_the_asgi_app() -> None:
    hooks = setup(Config(state_path=":memory:"))
    transport = httpx.ASGITransport(app=hooks.asgi_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://game") as client:
        before = await client.get("/livez")
        assert (before.status_code, before.json()) == (503, {"live": False, "status": "new"})
        assert (await client.get("/readyz")).status_code == 503
        async with hooks:
            assert (await client.get("/livez")).json() == {"live": True, "status": "live"}
            ready = (await client.get("/readyz")).json()
            assert ready["ready"] is True
        after = await client.get("/livez")
        assert (after.status_code, after.json()) == (503, {"live": False, "status": "closed"})
        assert (await client.get("/readyz")).json()["status"] == "closed"


class Crasher:
    """A component with a bug: it raises some time after it started."""

    name = "crasher"

    def __init__(self) -> None:
        self.go = anyio.Event()

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await self.go.wait()
        raise RuntimeError("component bug")

    async def aclose(self) -> None:
        pass


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_livez_says_crashed_once_a_component_took_the_task_group_down(anyio_backend: str) -> None:
    hooks = setup(Config(state_path=":memory:"))
    crasher = Crasher()
    hooks.add_component(crasher)
    transport = httpx.ASGITransport(app=hooks.asgi_app())
    seen: list[tuple[int, Any]] = []

    async def crash_and_look() -> None:
        await hooks.start()
        try:
            with anyio.CancelScope(shield=True):  # the crash cancels the task that started the hooks: look first
                async with httpx.AsyncClient(transport=transport, base_url="http://game") as client:
                    r = await client.get("/livez")
                    seen.append((r.status_code, r.json()))
                    crasher.go.set()
                    while hooks.live:
                        await anyio.lowlevel.checkpoint()
                    r = await client.get("/livez")
                    seen.append((r.status_code, r.json()))
                    seen.append(((await client.get("/readyz")).status_code, None))
        finally:
            await hooks.aclose()

    with pytest.raises(BaseExceptionGroup) as caught:
        await crash_and_look()
    assert caught.group_contains(RuntimeError, match="component bug")
    assert seen == [(200, {"live": True, "status": "live"}), (503, {"live": False, "status": "crashed"}), (503, None)]
