"""Plugging the embedded listener in: the last component, so it starts after and closes before every other one."""

from __future__ import annotations

from .._config import Config
from .._services import Services
from ._listener import Listener

__all__ = ["install"]


def install(services: Services, config: Config) -> Listener | None:
    """Serve ``services.router`` on ``listener.listen`` (install it after every capability that has a component).

    Args:
        services: the hooks' services.
        config: the configuration (reads ``listener``).

    Returns:
        The listener component, or None when ``listener.listen`` is unset (the routes may still be served by
        ``hooks.asgi_app()``).
    """
    if config.listener.listen is None:
        return None
    listener = Listener(services.router, config.listener)
    services.add_component(listener)
    return listener
