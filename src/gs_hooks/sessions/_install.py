"""Plugging the sessions capability in: the registry, the kick engine and its safety net (the first install)."""

from __future__ import annotations

from .._config import Config
from .._services import Services
from ._kicker import Kicker, OnKick
from ._kicks import KickWatch
from ._registry import SessionRegistry

__all__ = ["install"]


def install(services: Services, config: Config, *, on_kick: OnKick | None) -> Kicker:
    """Make the session registry (``config.sessions``) and the kicker, and provide both to the later installs.

    Args:
        services: the hooks' services.
        config: the configuration (reads ``sessions``).
        on_kick: the game's kick callback (None: kicks close the connection).

    Returns:
        The kicker (``kicker.registry``: the registry; ``kicker.watch``: the safety net).
    """
    registry = SessionRegistry(
        default_server_id=config.sessions.server_id,
        duplicate_login=config.sessions.duplicate_login,
        time=services.clock.time,
    )
    kicker = Kicker(registry, KickWatch(services.clock, spawn=services.spawn), on_kick=on_kick)
    services.provide_sessions(registry, kicker)
    return kicker
