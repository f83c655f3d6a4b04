"""CCU counters: socket mode from the registry, web mode's trailing-window uniques with bounded memory."""

from __future__ import annotations

import pytest

from gs_hooks import SessionRegistry
from gs_hooks.ccu import SocketCounter, WebCounter

T0 = 1_790_000_040.0 - (1_790_000_040 % 120)  # a grid instant


class Now:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_socket_mode_counts_players_or_connections_per_server() -> None:
    reg = SessionRegistry(default_server_id="1")
    a = reg.open_nowait()
    reg.open_nowait()
    c = reg.open_nowait(server_id="2")
    reg.bind_player_nowait(a, "alice")
    reg.bind_player_nowait(c, "carol")
    players = SocketCounter(reg, "players")
    conns = SocketCounter(reg, "connections")
    assert [players.count(s, T0) for s in ("1", "2", "3")] == [1, 1, 0]
    assert [conns.count(s, T0) for s in ("1", "2", "3")] == [2, 1, 0]
    reg.close_nowait(a)
    assert (players.count("1", T0), conns.count("1", T0)) == (0, 1)
    with pytest.raises(ValueError, match="players or connections"):
        SocketCounter(reg, "sockets")  # type: ignore[arg-type]


def test_web_mode_counts_unique_users_of_the_trailing_period() -> None:
    now = Now(T0 + 1)
    web = WebCounter(("1", "2"), period_s=120, time=now)
    for user in ("a", "b", "a", "c", "a"):
        web.saw_user(user, "1")
    web.saw_user("z", "2")
    web.saw_user("d")  # default server id: the first
    now.t = T0 + 119.9
    web.saw_user("b", "1")
    # the sample for T0+120 counts [T0, T0+120), even when taken late, after new requests
    now.t = T0 + 125
    web.saw_user("late", "1")
    assert web.count("1", T0 + 120) == 4
    assert web.count("2", T0 + 120) == 1
    assert web.count("9", T0 + 120) == 0
    # the next slot counts only what came after T0+120
    now.t = T0 + 240.5
    assert web.count("1", T0 + 240) == 1
    assert web.count("2", T0 + 240) == 0
    # a long silence: nothing left
    now.t = T0 + 1000
    assert web.count("1", T0 + 960) == 0


def test_web_mode_memory_is_bounded_to_two_windows() -> None:
    now = Now(T0)
    web = WebCounter(("1",), period_s=120, time=now)
    for k in range(20):
        now.t = T0 + 120 * k
        for u in range(100):
            web.saw_user(f"u{k}-{u}", "1")
        assert web.tracked() <= 200
    assert web.tracked() == 200


def test_web_mode_login_observer_and_bad_input() -> None:
    now = Now(T0 + 5)
    reg = SessionRegistry(default_server_id="1", time=now)
    web = WebCounter(("1",), period_s=120, time=now)
    reg.add_observer(web.observe)
    s = reg.open_nowait()
    reg.bind_player_nowait(s, "alice")
    other = reg.open_nowait(server_id="7")  # not reported here: ignored, not an error
    reg.bind_player_nowait(other, "bob")
    now.t = T0 + 121
    assert web.count("1", T0 + 120) == 1
    with pytest.raises(ValueError, match="is not allowed: it is empty"):
        web.saw_user("", "1")
    with pytest.raises(ValueError, match="not reported"):
        web.saw_user("x", "7")
