"""The Hooks object: lifecycle (components started, flushed in reverse order, then cancelled) and kicks."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import msgspec
import pytest

import gs_hooks
from gs_hooks import ClosedError, DuplicateLoginError, Hooks, KickRequest, Session, SessionEvent
from kick_support import FakeConnection

pytestmark = pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])


class Recorder:
    """A tiny component that logs what happens to it into a shared journal."""

    def __init__(self, name: str, journal: list[str], *, fail_flush: bool = False) -> None:
        self.name = name
        self.journal = journal
        self.fail_flush = fail_flush

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        self.journal.append(f"{self.name} started")
        task_status.started()
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            self.journal.append(f"{self.name} cancelled")
            raise

    async def aclose(self) -> None:
        self.journal.append(f"{self.name} flushed")
        if self.fail_flush:
            raise RuntimeError("flush failed")


class FailsToStart:
    name = "broken"

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        raise OSError("port in use")

    async def aclose(self) -> None:  # pragma: no cover - never started
        raise AssertionError("not started, must not be flushed")


def _hooks(**kwargs: Any) -> Hooks:
    duplicate_login = kwargs.pop("duplicate_login", "kick_older")
    config = gs_hooks.Config(sessions=gs_hooks.SessionsConfig(server_id="s1", duplicate_login=duplicate_login))
    return gs_hooks.setup(config, **kwargs)


# -- lifecycle ---------------------------------------------------------------------------------------------------


async def test_async_with_starts_then_flushes_in_reverse_order_then_cancels(anyio_backend: str) -> None:
    journal: list[str] = []
    hooks = _hooks()
    builtin = [c.name for c in hooks.components]  # always-on parts (the ban book's timer)
    for name in ("a", "b", "c"):
        hooks.add_component(Recorder(name, journal))
    assert [c.name for c in hooks.components] == [*builtin, "a", "b", "c"]
    async with hooks as entered:
        assert entered is hooks and hooks.running
        assert journal == ["a started", "b started", "c started"]
        with pytest.raises(RuntimeError, match="before start"):
            hooks.add_component(Recorder("late", journal))
    assert not hooks.running
    assert journal[3:6] == ["c flushed", "b flushed", "a flushed"]
    assert sorted(journal[6:]) == ["a cancelled", "b cancelled", "c cancelled"]
    assert "closed" in repr(hooks)


async def test_start_and_aclose_without_async_with(anyio_backend: str) -> None:
    journal: list[str] = []
    hooks = _hooks()
    hooks.add_component(Recorder("only", journal))
    await hooks.start()
    assert hooks.running and journal == ["only started"]
    with pytest.raises(RuntimeError, match="cannot start"):
        await hooks.start()
    await hooks.aclose()
    assert journal == ["only started", "only flushed", "only cancelled"]
    await hooks.aclose()  # idempotent
    assert journal == ["only started", "only flushed", "only cancelled"]


async def test_a_failing_flush_is_logged_and_the_others_still_flush(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    journal: list[str] = []
    hooks = _hooks()
    hooks.add_component(Recorder("a", journal))
    hooks.add_component(Recorder("b", journal, fail_flush=True))
    with caplog.at_level(logging.ERROR, logger="gs_hooks"):
        async with hooks:
            pass
    assert journal[2:4] == ["b flushed", "a flushed"]
    assert sorted(journal[4:]) == ["a cancelled", "b cancelled"]
    assert any("b failed to flush" in r.getMessage() for r in caplog.records)


async def test_a_component_failing_to_start_stops_the_others(anyio_backend: str) -> None:
    journal: list[str] = []
    hooks = _hooks()
    hooks.add_component(Recorder("a", journal))
    hooks.add_component(FailsToStart())
    with pytest.raises(OSError, match="port in use"):
        await hooks.start()
    assert journal == ["a started", "a cancelled"]
    assert not hooks.running
    await hooks.aclose()


async def test_closing_unstarted_hooks_is_allowed(anyio_backend: str) -> None:
    hooks = _hooks()
    await hooks.aclose()
    assert not hooks.running
    with pytest.raises(RuntimeError, match="cannot start"):
        await hooks.start()
    # what needs open hooks says they are closed
    with pytest.raises(ClosedError):
        await hooks.ban("p1")
    with pytest.raises(ClosedError):
        await hooks.unban("p1")
    with pytest.raises(ClosedError):
        await hooks.login(hooks.registry.open_nowait(), "p1", "token")


# -- kicks -------------------------------------------------------------------------------------------------------


async def test_on_kick_receives_a_frozen_request_after_removal(anyio_backend: str) -> None:
    received: list[KickRequest] = []
    hooks = _hooks()

    async def on_kick(request: KickRequest) -> None:
        assert request.session not in hooks.registry  # removed before the game is told
        received.append(request)

    hooks.on_kick = on_kick
    session = hooks.registry.open_nowait()
    hooks.bind_player(session, "p1")
    assert await hooks.kick(session, "ban", message="bye", details={"until": 1}) == 1
    (request,) = received
    assert (request.session, request.reason, request.message, request.details) == (session, "ban", "bye", {"until": 1})
    with pytest.raises(AttributeError):
        request.reason = "other"  # type: ignore[misc]
    assert msgspec.structs.asdict(request)["reason"] == "ban"
    assert len(hooks.registry) == 0 and hooks.registry.count_players("s1") == 0


async def test_second_kick_is_a_no_op(anyio_backend: str) -> None:
    received: list[KickRequest] = []
    hooks = _hooks(on_kick=received.append)  # a sync callback works too
    session = hooks.registry.open_nowait()
    assert await hooks.kick(session) == 1
    assert await hooks.kick(session) == 0
    assert len(received) == 1


async def test_kick_by_player_id_kicks_every_session_of_the_player(anyio_backend: str) -> None:
    received: list[KickRequest] = []
    hooks = _hooks(on_kick=received.append, duplicate_login="allow")
    mine = [hooks.registry.open_nowait() for _ in range(2)]
    other = hooks.registry.open_nowait()
    for s in mine:
        hooks.bind_player(s, "p1")
    hooks.bind_player(other, "p2")
    assert await hooks.kick("p1", "maintenance") == 2
    assert {r.session.id for r in received} == {s.id for s in mine}
    assert {r.reason for r in received} == {"maintenance"}
    assert list(hooks.registry) == [other] and hooks.registry.count_players("s1") == 1
    assert await hooks.kick("p1") == 0 and await hooks.kick("nobody") == 0


async def test_a_raising_on_kick_is_logged_and_the_connection_still_closed(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    closed: list[int] = []

    def on_kick(request: KickRequest) -> None:
        raise RuntimeError("game bug in on_kick")

    hooks = _hooks(on_kick=on_kick)
    session = hooks.registry.open_nowait(connection=FakeConnection(lambda: closed.append(1)))
    with caplog.at_level(logging.ERROR, logger="gs_hooks"):
        assert await hooks.kick(session) == 1
    assert session not in hooks.registry and len(hooks.registry) == 0
    assert closed == [1]  # the default kick ran so no untracked connection stays open
    assert any("on_kick" in r.getMessage() for r in caplog.records)
    assert await hooks.kick(session) == 0 and closed == [1]


async def test_default_kick_closes_the_connection_without_awaiting(anyio_backend: str) -> None:
    closed: list[str] = []
    hooks = _hooks()
    a = hooks.registry.open_nowait(connection=FakeConnection(lambda: closed.append("a")))
    b = hooks.registry.open_nowait(connection=FakeConnection(lambda: closed.append("b")))
    c = hooks.registry.open_nowait()  # no connection: only removed
    assert await hooks.kick(a) + await hooks.kick(b) + await hooks.kick(c) == 3
    assert closed == ["a", "b"] and len(hooks.registry) == 0
    # the engine's sync path: the default kick closed them with no coroutine to await
    d = hooks.registry.open_nowait(connection=FakeConnection(lambda: closed.append("d")))
    assert hooks.kicker.kick_nowait((d,), "manual") == 1 and closed[-1] == "d"


async def test_a_raising_connection_close_is_logged(anyio_backend: str, caplog: pytest.LogCaptureFixture) -> None:
    hooks = _hooks()
    session = hooks.registry.open_nowait(connection=FakeConnection(fail=OSError("already gone")))
    with caplog.at_level(logging.ERROR, logger="gs_hooks"):
        assert await hooks.kick(session) == 1
    assert len(hooks.registry) == 0
    assert any("default kick" in r.getMessage() for r in caplog.records)


async def test_kick_rejects_other_targets(anyio_backend: str) -> None:
    hooks = _hooks()
    for target in (4.2, None, b"p1", True):  # an int is a player id (normalised to "42"): see tests/test_ids.py
        with pytest.raises(TypeError, match="Session or a player id"):
            await hooks.kick(target)  # type: ignore[arg-type]
    assert await hooks.kick(42) == 0


async def test_duplicate_login_kick_older_through_hooks(anyio_backend: str) -> None:
    received: list[KickRequest] = []
    events: list[tuple[str, int]] = []
    hooks = _hooks(on_kick=received.append, duplicate_login="kick_older")
    hooks.registry.add_observer(lambda e: events.append((e.kind, e.session.id)))
    old = hooks.registry.open_nowait()
    new = hooks.registry.open_nowait()
    assert hooks.bind_player(old, "p") == []
    older = hooks.bind_player(new, "p")
    assert older == [old]
    for s in older:
        await hooks.kick(s, "duplicate_login")
    assert [r.session for r in received] == [old] and received[0].reason == "duplicate_login"
    assert hooks.registry.sessions_of("p") == (new,) and hooks.registry.count_players("s1") == 1
    assert events == [
        ("open", old.id),
        ("open", new.id),
        ("login", old.id),
        ("login", new.id),
        ("close", old.id),
    ]


async def test_duplicate_login_refuse_newer_through_hooks(anyio_backend: str) -> None:
    hooks = _hooks(duplicate_login="refuse_newer")
    old = hooks.registry.open_nowait()
    new = hooks.registry.open_nowait()
    hooks.bind_player(old, "p")
    with pytest.raises(DuplicateLoginError):
        hooks.bind_player(new, "p")
    assert hooks.registry.sessions_of("p") == (old,)


async def test_duplicate_login_allow_through_hooks(anyio_backend: str) -> None:
    hooks = _hooks(duplicate_login="allow")
    sessions = [hooks.registry.open_nowait() for _ in range(2)]
    assert [hooks.bind_player(s, "p") for s in sessions] == [[], []]
    assert hooks.registry.count_players("s1") == 2


async def test_kick_events_reach_observers(anyio_backend: str) -> None:
    hooks = _hooks()
    events: list[SessionEvent] = []
    hooks.registry.add_observer(events.append)
    session: Session = hooks.registry.open_nowait()
    await hooks.kick(session)
    assert [e.kind for e in events] == ["open", "close"]


def test_the_poll_backoff_cap_reaches_the_maintenance_watcher_and_the_ban_poller(anyio_backend: str) -> None:
    def components(cap: float) -> tuple[float, float]:
        gamebase = gs_hooks.GamebaseConfig(
            url="http://127.0.0.1:9",
            app_id="app",
            secret_key=gs_hooks.Secret("k"),
            maintenance_poll_s=30.0,
            ban_poll_s=60.0,
            poll_backoff_max_s=cap,
        )
        hooks = gs_hooks.setup(gs_hooks.Config(state_path=":memory:", gamebase=gamebase))
        assert hooks.maintenance is not None
        (poller,) = [c for c in hooks.components if getattr(c, "name", "") == "gamebase.bans"]
        return hooks.maintenance.backoff_max_s, float(poller.backoff_max_s)

    assert components(420.0) == (420.0, 420.0)
    assert components(45.0) == (45.0, 60.0)  # never below a poller's own period


@pytest.mark.parametrize(
    "name", ["on_kick", "on_ban", "on_maintenance", "on_notice", "on_ccu_problem", "webstore_profile"]
)
def test_a_callback_that_is_not_callable_is_refused_by_name(anyio_backend: str, name: str) -> None:
    # the README's Quickstart once showed `on_notice=..., webstore_profile=...`: setup took the Ellipsis, and the
    # first maintenance warning or web-store call failed with "'ellipsis' object is not callable"
    with pytest.raises(gs_hooks.ConfigError) as caught:
        gs_hooks.setup(gs_hooks.Config(state_path=":memory:"), **{name: ...})
    assert caught.value.setting == name and "ellipsis" in str(caught.value)
    gs_hooks.setup(gs_hooks.Config(state_path=":memory:"), **{name: lambda *a: None})  # a callable is taken
