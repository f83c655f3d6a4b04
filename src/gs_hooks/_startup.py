"""What the operator is told when the hooks start: settings that do nothing, open doors, and one summary line.

Pure: functions of a :class:`~gs_hooks.Config` and of the few facts only the starting hooks know
(:class:`StartFacts`); :class:`~gs_hooks.Hooks` logs what they return (each warning once, the summary at INFO).
Nothing here formats a secret: URLs are cut down to their host, keys are only said to be set or not, and
configured paths (which may carry a token) are left out.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

import msgspec

from ._config import Config, ConfigWarning, parse_hostport, read_warnings, setting_namer

__all__ = ["StartFacts", "config_warnings", "is_public_bind", "public_networks", "start_warnings", "startup_summary"]

Namer = Callable[[str, str], str]


class StartFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What only the starting hooks know.

    Attributes:
        listener_url: the embedded listener's bound base URL (None while it is off or not bound yet).
        asgi_mounted: ``hooks.asgi_app()`` was called before start (the routes are served by the game's server).
        webstore_callback: a ``webstore_profile`` callback was given to ``setup()``.
    """

    listener_url: str | None = None
    asgi_mounted: bool = False
    webstore_callback: bool = False


def config_warnings(config: Config) -> list[ConfigWarning]:
    """Settings that are read but do nothing with the rest of ``config`` (and unknown ``GS_HOOKS_*`` names).

    Args:
        config: the configuration.

    Returns:
        One warning per case, naming the setting that is ignored (or missing) and what to do.
    """
    n = setting_namer(config)
    out = list(read_warnings(config))

    def ignored(section: str, field: str, why: str) -> None:
        out.append(ConfigWarning(n(section, field), f"ignored: {why}"))

    cc, g, h, li, gp = config.ccu, config.gamebase, config.hive, config.listener, config.gamepot
    ccu_url = n("ccu", "url")
    if cc.url is None:
        for field, value in (("game", cc.game), ("mirror_url", cc.mirror_url), ("spool_path", cc.spool_path)):
            if value:
                ignored("ccu", field, f"CCU reporting is off while {ccu_url} is unset")
    else:
        if cc.count_mode == "web" and cc.count != "players":
            ignored("ccu", "count", f"it applies to socket mode only ({n('ccu', 'count_mode')} is web)")
        if config.sessions.server_id not in cc.server_ids:
            out.append(
                ConfigWarning(
                    n("sessions", "server_id"),
                    f"the sessions' default server id {config.sessions.server_id!r} is not one of the CCU server ids "
                    f"({', '.join(cc.server_ids)}): sessions opened without a server_id are not reported",
                )
            )

    gb_url = n("gamebase", "url")
    if g.url is None:
        for field, set_ in (
            ("app_id", bool(g.app_id)),
            ("secret_key", g.secret_key is not None),
            ("launching_os_code", g.launching_os_code is not None),
            ("launching_client_version", g.launching_client_version is not None),
        ):
            if set_:
                ignored("gamebase", field, f"Gamebase is off while {gb_url} is unset")
    elif (g.launching_os_code is None) != (g.launching_client_version is None):
        have, need = (
            ("launching_os_code", "launching_client_version")
            if g.launching_os_code is not None
            else ("launching_client_version", "launching_os_code")
        )
        ignored("gamebase", have, f"the simple-launching poll also needs {n('gamebase', need)}; it is off")
    elif g.launching_os_code is not None and g.maintenance_poll_s <= 0:
        ignored(
            "gamebase", "launching_os_code", f"the maintenance watcher is off ({n('gamebase', 'maintenance_poll_s')}=0)"
        )

    auth = n("hive", "auth_key")
    if h.auth_key is None:
        if h.game_index is not None:
            ignored("hive", "game_index", f"the Hive suspension webhook is off while {auth} is unset")
        if li.suspension_allow:
            ignored("listener", "suspension_allow", f"the Hive suspension webhook is off while {auth} is unset")
    if not h.webstore_enabled:
        if h.webstore_key is not None:
            ignored("hive", "webstore_key", f"the web-store route is off ({n('hive', 'webstore_enabled')}=0)")
        if li.webstore_allow:
            ignored("listener", "webstore_allow", f"the web-store route is off ({n('hive', 'webstore_enabled')}=0)")

    if not li.dashboard:
        why = f"the dashboard is off ({n('listener', 'dashboard')} unset)"
        if li.dashboard_key is not None:
            ignored("listener", "dashboard_key", why)
        if li.dashboard_allow:
            ignored("listener", "dashboard_allow", why)
    if li.listen is None and li.tls_cert is not None:
        ignored(
            "listener", "tls_cert", f"TLS is for the embedded listener, which is off ({n('listener', 'listen')} unset)"
        )

    if gp.project_id is None and gp.api_key is not None:
        ignored(
            "gamepot",
            "api_key",
            f"the GamePot CCU inquiry is off while {n('gamepot', 'project_id')} is unset "
            "(hooks.gamepot_client() still uses the key when given a project id)",
        )
    return out


def is_public_bind(listen: str) -> bool:
    """Whether ``host:port`` accepts connections from other machines (any address but loopback).

    Args:
        listen: the listener's ``host:port``.
    """
    host, _ = parse_hostport(listen)
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a host name: assume it resolves to a reachable address


def public_networks(cidrs: Iterable[str]) -> list[str]:
    """The entries of an allowlist that reach public addresses (``0.0.0.0/0``, ``::/0``, a global range...)."""
    out = []
    for cidr in cidrs:
        net = ipaddress.ip_network(cidr, strict=False)
        if not (net.is_private or net.is_loopback or net.is_link_local):
            out.append(cidr)
    return out


def start_warnings(config: Config, facts: StartFacts) -> list[ConfigWarning]:
    """Routes configured but not served, callbacks missing, and routes a public bind opens to the internet.

    Args:
        config: the configuration.
        facts: what the starting hooks know.

    Returns:
        One warning per case, naming the setting to change.
    """
    n = setting_namer(config)
    out: list[ConfigWarning] = []
    h, li, gp = config.hive, config.listener, config.gamepot
    webhook = h.auth_key is not None and h.game_index is not None
    webstore = h.webstore_enabled and facts.webstore_callback
    inquiry = gp.project_id is not None and gp.api_key is not None
    if h.webstore_enabled and not facts.webstore_callback and h.webstore_key is not None:
        out.append(
            ConfigWarning(
                n("hive", "webstore_key"),
                "ignored: no webstore_profile callback was given to setup(), so /webstore-profile is not served",
            )
        )

    if li.listen is None and not facts.asgi_mounted:
        unserved = [
            (webhook, ("hive", "auth_key"), "the Hive suspension webhook (Hive's bans will not reach this server)"),
            (webstore, ("hive", "webstore_enabled"), "the web-store profile route"),
            (li.dashboard, ("listener", "dashboard"), "the dashboard"),
            (inquiry, ("gamepot", "project_id"), "the GamePot CCU inquiry"),
        ]
        for on, (section, field), what in unserved:
            if on:
                out.append(
                    ConfigWarning(
                        n(section, field),
                        f"{what} is configured but not served: {n('listener', 'listen')} is unset and "
                        "hooks.asgi_app() was not mounted before start()",
                    )
                )

    if li.listen is not None and is_public_bind(li.listen):
        where = f"the public bind {li.listen}"
        admin = public_networks(li.admin_allow)
        if admin:
            routes = "/metrics and the GamePot CCU inquiry" if inquiry else "/metrics"
            out.append(
                ConfigWarning(
                    n("listener", "admin_allow"),
                    f"opens {routes} to public addresses ({', '.join(admin)}) on {where}; "
                    "list only your monitoring networks",
                )
            )
        dash = public_networks(li.dashboard_allow)
        if li.dashboard and dash:
            keyless = "" if li.dashboard_key else f", without {n('listener', 'dashboard_key')}"
            out.append(
                ConfigWarning(
                    n("listener", "dashboard_allow"),
                    f"opens /dashboard (live counts, banned player ids) to public addresses ({', '.join(dash)}) "
                    f"on {where}{keyless}",
                )
            )
        if webstore and h.webstore_key is None and not li.webstore_allow:
            out.append(
                ConfigWarning(
                    n("hive", "webstore_key"),
                    f"unset, and {n('listener', 'webstore_allow')} is empty: /webstore-profile answers anyone on "
                    f"{where} with player profiles; set a key (and the same one in the Hive console) or an allowlist",
                )
            )
    return out


def _host(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port}" if parts.port else host


def _allow_text(cidrs: tuple[str, ...], setting: str) -> str:
    return f"from {', '.join(cidrs)}" if cidrs else f"loopback only ({setting} unset)"


def startup_summary(config: Config, facts: StartFacts) -> str:
    """One line saying what is on (components, listener URL, server ids, platform hosts) and what is off and why.

    Args:
        config: the configuration.
        facts: what the starting hooks know.

    Returns:
        ``gs_hooks started: listener: ...; ccu: ...; gamebase: ...; ...`` (no key, no secret, no configured path).
    """
    n = setting_namer(config)
    cc, g, h, li, gp = config.ccu, config.gamebase, config.hive, config.listener, config.gamepot
    parts = []
    if facts.listener_url is not None:
        parts.append(f"listener: {facts.listener_url}" + (" (TLS)" if li.tls_cert else ""))
    else:
        asgi = ", routes served by hooks.asgi_app()" if facts.asgi_mounted else ""
        parts.append(f"listener: off ({n('listener', 'listen')} unset{asgi})")
    parts.append(f"server ids: {', '.join(cc.server_ids)} (sessions default {config.sessions.server_id})")
    if cc.url is not None:
        mirror = f", mirror {_host(cc.mirror_url)}" if cc.mirror_url else ""
        mode = f"{cc.count_mode} mode" + (f", counting {cc.count}" if cc.count_mode == "socket" else "")
        parts.append(f"ccu: on (collector {_host(cc.url)}{mirror}, every {cc.period_s} s, {mode})")
    else:
        parts.append(f"ccu: off ({n('ccu', 'url')} unset)")
    if g.url is not None:
        pieces = ["token verifier"]
        if g.maintenance_poll_s > 0:
            launching = " with simple launching" if g.launching_os_code and g.launching_client_version else ""
            pieces.append(f"maintenance watch every {g.maintenance_poll_s:g} s{launching}")
        else:
            pieces.append(f"maintenance watch off ({n('gamebase', 'maintenance_poll_s')}=0)")
        if g.ban_poll_s > 0:
            pieces.append(f"ban poll every {g.ban_poll_s:g} s")
        else:
            pieces.append(f"ban poll off ({n('gamebase', 'ban_poll_s')}=0)")
        parts.append(f"gamebase: on ({_host(g.url)} {g.api_version}: {', '.join(pieces)}; {g.failure_policy})")
    else:
        parts.append(f"gamebase: off ({n('gamebase', 'url')} unset)")
    if h.auth_key is not None and h.game_index is not None:
        parts.append(f"hive webhook: on (game index {h.game_index})")
    else:
        parts.append(f"hive webhook: off ({n('hive', 'auth_key')} unset)")
    if not h.webstore_enabled:
        parts.append(f"webstore: off ({n('hive', 'webstore_enabled')}=0)")
    elif not facts.webstore_callback:
        parts.append("webstore: off (no webstore_profile callback)")
    else:
        parts.append(f"webstore: on (key {'required' if h.webstore_key else 'not set'})")
    if gp.project_id is not None:
        parts.append(f"gamepot inquiry: on, {_allow_text(li.admin_allow, n('listener', 'admin_allow'))}")
    else:
        parts.append(f"gamepot inquiry: off ({n('gamepot', 'project_id')} unset)")
    if li.dashboard:
        key = "key required" if li.dashboard_key else "no key"
        parts.append(f"dashboard: on ({key}), {_allow_text(li.dashboard_allow, n('listener', 'dashboard_allow'))}")
    else:
        parts.append(f"dashboard: off ({n('listener', 'dashboard')} unset)")
    parts.append(f"metrics: {_allow_text(li.admin_allow, n('listener', 'admin_allow'))}")
    parts.append(f"store: {config.state_path}")
    return "gs_hooks started: " + "; ".join(parts)
