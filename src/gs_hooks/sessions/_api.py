"""The game-facing session methods of :class:`~gs_hooks.Hooks`: kicks, binds, the shutdown signal, adapters.

:class:`SessionsApi` is a mixin: :class:`~gs_hooks.Hooks` inherits these methods and provides :attr:`registry`
and :attr:`kicker` (made by the sessions install). Each is a thin call into the registry, the kicker or an
adapter of :mod:`gs_hooks.sessions`.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from ._kicker import Kicker
from ._registry import SessionRegistry
from ._session import Session
from ._streams import track_anyio as _track_anyio
from ._streams import track_asyncio_streams as _track_asyncio_streams
from ._tracking import CLOSE_TIMEOUT_S, ASGIApp
from ._websockets import TrackWebSocketsMiddleware
from ._websockets import track_websockets as _track_websockets

__all__ = ["SessionsApi"]

log = logging.getLogger("gs_hooks")


class SessionsApi:
    """Kick, bind and track sessions (mixed into :class:`~gs_hooks.Hooks`).

    Attributes:
        registry: the live sessions.
        kicker: the kick engine.
    """

    registry: SessionRegistry
    kicker: Kicker

    async def kick(
        self,
        target: Session | str | int,
        reason: str = "manual",
        *,
        message: str = "",
        details: Any = None,
    ) -> int:
        """Disconnect a session, or every session of a player id.

        Each session is removed from the registry first (so a second kick of it is a no-op), then the game's
        ``on_kick`` receives a frozen :class:`KickRequest` and should close the connection
        (``request.session.close()``, or ``await request.session.aclose()``); with no ``on_kick``,
        ``session.close()`` is called. A raising ``on_kick`` is logged, the session stays removed, and the
        connection is closed so no untracked connection is left behind. Bounded by ``kick_watch.grace_s`` (2 s)
        counted from the call: an async ``on_kick`` runs as a task of the hooks and is cancelled if still running
        then, and a connection not gone by then (e.g. a peer that stopped reading) is closed by force; that is
        logged (rate-limited) on ``gs_hooks.kicks``, where every kick is also logged at INFO. This call waits for
        the async callbacks it started, so at most the grace.

        Args:
            target: a :class:`~gs_hooks.Session`, or a player id (every live session of that player; an ``int`` is
                normalised to its decimal string).
            reason: ``ban``, ``maintenance``, ``duplicate_login``, ``manual``...
            message: a human-readable message to show the player.
            details: reason-specific frozen details, passed through in the request.

        Returns:
            The number of sessions kicked (0 when none was live).

        Raises:
            TypeError: ``target`` is neither a session nor a player id.
            ValueError: ``target`` is a string that cannot be a player id (empty, ``/``, dots...).
        """
        return await self.kicker.kick(target, reason, message=message, details=details)

    async def serve_until_signal(
        self, *, kick: bool = True, signals: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)
    ) -> signal.Signals:
        """Wait for SIGINT (Ctrl-C) or SIGTERM (what Docker, Kubernetes and systemd send), then kick every live
        session with reason ``shutdown``, and return (at most the kick grace after the signal: a connection whose
        peer stopped reading is closed by force then).

        Call it inside ``async with hooks:`` and your server's own ``async with``: when it returns, leaving the
        blocks closes your server, then the hooks in order (components flush: the CCU spool, unsaved bans, the
        listener; then the HTTP client and the store close). The handlers are installed for the duration of the
        call (on asyncio and trio, through anyio); a second signal during the shutdown gets the default action.
        Unix only: on a platform without signal handlers (Windows) it waits until cancelled.

        Args:
            kick: kick every live session (reason ``shutdown``, through ``on_kick``) before returning, so the
                server's close does not wait for its players (Python ≥ 3.12's ``Server.wait_closed`` does).
            signals: the signals to wait for.

        Returns:
            The signal received.
        """
        try:
            with anyio.open_signal_receiver(*signals) as received:
                signum: signal.Signals = await anext(received)
        except NotImplementedError:  # no signal handlers on this platform's loop
            await anyio.sleep_forever()
        log.warning("received %s: shutting down (flushing, then closing)", signum.name)
        if kick and len(self.registry):
            # bounded: at most the kick grace for the callbacks, then what is left open is closed by force
            await self.kicker.kick_sessions(tuple(self.registry), "shutdown", "the server is shutting down")
        return signum

    def bind_player(self, session: Session, player_id: str | int) -> list[Session]:
        """Bind a player to a session under the duplicate-login policy.

        Args:
            session: a live session.
            player_id: the player id (an ``int`` is bound as its decimal string).

        Returns:
            Older sessions the policy says to kick (the login flow kicks them with reason ``duplicate_login``).

        Raises:
            DuplicateLoginError: policy ``refuse_newer`` and the player is already logged in.
            TypeError / ValueError: ``player_id`` cannot be a player id; or (ValueError) the session is not live.
        """
        return self.registry.bind_player_nowait(session, player_id)

    def track_streams(
        self,
        handler: Callable[[Any, Any], Awaitable[None]],
        *,
        server_id: str | None = None,
        channel: str = "",
        close_timeout_s: float = CLOSE_TIMEOUT_S,
    ) -> Callable[[Any, Any], Awaitable[None]]:
        """Wrap an ``asyncio.start_server`` client handler so each connection is a tracked session.

        Inside the handler, :func:`gs_hooks.current_session` returns the connection's session;
        ``session.close()`` closes the writer (aborted ``close_timeout_s`` later when the peer does not take the
        queued output). A handler's exception is logged (rate-limited), its connection closed.
        """
        return _track_asyncio_streams(
            self.registry, handler, server_id=server_id, channel=channel, close_timeout_s=close_timeout_s
        )

    def track_anyio(
        self,
        handler: Callable[[Any], Awaitable[None]],
        *,
        server_id: str | None = None,
        channel: str = "",
        close_timeout_s: float = CLOSE_TIMEOUT_S,
    ) -> Callable[[Any], Awaitable[None]]:
        """Wrap an anyio ``Listener.serve`` handler so each connection is a tracked session.

        ``session.close()`` cancels the handler and closes the stream. A handler's exception is logged
        (rate-limited) and its connection closed: it never reaches ``serve``. Works on asyncio and trio.
        """
        return _track_anyio(
            self.registry, handler, server_id=server_id, channel=channel, close_timeout_s=close_timeout_s
        )

    def track_websockets(
        self,
        handler: Callable[[Any], Awaitable[None]],
        *,
        server_id: str | None = None,
        channel: str = "",
        close_timeout_s: float = CLOSE_TIMEOUT_S,
    ) -> Callable[[Any], Awaitable[None]]:
        """Wrap a ``websockets.asyncio.server.serve`` handler (websockets ≥ 13) so each connection is tracked.

        ``session.close()`` starts the close handshake (code 1000, reason ``kicked``) in a task on the loop; the
        connection is aborted when the peer has not completed it ``close_timeout_s`` later. A handler's exception
        is logged (rate-limited) and its connection closed with code 1011.
        """
        return _track_websockets(
            self.registry, handler, server_id=server_id, channel=channel, close_timeout_s=close_timeout_s
        )

    def asgi_middleware(
        self,
        app: ASGIApp,
        *,
        server_id: str | None = None,
        channel: str = "",
        close_timeout_s: float = CLOSE_TIMEOUT_S,
    ) -> TrackWebSocketsMiddleware:
        """Wrap an ASGI app (Starlette, FastAPI...) so each WebSocket connection is a tracked session.

        Returns:
            A :class:`~gs_hooks.TrackWebSocketsMiddleware` around ``app``; HTTP passes through untouched.
        """
        return TrackWebSocketsMiddleware(
            app, registry=self.registry, server_id=server_id, channel=channel, close_timeout_s=close_timeout_s
        )
