"""Fault injection for the sandbox's platform routes.

Strategy: every platform route is registered through :meth:`Faults.wrap`, keyed by a route name (``ccu``,
``gamepot.ccu``, the Gamebase simulator's names...). A rule targets one route name or ``"*"`` (every platform
route) and is active for the next ``count`` matching requests and/or inside a clock window
``[start, until)``. The first active rule that matches a request fires (and spends one of its count):

- ``result``: answer with the platform's own error shape carrying ``code`` (CCU: base64 XML ``<result>``;
  GamePot: ``{"status": code}``; Gamebase: the common envelope's ``resultCode``).
- ``status``: answer an HTTP error status (e.g. 503) with a plain JSON body.
- ``delay``: wait ``delay_s`` on the sandbox clock, then run the real handler.
- ``drop``: close the connection without any response.

Admin routes (``/_sandbox/...``) are never wrapped.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .._clock import Clock, format_kst
from ..http._app import DropConnection, Handler, Request, Response

__all__ = ["FaultHit", "FaultKind", "FaultRule", "Faults", "ResultRenderer"]

FaultKind = Literal["result", "status", "delay", "drop"]
_KINDS: tuple[str, ...] = ("result", "status", "delay", "drop")

ResultRenderer = Callable[[Request, int], Awaitable[Response]]
"""Renders a platform result code in the route's own answer shape."""


@dataclass(slots=True)
class FaultRule:
    """One fault rule (see the module docstring).

    Attributes:
        id: rule id (for removal).
        route: route name or ``"*"``.
        kind: ``result``, ``status``, ``delay`` or ``drop``.
        code: platform result code (``result``).
        status: HTTP status (``status``).
        delay_s: seconds to wait (``delay``).
        remaining: requests left (None = unlimited within the window).
        start / until: clock window, epoch seconds (None = open).
        hits: how many requests this rule answered.
    """

    id: int
    route: str
    kind: FaultKind
    code: int | None = None
    status: int | None = None
    delay_s: float | None = None
    remaining: int | None = None
    start: float | None = None
    until: float | None = None
    hits: int = 0

    def active(self, now: float) -> bool:
        """Whether the rule may fire at ``now``."""
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.start is not None and now < self.start:
            return False
        return not (self.until is not None and now >= self.until)

    def expired(self, now: float) -> bool:
        """Whether the rule can never fire again."""
        spent = self.remaining is not None and self.remaining <= 0
        return spent or (self.until is not None and now >= self.until)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able view (times as KST strings too)."""
        return {
            "id": self.id,
            "route": self.route,
            "kind": self.kind,
            "code": self.code,
            "status": self.status,
            "delay_s": self.delay_s,
            "remaining": self.remaining,
            "start": self.start,
            "until": self.until,
            "start_kst": format_kst(self.start) if self.start is not None else None,
            "until_kst": format_kst(self.until) if self.until is not None else None,
            "hits": self.hits,
        }


@dataclass(frozen=True, slots=True)
class FaultHit:
    """A request a fault rule answered: rule id, route name, kind, clock time."""

    rule_id: int
    route: str
    kind: FaultKind
    at: float


@dataclass(slots=True)
class Faults:
    """The sandbox's fault rules and the log of faults that fired.

    Args:
        clock: the sandbox clock (windows and delays use it).
    """

    clock: Clock
    rules: list[FaultRule] = field(default_factory=list)
    fired: list[FaultHit] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def add(
        self,
        route: str = "*",
        kind: FaultKind = "status",
        *,
        code: int | None = None,
        status: int | None = None,
        delay_s: float | None = None,
        count: int | None = None,
        start: float | None = None,
        until: float | None = None,
        duration_s: float | None = None,
    ) -> FaultRule:
        """Add a rule; returns it (``rule.id`` removes it).

        Args:
            route: route name (``ccu``, ``gamepot.ccu``, a Gamebase route name) or ``"*"``.
            kind: ``result`` (needs ``code``), ``status`` (needs ``status``, 400–599), ``delay`` (needs
                ``delay_s``) or ``drop``.
            count: fire for the next ``count`` matching requests (None = no limit).
            start / until: window in epoch seconds on the sandbox clock.
            duration_s: shorthand for ``until = (start or now) + duration_s``.

        Raises:
            ValueError: a parameter is missing or out of range; the rule is not added.
        """
        if kind not in _KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(_KINDS)}, got {kind!r}")
        if kind == "result" and code is None:
            raise ValueError("a 'result' fault needs code= (the platform result code to answer)")
        if kind == "status" and (status is None or not 400 <= status <= 599):
            raise ValueError("a 'status' fault needs status= between 400 and 599")
        if kind == "delay" and (delay_s is None or delay_s < 0):
            raise ValueError("a 'delay' fault needs delay_s= >= 0")
        if count is not None and count < 1:
            raise ValueError("count must be >= 1 (or None for no limit)")
        if duration_s is not None:
            if until is not None:
                raise ValueError("give until= or duration_s=, not both")
            until = (start if start is not None else self.clock.time()) + duration_s
        rule = FaultRule(
            id=next(self._ids),
            route=route,
            kind=kind,
            code=code,
            status=status,
            delay_s=delay_s,
            remaining=count,
            start=start,
            until=until,
        )
        self.rules.append(rule)
        return rule

    def add_from_json(self, spec: Mapping[str, Any]) -> FaultRule:
        """:meth:`add` from a JSON object (the admin endpoint's body).

        Raises:
            ValueError: unknown field or bad value.
        """
        allowed = {"route", "kind", "code", "status", "delay_s", "count", "start", "until", "duration_s"}
        unknown = set(spec) - allowed
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}; allowed: {sorted(allowed)}")
        ints = ("code", "status", "count")
        nums = ("delay_s", "start", "until", "duration_s")
        for name in ints:
            v = spec.get(name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
                raise ValueError(f"{name} must be an integer")
        for name in nums:
            v = spec.get(name)
            if v is not None and (not isinstance(v, int | float) or isinstance(v, bool)):
                raise ValueError(f"{name} must be a number")
        route = spec.get("route", "*")
        kind = spec.get("kind", "status")
        if not isinstance(route, str) or not isinstance(kind, str):
            raise ValueError("route and kind must be strings")
        if kind not in _KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(_KINDS)}, got {kind!r}")
        return self.add(
            route,
            kind,  # type: ignore[arg-type]
            code=spec.get("code"),
            status=spec.get("status"),
            delay_s=spec.get("delay_s"),
            count=spec.get("count"),
            start=spec.get("start"),
            until=spec.get("until"),
            duration_s=spec.get("duration_s"),
        )

    def remove(self, rule_id: int) -> bool:
        """Remove one rule; False when there is no such rule."""
        before = len(self.rules)
        self.rules = [r for r in self.rules if r.id != rule_id]
        return len(self.rules) != before

    def clear(self, route: str | None = None) -> int:
        """Remove every rule (or every rule of one route name); returns how many were removed."""
        before = len(self.rules)
        self.rules = [r for r in self.rules if route is not None and r.route != route]
        return before - len(self.rules)

    def pick(self, route: str) -> FaultRule | None:
        """The rule that fires for a request to ``route`` now (spending one of its count), or None."""
        now = self.clock.time()
        self.rules = [r for r in self.rules if not r.expired(now)]
        for rule in self.rules:
            if (rule.route == route or rule.route == "*") and rule.active(now):
                if rule.remaining is not None:
                    rule.remaining -= 1
                rule.hits += 1
                self.fired.append(FaultHit(rule.id, route, rule.kind, now))
                return rule
        return None

    def wrap(self, route: str, handler: Handler, render_result: ResultRenderer) -> Handler:
        """A handler that applies this route's faults before (or instead of) ``handler``."""

        async def faulty(request: Request) -> Response:
            rule = self.pick(route)
            if rule is None:
                return await handler(request)
            if rule.kind == "drop":
                raise DropConnection
            if rule.kind == "status":
                status = rule.status or 503
                return Response.error(status, f"sandbox fault: injected HTTP {status} on route {route!r}")
            if rule.kind == "result":
                return await render_result(request, rule.code if rule.code is not None else 0)
            await self.clock.sleep(rule.delay_s or 0.0)
            return await handler(request)

        return faulty
