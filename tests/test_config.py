from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from gs_hooks import (
    CcuConfig,
    Config,
    ConfigError,
    GamebaseConfig,
    GamePotConfig,
    HiveConfig,
    ListenerConfig,
    Secret,
    SessionsConfig,
)
from gs_hooks._config import ENV_VARS


def test_defaults_leave_every_platform_off() -> None:
    c = Config.from_env({})
    assert c.ccu.url is None
    assert c.gamebase.url is None
    assert c.hive.auth_key is None
    assert c.listener.listen is None
    assert c.gamepot.project_id is None
    assert c.ccu.period_s == 120
    assert c.hive.suspension_path == "/hive/suspensions"


def test_from_env_reads_the_public_contract() -> None:
    env = {
        "GS_HOOKS_GAME": "tinyfarm_KR",
        "GS_HOOKS_SERVER_ID": "tinyfarm01, 2",
        "GS_HOOKS_CCU_URL": "http://127.0.0.1:8700/modules/gameuser/currentuser/",
        "GS_HOOKS_CCU_PERIOD_S": "60",
        "GS_HOOKS_CCU_SPOOL": "/tmp/spool.sqlite3",
        "GS_HOOKS_GAMEBASE_URL": "http://127.0.0.1:8700",
        "GS_HOOKS_GAMEBASE_APP_ID": "C3JmSctU",
        "GS_HOOKS_GAMEBASE_SECRET_KEY": "IgsaAP-very-secret",
        "GS_HOOKS_LISTEN": "127.0.0.1:9100",
        "GS_HOOKS_HIVE_AUTH_KEY": "bearer-secret",
        "GS_HOOKS_HIVE_GAME_INDEX": "539",
        "GS_HOOKS_HIVE_SUSPENSION_PATH": "/hooks/suspended",
        "GS_HOOKS_GAMEPOT_PROJECT_ID": "12a0f2ff",
        "GS_HOOKS_GAMEPOT_API_KEY": "x-api-secret",
        "GS_HOOKS_GAMEBASE_MAINTENANCE_WARN_S": "300,60",
        "GS_HOOKS_DASHBOARD": "yes",
    }
    c = Config.from_env(env)
    assert c.ccu.game == "tinyfarm_KR"
    assert c.ccu.server_ids == ("tinyfarm01", "2")
    assert c.sessions.server_id == "tinyfarm01"
    assert c.ccu.period_s == 60
    assert c.ccu.spool_path == "/tmp/spool.sqlite3"
    assert c.gamebase.secret_key == Secret("IgsaAP-very-secret")
    assert c.hive.game_index == 539
    assert c.hive.suspension_path == "/hooks/suspended"
    assert c.gamebase.maintenance_warn_s == (300.0, 60.0)
    assert c.listener.dashboard is True
    text = repr(c) + str(c)
    for secret in ("IgsaAP-very-secret", "bearer-secret", "x-api-secret"):
        assert secret not in text


@pytest.mark.parametrize(
    ("env", "var", "fragment"),
    [
        ({"GS_HOOKS_SERVER_ID": "tiny_farm"}, "GS_HOOKS_SERVER_ID", "1–20 letters/digits"),
        ({"GS_HOOKS_SERVER_ID": "a" * 21}, "GS_HOOKS_SERVER_ID", "1–20 letters/digits"),
        ({"GS_HOOKS_CCU_PERIOD_S": "90"}, "GS_HOOKS_CCU_PERIOD_S", "whole number of minutes"),
        ({"GS_HOOKS_CCU_PERIOD_S": "two"}, "GS_HOOKS_CCU_PERIOD_S", "not an integer"),
        ({"GS_HOOKS_CCU_URL": "ftp://x"}, "GS_HOOKS_CCU_URL", "not an http(s) URL"),
        ({"GS_HOOKS_CCU_URL": "http://x/"}, "GS_HOOKS_GAME", "game key is required"),
        (
            {"GS_HOOKS_GAMEBASE_URL": "http://x", "GS_HOOKS_GAMEBASE_APP_ID": "a"},
            "GS_HOOKS_GAMEBASE_SECRET_KEY",
            "required",
        ),
        ({"GS_HOOKS_LISTEN": "localhost"}, "GS_HOOKS_LISTEN", "host:port"),
        ({"GS_HOOKS_DUPLICATE_LOGIN": "maybe"}, "GS_HOOKS_DUPLICATE_LOGIN", "allow"),
        ({"GS_HOOKS_DASHBOARD": "perhaps"}, "GS_HOOKS_DASHBOARD", "not a boolean"),
        ({"GS_HOOKS_HIVE_AUTH_KEY": "k"}, "GS_HOOKS_HIVE_GAME_INDEX", "game index is required"),
        ({"GS_HOOKS_LISTEN_WEBSTORE_ALLOW": "10.0.0.0/8,nope"}, "GS_HOOKS_LISTEN_WEBSTORE_ALLOW", "CIDR"),
    ],
)
def test_bad_values_name_the_variable_and_what_is_allowed(env: dict[str, str], var: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_env(env)
    assert info.value.setting == var
    assert fragment in str(info.value)
    assert str(info.value).startswith(var + ":")


@pytest.mark.parametrize(
    ("make", "var", "fragment"),
    [
        (lambda: CcuConfig(period_s=7), "GS_HOOKS_CCU_PERIOD_S", "whole number of minutes"),
        (lambda: CcuConfig(url="http://x/"), "GS_HOOKS_GAME", "game key is required"),
        (lambda: CcuConfig(server_ids=("a", "a")), "GS_HOOKS_SERVER_ID", "distinct"),
        (lambda: CcuConfig(backoff_base_s=5, backoff_max_s=1), "GS_HOOKS_CCU_BACKOFF_BASE_S", "base <= max"),
        (lambda: CcuConfig(send_method="post"), "GS_HOOKS_CCU_SEND_METHOD", "use form or body"),  # type: ignore[arg-type]
        (lambda: SessionsConfig(server_id="tiny_farm"), "GS_HOOKS_SERVER_ID", "1–20 letters/digits"),
        (lambda: GamebaseConfig(retries=11), "GS_HOOKS_GAMEBASE_RETRIES", "0–10"),
        (lambda: GamebaseConfig(url="http://x", app_id="a"), "GS_HOOKS_GAMEBASE_SECRET_KEY", "required"),
        (lambda: HiveConfig(player_key_format="p"), "GS_HOOKS_HIVE_PLAYER_KEY_FORMAT", "must contain {id}"),
        (lambda: HiveConfig(auth_key=Secret("k")), "GS_HOOKS_HIVE_GAME_INDEX", "game index is required"),
        (lambda: ListenerConfig(listen="localhost"), "GS_HOOKS_LISTEN", "host:port"),
        (lambda: ListenerConfig(tls_cert="cert.pem"), "GS_HOOKS_LISTEN_TLS_KEY", "the key is missing"),
        (lambda: ListenerConfig(tls_key="key.pem"), "GS_HOOKS_LISTEN_TLS_CERT", "the certificate is missing"),
        (lambda: ListenerConfig(admin_allow=("nope",)), "GS_HOOKS_LISTEN_ADMIN_ALLOW", "CIDR"),
        (lambda: GamePotConfig(history_retention_days=0), "GS_HOOKS_GAMEPOT_RETENTION_DAYS", "must be >= 1"),
        (lambda: GamePotConfig(project_id=" ", api_key=Secret("k")), "GS_HOOKS_GAMEPOT_PROJECT_ID", "is empty"),
        (lambda: msgspec.structs.replace(CcuConfig(), period_s=90), "GS_HOOKS_CCU_PERIOD_S", "minutes"),
    ],
)
def test_sections_check_themselves(make: object, var: str, fragment: str) -> None:
    assert callable(make)
    with pytest.raises(ConfigError) as info:
        make()
    assert info.value.setting == var
    assert fragment in str(info.value)


def test_a_toml_key_is_named_for_a_section_check(tmp_path: Path) -> None:
    p = tmp_path / "gs.toml"
    p.write_text("[ccu]\nperiod_s = 90\n")
    with pytest.raises(ConfigError, match=r"^\[ccu\] period_s: 90 is not allowed"):
        Config.from_toml(p)


def test_each_variable_carries_its_fields_default_and_parser() -> None:
    by_name = {v.name: v for v in ENV_VARS}
    assert by_name["GS_HOOKS_CCU_PERIOD_S"].default == 120
    assert by_name["GS_HOOKS_CCU_PERIOD_S"].parse("x", " 60 ") == 60
    assert by_name["GS_HOOKS_GAMEBASE_MAINTENANCE_WARN_S"].parse("x", "5, 1.5") == (5.0, 1.5)
    assert by_name["GS_HOOKS_DASHBOARD"].parse("x", "on") is True
    assert isinstance(by_name["GS_HOOKS_HIVE_AUTH_KEY"].parse("x", "k"), Secret)
    assert by_name["GS_HOOKS_STATE"].section == ""


def test_secret_never_shows() -> None:
    s = Secret("hunter2")
    assert "hunter2" not in repr(s) and "hunter2" not in str(s) and "hunter2" not in f"{s}"
    assert s.get_secret_value() == "hunter2"
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(s)


def test_config_is_frozen_and_keyword_only() -> None:
    c = Config.from_env({})
    with pytest.raises(AttributeError):
        c.state_path = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        Config(":memory:")  # type: ignore[misc]


def test_from_toml(tmp_path: Path) -> None:
    p = tmp_path / "gs.toml"
    p.write_text(
        'state_path = ":memory:"\n'
        "[ccu]\n"
        'url = "http://127.0.0.1:1/modules/gameuser/currentuser/"\n'
        'game = "derbydays_SEA"\n'
        'server_ids = ["s1", "s2"]\n'
        "[gamebase]\n"
        'url = "http://127.0.0.1:1"\napp_id = "app"\nsecret_key = "tomlsecret"\n'
    )
    c = Config.from_toml(p)
    assert c.state_path == ":memory:"
    assert c.ccu.server_ids == ("s1", "s2")
    assert c.sessions.server_id == "s1"
    assert c.gamebase.secret_key == Secret("tomlsecret")
    assert "tomlsecret" not in repr(c)


def test_from_toml_errors_name_the_key(tmp_path: Path) -> None:
    p = tmp_path / "gs.toml"
    p.write_text('[ccu]\nserver_ids = ["bad id"]\n')
    with pytest.raises(ConfigError, match=r"^\[ccu\] server_ids: .*1–20 letters/digits"):
        Config.from_toml(p)
    p.write_text("[ccu]\nnope = 1\n")
    with pytest.raises(ConfigError, match="unknown setting"):
        Config.from_toml(p)
    p.write_text("[ccu]\nperiod_s = 'x'\n")
    with pytest.raises(ConfigError, match=r"\[ccu\] period_s"):
        Config.from_toml(p)


def test_every_env_var_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    missing = [v.name for v in ENV_VARS if f"`{v.name}`" not in readme]
    assert missing == []
    names = [v.name for v in ENV_VARS]
    assert len(names) == len(set(names))


def test_every_struct_field_has_one_env_var() -> None:
    from gs_hooks._config import _ALIASES, _SECTIONS

    covered = {(v.section, v.field) for v in ENV_VARS} | set(_ALIASES)

    for section, cls in _SECTIONS.items():
        for field in msgspec.structs.fields(cls):
            assert (section, field.name) in covered, (section, field.name)


def test_readme_table_is_the_generated_one() -> None:
    import contextlib
    import io
    import runpy

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        runpy.run_path(str(Path(__file__).parents[1] / "scripts" / "config_table.py"), run_name="__main__")
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    table = buf.getvalue().rstrip("\n")
    assert table in readme, "README's configuration table is stale: run `python scripts/config_table.py`"


# -- validation gaps: every value a production operator could plausibly get wrong is refused by its own name ---------

FLOAT_VARS = [v.name for v in ENV_VARS if v.kind in ("float", "floats")]


def test_every_float_setting_is_covered_below() -> None:
    seconds = {v.name for v in ENV_VARS if v.name.endswith("_S")}
    assert seconds - set(FLOAT_VARS) == {"GS_HOOKS_CCU_PERIOD_S"}  # an int: never inf or nan
    assert "GS_HOOKS_GAMEBASE_MAINTENANCE_WARN_S" in FLOAT_VARS and "GS_HOOKS_HIVE_DATE_UTC_OFFSET_H" in FLOAT_VARS


@pytest.mark.parametrize("raw", ["inf", "-inf", "nan", "Infinity"])
@pytest.mark.parametrize("var", FLOAT_VARS)
def test_non_finite_numbers_are_refused_for_every_float_setting(var: str, raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_env({var: raw})
    assert info.value.setting == var
    assert "finite number" in info.value.problem


def test_a_non_finite_number_in_a_list_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_env({"GS_HOOKS_GAMEBASE_MAINTENANCE_WARN_S": "600,inf"})
    assert info.value.setting == "GS_HOOKS_GAMEBASE_MAINTENANCE_WARN_S"
    assert "finite number" in info.value.problem


def test_non_finite_numbers_are_refused_from_toml_and_by_hand(tmp_path: Path) -> None:
    p = tmp_path / "gs.toml"
    p.write_text("[listener]\nrequest_deadline_s = inf\n")
    with pytest.raises(ConfigError, match=r"^\[listener\] request_deadline_s: inf is not allowed: use a finite"):
        Config.from_toml(p)
    p.write_text("[gamebase]\nmaintenance_warn_s = [60.0, nan]\n")
    with pytest.raises(ConfigError, match=r"^\[gamebase\] maintenance_warn_s: .*finite"):
        Config.from_toml(p)
    with pytest.raises(ConfigError) as info:
        GamebaseConfig(timeout_s=float("inf"))
    assert info.value.setting == "GS_HOOKS_GAMEBASE_TIMEOUT_S"


def test_zero_still_turns_the_polls_off() -> None:
    c = Config.from_env({"GS_HOOKS_GAMEBASE_MAINTENANCE_POLL_S": "0", "GS_HOOKS_GAMEBASE_BAN_POLL_S": "0"})
    assert (c.gamebase.maintenance_poll_s, c.gamebase.ban_poll_s) == (0.0, 0.0)


@pytest.mark.parametrize(
    ("env", "var", "fragment"),
    [
        # a rule over two settings names the one the operator changed, and each is checked on its own first
        ({"GS_HOOKS_CCU_BACKOFF_MAX_S": "-1"}, "GS_HOOKS_CCU_BACKOFF_MAX_S", "must be > 0"),
        ({"GS_HOOKS_CCU_BACKOFF_BASE_S": "0"}, "GS_HOOKS_CCU_BACKOFF_BASE_S", "must be > 0"),
        ({"GS_HOOKS_CCU_BACKOFF_MAX_S": "1"}, "GS_HOOKS_CCU_BACKOFF_MAX_S", "below the first retry delay (2.0 s)"),
        ({"GS_HOOKS_CCU_BACKOFF_BASE_S": "300"}, "GS_HOOKS_CCU_BACKOFF_BASE_S", "above the largest retry delay"),
        ({"GS_HOOKS_HIVE_GAME_INDEX": "-5"}, "GS_HOOKS_HIVE_GAME_INDEX", "non-negative integer"),
        ({"GS_HOOKS_HIVE_GAME_INDEX": str(2**63)}, "GS_HOOKS_HIVE_GAME_INDEX", "non-negative integer"),
        ({"GS_HOOKS_HIVE_WEBSTORE_KEY_HEADER": "bad header:"}, "GS_HOOKS_HIVE_WEBSTORE_KEY_HEADER", "header name"),
        ({"GS_HOOKS_HIVE_WEBSTORE_KEY_HEADER": "x-schlüssel"}, "GS_HOOKS_HIVE_WEBSTORE_KEY_HEADER", "header name"),
        ({"GS_HOOKS_CCU_URL": "http://h:99999/"}, "GS_HOOKS_CCU_URL", "not an http(s) URL"),
        ({"GS_HOOKS_GAMEBASE_URL": "https://:443"}, "GS_HOOKS_GAMEBASE_URL", "no host"),
        ({"GS_HOOKS_GAMEPOT_URL": "https://a b.example"}, "GS_HOOKS_GAMEPOT_URL", "not an http(s) URL"),
        ({"GS_HOOKS_CCU_XML_ROOT": "1root"}, "GS_HOOKS_CCU_XML_ROOT", "'1root' is not an XML name: a letter"),
        ({"GS_HOOKS_HIVE_SUSPENSION_PATH": "/hive/ban list"}, "GS_HOOKS_HIVE_SUSPENSION_PATH", "no spaces, ? or #"),
        ({"GS_HOOKS_HIVE_SUSPENSION_PATH": "/hive?x=1"}, "GS_HOOKS_HIVE_SUSPENSION_PATH", "no spaces, ? or #"),
        (
            {"GS_HOOKS_GAMEBASE_LAUNCHING_OS": "android"},
            "GS_HOOKS_GAMEBASE_LAUNCHING_OS",
            "use AOS, IOS, WEB or WINDOWS",
        ),
    ],
)
def test_gaps_found_in_review_name_the_variable(env: dict[str, str], var: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_env(env)
    assert info.value.setting == var
    assert fragment in info.value.problem


def test_a_bad_game_key_says_what_is_wrong_not_that_it_is_missing() -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_env({"GS_HOOKS_CCU_URL": "http://127.0.0.1:1/", "GS_HOOKS_GAME": "a b<"})
    assert info.value.setting == "GS_HOOKS_GAME"
    assert "'a b<' is not a Hive game key" in info.value.problem and "letters, digits" in info.value.problem
    assert "required" not in info.value.problem
    with pytest.raises(ConfigError, match="game key is required"):
        Config.from_env({"GS_HOOKS_CCU_URL": "http://127.0.0.1:1/"})


def test_accepted_values_stay_accepted() -> None:
    c = Config.from_env(
        {
            "GS_HOOKS_HIVE_GAME_INDEX": "0",
            "GS_HOOKS_HIVE_SUSPENSION_PATH": "/hive/suspensions-v2/Tk_1~%41",
            "GS_HOOKS_GAMEBASE_LAUNCHING_OS": "WINDOWS",
            "GS_HOOKS_HIVE_WEBSTORE_KEY_HEADER": "X-Api-Key",
            "GS_HOOKS_CCU_URL": "http://[::1]:8700/modules/gameuser/currentuser/",
            "GS_HOOKS_GAME": "derbydays_SEA",
            "GS_HOOKS_CCU_BACKOFF_BASE_S": "0.5",
            "GS_HOOKS_CCU_BACKOFF_MAX_S": "0.5",
        }
    )
    assert (c.hive.game_index, c.hive.webstore_key_header, c.ccu.backoff_max_s) == (0, "X-Api-Key", 0.5)
    # the CCU's game-key rule applies while the CCU is on: a fleet-only game may use a '.'
    assert Config.from_env({"GS_HOOKS_GAME": "my.game", "GS_HOOKS_REDIS_URL": "redis://h"}).fleet.game == "my.game"


def test_a_toml_error_names_toml_keys_in_its_words_too(tmp_path: Path) -> None:
    p = tmp_path / "gs.toml"
    p.write_text('[fleet]\nprefix = "staging"\n')
    with pytest.raises(ConfigError) as info:
        Config.from_toml(p)
    assert info.value.setting == "[fleet] prefix"
    assert "set [fleet] url to turn fleet mode on, or remove this setting" in info.value.problem
    assert "GS_HOOKS_" not in str(info.value)
