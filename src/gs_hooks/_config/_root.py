"""The whole configuration, and reading it from the environment or a TOML file."""

from __future__ import annotations

import os
import re
import tomllib
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from .._exceptions import ConfigError
from ._fleet import FleetConfig
from ._sections import CcuConfig, GamebaseConfig, GamePotConfig, HiveConfig, ListenerConfig, SessionsConfig
from ._setting import EnvVar, Secret, Section, Setting, env_vars, one_of, settings_of
from ._warnings import did_you_mean, read_origin, remember, unknown_env_vars

__all__ = ["ENV_VARS", "Config", "setting_namer"]


class Config(Section, frozen=True, kw_only=True, weakref=True):
    """Everything :func:`gs_hooks.setup` needs.

    Attributes:
        state_path: the sqlite store (CCU spool, history, bans, watermarks); ``:memory:`` disables persistence.
        http_backend: the platform calls' HTTP client on asyncio: ``fast`` (the library's own; aiohttp anyway when
            proxies are set in the environment) or ``aiohttp``. On trio it is httpx either way.
    """

    state_path: Annotated[str, Setting("GS_HOOKS_STATE", "sqlite store (spool, history, bans); `:memory:` = none")] = (
        "gs_hooks.sqlite3"
    )
    http_backend: Annotated[
        Literal["fast", "aiohttp"],
        Setting(
            "GS_HOOKS_HTTP_CLIENT",
            "platform calls' HTTP client on asyncio: `fast` (own; aiohttp if proxies are set) or `aiohttp`",
            one_of("fast", "aiohttp"),
        ),
    ] = "fast"
    sessions: SessionsConfig = msgspec.field(default_factory=SessionsConfig)
    ccu: CcuConfig = msgspec.field(default_factory=CcuConfig)
    gamebase: GamebaseConfig = msgspec.field(default_factory=GamebaseConfig)
    hive: HiveConfig = msgspec.field(default_factory=HiveConfig)
    listener: ListenerConfig = msgspec.field(default_factory=ListenerConfig)
    gamepot: GamePotConfig = msgspec.field(default_factory=GamePotConfig)
    fleet: FleetConfig = msgspec.field(default_factory=FleetConfig)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        """Read ``GS_HOOKS_*`` variables (``os.environ`` by default). Unset variables keep their defaults.

        Raises:
            ConfigError: a value is not allowed; the message names the variable and what is allowed.
        """
        env = os.environ if environ is None else environ
        tree: dict[str, dict[str, Any]] = {}
        for var in ENV_VARS:
            raw = env.get(var.name)
            if raw is None or raw == "":
                continue
            tree.setdefault(var.section, {})[var.field] = var.parse(var.name, raw)
        _feed_aliases(tree)
        config = _build(cls, tree, _env_name)
        remember(config, "env", unknown_env_vars(env, _KNOWN))
        return config

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> Config:
        """Read a TOML file: top-level ``state_path`` and one table per section (``[ccu]``, ``[gamebase]``...).

        Raises:
            ConfigError: unreadable file, unknown key, or a value that is not allowed.
        """
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(str(p), f"cannot read TOML config: {exc}") from exc
        tree: dict[str, dict[str, Any]] = {"": {}}
        for key, value in data.items():
            if isinstance(value, dict):
                tree[key] = _toml_section(key, value)
            elif ("", key) in _BY_PATH:
                tree[""][key] = value
            else:
                top = [f for (sec, f) in _BY_PATH if sec == ""]
                raise ConfigError(key, f"unknown setting{did_you_mean(key, [*top, *_SECTIONS])}")
        _feed_aliases(tree)
        config = _build(cls, tree, _toml_name)
        remember(config, "toml", ())
        return config


_SECTIONS: dict[str, type[Section]] = {
    "sessions": SessionsConfig,
    "ccu": CcuConfig,
    "gamebase": GamebaseConfig,
    "hive": HiveConfig,
    "listener": ListenerConfig,
    "gamepot": GamePotConfig,
    "fleet": FleetConfig,
}

ENV_VARS: tuple[EnvVar, ...] = (
    *env_vars("", Config),
    *(var for section, cls in _SECTIONS.items() for var in env_vars(section, cls)),
)
"""Every setting's environment variable, TOML key, parser, default and README line, derived from the fields."""

_BY_PATH = {(v.section, v.field): v for v in ENV_VARS}
_KNOWN = frozenset(v.name for v in ENV_VARS)
# Settings fed by another setting's variable: the sessions' default server id is the first GS_HOOKS_SERVER_ID, the
# fleet's game is GS_HOOKS_GAME.
_ALIASES = {
    (section, field): setting.env
    for section, cls in _SECTIONS.items()
    for field, setting in settings_of(cls).items()
    if not setting.own
}


def _feed_aliases(tree: dict[str, dict[str, Any]]) -> None:
    """GS_HOOKS_SERVER_ID (``[ccu] server_ids``) feeds both the CCU server ids and the sessions' default one;
    GS_HOOKS_GAME (``[ccu] game``) also names the fleet (``[fleet] game``)."""
    ccu = tree.get("ccu", {})
    if "server_ids" in ccu and "server_id" not in tree.get("sessions", {}):
        tree.setdefault("sessions", {})["server_id"] = next(iter(ccu["server_ids"]))
    if "game" in ccu and "game" not in tree.get("fleet", {}):
        tree.setdefault("fleet", {})["game"] = ccu["game"]


def _toml_section(key: str, table: dict[str, Any]) -> dict[str, Any]:
    if key not in _SECTIONS:
        raise ConfigError(
            f"[{key}]", f"unknown section{did_you_mean(key, _SECTIONS)}; allowed: {', '.join(sorted(_SECTIONS))}"
        )
    out: dict[str, Any] = {}
    for field, value in table.items():
        var = _BY_PATH.get((key, field))
        if var is None and (key, field) not in _ALIASES:
            fields = [f for (sec, f) in (*_BY_PATH, *_ALIASES) if sec == key]
            raise ConfigError(f"[{key}] {field}", f"unknown setting{did_you_mean(field, fields)}")
        parse = var is not None and isinstance(value, str) and var.kind not in ("list", "floats")
        out[field] = var.parse(f"[{key}] {field}", value) if parse and var else value
    return out


def _env_name(section: str, field: str) -> str:
    var = _BY_PATH.get((section, field))
    if var is not None:
        return var.name
    alias = _ALIASES.get((section, field))
    if alias is not None:
        return alias
    return f"{section}.{field}" if section else field


def _toml_name(section: str, field: str) -> str:
    return f"[{section}] {field}" if section else field


def setting_namer(config: Config) -> Callable[[str, str], str]:
    """``(section, field) -> name`` in the words the operator used: TOML keys for a config read by
    :meth:`Config.from_toml`, environment variables otherwise."""
    return _toml_name if read_origin(config) == "toml" else _env_name


def _dec_hook(type_: type, obj: Any) -> Any:
    if type_ is Secret:
        if isinstance(obj, Secret):
            return obj
        if isinstance(obj, str):
            return Secret(obj)
    raise NotImplementedError


def _build(cls: type[Config], tree: dict[str, dict[str, Any]], name: Callable[[str, str], str]) -> Config:
    sections: dict[str, Any] = {}
    try:
        for section, section_cls in _SECTIONS.items():
            try:
                sections[section] = msgspec.convert(
                    tree.get(section, {}), section_cls, dec_hook=_dec_hook, str_keys=True
                )
            except msgspec.ValidationError as exc:
                if isinstance(exc.__cause__, ConfigError):  # the section's own check: it named the setting
                    raise exc.__cause__ from None
                field = _field_of(str(exc))
                raise ConfigError(name(section, field), _clean(str(exc)) + _allowed(section_cls, field)) from None
        return cls(**tree.get("", {}), **sections)
    except ConfigError as exc:
        if name is _toml_name and exc.setting in _KNOWN:  # checks name the variable: say the TOML key instead
            problem = _ENV_NAME.sub(lambda m: _rename_to_toml(m[0]) if m[0] in _KNOWN else m[0], exc.problem)
            raise ConfigError(_rename_to_toml(exc.setting), problem) from None
        raise
    except TypeError as exc:
        raise ConfigError("config", str(exc)) from None


_ENV_NAME = re.compile(r"\bGS_HOOKS_[A-Z0-9_]+")
"""A variable named in a problem's words (renamed to its TOML key for a config read from TOML)."""


def _field_of(message: str) -> str:
    m = re.search(r"at `\$\.([A-Za-z_]+)", message)
    return m.group(1) if m else "?"


def _allowed(cls: type, field: str) -> str:
    hint = typing.get_type_hints(cls).get(field)
    if typing.get_origin(hint) is Literal:
        return "; allowed: " + ", ".join(str(a) for a in typing.get_args(hint))
    return ""


def _clean(message: str) -> str:
    return re.sub(r" - at `\$[^`]*`", "", message)


def _rename_to_toml(setting: str) -> str:
    var = next(v for v in ENV_VARS if v.name == setting)
    return _toml_name(var.section, var.field)
