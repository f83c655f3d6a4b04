"""/metrics for every capability: the event counters (logins by outcome, kicks by reason, bans applied and lifted by
source, webhook batches by result code, Gamebase attempts, errors and retries) move when the events happen, over
the real listener against the platform sandbox; every family parses with prometheus_client's parser, follows the
naming conventions, carries no player id, and passes ``promtool check metrics`` where promtool is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import timedelta
from typing import Any

import httpx
import pytest
from ops_support import FAMILIES, HIVE_KEY, World, sample_value, world
from prometheus_client.parser import text_string_to_metric_families

from gs_hooks import (
    KST,
    BannedError,
    DuplicateLoginError,
    InvalidLoginError,
    PlatformUnavailableError,
    SessionsConfig,
    TokenInvalidError,
    _metrics,
)
from gs_hooks._metrics import Tally, Timing, counts_logins

pytestmark = pytest.mark.anyio

PROMTOOL = shutil.which("promtool")


def value(families: dict[str, Any], name: str, **labels: str) -> float:
    family = families.get(name)
    if family is None:
        return 0.0
    try:
        return sample_value(family, **labels)
    except AssertionError:
        return 0.0


# -- the counters themselves -------------------------------------------------------------------------------------


def test_a_tally_bounds_its_labels_and_keeps_the_last_hour_per_minute() -> None:
    now = [600_000.0]
    tally = Tally("t", "help", ("reason",), known={"reason": ("ban", "manual")}, minutes=60, time=lambda: now[0])
    assert tally.totals() == {("ban",): 0, ("manual",): 0}  # known values exported before their first event
    tally.inc("ban", by=3)
    tally.inc("player-7101")  # not a known reason: counted as "other", never as itself
    now[0] += 61 * 60  # an hour and a minute later
    tally.inc("manual")
    cell = tally.cell("ban")
    cell.n += 5
    assert tally.totals() == {("ban",): 8, ("manual",): 1, ("other",): 1}
    _, recent = tally.recent(60)
    assert recent == {("manual",): [0] * 59 + [1], ("ban",): [0] * 59 + [5]}  # the first events fell out

    now[0] -= 3600  # the clock went back (a test's pinned clock let go, or a step): counting goes on from there
    tally.inc("manual")
    _, recent = tally.recent(60)
    assert recent == {("manual",): [0] * 59 + [1]}

    free = Tally("f", "help", ("api", "code"), max_series=2)
    for code in ("1", "2", "3", "4"):
        free.inc("x", code)
    assert free.totals() == {("x", "1"): 1, ("x", "2"): 1, ("other", "other"): 2}


def test_a_timing_is_cumulative_per_bucket() -> None:
    timing = Timing("s", "help", ("api",), buckets=(0.1, 1.0))
    for seconds in (0.05, 0.5, 0.7, 3.0):
        timing.observe(seconds, "a")
    ((labels, (cumulative, total)),) = timing.snapshot().items()
    assert labels == ("a",) and cumulative == [1, 3, 4] and total == pytest.approx(4.25)


async def test_counts_logins_maps_each_refusal_to_its_outcome() -> None:
    @counts_logins
    async def login(exc: BaseException | None) -> int:
        if exc is not None:
            raise exc
        return 1

    cases = [
        (None, "ok"),
        (InvalidLoginError("x", field="user_id"), "invalid_input"),
        (TokenInvalidError("x", code=-4010203), "token_invalid"),
        (BannedError("x", ends_at=None), "banned"),
        (DuplicateLoginError("x"), "duplicate"),
        (PlatformUnavailableError("gamebase", None, "down"), "platform_unavailable"),
        (RuntimeError("bug"), "error"),
    ]
    for exc, outcome in cases:
        before = _metrics.LOGINS.total(outcome)
        if exc is None:
            assert await login(exc) == 1
        else:
            with pytest.raises(type(exc)) as info:
                await login(exc)
            assert info.value is exc
        assert _metrics.LOGINS.total(outcome) == before + 1, outcome


# -- over the real listener, against the sandbox -------------------------------------------------------------------


async def push(w: World, players: list[int]) -> Any:
    now = w.hooks.clock.now().astimezone(KST)
    end = now + timedelta(hours=1)
    fmt = "%Y-%m-%d %H:%M:%S"
    items = [
        {"player_id": p, "status": "B", "start_date": now.strftime(fmt), "end_date": end.strftime(fmt)} for p in players
    ]
    return await w.sandbox.hive.push_suspensions(items)


async def test_logins_kicks_bans_and_webhook_batches_are_counted_where_they_happen() -> None:
    async with world() as w:
        before = await w.metrics()
        s1, _ = await w.login("7101")
        await w.login("7102", server_id="2")
        with pytest.raises(TokenInvalidError):
            await w.login("7103", token="not-a-token")
        with pytest.raises(InvalidLoginError):
            await w.hooks.login(w.hooks.registry.open_nowait(), " bad id", "t")
        await w.login("7101")  # a second login of 7101: the older session is kicked (duplicate_login)
        await w.hooks.kick("7102")  # manual
        await w.hooks.ban("7104")  # api, nobody live
        with pytest.raises(BannedError):
            await w.login("7104")
        assert await w.hooks.unban("7104") == 1
        await w.login("7105")
        report = await push(w, [7101, 7105, 7106])  # hive: two live players kicked (reason ban)
        assert report.ok, report
        async with httpx.AsyncClient(base_url=w.url) as client:
            refused = await client.post(
                w.hooks.config.hive.suspension_path, json={}, headers={"authorization": "Bearer wrong-key-000"}
            )
        assert refused.status_code == 401
        after = await w.metrics()
    assert s1 not in w.hooks.registry

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("gs_hooks_logins", outcome="ok") == 4
    assert delta("gs_hooks_logins", outcome="token_invalid") == 1
    assert delta("gs_hooks_logins", outcome="invalid_input") == 1
    assert delta("gs_hooks_logins", outcome="banned") == 1
    assert delta("gs_hooks_kicks", reason="duplicate_login") == 1
    assert delta("gs_hooks_kicks", reason="manual") == 1
    assert delta("gs_hooks_kicks", reason="ban") == 2
    assert delta("gs_hooks_bans_applied", source="api") == 1
    assert delta("gs_hooks_bans_applied", source="hive") == 3
    assert delta("gs_hooks_bans_lifted", source="api") == 1
    assert delta("gs_hooks_webhook_batches", code="0") == 1
    assert delta("gs_hooks_webhook_batches", code="401") == 1
    assert delta("gs_hooks_webhook_seconds") == 1  # the refused one never reached the handler: not timed
    assert delta("gs_hooks_gamebase_request_seconds", api="verify_token") == 6
    assert delta("gs_hooks_gamebase_errors", api="verify_token", code="-4010203") == 1
    assert _metrics.WEBHOOK.snapshot()["last_error_code"] == "401"


async def test_a_kick_with_a_reason_of_the_games_own_is_counted_as_other() -> None:
    async with world() as w:
        await w.login("8101")
        before = _metrics.KICKS.total("other")
        await w.hooks.kick("8101", "speedhack-8101")  # free text from the game: never a label value of its own
        assert _metrics.KICKS.total("other") == before + 1
        families = await w.metrics()
    reasons = {s.labels["reason"] for s in families["gs_hooks_kicks"].samples}
    assert "speedhack-8101" not in reasons


async def test_gamebase_errors_and_retries_are_counted_by_api_and_code() -> None:
    async with world() as w:
        w.sandbox.faults.add(route="gamebase.token", kind="status", status=503, count=1)
        before = await w.metrics()
        await w.login("9101")  # the first attempt gets 503, the retry works
        w.sandbox.faults.add(route="gamebase.token", kind="status", status=503, count=2)
        with pytest.raises(PlatformUnavailableError):
            await w.login("9102")  # both attempts fail
        after = await w.metrics()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("gs_hooks_gamebase_errors", api="verify_token", code="http_5xx") == 3
    assert delta("gs_hooks_gamebase_retries", api="verify_token", code="http_5xx") == 2
    assert delta("gs_hooks_logins", outcome="platform_unavailable") == 1
    assert delta("gs_hooks_token_verifications") == 2
    assert delta("gs_hooks_token_cache_misses") == 2
    assert _metrics.GAMEBASE.snapshot()["last_error_code"] == "http_5xx"


async def test_a_duplicate_login_refused_by_policy_is_counted() -> None:
    async with world(sessions=SessionsConfig(duplicate_login="refuse_newer")) as w:
        await w.login("9201")
        before = _metrics.LOGINS.total("duplicate")
        with pytest.raises(DuplicateLoginError):
            await w.login("9201")
        assert _metrics.LOGINS.total("duplicate") == before + 1


# -- the exposition ----------------------------------------------------------------------------------------------


async def exposition_after_a_little_of_everything() -> str:
    async with world() as w:
        await w.login("6101")
        w.hooks.registry.open_nowait(server_id="1")  # a connection not logged in
        await w.hooks.ban("6102")
        async with httpx.AsyncClient(base_url=w.url) as client:
            await client.get("/admin/status", headers=w.headers())
            text = (await client.get("/metrics")).text
    return text


async def test_every_family_is_there_typed_and_named_by_the_conventions() -> None:
    text = await exposition_after_a_little_of_everything()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name, kind in FAMILIES.items():
        assert name in families, name
        family = families[name]
        assert family.type == kind, name
        assert family.samples, f"{name} has no sample"
        if kind == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples), name
        if kind == "histogram":
            assert name.endswith("_seconds"), name
    assert sample_value(families["gs_hooks_server_players"], server_id="1") == 1
    assert sample_value(families["gs_hooks_server_sessions"], server_id="1") == 2
    assert sample_value(families["gs_hooks_bans_active"]) >= 1
    build = families["gs_hooks_build_info"].samples[0].labels
    assert build["version"] == _metrics.VERSION and build["backend"] == "asyncio" and build["python"]
    labels = {v for f in families.values() for s in f.samples for v in s.labels.values()}
    assert not labels & {"6101", "6102"}, "a player id is a label value"


@pytest.mark.skipif(PROMTOOL is None, reason="no promtool on PATH (Debian: the prometheus package, see .ci/run)")
async def test_promtool_accepts_the_exposition() -> None:
    assert PROMTOOL is not None
    text = await exposition_after_a_little_of_everything()
    done = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


async def test_a_webhook_key_never_reaches_the_metrics() -> None:
    text = await exposition_after_a_little_of_everything()
    assert HIVE_KEY not in text


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_build_info_names_the_backend_it_runs_on(anyio_backend: str) -> None:
    from gs_hooks import Config, ListenerConfig, setup

    hooks = setup(Config(state_path=":memory:", listener=ListenerConfig(listen="127.0.0.1:0")))
    async with hooks:
        assert hooks.listener is not None
        async with httpx.AsyncClient(base_url=hooks.listener.url) as client:
            text = (await client.get("/metrics")).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    labels = families["gs_hooks_build_info"].samples[0].labels
    assert labels["backend"] == anyio_backend
    test_loop = os.environ.get("GS_HOOKS_TEST_LOOP", "asyncio")  # scripts/test's second pass runs on uvloop
    assert labels["loop"] == ("trio" if anyio_backend == "trio" else test_loop)
