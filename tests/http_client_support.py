"""The hooks the HTTP client tests run platform calls through (``test_http_client``, ``test_fast_http``)."""

from __future__ import annotations

import gs_hooks
from gs_hooks import GamebaseConfig, Secret
from gs_hooks.sandbox import Sandbox


def verify_only(sb: Sandbox) -> gs_hooks.Config:
    """Hooks that only verify tokens against the sandbox's Gamebase (no polls)."""
    return gs_hooks.Config(
        state_path=":memory:",
        gamebase=GamebaseConfig(
            url=sb.url,
            app_id=sb.gamebase_app_id,
            secret_key=Secret(sb.gamebase_secret),
            maintenance_poll_s=0,
            ban_poll_s=0,
        ),
    )
