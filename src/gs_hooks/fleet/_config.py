"""Fleet mode's settings: one frozen struct, and the environment variables that fill it (declared once).

Fleet mode is on when ``GS_HOOKS_REDIS_URL`` is set. A password inside the URL is moved out of it at once into
:attr:`FleetConfig.password` (a :class:`~gs_hooks.Secret`), so the URL a struct holds, shows and logs never has
one; giving a password both in the URL and in ``GS_HOOKS_REDIS_PASSWORD`` is refused. The table
:data:`FLEET_ENV_VARS` is the single list of variables (name, field, parser, README line); it is meant to be
merged into the main configuration's table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

import msgspec

from .._config import Secret
from .._exceptions import ConfigError

__all__ = ["FLEET_ENV_VARS", "FleetConfig", "FleetEnvVar", "fleet_config_from_env", "redact_url"]

_PREFIX = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


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
        lease_renew_s: how often the leader renews its lease (well inside the TTL).
        recheck_s: how often a process re-checks that it still owns its players' sessions.
        ccu_staleness_s: a CCU count written later than this after its instant is not reported.
        ccu_collect_wait_s: the leader freezes a slot after this long even if a member has not reported.
        socket_timeout_s: Redis socket timeout (blocking reads stay below it).
        block_s: the longest wait of a blocking stream read.
        bans_maxlen: approximate length the ban stream is trimmed to.
        inbox_maxlen: approximate length an inbox is trimmed to.
    """

    url: str
    game: str
    password: Secret | None = None
    prefix: str = "gs_hooks"
    heartbeat_s: float = 1.0
    member_ttl_s: float = 5.0
    lease_ttl_s: float = 3.0
    lease_renew_s: float = 1.0
    recheck_s: float = 5.0
    ccu_staleness_s: float = 5.0
    ccu_collect_wait_s: float = 10.0
    socket_timeout_s: float = 5.0
    block_s: float = 2.0
    bans_maxlen: int = 100_000
    inbox_maxlen: int = 10_000

    def __post_init__(self) -> None:
        """Raises ConfigError: a value is not allowed (the message names the variable)."""
        try:
            parts = urlsplit(self.url)
            password, port = parts.password, parts.port
        except ValueError as exc:
            raise ConfigError("GS_HOOKS_REDIS_URL", f"{redact_url(self.url)!r} is not a URL ({exc})") from None
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise ConfigError(
                "GS_HOOKS_REDIS_URL",
                f"{redact_url(self.url)!r} is not a redis:// or rediss:// URL with a host (e.g. redis://127.0.0.1:6379/0)",
            )
        del port
        if password:
            if self.password:
                raise ConfigError(
                    "GS_HOOKS_REDIS_PASSWORD",
                    "a password is given both in GS_HOOKS_REDIS_URL and in GS_HOOKS_REDIS_PASSWORD: give it once",
                )
            msgspec.structs.force_setattr(self, "password", Secret(password))
            msgspec.structs.force_setattr(self, "url", parts._replace(netloc=_netloc(parts, None)).geturl())
        _validate(self)

    @property
    def key_base(self) -> str:
        """``{prefix}:{game}:``."""
        return f"{self.prefix}:{self.game}:"


def _validate(c: FleetConfig) -> None:
    for setting, value in (("GS_HOOKS_REDIS_PREFIX", c.prefix), ("GS_HOOKS_GAME", c.game)):
        if not _PREFIX.fullmatch(value):
            raise ConfigError(setting, f"{value!r} must be 1-64 letters, digits, '_', '.' or '-' (it names Redis keys)")
    for var in FLEET_ENV_VARS:
        if var.kind in ("float", "int") and not getattr(c, var.field) > 0:
            raise ConfigError(var.name, f"{getattr(c, var.field)!r} must be greater than 0")
    if c.member_ttl_s < 2 * c.heartbeat_s:
        raise ConfigError(
            "GS_HOOKS_FLEET_MEMBER_TTL_S",
            f"{c.member_ttl_s} s must be at least twice the heartbeat ({c.heartbeat_s} s): one late heartbeat "
            "would drop a live process",
        )
    if c.lease_renew_s * 2 > c.lease_ttl_s:
        raise ConfigError(
            "GS_HOOKS_FLEET_LEASE_RENEW_S",
            f"{c.lease_renew_s} s must be at most half the lease TTL ({c.lease_ttl_s} s)",
        )
    if c.block_s >= c.socket_timeout_s:
        raise ConfigError(
            "GS_HOOKS_FLEET_BLOCK_S",
            f"{c.block_s} s must be below the socket timeout ({c.socket_timeout_s} s): a longer blocking read "
            "would time out instead of returning",
        )


@dataclass(frozen=True, slots=True)
class FleetEnvVar:
    """One fleet setting: its variable, the :class:`FleetConfig` field, the parser kind, a README line."""

    name: str
    field: str
    kind: str
    help: str


FLEET_ENV_VARS: tuple[FleetEnvVar, ...] = (
    FleetEnvVar("GS_HOOKS_REDIS_URL", "url", "str", "`redis://` or `rediss://` URL; set = fleet mode on"),
    FleetEnvVar("GS_HOOKS_REDIS_PASSWORD", "password", "secret", "Redis password (secret; or in the URL)"),
    FleetEnvVar("GS_HOOKS_REDIS_PREFIX", "prefix", "str", "key prefix, to share a Redis (`{prefix}:{game}:`)"),
    FleetEnvVar("GS_HOOKS_FLEET_HEARTBEAT_S", "heartbeat_s", "float", "membership heartbeat period"),
    FleetEnvVar("GS_HOOKS_FLEET_MEMBER_TTL_S", "member_ttl_s", "float", "a silent process leaves the fleet after"),
    FleetEnvVar("GS_HOOKS_FLEET_LEASE_TTL_S", "lease_ttl_s", "float", "leader lease TTL"),
    FleetEnvVar("GS_HOOKS_FLEET_LEASE_RENEW_S", "lease_renew_s", "float", "leader lease renewal period"),
    FleetEnvVar("GS_HOOKS_FLEET_RECHECK_S", "recheck_s", "float", "session ownership re-check period"),
    FleetEnvVar("GS_HOOKS_FLEET_CCU_STALENESS_S", "ccu_staleness_s", "float", "a later CCU count is not reported"),
    FleetEnvVar("GS_HOOKS_FLEET_CCU_COLLECT_WAIT_S", "ccu_collect_wait_s", "float", "longest wait for CCU counts"),
    FleetEnvVar("GS_HOOKS_FLEET_SOCKET_TIMEOUT_S", "socket_timeout_s", "float", "Redis socket timeout"),
    FleetEnvVar("GS_HOOKS_FLEET_BLOCK_S", "block_s", "float", "blocking stream read time (< socket timeout)"),
    FleetEnvVar("GS_HOOKS_FLEET_BANS_MAXLEN", "bans_maxlen", "int", "ban stream length kept (approximate)"),
    FleetEnvVar("GS_HOOKS_FLEET_INBOX_MAXLEN", "inbox_maxlen", "int", "inbox stream length kept (approximate)"),
)


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
        ConfigError: a value is malformed or not allowed, or ``GS_HOOKS_GAME`` is missing while
            ``GS_HOOKS_REDIS_URL`` is set; the message names the variable and never holds the password.
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
