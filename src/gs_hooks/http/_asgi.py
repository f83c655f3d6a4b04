"""The routes as a plain ASGI 3 application, for games that already run Starlette, FastAPI or uvicorn.

The same :class:`Router` and the same routing policy as the embedded listener (:mod:`._policy`): route,
allowlist (on the ASGI ``client``), guard on the head, declared size; then the body, read only after the guard
passed (so a server that implements ``Expect: 100-continue`` sends its ``100`` only then) and refused with 413
past the limit. Framing, header limits, deadlines and the connection cap are the hosting server's job. Mounted
under a prefix (Starlette ``Mount``), the route path is the path below the mount point (``root_path``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio

from ._app import Request, Response, Router, safe_for_log
from ._limits import HttpLimits
from ._policy import HANDLER_TIMED_OUT, call_handler, route_request, too_large

__all__ = ["ASGIApp", "as_asgi"]

log = logging.getLogger("gs_hooks.http")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def as_asgi(router: Router, *, limits: HttpLimits | None = None) -> ASGIApp:
    """Wrap a :class:`Router` as an ASGI 3 application.

    Args:
        router: the routes (``hooks.router``).
        limits: ``max_body_bytes`` (413 past it, unless a route sets its own) and ``handler_timeout_s``
            (500 past it) apply; the others are the hosting server's business.

    Returns:
        ``async app(scope, receive, send)``; lifespan events are accepted, websocket connections refused. A
        handler raising :class:`DropConnection` raises it out of the app (the hosting server then ends the
        exchange its own way).
    """
    lim = limits or HttpLimits()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await _lifespan(receive, send)
        elif kind != "http":
            await send({"type": "websocket.close", "code": 1000})
        else:
            await _serve(router, lim, scope, receive, send)

    return app


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _serve(router: Router, limits: HttpLimits, scope: Scope, receive: Receive, send: Send) -> None:
    request = _request_of(scope)
    head_only = request.method == "HEAD"
    declared = request.header("content-length")
    routing = route_request(
        router,
        request,
        raw_path=None,
        max_body=limits.max_body_bytes,
        declared=int(declared) if declared is not None and declared.isdigit() else None,
    )
    if routing.route is None:
        assert routing.answer is not None
        await _send_response(send, routing.answer, head_only=head_only)
        return
    body = await _read_body(receive, routing.limit)
    if body is None:
        return  # the client went away
    if isinstance(body, Response):
        await _send_response(send, body, head_only=head_only)
        return
    request.body = body
    try:
        with anyio.fail_after(limits.handler_timeout_s):
            response = await call_handler(routing.route, request)
    except TimeoutError:
        log.error("handler for %s %s timed out", request.method, request.raw_path)
        response = Response.error(500, HANDLER_TIMED_OUT)
    await _send_response(send, response, head_only=head_only)


def _request_of(scope: Scope) -> Request:
    path = _route_path(scope)
    client = scope.get("client")
    return Request(
        method=scope["method"],
        path=path,
        query_string=scope.get("query_string", b"").decode("latin-1"),
        headers=scope["headers"],
        client=(str(client[0]), int(client[1])) if client else None,
        raw_path=safe_for_log(path),
    )


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        if path == root:
            return "/"
        if path[len(root)] == "/":
            return path[len(root) :]
    return path


async def _read_body(receive: Receive, limit: int) -> bytes | Response | None:
    """The body, the 413 answer past ``limit``, or None when the client disconnected."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return Response.error(413, too_large(limit))
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


async def _send_response(send: Send, response: Response, *, head_only: bool) -> None:
    headers = [
        (k.lower().encode("latin-1"), v.encode("latin-1"))
        for k, v in response.headers
        if k.lower() not in ("content-length", "connection")
    ]
    headers.append((b"content-length", str(len(response.body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head_only else response.body})
