"""The operator's probes: the ``/livez``, ``/readyz`` and ``/healthz`` documents, and ``/metrics``.

:class:`Probes` reads the services (lifecycle, components, stores, health reporters, sessions) and the listener's
counters; :func:`add_probe_routes` serves them on the router: ``/livez`` (the hooks run), ``/readyz`` (every
component works; failing ones named with their last error), ``/healthz`` (JSON: status, live sessions,
components, readiness) and ``/metrics`` (Prometheus text, behind ``listener.admin_allow``, loopback only while
it is empty; it needs the ``metrics`` extra and says so when it is missing).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import msgspec

from .._component import component_name
from .._health import ComponentHealth
from .._lifecycle import State
from .._services import Services
from ..http._app import Request, Response, Router
from ..http._listener import Listener

__all__ = ["METRICS_HINT", "Probes", "add_probe_routes"]

METRICS_HINT = "/metrics needs prometheus-client: pip install 'gs_hooks[metrics]'"

Document = dict[str, Any]


class Probes:
    """The probe documents of one hooks.

    Args:
        services: the hooks' services.
        listener: the embedded listener (its counters go into ``/healthz``), or None.
    """

    def __init__(self, services: Services, *, listener: Listener | None) -> None:
        self.services = services
        self.listener = listener

    @property
    def live(self) -> bool:
        """True while the hooks run and their task group was not cancelled (a component crashed)."""
        return self.services.live

    def stores_health(self) -> tuple[ComponentHealth, ...]:
        """The health of each opened sqlite store."""
        return tuple(store.health() for store in self.services.stores())

    def readiness(self) -> tuple[ComponentHealth, ...]:
        """Every health report (stores, components, reporters). Cheap and synchronous (no IO)."""
        return self.services.readiness()

    def health_document(self) -> Document:
        """The ``/healthz`` document (see :meth:`gs_hooks.Hooks.health`)."""
        reports = self.readiness()
        state = self.services.observe()
        return {
            "status": "ok" if state is State.RUNNING else state.value,
            "sessions": len(self.services.registry),
            "components": [component_name(c) for c in self.services.components],
            "listener": self.listener.stats() if self.listener is not None else None,
            "stores": [msgspec.structs.asdict(h) for h in self.stores_health()],
            "ready": self.live and all(r.ok for r in reports),
            "checks": [msgspec.to_builtins(r) for r in reports],
        }

    def ready_document(self) -> Document:
        """The ``/readyz`` document (see :meth:`gs_hooks.Hooks.ready_document`)."""
        reports = self.readiness()
        state = self.services.observe()
        live = self.live
        failing = [r.name for r in reports if not r.ok]
        ready = live and not failing
        status = "ready" if ready else ("not ready" if live else state.value)
        return {
            "ready": ready,
            "status": status,
            "failing": failing,
            "checks": [msgspec.to_builtins(r) for r in reports],
        }

    def live_document(self) -> Document:
        """The ``/livez`` document: ``live`` and ``status`` (``live``, or the lifecycle state)."""
        state = self.services.observe()
        live = self.live
        return {"live": live, "status": "live" if live else state.value}


def add_probe_routes(
    router: Router,
    *,
    health: Callable[[], Document],
    admin_allow: Iterable[str] = (),
    ready: Callable[[], Document] | None = None,
    live: Callable[[], Document] | None = None,
    metrics: Callable[[], bytes] | None = None,
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
        metrics: returns the Prometheus text of ``/metrics`` (raising ``ImportError`` without
            ``prometheus_client``); default: ``gs_hooks_up``, ``gs_hooks_sessions``, readiness and the listener's
            counters from the health document, then ``prometheus_client``'s default registry.
    """

    async def healthz(request: Request) -> Response:
        doc = health()
        return Response.json(doc, status=200 if doc.get("status") == "ok" else 503)

    def probe(document: Callable[[], Document], key: str) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            doc = document()
            return Response.json(doc, status=200 if doc.get(key) else 503, headers=[("cache-control", "no-store")])

        return handler

    if ready is not None:
        router.add("GET", "/readyz", probe(ready, "ready"))
    if live is not None:
        router.add("GET", "/livez", probe(live, "live"))

    async def serve_metrics(request: Request) -> Response:
        try:
            import prometheus_client  # optional: the ``metrics`` extra

            body = metrics() if metrics is not None else _own_metrics(prometheus_client, health())
        except ImportError:
            return Response.error(501, METRICS_HINT)
        return Response(200, body, [("content-type", prometheus_client.CONTENT_TYPE_LATEST)])

    router.add("GET", "/healthz", healthz)
    router.add("GET", "/metrics", serve_metrics, allow=admin_allow)


def _own_metrics(prometheus_client: Any, doc: Document) -> bytes:
    """The hooks' own gauges and counters, rendered by prometheus_client's exposition format."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily  # optional: the ``metrics`` extra

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
    return bytes(prometheus_client.generate_latest(registry)) + bytes(prometheus_client.generate_latest())
