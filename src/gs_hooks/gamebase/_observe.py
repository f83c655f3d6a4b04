"""What every Gamebase attempt tells the metrics: its latency, its error code, whether it is retried.

:func:`observe_attempt` decorates the request core's one-attempt method (``RequestCore._attempt``), whose contract
it relies on: its first argument after ``self`` is the call (``.route``: the API name from the endpoint table,
``.tx``: the transaction id, the same over the retries of one call); it returns either the decoded answer, or a
failure worth retrying (an object with ``.error``, a :class:`~gs_hooks.PlatformError`, and ``.server_error``,
True for an HTTP 5xx), or raises the final :class:`~gs_hooks.PlatformError` / :class:`~gs_hooks.ProtocolError`.
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
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar, runtime_checkable

from .. import _metrics
from .._exceptions import PlatformError, ProtocolError
from ._protocol import ResultClass, classify

__all__ = ["error_code", "observe_attempt"]

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


@runtime_checkable
class _Retry(Protocol):
    error: PlatformError
    server_error: bool


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
        if isinstance(outcome, _Retry):
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
