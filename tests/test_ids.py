"""Player ids have one canonical form (a str; an int is normalised), checked at every public entry point."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest

import gs_hooks
from gs_hooks import Ban, ConfigError, FakeClock, KickRequest, SessionRegistry
from gs_hooks._ids import MAX_PLAYER_ID_LEN, MAX_TOKEN_LEN, lookup_key, only_dots, player_id, token_problem
from gs_hooks.ccu import WebCounter

# Values that cannot be a player id, each for the reason the error message names.
BAD_IDS = [
    ("", "empty"),
    (" ", "whitespace"),
    (" u1", "whitespace"),
    ("u1\n", "whitespace"),
    ("\u3000u1", "whitespace"),  # ideographic space
    ("u\x001", "control"),
    ("u\x7f1", "control"),
    ("u\u20281", "control"),  # line separator
    ("a/b", "'/'"),
    ("a\\b", "'/'"),
    ("a\uff0fb", "'/'"),  # fullwidth solidus: NFKC "/"
    ("a\uff3cb", "'/'"),  # fullwidth reverse solidus
    (".", "only dots"),
    ("..", "only dots"),
    ("...", "only dots"),
    ("\uff0e\uff0e", "only dots"),  # fullwidth full stops
    ("\u2024", "only dots"),  # one dot leader
    ("\u2025", "only dots"),  # two dot leader: NFKC ".."
    ("\ufe52", "only dots"),  # small full stop
    ("x" * (MAX_PLAYER_ID_LEN + 1), "longer than 128"),
]
GOOD_IDS = [
    "u1",
    "7101",
    "a b",
    "a..b",
    ".a",
    "a.",
    "%2e%2e",
    "?",
    "#",
    "user@example",
    "플레이어",
    "x" * MAX_PLAYER_ID_LEN,
]


@pytest.mark.parametrize(("value", "reason"), BAD_IDS)
def test_bad_player_ids_are_refused_with_the_reason(value: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        player_id(value)


@pytest.mark.parametrize("value", GOOD_IDS)
def test_good_player_ids_pass_unchanged(value: str) -> None:
    assert player_id(value) is value


def test_ints_are_normalised_and_other_types_refused() -> None:
    assert player_id(7101) == "7101"
    assert player_id(0) == "0"
    assert lookup_key(7101) == "7101"
    assert player_id(-1) == "-1"
    for wrong in (True, 1.5, None, b"u1", ["u1"]):
        with pytest.raises(TypeError, match=type(wrong).__name__):
            player_id(wrong)
        with pytest.raises(TypeError):
            lookup_key(wrong)


def test_only_dots_and_token_rules() -> None:
    assert only_dots("..") and only_dots("\u2025") and only_dots("\uff0e")
    assert not only_dots("") and not only_dots("a..") and not only_dots("%2e%2e")
    assert token_problem("AbC-123_x.y~z") is None
    assert token_problem("%2e%2e") is None  # a percent sign is encoded on the wire, not a dot segment
    for bad, reason in [
        ("", "empty"),
        (".", "only dots"),
        ("..", "only dots"),
        ("a/b", "'/'"),
        ("a\\b", "'/'"),
        ("a b", "whitespace"),
        ("a\tb", "whitespace"),
        ("a\x00b", "control"),
        ("\uff0e\uff0e", "non-ASCII"),
        ("x" * (MAX_TOKEN_LEN + 1), "longer"),
    ]:
        problem = token_problem(bad)
        assert problem is not None and reason in problem, (bad, problem)


# -- the registry ------------------------------------------------------------------------------------------------


def test_registry_binds_an_int_as_its_string_and_finds_it_both_ways() -> None:
    reg = SessionRegistry(default_server_id="s1")
    session = reg.open_nowait()
    reg.bind_player_nowait(session, 7101)  # type: ignore[arg-type]  # a JSON number, as a game passes it
    assert session.player_id == "7101"
    assert reg.sessions_of("7101") == (session,)
    assert reg.sessions_of(7101) == (session,)
    assert reg.player_ids() == ("7101",)
    assert reg.close_player_nowait(7101) == (session,)


@pytest.mark.parametrize(("value", "reason"), BAD_IDS[:10])
def test_registry_refuses_to_bind_a_bad_id(value: str, reason: str) -> None:
    reg = SessionRegistry(default_server_id="s1")
    session = reg.open_nowait()
    with pytest.raises(ValueError, match=reason):
        reg.bind_player_nowait(session, value)
    assert session.player_id is None and reg.count_players("s1") == 0
    with pytest.raises(TypeError):
        reg.bind_player_nowait(session, None)  # type: ignore[arg-type]
    assert reg.sessions_of(value) == ()  # a lookup is not checked: it finds nothing


# -- Ban, the book, the hooks ---------------------------------------------------------------------------------------


def test_ban_player_key_is_checked_and_normalised() -> None:
    now = FakeClock().now()
    assert Ban(player_key=7101, source="api", status="permanent", starts_at=now).player_key == "7101"  # type: ignore[arg-type]
    for bad, _ in BAD_IDS:
        with pytest.raises(ValueError):
            Ban(player_key=bad, source="api", status="permanent", starts_at=now)


def _hooks(**kwargs: Any) -> gs_hooks.Hooks:
    return gs_hooks.setup(gs_hooks.Config(state_path=":memory:"), clock=FakeClock(), **kwargs)


@pytest.mark.anyio
@pytest.mark.parametrize("value", ["", " ", "\t", "a/b", "..", "\uff0e\uff0e"])
async def test_ban_unban_kick_refuse_an_id_that_cannot_be_one(value: str) -> None:
    kicks: list[KickRequest] = []
    async with _hooks(on_kick=kicks.append) as hooks:
        with pytest.raises(ValueError):
            await hooks.ban(value)
        with pytest.raises(ValueError):
            await hooks.ban(value, until=hooks.clock.now() + timedelta(hours=1))
        with pytest.raises(ValueError):
            await hooks.unban(value)
        with pytest.raises(ValueError):
            await hooks.kick(value)
        with pytest.raises(ValueError):
            hooks.forget_token(value)
        assert hooks.bans.active_bans() == [] and hooks.bans.bans_of(value) == []
        assert hooks.store.run_sync(lambda conn: conn.execute("SELECT COUNT(*) FROM bans_book").fetchone()) == (0,)
        with pytest.raises(TypeError):
            await hooks.ban(None)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await hooks.kick(1.5)  # type: ignore[arg-type]
    assert kicks == []


@pytest.mark.anyio
async def test_ban_and_kick_by_int_or_string_reach_the_same_player() -> None:
    kicks: list[KickRequest] = []
    async with _hooks(on_kick=kicks.append) as hooks:
        session = hooks.registry.open_nowait()
        hooks.bind_player(session, 7101)  # type: ignore[arg-type]
        assert await hooks.kick(7101) == 1  # type: ignore[arg-type]
        session = hooks.registry.open_nowait()
        hooks.bind_player(session, "7101")
        ban = await hooks.ban(7101)  # type: ignore[arg-type]
        assert ban.player_key == "7101"
        assert [k.session.player_id for k in kicks] == ["7101", "7101"]
        assert hooks.bans.active_ban(7101) is not None  # type: ignore[arg-type]
        assert hooks.bans.active_ban("7101") is ban
        assert await hooks.unban(7101) == 1  # type: ignore[arg-type]
        assert hooks.bans.active_ban("7101") is None


def test_a_stored_ban_with_a_bad_key_is_skipped_at_load(caplog: pytest.LogCaptureFixture) -> None:
    """A key an older version accepted (hooks.ban("")) must not stop the book from loading."""
    clock = FakeClock()
    hooks = gs_hooks.setup(gs_hooks.Config(state_path=":memory:"), clock=clock)
    now = clock.time()

    def plant(conn: Any) -> None:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bans_book (source TEXT NOT NULL, player_key TEXT NOT NULL, status TEXT "
            "NOT NULL, starts_at REAL NOT NULL, ends_at REAL, message TEXT NOT NULL DEFAULT '', recorded_at REAL "
            "NOT NULL, lifted_at REAL, PRIMARY KEY (source, player_key))"
        )
        for key in ("", "p1"):
            conn.execute("INSERT INTO bans_book VALUES ('api', ?, 'permanent', ?, NULL, '', ?, NULL)", (key, now, now))

    hooks.store.run_sync(plant)
    with caplog.at_level(logging.WARNING, logger="gs_hooks.bans"):
        hooks.bans.load_nowait()
    assert [b.player_key for b in hooks.bans.active_bans()] == ["p1"]
    assert "1 stored bans skipped" in caplog.text


def test_player_key_format_must_make_player_ids() -> None:
    with pytest.raises(ConfigError, match="PLAYER_KEY_FORMAT: must make player ids"):
        gs_hooks.Config(hive=gs_hooks.HiveConfig(player_key_format="hive/{id}"))
    with pytest.raises(ConfigError, match="PLAYER_KEY_FORMAT: must make player ids"):
        gs_hooks.Config(hive=gs_hooks.HiveConfig(player_key_format=" {id}"))
    assert gs_hooks.Config(hive=gs_hooks.HiveConfig(player_key_format="hive:{id}")).hive.player_key_format


def test_web_ccu_counts_an_int_and_its_string_as_one_user() -> None:
    clock = FakeClock()
    counter = WebCounter(("s1",), period_s=120, time=clock.time)
    counter.saw_user(7101)  # type: ignore[arg-type]
    counter.saw_user("7101")
    assert counter.tracked() == 1
    for bad in ("", " u1", "a/b", ".."):
        with pytest.raises(ValueError):
            counter.saw_user(bad)
    assert counter.tracked() == 1
