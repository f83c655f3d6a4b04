"""The registry core: indexes, exact counts, duplicate-login policies, observers, gc behaviour."""

from __future__ import annotations

import gc
import logging
from typing import Any

import pytest

from gs_hooks import DuplicateLoginError, FakeClock, Session, SessionEvent, SessionRegistry


def _registry(**kwargs: Any) -> SessionRegistry:
    return SessionRegistry(default_server_id="s1", **kwargs)


def test_open_indexes_by_server_and_counts_connections() -> None:
    reg = _registry()
    a = reg.open_nowait()
    b = reg.open_nowait(server_id="s2", channel="ch", remote=("10.0.0.1", 5000))
    assert a.server_id == "s1" and b.server_id == "s2"
    assert (b.channel, b.remote) == ("ch", ("10.0.0.1", 5000))
    assert reg.count_connections("s1") == 1 and reg.count_connections("s2") == 1
    assert reg.count_connections("nope") == 0
    assert reg.sessions_on("s2") == (b,)
    assert len(reg) == 2 and set(reg) == {a, b}
    assert reg.get(a.id) is a and reg.get(b.id) is b and reg.get(-1) is None
    assert a in reg and object() not in reg
    assert a.id != b.id
    c = reg.open_nowait("s2", "ch2", ("10.0.0.2", 6000), None)  # by position, as the adapters call it
    assert (c.server_id, c.channel, c.remote, c.connection) == ("s2", "ch2", ("10.0.0.2", 6000), None)
    assert reg.count_connections("s2") == 2


def test_ids_are_never_reused_across_registries() -> None:
    one, two = _registry(), _registry()
    a = one.open_nowait()
    one.close_nowait(a)
    b = two.open_nowait()
    c = one.open_nowait()
    assert len({a.id, b.id, c.id}) == 3
    # a foreign session is not live here: closing it is a no-op and does not touch the other registry
    assert one.close_nowait(b) is False
    assert two.count_connections("s1") == 1 and b in two


def test_close_is_exact_and_idempotent() -> None:
    reg = _registry()
    sessions = [reg.open_nowait() for _ in range(5)]
    assert reg.close_nowait(sessions[0]) is True
    assert reg.close_nowait(sessions[0]) is False
    assert reg.count_connections("s1") == 4
    assert sessions[0] not in reg and reg.get(sessions[0].id) is None
    for s in sessions[1:]:
        assert reg.close_nowait(s)
    assert len(reg) == 0 and reg.count_connections("s1") == 0 and reg.server_ids() == ()


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_connected_and_logged_in_times_come_from_the_injected_clock(anyio_backend: str) -> None:
    clock = FakeClock(start=1_700_000_000.0)
    reg = _registry(time=clock.time)
    s = reg.open_nowait()
    assert s.connected_at == 1_700_000_000.0 and s.logged_in_at is None and s.player_id is None
    await clock.advance(5)
    reg.bind_player_nowait(s, "p1")
    assert s.logged_in_at == 1_700_000_005.0


def test_bind_player_counts_players_exactly_per_server() -> None:
    reg = _registry(duplicate_login="allow")
    a = reg.open_nowait()
    b = reg.open_nowait()
    c = reg.open_nowait(server_id="s2")
    assert reg.count_players("s1") == 0
    reg.bind_player_nowait(a, "p1")
    reg.bind_player_nowait(b, "p2")
    reg.bind_player_nowait(c, "p1")
    assert reg.count_players("s1") == 2 and reg.count_players("s2") == 1
    assert reg.count_connections("s1") == 2
    assert reg.sessions_of("p1") == (a, c) and reg.sessions_of("p2") == (b,) and reg.sessions_of("x") == ()
    assert set(reg.player_ids()) == {"p1", "p2"}
    reg.close_nowait(a)
    assert reg.sessions_of("p1") == (c,) and reg.count_players("s1") == 1
    reg.close_nowait(c)
    reg.close_nowait(b)
    assert reg.player_ids() == () and reg.count_players("s1") == 0 and reg.count_players("s2") == 0
    assert reg._players == {} and reg._players_on == {}


def test_bind_same_player_twice_is_a_no_op_and_rebinding_is_refused() -> None:
    reg = _registry()
    s = reg.open_nowait()
    assert reg.bind_player_nowait(s, "p1") == []
    assert reg.bind_player_nowait(s, "p1") == []
    assert reg.count_players("s1") == 1
    with pytest.raises(ValueError, match="already bound"):
        reg.bind_player_nowait(s, "p2")
    reg.close_nowait(s)
    with pytest.raises(ValueError, match="not live"):
        reg.bind_player_nowait(s, "p1")
    assert reg.count_players("s1") == 0


def test_policy_kick_older_returns_the_older_sessions() -> None:
    reg = _registry(duplicate_login="kick_older")
    old = reg.open_nowait()
    new = reg.open_nowait()
    assert reg.bind_player_nowait(old, "p") == []
    assert reg.bind_player_nowait(new, "p") == [old]
    # the older one stays registered until kicked or closed
    assert reg.sessions_of("p") == (old, new) and reg.count_players("s1") == 2
    reg.close_nowait(old)
    assert reg.sessions_of("p") == (new,) and reg.count_players("s1") == 1


def test_policy_refuse_newer_raises_and_leaves_the_new_session_unbound() -> None:
    reg = _registry(duplicate_login="refuse_newer")
    old = reg.open_nowait()
    new = reg.open_nowait()
    reg.bind_player_nowait(old, "p")
    with pytest.raises(DuplicateLoginError, match="already logged in"):
        reg.bind_player_nowait(new, "p")
    assert new.player_id is None and reg.sessions_of("p") == (old,) and reg.count_players("s1") == 1
    reg.close_nowait(old)
    assert reg.bind_player_nowait(new, "p") == []


def test_policy_allow_keeps_every_session() -> None:
    reg = _registry(duplicate_login="allow")
    sessions = [reg.open_nowait() for _ in range(3)]
    for s in sessions:
        assert reg.bind_player_nowait(s, "p") == []
    assert reg.sessions_of("p") == tuple(sessions) and reg.count_players("s1") == 3


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="duplicate_login"):
        SessionRegistry(duplicate_login="maybe")  # type: ignore[arg-type]


def test_server_id_must_be_a_string() -> None:
    reg = _registry()
    with pytest.raises(TypeError, match="server_id"):
        reg.open_nowait(server_id=7)  # type: ignore[arg-type]
    assert len(reg) == 0


def test_observers_see_open_login_close_and_can_be_removed() -> None:
    reg = _registry()
    events: list[tuple[str, int]] = []

    def observe(event: SessionEvent) -> None:
        events.append((event.kind, event.session.id))

    remove = reg.add_observer(observe)
    s = reg.open_nowait()
    reg.bind_player_nowait(s, "p")
    reg.close_nowait(s)
    reg.close_nowait(s)  # no second close event
    assert events == [("open", s.id), ("login", s.id), ("close", s.id)]
    remove()
    remove()
    t = reg.open_nowait()
    reg.close_nowait(t)
    assert len(events) == 3


def test_a_raising_observer_is_logged_and_does_not_break_the_registry(caplog: pytest.LogCaptureFixture) -> None:
    reg = _registry()
    seen: list[str] = []

    def bad(event: SessionEvent) -> None:
        raise RuntimeError("observer bug")

    reg.add_observer(bad)
    reg.add_observer(lambda e: seen.append(e.kind))
    with caplog.at_level(logging.ERROR, logger="gs_hooks.sessions"):
        s = reg.open_nowait()
        assert reg.close_nowait(s)
    assert seen == ["open", "close"] and len(reg) == 0
    assert any("observer" in r.getMessage() for r in caplog.records)


def test_session_attrs_are_created_lazily() -> None:
    s = _registry().open_nowait()
    assert s.attrs is None and s.get_attr("level", 1) == 1
    s.set_attr("level", 7)
    assert s.attrs == {"level": 7} and s.get_attr("level") == 7


def test_session_equality_is_identity_and_repr_is_short() -> None:
    reg = _registry()
    a, b = reg.open_nowait(), reg.open_nowait()
    assert a == a and a != b
    assert repr(a).startswith(f"Session(id={a.id}, server_id='s1'")


def test_iteration_is_a_snapshot() -> None:
    reg = _registry()
    for _ in range(4):
        reg.open_nowait(server_id="a")
        reg.open_nowait(server_id="b")
    for s in reg:
        reg.close_nowait(s)
    assert len(reg) == 0


def test_tracked_sessions_are_invisible_to_the_cyclic_gc() -> None:
    reg = _registry()
    sessions = [reg.open_nowait(remote=("1.2.3.4", 1)) for _ in range(100)]
    for i, s in enumerate(sessions):
        reg.bind_player_nowait(s, f"p{i}")
    gc.collect()
    assert not gc.is_tracked(sessions[0])
    assert not gc.is_tracked(reg._servers["s1"]) and not gc.is_tracked(reg._players)


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_registry_is_usable_from_any_backend(anyio_backend: str) -> None:
    import anyio

    reg = _registry(duplicate_login="allow")
    opened: list[Session] = []

    async def client(i: int) -> None:
        s = reg.open_nowait()
        opened.append(s)
        reg.bind_player_nowait(s, f"p{i % 3}")
        await anyio.lowlevel.checkpoint()
        reg.close_nowait(s)

    async with anyio.create_task_group() as tg:
        for i in range(30):
            tg.start_soon(client, i)
    assert len(opened) == 30 and len(reg) == 0 and reg.count_players("s1") == 0 and reg.player_ids() == ()


def test_system_clock_sessions_get_real_times_and_increasing_ids() -> None:
    import time

    import gs_hooks

    for reg in (SessionRegistry(), gs_hooks.setup(gs_hooks.Config()).registry):
        before = time.time()
        a = reg.open_nowait()
        b = reg.open_nowait(server_id="other")
        after = time.time()
        assert before <= a.connected_at <= b.connected_at <= after
        assert isinstance(a.id, int) and b.id > a.id
        reg.bind_player_nowait(a, "p")
        assert a.logged_in_at is not None and after <= a.logged_in_at <= time.time()


def test_observers_added_while_sessions_are_live_see_their_close() -> None:
    reg = _registry()
    early = reg.open_nowait()
    kinds: list[str] = []
    remove = reg.add_observer(lambda e: kinds.append(e.kind))
    reg.close_nowait(early)
    remove()
    late = reg.open_nowait()
    reg.close_nowait(late)
    assert kinds == ["close"]


@pytest.mark.parametrize("observed", [False, True])
def test_close_player_unregisters_every_session_of_the_player_and_no_other(observed: bool) -> None:
    reg = _registry(duplicate_login="allow")
    events: list[tuple[str, int]] = []
    if observed:
        reg.add_observer(lambda event: events.append((event.kind, event.session.id)))
    a, b = reg.open_nowait(), reg.open_nowait(server_id="s2")
    other, anonymous = reg.open_nowait(), reg.open_nowait(server_id="s2")
    reg.bind_player_nowait(a, "p")
    reg.bind_player_nowait(b, "p")
    reg.bind_player_nowait(other, "q")
    events.clear()
    assert reg.close_player_nowait("p") == (a, b)
    assert reg.sessions_of("p") == () and reg.sessions_of("q") == (other,)
    assert set(reg) == {other, anonymous}
    assert (reg.count_connections("s1"), reg.count_players("s1")) == (1, 1)
    assert (reg.count_connections("s2"), reg.count_players("s2")) == (1, 0)
    assert events == ([("close", a.id), ("close", b.id)] if observed else [])
    assert reg.close_player_nowait("p") == () and reg.close_nowait(a) is False  # already gone: no-ops
    assert reg.close_player_nowait("q") == (other,)
    assert reg.count_players("s1") == 0
