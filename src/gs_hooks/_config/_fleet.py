"""The fleet section: many game-server processes on one Redis acting as one game (off while ``url`` is None).

A password inside ``GS_HOOKS_REDIS_URL`` is moved out of it at once into :attr:`FleetConfig.password` (a
:class:`Secret`), so the URL the section holds, shows and logs never has one; giving a password both in the URL
and in ``GS_HOOKS_REDIS_PASSWORD`` is refused, as is a fleet setting given without the URL (it would do nothing).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated
from urllib.parse import SplitResult, urlsplit

import msgspec

from .._exceptions import ConfigError
from ._setting import Secret, Section, Setting, positive, settings_of

__all__ = ["FleetConfig", "redact_url"]

_KEY_PART = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


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


def _s(env: str, help: str) -> Setting:
    return Setting(env, help, positive)


class FleetConfig(Section, frozen=True, kw_only=True):
    """Fleet mode (many processes on one Redis acting as one game). Off while ``url`` is None.

    Attributes:
        url: ``redis://`` or ``rediss://`` URL (host, port, database, user); never holds the password.
        game: ``GS_HOOKS_GAME``: processes of one game on one Redis and prefix are one fleet.
        password: the Redis password (from the URL or ``GS_HOOKS_REDIS_PASSWORD``), or None.
        prefix: first part of every key (``{prefix}:{game}:``), to share a Redis between games or environments.
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
        admin_timeout_s: the longest an admin kick waits for the answer of the process that owns the player.
    """

    url: Annotated[
        str | None,
        Setting("GS_HOOKS_REDIS_URL", "`redis://` or `rediss://` URL; set = fleet mode on (see Running a fleet)"),
    ] = None
    game: Annotated[str, Setting("GS_HOOKS_GAME", own=False)] = ""
    password: Annotated[Secret | None, Setting("GS_HOOKS_REDIS_PASSWORD", "Redis password (secret; or in the URL)")] = (
        None
    )
    prefix: Annotated[
        str, Setting("GS_HOOKS_REDIS_PREFIX", "key prefix, to share a Redis (`{prefix}:{game}:`)", _key_part)
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
    admin_timeout_s: Annotated[
        float, _s("GS_HOOKS_FLEET_ADMIN_TIMEOUT_S", "admin kick: longest wait for the player's process")
    ] = 3.0

    def __post_init__(self) -> None:
        """Raises ConfigError: a value is not allowed (the message names the variable, never the password)."""
        if self.url is not None:
            self._move_password(self.url)
        super().__post_init__()

    def _move_password(self, url: str) -> None:
        try:
            parts = urlsplit(url)
            password, _ = parts.password, parts.port
        except ValueError as exc:
            raise ConfigError("GS_HOOKS_REDIS_URL", f"{redact_url(url)!r} is not a URL ({exc})") from None
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise ConfigError(
                "GS_HOOKS_REDIS_URL",
                f"{redact_url(url)!r} is not a redis:// or rediss:// URL with a host (e.g. redis://127.0.0.1:6379/0)",
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
        if self.url is None:
            for name in settings_of(FleetConfig):
                if name not in ("url", "game") and getattr(self, name) != _DEFAULTS[name]:
                    yield (
                        name,
                        False,
                        "is a fleet setting but GS_HOOKS_REDIS_URL is not set: set GS_HOOKS_REDIS_URL to turn fleet "
                        "mode on, or remove this setting",
                    )
            return
        yield (
            "game",
            bool(self.game),
            "fleet mode (GS_HOOKS_REDIS_URL) needs the game key: processes of one game on one Redis are one fleet",
        )
        problem = _key_part(self.game)
        yield "game", problem is None, problem or ""
        # each rule over two settings names the one the operator changed (see Section._blame)
        ttl, beat = self.member_ttl_s, self.heartbeat_s
        late = "one late heartbeat would drop a live process"
        if self._blame("member_ttl_s", "heartbeat_s") == "member_ttl_s":
            yield "member_ttl_s", ttl >= 2 * beat, f"{ttl} s must be at least twice the heartbeat ({beat} s): {late}"
        else:
            yield "heartbeat_s", ttl >= 2 * beat, f"{beat} s must be at most half the member TTL ({ttl} s): {late}"
        renew, lease = self.lease_renew_s, self.lease_ttl_s
        if self._blame("lease_renew_s", "lease_ttl_s") == "lease_renew_s":
            yield "lease_renew_s", renew * 2 <= lease, f"{renew} s must be at most half the lease TTL ({lease} s)"
        else:
            yield "lease_ttl_s", renew * 2 <= lease, f"{lease} s must be at least twice the lease renewal ({renew} s)"
        block, sock = self.block_s, self.socket_timeout_s
        timeout = "a longer blocking read would time out instead of returning"
        if self._blame("block_s", "socket_timeout_s") == "block_s":
            yield "block_s", block < sock, f"{block} s must be below the socket timeout ({sock} s): {timeout}"
        else:
            yield "socket_timeout_s", block < sock, f"{sock} s must be above the blocking read ({block} s): {timeout}"

    @property
    def enabled(self) -> bool:
        """Whether fleet mode is on (``GS_HOOKS_REDIS_URL`` set)."""
        return self.url is not None

    @property
    def key_base(self) -> str:
        """``{prefix}:{game}:``."""
        return f"{self.prefix}:{self.game}:"


_DEFAULTS = {f.name: f.default for f in msgspec.structs.fields(FleetConfig)}
