"""Metrics are optional: without prometheus_client every metric call is a no-op."""

from __future__ import annotations

import subprocess
import sys


def test_metrics_without_prometheus_client_are_no_ops() -> None:
    code = (
        "import sys; sys.modules['prometheus_client'] = None\n"
        "from gs_hooks.ccu import CcuMetrics\n"
        "m = CcuMetrics()\n"
        "m.sampled('1', 3); m.delivered(100); m.failed('300'); m.backlog(2); m.latency(0.01)\n"
        "print(m.enabled)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_metrics_share_one_family_per_registry() -> None:
    import prometheus_client

    from gs_hooks.ccu import CcuMetrics

    registry = prometheus_client.CollectorRegistry()
    a, b = CcuMetrics(registry), CcuMetrics(registry)  # a second reporter must not raise "Duplicated timeseries"
    a.sampled("1", 4)
    b.sampled("2", 5)
    a.failed("transport")
    b.failed("transport")
    assert a.enabled and b.enabled
    assert registry.get_sample_value("gs_hooks_ccu_users", {"server": "2"}) == 5
    assert registry.get_sample_value("gs_hooks_ccu_samples_failed_total", {"code": "transport"}) == 2


def test_a_new_registry_at_a_freed_registrys_address_gets_its_own_families() -> None:
    """Families are kept per registry object, not per id(): CPython reuses a freed registry's address, and a
    registry allocated there must not be handed the dead one's metric objects (which it would never expose)."""
    import gc

    import prometheus_client

    from gs_hooks.ccu._metrics import CcuMetrics

    seen: set[int] = set()
    reused = 0
    for users in range(300):
        registry = prometheus_client.CollectorRegistry()
        reused += id(registry) in seen
        seen.add(id(registry))
        CcuMetrics(registry).sampled("s1", users)
        assert registry.get_sample_value("gs_hooks_ccu_users", {"server": "s1"}) == users
        del registry
        gc.collect()
    assert reused, "no address was reused: the test did not exercise the case"
