"""One live connection as the registry holds it: :class:`Session`, its :class:`Connection`, and the events.

A :class:`Session` is a ``msgspec.Struct`` with ``gc=False``: no per-object ``__dict__``, no GC header, never
visited by the cyclic collector (see :mod:`gs_hooks.sessions._registry` for why that matters at a million
sessions). Session ids come from one process-wide counter: an id is never reused.
"""

from __future__ import annotations

import itertools
import time as _time_module
from typing import Any, Literal, Protocol

import msgspec

__all__ = ["Connection", "Remote", "Session", "SessionEvent", "next_session_id"]


class Connection(Protocol):
    """An adapter's handle on one connection: what :meth:`Session.close` and :meth:`Session.aclose` use.

    The same contract on every adapter (asyncio streams, anyio, websockets, ASGI): :meth:`close` is a plain
    call, usable from sync and async code, that starts closing and returns at once; :meth:`aclose` returns once
    the connection is gone, waiting a bounded time (then aborting it); :attr:`closing` is True only once the
    connection is gone. A custom adapter passes its own object with these three members to
    :meth:`SessionRegistry.open_nowait`; it may add ``abort()`` (close now, dropping the output the peer has not
    taken), which the kick safety net calls to force a connection closed (``close()`` otherwise).
    """

    @property
    def closing(self) -> bool:
        """True once the connection is gone: closed with nothing left to send, or lost. A close that waits for a
        peer to take queued output (a peer that stopped reading) is not gone yet."""
        ...

    def close(self) -> None:
        """Start closing the connection and return at once. Idempotent; never raises, never blocks."""
        ...

    async def aclose(self) -> None:
        """Close the connection (as :meth:`close`) and return once it is gone; bounded: a connection whose peer
        does not take what is queued is aborted after the adapter's ``close_timeout_s``."""
        ...


Remote = tuple[Any, ...]
"""The peer address as the transport reports it: ``(host, port)`` (IPv6 may add flow info and scope id)."""

next_session_id = itertools.count(1).__next__
"""The next session id (process-wide, never reused)."""


class Session(msgspec.Struct, gc=False, weakref=False, eq=False):
    """One live connection.

    Sessions are created by :meth:`SessionRegistry.open_nowait` (adapters do it for you), never directly.
    Equality is identity.

    Attributes:
        server_id: the server id the session counts towards.
        channel: game channel (free text, "" when unused).
        remote: peer address as the transport reports it, ``(host, port, ...)``, when known.
        connection: the adapter's handle on the connection (see :class:`Connection`), None for a session
            opened without one; use :meth:`close` / :meth:`aclose` rather than calling it directly.
        id: unique session id (never reused within the process).
        connected_at: epoch seconds of the connection.
        player_id: the player bound by login, None before.
        logged_in_at: epoch seconds of the login, None before.
        attrs: the game's own attributes; None until first set (see :meth:`set_attr`).
    """

    server_id: str
    channel: str = ""
    remote: Remote | None = None
    connection: Connection | None = None
    # Filled in C by msgspec when not given: the registry's fast path on the system clock passes neither.
    id: int = msgspec.field(default_factory=next_session_id)
    connected_at: float = msgspec.field(default_factory=_time_module.time)
    player_id: str | None = None
    logged_in_at: float | None = None
    attrs: dict[str, Any] | None = None

    def close(self) -> None:
        """Close this session's connection: starts the close and returns at once, from sync or async code.

        The same on every adapter: asyncio streams close the writer, anyio cancels the handler and closes the
        stream, websockets and ASGI start the close handshake (code 1000, reason ``kicked``) on the running
        loop. Idempotent; a no-op for a session without a connection. The session leaves the registry when the
        connection's handler ends (a kick has removed it already).
        """
        connection = self.connection
        if connection is not None:
            connection.close()

    async def aclose(self) -> None:
        """Close this session's connection (as :meth:`close`) and return once it is gone.

        Bounded: when the peer does not take the queued output (it stopped reading) or does not answer a close
        handshake, the adapter aborts the connection after its ``close_timeout_s`` (2 s by default).
        """
        connection = self.connection
        if connection is not None:
            await connection.aclose()

    def set_attr(self, key: str, value: Any) -> None:
        """Set one of the game's attributes on this session (creates :attr:`attrs` on first use)."""
        attrs = self.attrs
        if attrs is None:
            attrs = self.attrs = {}
        attrs[key] = value

    def get_attr(self, key: str, default: Any = None) -> Any:
        """One of the game's attributes, or ``default``."""
        attrs = self.attrs
        return default if attrs is None else attrs.get(key, default)

    def __repr__(self) -> str:
        return (
            f"Session(id={self.id}, server_id={self.server_id!r}, player_id={self.player_id!r}, "
            f"channel={self.channel!r}, remote={self.remote!r})"
        )


class SessionEvent(msgspec.Struct, frozen=True):
    """An open/login/close event for observers.

    Attributes:
        kind: ``open``, ``login`` or ``close``.
        session: the session concerned.
    """

    kind: Literal["open", "login", "close"]
    session: Session
