"""What every Gamebase attempt tells the metrics: its latency, its error code, whether it is retried.

:func:`observe_attempt` decorates the request core's one-attempt method (``RequestCore._attempt``), whose contract
it relies on: its first argument after ``self`` is the call (``.route``: the API name from the endpoint table,
``.tx``: the transaction id, the same over the retries of one call); it returns either the decoded answer, or a
failure worth retrying (a :class:`Retry`, a class defined here so the check is a plain ``isinstance``: one against
a ``runtime_checkable`` Protocol cost ~15 µs per call, a tenth of a verification's CPU in the login storm), or
raises the final :class:`~gs_hooks.PlatformError` / :class:`~gs_hooks.ProtocolError`.
Counted into :mod:`gs_hooks._metrics`: ``gs_hooks_gamebase_request_seconds{api}``,
``gs_hooks_gamebase_errors_total{api,code}``, ``gs_hooks_gamebase_retries_total{api,code}`` (an attempt whose
transaction id follows a retryable failure) and the last success / error for the dashboard (an answer about the
request, such as an invalid token, counts as an error code but as a working exchange).
"""

from __future__ import annotations

import functools
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from .. import _metrics
from .._exceptions import PlatformError, ProtocolError
from ._protocol import ResultClass, classify

__all__ = ["Retry", "error_code", "observe_attempt"]

P = ParamSpec("P")
T = TypeVar("T")
S = TypeVar("S")

# Answers about the request, not about Gamebase: the exchange worked (the dashboard's Gamebase card stays ok).
_ABOUT_THE_REQUEST = frozenset(
    {ResultClass.TOKEN_INVALID, ResultClass.TOKEN_EXPIRED, ResultClass.MEMBER_NOT_VALID, ResultClass.NO_SUCH_MEMBER}
)
_PENDING_MAX = 1024  # transaction ids whose last attempt failed retryably, awaiting their retry (bounded)
_pending: OrderedDict[str, str] = OrderedDict()


class _Call(Protocol):
    @property
    def route(self) -> str: ...

    @property
    def tx(self) -> str: ...


C = TypeVar("C", bound=_Call)


@dataclass(slots=True)
class Retry:
    """An attempt that failed in a way worth retrying (what ``RequestCore._attempt`` returns then).

    Attributes:
        error: the failure, as the error the call raises when the retries run out.
        cause: the exception behind it (a transport error), chained to that final error.
        server_error: an HTTP 5xx (``retry_after`` is what it said).
        retry_after: the answer's ``Retry-After`` in seconds, if any.
    """

    error: PlatformError
    cause: BaseException | None = None
    server_error: bool = False
    retry_after: float | None = None


def error_code(error: BaseException, *, server_error: bool = False) -> str:
    """The ``code`` label of a failed attempt: Gamebase's result code, ``http_5xx``, ``transport`` (no answer) or
    ``unreadable`` (an answer that is not a Gamebase answer)."""
    if isinstance(error, PlatformError) and error.code is not None:
        return str(error.code)
    if server_error:
        return "http_5xx"
    if isinstance(error, ProtocolError) or (isinstance(error, PlatformError) and "HTTP" in error.message):
        return "unreadable"
    return "transport"


def observe_attempt(
    fn: Callable[Concatenate[S, C, P], Awaitable[T]],
) -> Callable[Concatenate[S, C, P], Coroutine[Any, Any, T]]:
    """Decorate ``RequestCore._attempt`` (see the module docstring)."""

    @functools.wraps(fn)
    async def attempt(self: S, call: C, /, *args: P.args, **kwargs: P.kwargs) -> T:
        api = call.route
        retried = _pending.pop(call.tx, None)
        if retried is not None:
            _metrics.GAMEBASE_RETRIES.inc(api, retried)
        started = time.perf_counter()
        try:
            outcome = await fn(self, call, *args, **kwargs)
        except (PlatformError, ProtocolError) as exc:
            answered = isinstance(exc, PlatformError) and classify(exc.code) in _ABOUT_THE_REQUEST
            _failed(api, error_code(exc), time.perf_counter() - started, answered=answered)
            raise
        seconds = time.perf_counter() - started
        if isinstance(outcome, Retry):
            code = error_code(outcome.error, server_error=outcome.server_error)
            _failed(api, code, seconds)
            _pending[call.tx] = code
            if len(_pending) > _PENDING_MAX:
                _pending.popitem(last=False)
        else:
            _metrics.GAMEBASE_SECONDS.observe(seconds, api)
            _metrics.GAMEBASE.success(seconds)
        return outcome

    return attempt


def _failed(api: str, code: str, seconds: float, *, answered: bool = False) -> None:
    _metrics.GAMEBASE_SECONDS.observe(seconds, api)
    _metrics.GAMEBASE_ERRORS.inc(api, code)
    if answered:  # e.g. an invalid token: Gamebase works, the request was refused
        _metrics.GAMEBASE.success(seconds)
    else:
        _metrics.GAMEBASE.error(code, seconds)
