"""``gs-hooks admin``: the admin API from a shell or a script.

::

    export GS_HOOKS_ADMIN_KEY=...                      # the key; never on the command line
    gs-hooks admin --url http://127.0.0.1:9100 status
    gs-hooks admin --url ... sessions --player 7101
    gs-hooks admin --url ... kick 7101 --reason cheating --message "see support"
    gs-hooks admin --url ... ban 7101 --for 7d --message "chargeback"
    gs-hooks admin --url ... unban 7101
    gs-hooks admin --url ... bans --query 71 --limit 100 --json

Exit codes (for scripts): 0 done; 1 the server failed (5xx) or answered something unexpected; 2 usage error;
3 access refused (no key in the environment, a wrong key: 401, an address outside the admin allowlist or the
API off: 403); 4 not found (no live session to kick, no ban to lift: 404); 5 bad input (400, 413, or an option
the command itself refuses); 6 the server could not be reached (connection refused, timeout, TLS); 7 a partial
kick in a fleet (504: the player's process, or Redis, did not answer in time; the sessions kicked are printed and
the processes not reached named on stderr: sessions there may still be live).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from datetime import datetime
from typing import Any, TextIO

import httpx

from .._time import KST

__all__ = ["EXIT", "add_admin_parser", "run_admin"]

EXIT = {
    "ok": 0,
    "failed": 1,
    "usage": 2,
    "refused": 3,
    "not_found": 4,
    "bad_input": 5,
    "unreachable": 6,
    "partial": 7,
}
"""The exit codes (see the module docstring)."""
KEY_ENV = "GS_HOOKS_ADMIN_KEY"
URL_ENV = "GS_HOOKS_ADMIN_URL"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


class _Refused(Exception):
    def __init__(self, code: int, message: str) -> None:
        self.code = code
        super().__init__(message)


class _Partial(Exception):
    """A kick that reached some sessions but not every process that may hold some (504 with the counts)."""

    def __init__(self, answer: dict[str, Any], message: str) -> None:
        self.answer = answer
        super().__init__(message)


def add_admin_parser(sub: Any) -> None:
    """Add ``admin`` and its commands to a sub-parser set."""
    p = sub.add_parser(
        "admin",
        help="call the admin API of a running game server (key from $GS_HOOKS_ADMIN_KEY)",
        description=__doc__.split("\n\n")[0],
        epilog="exit codes: 0 ok, 1 server error, 2 usage, 3 access refused, 4 not found, 5 bad input, "
        "6 server unreachable, 7 partial kick (a fleet process or Redis not reached)",
        allow_abbrev=False,  # (no --key as a short --key-env: a key is never an argument)
    )
    p.add_argument("--url", default=os.environ.get(URL_ENV), help=f"the listener's base URL (default ${URL_ENV})")
    p.add_argument("--key-env", default=KEY_ENV, help=f"the environment variable holding the key (default {KEY_ENV})")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for an answer (default 10)")
    p.add_argument("--json", action="store_true", help="print the API's JSON answer as it is")
    cmds = p.add_subparsers(dest="admin_command", metavar="COMMAND", required=True)
    cmds.add_parser("status", help="version, host, uptime, readiness of every component")
    s = cmds.add_parser("sessions", help="live sessions (search and page)")
    s.add_argument("--player", help="exactly this player id")
    s.add_argument("--server-id", help="exactly this server id")
    s.add_argument("--query", help="player ids containing this text")
    _paging(s)
    k = cmds.add_parser("kick", help="kick every live session of a player")
    k.add_argument("player")
    k.add_argument("--reason", default="admin", help="the kick's reason (default admin)")
    k.add_argument("--message", default="", help="shown to the player")
    b = cmds.add_parser("ban", help="ban a player (source api): live sessions kicked, logins refused")
    b.add_argument("player")
    when = b.add_mutually_exclusive_group()
    when.add_argument("--until", help="ISO 8601 end with an offset, e.g. 2026-12-01T09:00:00+09:00")
    when.add_argument("--for", dest="duration", help="a duration: 3600, 90s, 15m, 2h, 7d, 1w")
    b.add_argument("--message", default="", help="shown to the player")
    u = cmds.add_parser("unban", help="lift every ban of a player")
    u.add_argument("player")
    bl = cmds.add_parser("bans", help="bans in force (search and page, newest first)")
    bl.add_argument("--query", help="player ids containing this text")
    bl.add_argument("--player", help="exactly this player id")
    bl.add_argument("--source", help="hive, gamebase or api")
    _paging(bl)


def _paging(p: argparse.ArgumentParser) -> None:
    p.add_argument("--offset", type=int, default=0, help="rows to skip")
    p.add_argument("--limit", type=int, default=50, help="rows to show (at most 500)")


def duration_s(text: str) -> float:
    """Seconds in ``3600``, ``90s``, ``15m``, ``2h``, ``7d``, ``1w``.

    Raises:
        ValueError: anything else.
    """
    m = _DURATION.match(text)
    if m is None or float(m.group(1)) <= 0:
        raise ValueError(f"--for {text!r}: use a positive number with s, m, h, d or w (e.g. 90s, 2h, 7d)")
    return float(m.group(1)) * _UNITS[m.group(2)]


def _request(args: argparse.Namespace) -> tuple[str, str, dict[str, Any] | None, dict[str, str]]:
    """(method, path, JSON body, query) for a command."""
    cmd = args.admin_command
    if cmd == "status":
        return "GET", "admin/status", None, {}
    if cmd in ("sessions", "bans"):
        query = {"offset": str(args.offset), "limit": str(args.limit)}
        fields = ("player", "server_id", "query") if cmd == "sessions" else ("player", "source", "query")
        for field in fields:
            value = getattr(args, field, None)
            if value:
                query["q" if field == "query" else field] = value
        return "GET", f"admin/{cmd}", None, query
    if cmd == "kick":
        return "POST", "admin/kick", {"player": args.player, "reason": args.reason, "message": args.message}, {}
    if cmd == "ban":
        body: dict[str, Any] = {"player": args.player, "message": args.message}
        if args.until:
            body["until"] = args.until
        if args.duration:
            body["duration_s"] = duration_s(args.duration)
        return "POST", "admin/ban", body, {}
    return "POST", "admin/unban", {"player": args.player}, {}


def _call(args: argparse.Namespace, key: str) -> Any:
    method, path, body, query = _request(args)
    url = args.url.rstrip("/") + "/" + path
    try:
        with httpx.Client(timeout=args.timeout) as client:
            response = client.request(
                method, url, params=query or None, json=body, headers={"authorization": f"Bearer {key}"}
            )
    except httpx.TransportError as exc:
        raise _Refused(EXIT["unreachable"], f"cannot reach {args.url}: {type(exc).__name__}: {exc}") from None
    except httpx.InvalidURL as exc:
        raise _Refused(EXIT["usage"], f"--url {args.url!r} is not a URL ({exc})") from None
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if response.status_code == 200 and isinstance(answer, dict):
        return answer
    message = answer.get("error", {}).get("message") if isinstance(answer, dict) else None
    message = f"{response.status_code}: {message or response.text[:200]}"
    status = response.status_code
    if status == 504 and isinstance(answer, dict) and "unreached" in answer and "kicked" in answer:
        raise _Partial(answer, f"PARTIAL kick ({message})")
    if status in (401, 403):
        raise _Refused(EXIT["refused"], f"refused ({message})")
    if status == 404:
        raise _Refused(EXIT["not_found"], f"not found ({message})")
    if status in (400, 405, 413, 422):
        raise _Refused(EXIT["bad_input"], f"bad input ({message})")
    raise _Refused(EXIT["failed"], f"the server failed ({message})")


def _when(ts: float | None) -> str:
    return "—" if ts is None else datetime.fromtimestamp(ts, KST).strftime("%Y-%m-%d %H:%M:%S")


def _print(cmd: str, answer: dict[str, Any], out: TextIO) -> None:
    if cmd == "status":
        up = answer.get("uptime_s")
        uptime = "—" if up is None else f"{int(up) // 3600}h {int(up) % 3600 // 60}m {int(up) % 60}s"
        ready = "ready" if answer.get("ready") else "NOT READY"
        print(
            f"gs_hooks {answer['version']} on {answer['host']} · {answer['state']} · {ready} · up {uptime} · "
            f"{answer['backend']}/{answer['loop']}",
            file=out,
        )
        print(
            f"sessions {answer['sessions']}, players {answer['players']}, bans in force {answer['bans_active']}",
            file=out,
        )
        for c in answer.get("components", ()):
            line = f"  {'ok  ' if c['ok'] else 'FAIL'} {c['name']}"
            print(line + (f": {c['error']}" if c.get("error") else ""), file=out)
    elif cmd == "sessions":
        for s in answer["sessions"]:
            print(f"{s['id']:>8}  {s['player'] or '-':<24} {s['server_id']:<12} {_when(s['connected_at'])}", file=out)
        print(_footer(answer, "sessions"), file=out)
        if "owner" in answer:  # fleet mode, --player given
            print(_owner(answer), file=out)
    elif cmd == "bans":
        for b in answer["bans"]:
            until = b["ends_at"] or "permanent"
            print(f"{b['player']:<24} {b['source']:<9} {until:<26} {b['message'][:60]}", file=out)
        print(_footer(answer, "bans"), file=out)
    elif cmd == "kick":
        where = answer.get("processes")
        per = f" ({', '.join(f'{pid}: {n}' for pid, n in where.items())})" if where else ""
        print(f"kicked {answer['kicked']} session(s) of player {answer['player']}{per}", file=out)
    elif cmd == "ban":
        until = answer["ends_at"] or "permanently"
        print(f"banned player {answer['player']} {'until ' + until if answer['ends_at'] else until}", file=out)
    else:
        print(f"lifted {len(answer['lifted'])} ban(s) of player {answer['player']}", file=out)


def _owner(answer: dict[str, Any]) -> str:
    owner = answer["owner"]
    if owner is None:
        return f"owner in the fleet: {answer.get('owner_error') or 'none (no live session recorded in Redis)'}"
    state = "this process" if owner["here"] else ("live" if owner["live"] else "gone (not a live member)")
    return f"owner in the fleet: {owner['pid']} ({state})"


def _footer(answer: dict[str, Any], what: str) -> str:
    shown = len(answer[what])
    first = answer["offset"] + 1 if shown else 0
    return f"{what} {first}-{answer['offset'] + shown} of {answer['total']}"


def run_admin(args: argparse.Namespace, *, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Run an ``admin`` command; returns the exit code (see :data:`EXIT`)."""
    if not args.url:
        print(f"gs-hooks admin: give --url (or set {URL_ENV}), e.g. http://127.0.0.1:9100", file=err)
        return EXIT["usage"]
    key = os.environ.get(args.key_env, "")
    if not key:
        print(f"gs-hooks admin: no key: set {args.key_env} to the admin key", file=err)
        return EXIT["refused"]
    try:
        answer = _call(args, key)
    except ValueError as exc:  # a local check (e.g. --for)
        print(f"gs-hooks admin: {exc}", file=err)
        return EXIT["bad_input"]
    except _Refused as exc:
        print(f"gs-hooks admin: {exc}", file=err)
        return exc.code
    except _Partial as exc:
        _show(args, exc.answer, out)
        print(f"gs-hooks admin: {exc}; not reached: {', '.join(exc.answer['unreached'])}", file=err)
        return EXIT["partial"]
    _show(args, answer, out)
    return EXIT["ok"]


def _show(args: argparse.Namespace, answer: dict[str, Any], out: TextIO) -> None:
    if args.json:
        print(json.dumps(answer, indent=2, ensure_ascii=False), file=out)
    else:
        _print(args.admin_command, answer, out)
