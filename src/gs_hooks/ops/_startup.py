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

from .._config import Config, ConfigWarning, parse_hostport, read_warnings, setting_namer

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
    return [
        *read_warnings(config),
        *_ccu_warnings(config, n),
        *_gamebase_warnings(config, n),
        *_hive_warnings(config, n),
        *_listener_warnings(config, n),
        *_gamepot_warnings(config, n),
    ]


def _ignored(n: Namer, section: str, field: str, why: str) -> ConfigWarning:
    return ConfigWarning(n(section, field), f"ignored: {why}")


def _ccu_warnings(config: Config, n: Namer) -> list[ConfigWarning]:
    cc = config.ccu
    out = []
    if cc.url is None:
        ccu_url = n("ccu", "url")
        for field, value in (("game", cc.game), ("mirror_url", cc.mirror_url), ("spool_path", cc.spool_path)):
            if field == "game" and config.fleet.enabled:
                continue  # it names the fleet
            if value:
                out.append(_ignored(n, "ccu", field, f"CCU reporting is off while {ccu_url} is unset"))
        return out
    if cc.count_mode == "web" and cc.count != "players":
        out.append(_ignored(n, "ccu", "count", f"it applies to socket mode only ({n('ccu', 'count_mode')} is web)"))
    if config.sessions.server_id not in cc.server_ids:
        out.append(
            ConfigWarning(
                n("sessions", "server_id"),
                f"the sessions' default server id {config.sessions.server_id!r} is not one of the CCU server ids "
                f"({', '.join(cc.server_ids)}): sessions opened without a server_id are not reported",
            )
        )
    return out


def _gamebase_warnings(config: Config, n: Namer) -> list[ConfigWarning]:
    g = config.gamebase
    if g.url is None:
        gb_url = n("gamebase", "url")
        return [
            _ignored(n, "gamebase", field, f"Gamebase is off while {gb_url} is unset")
            for field, set_ in (
                ("app_id", bool(g.app_id)),
                ("secret_key", g.secret_key is not None),
                ("launching_os_code", g.launching_os_code is not None),
                ("launching_client_version", g.launching_client_version is not None),
            )
            if set_
        ]
    if (g.launching_os_code is None) != (g.launching_client_version is None):
        have, need = (
            ("launching_os_code", "launching_client_version")
            if g.launching_os_code is not None
            else ("launching_client_version", "launching_os_code")
        )
        why = f"the simple-launching poll also needs {n('gamebase', need)}; it is off"
        return [_ignored(n, "gamebase", have, why)]
    if g.launching_os_code is not None and g.maintenance_poll_s <= 0:
        why = f"the maintenance watcher is off ({n('gamebase', 'maintenance_poll_s')}=0)"
        return [_ignored(n, "gamebase", "launching_os_code", why)]
    return []


def _hive_warnings(config: Config, n: Namer) -> list[ConfigWarning]:
    h, li = config.hive, config.listener
    out = []
    auth = n("hive", "auth_key")
    if h.auth_key is None:
        if h.game_index is not None:
            out.append(_ignored(n, "hive", "game_index", f"the Hive suspension webhook is off while {auth} is unset"))
        if li.suspension_allow:
            why = f"the Hive suspension webhook is off while {auth} is unset"
            out.append(_ignored(n, "listener", "suspension_allow", why))
    if not h.webstore_enabled:
        why = f"the web-store route is off ({n('hive', 'webstore_enabled')}=0)"
        if h.webstore_key is not None:
            out.append(_ignored(n, "hive", "webstore_key", why))
        if li.webstore_allow:
            out.append(_ignored(n, "listener", "webstore_allow", why))
    return out


def _listener_warnings(config: Config, n: Namer) -> list[ConfigWarning]:
    li = config.listener
    out = []
    if not li.dashboard:
        why = f"the dashboard is off ({n('listener', 'dashboard')} unset)"
        if li.dashboard_key is not None:
            out.append(_ignored(n, "listener", "dashboard_key", why))
        if li.dashboard_allow:
            out.append(_ignored(n, "listener", "dashboard_allow", why))
    if li.listen is None and li.tls_cert is not None:
        why = f"TLS is for the embedded listener, which is off ({n('listener', 'listen')} unset)"
        out.append(_ignored(n, "listener", "tls_cert", why))
    return out


def _gamepot_warnings(config: Config, n: Namer) -> list[ConfigWarning]:
    gp = config.gamepot
    if gp.project_id is None and gp.api_key is not None:
        why = (
            f"the GamePot CCU inquiry is off while {n('gamepot', 'project_id')} is unset "
            "(hooks.gamepot_client() still uses the key when given a project id)"
        )
        return [_ignored(n, "gamepot", "api_key", why)]
    return []


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
    h = config.hive
    out: list[ConfigWarning] = []
    if h.webstore_enabled and not facts.webstore_callback and h.webstore_key is not None:
        out.append(
            ConfigWarning(
                n("hive", "webstore_key"),
                "ignored: no webstore_profile callback was given to setup(), so /webstore-profile is not served",
            )
        )
    if config.listener.listen is None and not facts.asgi_mounted:
        out += _unserved_warnings(config, facts, n)
    listen = config.listener.listen
    if listen is not None and is_public_bind(listen):
        out += _public_bind_warnings(config, facts, n, f"the public bind {listen}")
    return out


def _unserved_warnings(config: Config, facts: StartFacts, n: Namer) -> list[ConfigWarning]:
    """Routes configured while neither the listener nor the ASGI app serves them."""
    h, gp = config.hive, config.gamepot
    unserved = [
        (
            h.auth_key is not None and h.game_index is not None,
            ("hive", "auth_key"),
            "the Hive suspension webhook (Hive's bans will not reach this server)",
        ),
        (h.webstore_enabled and facts.webstore_callback, ("hive", "webstore_enabled"), "the web-store profile route"),
        (config.listener.dashboard, ("listener", "dashboard"), "the dashboard"),
        (config.listener.admin_key is not None, ("listener", "admin_key"), "the admin API"),
        (gp.project_id is not None and gp.api_key is not None, ("gamepot", "project_id"), "the GamePot CCU inquiry"),
    ]
    return [
        ConfigWarning(
            n(section, field),
            f"{what} is configured but not served: {n('listener', 'listen')} is unset and "
            "hooks.asgi_app() was not mounted before start()",
        )
        for on, (section, field), what in unserved
        if on
    ]


def _public_bind_warnings(config: Config, facts: StartFacts, n: Namer, where: str) -> list[ConfigWarning]:
    """Operator routes a public bind opens to public addresses, and an open web-store route."""
    h, li, gp = config.hive, config.listener, config.gamepot
    out = []
    admin = public_networks(li.admin_allow)
    if admin:
        inquiry = gp.project_id is not None and gp.api_key is not None
        opened = ["/metrics"]
        if li.admin_key is not None or li.dashboard_key is not None:  # (keyless, the admin API refuses all)
            opened.append("the admin API")
        if inquiry:
            opened.append("the GamePot CCU inquiry")
        routes = ", ".join(opened[:-1]) + " and " + opened[-1] if len(opened) > 1 else opened[0]
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
    webstore = h.webstore_enabled and facts.webstore_callback
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
    cc = config.ccu
    parts = [
        _listener_part(config, facts, n),
        f"server ids: {', '.join(cc.server_ids)} (sessions default {config.sessions.server_id})",
        _ccu_part(config, n),
        _gamebase_part(config, n),
        *_hive_parts(config, facts, n),
        *_operator_parts(config, n),
        f"store: {config.state_path}",
    ]
    return "gs_hooks started: " + "; ".join(parts)


def _listener_part(config: Config, facts: StartFacts, n: Namer) -> str:
    if facts.listener_url is not None:
        return f"listener: {facts.listener_url}" + (" (TLS)" if config.listener.tls_cert else "")
    asgi = ", routes served by hooks.asgi_app()" if facts.asgi_mounted else ""
    return f"listener: off ({n('listener', 'listen')} unset{asgi})"


def _ccu_part(config: Config, n: Namer) -> str:
    cc = config.ccu
    if cc.url is None:
        return f"ccu: off ({n('ccu', 'url')} unset)"
    mirror = f", mirror {_host(cc.mirror_url)}" if cc.mirror_url else ""
    mode = f"{cc.count_mode} mode" + (f", counting {cc.count}" if cc.count_mode == "socket" else "")
    return f"ccu: on (collector {_host(cc.url)}{mirror}, every {cc.period_s} s, {mode})"


def _gamebase_part(config: Config, n: Namer) -> str:
    g = config.gamebase
    if g.url is None:
        return f"gamebase: off ({n('gamebase', 'url')} unset)"
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
    return f"gamebase: on ({_host(g.url)} {g.api_version}: {', '.join(pieces)}; {g.failure_policy})"


def _hive_parts(config: Config, facts: StartFacts, n: Namer) -> list[str]:
    h = config.hive
    if h.auth_key is not None and h.game_index is not None:
        parts = [f"hive webhook: on (game index {h.game_index})"]
    else:
        parts = [f"hive webhook: off ({n('hive', 'auth_key')} unset)"]
    if not h.webstore_enabled:
        parts.append(f"webstore: off ({n('hive', 'webstore_enabled')}=0)")
    elif not facts.webstore_callback:
        parts.append("webstore: off (no webstore_profile callback)")
    else:
        parts.append(f"webstore: on (key {'required' if h.webstore_key else 'not set'})")
    return parts


def _operator_parts(config: Config, n: Namer) -> list[str]:
    li = config.listener
    admin = _allow_text(li.admin_allow, n("listener", "admin_allow"))
    if config.gamepot.project_id is not None:
        parts = [f"gamepot inquiry: on, {admin}"]
    else:
        parts = [f"gamepot inquiry: off ({n('gamepot', 'project_id')} unset)"]
    if li.dashboard:
        key = "key required" if li.dashboard_key else "no key"
        parts.append(f"dashboard: on ({key}), {_allow_text(li.dashboard_allow, n('listener', 'dashboard_allow'))}")
    else:
        parts.append(f"dashboard: off ({n('listener', 'dashboard')} unset)")
    parts.append(f"metrics: {admin}")
    if li.admin_key is not None:
        parts.append(f"admin API: on ({n('listener', 'admin_key')}), {admin}")
    elif li.dashboard_key is not None:
        parts.append(f"admin API: on (the dashboard key), {admin}")
    else:
        parts.append(f"admin API: off ({n('listener', 'admin_key')} unset)")
    return parts
