"""The operator's side: probes (``/livez``, ``/readyz``, ``/healthz``, ``/metrics``), the dashboard, and what the
hooks say when they start. It reads the capabilities; none of them imports it."""

from ._dashboard import DASHBOARD_KEY_HEADER, Dashboard
from ._page import render_dashboard
from ._probes import Probes, add_probe_routes
from ._startup import StartFacts, config_warnings, start_warnings, startup_summary
from ._view import DashboardView

__all__ = [
    "DASHBOARD_KEY_HEADER",
    "Dashboard",
    "DashboardView",
    "Probes",
    "StartFacts",
    "add_probe_routes",
    "config_warnings",
    "render_dashboard",
    "start_warnings",
    "startup_summary",
]
