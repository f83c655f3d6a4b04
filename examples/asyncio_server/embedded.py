"""The embedded default: with no platform URL configured, point every component at an in-process sandbox.

Only variables the operator did not set are filled in, so e.g. ``GS_HOOKS_SERVER_ID`` still applies.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PLATFORM_VARS = ("GS_HOOKS_CCU_URL", "GS_HOOKS_GAMEBASE_URL")


def uses_real_platforms(env: Mapping[str, str]) -> bool:
    """True when the operator configured a platform URL (then no sandbox is started)."""
    return any(env.get(name) for name in PLATFORM_VARS)


def embedded_environment(env: Mapping[str, str], sandbox: Any, *, demo: bool) -> dict[str, str]:
    """``env`` plus GS_HOOKS_* settings pointing at ``sandbox`` (values already set win)."""
    urls = sandbox.urls()
    state_dir = Path(tempfile.mkdtemp(prefix="gs_hooks_example_"))
    defaults = {
        "GS_HOOKS_STATE": str(state_dir / "state.sqlite3"),
        "GS_HOOKS_GAME": sandbox.game_keys[0],
        "GS_HOOKS_SERVER_ID": "demo1",
        "GS_HOOKS_CCU_URL": urls["ccu_url"],
        "GS_HOOKS_CCU_PERIOD_S": "60" if demo else "120",
        "GS_HOOKS_GAMEBASE_URL": urls["gamebase_url"],
        "GS_HOOKS_GAMEBASE_APP_ID": sandbox.gamebase.app_id,
        "GS_HOOKS_GAMEBASE_SECRET_KEY": sandbox.gamebase_secret,
        "GS_HOOKS_LISTEN": "127.0.0.1:0",
        "GS_HOOKS_HIVE_AUTH_KEY": secrets.token_urlsafe(24),
        "GS_HOOKS_HIVE_GAME_INDEX": "539",
        "GS_HOOKS_GAMEPOT_PROJECT_ID": sandbox.gamepot_project_id,
        "GS_HOOKS_GAMEPOT_API_KEY": sandbox.gamepot_api_key,
        "GS_HOOKS_GAMEPOT_URL": urls["gamepot_url"],
        "GS_HOOKS_DASHBOARD": "1",
        "GS_HOOKS_ADMIN_KEY": secrets.token_urlsafe(24),
        "GS_HOOKS_SANDBOX_URL": sandbox.url,
    }
    if demo:
        defaults |= {
            "GS_HOOKS_GAMEBASE_MAINTENANCE_POLL_S": "1",
            "GS_HOOKS_GAMEBASE_MAINTENANCE_WARN_S": "6,3",
            "GS_HOOKS_GAMEBASE_BAN_POLL_S": "2",
            "GS_HOOKS_CCU_BACKOFF_BASE_S": "1",
        }
    out = dict(env)
    for key, value in defaults.items():
        if not out.get(key):
            out[key] = value
    return out
