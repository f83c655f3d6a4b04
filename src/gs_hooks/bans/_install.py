"""Plugging the ban book in: the book (enforcing through the kicker), its timer, and the Gamebase ban poller.

The Hive suspension webhook, the book's other platform source, is a Hive route: :mod:`gs_hooks.hive._install`
adds it with this book.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import msgspec

from .._callbacks import call_callback_nowait
from .._config import Config
from .._services import Services
from ..gamebase._client import GamebaseClient
from ._book import BanBook
from ._model import BanEvent, OnBan
from ._poller import BanPoller
from ._timer import BanTimer

__all__ = ["Bans", "install"]


class Bans(msgspec.Struct, frozen=True, kw_only=True):
    """What the bans install made.

    Attributes:
        book: the ban book (``hooks.bans``).
        timer: the book's timer component (it does the book's queued work: always there).
        poller: the Gamebase ban poller, when Gamebase is configured with ``gamebase.ban_poll_s`` > 0.
    """

    book: BanBook
    timer: BanTimer
    poller: BanPoller | None = None


def install(
    services: Services,
    config: Config,
    *,
    on_ban: OnBan | None,
    forget_token: Callable[[str], object] | None = None,
    gamebase: GamebaseClient | None = None,
) -> Bans:
    """Make the ban book (always: ``hooks.ban`` and the login gate use it) and its configured sources.

    The book kicks through ``services.kicker``. Its timer (queued enforcement, bans that start later, dropping
    ended ones, retried writes, purges) always runs; it reads the store at start when there is one already or the
    Hive webhook (or fleet mode) may bring bans (no file is made for a process that bans nobody). In fleet mode the
    poller is left to the fleet's install, which runs it on the leader only.

    Args:
        services: the hooks' services (after the sessions install).
        config: the configuration (reads ``hive``, ``gamebase`` and ``state_path``).
        on_ban: the game's callback, called when a ban comes into force.
        forget_token: drops a banned player's cached token verifications (the Gamebase verifier's ``forget``).
        gamebase: the Gamebase client the ban poller reads (None: no poller).

    Returns:
        The book, its timer, and the poller when it runs.
    """
    book = BanBook(
        lambda: services.store,
        clock=services.clock,
        kick=services.kicker.kick_player_nowait,
        on_ban=None if on_ban is None else _deliver(on_ban),
        forget_token=forget_token,
    )
    g, hive = config.gamebase, config.hive
    # The timer always runs: it does the book's queued work. It reads the store at start when there is one
    # already, or when the Hive webhook may bring bans (no file is made for a process that bans nobody).
    existing = config.state_path == ":memory:" or Path(config.state_path).expanduser().exists()
    timer = BanTimer(book, load_at_start=existing or hive.auth_key is not None or config.fleet.enabled)
    services.add_component(timer)
    poller = None
    if gamebase is not None and g.ban_poll_s > 0:
        poller = BanPoller(
            gamebase,
            book,
            store=lambda: services.store,
            clock=services.clock,
            poll_s=g.ban_poll_s,
            overlap_s=g.ban_overlap_s,
            page_size=g.ban_page_size,
            player_key_format=hive.player_key_format,
            backoff_max_s=g.poll_backoff_max_s,
        )
        if not config.fleet.enabled:  # in fleet mode it runs on the leader only: the fleet's install runs it
            services.add_component(poller)
    return Bans(book=book, timer=timer, poller=poller)


def _deliver(on_ban: OnBan) -> Callable[[BanEvent], Awaitable[bool] | None]:
    """``on_ban`` as the book calls it: answered synchronously while the callback is sync (no coroutine per ban),
    its exception logged."""

    def deliver(event: BanEvent) -> Awaitable[bool] | None:
        done = call_callback_nowait(on_ban, event, what="on_ban")
        return None if isinstance(done, bool) else done

    return deliver
