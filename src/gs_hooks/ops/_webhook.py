"""The Hive suspension webhook as the operator sees it: its answers by ``result_code``, its latency, its last
success and last error.

Observed at its route, from outside: the webhook's guard (the Bearer check) and handler are wrapped, and each
answer's ``result_code`` (Hive's answer shape, ``{"result_code": N}``) is counted in
``gs_hooks_webhook_batches_total{code}``; the handler's time (validate, record durably, kick) goes into
``gs_hooks_webhook_seconds``. The webhook itself (:mod:`gs_hooks.hive`) is not changed.
"""

from __future__ import annotations

import time

import msgspec

from .. import _metrics
from ..http._app import Request, Response, Route

__all__ = ["observe_webhook", "result_code"]


def result_code(response: Response) -> str:
    """The ``result_code`` of a webhook answer (``http_<status>`` when the body has none)."""
    try:
        body = msgspec.json.decode(response.body)
    except msgspec.DecodeError:
        body = None
    code = body.get("result_code") if isinstance(body, dict) else None
    if isinstance(code, int) and not isinstance(code, bool):
        return str(code)
    return f"http_{response.status}"


def _record(response: Response, seconds: float | None) -> None:
    code = result_code(response)
    _metrics.WEBHOOK_BATCHES.inc(code)
    if seconds is not None:
        _metrics.WEBHOOK_SECONDS.observe(seconds)
    if code == "0":
        _metrics.WEBHOOK.success(seconds)
    else:
        _metrics.WEBHOOK.error(code, seconds)


def observe_webhook(route: Route) -> None:
    """Wrap ``route``'s guard and handler so every answer is counted (see the module docstring)."""
    guard, handler = route.guard, route.handler

    if guard is not None:
        inner_guard = guard

        def observed_guard(request: Request) -> Response | None:
            refusal = inner_guard(request)
            if refusal is not None:
                _record(refusal, None)
            return refusal

        route.guard = observed_guard

    async def observed(request: Request) -> Response:
        started = time.perf_counter()
        response = await handler(request)
        _record(response, time.perf_counter() - started)
        return response

    route.handler = observed
