"""The config sections, one per capability: each setting declared once, on its field (see :mod:`._setting`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Literal

from . import _checks as check
from ._setting import (
    Secret,
    Section,
    Setting,
    at_least,
    cidrs,
    header_name,
    http_url,
    one_of,
    positive,
    within,
)

__all__ = [
    "GAMEBASE_DEFAULT_URL",
    "GAMEPOT_DEFAULT_URL",
    "HIVE_CCU_LIVE_URL",
    "HIVE_CCU_SANDBOX_URL",
    "CcuConfig",
    "GamePotConfig",
    "GamebaseConfig",
    "HiveConfig",
    "ListenerConfig",
    "SessionsConfig",
]

HIVE_CCU_LIVE_URL = "http://api-index.qpyou.cn/modules/gameuser/currentuser/"
HIVE_CCU_SANDBOX_URL = "http://sandbox-api-index.withhive.com/modules/gameuser/currentuser/"
GAMEBASE_DEFAULT_URL = "https://api-gamebase.cloud.toast.com"
GAMEPOT_DEFAULT_URL = "https://dashboard-api.gamepot.ntruss.com"

_DEFAULT_VERIFY_CONCURRENCY = 16
"""The default cap of concurrent token verifications (see :attr:`GamebaseConfig.verify_concurrency`)."""


class SessionsConfig(Section, frozen=True, kw_only=True):
    """Session registry settings.

    Attributes:
        server_id: server id given to sessions that do not name one (first of ``GS_HOOKS_SERVER_ID``).
        duplicate_login: what happens when a player logs in while already logged in: ``allow`` both,
            ``kick_older`` (default), or ``refuse_newer``.
    """

    server_id: Annotated[str, Setting("GS_HOOKS_SERVER_ID", check=check.server_id, own=False)] = "0"
    duplicate_login: Annotated[
        Literal["allow", "kick_older", "refuse_newer"],
        Setting(
            "GS_HOOKS_DUPLICATE_LOGIN",
            "`allow`, `kick_older`, `refuse_newer`",
            one_of("allow", "kick_older", "refuse_newer"),
        ),
    ] = "kick_older"


class CcuConfig(Section, frozen=True, kw_only=True):
    """Hive/Com2uS CCU reporting. Off while ``url`` is None.

    Attributes:
        game: the game key issued by Hive (e.g. ``tinyfarm_KR``).
        server_ids: the server ids this process reports (1–20 letters/digits each).
        url: collector URL (live: ``HIVE_CCU_LIVE_URL``, sandbox: ``HIVE_CCU_SANDBOX_URL``).
        mirror_url: optional best-effort copy of every sample (the platform's test server).
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

    game: Annotated[str, Setting("GS_HOOKS_GAME", "Hive game key (e.g. `tinyfarm_KR`); also names the fleet")] = ""
    server_ids: Annotated[
        tuple[str, ...],
        Setting("GS_HOOKS_SERVER_ID", "server id(s), comma-separated, 1–20 letters/digits", check.server_ids),
    ] = ("0",)
    url: Annotated[str | None, Setting("GS_HOOKS_CCU_URL", "CCU collector URL; unset = no CCU reporting", http_url)] = (
        None
    )
    mirror_url: Annotated[
        str | None, Setting("GS_HOOKS_CCU_MIRROR_URL", "best-effort copy of every sample (test server)", http_url)
    ] = None
    period_s: Annotated[
        int, Setting("GS_HOOKS_CCU_PERIOD_S", "grid period, 120; shorter for demos/tests only", check.period)
    ] = 120
    spool_path: Annotated[
        str | None, Setting("GS_HOOKS_CCU_SPOOL", "sqlite spool path (default: `GS_HOOKS_STATE`)")
    ] = None
    xml_root: Annotated[str, Setting("GS_HOOKS_CCU_XML_ROOT", "XML root element name", check.xml_name)] = "currentuser"
    send_method: Annotated[
        Literal["form", "body"],
        Setting("GS_HOOKS_CCU_SEND_METHOD", "`form` (field `value`) or `body`", one_of("form", "body")),
    ] = "form"
    count_mode: Annotated[
        Literal["socket", "web"],
        Setting(
            "GS_HOOKS_CCU_COUNT_MODE", "`socket` (connected now) or `web` (2-min uniques)", one_of("socket", "web")
        ),
    ] = "socket"
    count: Annotated[
        Literal["players", "connections"],
        Setting(
            "GS_HOOKS_CCU_COUNT", "socket mode counts `players` or `connections`", one_of("players", "connections")
        ),
    ] = "players"
    timeout_s: Annotated[float, Setting("GS_HOOKS_CCU_TIMEOUT_S", "HTTP timeout of one CCU POST", positive)] = 10.0
    max_inflight: Annotated[int, Setting("GS_HOOKS_CCU_MAX_INFLIGHT", "backlog drain concurrency", at_least(1))] = 4
    backoff_base_s: Annotated[
        float, Setting("GS_HOOKS_CCU_BACKOFF_BASE_S", "first retry delay (jittered, doubling)", positive)
    ] = 2.0
    backoff_max_s: Annotated[float, Setting("GS_HOOKS_CCU_BACKOFF_MAX_S", "largest retry delay", positive)] = 120.0

    def _together(self) -> Iterable[tuple[str, bool, str]]:
        game_problem = None if self.url is None else check.game_key(self.game)
        yield "game", game_problem is None, game_problem or ""
        base, most = self.backoff_base_s, self.backoff_max_s
        if self._blame("backoff_base_s", "backoff_max_s") == "backoff_base_s":
            yield (
                "backoff_base_s",
                base <= most,
                f"{base} s is above the largest retry delay ({most} s): need base <= max",
            )
        else:
            yield "backoff_max_s", base <= most, f"{most} s is below the first retry delay ({base} s): need base <= max"


class GamebaseConfig(Section, frozen=True, kw_only=True):
    """NHN Cloud Gamebase server API. Off while ``url`` is None.

    Attributes:
        url: base URL (``https://api-gamebase.cloud.toast.com``; v1.3 host ``https://api-gamebase.nhncloudservice.com``).
        app_id: NHN Cloud project id.
        secret_key: the ``X-Secret-Key`` value.
        api_version: path version, ``v1.0`` (our document) or ``v1.3``.
        timeout_s: HTTP timeout of one call.
        retries: extra attempts for transient failures (-5000xxx, transport errors, 5xx).
        verify_concurrency: cap of concurrent token verifications towards Gamebase. 16, from ``bench.gamebase``
            (login storm against the sandbox on loopback, a shared 2-core machine, medians of 5 rounds; on asyncio
            the requests go through aiohttp): ours / a plain aiohttp loop at the same concurrency 0.63 at 1, 0.61
            at 4, 1.0 at 16, 0.72 at 64; client CPU per verification (the game's loop pays it) ~1.5x aiohttp's at
            each, and with a 10 ms round trip it does not grow from 16 to 64 (0.87x). Against the real, remote
            Gamebase, a cap of c allows at most c / RTT verifications per second (4 at 30 ms: ~130/s; 16:
            ~530/s), which matters for the storm after a maintenance.
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

    url: Annotated[
        str | None, Setting("GS_HOOKS_GAMEBASE_URL", "Gamebase base URL; unset = Gamebase off", http_url)
    ] = None
    app_id: Annotated[str, Setting("GS_HOOKS_GAMEBASE_APP_ID", "NHN Cloud project (app) id")] = ""
    secret_key: Annotated[Secret | None, Setting("GS_HOOKS_GAMEBASE_SECRET_KEY", "`X-Secret-Key` (never logged)")] = (
        None
    )
    api_version: Annotated[str, Setting("GS_HOOKS_GAMEBASE_API_VERSION", "`v1.0` or `v1.3`", check.api_version)] = (
        "v1.0"
    )
    timeout_s: Annotated[float, Setting("GS_HOOKS_GAMEBASE_TIMEOUT_S", "HTTP timeout of one call", positive)] = 5.0
    retries: Annotated[
        int, Setting("GS_HOOKS_GAMEBASE_RETRIES", "extra attempts on transient failures", within(0, 10))
    ] = 2
    verify_concurrency: Annotated[
        int, Setting("GS_HOOKS_GAMEBASE_VERIFY_CONCURRENCY", "concurrent verifications", at_least(1))
    ] = _DEFAULT_VERIFY_CONCURRENCY
    token_cache_ttl_s: Annotated[
        float, Setting("GS_HOOKS_GAMEBASE_TOKEN_CACHE_TTL_S", "positive cache TTL", check.NON_NEGATIVE)
    ] = 300.0
    negative_cache_ttl_s: Annotated[
        float, Setting("GS_HOOKS_GAMEBASE_NEGATIVE_CACHE_TTL_S", "negative TTL", check.NON_NEGATIVE)
    ] = 5.0
    failure_policy: Annotated[
        Literal["fail_closed", "allow_cached"],
        Setting(
            "GS_HOOKS_GAMEBASE_FAILURE_POLICY", "`fail_closed`/`allow_cached`", one_of("fail_closed", "allow_cached")
        ),
    ] = "fail_closed"
    maintenance_poll_s: Annotated[
        float, Setting("GS_HOOKS_GAMEBASE_MAINTENANCE_POLL_S", "0 = watcher off", check.OFF_AT_ZERO)
    ] = 30.0
    maintenance_gate: Annotated[bool, Setting("GS_HOOKS_GAMEBASE_MAINTENANCE_GATE", "refuse logins in maintenance")] = (
        True
    )
    maintenance_kick: Annotated[bool, Setting("GS_HOOKS_GAMEBASE_MAINTENANCE_KICK", "kick all at begin")] = True
    maintenance_warn_s: Annotated[
        tuple[float, ...], Setting("GS_HOOKS_GAMEBASE_MAINTENANCE_WARN_S", "warn lead times", check.lead_times)
    ] = (600.0, 300.0, 60.0)
    launching_os_code: Annotated[
        str | None, Setting("GS_HOOKS_GAMEBASE_LAUNCHING_OS", "poll simple launching as", check.os_code)
    ] = None
    launching_client_version: Annotated[str | None, Setting("GS_HOOKS_GAMEBASE_LAUNCHING_VERSION", "…this version")] = (
        None
    )
    ban_poll_s: Annotated[
        float, Setting("GS_HOOKS_GAMEBASE_BAN_POLL_S", "ban history poll period, 0 = off", check.OFF_AT_ZERO)
    ] = 60.0
    ban_overlap_s: Annotated[
        float, Setting("GS_HOOKS_GAMEBASE_BAN_OVERLAP_S", "re-read window per poll", check.NON_NEGATIVE)
    ] = 300.0
    ban_page_size: Annotated[int, Setting("GS_HOOKS_GAMEBASE_BAN_PAGE_SIZE", "history page size", within(1, 1000))] = (
        100
    )
    poll_backoff_max_s: Annotated[
        float,
        Setting("GS_HOOKS_GAMEBASE_POLL_BACKOFF_MAX_S", "longest wait after failed maintenance/ban polls", positive),
    ] = 300.0

    def _together(self) -> Iterable[tuple[str, bool, str]]:
        on = self.url is not None
        yield "app_id", not on or bool(self.app_id), "the app id is required when the Gamebase URL is set"
        yield (
            "secret_key",
            not on or (self.secret_key is not None and bool(self.secret_key)),
            "the secret key is required when the Gamebase URL is set",
        )


class HiveConfig(Section, frozen=True, kw_only=True):
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

    auth_key: Annotated[
        Secret | None, Setting("GS_HOOKS_HIVE_AUTH_KEY", "suspension webhook Bearer key; unset = off")
    ] = None
    game_index: Annotated[
        int | None, Setting("GS_HOOKS_HIVE_GAME_INDEX", "Hive game index the webhook must carry", check.game_index)
    ] = None
    suspension_path: Annotated[
        str, Setting("GS_HOOKS_HIVE_SUSPENSION_PATH", "suspension webhook path", check.route_path)
    ] = "/hive/suspensions"
    date_utc_offset_h: Annotated[
        float, Setting("GS_HOOKS_HIVE_DATE_UTC_OFFSET_H", "zone of webhook dates (9=KST)", within(-14, 14))
    ] = 9.0
    player_key_format: Annotated[
        str, Setting("GS_HOOKS_HIVE_PLAYER_KEY_FORMAT", "platform id → player key", check.player_key_format)
    ] = "{id}"
    webstore_enabled: Annotated[bool, Setting("GS_HOOKS_HIVE_WEBSTORE", "serve `POST /webstore-profile`")] = True
    webstore_key: Annotated[
        Secret | None, Setting("GS_HOOKS_HIVE_WEBSTORE_KEY", "optional shared key for web-store")
    ] = None
    webstore_key_header: Annotated[
        str, Setting("GS_HOOKS_HIVE_WEBSTORE_KEY_HEADER", "header of that key", header_name)
    ] = "x-gs-hooks-key"
    webstore_timeout_s: Annotated[
        float, Setting("GS_HOOKS_HIVE_WEBSTORE_TIMEOUT_S", "callback deadline (→ 500)", positive)
    ] = 3.0

    def _together(self) -> Iterable[tuple[str, bool, str]]:
        yield (
            "game_index",
            self.auth_key is None or self.game_index is not None,
            "the Hive game index is required when the suspension webhook key is set",
        )


class ListenerConfig(Section, frozen=True, kw_only=True):
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
        admin_key: the admin API's key (unset: the dashboard key; neither: the API refuses every request).
    """

    listen: Annotated[
        str | None, Setting("GS_HOOKS_LISTEN", "`host:port` of the webhook listener; unset = off", check.hostport)
    ] = None
    max_header_bytes: Annotated[
        int, Setting("GS_HOOKS_LISTEN_MAX_HEADER_BYTES", "header block limit (431)", at_least(1024))
    ] = 16_384
    max_body_bytes: Annotated[int, Setting("GS_HOOKS_LISTEN_MAX_BODY_BYTES", "body limit (413)", at_least(1024))] = (
        65_536
    )
    request_deadline_s: Annotated[float, Setting("GS_HOOKS_LISTEN_DEADLINE_S", "head+body deadline", positive)] = 10.0
    request_line_deadline_s: Annotated[
        float,
        Setting("GS_HOOKS_LISTEN_REQUEST_LINE_DEADLINE_S", "request line deadline (first: from accept)", positive),
    ] = 3.0
    keepalive_s: Annotated[float, Setting("GS_HOOKS_LISTEN_KEEPALIVE_S", "idle keep-alive timeout", positive)] = 30.0
    max_connections: Annotated[int, Setting("GS_HOOKS_LISTEN_MAX_CONNECTIONS", "connection cap (503)", at_least(1))] = (
        512
    )
    max_connections_per_address: Annotated[
        int,
        Setting("GS_HOOKS_LISTEN_MAX_CONNECTIONS_PER_ADDRESS", "per-IP cap (503); behind a proxy = cap", at_least(1)),
    ] = 64
    reserved_connections: Annotated[
        int, Setting("GS_HOOKS_LISTEN_RESERVED_CONNECTIONS", "beyond the cap, for allowlisted IPs", check.NON_NEGATIVE)
    ] = 64
    tls_cert: Annotated[str | None, Setting("GS_HOOKS_LISTEN_TLS_CERT", "PEM certificate (TLS on with key)")] = None
    tls_key: Annotated[str | None, Setting("GS_HOOKS_LISTEN_TLS_KEY", "PEM private key")] = None
    suspension_allow: Annotated[
        tuple[str, ...], Setting("GS_HOOKS_LISTEN_SUSPENSION_ALLOW", check.CIDRS_HELP, cidrs)
    ] = ()
    webstore_allow: Annotated[tuple[str, ...], Setting("GS_HOOKS_LISTEN_WEBSTORE_ALLOW", check.CIDRS_HELP, cidrs)] = ()
    dashboard_allow: Annotated[
        tuple[str, ...],
        Setting("GS_HOOKS_LISTEN_DASHBOARD_ALLOW", "CIDRs of `/dashboard`, empty = loopback only", cidrs),
    ] = ()
    admin_allow: Annotated[
        tuple[str, ...],
        Setting("GS_HOOKS_LISTEN_ADMIN_ALLOW", "CIDRs of /metrics, /admin, GamePot inquiry; empty = loopback", cidrs),
    ] = ()
    dashboard: Annotated[bool, Setting("GS_HOOKS_DASHBOARD", "serve `/dashboard`")] = False
    dashboard_key: Annotated[Secret | None, Setting("GS_HOOKS_DASHBOARD_KEY", "optional dashboard key")] = None
    admin_key: Annotated[Secret | None, Setting("GS_HOOKS_ADMIN_KEY", "admin API key (else the dashboard key)")] = None

    def _together(self) -> Iterable[tuple[str, bool, str]]:
        yield (
            "tls_cert" if self.tls_cert is None else "tls_key",
            (self.tls_cert is None) == (self.tls_key is None),
            "set both the TLS certificate and key, or neither: "
            + ("the certificate is missing" if self.tls_cert is None else "the key is missing"),
        )


class GamePotConfig(Section, frozen=True, kw_only=True):
    """GamePot-compatible CCU inquiry (served on the listener) and the GamePot client.

    Attributes:
        project_id: the project id the inquiry answers for (inquiry off while None).
        api_key: the ``x-api-key`` the inquiry requires.
        base_url: GamePot dashboard API base URL (client).
        history_retention_days: how long CCU history is kept.
    """

    project_id: Annotated[
        str | None,
        Setting(
            "GS_HOOKS_GAMEPOT_PROJECT_ID",
            "project id of the CCU inquiry; unset = off",
            check.project_id,
        ),
    ] = None
    api_key: Annotated[Secret | None, Setting("GS_HOOKS_GAMEPOT_API_KEY", "`x-api-key` the inquiry requires")] = None
    base_url: Annotated[str, Setting("GS_HOOKS_GAMEPOT_URL", "GamePot dashboard API base URL (client)", http_url)] = (
        GAMEPOT_DEFAULT_URL
    )
    history_retention_days: Annotated[
        int, Setting("GS_HOOKS_GAMEPOT_RETENTION_DAYS", "CCU history kept", at_least(1))
    ] = 35

    def _together(self) -> Iterable[tuple[str, bool, str]]:
        yield (
            "api_key",
            self.project_id is None or (self.api_key is not None and bool(self.api_key)),
            "the x-api-key is required when the GamePot project id is set",
        )
