"""The routing policy, written once for the embedded listener and the ASGI app.

What a request gets is decided on its head, before any body byte is read, in this order:

1. its route: none for the path is 404, none for the method 405 with an ``Allow`` header (a HEAD request is
   served by the GET route, and answered without a body);
2. the route's IP allowlist: 403;
3. the route's guard (the Hive webhook's Bearer check lives there): its answer;
4. the declared body size against the route's limit (its ``max_body``, else the listener's): 413.

Then the caller reads the body (413 past the same limit) and runs the handler through :func:`call_handler` (a
failure is a JSON 500). Every refusal has the error shape of :meth:`Response.error`. No IO here: the listener
and the ASGI app move the bytes, each in its own way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ._app import DropConnection, Request, Response, Route, Router

__all__ = ["FORBIDDEN", "HANDLER_TIMED_OUT", "Routing", "call_handler", "route_request", "too_large"]

log = logging.getLogger("gs_hooks.http")

FORBIDDEN = "address not allowed"
HANDLER_TIMED_OUT = "handler timed out"


def too_large(limit: int) -> str:
    """The 413 message for a body past ``limit`` bytes."""
    return f"body larger than {limit} bytes"


@dataclass(slots=True)
class Routing:
    """Where a request goes, decided on its head.

    Attributes:
        route: the route whose handler runs once the body is read; None when ``answer`` is the reply.
        answer: the reply without a handler (404, 405, 403, the guard's, 413), else None.
        limit: the largest body the request may carry.
        closes: the answer goes out with the body unread and the connection should close after it (the guard's,
            413); after 404, 405 and 403 a keep-alive connection may live on once a small body is drained.
        note: why the request was refused, for a log line (403, 413), else empty.
    """

    route: Route | None
    answer: Response | None
    limit: int
    closes: bool = False
    note: str = ""


def route_request(
    router: Router, request: Request, *, raw_path: str | None, max_body: int, declared: int | None
) -> Routing:
    """Apply the policy to a request head (sets ``request.path_params`` when a pattern route matches).

    Args:
        router: the routes.
        request: the request, its body not read yet.
        raw_path: the path as sent, still percent-encoded, when the caller has it (see :meth:`Router.resolve`).
        max_body: the body limit of routes without their own.
        declared: the body size the head announces (Content-Length), when it does.

    Returns:
        The :class:`Routing`.
    """
    route, params, allowed = router.resolve(request.method, request.path, raw_path)
    if route is None:
        if allowed:
            methods = ", ".join(allowed)
            answer = Response.error(405, f"method {request.method} not allowed here; allowed: {methods}")
            answer.headers.append(("allow", methods))
        else:
            answer = Response.error(404, "no such route")
        return Routing(None, answer, max_body)
    if params:
        request.path_params = params
    if not route.allows(request.client):
        return Routing(None, Response.error(403, FORBIDDEN), max_body, note=FORBIDDEN)
    limit = route.max_body if route.max_body is not None else max_body
    if route.guard is not None:
        rejected = route.guard(request)
        if rejected is not None:
            return Routing(None, rejected, limit, closes=True)
    if declared is not None and declared > limit:
        return Routing(None, Response.error(413, too_large(limit)), limit, closes=True, note=too_large(limit))
    return Routing(route, None, limit)


async def call_handler(route: Route, request: Request) -> Response:
    """Run the route's handler on a complete request.

    Returns:
        The handler's response, or the JSON 500 when it raised (logged with its traceback).

    Raises:
        DropConnection: the handler asked to close the connection without an answer.
    """
    try:
        return await route.handler(request)
    except DropConnection:
        raise
    except Exception:
        log.exception("handler for %s %s failed", request.method, request.raw_path)
        return Response.error(500, "internal error")
