"""Configuration: frozen, keyword-only structs, one per capability.

Nothing reads the environment at import time: :meth:`Config.from_env` and :meth:`Config.from_toml` are explicit.
Every setting has exactly one environment variable (``GS_HOOKS_*``) and one TOML key (``[section] field``);
the table :data:`ENV_VARS` is the single source of both, and of the README's table. A component whose
platform URL is not configured stays off.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tomllib
import typing
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import msgspec

from ._exceptions import ConfigError
from ._ids import player_id_problem

__all__ = [
    "ENV_VARS",
    "LOOPBACK_CIDRS",
    "CcuConfig",
    "Config",
    "ConfigWarning",
    "GamePotConfig",
    "GamebaseConfig",
    "HiveConfig",
    "ListenerConfig",
    "Secret",
    "SessionsConfig",
    "operator_allow",
    "read_warnings",
    "setting_namer",
]

HIVE_CCU_LIVE_URL = "http://api-index.qpyou.cn/modules/gameuser/currentuser/"
HIVE_CCU_SANDBOX_URL = "http://sandbox-api-index.withhive.com/modules/gameuser/currentuser/"
GAMEBASE_DEFAULT_URL = "https://api-gamebase.cloud.toast.com"
GAMEPOT_DEFAULT_URL = "https://dashboard-api.gamepot.ntruss.com"


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
            import hmac

            return hmac.compare_digest(self._value.encode(), other._value.encode())
        return NotImplemented

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> Any:
        raise TypeError("Secret values are not picklable")


class SessionsConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Session registry settings.

    Attributes:
        server_id: server id given to sessions that do not name one (first of ``GS_HOOKS_SERVER_ID``).
        duplicate_login: what happens when a player logs in while already logged in: ``allow`` both,
            ``kick_older`` (default), or ``refuse_newer``.
    """

    server_id: str = "0"
    duplicate_login: Literal["allow", "kick_older", "refuse_newer"] = "kick_older"


class CcuConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Hive/Com2uS CCU reporting. Off while ``url`` is None.

    Attributes:
        url: collector URL (live: ``HIVE_CCU_LIVE_URL``, sandbox: ``HIVE_CCU_SANDBOX_URL``).
        mirror_url: optional best-effort copy of every sample (the platform's test server).
        game: the game key issued by Hive (e.g. ``tinyfarm_KR``).
        server_ids: the server ids this process reports (1–20 letters/digits each).
        period_s: grid period; 120 in production, shorter only for demos/tests (whole minutes dividing an hour).
        spool_path: sqlite file of the durable spool (default: ``Config.state_path``).
        xml_root: name of the XML root element.
        send_method: ``form`` (field ``value``) or ``body`` (raw base64 body).
        count_mode: ``socket`` (connected now) or ``web`` (unique users in the trailing window).
        count: in socket mode, count logged-in ``players`` or all ``connections``.
        timeout_s: HTTP timeout of one POST.
        max_inflight: backlog drain concurrency.
        backoff_base_s / backoff_max_s: jittered exponential backoff for retryable failures.
    """

    url: str | None = None
    mirror_url: str | None = None
    game: str = ""
    server_ids: tuple[str, ...] = ("0",)
    period_s: int = 120
    spool_path: str | None = None
    xml_root: str = "currentuser"
    send_method: Literal["form", "body"] = "form"
    count_mode: Literal["socket", "web"] = "socket"
    count: Literal["players", "connections"] = "players"
    timeout_s: float = 10.0
    max_inflight: int = 4
    backoff_base_s: float = 2.0
    backoff_max_s: float = 120.0


_DEFAULT_VERIFY_CONCURRENCY = 16
"""The default cap of concurrent token verifications (see :attr:`GamebaseConfig.verify_concurrency`)."""


class GamebaseConfig(msgspec.Struct, frozen=True, kw_only=True):
    """NHN Cloud Gamebase server API. Off while ``url`` is None.

    Attributes:
        url: base URL (``https://api-gamebase.cloud.toast.com``; v1.3 host ``https://api-gamebase.nhncloudservice.com``).
        app_id: NHN Cloud project id.
        secret_key: the ``X-Secret-Key`` value.
        api_version: path version, ``v1.0`` (our document) or ``v1.3``.
        timeout_s: HTTP timeout of one call.
        retries: extra attempts for transient failures (-5000xxx, transport errors, 5xx).
        verify_concurrency: cap of concurrent token verifications towards Gamebase. 16, from ``bench.gamebase``
            (login storm against the sandbox on loopback, 6 sweeps on a shared 2-core machine, medians): ours /
            plain httpx loop at the same concurrency 0.89 at 4, 0.94 at 8, 1.27 at 16, 1.28 at 32 (only 16 and
            32 stayed >= 0.9 in every sweep: a plain loop's pool retries grow with concurrency, ours does not
            retry); the trade-off is client CPU per verification, which the game's event loop pays: ~0.98 ms at
            4, ~1.2 ms at 8, ~1.24 ms at 16, ~1.32 ms at 32 (httpx's pool work grows with its connections).
            Against the real, remote Gamebase, a cap of c allows at most c / RTT verifications per second
            (4 at 30 ms: ~130/s; 16: ~530/s), which matters for the storm after a maintenance.
        token_cache_ttl_s / negative_cache_ttl_s: positive and negative verification cache lifetimes.
        failure_policy: when Gamebase is unreachable: ``fail_closed`` or ``allow_cached``.
        maintenance_poll_s: under-maintenance poll period (0 = watcher off).
        maintenance_gate: refuse logins while maintenance is active.
        maintenance_kick: kick every session when maintenance begins.
        maintenance_warn_s: lead times (seconds before begin) at which sessions are warned.
        launching_os_code / launching_client_version: when both set, the watcher also polls simple launching.
        ban_poll_s: Gamebase ban/release history poll period (0 = off).
        ban_overlap_s: each poll re-reads this much before the watermark so nothing is missed.
        ban_page_size: page size of the history queries.
        poll_backoff_max_s: after failed polls, the maintenance watcher and the ban poller wait a jittered
            ``min(period * 2**n, poll_backoff_max_s)`` (never less than their period).
    """

    url: str | None = None
    app_id: str = ""
    secret_key: Secret | None = None
    api_version: str = "v1.0"
    timeout_s: float = 5.0
    retries: int = 2
    verify_concurrency: int = _DEFAULT_VERIFY_CONCURRENCY
    token_cache_ttl_s: float = 300.0
    negative_cache_ttl_s: float = 5.0
    failure_policy: Literal["fail_closed", "allow_cached"] = "fail_closed"
    maintenance_poll_s: float = 30.0
    maintenance_gate: bool = True
    maintenance_kick: bool = True
    maintenance_warn_s: tuple[float, ...] = (600.0, 300.0, 60.0)
    launching_os_code: str | None = None
    launching_client_version: str | None = None
    ban_poll_s: float = 60.0
    ban_overlap_s: float = 300.0
    ban_page_size: int = 100
    poll_backoff_max_s: float = 300.0


class HiveConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Hive webhooks received on the listener.

    Attributes:
        auth_key: the Bearer key of the suspended-user webhook (webhook off while None).
        game_index: the Hive game index the webhook must carry.
        suspension_path: path of the suspended-user webhook.
        date_utc_offset_h: zone of the webhook's zone-less dates (9 = KST).
        player_key_format: maps a platform id to the session registry's player key (``{id}``).
        webstore_enabled: serve ``POST /webstore-profile``.
        webstore_key: optional shared key required in ``webstore_key_header``.
        webstore_key_header: header carrying ``webstore_key``.
        webstore_timeout_s: the game's callback must answer within this (else 500).
    """

    auth_key: Secret | None = None
    game_index: int | None = None
    suspension_path: str = "/hive/suspensions"
    date_utc_offset_h: float = 9.0
    player_key_format: str = "{id}"
    webstore_enabled: bool = True
    webstore_key: Secret | None = None
    webstore_key_header: str = "x-gs-hooks-key"
    webstore_timeout_s: float = 3.0


class ListenerConfig(msgspec.Struct, frozen=True, kw_only=True):
    """The embedded HTTP listener. Off while ``listen`` is None.

    Attributes:
        listen: ``host:port`` to bind.
        max_header_bytes / max_body_bytes: request limits (431 / 413).
        request_deadline_s: absolute deadline for a request's head and body (slow senders are cut).
        request_line_deadline_s: a new connection's first request line (TLS handshake included), and a later
            request's line from its first byte, must arrive within this (slow senders are cut sooner).
        keepalive_s: idle keep-alive timeout.
        max_connections: connection cap (503 past it).
        max_connections_per_address: connections one IP address may hold (503 past it); behind a proxy or load
            balancer every client shares its address: raise it to ``max_connections``.
        reserved_connections: connections beyond the cap that only addresses inside a route allowlist
            (``suspension_allow``, ``webstore_allow``, ``dashboard_allow``, ``admin_allow``) may open.
        tls_cert / tls_key: PEM files; TLS on when both set.
        suspension_allow / webstore_allow: IP allowlists (CIDR) of the platform routes, empty = any.
        dashboard_allow / admin_allow: IP allowlists of the operator routes, empty = loopback only (see
            :func:`operator_allow`); ``0.0.0.0/0,::/0`` opens them to every address.
        dashboard: serve ``/dashboard``.
        dashboard_key: optional key for the dashboard (``?key=`` or ``x-gs-hooks-key``).
    """

    listen: str | None = None
    max_header_bytes: int = 16_384
    max_body_bytes: int = 65_536
    request_deadline_s: float = 10.0
    request_line_deadline_s: float = 3.0
    keepalive_s: float = 30.0
    max_connections: int = 512
    max_connections_per_address: int = 64
    reserved_connections: int = 64
    tls_cert: str | None = None
    tls_key: str | None = None
    suspension_allow: tuple[str, ...] = ()
    webstore_allow: tuple[str, ...] = ()
    dashboard_allow: tuple[str, ...] = ()
    admin_allow: tuple[str, ...] = ()
    dashboard: bool = False
    dashboard_key: Secret | None = None


class GamePotConfig(msgspec.Struct, frozen=True, kw_only=True):
    """GamePot-compatible CCU inquiry (served on the listener) and the GamePot client.

    Attributes:
        project_id: the project id the inquiry answers for (inquiry off while None).
        api_key: the ``x-api-key`` the inquiry requires.
        base_url: GamePot dashboard API base URL (client).
        history_retention_days: how long CCU history is kept.
    """

    project_id: str | None = None
    api_key: Secret | None = None
    base_url: str = GAMEPOT_DEFAULT_URL
    history_retention_days: int = 35


class Config(msgspec.Struct, frozen=True, kw_only=True, weakref=True):
    """Everything :func:`gs_hooks.setup` needs.

    Attributes:
        state_path: the sqlite store (CCU spool, history, bans, watermarks); ``:memory:`` disables persistence.
    """

    state_path: str = "gs_hooks.sqlite3"
    sessions: SessionsConfig = msgspec.field(default_factory=SessionsConfig)
    ccu: CcuConfig = msgspec.field(default_factory=CcuConfig)
    gamebase: GamebaseConfig = msgspec.field(default_factory=GamebaseConfig)
    hive: HiveConfig = msgspec.field(default_factory=HiveConfig)
    listener: ListenerConfig = msgspec.field(default_factory=ListenerConfig)
    gamepot: GamePotConfig = msgspec.field(default_factory=GamePotConfig)

    def __post_init__(self) -> None:
        _validate(self, _env_name)

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
            value = var.parse(var.name, raw)
            if var.section:
                tree.setdefault(var.section, {})[var.field] = value
            else:
                tree.setdefault("", {})[var.field] = value
        # GS_HOOKS_SERVER_ID feeds both the CCU server ids and the sessions' default server id.
        ccu = tree.get("ccu", {})
        if "server_ids" in ccu and "server_id" not in tree.get("sessions", {}):
            tree.setdefault("sessions", {})["server_id"] = ccu["server_ids"][0]
        config = _build(cls, tree, _env_name)
        _remember(config, "env", _unknown_env_vars(env))
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
                if key not in _SECTIONS:
                    raise ConfigError(
                        f"[{key}]",
                        f"unknown section{_did_you_mean(key, _SECTIONS)}; allowed: {', '.join(sorted(_SECTIONS))}",
                    )
                tree[key] = {}
                for field, v in value.items():
                    var = _BY_PATH.get((key, field))
                    if var is None and (key, field) not in _ALIASES:
                        fields = [f for (sec, f) in (*_BY_PATH, *_ALIASES) if sec == key]
                        raise ConfigError(f"[{key}] {field}", f"unknown setting{_did_you_mean(field, fields)}")
                    parse = var is not None and isinstance(v, str) and var.kind not in ("list", "floats")
                    tree[key][field] = var.parse(f"[{key}] {field}", v) if parse and var else v
            else:
                var = _BY_PATH.get(("", key))
                if var is None:
                    top = [f for (sec, f) in _BY_PATH if sec == ""]
                    raise ConfigError(key, f"unknown setting{_did_you_mean(key, [*top, *_SECTIONS])}")
                tree[""][key] = value
        if "server_ids" in tree.get("ccu", {}) and "server_id" not in tree.get("sessions", {}):
            tree.setdefault("sessions", {})["server_id"] = next(iter(tree["ccu"]["server_ids"]))
        config = _build(cls, tree, _toml_name)
        _remember(config, "toml", ())
        return config


_SECTIONS = {
    "sessions": SessionsConfig,
    "ccu": CcuConfig,
    "gamebase": GamebaseConfig,
    "hive": HiveConfig,
    "listener": ListenerConfig,
    "gamepot": GamePotConfig,
}


@dataclass(frozen=True, slots=True)
class EnvVar:
    """One setting: its environment variable, where it lands, how it is parsed, and a line for the README."""

    name: str
    section: str
    field: str
    kind: str
    help: str

    def parse(self, where: str, raw: str) -> Any:
        return _PARSERS[self.kind](where, raw.strip())


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

ENV_VARS: tuple[EnvVar, ...] = (
    EnvVar("GS_HOOKS_STATE", "", "state_path", "str", "sqlite store (spool, history, bans); `:memory:` = none"),
    EnvVar(
        "GS_HOOKS_DUPLICATE_LOGIN",
        "sessions",
        "duplicate_login",
        "str",
        "`allow`, `kick_older`, `refuse_newer`",
    ),
    EnvVar("GS_HOOKS_GAME", "ccu", "game", "str", "Hive game key (e.g. `tinyfarm_KR`)"),
    EnvVar(
        "GS_HOOKS_SERVER_ID",
        "ccu",
        "server_ids",
        "list",
        "server id(s), comma-separated, 1–20 letters/digits",
    ),
    EnvVar("GS_HOOKS_CCU_URL", "ccu", "url", "str", "CCU collector URL; unset = no CCU reporting"),
    EnvVar(
        "GS_HOOKS_CCU_MIRROR_URL",
        "ccu",
        "mirror_url",
        "str",
        "best-effort copy of every sample (test server)",
    ),
    EnvVar("GS_HOOKS_CCU_PERIOD_S", "ccu", "period_s", "int", "grid period, 120; shorter for demos/tests only"),
    EnvVar("GS_HOOKS_CCU_SPOOL", "ccu", "spool_path", "str", "sqlite spool path (default: `GS_HOOKS_STATE`)"),
    EnvVar("GS_HOOKS_CCU_XML_ROOT", "ccu", "xml_root", "str", "XML root element name"),
    EnvVar("GS_HOOKS_CCU_SEND_METHOD", "ccu", "send_method", "str", "`form` (field `value`) or `body`"),
    EnvVar(
        "GS_HOOKS_CCU_COUNT_MODE",
        "ccu",
        "count_mode",
        "str",
        "`socket` (connected now) or `web` (2-min uniques)",
    ),
    EnvVar("GS_HOOKS_CCU_COUNT", "ccu", "count", "str", "socket mode counts `players` or `connections`"),
    EnvVar("GS_HOOKS_CCU_TIMEOUT_S", "ccu", "timeout_s", "float", "HTTP timeout of one CCU POST"),
    EnvVar("GS_HOOKS_CCU_MAX_INFLIGHT", "ccu", "max_inflight", "int", "backlog drain concurrency"),
    EnvVar(
        "GS_HOOKS_CCU_BACKOFF_BASE_S",
        "ccu",
        "backoff_base_s",
        "float",
        "first retry delay (jittered, doubling)",
    ),
    EnvVar("GS_HOOKS_CCU_BACKOFF_MAX_S", "ccu", "backoff_max_s", "float", "largest retry delay"),
    EnvVar("GS_HOOKS_GAMEBASE_URL", "gamebase", "url", "str", "Gamebase base URL; unset = Gamebase off"),
    EnvVar("GS_HOOKS_GAMEBASE_APP_ID", "gamebase", "app_id", "str", "NHN Cloud project (app) id"),
    EnvVar("GS_HOOKS_GAMEBASE_SECRET_KEY", "gamebase", "secret_key", "secret", "`X-Secret-Key` (never logged)"),
    EnvVar("GS_HOOKS_GAMEBASE_API_VERSION", "gamebase", "api_version", "str", "`v1.0` or `v1.3`"),
    EnvVar("GS_HOOKS_GAMEBASE_TIMEOUT_S", "gamebase", "timeout_s", "float", "HTTP timeout of one call"),
    EnvVar("GS_HOOKS_GAMEBASE_RETRIES", "gamebase", "retries", "int", "extra attempts on transient failures"),
    EnvVar(
        "GS_HOOKS_GAMEBASE_VERIFY_CONCURRENCY",
        "gamebase",
        "verify_concurrency",
        "int",
        "concurrent verifications",
    ),
    EnvVar("GS_HOOKS_GAMEBASE_TOKEN_CACHE_TTL_S", "gamebase", "token_cache_ttl_s", "float", "positive cache TTL"),
    EnvVar("GS_HOOKS_GAMEBASE_NEGATIVE_CACHE_TTL_S", "gamebase", "negative_cache_ttl_s", "float", "negative TTL"),
    EnvVar(
        "GS_HOOKS_GAMEBASE_FAILURE_POLICY",
        "gamebase",
        "failure_policy",
        "str",
        "`fail_closed`/`allow_cached`",
    ),
    EnvVar("GS_HOOKS_GAMEBASE_MAINTENANCE_POLL_S", "gamebase", "maintenance_poll_s", "float", "0 = watcher off"),
    EnvVar(
        "GS_HOOKS_GAMEBASE_MAINTENANCE_GATE",
        "gamebase",
        "maintenance_gate",
        "bool",
        "refuse logins in maintenance",
    ),
    EnvVar("GS_HOOKS_GAMEBASE_MAINTENANCE_KICK", "gamebase", "maintenance_kick", "bool", "kick all at begin"),
    EnvVar("GS_HOOKS_GAMEBASE_MAINTENANCE_WARN_S", "gamebase", "maintenance_warn_s", "floats", "warn lead times"),
    EnvVar("GS_HOOKS_GAMEBASE_LAUNCHING_OS", "gamebase", "launching_os_code", "str", "poll simple launching as"),
    EnvVar("GS_HOOKS_GAMEBASE_LAUNCHING_VERSION", "gamebase", "launching_client_version", "str", "…this version"),
    EnvVar("GS_HOOKS_GAMEBASE_BAN_POLL_S", "gamebase", "ban_poll_s", "float", "ban history poll period, 0 = off"),
    EnvVar("GS_HOOKS_GAMEBASE_BAN_OVERLAP_S", "gamebase", "ban_overlap_s", "float", "re-read window per poll"),
    EnvVar("GS_HOOKS_GAMEBASE_BAN_PAGE_SIZE", "gamebase", "ban_page_size", "int", "history page size"),
    EnvVar(
        "GS_HOOKS_GAMEBASE_POLL_BACKOFF_MAX_S",
        "gamebase",
        "poll_backoff_max_s",
        "float",
        "longest wait after failed maintenance/ban polls",
    ),
    EnvVar("GS_HOOKS_HIVE_AUTH_KEY", "hive", "auth_key", "secret", "suspension webhook Bearer key; unset = off"),
    EnvVar("GS_HOOKS_HIVE_GAME_INDEX", "hive", "game_index", "int", "Hive game index the webhook must carry"),
    EnvVar("GS_HOOKS_HIVE_SUSPENSION_PATH", "hive", "suspension_path", "str", "suspension webhook path"),
    EnvVar(
        "GS_HOOKS_HIVE_DATE_UTC_OFFSET_H",
        "hive",
        "date_utc_offset_h",
        "float",
        "zone of webhook dates (9=KST)",
    ),
    EnvVar("GS_HOOKS_HIVE_PLAYER_KEY_FORMAT", "hive", "player_key_format", "str", "platform id → player key"),
    EnvVar("GS_HOOKS_HIVE_WEBSTORE", "hive", "webstore_enabled", "bool", "serve `POST /webstore-profile`"),
    EnvVar("GS_HOOKS_HIVE_WEBSTORE_KEY", "hive", "webstore_key", "secret", "optional shared key for web-store"),
    EnvVar("GS_HOOKS_HIVE_WEBSTORE_KEY_HEADER", "hive", "webstore_key_header", "str", "header of that key"),
    EnvVar("GS_HOOKS_HIVE_WEBSTORE_TIMEOUT_S", "hive", "webstore_timeout_s", "float", "callback deadline (→ 500)"),
    EnvVar("GS_HOOKS_LISTEN", "listener", "listen", "str", "`host:port` of the webhook listener; unset = off"),
    EnvVar("GS_HOOKS_LISTEN_MAX_HEADER_BYTES", "listener", "max_header_bytes", "int", "header block limit (431)"),
    EnvVar("GS_HOOKS_LISTEN_MAX_BODY_BYTES", "listener", "max_body_bytes", "int", "body limit (413)"),
    EnvVar("GS_HOOKS_LISTEN_DEADLINE_S", "listener", "request_deadline_s", "float", "head+body deadline"),
    EnvVar(
        "GS_HOOKS_LISTEN_REQUEST_LINE_DEADLINE_S",
        "listener",
        "request_line_deadline_s",
        "float",
        "request line deadline (first: from accept)",
    ),
    EnvVar("GS_HOOKS_LISTEN_KEEPALIVE_S", "listener", "keepalive_s", "float", "idle keep-alive timeout"),
    EnvVar("GS_HOOKS_LISTEN_MAX_CONNECTIONS", "listener", "max_connections", "int", "connection cap (503)"),
    EnvVar(
        "GS_HOOKS_LISTEN_MAX_CONNECTIONS_PER_ADDRESS",
        "listener",
        "max_connections_per_address",
        "int",
        "per-IP cap (503); behind a proxy = cap",
    ),
    EnvVar(
        "GS_HOOKS_LISTEN_RESERVED_CONNECTIONS",
        "listener",
        "reserved_connections",
        "int",
        "beyond the cap, for allowlisted IPs",
    ),
    EnvVar("GS_HOOKS_LISTEN_TLS_CERT", "listener", "tls_cert", "str", "PEM certificate (TLS on with key)"),
    EnvVar("GS_HOOKS_LISTEN_TLS_KEY", "listener", "tls_key", "str", "PEM private key"),
    EnvVar("GS_HOOKS_LISTEN_SUSPENSION_ALLOW", "listener", "suspension_allow", "list", "CIDRs, empty = any"),
    EnvVar("GS_HOOKS_LISTEN_WEBSTORE_ALLOW", "listener", "webstore_allow", "list", "CIDRs, empty = any"),
    EnvVar(
        "GS_HOOKS_LISTEN_DASHBOARD_ALLOW",
        "listener",
        "dashboard_allow",
        "list",
        "CIDRs of `/dashboard`, empty = loopback only",
    ),
    EnvVar(
        "GS_HOOKS_LISTEN_ADMIN_ALLOW",
        "listener",
        "admin_allow",
        "list",
        "CIDRs of `/metrics` and the GamePot inquiry, empty = loopback only",
    ),
    EnvVar("GS_HOOKS_DASHBOARD", "listener", "dashboard", "bool", "serve `/dashboard`"),
    EnvVar("GS_HOOKS_DASHBOARD_KEY", "listener", "dashboard_key", "secret", "optional dashboard key"),
    EnvVar(
        "GS_HOOKS_GAMEPOT_PROJECT_ID",
        "gamepot",
        "project_id",
        "str",
        "project id of the CCU inquiry; unset = off",
    ),
    EnvVar("GS_HOOKS_GAMEPOT_API_KEY", "gamepot", "api_key", "secret", "`x-api-key` the inquiry requires"),
    EnvVar("GS_HOOKS_GAMEPOT_URL", "gamepot", "base_url", "str", "GamePot dashboard API base URL (client)"),
    EnvVar("GS_HOOKS_GAMEPOT_RETENTION_DAYS", "gamepot", "history_retention_days", "int", "CCU history kept"),
)

_BY_PATH = {(v.section, v.field): v for v in ENV_VARS}
# Settings fed by another setting's variable: the sessions' default server id is the first GS_HOOKS_SERVER_ID.
_ALIASES = {("sessions", "server_id"): "GS_HOOKS_SERVER_ID"}


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


def _dec_hook(type_: type, obj: Any) -> Any:
    if type_ is Secret:
        if isinstance(obj, Secret):
            return obj
        if isinstance(obj, str):
            return Secret(obj)
    raise NotImplementedError


def _build(cls: type[Config], tree: dict[str, dict[str, Any]], name: Callable[[str, str], str]) -> Config:
    sections: dict[str, Any] = {}
    for section, section_cls in _SECTIONS.items():
        values = tree.get(section, {})
        try:
            sections[section] = msgspec.convert(values, section_cls, dec_hook=_dec_hook, str_keys=True)
        except msgspec.ValidationError as exc:
            field = _field_of(str(exc))
            raise ConfigError(name(section, field), _clean(str(exc)) + _allowed(section_cls, field)) from None
    top = tree.get("", {})
    try:
        config = cls(**top, **sections)
    except ConfigError as exc:
        # __post_init__ validated with env names; rename for TOML when needed.
        if name is _toml_name:
            raise ConfigError(_rename_to_toml(exc.setting), exc.problem) from None
        raise
    except TypeError as exc:
        raise ConfigError("config", str(exc)) from None
    return config


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
    if setting == "GS_HOOKS_SERVER_ID":
        return _toml_name("ccu", "server_ids")
    for var in ENV_VARS:
        if var.name == setting:
            return _toml_name(var.section, var.field)
    return setting


_SERVER_ID = re.compile(r"[A-Za-z0-9]{1,20}")
_GAME = re.compile(r"[A-Za-z0-9_\-]{1,64}")


def _check(ok: bool, setting: str, problem: str) -> None:
    if not ok:
        raise ConfigError(setting, problem)


def _check_url(url: str | None, setting: str) -> None:
    if url is None:
        return
    _check(
        url.startswith(("http://", "https://")) and len(url) > len("http://"),
        setting,
        f"{url!r} is not an http(s) URL",
    )


def _check_cidrs(cidrs: tuple[str, ...], setting: str) -> None:
    for cidr in cidrs:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise ConfigError(setting, f"{cidr!r} is not an IP address or CIDR network") from None


def parse_hostport(value: str, setting: str = "GS_HOOKS_LISTEN") -> tuple[str, int]:
    """Split ``host:port`` (``[::1]:8080`` for IPv6)."""
    host, sep, port_s = value.rpartition(":")
    if not sep or not port_s.isdigit():
        raise ConfigError(setting, f"{value!r} is not host:port (e.g. 127.0.0.1:8080)")
    port = int(port_s)
    if not 0 <= port <= 65535:
        raise ConfigError(setting, f"port {port} is out of range 0–65535")
    host = host.strip("[]") or "0.0.0.0"
    return host, port


def _validate(c: Config, name: Callable[[str, str], str]) -> None:
    s = c.sessions
    _check(
        bool(_SERVER_ID.fullmatch(s.server_id)),
        name("sessions", "server_id"),
        f"{s.server_id!r} is not allowed: a server id must be 1–20 letters/digits",
    )
    _check(
        s.duplicate_login in ("allow", "kick_older", "refuse_newer"),
        name("sessions", "duplicate_login"),
        f"{s.duplicate_login!r} is not allowed; use allow, kick_older or refuse_newer",
    )
    cc = c.ccu
    _check(bool(cc.server_ids), name("ccu", "server_ids"), "at least one server id is required")
    for sid in cc.server_ids:
        _check(
            bool(_SERVER_ID.fullmatch(sid)),
            name("ccu", "server_ids"),
            f"{sid!r} is not allowed: a CCU server id must be 1–20 letters/digits",
        )
    _check(
        len(set(cc.server_ids)) == len(cc.server_ids),
        name("ccu", "server_ids"),
        "server ids must be distinct",
    )
    _check(
        cc.period_s > 0 and cc.period_s % 60 == 0 and 3600 % cc.period_s == 0,
        name("ccu", "period_s"),
        f"{cc.period_s} is not allowed: the period must be a whole number of minutes dividing an hour "
        "(120 in production; 60 for demos)",
    )
    _check_url(cc.url, name("ccu", "url"))
    _check_url(cc.mirror_url, name("ccu", "mirror_url"))
    if cc.url is not None:
        _check(
            bool(_GAME.fullmatch(cc.game)),
            name("ccu", "game"),
            "the Hive game key is required when the CCU URL is set (letters, digits, _ and -, e.g. tinyfarm_KR)",
        )
    _check(bool(re.fullmatch(r"[A-Za-z_][\w.\-]*", cc.xml_root)), name("ccu", "xml_root"), "not an XML name")
    _check(cc.send_method in ("form", "body"), name("ccu", "send_method"), "use form or body")
    _check(cc.count_mode in ("socket", "web"), name("ccu", "count_mode"), "use socket or web")
    _check(cc.count in ("players", "connections"), name("ccu", "count"), "use players or connections")
    _check(cc.timeout_s > 0, name("ccu", "timeout_s"), "must be > 0")
    _check(cc.max_inflight >= 1, name("ccu", "max_inflight"), "must be >= 1")
    _check(0 < cc.backoff_base_s <= cc.backoff_max_s, name("ccu", "backoff_base_s"), "need 0 < base <= max")

    g = c.gamebase
    _check_url(g.url, name("gamebase", "url"))
    if g.url is not None:
        _check(bool(g.app_id), name("gamebase", "app_id"), "the app id is required when the Gamebase URL is set")
        _check(
            g.secret_key is not None and bool(g.secret_key),
            name("gamebase", "secret_key"),
            "the secret key is required when the Gamebase URL is set",
        )
    _check(
        bool(re.fullmatch(r"v\d+\.\d+", g.api_version)),
        name("gamebase", "api_version"),
        f"{g.api_version!r} is not an API version like v1.0 or v1.3",
    )
    _check(g.timeout_s > 0, name("gamebase", "timeout_s"), "must be > 0")
    _check(0 <= g.retries <= 10, name("gamebase", "retries"), "must be 0–10")
    _check(g.verify_concurrency >= 1, name("gamebase", "verify_concurrency"), "must be >= 1")
    _check(g.token_cache_ttl_s >= 0, name("gamebase", "token_cache_ttl_s"), "must be >= 0")
    _check(g.negative_cache_ttl_s >= 0, name("gamebase", "negative_cache_ttl_s"), "must be >= 0")
    _check(
        g.failure_policy in ("fail_closed", "allow_cached"),
        name("gamebase", "failure_policy"),
        "use fail_closed or allow_cached",
    )
    _check(g.maintenance_poll_s >= 0, name("gamebase", "maintenance_poll_s"), "must be >= 0 (0 = off)")
    _check(all(w > 0 for w in g.maintenance_warn_s), name("gamebase", "maintenance_warn_s"), "must be > 0")
    _check(g.ban_poll_s >= 0, name("gamebase", "ban_poll_s"), "must be >= 0 (0 = off)")
    _check(g.ban_overlap_s >= 0, name("gamebase", "ban_overlap_s"), "must be >= 0")
    _check(1 <= g.ban_page_size <= 1000, name("gamebase", "ban_page_size"), "must be 1–1000")
    _check(g.poll_backoff_max_s > 0, name("gamebase", "poll_backoff_max_s"), "must be > 0")

    h = c.hive
    _check(h.suspension_path.startswith("/"), name("hive", "suspension_path"), "must be a path starting with /")
    _check("{id}" in h.player_key_format, name("hive", "player_key_format"), "must contain {id}")
    key_problem = player_id_problem(h.player_key_format.replace("{id}", "1"))
    _check(key_problem is None, name("hive", "player_key_format"), f"must make player ids, but {key_problem}")
    _check(-14 <= h.date_utc_offset_h <= 14, name("hive", "date_utc_offset_h"), "must be -14–14")
    _check(h.webstore_timeout_s > 0, name("hive", "webstore_timeout_s"), "must be > 0")
    if h.auth_key is not None:
        _check(
            h.game_index is not None,
            name("hive", "game_index"),
            "the Hive game index is required when the suspension webhook key is set",
        )

    li = c.listener
    if li.listen is not None:
        parse_hostport(li.listen, name("listener", "listen"))
    _check(li.max_header_bytes >= 1024, name("listener", "max_header_bytes"), "must be >= 1024")
    _check(li.max_body_bytes >= 1024, name("listener", "max_body_bytes"), "must be >= 1024")
    _check(li.request_deadline_s > 0, name("listener", "request_deadline_s"), "must be > 0")
    _check(li.keepalive_s > 0, name("listener", "keepalive_s"), "must be > 0")
    _check(li.request_line_deadline_s > 0, name("listener", "request_line_deadline_s"), "must be > 0")
    _check(li.max_connections >= 1, name("listener", "max_connections"), "must be >= 1")
    _check(li.max_connections_per_address >= 1, name("listener", "max_connections_per_address"), "must be >= 1")
    _check(li.reserved_connections >= 0, name("listener", "reserved_connections"), "must be >= 0")
    _check(
        (li.tls_cert is None) == (li.tls_key is None),
        name("listener", "tls_cert"),
        "set both the TLS certificate and key, or neither",
    )
    for field in ("suspension_allow", "webstore_allow", "dashboard_allow", "admin_allow"):
        _check_cidrs(getattr(li, field), name("listener", field))

    gp = c.gamepot
    _check_url(gp.base_url, name("gamepot", "base_url"))
    if gp.project_id is not None:
        _check(
            gp.api_key is not None and bool(gp.api_key),
            name("gamepot", "api_key"),
            "the x-api-key is required when the GamePot project id is set",
        )
    _check(gp.history_retention_days >= 1, name("gamepot", "history_retention_days"), "must be >= 1")


# -- what the operator is told at start: names that are not settings, and the operator routes' default --------


class ConfigWarning(msgspec.Struct, frozen=True):
    """A configuration that is allowed but does not do what it seems to (logged as a WARNING at start).

    Attributes:
        setting: the environment variable (or TOML key) concerned.
        problem: what happens instead, and what to do.
    """

    setting: str
    problem: str

    def __str__(self) -> str:
        return f"{self.setting}: {self.problem}"


OTHER_ENV_VARS = frozenset({"GS_HOOKS_SANDBOX_URL", "GS_HOOKS_SANDBOX_ADMIN", "GS_HOOKS_FUZZ_EXAMPLES"})
"""``GS_HOOKS_*`` names that are not settings but are read by gs_hooks' own tools (the sandbox CLI prints the
first two, the example server reads the first, the fuzz tests the last): never reported as unknown."""

LOOPBACK_CIDRS: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
"""Who may call an operator route (``/metrics``, ``/dashboard``, the GamePot inquiry) while its allowlist is empty."""


def operator_allow(cidrs: tuple[str, ...]) -> tuple[str, ...]:
    """The allowlist of an operator route: the configured one, or loopback only while none is configured.

    Platform routes (the Hive webhook, the web-store profile) keep "empty = any": Hive calls them from the
    internet. An operator opens an operator route on purpose with an explicit list, e.g. ``0.0.0.0/0,::/0``.
    """
    return cidrs or LOOPBACK_CIDRS


def _did_you_mean(name: str, candidates: typing.Iterable[str], prefix: str = "") -> str:
    """`` (did you mean X?)`` for the closest candidate, compared without their common ``prefix``, or ``""``."""
    by_rest = {c.removeprefix(prefix): c for c in candidates}
    close = difflib.get_close_matches(name.removeprefix(prefix), sorted(by_rest), n=1, cutoff=0.6)
    return f" (did you mean {by_rest[close[0]]}?)" if close else ""


def _unknown_env_vars(env: Mapping[str, str]) -> tuple[ConfigWarning, ...]:
    """A warning per ``GS_HOOKS_*`` variable that is not a setting (a typo is otherwise silently ignored)."""
    known = {var.name for var in ENV_VARS}
    out = []
    for name in sorted(env):
        if not name.upper().startswith("GS_HOOKS_") or name in known or name in OTHER_ENV_VARS:
            continue
        hint = (
            _did_you_mean(name.upper(), known, "GS_HOOKS_") or " (the README's configuration table lists every setting)"
        )
        out.append(ConfigWarning(name, f"not a gs_hooks setting: ignored{hint}"))
    return tuple(out)


# Config is a frozen struct: what was noticed while reading it (and where it came from, for setting names) is
# kept beside it, keyed by identity, and dropped with it.
_READ: dict[int, tuple[str, tuple[ConfigWarning, ...]]] = {}


def _remember(config: Config, origin: str, warnings: tuple[ConfigWarning, ...]) -> None:
    if origin == "env" and not warnings:
        return  # the default: environment names, nothing noticed
    _READ[id(config)] = (origin, warnings)
    weakref.finalize(config, _READ.pop, id(config), None)


def read_warnings(config: Config) -> tuple[ConfigWarning, ...]:
    """What :meth:`Config.from_env` noticed while reading ``config`` (unknown ``GS_HOOKS_*`` variables)."""
    entry = _READ.get(id(config))
    return entry[1] if entry is not None else ()


def setting_namer(config: Config) -> Callable[[str, str], str]:
    """``(section, field) -> name`` in the words the operator used: TOML keys for a config read by
    :meth:`Config.from_toml`, environment variables otherwise."""
    entry = _READ.get(id(config))
    return _toml_name if entry is not None and entry[0] == "toml" else _env_name
