"""Fleet settings (the main configuration's ``fleet`` section): fleet off without a URL, clear errors, the
password never shown, every variable a known setting."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from gs_hooks import Config, ConfigError, Secret
from gs_hooks._config import ENV_VARS, read_warnings
from gs_hooks.fleet import FleetConfig, redact_url

FLEET_ENV_VARS = [v for v in ENV_VARS if v.section == "fleet"]


def fleet_config_from_env(environ: Mapping[str, str]) -> FleetConfig | None:
    fleet = Config.from_env(environ).fleet
    return fleet if fleet.enabled else None


def test_no_url_means_fleet_off() -> None:
    assert fleet_config_from_env({"GS_HOOKS_GAME": "g"}) is None


def test_a_fleet_setting_without_url_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        fleet_config_from_env({"GS_HOOKS_REDIS_PREFIX": "x"})
    assert info.value.setting == "GS_HOOKS_REDIS_PREFIX"
    assert "set GS_HOOKS_REDIS_URL to turn fleet mode on, or remove this setting" in info.value.problem


def test_defaults_and_tunables() -> None:
    c = fleet_config_from_env({"GS_HOOKS_REDIS_URL": "redis://127.0.0.1:6379/0", "GS_HOOKS_GAME": "tinyfarm_KR"})
    assert c is not None
    assert (c.prefix, c.heartbeat_s, c.member_ttl_s, c.lease_ttl_s, c.lease_renew_s) == ("gs_hooks", 1, 5, 3, 1)
    assert (c.recheck_s, c.ccu_staleness_s, c.ccu_collect_wait_s) == (5, 5, 10)
    assert c.key_base == "gs_hooks:tinyfarm_KR:"
    c2 = fleet_config_from_env(
        {
            "GS_HOOKS_REDIS_URL": "redis://r:6379",
            "GS_HOOKS_GAME": "g",
            "GS_HOOKS_FLEET_LEASE_TTL_S": "6",
            "GS_HOOKS_FLEET_LEASE_RENEW_S": "2",
            "GS_HOOKS_FLEET_BANS_MAXLEN": "500",
        }
    )
    assert c2 is not None and (c2.lease_ttl_s, c2.lease_renew_s, c2.bans_maxlen) == (6, 2, 500)


def test_password_in_url_is_moved_out_and_never_shown() -> None:
    secret = "hunter2-very-secret"
    c = fleet_config_from_env({"GS_HOOKS_REDIS_URL": f"redis://user:{secret}@10.0.0.1:6380/2", "GS_HOOKS_GAME": "g"})
    assert c is not None
    assert c.password == Secret(secret)
    assert c.url == "redis://user@10.0.0.1:6380/2"
    assert secret not in repr(c) and secret not in str(c)
    assert redact_url(f"redis://:{secret}@h:1/0") == "redis://:***@h:1/0"


def test_password_variable_is_a_secret() -> None:
    c = fleet_config_from_env(
        {"GS_HOOKS_REDIS_URL": "rediss://h:6379", "GS_HOOKS_GAME": "g", "GS_HOOKS_REDIS_PASSWORD": "pw-123456"}
    )
    assert c is not None and isinstance(c.password, Secret) and "pw-123456" not in repr(c)


def test_password_given_twice_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        fleet_config_from_env(
            {"GS_HOOKS_REDIS_URL": "redis://:abc123456@h", "GS_HOOKS_GAME": "g", "GS_HOOKS_REDIS_PASSWORD": "x1234567"}
        )
    assert info.value.setting == "GS_HOOKS_REDIS_PASSWORD" and "abc123456" not in str(info.value)


@pytest.mark.parametrize(
    ("env", "setting", "text"),
    [
        ({"GS_HOOKS_REDIS_URL": "http://h:1"}, "GS_HOOKS_REDIS_URL", "redis://"),
        ({"GS_HOOKS_REDIS_URL": "redis://:pw-secret-1@"}, "GS_HOOKS_REDIS_URL", "with a host"),
        ({"GS_HOOKS_REDIS_URL": "redis://h:99999"}, "GS_HOOKS_REDIS_URL", "not a URL"),
        ({"GS_HOOKS_REDIS_PREFIX": "a:b"}, "GS_HOOKS_REDIS_PREFIX", "1-64"),
        ({"GS_HOOKS_FLEET_HEARTBEAT_S": "x"}, "GS_HOOKS_FLEET_HEARTBEAT_S", "not a number"),
        ({"GS_HOOKS_FLEET_BANS_MAXLEN": "1.5"}, "GS_HOOKS_FLEET_BANS_MAXLEN", "not an integer"),
        ({"GS_HOOKS_FLEET_HEARTBEAT_S": "0"}, "GS_HOOKS_FLEET_HEARTBEAT_S", "must be > 0"),
        ({"GS_HOOKS_FLEET_MEMBER_TTL_S": "1.5"}, "GS_HOOKS_FLEET_MEMBER_TTL_S", "twice the heartbeat"),
        ({"GS_HOOKS_FLEET_LEASE_RENEW_S": "2"}, "GS_HOOKS_FLEET_LEASE_RENEW_S", "half the lease"),
        ({"GS_HOOKS_FLEET_BLOCK_S": "5"}, "GS_HOOKS_FLEET_BLOCK_S", "below the socket timeout"),
        # a rule over two settings names the one that was changed from its default
        ({"GS_HOOKS_FLEET_HEARTBEAT_S": "3"}, "GS_HOOKS_FLEET_HEARTBEAT_S", "at most half the member TTL (5.0 s)"),
        ({"GS_HOOKS_FLEET_LEASE_TTL_S": "1.5"}, "GS_HOOKS_FLEET_LEASE_TTL_S", "twice the lease renewal (1.0 s)"),
        ({"GS_HOOKS_FLEET_SOCKET_TIMEOUT_S": "1"}, "GS_HOOKS_FLEET_SOCKET_TIMEOUT_S", "above the blocking read"),
        ({"GS_HOOKS_FLEET_ADMIN_TIMEOUT_S": "inf"}, "GS_HOOKS_FLEET_ADMIN_TIMEOUT_S", "finite number"),
    ],
)
def test_bad_values_name_their_variable(env: dict[str, str], setting: str, text: str) -> None:
    full = {"GS_HOOKS_REDIS_URL": "redis://127.0.0.1:6379", "GS_HOOKS_GAME": "g", **env}
    with pytest.raises(ConfigError) as info:
        fleet_config_from_env(full)
    assert info.value.setting == setting and text in info.value.problem
    assert "pw-secret-1" not in str(info.value)


def test_game_is_required() -> None:
    with pytest.raises(ConfigError) as info:
        fleet_config_from_env({"GS_HOOKS_REDIS_URL": "redis://h"})
    assert info.value.setting == "GS_HOOKS_GAME"


def test_every_variable_names_a_field() -> None:
    fields = set(FleetConfig.__struct_fields__)
    assert all(var.field in fields for var in FLEET_ENV_VARS)
    assert len({v.name for v in FLEET_ENV_VARS}) == len(FLEET_ENV_VARS)


def test_a_struct_made_by_hand_checks_itself() -> None:
    with pytest.raises(ConfigError) as info:
        FleetConfig(url="redis://h", game="g", lease_ttl_s=-1)
    assert info.value.setting == "GS_HOOKS_FLEET_LEASE_TTL_S"
    with pytest.raises(ConfigError) as info:
        FleetConfig(url="redis://h", game="a b")
    assert info.value.setting == "GS_HOOKS_GAME"
    assert "GS_HOOKS_GAME" not in {v.name for v in FLEET_ENV_VARS}  # the CCU section's variable, not a fleet row


def test_fleet_variables_are_known_settings_not_warned() -> None:
    env = {
        "GS_HOOKS_REDIS_URL": "redis://127.0.0.1:6379/0",
        "GS_HOOKS_REDIS_PASSWORD": "pw-123456",
        "GS_HOOKS_REDIS_PREFIX": "staging",
        "GS_HOOKS_GAME": "tinyfarm_KR",
        **{v.name: "3" for v in FLEET_ENV_VARS if v.name.startswith("GS_HOOKS_FLEET_")},
        "GS_HOOKS_FLEET_MEMBER_TTL_S": "7",
        "GS_HOOKS_FLEET_LEASE_TTL_S": "7",
        "GS_HOOKS_FLEET_SOCKET_TIMEOUT_S": "8",
    }
    config = Config.from_env(env)
    assert read_warnings(config) == ()
    assert config.fleet.game == "tinyfarm_KR" == config.ccu.game
    assert config.fleet.prefix == "staging" and config.fleet.heartbeat_s == 3
    assert {v.name for v in FLEET_ENV_VARS} >= {
        "GS_HOOKS_REDIS_URL",
        "GS_HOOKS_REDIS_PASSWORD",
        "GS_HOOKS_REDIS_PREFIX",
    }


def test_fleet_section_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[ccu]\ngame = "tinyfarm_KR"\n[fleet]\nurl = "redis://:pw-toml-1@h:6379/0"\nlease_ttl_s = 6\n')
    config = Config.from_toml(path)
    assert config.fleet.enabled and config.fleet.game == "tinyfarm_KR" and config.fleet.lease_ttl_s == 6
    assert config.fleet.password == Secret("pw-toml-1") and "pw-toml-1" not in repr(config)
    path.write_text('[fleet]\nurl = "redis://h:6379/0"\n')
    with pytest.raises(ConfigError) as info:
        Config.from_toml(path)
    assert info.value.setting == "[ccu] game"
    path.write_text('[fleet]\ngame = "g"\nurl = "redis://h:6379/0"\nlease_renew_s = 2\n')
    with pytest.raises(ConfigError) as info:
        Config.from_toml(path)
    assert info.value.setting == "[fleet] lease_renew_s"
    path.write_text('[fleet]\ngame = "g"\nurl = "redis://h:6379/0"\nlease_ttl_s = 1\n')
    with pytest.raises(ConfigError) as info:
        Config.from_toml(path)
    assert info.value.setting == "[fleet] lease_ttl_s"  # the setting that was changed, not its default partner


def test_fleet_off_by_default() -> None:
    config = Config()
    assert not config.fleet.enabled and config.fleet.url is None
