"""How a setting is declared: once, on its field, as ``Annotated[type, Setting(env, help, check)]``.

Everything else about it is derived from that declaration and the field: the TOML key (``[section] field``), the
parser of its environment variable (from the type), its default (the field's), its line in the README's table
(:data:`~gs_hooks._config.ENV_VARS`) and the check every section runs on itself when it is made
(:class:`Section`), so ``CcuConfig(period_s=7)`` raises :class:`ConfigError` naming ``GS_HOOKS_CCU_PERIOD_S``.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import re
import typing
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec

from .._exceptions import ConfigError

__all__ = [
    "Check",
    "EnvVar",
    "Secret",
    "Section",
    "Setting",
    "at_least",
    "cidrs",
    "defaults_of",
    "env_vars",
    "header_name",
    "http_url",
    "one_of",
    "parse_hostport",
    "positive",
    "settings_of",
    "within",
]

Check = Callable[[Any], str | None]
"""A value's problem, in words for the operator (what is allowed), or None when the value is allowed."""


class Secret:
    """A secret value (key, token) whose ``repr``/``str`` never shows it.

    Use :meth:`get_secret_value` at the single point where the value goes on the wire.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        """The secret itself. Never log it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return hmac.compare_digest(self._value.encode(), other._value.encode())
        return NotImplemented

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> Any:
        raise TypeError("Secret values are not picklable")


@dataclass(frozen=True, slots=True)
class Setting:
    """The declaration of one setting, put on its field: ``Annotated[int, Setting(...)] = 120``.

    Attributes:
        env: its environment variable (``GS_HOOKS_*``): the name errors and warnings use.
        help: its "meaning" cell in the README's table.
        check: what values it allows (see :data:`Check`); types are checked by msgspec while reading.
        own: False for a field fed by another setting's variable (``env`` names that one; no row of its own).
    """

    env: str
    help: str = ""
    check: Check | None = None
    own: bool = True


_SETTINGS: dict[type, dict[str, Setting]] = {}
_FLOATS: dict[type, frozenset[str]] = {}
_DEFAULTS: dict[type, dict[str, Any]] = {}


def settings_of(cls: type) -> dict[str, Setting]:
    """The declared settings of a struct, by field name, in declaration order."""
    found = _SETTINGS.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls, include_extras=True)
        found = {}
        for name in cls.__struct_fields__:  # type: ignore[attr-defined]
            extra = getattr(hints[name], "__metadata__", ())
            setting = next((m for m in extra if isinstance(m, Setting)), None)
            if setting is not None:
                found[name] = setting
        _SETTINGS[cls] = found
    return found


def _float_settings(cls: type) -> frozenset[str]:
    """The settings of a struct that hold floats (``float``, ``float | None``, ``tuple[float, ...]``)."""
    found = _FLOATS.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls)
        found = frozenset(name for name in settings_of(cls) if float in (hints[name], *typing.get_args(hints[name])))
        _FLOATS[cls] = found
    return found


def defaults_of(cls: type[msgspec.Struct]) -> dict[str, Any]:
    """The default of every field of a struct, by field name."""
    found = _DEFAULTS.get(cls)
    if found is None:
        found = {
            f.name: f.default_factory() if f.default is msgspec.NODEFAULT else f.default
            for f in msgspec.structs.fields(cls)
            if f.default is not msgspec.NODEFAULT or f.default_factory is not msgspec.NODEFAULT
        }
        _DEFAULTS[cls] = found
    return found


def _finite(value: Any) -> str | None:
    """Every number finite: ``inf`` (a deadline that never comes, a timeout aiohttp cannot round) and ``nan`` (no
    comparison holds) are refused for every float setting, whatever its own check; 0 keeps the meaning its
    setting documents (``0 = off``)."""
    values = value if isinstance(value, tuple) else (value,)
    for v in values:
        if v is not None and not math.isfinite(v):
            return f"{v!r} is not allowed: use a finite number"
    return None


class Section(msgspec.Struct, frozen=True, kw_only=True):
    """A group of settings that checks itself when it is made (by hand, from the environment or from TOML).

    Every float setting must be finite (no ``inf``, ``nan``), then pass its own check, then the section's rules
    over several fields (:meth:`_together`).

    Raises:
        ConfigError: a value is not allowed; the error names the setting's variable and what is allowed.
    """

    def __post_init__(self) -> None:
        cls = type(self)
        settings = settings_of(cls)
        floats = _float_settings(cls)
        for name, setting in settings.items():
            value = getattr(self, name)
            problem = _finite(value) if name in floats else None
            if problem is None and setting.check is not None:
                problem = setting.check(value)
            if problem is not None:
                raise ConfigError(setting.env, problem)
        for name, ok, problem in self._together():
            if not ok:
                raise ConfigError(settings[name].env, problem)

    def _together(self) -> Iterable[tuple[str, bool, str]]:
        """Rules over several fields: (field named in the error, whether it holds, the problem)."""
        return ()

    def _changed(self, name: str) -> bool:
        """Whether a field differs from its default (for a rule over two fields: the one the operator set is the
        one to name)."""
        defaults = defaults_of(type(self))
        return name not in defaults or getattr(self, name) != defaults[name]

    def _blame(self, first: str, second: str) -> str:
        """Of two fields whose relation does not hold, the one to name in the error: the one that was changed from
        its default, ``first`` when both or neither were."""
        return second if self._changed(second) and not self._changed(first) else first


# -- checks ------------------------------------------------------------------------------------------------------


def positive(value: float) -> str | None:
    """More than zero."""
    return None if value > 0 else "must be > 0"


def at_least(low: float, note: str = "") -> Check:
    """At least ``low`` (``note`` says what the lowest value means, e.g. ``0 = off``)."""
    problem = f"must be >= {low}" + (f" ({note})" if note else "")
    return lambda value: None if value >= low else problem


def within(low: float, high: float) -> Check:
    """From ``low`` to ``high``, both included."""
    return lambda value: None if low <= value <= high else f"must be {low}–{high}"


def one_of(*choices: str) -> Check:
    """One of the words ``choices``."""
    allowed = ", ".join(choices[:-1]) + f" or {choices[-1]}"
    return lambda value: None if value in choices else f"{value!r} is not allowed; use {allowed}"


def http_url(value: str | None) -> str | None:
    """An http(s) URL with a host, and a port from 0 to 65535 if any (or unset)."""
    if value is None:
        return None
    if not value.startswith(("http://", "https://")) or any(c.isspace() or not c.isprintable() for c in value):
        return f"{value!r} is not an http(s) URL (e.g. https://api.example.com)"
    try:
        parts = urlsplit(value)
        _ = parts.port
    except ValueError as exc:
        return f"{value!r} is not an http(s) URL ({exc})"
    if not parts.hostname:
        return f"{value!r} is not an http(s) URL: it has no host (e.g. https://api.example.com)"
    return None


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def header_name(value: str) -> str | None:
    """An HTTP header name (RFC 9110 token: letters, digits and ``!#$%&'*+-.^_`|~``)."""
    if _TOKEN.fullmatch(value):
        return None
    return f"{value!r} is not an HTTP header name: use letters, digits and !#$%&'*+-.^_`|~ (e.g. x-gs-hooks-key)"


def cidrs(values: tuple[str, ...]) -> str | None:
    """IP addresses or CIDR networks."""
    for cidr in values:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return f"{cidr!r} is not an IP address or CIDR network"
    return None


def parse_hostport(value: str, setting: str = "GS_HOOKS_LISTEN") -> tuple[str, int]:
    """Split ``host:port`` (``[::1]:8080`` for IPv6).

    Raises:
        ConfigError: not ``host:port``, or the port is out of range (named ``setting``).
    """
    host, sep, port_s = value.rpartition(":")
    if not sep or not port_s.isdigit():
        raise ConfigError(setting, f"{value!r} is not host:port (e.g. 127.0.0.1:8080)")
    port = int(port_s)
    if not 0 <= port <= 65535:
        raise ConfigError(setting, f"port {port} is out of range 0–65535")
    host = host.strip("[]") or "0.0.0.0"
    return host, port


# -- environment variables ---------------------------------------------------------------------------------------


def _p_str(where: str, raw: str) -> str:
    return raw


def _p_int(where: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(where, f"{raw!r} is not an integer") from None


def _p_float(where: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(where, f"{raw!r} is not a number") from None


def _p_bool(where: str, raw: str) -> bool:
    low = raw.lower()
    if low in {"1", "true", "yes", "on"}:
        return True
    if low in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(where, f"{raw!r} is not a boolean; use 1/0, true/false, yes/no or on/off")


def _p_list(where: str, raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _p_floats(where: str, raw: str) -> tuple[float, ...]:
    return tuple(_p_float(where, part) for part in _p_list(where, raw))


def _p_secret(where: str, raw: str) -> Secret:
    return Secret(raw)


_PARSERS: dict[str, Callable[[str, str], Any]] = {
    "str": _p_str,
    "int": _p_int,
    "float": _p_float,
    "bool": _p_bool,
    "list": _p_list,
    "floats": _p_floats,
    "secret": _p_secret,
}
_KINDS: dict[Any, str] = {
    str: "str",
    int: "int",
    float: "float",
    bool: "bool",
    Secret: "secret",
    tuple[str, ...]: "list",
    tuple[float, ...]: "floats",
}


def _kind(hint: Any) -> str:
    """The parser of a field's type: ``X | None`` parses as X, a Literal of words as a word."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) is not Literal and type(None) in args:
        (hint,) = [a for a in args if a is not type(None)]
    return "str" if typing.get_origin(hint) is Literal else _KINDS[hint]


@dataclass(frozen=True, slots=True)
class EnvVar:
    """One setting as the environment and the README see it (derived from its :class:`Setting`).

    Attributes:
        name: the environment variable.
        section: the config section (``""`` for a top-level setting).
        field: the field in that section (its TOML key).
        kind: how the variable's text is parsed (``str``, ``int``, ``float``, ``bool``, ``list``, ``floats``,
            ``secret``).
        help: the README's line.
        default: the field's default.
    """

    name: str
    section: str
    field: str
    kind: str
    help: str
    default: Any

    def parse(self, where: str, raw: str) -> Any:
        """The value of the variable's text (``where`` names it in errors)."""
        return _PARSERS[self.kind](where, raw.strip())


def env_vars(section: str, cls: type[msgspec.Struct]) -> Iterator[EnvVar]:
    """The variables of a struct's own settings, in declaration order."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in msgspec.structs.fields(cls)}
    for name, setting in settings_of(cls).items():
        if setting.own:
            f = fields[name]
            default = f.default_factory() if f.default is msgspec.NODEFAULT else f.default
            yield EnvVar(setting.env, section, name, _kind(hints[name]), setting.help, default)
