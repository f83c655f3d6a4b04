"""What the operator sees at start: a WARNING per setting that silently does nothing (issue 13.8), and one INFO
summary of what is on and what is off and why (issue 13.12), with no secret in either."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

import gs_hooks
from gs_hooks import (
    CcuConfig,
    Config,
    ConfigError,
    FakeClock,
    GamebaseConfig,
    GamePotConfig,
    HiveConfig,
    ListenerConfig,
    Secret,
    SessionsConfig,
    setup,
)
from gs_hooks.sandbox import Sandbox

pytestmark = pytest.mark.anyio


def _records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "gs_hooks" and r.levelno == level]


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in _records(caplog, logging.WARNING) if r.getMessage().startswith("configuration:")]


async def _start_and_stop(hooks: gs_hooks.Hooks) -> None:
    async with hooks:
        pass


async def _warnings_of(caplog: pytest.LogCaptureFixture, config: Config, **kwargs: Any) -> list[str]:
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="gs_hooks"):
        await _start_and_stop(setup(config, **kwargs))
    return _warnings(caplog)


# -- unknown variables -------------------------------------------------------------------------------------------


async def test_a_typo_in_a_variable_name_is_a_warning_naming_the_closest_setting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = {"GS_HOOKS_STATE": ":memory:", "GS_HOOKS_CCU_ULR": "http://collector.example/x", "GS_HOOKS_DASBOARD": "1"}
    config = Config.from_env(env)
    listed = setup(config).config_warnings()  # the same list, for a game that refuses to start on any
    assert [(w.setting, type(w)) for w in listed] == [
        ("GS_HOOKS_CCU_ULR", gs_hooks.ConfigWarning),
        ("GS_HOOKS_DASBOARD", gs_hooks.ConfigWarning),
    ]
    warnings = await _warnings_of(caplog, config)
    assert warnings == [
        "configuration: GS_HOOKS_CCU_ULR: not a gs_hooks setting: ignored (did you mean GS_HOOKS_CCU_URL?)",
        "configuration: GS_HOOKS_DASBOARD: not a gs_hooks setting: ignored (did you mean GS_HOOKS_DASHBOARD?)",
    ]


async def test_a_mistyped_secret_variable_is_named_but_its_value_never_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    value = "typo-secret-value-1"  # not wrapped in a Secret (the name is not a setting): the guard cannot see it
    warnings = await _warnings_of(
        caplog, Config.from_env({"GS_HOOKS_STATE": ":memory:", "GS_HOOKS_GAMEBASE_SECRET": value})
    )
    assert warnings == [
        "configuration: GS_HOOKS_GAMEBASE_SECRET: not a gs_hooks setting: ignored "
        "(did you mean GS_HOOKS_GAMEBASE_SECRET_KEY?)"
    ]
    assert all(value not in r.getMessage() for r in caplog.records)


async def test_known_and_tool_variables_are_not_reported(caplog: pytest.LogCaptureFixture) -> None:
    env = {
        "GS_HOOKS_STATE": ":memory:",
        "GS_HOOKS_SERVER_ID": "s1",
        "GS_HOOKS_SANDBOX_URL": "http://127.0.0.1:8700",  # printed by the sandbox CLI, read by the example
        "GS_HOOKS_FUZZ_EXAMPLES": "200",
        "OTHER_VARIABLE": "x",
    }
    assert await _warnings_of(caplog, Config.from_env(env)) == []


async def test_an_unrelated_name_gets_no_wild_guess(caplog: pytest.LogCaptureFixture) -> None:
    warnings = await _warnings_of(caplog, Config.from_env({"GS_HOOKS_STATE": ":memory:", "GS_HOOKS_XYZZY": "1"}))
    assert warnings == [
        "configuration: GS_HOOKS_XYZZY: not a gs_hooks setting: ignored "
        "(the README's configuration table lists every setting)"
    ]


def test_an_unknown_toml_key_is_refused_with_the_closest_name(tmp_path: Path) -> None:
    path = tmp_path / "gs.toml"
    path.write_text('[ccu]\nulr = "http://collector.example/"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[ccu\] ulr: unknown setting \(did you mean url\?\)"):
        Config.from_toml(path)
    path.write_text('[listner]\nlisten = "127.0.0.1:0"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[listner\]: unknown section \(did you mean listener\?\)"):
        Config.from_toml(path)


# -- settings that do nothing --------------------------------------------------------------------------------------


async def test_hive_key_and_game_index_without_a_listener(caplog: pytest.LogCaptureFixture) -> None:
    config = Config.from_env(
        {"GS_HOOKS_STATE": ":memory:", "GS_HOOKS_HIVE_AUTH_KEY": "hive-bearer-key-1", "GS_HOOKS_HIVE_GAME_INDEX": "539"}
    )
    assert await _warnings_of(caplog, config) == [
        "configuration: GS_HOOKS_HIVE_AUTH_KEY: the Hive suspension webhook (Hive's bans will not reach this server) "
        "is configured but not served: GS_HOOKS_LISTEN is unset and hooks.asgi_app() was not mounted before start()"
    ]
    # mounted in the game's own ASGI server instead: served, nothing to say
    caplog.clear()
    hooks = setup(config)
    hooks.asgi_app()
    with caplog.at_level(logging.INFO, logger="gs_hooks"):
        await _start_and_stop(hooks)
    assert _warnings(caplog) == []


async def test_dashboard_on_without_a_listener(caplog: pytest.LogCaptureFixture) -> None:
    config = Config.from_env({"GS_HOOKS_STATE": ":memory:", "GS_HOOKS_DASHBOARD": "1"})
    assert await _warnings_of(caplog, config) == [
        "configuration: GS_HOOKS_DASHBOARD: the dashboard is configured but not served: GS_HOOKS_LISTEN is unset "
        "and hooks.asgi_app() was not mounted before start()"
    ]


async def test_gamepot_key_without_a_project_id(caplog: pytest.LogCaptureFixture) -> None:
    config = Config.from_env({"GS_HOOKS_STATE": ":memory:", "GS_HOOKS_GAMEPOT_API_KEY": "gamepot-key-123456"})
    assert await _warnings_of(caplog, config) == [
        "configuration: GS_HOOKS_GAMEPOT_API_KEY: ignored: the GamePot CCU inquiry is off while "
        "GS_HOOKS_GAMEPOT_PROJECT_ID is unset (hooks.gamepot_client() still uses the key when given a project id)"
    ]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"GS_HOOKS_HIVE_GAME_INDEX": "539"},
            "GS_HOOKS_HIVE_GAME_INDEX: ignored: the Hive suspension webhook is off while GS_HOOKS_HIVE_AUTH_KEY "
            "is unset",
        ),
        (
            {"GS_HOOKS_GAME": "tinyfarm_KR"},
            "GS_HOOKS_GAME: ignored: CCU reporting is off while GS_HOOKS_CCU_URL is unset",
        ),
        (
            {"GS_HOOKS_GAMEBASE_SECRET_KEY": "gb-secret-value-1"},
            "GS_HOOKS_GAMEBASE_SECRET_KEY: ignored: Gamebase is off while GS_HOOKS_GAMEBASE_URL is unset",
        ),
        (
            {"GS_HOOKS_DASHBOARD_KEY": "dash-key-value-1"},
            "GS_HOOKS_DASHBOARD_KEY: ignored: the dashboard is off (GS_HOOKS_DASHBOARD unset)",
        ),
        (
            {"GS_HOOKS_LISTEN_TLS_CERT": "/etc/cert.pem", "GS_HOOKS_LISTEN_TLS_KEY": "/etc/key.pem"},
            "GS_HOOKS_LISTEN_TLS_CERT: ignored: TLS is for the embedded listener, which is off (GS_HOOKS_LISTEN unset)",
        ),
        (
            {"GS_HOOKS_HIVE_WEBSTORE": "0", "GS_HOOKS_HIVE_WEBSTORE_KEY": "webstore-key-1"},
            "GS_HOOKS_HIVE_WEBSTORE_KEY: ignored: the web-store route is off (GS_HOOKS_HIVE_WEBSTORE=0)",
        ),
        (
            {"GS_HOOKS_HIVE_WEBSTORE_KEY": "webstore-key-1"},
            "GS_HOOKS_HIVE_WEBSTORE_KEY: ignored: no webstore_profile callback was given to setup(), so "
            "/webstore-profile is not served",
        ),
        (
            {"GS_HOOKS_LISTEN_DASHBOARD_ALLOW": "10.0.0.0/8"},
            "GS_HOOKS_LISTEN_DASHBOARD_ALLOW: ignored: the dashboard is off (GS_HOOKS_DASHBOARD unset)",
        ),
    ],
)
async def test_settings_that_do_nothing_are_named(
    caplog: pytest.LogCaptureFixture, env: dict[str, str], expected: str
) -> None:
    config = Config.from_env({"GS_HOOKS_STATE": ":memory:", **env})
    assert await _warnings_of(caplog, config) == [f"configuration: {expected}"]


def test_the_game_name_is_not_called_ignored_in_fleet_mode_without_ccu() -> None:
    """GS_HOOKS_GAME names the fleet: with Redis configured it does something even while CCU reporting is off."""
    from gs_hooks.ops._startup import config_warnings

    env = {"GS_HOOKS_STATE": ":memory:", "GS_HOOKS_GAME": "tinyfarm_KR"}
    alone = [w.setting for w in config_warnings(Config.from_env(env))]
    fleet = [
        w.setting for w in config_warnings(Config.from_env({**env, "GS_HOOKS_REDIS_URL": "redis://127.0.0.1:1/0"}))
    ]
    assert alone == ["GS_HOOKS_GAME"] and fleet == []


async def test_launching_needs_both_settings(caplog: pytest.LogCaptureFixture) -> None:
    async with Sandbox.serve(clock=FakeClock()) as sb:
        config = Config(
            state_path=":memory:",
            gamebase=GamebaseConfig(
                url=sb.url, app_id="sandbox-app", secret_key=Secret("sandbox-secret"), launching_os_code="AOS"
            ),
        )
        warnings = await _warnings_of(caplog, config, clock=sb.clock)
    assert warnings == [
        "configuration: GS_HOOKS_GAMEBASE_LAUNCHING_OS: ignored: the simple-launching poll also needs "
        "GS_HOOKS_GAMEBASE_LAUNCHING_VERSION; it is off"
    ]


async def test_sessions_counted_towards_a_server_id_ccu_does_not_report(caplog: pytest.LogCaptureFixture) -> None:
    async with Sandbox.serve(clock=FakeClock()) as sb:
        config = Config(  # built in code: the sessions' default server id stays "0"
            state_path=":memory:",
            ccu=CcuConfig(url=sb.urls()["ccu_url"], game="sandbox_game", server_ids=("east1",)),
        )
        warnings = await _warnings_of(caplog, config, clock=sb.clock)
    assert warnings == [
        "configuration: GS_HOOKS_SERVER_ID: the sessions' default server id '0' is not one of the CCU server ids "
        "(east1): sessions opened without a server_id are not reported"
    ]


async def test_a_toml_config_is_told_in_toml_names(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    path = tmp_path / "gs.toml"
    path.write_text('state_path = ":memory:"\n[listener]\ndashboard = true\n', encoding="utf-8")
    assert await _warnings_of(caplog, Config.from_toml(path)) == [
        "configuration: [listener] dashboard: the dashboard is configured but not served: [listener] listen is "
        "unset and hooks.asgi_app() was not mounted before start()"
    ]


async def test_a_clean_configuration_says_nothing_but_the_summary(caplog: pytest.LogCaptureFixture) -> None:
    config = Config(state_path=":memory:", listener=ListenerConfig(listen="127.0.0.1:0", dashboard=True))
    assert await _warnings_of(caplog, config) == []


async def test_each_warning_is_logged_once_per_start(caplog: pytest.LogCaptureFixture) -> None:
    config = Config.from_env({"GS_HOOKS_STATE": ":memory:", "GS_HOOKS_CCU_ULR": "x"})
    hooks = setup(config)
    with caplog.at_level(logging.INFO, logger="gs_hooks"):
        async with hooks:
            hooks.health()
            hooks.ready_document()
    assert len(_warnings(caplog)) == 1


# -- the summary -----------------------------------------------------------------------------------------------------


def _summary(caplog: pytest.LogCaptureFixture) -> str:
    lines = [r.getMessage() for r in _records(caplog, logging.INFO) if r.getMessage().startswith("gs_hooks started")]
    assert len(lines) == 1, lines
    return lines[0]


async def test_summary_of_a_bare_setup_says_what_is_off_and_why(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="gs_hooks"):
        await _start_and_stop(setup(Config(state_path=":memory:")))
    summary = _summary(caplog)
    for part in (
        "listener: off (GS_HOOKS_LISTEN unset)",
        "server ids: 0 (sessions default 0)",
        "ccu: off (GS_HOOKS_CCU_URL unset)",
        "gamebase: off (GS_HOOKS_GAMEBASE_URL unset)",
        "hive webhook: off (GS_HOOKS_HIVE_AUTH_KEY unset)",
        "webstore: off (no webstore_profile callback)",
        "gamepot inquiry: off (GS_HOOKS_GAMEPOT_PROJECT_ID unset)",
        "dashboard: off (GS_HOOKS_DASHBOARD unset)",
        "metrics: loopback only (GS_HOOKS_LISTEN_ADMIN_ALLOW unset)",
        "store: :memory:",
    ):
        assert part in summary, (part, summary)


async def test_summary_of_a_full_setup_names_hosts_and_never_a_secret_or_path(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secrets = {
        "gamebase": "gb-secret-summary-1",
        "hive": "hive-bearer-summary-1",
        "gamepot": "gamepot-key-summary-1",
        "dashboard": "dash-key-summary-1",
        "webstore": "webstore-key-summary-1",
    }
    clock = FakeClock()
    async with Sandbox.serve(clock=clock, gamebase_secret=secrets["gamebase"], game_keys=("tinyfarm_KR",)) as sb:
        config = Config(
            state_path=":memory:",
            sessions=SessionsConfig(server_id="east1"),
            ccu=CcuConfig(url=sb.urls()["ccu_url"], game="tinyfarm_KR", server_ids=("east1", "east2")),
            gamebase=GamebaseConfig(
                url=sb.url, app_id="sandbox-app", secret_key=Secret(secrets["gamebase"]), ban_poll_s=0
            ),
            hive=HiveConfig(
                auth_key=Secret(secrets["hive"]),
                game_index=539,
                suspension_path="/hive/token-in-path-abc123",
                webstore_key=Secret(secrets["webstore"]),
            ),
            listener=ListenerConfig(
                listen="127.0.0.1:0",
                dashboard=True,
                dashboard_key=Secret(secrets["dashboard"]),
                admin_allow=("10.0.0.0/8",),
            ),
            gamepot=GamePotConfig(project_id="proj-1", api_key=Secret(secrets["gamepot"])),
        )
        hooks = setup(config, clock=clock, webstore_profile=lambda cs_code: None)
        with caplog.at_level(logging.INFO, logger="gs_hooks"):
            async with hooks:
                url = hooks.listener.url if hooks.listener is not None else ""
        host = sb.url.removeprefix("http://")
    summary = _summary(caplog)
    assert _warnings(caplog) == []
    for part in (
        f"listener: {url}",
        "server ids: east1, east2 (sessions default east1)",
        f"ccu: on (collector {host}, every 120 s, socket mode, counting players)",
        f"gamebase: on ({host} v1.0: token verifier, maintenance watch every 30 s, "
        "ban poll off (GS_HOOKS_GAMEBASE_BAN_POLL_S=0); fail_closed)",
        "hive webhook: on (game index 539)",
        "webstore: on (key required)",
        "gamepot inquiry: on, from 10.0.0.0/8",
        "dashboard: on (key required), loopback only (GS_HOOKS_LISTEN_DASHBOARD_ALLOW unset)",
        "metrics: from 10.0.0.0/8",
    ):
        assert part in summary, (part, summary)
    assert url.startswith("http://127.0.0.1:")
    for secret in secrets.values():
        assert secret not in summary
    assert "token-in-path" not in summary and "/modules/" not in summary and "sandbox-app" not in summary
