"""Configuration: frozen, keyword-only structs, one per capability.

Nothing reads the environment at import time: :meth:`Config.from_env` and :meth:`Config.from_toml` are explicit.
Every setting is declared once, on its field (:mod:`._setting`): its one environment variable (``GS_HOOKS_*``),
its TOML key (``[section] field``), its parser, default, README line (:data:`ENV_VARS`, from which
``scripts/config_table.py`` prints the README's table) and its check are derived from that declaration. Every
section checks itself when it is made. A component whose platform URL is not configured stays off.
"""

from ._fleet import FleetConfig, redact_url
from ._root import _ALIASES, _SECTIONS, ENV_VARS, Config, setting_namer
from ._sections import (
    _DEFAULT_VERIFY_CONCURRENCY,
    GAMEBASE_DEFAULT_URL,
    GAMEPOT_DEFAULT_URL,
    HIVE_CCU_LIVE_URL,
    HIVE_CCU_SANDBOX_URL,
    CcuConfig,
    GamebaseConfig,
    GamePotConfig,
    HiveConfig,
    ListenerConfig,
    SessionsConfig,
)
from ._setting import EnvVar, Secret, Section, Setting, parse_hostport
from ._warnings import LOOPBACK_CIDRS, OTHER_ENV_VARS, ConfigWarning, operator_allow, read_warnings

__all__ = [
    "ENV_VARS",
    "GAMEBASE_DEFAULT_URL",
    "GAMEPOT_DEFAULT_URL",
    "HIVE_CCU_LIVE_URL",
    "HIVE_CCU_SANDBOX_URL",
    "LOOPBACK_CIDRS",
    "OTHER_ENV_VARS",
    "_ALIASES",
    "_DEFAULT_VERIFY_CONCURRENCY",
    "_SECTIONS",
    "CcuConfig",
    "Config",
    "ConfigWarning",
    "EnvVar",
    "FleetConfig",
    "GamePotConfig",
    "GamebaseConfig",
    "HiveConfig",
    "ListenerConfig",
    "Secret",
    "Section",
    "SessionsConfig",
    "Setting",
    "operator_allow",
    "parse_hostport",
    "read_warnings",
    "redact_url",
    "setting_namer",
]
