"""The routes as a plain ASGI 3 application, for games that already run Starlette, FastAPI or uvicorn.

The same :class:`Router`, the same order of checks as the embedded listener: route, allowlist (on the ASGI
``client``), guard on the head, then the body, read only after the guard passed (so a server that implements
``Expect: 100-continue`` sends its ``100`` only then) and refused with 413 past the limit. Framing, header limits,
deadlines and the connection cap are the hosting server's job. Mounted under a prefix (Starlette ``Mount``), the
route path is the path below the mount point (``root_path``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio

from ._app import Request, Response, Router, safe_for_log
from ._server import HttpLimits

__all__ = ["ASGIApp", "as_asgi"]

log = logging.getLogger("gs_hooks.http")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        if path == root:
            return "/"
        if path[len(root)] == "/":
            return path[len(root) :]
    return path


def as_asgi(router: Router, *, limits: HttpLimits | None = None) -> ASGIApp:
    """Wrap a :class:`Router` as an ASGI 3 application.

    Args:
        router: the routes (``hooks.router``).
        limits: ``max_body_bytes`` (413 past it, unless a route sets its own) and ``handler_timeout_s``
            (500 past it) apply; the others are the hosting server's business.

    Returns:
        ``async app(scope, receive, send)``; lifespan events are accepted, websocket connections refused.
    """
    lim = limits or HttpLimits()

    async def send_response(send: Send, response: Response, *, head_only: bool = False) -> None:
        headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1"))
            for k, v in response.headers
            if k.lower() not in ("content-length", "connection")
        ]
        headers.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head_only else response.body})

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if kind != "http":
            await send({"type": "websocket.close", "code": 1000})
            return
        method: str = scope["method"]
        path = _route_path(scope)
        client = scope.get("client")
        request = Request(
            method=method,
            path=path,
            query_string=scope.get("query_string", b"").decode("latin-1"),
            headers=scope["headers"],
            client=(str(client[0]), int(client[1])) if client else None,
            raw_path=safe_for_log(path),
        )
        head_only = method == "HEAD"
        route, params, allowed = router.resolve(method, path)
        if route is None:
            if allowed:
                r = Response.error(405, f"method {method} not allowed here; allowed: {', '.join(allowed)}")
                r.headers.append(("allow", ", ".join(allowed)))
            else:
                r = Response.error(404, "no such route")
            await send_response(send, r, head_only=head_only)
            return
        if params:
            request.path_params = params
        if not route.allows(request.client):
            await send_response(send, Response.error(403, "address not allowed"), head_only=head_only)
            return
        if route.guard is not None:
            rejected = route.guard(request)
            if rejected is not None:
                await send_response(send, rejected, head_only=head_only)
                return
        limit = route.max_body if route.max_body is not None else lim.max_body_bytes
        declared = request.header("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await send_response(send, Response.error(413, f"body larger than {limit} bytes"))
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await send_response(send, Response.error(413, f"body larger than {limit} bytes"))
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        request.body = b"".join(chunks)
        try:
            with anyio.fail_after(lim.handler_timeout_s):
                response = await route.handler(request)
        except TimeoutError:
            log.error("handler for %s %s timed out", method, request.raw_path)
            response = Response.error(500, "handler timed out")
        except Exception:
            log.exception("handler for %s %s failed", method, request.raw_path)
            response = Response.error(500, "internal error")
        await send_response(send, response, head_only=head_only)

    return app
