"""The hooks' own event counters: declared once here, counted by the capabilities, exported by ``ops``.

Strategy: what a component already counts or holds (the listener's connections, the verifier's cache hits, the
maintenance state, the ban poller's watermark) is *read* by :mod:`gs_hooks.ops` at scrape time and needs nothing
here. The events nobody counted (logins by outcome, kicks by reason, bans applied and lifted, Gamebase calls,
Hive webhook batches, admin requests) are counted here with one line at a public entry point (a decorator, or a
call): plain Python counters (:mod:`gs_hooks._counters`), with no dependency, so a process without
``prometheus_client`` pays a dict update per event, per batch where events come in batches (a ban batch, a kick of
many sessions), and an attribute add per banned player on the ban batch's hot path (:data:`BAN_KICKS`). ``ops``
turns them into Prometheus families (``gs_hooks_*_total`` counters, ``gs_hooks_*_seconds`` histograms) for ``/metrics``.

Label sets are bounded: a label with known values maps any other value to ``other``; a label without (a Gamebase
API name, a result code) keeps at most ``max_series`` distinct value sets and counts the rest under ``other``.
No label ever carries a player id.

These counters are per process (like ``prometheus_client``'s default registry): two hooks in one process add up.
The dashboard's per-minute rates use the wall clock (``time.time``): they are about events as they happened.
"""

from __future__ import annotations

import functools
import importlib.metadata
import platform
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, Protocol, TypeVar

from ._counters import OTHER, Cell, LastSeen, Tally, Timing, fold
from ._exceptions import LoginRefusedError, PlatformError, PlatformUnavailableError

__all__ = [
    "ADMIN_REQUESTS",
    "BANS_APPLIED",
    "BANS_LIFTED",
    "BAN_KICKS",
    "FAMILIES",
    "GAMEBASE",
    "GAMEBASE_ERRORS",
    "GAMEBASE_RETRIES",
    "GAMEBASE_SECONDS",
    "KICKS",
    "LOGINS",
    "OTHER",
    "VERSION",
    "WEBHOOK",
    "WEBHOOK_BATCHES",
    "WEBHOOK_SECONDS",
    "Cell",
    "LastSeen",
    "Tally",
    "Timing",
    "counts_bans",
    "counts_bans_async",
    "counts_logins",
    "fold",
    "login_outcome",
]

P = ParamSpec("P")
T = TypeVar("T")

try:
    VERSION = importlib.metadata.version("gs_hooks")
except importlib.metadata.PackageNotFoundError:  # run from a source tree that was not installed
    VERSION = "unknown"
PYTHON = platform.python_version()

# -- the families ------------------------------------------------------------------------------------------------

LOGIN_OUTCOMES = (
    "ok",
    "banned",
    "maintenance",
    "token_invalid",
    "member_not_valid",
    "platform_unavailable",
    "platform_error",
    "duplicate",
    "invalid_input",
    "session_closed",
    "error",
)
_LOGIN_REASONS = {
    "invalid_login": "invalid_input",
    "token_invalid": "token_invalid",
    "member_not_valid": "member_not_valid",
    "banned": "banned",
    "maintenance": "maintenance",
    "duplicate_login": "duplicate",
    "refused": "session_closed",
}
KICK_REASONS = ("ban", "maintenance", "duplicate_login", "manual", "shutdown", "admin", OTHER)
BAN_SOURCES = ("hive", "gamebase", "api", OTHER)

LOGINS = Tally(
    "gs_hooks_logins",
    "Logins by outcome (ok, or why it was refused)",
    ("outcome",),
    known={"outcome": LOGIN_OUTCOMES},
    minutes=60,
)
KICKS = Tally("gs_hooks_kicks", "Sessions kicked, by reason", ("reason",), known={"reason": KICK_REASONS}, minutes=60)
BAN_KICKS = KICKS.cell("ban")
"""Sessions kicked by bans: counted per banned player on the ban batch's hot path (``BAN_KICKS.n += k``)."""
BANS_APPLIED = Tally(
    "gs_hooks_bans_applied", "Bans that changed the ban book, by source", ("source",), known={"source": BAN_SOURCES}
)
BANS_LIFTED = Tally("gs_hooks_bans_lifted", "Bans lifted, by source", ("source",), known={"source": BAN_SOURCES})
WEBHOOK_BATCHES = Tally(
    "gs_hooks_webhook_batches",
    "Hive suspension webhook requests, by the result_code answered (0 = recorded)",
    ("code",),
    max_series=32,
)
WEBHOOK_SECONDS = Timing("gs_hooks_webhook_seconds", "Time to validate, record and answer a Hive webhook batch")
WEBHOOK = LastSeen()
GAMEBASE_SECONDS = Timing("gs_hooks_gamebase_request_seconds", "Latency of one Gamebase API attempt", ("api",))
GAMEBASE_ERRORS = Tally(
    "gs_hooks_gamebase_errors",
    "Gamebase attempts that failed, by API and result code (transport, http_5xx, unreadable, or Gamebase's code)",
    ("api", "code"),
    max_series=128,
)
GAMEBASE_RETRIES = Tally(
    "gs_hooks_gamebase_retries", "Gamebase attempts retried, by API and the code that caused it", ("api", "code")
)
GAMEBASE = LastSeen()
ADMIN_REQUESTS = Tally(
    "gs_hooks_admin_requests", "Admin API requests, by action and HTTP status", ("action", "status"), max_series=128
)

FAMILIES: tuple[Tally | Timing, ...] = (
    LOGINS,
    KICKS,
    BANS_APPLIED,
    BANS_LIFTED,
    WEBHOOK_BATCHES,
    WEBHOOK_SECONDS,
    GAMEBASE_SECONDS,
    GAMEBASE_ERRORS,
    GAMEBASE_RETRIES,
    ADMIN_REQUESTS,
)
"""Every family counted here, in the order ``/metrics`` lists them."""


# -- one-line counting at entry points -----------------------------------------------------------------------------


def login_outcome(exc: BaseException | None) -> str:
    """The ``outcome`` label of a login that raised ``exc`` (None: it succeeded)."""
    if exc is None:
        return "ok"
    if isinstance(exc, LoginRefusedError):
        return _LOGIN_REASONS.get(exc.reason, "error")
    if isinstance(exc, PlatformUnavailableError):
        return "platform_unavailable"
    if isinstance(exc, PlatformError):
        return "platform_error"
    return "error"


def counts_logins(fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Decorate the login entry point: each call is counted in :data:`LOGINS` by its outcome (a cancelled call
    is not counted)."""

    @functools.wraps(fn)
    async def login(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            result = await fn(*args, **kwargs)
        except Exception as exc:
            LOGINS.inc(login_outcome(exc))
            raise
        LOGINS.inc("ok")
        return result

    return login


class _HasSource(Protocol):
    @property
    def source(self) -> str: ...


B = TypeVar("B", bound=_HasSource)


def _count_sources(tally: Tally, bans: list[B]) -> list[B]:
    fold()  # the batch's kicks (counted by a cell on the kicker's hot path) fall in the minute they happened
    if bans:
        by_source: dict[str, int] = {}
        for ban in bans:
            by_source[ban.source] = by_source.get(ban.source, 0) + 1
        for source, n in by_source.items():
            tally.inc(source, by=n)
    return bans


def counts_bans(tally: Tally) -> Callable[[Callable[P, list[B]]], Callable[P, list[B]]]:
    """Decorate a sync ban-book entry point returning the bans it changed: they are counted in ``tally``
    (:data:`BANS_APPLIED` or :data:`BANS_LIFTED`) by source."""

    def decorate(fn: Callable[P, list[B]]) -> Callable[P, list[B]]:
        @functools.wraps(fn)
        def counted(*args: P.args, **kwargs: P.kwargs) -> list[B]:
            return _count_sources(tally, fn(*args, **kwargs))

        return counted

    return decorate


def counts_bans_async(
    tally: Tally,
) -> Callable[[Callable[P, Awaitable[list[B]]]], Callable[P, Coroutine[Any, Any, list[B]]]]:
    """:func:`counts_bans` for an async entry point."""

    def decorate(fn: Callable[P, Awaitable[list[B]]]) -> Callable[P, Coroutine[Any, Any, list[B]]]:
        @functools.wraps(fn)
        async def counted(*args: P.args, **kwargs: P.kwargs) -> list[B]:
            return _count_sources(tally, await fn(*args, **kwargs))

        return counted

    return decorate
