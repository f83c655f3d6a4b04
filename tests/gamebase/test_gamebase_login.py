"""hooks.login / hooks.verify_token wired by setup() against the sandbox's Gamebase."""

from __future__ import annotations

from datetime import timedelta

import pytest
from gamebase_client_support import Env, Recorder, make_hooks, refused_token

from gs_hooks import (
    BannedError,
    ClosedError,
    Config,
    ConfigError,
    DuplicateLoginError,
    GamebaseClient,
    LoginRefusedError,
    MaintenanceError,
    MaintenanceState,
    MemberNotValidError,
    PlatformUnavailableError,
    TokenInvalidError,
    setup,
)
from gs_hooks.bans import Ban

pytestmark = [pytest.mark.anyio, pytest.mark.members("u1", "u2")]


async def test_login_verifies_then_binds(gb: Env) -> None:
    rec = Recorder()
    token = gb.sim.issue_token("u1")
    async with make_hooks(gb, rec) as hooks:
        assert isinstance(hooks.gamebase, GamebaseClient)
        assert hooks.maintenance is not None
        assert hooks.maintenance.state is MaintenanceState.NONE
        session = hooks.registry.open_nowait()
        info = await hooks.login(session, "u1", token)
        assert info.member.user_id == "u1"
        assert session.player_id == "u1"
        assert hooks.registry.sessions_of("u1") == (session,)
        assert rec.kicks == []


@pytest.mark.parametrize(
    ("script", "error", "code"),
    [
        ("forged", TokenInvalidError, -4010203),
        ("expired", TokenInvalidError, -4010208),
        ("banned", MemberNotValidError, -4010204),
        ("withdrawn", MemberNotValidError, -4010204),
    ],
)
async def test_login_refusals_leave_the_session_unbound(
    gb: Env, script: str, error: type[LoginRefusedError], code: int
) -> None:
    user, token = await refused_token(gb, script, ttl=10)
    assert user == "u1"
    async with make_hooks(gb, Recorder()) as hooks:
        session = hooks.registry.open_nowait()
        with pytest.raises(error) as info:
            await hooks.login(session, "u1", token)
        assert info.value.code == code  # type: ignore[attr-defined]
        assert info.value.reason in ("token_invalid", "member_not_valid")
        assert session.player_id is None
        assert hooks.registry.sessions_of("u1") == ()


async def test_login_consults_the_ban_book_after_the_token(gb: Env) -> None:
    token = gb.sim.issue_token("u1")
    rec = Recorder()
    async with make_hooks(gb, rec) as hooks:
        assert hooks.bans is not None
        session = hooks.registry.open_nowait()
        await hooks.login(session, "u1", token)
        assert hooks.verifier.cached_nowait("u1", token) is not None
        until = gb.clock.now() + timedelta(days=3)
        await hooks.bans.apply(
            [Ban(player_key="u1", source="hive", status="temporary", starts_at=gb.clock.now(), ends_at=until)]
        )
        assert [k.reason for k in rec.kicks] == ["ban"]  # the book kicks the live session
        assert hooks.verifier.cached_nowait("u1", token) is None  # and drops the cached verification
        session = hooks.registry.open_nowait()
        with pytest.raises(BannedError) as info:
            await hooks.login(session, "u1", token)
        assert info.value.ends_at == until
        assert info.value.source == "hive"
        assert session.player_id is None
        # a forged token for a banned player learns nothing about the ban
        with pytest.raises(TokenInvalidError):
            await hooks.login(session, "u1", "forged-token-value")
        await hooks.bans.lift("u1")
        await hooks.bans.apply([Ban(player_key="u1", source="api", status="permanent", starts_at=gb.clock.now())])
        with pytest.raises(BannedError, match="permanently"):
            await hooks.login(session, "u1", token)
        await hooks.bans.lift("u1")
        await hooks.login(session, "u1", token)
        assert session.player_id == "u1"


async def test_duplicate_login_kicks_the_older_session(gb: Env) -> None:
    rec = Recorder()
    async with make_hooks(gb, rec) as hooks:
        first = hooks.registry.open_nowait()
        second = hooks.registry.open_nowait()
        await hooks.login(first, "u1", gb.sim.issue_token("u1"))
        await hooks.login(second, "u1", gb.sim.issue_token("u1"))
        assert [(k.session.id, k.reason) for k in rec.kicks] == [(first.id, "duplicate_login")]
        assert hooks.registry.sessions_of("u1") == (second,)
        assert first not in hooks.registry


async def test_refuse_newer_policy(gb: Env) -> None:
    rec = Recorder()
    async with make_hooks(gb, rec, duplicate_login="refuse_newer") as hooks:
        first = hooks.registry.open_nowait()
        second = hooks.registry.open_nowait()
        await hooks.login(first, "u1", gb.sim.issue_token("u1"))
        with pytest.raises(DuplicateLoginError):
            await hooks.login(second, "u1", gb.sim.issue_token("u1"))
        assert rec.kicks == []
        assert hooks.registry.sessions_of("u1") == (first,)


async def test_login_on_a_closed_session_is_refused(gb: Env) -> None:
    async with make_hooks(gb, Recorder()) as hooks:
        session = hooks.registry.open_nowait()
        hooks.registry.close_nowait(session)
        with pytest.raises(LoginRefusedError, match="the session is closed"):
            await hooks.login(session, "u1", gb.sim.issue_token("u1"))


async def test_maintenance_gate_refuses_logins_while_active(gb: Env) -> None:
    now = gb.clock.now()
    gb.sim.set_maintenance(now - timedelta(minutes=1), now + timedelta(hours=1), "patch day", "http://m.example")
    token = gb.sim.issue_token("u1")
    async with make_hooks(gb, Recorder()) as hooks:
        assert hooks.maintenance is not None
        assert hooks.maintenance.active  # the first poll runs before start() returns
        session = hooks.registry.open_nowait()
        with pytest.raises(MaintenanceError) as info:
            await hooks.login(session, "u1", token)
        assert info.value.message == "patch day"
        assert info.value.url == "http://m.example"
        assert info.value.ends_at == (now + timedelta(hours=1)).replace(microsecond=0)
        assert gb.sim.counts["gamebase.token"] == 0  # refused before asking Gamebase
        # verify_token is not gated
        assert (await hooks.verify_token("u1", token)).member.user_id == "u1"
    async with make_hooks(gb, Recorder(), maintenance_gate=False) as hooks:
        session = hooks.registry.open_nowait()
        await hooks.login(session, "u1", token)


async def test_fail_closed_login_when_gamebase_is_down(gb: Env) -> None:
    async with make_hooks(gb, Recorder(), maintenance_poll_s=0) as hooks:
        assert hooks.maintenance is None
        gb.faults.http_500 = 1
        session = hooks.registry.open_nowait()
        with pytest.raises(PlatformUnavailableError):
            await hooks.login(session, "u1", gb.sim.issue_token("u1"))
        assert session.player_id is None


async def test_verify_token_and_forget_token(gb: Env) -> None:
    token = gb.sim.issue_token("u2")
    async with make_hooks(gb, Recorder()) as hooks:
        await hooks.verify_token("u2", token)
        await hooks.verify_token("u2", token)
        assert gb.sim.counts["gamebase.token"] == 1
        hooks.forget_token("u2")
        await hooks.verify_token("u2", token)
        assert gb.sim.counts["gamebase.token"] == 2
    with pytest.raises(ClosedError):
        await hooks.verify_token("u2", token)


async def test_without_gamebase_login_says_what_to_configure() -> None:
    hooks = setup(Config(state_path=":memory:"))
    assert hooks.gamebase is None
    assert hooks.maintenance is None
    async with hooks:
        session = hooks.registry.open_nowait()
        with pytest.raises(ConfigError, match="GS_HOOKS_GAMEBASE_URL"):
            await hooks.login(session, "u1", "t0ken-value")
        hooks.forget_token("u1")  # a no-op without a verifier
