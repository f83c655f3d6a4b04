"""The admin API on the listener (and in ``hooks.asgi_app()``): sessions, kicks, bans, status, as JSON.

Routes, relative to where the hooks' routes are served (``/admin/...`` on the embedded listener)::

    GET  admin/status                      version, host, uptime, state, readiness of every component
    GET  admin/sessions?player=&server_id=&q=&offset=&limit=
    POST admin/kick    {"player": "7101", "reason": "admin", "message": "..."}
    GET  admin/bans?q=&source=&player=&offset=&limit=
    POST admin/ban     {"player": "7101", "until": "2026-12-01T09:00:00+09:00" | "duration_s": 3600, "message": ""}
    POST admin/unban   {"player": "7101"}

Access: the admin allowlist (``listener.admin_allow``, loopback only while it is empty) is checked by the router
before anything else; then the key, on the request head before any body byte is read: ``Authorization: Bearer
<key>`` or ``x-gs-hooks-key: <key>``, compared in constant time with ``listener.admin_key`` (or, while that is
unset, ``listener.dashboard_key``). With neither set the API refuses everything (403). A request without the
right key, or with a malformed body (:mod:`._admin_protocol`), changes nothing and gets the listener's error
shape ``{"error": {"status": ..., "message": ...}}``.

Every request is counted (``gs_hooks_admin_requests_total{action,status}``); every action is logged on
``gs_hooks.admin`` with who asked (the peer address) and what (``extra``: action, player, peer, status).

In a fleet (``GS_HOOKS_REDIS_URL``; :attr:`OpsSources.fleet <gs_hooks.ops._sources.OpsSources.fleet>` set), two
answers grow:

- ``POST admin/kick`` kicks the player's sessions here and, at the same time, on the process that owns the player
  in Redis when that is another live process (under ``duplicate_login=allow``, which keeps no owner, on every other
  live process), waiting for its count at most ``GS_HOOKS_FLEET_ADMIN_TIMEOUT_S``. 200:
  ``{"player", "reason", "kicked": total, "processes": {pid: count, ...}}`` (this process always listed). 404: no
  live session on any process asked. **504, a partial kick**: a process asked did not answer in time (or could not
  be asked), or Redis could not be reached; the body is the error shape *plus* the counts and ``"unreached":
  [pid, ...]`` (``"redis"`` when Redis itself was not reached): the sessions kicked are kicked, the others may
  still be live. A partial kick is never answered 200.
- ``GET admin/sessions?player=X`` adds ``"owner": {"pid", "live", "here"}`` (the owner key; null when there is
  none) and ``"owner_error"`` when Redis could not be reached. It still lists this process's sessions only.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import anyio

from .. import _metrics
from .._config import Secret
from .._exceptions import ClosedError, GsHooksError
from .._fleet_ops import REDIS_UNREACHED, FleetOps, RemoteKick
from .._ratelog import RateLimitedLog
from ..bans._model import Ban
from ..http._app import Request, Response, Router
from ._admin_protocol import AdminInputError, error_body, parse_ban, parse_kick, parse_page, parse_player
from ._exposition import runtime
from ._lists import ban_json, find_bans, find_sessions, session_json
from ._sources import OpsSources, hostname

__all__ = ["ADMIN_KEY_HEADER", "AdminApi"]

log = logging.getLogger("gs_hooks.admin")

ADMIN_KEY_HEADER = "x-gs-hooks-key"
_MAX_BODY = 16_384
_ROUTES = (
    ("GET", "status"),
    ("GET", "sessions"),
    ("POST", "kick"),
    ("GET", "bans"),
    ("POST", "ban"),
    ("POST", "unban"),
)


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


def _peer(request: Request) -> str:
    return request.client[0] if request.client else "?"


def _given_key(request: Request) -> tuple[str | None, str | None]:
    """(the key the request carries, or None; a problem with how it carries it, or None)."""
    auth = [v for k, v in request.headers if k == b"authorization"]
    keyed = [v for k, v in request.headers if k == ADMIN_KEY_HEADER.encode()]
    if len(auth) + len(keyed) > 1:
        return None, "send the key once: one Authorization or x-gs-hooks-key header"
    if auth:
        scheme, _, token = auth[0].decode("latin-1").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None, "Authorization is not 'Bearer <admin key>'"
        return token.strip(), None
    if keyed:
        return keyed[0].decode("latin-1").strip(), None
    return None, None


class AdminApi:
    """The admin API's routes (see the module docstring).

    Args:
        src: what it reads and acts on.
        key: the admin key (``listener.admin_key``, else ``listener.dashboard_key``), or None (API refuses all).
        key_setting: the name of the setting to tell a caller about when no key is configured.
    """

    def __init__(self, src: OpsSources, *, key: Secret | None, key_setting: str = "GS_HOOKS_ADMIN_KEY") -> None:
        self.src = src
        self._key = _digest(key.get_secret_value().encode("utf-8")) if key else None
        self._key_setting = key_setting
        self._refusals = RateLimitedLog(log)

    def install(self, router: Router, *, allow: tuple[str, ...], prefix: str = "/admin") -> None:
        """Add the routes under ``prefix`` (``allow``: the admin allowlist)."""
        handlers: dict[str, Callable[[Request], Awaitable[Response]]] = {
            "status": self.status,
            "sessions": self.sessions,
            "kick": self.kick,
            "bans": self.bans,
            "ban": self.ban,
            "unban": self.unban,
        }
        for method, action in _ROUTES:
            router.add(
                method,
                f"{prefix}/{action}",
                self._counted(action, handlers[action]),
                guard=self._guard(action),
                allow=allow,
                max_body=_MAX_BODY,
            )

    @property
    def enabled(self) -> bool:
        """Whether a key is configured (without one every request is refused)."""
        return self._key is not None

    # -- access ----------------------------------------------------------------------------------------------

    def _guard(self, action: str) -> Callable[[Request], Response | None]:
        def guard(request: Request) -> Response | None:
            refusal = self.check_key(request)
            if refusal is not None:
                _metrics.ADMIN_REQUESTS.inc(action, str(refusal.status))
            return refusal

        return guard

    def check_key(self, request: Request) -> Response | None:
        """None when the request carries the admin key; else the 401 (or, with no key configured, 403) answer."""
        status = 401
        if self._key is None:
            problem = f"the admin API is off: set {self._key_setting} (the key callers send)"
            status = 403
        else:
            given, carried = _given_key(request)
            if carried is not None:
                problem = carried
            elif given is None:
                problem = "admin key required: send 'Authorization: Bearer <admin key>' or x-gs-hooks-key"
            elif hmac.compare_digest(_digest(given.encode("latin-1")), self._key):
                return None
            else:
                problem = "the admin key is not the one configured"
        self._refusals.log(
            logging.WARNING,
            (status, problem),
            "admin: refused %s %s from %s (%d): %s",
            request.method,
            request.raw_path or request.path,
            _peer(request),
            status,
            problem,
            extra={"peer": _peer(request), "status": status},
        )
        response = Response.json(error_body(status, problem), status)
        if status == 401:
            response.headers.append(("www-authenticate", 'Bearer realm="gs_hooks admin"'))
        return response

    def _counted(
        self, action: str, handler: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def counted(request: Request) -> Response:
            try:
                response = await handler(request)
            except AdminInputError as exc:
                response = Response.json(error_body(400, exc.message, exc.field), 400)
                self._refusals.log(
                    logging.WARNING,
                    (action, 400),
                    "admin: %s from %s refused (400): %s",
                    action,
                    _peer(request),
                    exc.message,
                    extra={"action": action, "peer": _peer(request), "status": 400},
                )
            except ClosedError:
                response = Response.json(error_body(503, "the hooks are closed"), 503)
            _metrics.ADMIN_REQUESTS.inc(action, str(response.status))
            response.headers.append(("cache-control", "no-store"))
            return response

        return counted

    def _done(self, action: str, request: Request, what: str, **fields: Any) -> None:
        log.info(
            "admin: %s by %s: %s",
            action,
            _peer(request),
            what,
            extra={"action": action, "peer": _peer(request), **fields},
        )

    def _check_open(self) -> None:
        if self.src.lifecycle.closed:
            raise ClosedError("hooks are closed")

    # -- reads -----------------------------------------------------------------------------------------------

    def status_document(self) -> dict[str, Any]:
        """``admin/status``: version, host, uptime, state, readiness, counts."""
        src = self.src
        since = src.lifecycle.running_since
        now = src.clock.time()
        backend, loop = runtime()
        checks = src.readiness()
        registry = src.registry
        return {
            "version": _metrics.VERSION,
            "python": _metrics.PYTHON,
            "backend": backend,
            "loop": loop,
            "host": hostname(),
            "state": src.lifecycle.state.value,
            "live": src.live(),
            "ready": src.live() and all(c.ok for c in checks),
            "started_at": since,
            "uptime_s": None if since is None else max(0.0, time.time() - since),
            "now": now,
            "sessions": len(registry),
            "players": sum(registry.count_players(sid) for sid in registry.server_ids()),
            "bans_active": len(src.book),
            "listener": src.listener.url if src.listener is not None and src.listener.port else None,
            "components": [{"name": c.name, "ok": c.ok, "error": c.error, "since": c.since} for c in checks],
        }

    async def status(self, request: Request) -> Response:
        """``GET admin/status``."""
        return Response.json(self.status_document())

    async def sessions(self, request: Request) -> Response:
        """``GET admin/sessions``: live sessions, searched and paged."""
        page = parse_page(request.query, ("player", "server_id"))
        found = find_sessions(self.src.registry, page)
        answer: dict[str, Any] = {
            "total": found.total,
            "offset": page.offset,
            "limit": page.limit,
            "sessions": [session_json(s) for s in found.sessions],
        }
        if self.src.fleet is not None and page.player is not None:
            answer.update(await _owner_json(self.src.fleet, page.player))
        return Response.json(answer)

    async def bans(self, request: Request) -> Response:
        """``GET admin/bans``: bans in force, searched and paged (newest start first)."""
        page = parse_page(request.query, ("player", "source"))
        found = find_bans(self.src.book, page)
        return Response.json(
            {
                "total": found.total,
                "active": found.active,
                "offset": page.offset,
                "limit": page.limit,
                "bans": [ban_json(b) for b in found.bans],
            }
        )

    # -- actions ---------------------------------------------------------------------------------------------

    async def kick(self, request: Request) -> Response:
        """``POST admin/kick``: every live session of the player, here and, in a fleet, on the process that owns
        it (404 when none is live anywhere asked; 504 with the counts when a process or Redis was not reached)."""
        body = parse_kick(request.body)
        self._check_open()
        fleet = self.src.fleet
        fields = {"player": body.player, "reason": body.reason}
        what = f"player {body.player!r} (reason {body.reason!r})"
        if fleet is None:
            kicked = await self.src.kicker.kick(body.player, body.reason, message=body.message)
            self._done("kick", request, f"{what}: {kicked} sessions", **fields)
            if not kicked:
                return Response.json(error_body(404, f"player {body.player!r} has no live session"), 404)
            return Response.json({"player": body.player, "reason": body.reason, "kicked": kicked})
        local, remote = await self._kick_fleet(fleet, body.player, body.reason, body.message)
        processes = {fleet.pid: local, **remote.counts}
        total = sum(processes.values())
        answer: dict[str, Any] = {"player": body.player, "reason": body.reason, "kicked": total}
        answer["processes"] = processes
        if remote.unreached:
            answer["unreached"] = list(remote.unreached)
            problem = _partial(remote, fleet.timeout_s)
            self._done("kick", request, f"{what}: {total} sessions, PARTIAL: {problem}", **fields, partial=True)
            return Response.json({**error_body(504, f"kicked {total} session(s); {problem}"), **answer}, 504)
        self._done("kick", request, f"{what}: {total} sessions ({len(processes)} processes)", **fields)
        if not total:
            asked = ", ".join(processes)
            return Response.json(error_body(404, f"player {body.player!r} has no live session (asked: {asked})"), 404)
        return Response.json(answer)

    async def _kick_fleet(self, fleet: FleetOps, player: str, reason: str, message: str) -> tuple[int, RemoteKick]:
        """Kick here and on the other processes at once: (sessions kicked here, what the others did)."""
        remote = RemoteKick()

        async def elsewhere() -> None:
            nonlocal remote
            remote = await fleet.kick_elsewhere(player, reason, message)

        async with anyio.create_task_group() as tg:
            tg.start_soon(elsewhere)
            local = await self.src.kicker.kick(player, reason, message=message)
        return local, remote

    async def ban(self, request: Request) -> Response:
        """``POST admin/ban``: ban from now (source ``api``): live sessions kicked, logins refused."""
        now = self.src.clock.now()
        body = parse_ban(request.body, now)
        self._check_open()
        until = body.until if body.duration_s is None else now + timedelta(seconds=body.duration_s)
        ban = Ban(
            player_key=body.player,
            source="api",
            status="permanent" if until is None else "temporary",
            starts_at=now,
            ends_at=until,
            message=body.message,
        )
        changed = bool(await self.src.book.apply([ban]))
        when = "permanently" if until is None else f"until {until.isoformat()}"
        self._done("ban", request, f"player {body.player!r} {when}", player=body.player, source="api")
        return Response.json({**ban_json(ban), "changed": changed})

    async def unban(self, request: Request) -> Response:
        """``POST admin/unban``: lift every ban of the player, every source (404 when none was recorded)."""
        body = parse_player(request.body)
        self._check_open()
        lifted = await self.src.book.lift(body.player)
        self._done("unban", request, f"player {body.player!r}: {len(lifted)} bans lifted", player=body.player)
        if not lifted:
            return Response.json(error_body(404, f"player {body.player!r} has no ban to lift"), 404)
        return Response.json({"player": body.player, "lifted": [ban_json(b) for b in lifted]})


def _partial(remote: RemoteKick, timeout_s: float) -> str:
    """What a partial kick missed, for the operator."""
    if REDIS_UNREACHED in remote.unreached:
        return "Redis could not be reached: sessions of the player on other processes may still be live"
    missed = ", ".join(remote.unreached)
    return f"no answer within {timeout_s:g} s from {missed}: sessions of the player there may still be live"


async def _owner_json(fleet: FleetOps, player: str) -> dict[str, Any]:
    """``owner`` (and ``owner_error`` when Redis could not be reached) for a sessions answer in a fleet."""
    unknown = {"owner": None, "owner_error": "Redis could not be reached: the player's owner process is unknown"}
    with anyio.move_on_after(fleet.timeout_s):  # a hung Redis: not past the kick's own deadline
        try:
            owner = await fleet.owner(player)
        except GsHooksError:
            return unknown
        if owner is None:
            return {"owner": None}
        return {"owner": {"pid": owner.pid, "live": owner.live, "here": owner.here}}
    return unknown
