"""Plugging Hive's received payloads in: the suspension webhook (into the ban book) and the web-store profile."""

from __future__ import annotations

import msgspec

from .._config import Config
from .._services import Services
from ..bans._book import BanBook
from ._handlers import SuspensionWebhook, WebstoreEndpoint, WebstoreProfileCallback, register_hive_routes

__all__ = ["Hive", "install"]


class Hive(msgspec.Struct, frozen=True, kw_only=True):
    """The Hive routes the install added (None: not configured).

    Attributes:
        webhook: the suspension webhook (``hive.auth_key`` and ``hive.game_index`` set).
        webstore: the web-store profile route (``hive.webstore_enabled`` and a ``webstore_profile`` callback).
    """

    webhook: SuspensionWebhook | None = None
    webstore: WebstoreEndpoint | None = None


def install(
    services: Services, config: Config, *, book: BanBook, webstore_profile: WebstoreProfileCallback | None
) -> Hive:
    """Add the configured Hive routes to ``services.router``.

    Args:
        services: the hooks' services.
        config: the configuration (reads ``hive`` and the listener's allowlists).
        book: the ban book the webhook records suspensions in.
        webstore_profile: the game's web-store profile callback (None: the route is off).

    Returns:
        The routes' handlers.
    """
    webhook, webstore = register_hive_routes(
        services.router, config, book=book, clock=services.clock, webstore_profile=webstore_profile
    )
    return Hive(webhook=webhook, webstore=webstore)
