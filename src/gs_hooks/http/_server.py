"""The embedded HTTP/1.1 server: h11 over anyio.

Strategy: h11 does all parsing (we never split bytes ourselves); this module only moves bytes and enforces
limits. Per connection: wait for a request head (idle keep-alive timeout), then the head and body must complete
within an absolute deadline (slow senders are cut with 408). The head is routed, the allowlist and the route's
guard run *before* any body byte is read, the body is read up to the route's limit (413 past it), the handler
runs, and the response goes out. Any response sent before the body was fully read closes the connection.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import anyio
import anyio.abc
import h11
from anyio.streams.tls import TLSListener

from ._app import DropConnection, Request, Response, Route, Router

__all__ = ["HttpLimits", "HttpServer", "serve_http"]

log = logging.getLogger("gs_hooks.http")

_SERVER_HEADER = ("server", "gs_hooks")


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Listener limits.

    Attributes:
        max_header_bytes: largest request head (431 past it).
        max_body_bytes: largest body unless the route sets its own (413 past it).
        request_deadline_s: absolute deadline for a request's head and body (408 past it).
        keepalive_s: idle time allowed between requests on a connection.
        max_connections: concurrent connections; more get 503 and are closed.
        handler_timeout_s: a handler that runs longer gets 500.
    """

    max_header_bytes: int = 16_384
    max_body_bytes: int = 65_536
    request_deadline_s: float = 10.0
    keepalive_s: float = 30.0
    max_connections: int = 512
    handler_timeout_s: float = 30.0


class _Close(Exception):
    """Internal: stop serving this connection."""


def _safe_path(target: bytes) -> str:
    """A printable form of a request target for logs (no control characters, bounded)."""
    text = target[:200].decode("latin-1")
    return "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in text)


class HttpServer:
    """Serves a :class:`Router` over HTTP/1.1 (optionally TLS).

    Args:
        router: the routes.
        host / port: where to bind (port 0 picks a free port; see :attr:`port` after start).
        limits: :class:`HttpLimits`.
        ssl_context: serve TLS when given.
    """

    def __init__(
        self,
        router: Router,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: HttpLimits | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.router = router
        self.host = host
        self.requested_port = port
        self.limits = limits or HttpLimits()
        self.ssl_context = ssl_context
        self.port: int = 0
        self.active_connections = 0
        self.requests_served = 0

    @property
    def url(self) -> str:
        """Base URL of the running server."""
        scheme = "https" if self.ssl_context else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    async def run(self, *, task_status: anyio.abc.TaskStatus[HttpServer] = anyio.TASK_STATUS_IGNORED) -> None:
        """Bind and serve until cancelled. ``task_status.started`` gets the server once bound."""
        listener: anyio.abc.Listener[Any] = await anyio.create_tcp_listener(
            local_host=self.host, local_port=self.requested_port, reuse_port=False
        )
        sock = listener.extra(anyio.abc.SocketAttribute.raw_socket)
        self.port = sock.getsockname()[1]
        if self.ssl_context is not None:
            listener = TLSListener(listener, self.ssl_context, standard_compatible=False)
        async with listener:
            task_status.started(self)
            await listener.serve(self._serve_connection)

    async def _serve_connection(self, stream: anyio.abc.ByteStream) -> None:
        self.active_connections += 1
        try:
            client = _peer(stream)
            if self.active_connections > self.limits.max_connections:
                await self._reject_busy(stream)
                return
            await self._connection_loop(stream, client)
        except (
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
            anyio.EndOfStream,
            ssl.SSLError,
            OSError,
        ):
            pass
        except _Close:
            pass
        finally:
            self.active_connections -= 1
            with anyio.CancelScope(shield=True), anyio.move_on_after(1):
                await stream.aclose()

    async def _reject_busy(self, stream: anyio.abc.ByteStream) -> None:
        conn = h11.Connection(h11.SERVER)
        body = Response.error(503, "too many connections; retry later").body
        data = conn.send(
            h11.Response(
                status_code=503,
                headers=[
                    ("content-type", "application/json; charset=utf-8"),
                    ("content-length", str(len(body))),
                    ("connection", "close"),
                    ("retry-after", "1"),
                ],
            )
        )
        with anyio.move_on_after(1):
            await stream.send((data or b"") + (conn.send(h11.Data(data=body)) or b""))

    async def _receive_into(self, conn: h11.Connection, stream: anyio.abc.ByteStream) -> None:
        try:
            data = await stream.receive(65_536)
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            data = b""
        conn.receive_data(data)

    async def _next_event(self, conn: h11.Connection, stream: anyio.abc.ByteStream) -> Any:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                await self._receive_into(conn, stream)
                continue
            return event

    async def _connection_loop(self, stream: anyio.abc.ByteStream, client: tuple[str, int] | None) -> None:
        limits = self.limits
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_header_bytes)
        while True:
            # Idle: wait for the first bytes of the next request (keep-alive timeout).
            if conn.next_event() is h11.NEED_DATA and not conn.trailing_data[0]:
                with anyio.move_on_after(limits.keepalive_s) as idle:
                    await self._receive_into(conn, stream)
                if idle.cancelled_caught:
                    return
            response: Response | None = None
            request: Request | None = None
            route: Route | None = None
            body_complete = False
            with anyio.move_on_after(limits.request_deadline_s) as deadline:
                try:
                    event = await self._next_event(conn, stream)
                    if not isinstance(event, h11.Request):
                        return
                    request, route, response, body_complete = await self._read_request(conn, stream, event, client)
                except h11.RemoteProtocolError as exc:
                    status = exc.error_status_hint if exc.error_status_hint in (400, 413, 431) else 400
                    log.info("rejected malformed request from %s: %s", _fmt_peer(client), type(exc).__name__)
                    response = Response.error(status, _protocol_message(status), close=True)
            if deadline.cancelled_caught:
                log.info("request from %s cut at the %.1fs deadline", _fmt_peer(client), limits.request_deadline_s)
                response = Response.error(408, "request not completed within the deadline", close=True)
                body_complete = False
            elif response is None and request is not None and route is not None:
                response = await self._call(route, request)
            if response is None:  # pragma: no cover - every path above sets one
                response = Response.error(500, "internal error", close=True)
            if not body_complete:
                response.close = True
            await self._send(conn, stream, response, head_only=request is not None and request.method == "HEAD")
            self.requests_served += 1
            if response.close or conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return

    async def _read_request(
        self,
        conn: h11.Connection,
        stream: anyio.abc.ByteStream,
        event: h11.Request,
        client: tuple[str, int] | None,
    ) -> tuple[Request | None, Route | None, Response | None, bool]:
        raw_target = bytes(event.target)
        head_size = len(raw_target) + sum(len(k) + len(v) + 4 for k, v in event.headers)
        if head_size > self.limits.max_header_bytes:
            return None, None, Response.error(431, _protocol_message(431), close=True), False
        path_part, _, query = raw_target.partition(b"?")
        try:
            path = unquote(path_part.decode("ascii"), errors="strict")
        except (UnicodeDecodeError, ValueError):
            return None, None, Response.error(400, "request target is not valid", close=True), False
        method = event.method.decode("ascii", "replace").upper()
        request = Request(
            method=method,
            path=path,
            query_string=query.decode("latin-1"),
            headers=list(event.headers),
            client=client,
            raw_path=_safe_path(path_part),
        )
        route, params, allowed = self.router.resolve(method, path)
        if route is None:
            if allowed:
                r = Response.error(405, f"method {method} not allowed here; allowed: {', '.join(allowed)}")
                r.headers.append(("allow", ", ".join(allowed)))
            else:
                r = Response.error(404, "no such route")
            return request, None, r, await self._drain_small(conn, stream)
        request.path_params = params
        if not route.allows(client):
            return (
                request,
                None,
                Response.error(403, "address not allowed"),
                await self._drain_small(conn, stream),
            )
        if route.guard is not None:
            rejected = route.guard(request)
            if rejected is not None:
                rejected.close = True
                return request, None, rejected, False
        limit = route.max_body if route.max_body is not None else self.limits.max_body_bytes
        declared = request.header("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return request, None, Response.error(413, f"body larger than {limit} bytes", close=True), False
        chunks: list[bytes] = []
        size = 0
        while True:
            ev = await self._next_event(conn, stream)
            if isinstance(ev, h11.Data):
                size += len(ev.data)
                if size > limit:
                    return (
                        request,
                        None,
                        Response.error(413, f"body larger than {limit} bytes", close=True),
                        False,
                    )
                chunks.append(bytes(ev.data))
            elif isinstance(ev, h11.EndOfMessage):
                break
            elif isinstance(ev, h11.ConnectionClosed):
                raise _Close
        request.body = b"".join(chunks)
        return request, route, None, True

    async def _drain_small(self, conn: h11.Connection, stream: anyio.abc.ByteStream) -> bool:
        """Read and discard a small body so an error answer can keep the connection; False if too big."""
        size = 0
        while True:
            ev = await self._next_event(conn, stream)
            if isinstance(ev, h11.Data):
                size += len(ev.data)
                if size > self.limits.max_body_bytes:
                    return False
            else:
                return isinstance(ev, h11.EndOfMessage)

    async def _call(self, route: Route, request: Request) -> Response:
        try:
            with anyio.fail_after(self.limits.handler_timeout_s):
                return await route.handler(request)
        except DropConnection:
            raise _Close from None
        except TimeoutError:
            log.error("handler for %s %s timed out", request.method, request.raw_path)
            return Response.error(500, "handler timed out")
        except Exception:
            log.exception("handler for %s %s failed", request.method, request.raw_path)
            return Response.error(500, "internal error")

    async def _send(
        self, conn: h11.Connection, stream: anyio.abc.ByteStream, response: Response, *, head_only: bool
    ) -> None:
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            raise _Close
        headers = [(k, v) for k, v in response.headers if k.lower() not in ("content-length", "connection")]
        headers.append(("content-length", str(len(response.body))))
        headers.append(_SERVER_HEADER)
        if response.close:
            headers.append(("connection", "close"))
        out = conn.send(h11.Response(status_code=response.status, headers=headers)) or b""
        if response.body and not head_only:
            out += conn.send(h11.Data(data=response.body)) or b""
        out += conn.send(h11.EndOfMessage()) or b""
        with anyio.move_on_after(self.limits.request_deadline_s):
            await stream.send(out)


def _protocol_message(status: int) -> str:
    if status == 431:
        return "request header block too large"
    if status == 413:
        return "request body too large"
    return "malformed HTTP request"


def _peer(stream: anyio.abc.ByteStream) -> tuple[str, int] | None:
    try:
        addr = stream.extra(anyio.abc.SocketAttribute.remote_address)
    except Exception:
        return None
    if isinstance(addr, tuple) and len(addr) >= 2:
        return (str(addr[0]), int(addr[1]))
    return None


def _fmt_peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "?"


@asynccontextmanager
async def serve_http(
    router: Router,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    limits: HttpLimits | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[HttpServer]:
    """Run an :class:`HttpServer` for the duration of the ``async with`` block."""
    server = HttpServer(router, host=host, port=port, limits=limits, ssl_context=ssl_context)
    async with anyio.create_task_group() as tg:
        await tg.start(server.run)
        try:
            yield server
        finally:
            tg.cancel_scope.cancel()
