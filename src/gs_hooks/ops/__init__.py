"""The operator's side: probes (``/livez``, ``/readyz``, ``/healthz``, ``/metrics``), the admin API and its CLI
(``gs-hooks admin``), the dashboard, and what the hooks say when they start. It reads the capabilities and acts
only through their public entry points; none of them imports it."""

from ._admin import ADMIN_KEY_HEADER, AdminApi
from ._dashboard import DASHBOARD_KEY_HEADER, Dashboard
from ._page import render_dashboard
from ._probes import Probes, add_probe_routes
from ._startup import StartFacts, config_warnings, start_warnings, startup_summary
from ._view import DashboardView

__all__ = [
    "ADMIN_KEY_HEADER",
    "DASHBOARD_KEY_HEADER",
    "AdminApi",
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
