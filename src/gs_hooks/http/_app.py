"""Requests, responses and the router shared by the embedded listener, the ASGI adapter and the sandbox.

Pure: no IO here. A route is (method, path pattern) → handler, with an optional *guard* that sees the request
head before any body byte is read (the Hive webhook's Bearer check lives there) and an optional IP allowlist.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

import msgspec

__all__ = ["DropConnection", "Request", "Response", "Route", "Router", "parse_allowlist", "safe_for_log"]

_json_encoder = msgspec.json.Encoder()


_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


def safe_for_log(text: str, limit: int = 200) -> str:
    """A printable form of client-supplied text for a log line: no CR/LF/control/non-ASCII characters, bounded.

    Args:
        text: e.g. a request path.
        limit: longest result (longer text is cut and marked with ``...``).
    """
    if len(text) > limit:
        text = text[:limit] + "..."
    if text.isascii() and text.isprintable():
        return text
    return _UNPRINTABLE.sub("?", text)


@dataclass(slots=True)
class Request:
    """An HTTP request as handlers see it.

    Attributes:
        method: upper-case method.
        path: the decoded path (no query string).
        query_string: the raw query string.
        headers: (lower-case name, value) pairs as received.
        body: the complete body (empty in a guard).
        client: peer (host, port) when known.
        path_params: values of ``{name}`` segments of the route pattern.
        raw_path: the undecoded path made safe for log lines (see :func:`safe_for_log`).
    """

    method: str
    path: str
    query_string: str = ""
    headers: Sequence[tuple[bytes, bytes]] = ()
    body: bytes = b""
    client: tuple[str, int] | None = None
    path_params: dict[str, str] = field(default_factory=dict)
    raw_path: str = ""

    def header(self, name: str) -> str | None:
        """The first value of a header (case-insensitive), decoded as latin-1, or None."""
        key = name.lower().encode("latin-1")
        for k, v in self.headers:
            if k == key:
                return v.decode("latin-1")
        return None

    @property
    def query(self) -> dict[str, str]:
        """Query parameters (first value wins)."""
        out: dict[str, str] = {}
        for k, v in parse_qsl(self.query_string, keep_blank_values=True):
            out.setdefault(k, v)
        return out

    @property
    def content_type(self) -> str:
        """The media type of the body, lower-case, without parameters."""
        return (self.header("content-type") or "").split(";", 1)[0].strip().lower()


@dataclass(slots=True)
class Response:
    """An HTTP response.

    Attributes:
        status: status code.
        body: body bytes.
        headers: extra (name, value) pairs; Content-Length is added by the server.
        close: close the connection after sending.
    """

    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    close: bool = False

    @classmethod
    def json(cls, obj: Any, status: int = 200, headers: Iterable[tuple[str, str]] = ()) -> Response:
        """A JSON response (msgspec encoding)."""
        return cls(
            status,
            _json_encoder.encode(obj),
            [("content-type", "application/json; charset=utf-8"), *headers],
        )

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> Response:
        """A text response."""
        return cls(status, text.encode("utf-8"), [("content-type", content_type)])

    @classmethod
    def error(cls, status: int, message: str, *, close: bool = False) -> Response:
        """The listener's JSON error shape: ``{"error": {"status": ..., "message": ...}}``."""
        r = cls.json({"error": {"status": status, "message": message}}, status)
        r.close = close
        return r


class DropConnection(Exception):
    """Raised by a handler to close the connection without sending any response (fault injection)."""


Handler = Callable[[Request], Awaitable[Response]]
Guard = Callable[[Request], Response | None]


@dataclass(slots=True)
class Route:
    """One route. ``guard`` runs on the head before the body is read; ``allow`` is an IP allowlist."""

    method: str
    pattern: str
    handler: Handler
    guard: Guard | None = None
    allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    max_body: int | None = None
    regex: re.Pattern[str] | None = None

    def allows(self, client: tuple[str, int] | None) -> bool:
        """Whether the peer passes the allowlist (always, when it is empty)."""
        if not self.allow:
            return True
        addr = _address(client)
        return addr is not None and any(addr in net for net in self.allow)


def _address(client: tuple[str, int] | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if client is None:
        return None
    try:
        addr = ipaddress.ip_address(client[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def parse_allowlist(cidrs: Iterable[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """CIDR strings to networks (a bare address is a /32 or /128)."""
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def _match(segments: tuple[tuple[str | None, str], ...], parts: list[str]) -> dict[str, str] | None:
    """The params of a pattern's segments matched against a path's decoded segments, or None."""
    if len(segments) != len(parts):
        return None
    params: dict[str, str] = {}
    for (name, literal), part in zip(segments, parts, strict=True):
        if name is None:
            if part != literal:
                return None
        elif part:
            params[name] = part
        else:
            return None
    return params


class Router:
    """Maps (method, path) to a :class:`Route`. Static paths are a dict lookup; patterns are tried in order."""

    def __init__(self) -> None:
        self._static: dict[str, dict[str, Route]] = {}
        self._allowed: dict[str, tuple[str, ...]] = {}
        # pattern routes: (segments, methods); a segment is (param name, "") or (None, literal text)
        self._patterns: list[tuple[tuple[tuple[str | None, str], ...], dict[str, Route]]] = []
        # (some route has no allowlist, every allowlisted network): what screen() needs, None when stale
        self._screen: tuple[bool, tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]] | None = None

    def add(
        self,
        method: str,
        pattern: str,
        handler: Handler,
        *,
        guard: Guard | None = None,
        allow: Iterable[str] = (),
        max_body: int | None = None,
    ) -> Route:
        """Register a handler. ``{name}`` segments match one path segment and land in ``path_params`` (decoded
        once, per segment: see :meth:`resolve`)."""
        route = Route(method.upper(), pattern, handler, guard, parse_allowlist(allow), max_body)
        self._screen = None
        if _PARAM.search(pattern):
            regex = re.compile(
                "^"
                + _PARAM.sub(
                    lambda m: f"(?P<{m.group(1)}>[^/]+)",
                    re.escape(pattern).replace(r"\{", "{").replace(r"\}", "}"),
                )
                + "$"
            )
            route.regex = regex
            segments = tuple(
                (m.group(1), "") if (m := _PARAM.fullmatch(part)) else (None, part) for part in pattern.split("/")
            )
            for existing, methods in self._patterns:
                if existing == segments:
                    methods[route.method] = route
                    break
            else:
                self._patterns.append((segments, {route.method: route}))
        else:
            methods = self._static.setdefault(pattern, {})
            methods[route.method] = route
            self._allowed[pattern] = tuple(sorted(methods))
        return route

    def resolve(
        self, method: str, path: str, raw_path: str | None = None
    ) -> tuple[Route | None, dict[str, str], tuple[str, ...]]:
        """Find the route for a request.

        Args:
            method: the request method.
            path: the decoded path (static routes are looked up with it).
            raw_path: the path as sent (still percent-encoded), when known. Pattern routes then split it on ``/``
                first and decode each segment once, so an encoded ``%2F`` stays inside its segment and ``%252e``
                is the value ``%2e``, not ``.``. Without it, ``path`` is split as it is (decoded once already).

        Returns:
            (route, path params, allowed methods). route is None when nothing matches: allowed methods is
            empty for 404 and non-empty for 405.
        """
        methods = self._static.get(path)
        if methods is not None:  # fast path: a static route
            route = methods.get(method)
            if route is None and method == "HEAD":
                route = methods.get("GET")
            return route, {}, self._allowed[path]
        params: dict[str, str] = {}
        if self._patterns:
            if raw_path is None:
                parts = path.split("/")
            else:
                try:
                    parts = [unquote(p, errors="strict") if "%" in p else p for p in raw_path.split("/")]
                except UnicodeDecodeError:
                    return None, {}, ()
            for segments, candidate in self._patterns:
                found = _match(segments, parts)
                if found is not None:
                    methods, params = candidate, found
                    break
        if methods is None:
            return None, {}, ()
        route = methods.get(method)
        if route is None and method == "HEAD":
            route = methods.get("GET")
        if route is None:
            return None, {}, tuple(sorted(methods))
        return route, params, tuple(sorted(methods))

    def screen(self, client: tuple[str, int] | None) -> tuple[bool, bool]:
        """What a connection from ``client`` may reach, before any request is read.

        Returns:
            (admitted, allowlisted): admitted is False when every route has an allowlist and none contains the
            peer (no request of it could be served); allowlisted is True when some route's allowlist contains it.
        """
        if self._screen is None:
            routes = self.routes()
            allowlisted = {net for route in routes for net in route.allow}
            self._screen = (any(not route.allow for route in routes), tuple(allowlisted))
        open_route, networks = self._screen
        if not networks:
            return True, False
        addr = _address(client)
        inside = addr is not None and any(addr in net for net in networks)
        return open_route or inside, inside

    def routes(self) -> list[Route]:
        """Every registered route."""
        out = [r for methods in self._static.values() for r in methods.values()]
        out += [r for _, methods in self._patterns for r in methods.values()]
        return out
