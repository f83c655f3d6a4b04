"""Searching and paging the ban book and the live sessions (the admin API's lists and the dashboard's tables).

Cost: one pass over the bans in force (``BanBook.active_bans``), a filter, then only the page is ordered
(``heapq.nlargest`` of ``offset + limit``), so a page of 50 out of 100,000 bans costs tens of milliseconds
(``bench/dashboard.py``), not a sort and a render of them all.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from ..bans._book import BanBook
from ..bans._model import Ban
from ..sessions._registry import SessionRegistry
from ..sessions._session import Session
from ._admin_protocol import Page

__all__ = ["BanPage", "SessionPage", "ban_json", "find_bans", "find_sessions", "session_json", "soonest_ending"]

_STARTS = attrgetter("starts_at")
_ENDS = attrgetter("ends_at")


@dataclass(frozen=True, slots=True)
class BanPage:
    """One page of the bans in force that match a query, newest start first.

    Attributes:
        total: how many bans match.
        active: how many bans are in force in all.
        bans: the page.
    """

    total: int
    active: int
    bans: list[Ban]


@dataclass(frozen=True, slots=True)
class SessionPage:
    """One page of the live sessions that match a query, oldest connection first."""

    total: int
    sessions: list[Session]


def find_bans(book: BanBook, page: Page, active: list[Ban] | None = None) -> BanPage:
    """The bans in force matching ``page`` (``q``: a substring of the player id, ``player``, ``source``).

    Args:
        book: the ban book.
        page: the query.
        active: ``book.active_bans()`` when the caller has it already.
    """
    bans = book.active_bans() if active is None else active
    count = len(bans)
    if page.player is not None:
        bans = [b for b in bans if b.player_key == page.player]
    if page.source is not None:
        bans = [b for b in bans if b.source == page.source]
    if page.q:
        q = page.q
        bans = [b for b in bans if q in b.player_key]
    end = page.offset + page.limit
    top = heapq.nlargest(end, bans, key=_STARTS) if end < len(bans) else sorted(bans, key=_STARTS, reverse=True)
    return BanPage(total=len(bans), active=count, bans=top[page.offset : end])


def soonest_ending(bans: list[Ban], n: int = 3) -> list[Ban]:
    """The ``n`` bans that end soonest (permanent ones last)."""
    temporary = [b for b in bans if b.ends_at is not None]
    out = heapq.nsmallest(n, temporary, key=_ENDS)
    if len(out) < n:
        out += sorted((b for b in bans if b.ends_at is None), key=attrgetter("player_key"))[: n - len(out)]
    return out


def find_sessions(registry: SessionRegistry, page: Page) -> SessionPage:
    """The live sessions matching ``page`` (``player``: exact, ``server_id``: exact, ``q``: a substring of the
    player id; sessions not logged in match no ``q``)."""
    if page.player is not None:
        sessions: list[Session] = list(registry.sessions_of(page.player))
        if page.server_id is not None:
            sessions = [s for s in sessions if s.server_id == page.server_id]
    elif page.server_id is not None:
        sessions = list(registry.sessions_on(page.server_id))
    else:
        sessions = list(registry)
    if page.q:
        q = page.q
        sessions = [s for s in sessions if s.player_id is not None and q in s.player_id]
    sessions.sort(key=attrgetter("id"))
    return SessionPage(total=len(sessions), sessions=sessions[page.offset : page.offset + page.limit])


def ban_json(ban: Ban) -> dict[str, Any]:
    """A ban as the admin API answers it (dates as ISO 8601 with their offset)."""
    return {
        "player": ban.player_key,
        "source": ban.source,
        "status": ban.status,
        "starts_at": ban.starts_at.isoformat(),
        "ends_at": None if ban.ends_at is None else ban.ends_at.isoformat(),
        "message": ban.message,
    }


def session_json(session: Session) -> dict[str, Any]:
    """A session as the admin API answers it (times as epoch seconds)."""
    remote = session.remote
    return {
        "id": session.id,
        "player": session.player_id,
        "server_id": session.server_id,
        "channel": session.channel,
        "connected_at": session.connected_at,
        "logged_in_at": session.logged_in_at,
        "remote": None if remote is None else f"{remote[0]}:{remote[1]}" if len(remote) > 1 else str(remote[0]),
    }
