"""Delivery against the sandbox's Hive CCU collector over loopback, the reporter driven by a FakeClock.

Each result code of the document has its behaviour here: 100/101 delivered; 300, transport errors, 5xx and
unreadable answers retried with the same date and reqkey; 200–204 and 302 refused, reported, not looped on;
301 reported, not retried.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import anyio
import httpx
import prometheus_client
import pytest
from ccu_helpers import make_reporter, running, step

from gs_hooks import KST, CcuConfig, CcuProblem, Config, FakeClock, SessionRegistry, setup
from gs_hooks._store import Store
from gs_hooks.ccu import CcuMetrics, CcuReporter, CcuSpool, SampleState, encode_request, make_reqkey
from gs_hooks.sandbox import Sandbox

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])]

GAME = "tinyfarm_KR"
START = datetime(2026, 3, 1, 13, 0, 30, tzinfo=KST)
D1 = "2026-03-01 13:02:00"
D2 = "2026-03-01 13:04:00"


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[FakeClock, Sandbox, httpx.AsyncClient]]:
    clock = FakeClock(START)
    async with Sandbox.serve(port=0, clock=clock, game_keys=[GAME]) as sb, httpx.AsyncClient() as http:
        yield clock, sb, http


def attempts_of(sb: Sandbox, server: str, date: str) -> list[tuple[int, str | None, bool]]:
    return [(a.result, a.reqkey, a.injected) for a in sb.ccu.attempts if a.server == server and a.date == date]


def reporter_for(tmp_path: Path, env: tuple[FakeClock, Sandbox, httpx.AsyncClient], **kw: object) -> CcuReporter:
    clock, sb, http = env
    return make_reporter(tmp_path, clock, http, url=sb.urls()["ccu_url"], **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["form", "body"])
async def test_100_delivered_in_either_sending_method(tmp_path: Path, env: tuple, method: str) -> None:
    clock, sb, _ = env
    reg = SessionRegistry(default_server_id="1", time=clock.time)
    for k in range(5):
        reg.bind_player_nowait(reg.open_nowait(server_id="2"), f"p{k}")
    reg.bind_player_nowait(reg.open_nowait(server_id="1"), "q")
    metrics = prometheus_client.CollectorRegistry()
    reporter = reporter_for(
        tmp_path, env, registry=reg, send_method=method, xml_root="ccudata", metrics=CcuMetrics(metrics)
    )
    async with running(reporter):
        await step(clock, reporter, 90)
        saved = [(s.game, s.server, s.date, s.user, s.reqkey, s.method) for s in sb.ccu.samples]
        assert saved == [
            (GAME, "1", D1, 1, make_reqkey(GAME, "1", D1), method),
            (GAME, "2", D1, 5, make_reqkey(GAME, "2", D1), method),
        ] or saved == [
            (GAME, "2", D1, 5, make_reqkey(GAME, "2", D1), method),
            (GAME, "1", D1, 1, make_reqkey(GAME, "1", D1), method),
        ]
        rows = reporter.spool.rows_sync()
        assert [(r.state, r.last_code, r.attempts) for r in rows] == [(SampleState.DELIVERED, 100, 1)] * 2
        assert await reporter.spool.last_success_at("2") == clock.time()
        assert await reporter.spool.backlog_depth() == 0
    assert metrics.get_sample_value("gs_hooks_ccu_users", {"server": "2"}) == 5
    assert metrics.get_sample_value("gs_hooks_ccu_users", {"server": "1"}) == 1
    assert metrics.get_sample_value("gs_hooks_ccu_samples_delivered_total", {"code": "100"}) == 2
    assert metrics.get_sample_value("gs_hooks_ccu_send_seconds_count") == 2


async def test_101_duplicate_counts_as_delivered(tmp_path: Path, env: tuple) -> None:
    clock, sb, http = env
    reporter = reporter_for(tmp_path, env, server_ids=("1",))
    # the collector already holds this slot's sample under the same reqkey (e.g. sent before a crash)
    from gs_hooks.ccu import CcuSample

    early = CcuSample.create(game=GAME, server="1", date=D1, user=0)
    body, ctype = encode_request(early)
    resp = await http.post(sb.urls()["ccu_url"], content=body, headers={"content-type": ctype})
    assert resp.status_code == 200
    async with running(reporter):
        await step(clock, reporter, 90)
        row = reporter.spool.rows_sync()[0]
        assert (row.state, row.last_code, row.attempts) == (SampleState.DELIVERED, 101, 1)
        await step(clock, reporter, 600)
    assert attempts_of(sb, "1", D1) == [(100, early.reqkey, False), (101, early.reqkey, False)]
    assert sb.ccu.duplicate_requests == 1
    assert sb.ccu.duplicates_saved == 0


@pytest.mark.parametrize(
    ("fault", "label"),
    [
        ({"kind": "result", "code": 300}, "300"),
        ({"kind": "drop"}, "transport"),
        ({"kind": "status", "status": 503}, "http_503"),
        ({"kind": "status", "status": 500}, "http_500"),
        ({"kind": "result", "code": 999}, "999"),  # a code the document does not list: resending is harmless
    ],
)
async def test_retryable_failures_are_resent_with_the_same_date_and_reqkey(
    tmp_path: Path, env: tuple, fault: dict[str, object], label: str
) -> None:
    clock, sb, _ = env
    registry = prometheus_client.CollectorRegistry()
    reporter = reporter_for(tmp_path, env, server_ids=("1",), metrics=CcuMetrics(registry))
    sb.faults.add("ccu", count=2, **fault)  # type: ignore[arg-type]
    async with running(reporter):
        await step(clock, reporter, 90)
        row = reporter.spool.rows_sync()[0]
        assert (row.state, row.attempts) == (SampleState.PENDING, 1)
        assert row.next_attempt_at > clock.time()
        await step(clock, reporter, 600)  # two failures then success, well inside the backoff
        row = reporter.spool.rows_sync()[0]
        assert (row.state, row.last_code, row.attempts) == (SampleState.DELIVERED, 100, 3)
        key = make_reqkey(GAME, "1", D1)
        saved = [(s.date, s.reqkey) for s in sb.ccu.samples if s.server == "1"]
        assert saved[0] == (D1, key)
        if fault["kind"] == "result":  # the collector logged all three, all with the original date and key
            c = fault["code"]
            assert attempts_of(sb, "1", D1) == [(c, key, True), (c, key, True), (100, key, False)]
    assert registry.get_sample_value("gs_hooks_ccu_samples_failed_total", {"code": label}) == 2
    assert registry.get_sample_value("gs_hooks_ccu_samples_delivered_total", {"code": "100"}) >= 1
    assert sb.ccu.duplicates_saved == 0


async def test_unreadable_answer_is_retried(tmp_path: Path, env: tuple) -> None:
    clock, sb, _ = env
    reporter = reporter_for(tmp_path, env, server_ids=("1",))
    # a wrong URL that answers 200 with something that is not the collector's base64 XML (a JSON page)
    reporter.url = sb.url + "/_sandbox/reset"
    async with running(reporter):
        await step(clock, reporter, 90)
        row = reporter.spool.rows_sync()[0]
        assert (row.state, row.attempts, row.last_code) == (SampleState.PENDING, 1, None)
        assert "no result element" in row.last_error or "base64" in row.last_error
        reporter.url = sb.urls()["ccu_url"]
        await step(clock, reporter, 300)
        row = reporter.spool.rows_sync()[0]
        assert (row.state, row.last_code, row.reqkey, row.date) == (
            SampleState.DELIVERED,
            100,
            make_reqkey(GAME, "1", D1),
            D1,
        )


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (200, "our_fault"),
        (201, "our_fault"),
        (202, "our_fault"),
        (203, "our_fault"),
        (204, "our_fault"),
        (302, "config_fault"),
    ],
)
async def test_refusals_are_kept_reported_and_not_looped(
    tmp_path: Path, env: tuple, code: int, outcome: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock, sb, _ = env
    problems: list[CcuProblem] = []
    registry = prometheus_client.CollectorRegistry()
    reporter = reporter_for(tmp_path, env, server_ids=("1",), on_problem=problems.append, metrics=CcuMetrics(registry))
    sb.faults.add("ccu", "result", code=code, count=1)
    async with running(reporter):
        await step(clock, reporter, 90)
        await step(clock, reporter, 1200)  # ten more slots: the refused one is never sent again
        rows = reporter.spool.rows_sync()
        assert (rows[0].date, rows[0].state, rows[0].last_code, rows[0].attempts) == (
            D1,
            SampleState.REFUSED,
            code,
            1,
        )
        assert all(r.state is SampleState.DELIVERED for r in rows[1:]) and len(rows) == 11
    key = make_reqkey(GAME, "1", D1)
    assert attempts_of(sb, "1", D1) == [(code, key, True)]
    assert [(p.server, p.date, p.code, p.outcome, p.reqkey) for p in problems] == [("1", D1, code, outcome, key)]
    assert "hooks.resend_refused()" in problems[0].message or "GS_HOOKS_GAME" in problems[0].message
    assert any(r.levelname == "ERROR" and str(code) in r.getMessage() for r in caplog.records)
    assert registry.get_sample_value("gs_hooks_ccu_samples_failed_total", {"code": str(code)}) == 1


async def test_real_302_then_operator_resend_after_the_key_is_registered(tmp_path: Path, env: tuple) -> None:
    clock, sb, _ = env
    sb.ccu.set_game_keys(["other_game"])
    problems: list[CcuProblem] = []
    reporter = reporter_for(tmp_path, env, on_problem=problems.append)
    async with running(reporter):
        await step(clock, reporter, 90 + 120)
        assert {(r.state, r.last_code) for r in reporter.spool.rows_sync()} == {(SampleState.REFUSED, 302)}
        assert len(problems) == 4 and {p.outcome for p in problems} == {"config_fault"}
        sb.ccu.set_game_keys([GAME])
        assert await reporter.resend_refused() == 4
        await step(clock, reporter, 0)
        assert {(r.state, r.last_code) for r in reporter.spool.rows_sync()} == {(SampleState.DELIVERED, 100)}
    assert sorted((s.server, s.date) for s in sb.ccu.samples) == [("1", D1), ("1", D2), ("2", D1), ("2", D2)]


async def test_changed_game_key_resends_refused_rows_at_the_next_start(tmp_path: Path, env: tuple) -> None:
    clock, sb, _ = env
    wrong = reporter_for(tmp_path, env, server_ids=("1",), game="tinyfarm_JP")
    async with running(wrong):
        await step(clock, wrong, 90)
    right = reporter_for(tmp_path, env, server_ids=("1",))
    async with running(right):
        await step(clock, right, 0)
        row = right.spool.rows_sync()[0]
        assert (row.state, row.game, row.reqkey) == (SampleState.DELIVERED, GAME, make_reqkey(GAME, "1", D1))
    assert [(s.game, s.date) for s in sb.ccu.samples] == [(GAME, D1)]


async def test_real_301_sum_check_is_reported_and_not_retried(tmp_path: Path, env: tuple) -> None:
    clock, sb, _ = env
    reg = SessionRegistry(default_server_id="1", time=clock.time)
    reg.bind_player_nowait(reg.open_nowait(server_id="2"), "alice")
    problems: list[CcuProblem] = []
    # one send at a time, oldest first by server id: server 1 (0 users) is saved, then server 2 (1 user) makes
    # the sum over servers equal to server 2 alone: the collector's 301
    reporter = reporter_for(tmp_path, env, registry=reg, max_inflight=1, on_problem=problems.append)
    async with running(reporter):
        await step(clock, reporter, 90)
        await step(clock, reporter, 600)
        two = reporter.spool.get_sync("2", round(datetime(2026, 3, 1, 13, 2, tzinfo=KST).timestamp()))
        assert two is not None and (two.state, two.last_code, two.attempts) == (SampleState.REFUSED, 301, 1)
    assert [(p.server, p.code, p.outcome) for p in problems if p.date == D1] == [("2", 301, "our_fault")]
    assert [a.result for a in sb.ccu.attempts if a.server == "2" and a.date == D1] == [301]


async def test_real_202_for_a_date_off_the_collectors_grid(tmp_path: Path, env: tuple) -> None:
    clock, sb, _ = env
    problems: list[CcuProblem] = []
    # test-only 60 s grid against a collector on the 120 s grid: odd minutes are a wrong format
    reporter = reporter_for(tmp_path, env, server_ids=("1",), _grid_period_s=60, on_problem=problems.append)
    async with running(reporter):
        await step(clock, reporter, 90)  # 13:01 and 13:02
    assert [(p.date, p.code) for p in problems] == [("2026-03-01 13:01:00", 202)]
    assert [s.date for s in sb.ccu.samples] == [D1]


async def test_mirror_gets_a_copy_and_its_failures_never_delay_the_main_delivery(tmp_path: Path, env: tuple) -> None:
    clock, sb, _ = env
    async with Sandbox.serve(port=0, clock=clock, game_keys=[GAME]) as mirror:
        reporter = reporter_for(tmp_path, env, mirror_url=mirror.urls()["ccu_url"])
        async with running(reporter):
            await step(clock, reporter, 90)
            assert sorted(s.reqkey for s in mirror.ccu.samples) == sorted(s.reqkey for s in sb.ccu.samples)
            mirror.faults.add("ccu", "drop")
            mirror.faults.add("ccu", "result", code=300)
            await step(clock, reporter, 120)
            rows = reporter.spool.rows_sync()
            assert [(r.date, r.state, r.attempts) for r in rows if r.date == D2] == [
                (D2, SampleState.DELIVERED, 1),
                (D2, SampleState.DELIVERED, 1),
            ]
    assert len(mirror.ccu.samples) == 2  # the mirror's failures were not retried either


async def test_shutdown_leaves_an_unfinished_send_pending_and_the_next_start_resumes_it(
    tmp_path: Path, env: tuple
) -> None:
    clock, sb, _ = env
    # the collector stalls (on its fake clock) longer than the shutdown grace
    sb.faults.add("ccu", "delay", delay_s=3600, count=1)
    reporter = reporter_for(tmp_path, env, server_ids=("1",))
    reporter.shutdown_grace_s = 0.05
    async with anyio.create_task_group() as tg:
        await tg.start(reporter.run)
        await clock.advance(90)
        with anyio.fail_after(10):
            while not reporter.sender.in_flight:
                await anyio.sleep(0.005)
        await reporter.aclose()
    second = reporter_for(tmp_path, env, server_ids=("1",))
    async with running(second):
        row = second.spool.rows_sync()[0]
        assert (row.date, row.state, row.attempts) == (D1, SampleState.PENDING, 0)
        await step(clock, second, 0)
        row = second.spool.rows_sync()[0]
        assert (row.state, row.last_code) == (SampleState.DELIVERED, 100)
    assert [s.date for s in sb.ccu.samples] == [D1]
    assert sb.ccu.duplicates_saved == 0


async def test_setup_wires_the_reporter_web_mode_and_the_problem_callback(tmp_path: Path, env: tuple) -> None:
    clock, sb, http = env
    problems: list[CcuProblem] = []
    config = Config(
        state_path=str(tmp_path / "state.sqlite3"),
        ccu=CcuConfig(url=sb.urls()["ccu_url"], game=GAME, server_ids=("1", "2"), count_mode="web", max_inflight=1),
    )
    hooks = setup(config, clock=clock, http_client=http, on_ccu_problem=problems.append)
    assert isinstance(hooks.ccu, CcuReporter) and hooks.ccu in hooks.components
    async with hooks:
        await clock.advance(1)
        hooks.saw_user("alice", "1")
        hooks.saw_user("bob")
        hooks.saw_user("alice", "1")
        session = hooks.registry.open_nowait(server_id="2")
        hooks.bind_player(session, "carol")  # a login counts as a request (registry observer)
        with pytest.raises(ValueError, match="not reported"):
            hooks.saw_user("dave", "9")
        sb.faults.add("ccu", "result", code=201, count=1)
        await step(clock, hooks.ccu, 89)
        assert sorted((s.server, s.user) for s in sb.ccu.samples) == [("2", 1)]
        assert [(p.server, p.code) for p in problems] == [("1", 201)]
        assert await hooks.resend_refused() == 1
        await step(clock, hooks.ccu, 0)
        assert sorted((s.server, s.date, s.user) for s in sb.ccu.samples) == [("1", D1, 2), ("2", D1, 1)]
    assert hooks.ccu.spool.store.health().error == "closed"  # the reporter closed its own spool


async def test_a_refusal_during_an_outage_ends_probe_mode(tmp_path: Path, env: tuple) -> None:
    clock, sb, _ = env
    reporter = reporter_for(tmp_path, env, server_ids=("1",), backoff_base_s=2.0)
    sb.faults.add("ccu", "drop", count=3)
    sb.faults.add("ccu", "result", code=204, count=1)  # the collector is back, and refuses the probe
    async with running(reporter):
        await step(clock, reporter, 90 + 100)  # 13:03:40: the 13:02 sample failed three times, then was refused
        rows = reporter.spool.rows_sync()
        assert [(r.date, r.state, r.attempts) for r in rows] == [(D1, SampleState.REFUSED, 4)]
        # a refusal is a proper answer: the collector is up, so no more probing with backoff
        assert not reporter.sender.failing
        await step(clock, reporter, 20)
        row = reporter.spool.get_sync("1", round(datetime(2026, 3, 1, 13, 4, tzinfo=KST).timestamp()))
        assert row is not None and (row.state, row.attempts) == (SampleState.DELIVERED, 1)


async def test_shutdown_lets_a_send_that_answers_within_the_grace_finish(tmp_path: Path) -> None:
    clock = FakeClock(START)
    # a collector on the real clock that takes 1 s to answer; the grace is 2 s. (Not shorter: settling the fake
    # clock on asyncio polls in 100 ms steps, so a quick answer could land before advance() returns.)
    async with Sandbox.serve(port=0, game_keys=[GAME]) as sb, httpx.AsyncClient() as http:
        sb.faults.add("ccu", "delay", delay_s=1.0, count=1)
        reporter = make_reporter(tmp_path, clock, http, url=sb.urls()["ccu_url"], server_ids=("1",))
        async with anyio.create_task_group() as tg:
            await tg.start(reporter.run)
            await clock.advance(90)
            with anyio.fail_after(10):
                while not reporter.sender.in_flight:
                    await anyio.sleep(0.005)
            await reporter.aclose()
        spool = CcuSpool(Store(str(tmp_path / "spool.sqlite3")))
        rows = spool.rows_sync()
        spool.store.close()
    assert [(r.date, r.state, r.last_code) for r in rows] == [(D1, SampleState.DELIVERED, 100)]
    assert [s.date for s in sb.ccu.samples] == [D1]
