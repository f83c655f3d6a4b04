"""The maintenance watcher driven by a scripted window in the sandbox, under the fake clock."""

from __future__ import annotations

from datetime import timedelta

import anyio
import pytest
from gamebase_client_support import Env, Recorder, make_hooks, run_until

from gs_hooks import MaintenanceDetails, MaintenanceError, MaintenanceState, SessionRegistry
from gs_hooks.gamebase import MaintenanceWatcher
from gs_hooks.sessions._kicker import Kicker
from gs_hooks.sessions._kicks import KickWatch

pytestmark = [pytest.mark.anyio, pytest.mark.members("p0", "p1", "p2")]


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    # Backend-neutral code, tested on both. (Each fake-clock step costs up to 0.1 s of real time on asyncio, where
    # anyio's wait_all_tasks_blocked polls; trio knows exactly when every task is blocked.)
    return str(request.param)


S = MaintenanceState


def transitions(rec: Recorder) -> list[tuple[str, str]]:
    return [(c.previous.value, c.state.value) for c in rec.changes]


async def test_scripted_window_drives_exactly_the_expected_callbacks_warnings_gate_and_kicks(gb: Env) -> None:
    rec = Recorder()
    t0 = gb.clock.time()
    begin, end = t0 + 1200, t0 + 2400
    async with make_hooks(gb, rec, maintenance_poll_s=60) as hooks:
        watcher = hooks.maintenance
        assert isinstance(watcher, MaintenanceWatcher)
        sessions = [hooks.registry.open_nowait() for _ in range(3)]
        for i, s in enumerate(sessions[:2]):
            await hooks.login(s, f"p{i}", gb.sim.issue_token(f"p{i}"))
        await run_until(gb.clock, watcher, t0 + 120)
        assert rec.changes == []
        assert gb.sim.counts["gamebase.maintenance"] == 3  # at t0, t0+60, t0+120

        # announce: seen by the next poll
        gb.sim.set_maintenance(
            gb.clock.now() + timedelta(seconds=1080), gb.clock.now() + timedelta(seconds=2280), "v2 patch", "http://m"
        )
        await run_until(gb.clock, watcher, t0 + 180)
        assert transitions(rec) == [("none", "announced")]
        window = rec.changes[0].details
        assert isinstance(window, MaintenanceDetails)
        assert window.begins_at is not None
        assert window.begins_at.timestamp() == begin
        assert (window.message, window.url, window.type_code) == ("v2 patch", "http://m", "APP")
        assert watcher.state is S.ANNOUNCED
        assert rec.notices == []

        # warnings at 600, 300 and 60 s before begin, to every session
        await run_until(gb.clock, watcher, begin - 1)
        assert sorted((n.session.id, round(n.seconds_left)) for n in rec.notices) == sorted(
            (s.id, lead) for s in sessions for lead in (600, 300, 60)
        )
        assert {n.kind for n in rec.notices} == {"maintenance_warning"}
        assert {n.message for n in rec.notices} == {"v2 patch"}
        assert all(n.details == window for n in rec.notices)
        assert rec.kicks == []
        late = hooks.registry.open_nowait()
        await hooks.login(late, "p2", gb.sim.issue_token("p2"))  # the gate is still open

        # begin: active, everyone kicked, gate closed
        await run_until(gb.clock, watcher, begin)
        assert transitions(rec) == [("none", "announced"), ("announced", "active")]
        assert rec.changes[1].at.timestamp() == begin
        assert sorted(k.session.id for k in rec.kicks) == sorted(s.id for s in [*sessions, late])
        assert {k.reason for k in rec.kicks} == {"maintenance"}
        assert {k.message for k in rec.kicks} == {"v2 patch"}
        assert all(k.details == window for k in rec.kicks)
        assert len(hooks.registry) == 0
        newcomer = hooks.registry.open_nowait()
        with pytest.raises(MaintenanceError, match="v2 patch"):
            await hooks.login(newcomer, "p0", gb.sim.issue_token("p0"))

        # a poll outage in the middle changes nothing
        gb.faults.http_500 = 1_000_000
        await run_until(gb.clock, watcher, begin + 600)
        # polls at +60, then backing off with jitter: waits in [60, 120], [120, 240], then [150, 300]
        assert 3 <= watcher.consecutive_failures <= 5
        assert watcher.last_error is not None
        assert watcher.state is S.ACTIVE
        assert len(rec.changes) == 2
        assert len(rec.kicks) == 4
        with pytest.raises(MaintenanceError):
            await hooks.login(newcomer, "p0", gb.sim.issue_token("p0"))
        gb.faults.http_500 = 0
        await run_until(gb.clock, watcher, begin + 900)  # the backed-off poll comes back
        assert watcher.consecutive_failures == 0
        assert watcher.state is S.ACTIVE
        assert len(rec.changes) == 2

        # end: ended, gate open
        await run_until(gb.clock, watcher, end)
        assert transitions(rec) == [("none", "announced"), ("announced", "active"), ("active", "ended")]
        assert rec.changes[2].at.timestamp() == end
        assert rec.changes[2].details == window
        assert watcher.state is S.ENDED
        await hooks.login(newcomer, "p0", gb.sim.issue_token("p0"))
        await run_until(gb.clock, watcher, end + 600)
        assert len(rec.changes) == 3
        assert len(rec.kicks) == 4
        assert len(rec.notices) == 9


async def test_an_outage_across_the_end_keeps_the_gate_until_a_poll_succeeds(gb: Env) -> None:
    rec = Recorder()
    t0 = gb.clock.time()
    gb.sim.set_maintenance(t0 + 100, t0 + 1000, "short")
    async with make_hooks(gb, rec, maintenance_warn_s=(), maintenance_poll_s=60) as hooks:
        watcher = hooks.maintenance
        assert watcher is not None
        await run_until(gb.clock, watcher, t0 + 500)
        assert watcher.state is S.ACTIVE
        gb.faults.http_500 = 1_000_000
        await run_until(gb.clock, watcher, t0 + 1500)
        assert watcher.state is S.ACTIVE  # the window's end passed, but no poll confirmed it
        assert transitions(rec) == [("none", "announced"), ("announced", "active")]
        gb.faults.http_500 = 0
        await run_until(gb.clock, watcher, t0 + 2500)
        assert transitions(rec) == [("none", "announced"), ("announced", "active"), ("active", "ended")]


async def test_an_outage_before_begin_still_begins_on_time(gb: Env) -> None:
    rec = Recorder()
    t0 = gb.clock.time()
    gb.sim.set_maintenance(t0 + 1000, t0 + 2000, "m")
    async with make_hooks(gb, rec, maintenance_warn_s=(), maintenance_kick=False) as hooks:
        watcher = hooks.maintenance
        assert watcher is not None
        hooks.registry.open_nowait()
        gb.faults.http_500 = 1_000_000
        await run_until(gb.clock, watcher, t0 + 1000)
        assert watcher.state is S.ACTIVE
        assert transitions(rec) == [("none", "announced"), ("announced", "active")]
        assert rec.kicks == []  # kicking is off
        assert len(hooks.registry) == 1


async def test_cancelled_and_moved_windows(gb: Env) -> None:
    rec = Recorder()
    t0 = gb.clock.time()
    w = gb.sim.set_maintenance(t0 + 1000, t0 + 2000, "first")
    async with make_hooks(gb, rec, maintenance_warn_s=(), maintenance_poll_s=60) as hooks:
        watcher = hooks.maintenance
        assert watcher is not None
        assert watcher.state is S.ANNOUNCED
        gb.sim.clear_maintenance(w.window_id)
        gb.sim.set_maintenance(t0 + 1500, t0 + 2500, "moved")
        await run_until(gb.clock, watcher, t0 + 60)
        assert transitions(rec) == [("none", "announced"), ("announced", "announced")]
        assert rec.changes[-1].details.message == "moved"
        gb.sim.clear_maintenance()
        await run_until(gb.clock, watcher, t0 + 120)
        assert transitions(rec)[-1] == ("announced", "none")
        await run_until(gb.clock, watcher, t0 + 1600)
        assert len(rec.changes) == 3  # nothing began


async def test_extended_window_and_launching_poll(gb: Env) -> None:
    rec = Recorder()
    t0 = gb.clock.time()
    w = gb.sim.set_maintenance(t0 - 10, t0 + 600, "now")
    async with make_hooks(
        gb,
        rec,
        launching_os_code="AOS",
        launching_client_version="1.0.0",
        maintenance_warn_s=(),
        maintenance_poll_s=120,
    ) as hooks:
        watcher = hooks.maintenance
        assert watcher is not None
        assert transitions(rec) == [("none", "active")]
        assert gb.sim.counts["gamebase.launching"] == 1
        gb.sim.clear_maintenance(w.window_id)
        gb.sim.set_maintenance(t0 - 10, t0 + 1200, "now")
        await run_until(gb.clock, watcher, t0 + 600)
        assert transitions(rec) == [("none", "active"), ("active", "active")]
        details = rec.changes[-1].details
        assert details.ends_at.timestamp() == t0 + 1200
        assert watcher.state is S.ACTIVE
        await run_until(gb.clock, watcher, t0 + 1200)
        assert transitions(rec)[-1] == ("active", "ended")
        assert gb.sim.counts["gamebase.launching"] == gb.sim.counts["gamebase.maintenance"]


async def test_a_late_announcement_warns_once_for_the_missed_lead_times(gb: Env) -> None:
    rec = Recorder()
    t0 = gb.clock.time()
    async with make_hooks(gb, rec) as hooks:
        watcher = hooks.maintenance
        assert watcher is not None
        hooks.registry.open_nowait()
        gb.sim.set_maintenance(t0 + 230, t0 + 900, "soon")
        await run_until(gb.clock, watcher, t0 + 229)
        assert [round(n.seconds_left) for n in rec.notices] == [200, 60]


async def test_a_watcher_needs_no_hooks_only_a_kicker_and_its_callbacks(gb: Env) -> None:
    """Built from its narrow dependencies (a client, a kicker over a registry, two callbacks), no setup()."""
    rec = Recorder()
    registry = SessionRegistry(time=gb.clock.time)
    kicker = Kicker(registry, KickWatch(gb.clock), on_kick=rec.on_kick)
    watcher = MaintenanceWatcher(
        gb.client(retries=0),
        kicker,
        clock=gb.clock,
        on_maintenance=rec.on_maintenance,
        on_notice=rec.on_notice,
        poll_s=60,
        warn_s=(60.0,),
    )
    sessions = [registry.open_nowait() for _ in range(2)]
    t0 = gb.clock.time()
    gb.sim.set_maintenance(t0 + 300, t0 + 900, "patch")
    async with anyio.create_task_group() as tg:
        await tg.start(watcher.run)
        await run_until(gb.clock, watcher, t0 + 300)
        assert transitions(rec) == [("none", "announced"), ("announced", "active")]
        assert sorted(n.session.id for n in rec.notices) == sorted(s.id for s in sessions)
        assert sorted(k.session.id for k in rec.kicks) == sorted(s.id for s in sessions)
        assert {k.reason for k in rec.kicks} == {"maintenance"} and len(registry) == 0
        assert watcher.gate_error() is not None
        tg.cancel_scope.cancel()
