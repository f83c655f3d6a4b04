"""Prometheus metrics of the CCU reporter, when ``prometheus_client`` is installed (the ``metrics`` extra).

Without it every method is a no-op. Metric objects are created once per collector registry (prometheus refuses
duplicate names), so several reporters in one process share them.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

__all__ = ["CcuMetrics"]

_lock = threading.Lock()
# Keyed by the registry object itself, weakly: an id() could be reused by a later registry once one is freed, which
# would hand it metric objects registered elsewhere.
_by_registry: weakref.WeakKeyDictionary[Any, tuple[Any, Any, Any, Any, Any]] = weakref.WeakKeyDictionary()


def _families(registry: Any) -> tuple[Any, Any, Any, Any, Any] | None:
    try:
        import prometheus_client
    except ImportError:
        return None
    reg = registry if registry is not None else prometheus_client.REGISTRY
    with _lock:
        found = _by_registry.get(reg)
        if found is None:
            found = (
                prometheus_client.Gauge(
                    "gs_hooks_ccu_users", "CCU of the latest sample, per server id", ["server"], registry=reg
                ),
                prometheus_client.Counter(
                    "gs_hooks_ccu_samples_delivered",
                    "CCU samples the collector confirmed, by result code (100 saved, 101 duplicate)",
                    ["code"],
                    registry=reg,
                ),
                prometheus_client.Counter(
                    "gs_hooks_ccu_samples_failed",
                    "CCU sends that failed, by result code (transport, http_5xx, unreadable, or the code)",
                    ["code"],
                    registry=reg,
                ),
                prometheus_client.Gauge(
                    "gs_hooks_ccu_backlog_depth", "CCU samples spooled and not yet confirmed", registry=reg
                ),
                prometheus_client.Histogram(
                    "gs_hooks_ccu_send_seconds",
                    "Latency of one CCU POST",
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
                    registry=reg,
                ),
            )
            _by_registry[reg] = found
        return found


class CcuMetrics:
    """The reporter's metrics (no-ops without ``prometheus_client``).

    Args:
        registry: a ``prometheus_client.CollectorRegistry`` (default: the global one).
    """

    def __init__(self, registry: Any = None) -> None:
        families = _families(registry)
        self.enabled = families is not None
        if families is not None:
            self._users, self._delivered, self._failed, self._backlog, self._latency = families

    def sampled(self, server: str, users: int) -> None:
        """A sample was taken."""
        if self.enabled:
            self._users.labels(server).set(users)

    def delivered(self, code: int) -> None:
        """The collector confirmed a sample."""
        if self.enabled:
            self._delivered.labels(str(code)).inc()

    def failed(self, code: str) -> None:
        """A send failed (retryable or refused)."""
        if self.enabled:
            self._failed.labels(code).inc()

    def backlog(self, depth: int) -> None:
        """The spool's pending count."""
        if self.enabled:
            self._backlog.set(depth)

    def latency(self, seconds: float) -> None:
        """One POST's duration."""
        if self.enabled:
            self._latency.observe(seconds)
