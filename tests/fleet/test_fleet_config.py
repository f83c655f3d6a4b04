"""Fleet settings from the environment: fleet off without a URL, clear errors, the password never shown."""

from __future__ import annotations

import pytest

from gs_hooks import ConfigError, Secret
from gs_hooks.fleet import FLEET_ENV_VARS, FleetConfig, fleet_config_from_env, redact_url


def test_no_url_means_fleet_off() -> None:
    assert fleet_config_from_env({"GS_HOOKS_GAME": "g"}) is None


def test_a_fleet_setting_without_url_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        fleet_config_from_env({"GS_HOOKS_REDIS_PREFIX": "x"})
    assert info.value.setting == "GS_HOOKS_REDIS_PREFIX"


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
