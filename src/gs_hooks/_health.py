"""Health reports: what a component says about itself for ``/readyz`` and ``/healthz``.

A component (or the store, or anything :class:`~gs_hooks.Hooks` owns) that can fail while the process lives
implements :class:`HealthReporter`; readiness is the conjunction of the reports. A report's ``error`` is a short
human sentence for an operator and never carries a secret (keys, tokens, bearer values).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import msgspec

__all__ = ["ComponentHealth", "HealthReporter"]


class ComponentHealth(msgspec.Struct, frozen=True, kw_only=True):
    """One component's health.

    Attributes:
        name: the component's name (``ccu``, ``gamebase``, ``store``...).
        ok: True when the component works as configured.
        error: the last error while not ok (no secret), else None.
        since: epoch seconds since when the current state holds (None when unknown).
    """

    name: str
    ok: bool
    error: str | None = None
    since: float | None = None


@runtime_checkable
class HealthReporter(Protocol):
    """Anything that reports its health (components, the store)."""

    def health(self) -> ComponentHealth:
        """The current report; cheap and synchronous (no IO)."""
        ...
