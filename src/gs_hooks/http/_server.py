"""The embedded HTTP/1.1 server: h11 over anyio.

Strategy: h11 parses (we never split a request ourselves); :mod:`._strict` looks again at the raw bytes where
h11 is lenient; the server moves bytes and enforces limits. Each job has its module, and this one wires them:

- :mod:`._admission`: who may connect (allowlist at accept, per-address limit, cap and reserve) and the accept
  loop on anyio's listener (TLS, trio), with back-off when out of descriptors;
- :mod:`._asyncio_path`: the fast path on asyncio without TLS (accepting on asyncio's sockets, a protocol-backed
  stream), kept because ``python -m bench listener`` shows it pays;
- :mod:`._loop`: one connection's request loop, its deadlines (one watchdog per server, on the server's clock),
  the drain;
- :mod:`._request`: reading a request, routed by :mod:`._policy` (shared with the ASGI app) before its body;
- :mod:`._head`: writing response heads.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

import anyio
import anyio.abc
import sniffio

from .._clock import Clock
from .._ratelog import RateLimitedLog
from ._admission import Gate, accept_streams
from ._app import Router
from ._asyncio_path import accept_asyncio
from ._limits import HttpLimits, ServerCounters
from ._loop import Connections

__all__ = ["HttpLimits", "HttpServer", "serve_http"]

log = logging.getLogger("gs_hooks.http")
_LOG_INTERVAL_S = 10.0


class HttpServer(ServerCounters):
    """Serves a :class:`Router` over HTTP/1.1 (optionally TLS).

    Args:
        router: the routes.
        host / port: where to bind (port 0 picks a free port; see :attr:`port` after start).
        limits: :class:`HttpLimits`.
        ssl_context: serve TLS when given.
        clock: times the deadlines (request line, request, keep-alive, handler, drain); default the real time
            (monotonic). Tests pass a :class:`~gs_hooks.FakeClock` and move time instead of waiting.
        fast_path: on asyncio without TLS, serve through asyncio's protocol API (:mod:`._asyncio_path`); False
            serves through anyio's streams as on trio (for comparisons: ``python -m bench listener``).

    Attributes:
        port: the bound port (after :meth:`run` has started).
        active_connections / requests_served / rejected_connections / forbidden_connections / accept_failures /
            draining: the counters (see :class:`ServerCounters`).
    """

    def __init__(
        self,
        router: Router,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: HttpLimits | None = None,
        ssl_context: ssl.SSLContext | None = None,
        clock: Clock | None = None,
        fast_path: bool = True,
    ) -> None:
        super().__init__()
        self.router = router
        self.host = host
        self.requested_port = port
        self.limits = limits or HttpLimits()
        self.ssl_context = ssl_context
        self.fast_path = fast_path
        self.port: int = 0
        self._log = RateLimitedLog(log, interval_s=_LOG_INTERVAL_S)
        self._gate = Gate(router, self.limits, self, self._log, lambda: self.url, lambda host: self.evict_idle(host))
        now: Callable[[], float] = time.monotonic if clock is None else clock.time
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep if clock is None else clock.sleep
        self._connections = Connections(
            router,
            self.limits,
            self,
            self._log,
            now=now,
            sleep=sleep,
            ssl_context=ssl_context,
            release=self._gate.release,
        )

    @property
    def url(self) -> str:
        """Base URL of the running server."""
        scheme = "https" if self.ssl_context else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    async def run(self, *, task_status: anyio.abc.TaskStatus[Any] = anyio.TASK_STATUS_IGNORED) -> None:
        """Bind and serve until cancelled. ``task_status.started`` gets the server once bound.

        Raises:
            OSError: the address cannot be bound.
        """
        listener = await anyio.create_tcp_listener(local_host=self.host, local_port=self.requested_port, backlog=1024)
        listeners = [cast(anyio.abc.SocketListener, sub) for sub in listener.listeners]
        fast = self.fast_path and self.ssl_context is None and sniffio.current_async_library() == "asyncio"
        serve = self._connections.serve
        try:
            async with listener, anyio.create_task_group() as tg:
                self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
                tg.start_soon(self._connections.watchdog)
                for sub in listeners:
                    if fast:
                        tg.start_soon(
                            accept_asyncio, sub.extra(anyio.abc.SocketAttribute.raw_socket), self._gate, serve, tg
                        )
                    else:
                        tg.start_soon(accept_streams, sub, self._gate, serve, tg, self.ssl_context)
                task_status.started(self)
        finally:
            self._log.flush()

    def evict_idle(self, host: str | None) -> bool:
        """Close the connection idle between requests the longest (of ``host`` when given) to make room."""
        return self._connections.evict_idle(host)

    async def drain(self, grace_s: float = 5.0) -> None:
        """Graceful stop, step one: refuse new connections (503), close idle ones, let requests in progress
        finish (their answers carry ``Connection: close``) for up to ``grace_s``. Cancel :meth:`run` after it.
        """
        self.draining = True
        await self._connections.drain(grace_s)


@asynccontextmanager
async def serve_http(
    router: Router,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    limits: HttpLimits | None = None,
    ssl_context: ssl.SSLContext | None = None,
    clock: Clock | None = None,
) -> AsyncIterator[HttpServer]:
    """Run an :class:`HttpServer` for the duration of the ``async with`` block (arguments as for the server)."""
    server = HttpServer(router, host=host, port=port, limits=limits, ssl_context=ssl_context, clock=clock)
    async with anyio.create_task_group() as tg:
        await tg.start(server.run)
        try:
            yield server
        finally:
            tg.cancel_scope.cancel()
