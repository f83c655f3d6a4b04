"""Fleet mode's settings: one frozen struct whose fields declare their variables once.

Fleet mode is on when ``GS_HOOKS_REDIS_URL`` is set. A password inside the URL is moved out of it at once into
:attr:`FleetConfig.password` (a :class:`~gs_hooks.Secret`), so the URL a struct holds, shows and logs never has
one; giving a password both in the URL and in ``GS_HOOKS_REDIS_PASSWORD`` is refused.

Each field carries ``Annotated[type, FleetSetting(env, help, check)]``, the shape of the main configuration's
``Setting`` declarations: merging this section into it is replacing :class:`FleetSetting` by ``Setting`` and the
struct's base by ``Section`` (whose ``__post_init__`` runs the same checks and :meth:`FleetConfig._together`).
:data:`FLEET_ENV_VARS` (the README rows) and the parsing of :func:`fleet_config_from_env` derive from them.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import SplitResult, urlsplit

import msgspec

from .._config import Secret
from .._exceptions import ConfigError

__all__ = ["FLEET_ENV_VARS", "FleetConfig", "FleetEnvVar", "FleetSetting", "fleet_config_from_env", "redact_url"]

_KEY_PART = re.compile(r"[A-Za-z0-9_.\-]{1,64}")

Check = Callable[[Any], str | None]


@dataclass(frozen=True, slots=True)
class FleetSetting:
    """One setting's declaration, on its field (the main configuration's ``Setting``).

    Attributes:
        env: its environment variable.
        help: its README line.
        check: the value's problem in words, or None when allowed.
        own: False for a field fed by another section's variable (``GS_HOOKS_GAME``): no row of its own.
    """

    env: str
    help: str = ""
    check: Check | None = None
    own: bool = True


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be > 0"


def _key_part(value: str) -> str | None:
    ok = _KEY_PART.fullmatch(value) is not None
    return None if ok else f"{value!r} must be 1-64 letters, digits, '_', '.' or '-' (it names Redis keys)"


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages; the URL itself may be malformed)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return re.sub(r"//[^@/]*@", "//***@", url)
    if not password:
        return url
    return parts._replace(netloc=_netloc(parts, "***")).geturl()


def _netloc(parts: SplitResult, password: str | None) -> str:
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    if password is not None:
        return f"{user}:{password}@{host}"
    return f"{user}@{host}" if user else host


def _s(env: str, help: str = "", check: Check | None = _positive) -> FleetSetting:
    return FleetSetting(env, help, check)


class FleetConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Fleet mode (many processes on one Redis acting as one game).

    Attributes:
        url: ``redis://`` or ``rediss://`` URL (host, port, database, user); never holds the password.
        game: ``GS_HOOKS_GAME``: processes of one game on one Redis and prefix are one fleet.
        password: the Redis password (from the URL or ``GS_HOOKS_REDIS_PASSWORD``), or None.
        prefix: first part of every key (``{prefix}:{game}:``), to share a Redis between environments.
        heartbeat_s: how often a process renews its membership.
        member_ttl_s: a process that sent no heartbeat for this long is not a member (not counted, not waited).
        lease_ttl_s: the leader lease; a dead leader is replaced within about this long.
        lease_renew_s: how often the leader renews its lease (at most half the TTL).
        recheck_s: how often a process re-checks that it still owns its players' sessions.
        ccu_staleness_s: a CCU count written later than this after its instant is not reported.
        ccu_collect_wait_s: the leader freezes a slot after this long even if a member has not reported.
        socket_timeout_s: Redis socket timeout (blocking reads stay below it).
        block_s: the longest wait of a blocking stream read.
        bans_maxlen: approximate length the ban stream is trimmed to.
        inbox_maxlen: approximate length an inbox is trimmed to.
    """

    url: Annotated[str, _s("GS_HOOKS_REDIS_URL", "`redis://` or `rediss://` URL; set = fleet mode on", None)]
    game: Annotated[str, FleetSetting("GS_HOOKS_GAME", check=_key_part, own=False)]
    password: Annotated[
        Secret | None, _s("GS_HOOKS_REDIS_PASSWORD", "Redis password (secret; or in the URL)", None)
    ] = None
    prefix: Annotated[
        str, _s("GS_HOOKS_REDIS_PREFIX", "key prefix, to share a Redis (`{prefix}:{game}:`)", _key_part)
    ] = "gs_hooks"
    heartbeat_s: Annotated[float, _s("GS_HOOKS_FLEET_HEARTBEAT_S", "membership heartbeat period")] = 1.0
    member_ttl_s: Annotated[float, _s("GS_HOOKS_FLEET_MEMBER_TTL_S", "a silent process leaves the fleet after")] = 5.0
    lease_ttl_s: Annotated[float, _s("GS_HOOKS_FLEET_LEASE_TTL_S", "leader lease TTL")] = 3.0
    lease_renew_s: Annotated[float, _s("GS_HOOKS_FLEET_LEASE_RENEW_S", "leader lease renewal period")] = 1.0
    recheck_s: Annotated[float, _s("GS_HOOKS_FLEET_RECHECK_S", "session ownership re-check period")] = 5.0
    ccu_staleness_s: Annotated[float, _s("GS_HOOKS_FLEET_CCU_STALENESS_S", "a later CCU count is not reported")] = 5.0
    ccu_collect_wait_s: Annotated[float, _s("GS_HOOKS_FLEET_CCU_COLLECT_WAIT_S", "longest wait for CCU counts")] = 10.0
    socket_timeout_s: Annotated[float, _s("GS_HOOKS_FLEET_SOCKET_TIMEOUT_S", "Redis socket timeout")] = 5.0
    block_s: Annotated[float, _s("GS_HOOKS_FLEET_BLOCK_S", "blocking stream read time (< socket timeout)")] = 2.0
    bans_maxlen: Annotated[int, _s("GS_HOOKS_FLEET_BANS_MAXLEN", "ban stream length kept (approximate)")] = 100_000
    inbox_maxlen: Annotated[int, _s("GS_HOOKS_FLEET_INBOX_MAXLEN", "inbox stream length kept (approximate)")] = 10_000

    def __post_init__(self) -> None:
        """Raises ConfigError: a value is not allowed (the message names the variable, never the password)."""
        self._move_password()
        settings = _settings()
        for name, setting in settings.items():
            problem = setting.check(getattr(self, name)) if setting.check is not None else None
            if problem is not None:
                raise ConfigError(setting.env, problem)
        for name, ok, problem in self._together():
            if not ok:
                raise ConfigError(settings[name].env, problem)

    def _move_password(self) -> None:
        try:
            parts = urlsplit(self.url)
            password, _ = parts.password, parts.port
        except ValueError as exc:
            raise ConfigError("GS_HOOKS_REDIS_URL", f"{redact_url(self.url)!r} is not a URL ({exc})") from None
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise ConfigError(
                "GS_HOOKS_REDIS_URL",
                f"{redact_url(self.url)!r} is not a redis:// or rediss:// URL with a host (e.g. redis://127.0.0.1:6379/0)",
            )
        if password:
            if self.password:
                raise ConfigError(
                    "GS_HOOKS_REDIS_PASSWORD",
                    "a password is given both in GS_HOOKS_REDIS_URL and in GS_HOOKS_REDIS_PASSWORD: give it once",
                )
            msgspec.structs.force_setattr(self, "password", Secret(password))
            msgspec.structs.force_setattr(self, "url", parts._replace(netloc=_netloc(parts, None)).geturl())

    def _together(self) -> Iterable[tuple[str, bool, str]]:
        """Rules over several fields: (field named in the error, whether it holds, the problem)."""
        yield (
            "member_ttl_s",
            self.member_ttl_s >= 2 * self.heartbeat_s,
            f"{self.member_ttl_s} s must be at least twice the heartbeat ({self.heartbeat_s} s): one late heartbeat "
            "would drop a live process",
        )
        yield (
            "lease_renew_s",
            self.lease_renew_s * 2 <= self.lease_ttl_s,
            f"{self.lease_renew_s} s must be at most half the lease TTL ({self.lease_ttl_s} s)",
        )
        yield (
            "block_s",
            self.block_s < self.socket_timeout_s,
            f"{self.block_s} s must be below the socket timeout ({self.socket_timeout_s} s): a longer blocking read "
            "would time out instead of returning",
        )

    @property
    def key_base(self) -> str:
        """``{prefix}:{game}:``."""
        return f"{self.prefix}:{self.game}:"


_SETTINGS: dict[str, FleetSetting] = {}


def _settings() -> dict[str, FleetSetting]:
    """The declared settings of :class:`FleetConfig`, by field, in declaration order."""
    if not _SETTINGS:
        hints = typing.get_type_hints(FleetConfig, include_extras=True)
        for name in FleetConfig.__struct_fields__:
            for meta in getattr(hints[name], "__metadata__", ()):
                if isinstance(meta, FleetSetting):
                    _SETTINGS[name] = meta
    return _SETTINGS


@dataclass(frozen=True, slots=True)
class FleetEnvVar:
    """One fleet variable as the environment and the README see it (derived from its :class:`FleetSetting`)."""

    name: str
    field: str
    kind: str
    help: str


def _kind(hint: Any) -> str:
    args = typing.get_args(hint)
    if type(None) in args:
        (hint,) = [a for a in args if a is not type(None)]
    return {str: "str", int: "int", float: "float", Secret: "secret"}[hint]


def _env_vars() -> tuple[FleetEnvVar, ...]:
    hints = typing.get_type_hints(FleetConfig)
    return tuple(FleetEnvVar(s.env, name, _kind(hints[name]), s.help) for name, s in _settings().items() if s.own)


FLEET_ENV_VARS: tuple[FleetEnvVar, ...] = _env_vars()
"""The fleet's own variables, in declaration order (``GS_HOOKS_GAME`` belongs to the CCU section)."""


def _parse(var: FleetEnvVar, raw: str) -> Any:
    text = raw.strip()
    if var.kind == "secret":
        return Secret(raw)
    if var.kind == "str":
        return text
    try:
        return int(text) if var.kind == "int" else float(text)
    except ValueError:
        kind = "an integer" if var.kind == "int" else "a number"
        raise ConfigError(var.name, f"{text!r} is not {kind}") from None


def fleet_config_from_env(environ: Mapping[str, str]) -> FleetConfig | None:
    """The fleet settings from environment variables, or None when ``GS_HOOKS_REDIS_URL`` is unset (fleet off).

    Args:
        environ: the variables (``os.environ`` or a test's dict); ``GS_HOOKS_GAME`` names the fleet.

    Returns:
        The settings, or None.

    Raises:
        ConfigError: a value is malformed or not allowed, a fleet variable is set without
            ``GS_HOOKS_REDIS_URL``, or ``GS_HOOKS_GAME`` is missing; the message names the variable and never
            holds the password.
    """
    url = environ.get("GS_HOOKS_REDIS_URL", "").strip()
    if not url:
        for var in FLEET_ENV_VARS[1:]:
            if environ.get(var.name, "").strip():
                raise ConfigError(var.name, "is set but GS_HOOKS_REDIS_URL is not: set it to turn fleet mode on")
        return None
    game = environ.get("GS_HOOKS_GAME", "").strip()
    if not game:
        raise ConfigError("GS_HOOKS_GAME", "fleet mode (GS_HOOKS_REDIS_URL) needs the game key: it names the fleet")
    values: dict[str, Any] = {"game": game}
    for var in FLEET_ENV_VARS:
        raw = environ.get(var.name)
        if raw is not None and (raw.strip() or (var.kind == "secret" and raw)):
            values[var.field] = _parse(var, raw)
    return FleetConfig(**values)
