"""What every Gamebase attempt tells the metrics: its latency, its error code, whether it is retried.

The request core's one-attempt method (``RequestCore._attempt``) calls :func:`attempt_started` before it sends,
then :func:`attempt_ended` with what it returns (the decoded answer, or a failure worth retrying: a :class:`Retry`,
a class defined here so the check is a plain ``isinstance``: one against a ``runtime_checkable`` Protocol cost
~15 µs per call) or :func:`attempt_raised` with the final :class:`~gs_hooks.PlatformError` /
:class:`~gs_hooks.ProtocolError` it raises. Plain calls, not a decorator: a decorating coroutine was one more frame
made and resumed per attempt on the login storm's hot path (``python -m bench gamebase``).
The route is the API name from the endpoint table, the transaction id is the same over the retries of one call.
Counted into :mod:`gs_hooks._metrics`: ``gs_hooks_gamebase_request_seconds{api}``,
``gs_hooks_gamebase_errors_total{api,code}``, ``gs_hooks_gamebase_retries_total{api,code}`` (an attempt whose
transaction id follows a retryable failure) and the last success / error for the dashboard (an answer about the
request, such as an invalid token, counts as an error code but as a working exchange).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from .. import _metrics
from .._exceptions import PlatformError, ProtocolError
from ._protocol import ResultClass, classify

__all__ = ["Retry", "attempt_ended", "attempt_raised", "attempt_started", "error_code"]

# Answers about the request, not about Gamebase: the exchange worked (the dashboard's Gamebase card stays ok).
_ABOUT_THE_REQUEST = frozenset(
    {ResultClass.TOKEN_INVALID, ResultClass.TOKEN_EXPIRED, ResultClass.MEMBER_NOT_VALID, ResultClass.NO_SUCH_MEMBER}
)
_PENDING_MAX = 1024  # transaction ids whose last attempt failed retryably, awaiting their retry (bounded)
_pending: OrderedDict[str, str] = OrderedDict()


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


def attempt_started(route: str, tx: str) -> float:
    """An attempt of call ``tx`` to ``route`` begins: count it as a retry if ``tx``'s last attempt failed retryably;
    returns the start time :func:`attempt_ended` / :func:`attempt_raised` take."""
    if _pending:
        retried = _pending.pop(tx, None)
        if retried is not None:
            _metrics.GAMEBASE_RETRIES.inc(route, retried)
    return time.perf_counter()


def attempt_ended(route: str, tx: str, started: float, outcome: object) -> None:
    """An attempt returned ``outcome``: the decoded answer, or a :class:`Retry`."""
    seconds = time.perf_counter() - started
    if isinstance(outcome, Retry):
        code = error_code(outcome.error, server_error=outcome.server_error)
        _failed(route, code, seconds)
        _pending[tx] = code
        if len(_pending) > _PENDING_MAX:
            _pending.popitem(last=False)
    else:
        _metrics.GAMEBASE_SECONDS.observe(seconds, route)
        _metrics.GAMEBASE.success(seconds)


def attempt_raised(route: str, started: float, exc: PlatformError | ProtocolError) -> None:
    """An attempt raised its final error ``exc``."""
    answered = isinstance(exc, PlatformError) and classify(exc.code) in _ABOUT_THE_REQUEST
    _failed(route, error_code(exc), time.perf_counter() - started, answered=answered)


def _failed(api: str, code: str, seconds: float, *, answered: bool = False) -> None:
    _metrics.GAMEBASE_SECONDS.observe(seconds, api)
    _metrics.GAMEBASE_ERRORS.inc(api, code)
    if answered:  # e.g. an invalid token: Gamebase works, the request was refused
        _metrics.GAMEBASE.success(seconds)
    else:
        _metrics.GAMEBASE.error(code, seconds)
