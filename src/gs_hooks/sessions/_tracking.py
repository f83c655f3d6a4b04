"""What every connection-tracking adapter shares: the current session, the failure log, the kick close codes, the
close bound and the transport abort.

See :mod:`gs_hooks.sessions._streams` (asyncio streams, anyio) and :mod:`gs_hooks.sessions._websockets`
(websockets, ASGI) for the adapters, and the contract they all keep.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import socket
import struct
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from typing import Any

import sniffio

from .._ratelog import RateLimitedLog
from ._session import Remote, Session

__all__ = [
    "CLOSE_TIMEOUT_S",
    "CURRENT",
    "FAILED_CLOSE_CODE",
    "KICK_CLOSE_CODE",
    "KICK_CLOSE_REASON",
    "ASGIApp",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "abort_transport",
    "current_session",
    "handler_name",
    "log_failure",
    "new_failure_log",
    "remote_of",
    "spawn_close",
]

KICK_CLOSE_CODE = 1000
"""WebSocket close code of ``session.close()`` (normal closure, so handlers iterating messages end cleanly)."""
KICK_CLOSE_REASON = "kicked"
"""WebSocket close reason of ``session.close()``."""
FAILED_CLOSE_CODE = 1011
"""WebSocket close code when the game's handler raised (internal error), as the servers themselves use."""
CLOSE_TIMEOUT_S = 2.0
"""Seconds a close may wait for the peer (to take queued output, to answer a close handshake) before the adapter
aborts the connection: the bound of ``session.aclose()``, and of a ``session.close()`` with output queued."""

_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends a reset and drops the unsent data

log = logging.getLogger("gs_hooks.sessions")

CURRENT: contextvars.ContextVar[Session | None] = contextvars.ContextVar("gs_hooks_session", default=None)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def current_session() -> Session | None:
    """The session of the connection the calling task is handling (inside a tracked handler), else None."""
    return CURRENT.get()


def handler_name(handler: object) -> str:
    return getattr(handler, "__qualname__", None) or repr(handler)


def remote_of(peer: object) -> Remote | None:
    if type(peer) is tuple:
        return peer
    if isinstance(peer, tuple | list) and len(peer) >= 2:  # ASGI servers may give a list
        return tuple(peer)
    return None


def new_failure_log() -> RateLimitedLog:
    """The rate-limited log of one adapter instance's failing handlers (a buggy handler under load storms)."""
    return RateLimitedLog(log, interval_s=10.0)


def log_failure(failures: RateLimitedLog, handler: object, session: Session, exc: BaseException) -> None:
    failures.log(
        logging.ERROR,
        (handler_name(handler), type(exc)),
        "connection handler %s failed (%r); closed the connection",
        handler_name(handler),
        session,
        exc_info=exc,
    )


def abort_transport(transport: Any) -> None:
    """Close an asyncio transport now: drop what the peer has not taken and reset the TCP connection (so the kernel
    does not keep sending it either). Never raises."""
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None and getattr(sock, "family", None) in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(Exception):  # already closed, or a socket object without options
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    with contextlib.suppress(Exception):
        transport.abort()


_CLOSING: set[asyncio.Task[None]] = set()  # close handshakes running as asyncio tasks (strong references)


def spawn_close(close: Callable[[], Coroutine[Any, Any, None]]) -> bool:
    """Run ``close()`` as a task of the running loop, from sync code: an asyncio task, or a trio system task.

    Returns:
        False when no loop that can spawn from sync code is running here (the caller falls back).
    """
    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return False
    if library == "asyncio":
        task = asyncio.get_running_loop().create_task(close())
        _CLOSING.add(task)
        task.add_done_callback(_CLOSING.discard)
        return True
    if library == "trio":
        import trio  # optional: present whenever a trio loop runs

        trio.lowlevel.spawn_system_task(close)  # close() never raises (a system task's error ends the run)
        return True
    return False
