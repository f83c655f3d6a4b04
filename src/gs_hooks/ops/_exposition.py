"""``/metrics``: every family the hooks export, read at scrape time.

Pull first: the collector reads what the parts already count or hold — the registry (sessions and players per
server id), the listener's counters, the token verifier's cache counters, the maintenance state, the ban poller's
watermark, the ban book's size, readiness — and the event counters of :mod:`gs_hooks._metrics` (logins, kicks,
bans applied and lifted, webhook batches, Gamebase calls, admin requests). The CCU reporter's own metrics live in
``prometheus_client``'s default registry (:mod:`gs_hooks.ccu._metrics`) and follow.

Names follow Prometheus' conventions: counters end in ``_total`` (``prometheus_client`` adds it), durations are
``_seconds`` histograms, label sets are bounded (server ids are the game's; never a player id).
"""

from __future__ import annotations

import asyncio
from typing import Any

import sniffio

from .. import _metrics
from ._sources import OpsSources

__all__ = ["exposition", "runtime"]


def runtime() -> tuple[str, str]:
    """(backend, loop): ``asyncio`` / ``trio``, and the event loop's implementation (``asyncio``, ``uvloop``)."""
    try:
        backend = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return "none", "none"
    if backend != "asyncio":
        return backend, backend
    try:
        loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
    except RuntimeError:
        loop = "none"
    return backend, loop


def exposition(src: OpsSources, doc: dict[str, Any]) -> bytes:
    """The Prometheus text of the hooks' families, then the default registry's (the CCU reporter's).

    Args:
        src: what to read.
        doc: the ``/healthz`` document (status, readiness checks).

    Raises:
        ImportError: ``prometheus_client`` is not installed (the ``metrics`` extra).
    """
    import prometheus_client  # optional: the ``metrics`` extra

    families = _families(src, doc)

    class _Collector:
        def collect(self) -> list[Any]:
            return families

    registry = prometheus_client.CollectorRegistry(auto_describe=False)
    registry.register(_Collector())
    return bytes(prometheus_client.generate_latest(registry)) + bytes(prometheus_client.generate_latest())


def _families(src: OpsSources, doc: dict[str, Any]) -> list[Any]:
    from prometheus_client.core import GaugeMetricFamily  # optional: the ``metrics`` extra

    backend, loop = runtime()
    build = GaugeMetricFamily(
        "gs_hooks_build_info",
        "gs_hooks version, Python version, async backend and loop",
        labels=["version", "python", "backend", "loop"],
    )
    build.add_metric([_metrics.VERSION, _metrics.PYTHON, backend, loop], 1)
    out: list[Any] = [
        GaugeMetricFamily("gs_hooks_up", "1 while the hooks are running", value=1 if doc.get("status") == "ok" else 0),
        build,
    ]
    since = src.lifecycle.running_since
    if since is not None:
        out.append(GaugeMetricFamily("gs_hooks_start_time_seconds", "When the hooks started (epoch s)", value=since))
    if "ready" in doc:
        out.append(GaugeMetricFamily("gs_hooks_ready", "1 while /readyz says ready", value=int(doc["ready"])))
        checks = GaugeMetricFamily("gs_hooks_component_ok", "1 while the component's health is ok", labels=["name"])
        for check in doc.get("checks", ()):
            checks.add_metric([str(check["name"])], int(bool(check["ok"])))
        out.append(checks)
    out += _sessions(src)
    out += _listener(src)
    out += [_export(family) for family in _metrics.FAMILIES]
    out += _bans(src)
    out += _gamebase(src)
    return out


def _sessions(src: OpsSources) -> list[Any]:
    from prometheus_client.core import GaugeMetricFamily  # optional: the ``metrics`` extra

    registry = src.registry
    total = GaugeMetricFamily("gs_hooks_sessions", "Live sessions in the registry", value=len(registry))
    conns = GaugeMetricFamily(
        "gs_hooks_server_sessions", "Live sessions (connections) per server id", labels=["server_id"]
    )
    players = GaugeMetricFamily("gs_hooks_server_players", "Logged-in players per server id", labels=["server_id"])
    for sid in sorted(registry.server_ids()):
        conns.add_metric([sid], registry.count_connections(sid))
        players.add_metric([sid], registry.count_players(sid))
    return [total, conns, players]


def _listener(src: OpsSources) -> list[Any]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily  # optional: the ``metrics`` extra

    if src.listener is None:
        return []
    server = src.listener.server
    return [
        GaugeMetricFamily("gs_hooks_http_connections", "Open listener connections", value=server.active_connections),
        CounterMetricFamily("gs_hooks_http_responses", "Responses sent by the listener", value=server.requests_served),
        CounterMetricFamily(
            "gs_hooks_http_refused_connections",
            "Connections refused with 503 at the connection cap or the per-address limit",
            value=server.rejected_connections,
        ),
        CounterMetricFamily(
            "gs_hooks_http_forbidden_connections",
            "Connections refused with 403 at accept (no route's allowlist admits the peer)",
            value=server.forbidden_connections,
        ),
        CounterMetricFamily(
            "gs_hooks_http_accept_failures",
            "Accepts that failed for want of file descriptors or memory (each retried)",
            value=server.accept_failures,
        ),
    ]


def _export(family: _metrics.Tally | _metrics.Timing) -> Any:
    from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily  # optional: the ``metrics`` extra

    if isinstance(family, _metrics.Tally):
        counter = CounterMetricFamily(family.name, family.help, labels=list(family.labels))
        for values, n in sorted(family.totals().items()):
            counter.add_metric(list(values), n)
        return counter
    hist = HistogramMetricFamily(family.name, family.help, labels=list(family.labels))
    bounds = [*(repr(float(b)) for b in family.buckets), "+Inf"]
    for values, (cumulative, total) in sorted(family.snapshot().items()):
        hist.add_metric(list(values), list(zip(bounds, cumulative, strict=True)), total)
    return hist


def _bans(src: OpsSources) -> list[Any]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily  # optional: the ``metrics`` extra

    out: list[Any] = [GaugeMetricFamily("gs_hooks_bans_active", "Bans in force now", value=len(src.book))]
    poller = src.poller
    if poller is not None:
        out += [
            CounterMetricFamily("gs_hooks_ban_polls", "Complete Gamebase ban polls", value=poller.polls),
            CounterMetricFamily("gs_hooks_ban_poll_failures", "Failed Gamebase ban polls", value=poller.failures),
        ]
        watermark = poller.watermark
        if watermark is not None and poller.running:  # a fleet's former leader no longer polls: no lag to show
            out.append(
                GaugeMetricFamily(
                    "gs_hooks_ban_poll_watermark_lag_seconds",
                    "How far behind now the Gamebase ban poll's watermark (end of its last complete window) is",
                    value=max(0.0, src.clock.time() - watermark.timestamp()),
                )
            )
    return out


def _gamebase(src: OpsSources) -> list[Any]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily  # optional: the ``metrics`` extra

    out: list[Any] = []
    verifier = src.verifier()
    if verifier is not None:
        out += [
            CounterMetricFamily(
                "gs_hooks_token_cache_hits", "Token verifications answered from the cache", value=verifier.hits
            ),
            CounterMetricFamily(
                "gs_hooks_token_cache_misses", "Token verifications not in the cache", value=verifier.misses
            ),
            CounterMetricFamily(
                "gs_hooks_token_verifications", "Token verification requests sent to Gamebase", value=verifier.requests
            ),
            GaugeMetricFamily(
                "gs_hooks_token_verifications_in_flight",
                "Token verifications asked of Gamebase and not answered yet",
                value=verifier.in_flight,
            ),
        ]
    watcher = src.maintenance
    if watcher is not None:
        state = GaugeMetricFamily(
            "gs_hooks_maintenance_state", "1 for the maintenance watcher's current state", labels=["state"]
        )
        current = watcher.state.value
        for value in ("none", "announced", "active", "ended"):
            state.add_metric([value], int(value == current))
        out += [
            state,
            CounterMetricFamily("gs_hooks_maintenance_polls", "Maintenance polls answered", value=watcher.polls),
            GaugeMetricFamily(
                "gs_hooks_maintenance_poll_failures",
                "Maintenance polls failed in a row (0 after a success)",
                value=watcher.consecutive_failures,
            ),
        ]
    return out
