"""The embedded listener as a :class:`~gs_hooks.Hooks` component, and the built-in routes.

:class:`Listener` serves ``hooks.router`` (every capability registers its routes there while the hooks are
wired) with the limits and TLS files of :class:`~gs_hooks.ListenerConfig`. The built-in routes are ``/livez``
(the hooks run), ``/readyz`` (every component works; failing ones named with their last error), ``/healthz``
(JSON: status, live sessions, components, readiness) and ``/metrics`` (Prometheus text, behind
``listener.admin_allow``, loopback only while it is empty; it needs the ``metrics`` extra and says so when it is
missing).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio
import anyio.abc

from .._clock import Clock
from .._config import ListenerConfig, parse_hostport
from .._exceptions import ConfigError
from .._health import ComponentHealth
from ._app import Request, Response, Router
from ._server import HttpLimits, HttpServer

__all__ = ["Listener", "add_builtin_routes", "limits_from_config", "tls_context_from_config"]

log = logging.getLogger("gs_hooks.http")

METRICS_HINT = "/metrics needs prometheus-client: pip install 'gs_hooks[metrics]'"


def limits_from_config(config: ListenerConfig) -> HttpLimits:
    """The :class:`HttpLimits` a :class:`~gs_hooks.ListenerConfig` asks for."""
    return HttpLimits(
        max_header_bytes=config.max_header_bytes,
        max_body_bytes=config.max_body_bytes,
        request_deadline_s=config.request_deadline_s,
        request_line_deadline_s=config.request_line_deadline_s,
        keepalive_s=config.keepalive_s,
        max_connections=config.max_connections,
        max_connections_per_address=config.max_connections_per_address,
        reserved_connections=config.reserved_connections,
    )


def tls_context_from_config(config: ListenerConfig) -> ssl.SSLContext | None:
    """A server TLS context from ``tls_cert``/``tls_key`` (None when TLS is off).

    Raises:
        ConfigError: a file cannot be read or the key does not match the certificate.
    """
    if config.tls_cert is None or config.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            "GS_HOOKS_LISTEN_TLS_CERT",
            f"cannot load the TLS certificate/key ({type(exc).__name__}: {exc}); "
            "give PEM files readable by this process, the key matching the certificate",
        ) from exc
    return context


class Listener:
    """The embedded HTTP(S) listener component.

    Args:
        router: the routes to serve (``hooks.router``).
        config: the listener settings; ``config.listen`` must be set.
        clock: times the server's deadlines (default the real time; see :class:`HttpServer`).

    Attributes:
        server: the :class:`HttpServer` (its counters feed ``/healthz`` and ``/metrics``).
    """

    name = "listener"

    def __init__(self, router: Router, config: ListenerConfig, *, clock: Clock | None = None) -> None:
        if config.listen is None:
            raise ConfigError("GS_HOOKS_LISTEN", "the listener needs host:port to bind")
        host, port = parse_hostport(config.listen)
        self.config = config
        self.server = HttpServer(
            router,
            host=host,
            port=port,
            limits=limits_from_config(config),
            ssl_context=tls_context_from_config(config),
            clock=clock,
        )
        self._scope: anyio.CancelScope | None = None
        self._closed = False

    @property
    def port(self) -> int:
        """The bound port (0 before start)."""
        return self.server.port

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8080`` (meaningful once started)."""
        return self.server.url

    def stats(self) -> dict[str, Any]:
        """Counters for health and metrics."""
        return {
            "url": self.url,
            "active_connections": self.server.active_connections,
            "requests_served": self.server.requests_served,
            "rejected_connections": self.server.rejected_connections,
        }

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Bind and serve until cancelled or closed.

        Raises:
            ConfigError: the address cannot be bound (in use, not local, no permission).
        """
        with anyio.CancelScope() as scope:
            self._scope = scope
            try:
                await self.server.run(task_status=task_status)
            except OSError as exc:
                if self.server.port:
                    raise
                raise ConfigError(
                    "GS_HOOKS_LISTEN",
                    f"cannot listen on {self.config.listen}: {exc.strerror or exc}; "
                    "choose a free port and an address of this machine",
                ) from exc

    def health(self) -> ComponentHealth:
        """Ok while bound and serving; not ok before start and once closing."""
        if self._closed:
            return ComponentHealth(name=self.name, ok=False, error="closed")
        if not self.server.port:
            return ComponentHealth(name=self.name, ok=False, error=f"not listening on {self.config.listen} yet")
        return ComponentHealth(name=self.name, ok=True)

    async def aclose(self) -> None:
        """Stop: refuse new connections, let requests in progress finish (5 s at most), close the rest."""
        self._closed = True
        if self._scope is not None:
            if self.server.port:
                await self.server.drain(grace_s=5.0)
            self._scope.cancel()
            log.info("listener on %s closed", self.url)


def add_builtin_routes(
    router: Router,
    *,
    health: Callable[[], dict[str, Any]],
    admin_allow: Iterable[str] = (),
    ready: Callable[[], dict[str, Any]] | None = None,
    live: Callable[[], dict[str, Any]] | None = None,
) -> None:
    """Register ``GET /healthz`` and ``GET /metrics`` on ``router``, and ``/readyz`` / ``/livez`` when given.

    Args:
        router: where to add them.
        health: returns the health document: ``status`` (``ok`` when serving), ``sessions``, ``components``,
            and optionally ``listener`` counters.
        admin_allow: IP allowlist of ``/metrics`` (empty = any address; :func:`gs_hooks.setup` passes loopback
            when the configured list is empty).
        ready: returns the readiness document (``ready``: bool); ``/readyz`` answers 503 while it is false.
        live: returns the liveness document (``live``: bool); ``/livez`` answers 503 while it is false.
    """

    async def healthz(request: Request) -> Response:
        doc = health()
        return Response.json(doc, status=200 if doc.get("status") == "ok" else 503)

    def probe(document: Callable[[], dict[str, Any]], key: str) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            doc = document()
            return Response.json(doc, status=200 if doc.get(key) else 503, headers=[("cache-control", "no-store")])

        return handler

    if ready is not None:
        router.add("GET", "/readyz", probe(ready, "ready"))
    if live is not None:
        router.add("GET", "/livez", probe(live, "live"))

    async def metrics(request: Request) -> Response:
        try:
            import prometheus_client
        except ImportError:
            return Response.error(501, METRICS_HINT)
        body = _own_metrics(prometheus_client, health()) + prometheus_client.generate_latest()
        return Response(200, body, [("content-type", prometheus_client.CONTENT_TYPE_LATEST)])

    router.add("GET", "/healthz", healthz)
    router.add("GET", "/metrics", metrics, allow=admin_allow)


def _own_metrics(prometheus_client: Any, doc: dict[str, Any]) -> bytes:
    """The hooks' own gauges and counters, rendered by prometheus_client's exposition format."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    families: list[Any] = [
        GaugeMetricFamily("gs_hooks_up", "1 while the hooks are running", value=1 if doc.get("status") == "ok" else 0),
        GaugeMetricFamily("gs_hooks_sessions", "live sessions in the registry", value=doc.get("sessions", 0)),
    ]
    if "ready" in doc:
        families.append(GaugeMetricFamily("gs_hooks_ready", "1 while /readyz says ready", value=int(doc["ready"])))
        checks = GaugeMetricFamily("gs_hooks_component_ok", "1 while the component's health is ok", labels=["name"])
        for check in doc.get("checks", ()):
            checks.add_metric([str(check["name"])], int(bool(check["ok"])))
        families.append(checks)
    stats = doc.get("listener")
    if stats:
        families += [
            GaugeMetricFamily(
                "gs_hooks_http_connections", "open listener connections", value=stats["active_connections"]
            ),
            CounterMetricFamily(
                "gs_hooks_http_responses", "responses sent by the listener", value=stats["requests_served"]
            ),
            CounterMetricFamily(
                "gs_hooks_http_refused_connections",
                "connections refused at the connection cap",
                value=stats["rejected_connections"],
            ),
        ]

    class _Collector:
        def collect(self) -> list[Any]:
            return families

    registry = prometheus_client.CollectorRegistry(auto_describe=False)
    registry.register(_Collector())
    return bytes(prometheus_client.generate_latest(registry))
