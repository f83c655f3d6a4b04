"""Admission: which accepted connections are served, and accepting on anyio's listener (TLS, trio).

When a connection is accepted and before anything is read (:meth:`Gate.admit`): a peer that every route's
allowlist excludes is answered 403 and closed without being counted; at the per-address limit, or at the cap, the
connection idle between requests the longest (of that address, at its limit) is closed to make room, and only
when there is none the answer is 503. Peers inside some route's allowlist may open ``reserved_connections``
beyond the cap, so a flood from elsewhere cannot lock them out.

Accepting is our own loop (here for anyio's listener, in :mod:`._asyncio_path` for asyncio's sockets), so that
running out of file descriptors (or memory) costs one rate-limited log line per interval and a short back-off
(:class:`AcceptRetry`), instead of asyncio's record per failed accept (thousands a second) or anyio's listener
failing; the same rate limit applies to the refusals a flood causes.
"""

from __future__ import annotations

import errno
import logging
import os
import ssl
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import anyio
import anyio.abc
from anyio.streams.tls import TLSStream

from .._ratelog import RateLimitedLog
from ._app import Router
from ._connection import fmt_peer
from ._head import refusal
from ._limits import HttpLimits, ServerCounters
from ._loop import close_stream
from ._policy import FORBIDDEN

__all__ = ["AcceptRetry", "Gate", "accept_streams", "errno_of"]

T = TypeVar("T")
Serve = Callable[[anyio.abc.ByteStream, tuple[str, int] | None], Coroutine[Any, Any, None]]

# accept() failing for want of descriptors or memory: back off (doubling up to 1 s) and retry, one log line per 10 s.
_ACCEPT_STARVED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# Errors of one pending connection that Linux reports from accept() (accept(2)): skip it and go on.
_ACCEPT_SKIP = frozenset(
    getattr(errno, name)
    for name in (
        *("ECONNABORTED", "EPROTO", "EPERM", "ENETDOWN", "ENOPROTOOPT", "EHOSTDOWN", "ENONET"),
        *("EHOSTUNREACH", "EOPNOTSUPP", "ENETUNREACH", "ECONNRESET", "EAGAIN"),
    )
    if hasattr(errno, name)
)
_ACCEPT_BACKOFF_S = (0.05, 1.0)
_FORBIDDEN_ANSWER = refusal(403, FORBIDDEN)
_BUSY_ANSWERS: dict[str, bytes] = {}


def _busy_answer(message: str) -> bytes:
    answer = _BUSY_ANSWERS.get(message)
    if answer is None:
        answer = _BUSY_ANSWERS[message] = refusal(503, message, ("retry-after", "1"))
    return answer


def errno_of(exc: BaseException) -> int | None:
    """The errno of an OSError, or of the OSError behind an anyio error (trio's accept wraps it)."""
    cause = exc if isinstance(exc, OSError) else exc.__cause__
    return cause.errno if isinstance(cause, OSError) else None


class Gate:
    """Counts connections in and out, and says which ones are refused.

    Args:
        router: the routes (their allowlists decide who may connect at all, and who may use the reserve).
        limits: the caps.
        counters: the server's counters (connections in, refusals, failed accepts; ``draining`` refuses all).
        log: the server's rate-limited log.
        url: the server's URL, for log lines.
        evict: closes the connection idle between requests the longest (of the given address, else of any) and
            releases its slot; False when there is none (see :meth:`~._loop.Connections.evict_idle`).

    Attributes:
        limits: the caps.
        refusing: refusals being answered on the task path (TLS, trio).
    """

    def __init__(
        self,
        router: Router,
        limits: HttpLimits,
        counters: ServerCounters,
        log: RateLimitedLog,
        url: Callable[[], str],
        evict: Callable[[str | None], bool] | None = None,
    ) -> None:
        self._router = router
        self._evict = evict
        self.limits = limits
        self._counters = counters
        self._log = log
        self._url = url
        self._per_address: dict[str, int] = {}
        self.refusing = 0

    def admit(self, client: tuple[str, int] | None) -> bytes | None:
        """Count a new connection in, or say no: the answer to send (then close) when it is refused."""
        limits = self.limits
        counters = self._counters
        if counters.draining:
            return _busy_answer("shutting down; retry later")
        admitted, allowlisted = self._router.screen(client)
        if not admitted:
            counters.forbidden_connections += 1
            self._log.log(
                logging.INFO,
                "forbidden",
                "refused a connection from %s (403): no route allows this address",
                fmt_peer(client),
            )
            return _FORBIDDEN_ANSWER
        host = client[0] if client else ""
        count = self._per_address.get(host, 0)
        if count >= limits.max_connections_per_address and self._evict is not None and self._evict(host):
            count = self._per_address.get(host, 0)
        if count >= limits.max_connections_per_address:
            counters.rejected_connections += 1
            self._log.log(
                logging.WARNING,
                "per-address",
                "%s holds %d connections, the per-address limit; refusing more (503)",
                fmt_peer(client),
                count,
            )
            return _busy_answer("too many connections from this address; retry later")
        cap = limits.max_connections + (limits.reserved_connections if allowlisted else 0)
        if counters.active_connections >= cap and self._evict is not None:
            self._evict(None)
        if counters.active_connections >= cap:
            counters.rejected_connections += 1
            self._log.log(
                logging.WARNING,
                ("cap", allowlisted),
                "connection cap %d reached; refusing new connections (503, %d so far)",
                cap,
                counters.rejected_connections,
            )
            return _busy_answer("too many connections; retry later")
        counters.active_connections += 1
        self._per_address[host] = count + 1
        return None

    def release(self, client: tuple[str, int] | None) -> None:
        """Count an admitted connection out."""
        self._counters.active_connections -= 1
        host = client[0] if client else ""
        count = self._per_address.pop(host, 1) - 1
        if count > 0:
            self._per_address[host] = count

    def accept_failed(self, exc: BaseException) -> bool:
        """Whether a failed accept is to be retried (True: one pending connection's error, or starved) or raised."""
        code = errno_of(exc)
        if code in _ACCEPT_SKIP:
            return True
        if code is None or code not in _ACCEPT_STARVED:
            return False
        self._counters.accept_failures += 1
        self._log.log(
            logging.ERROR,
            ("accept", code),
            "listener on %s cannot accept connections: %s; retrying (pending connections wait in the backlog)",
            self._url(),
            os.strerror(code),
        )
        return True


class AcceptRetry:
    """One accept loop's back-off: doubling from 50 ms to 1 s while accept() is starved, reset by a success."""

    def __init__(self, gate: Gate) -> None:
        self._gate = gate
        self._delay = _ACCEPT_BACKOFF_S[0]

    async def next(self, accept: Callable[[], Awaitable[T]], errors: tuple[type[Exception], ...]) -> T:
        """The next accepted connection: ``accept()`` again after a pending connection's error, and after the
        back-off while starved; any other error is raised."""
        while True:
            try:
                accepted = await accept()
            except errors as exc:
                if not self._gate.accept_failed(exc):
                    raise
                if errno_of(exc) in _ACCEPT_STARVED:
                    await anyio.sleep(self._delay)
                    self._delay = min(self._delay * 2, _ACCEPT_BACKOFF_S[1])
                continue
            self._delay = _ACCEPT_BACKOFF_S[0]
            return accepted


async def accept_streams(
    listener: anyio.abc.SocketListener,
    gate: Gate,
    serve: Serve,
    tg: anyio.abc.TaskGroup,
    ssl_context: ssl.SSLContext | None,
) -> None:
    """Accept through anyio's listener (TLS, trio): admitted connections are served, refusals answered."""
    retry = AcceptRetry(gate)
    while True:
        stream = await retry.next(listener.accept, (OSError, anyio.BrokenResourceError))
        client = _peer(stream)
        answer = gate.admit(client)
        if answer is None:
            tg.start_soon(serve, stream, client)
        elif gate.refusing < gate.limits.max_connections:
            tg.start_soon(_refuse, gate, stream, answer, ssl_context)
        else:  # too many refusals in progress: close without an answer
            await close_stream(stream)


async def _refuse(gate: Gate, stream: anyio.abc.ByteStream, answer: bytes, ssl_context: ssl.SSLContext | None) -> None:
    """Send a refusal without reading the request (one second at most, handshake included), then close."""
    gate.refusing += 1
    try:
        with anyio.move_on_after(1):
            if ssl_context is not None:
                stream = await TLSStream.wrap(
                    stream, server_side=True, ssl_context=ssl_context, standard_compatible=False
                )
            await stream.send(answer)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, ssl.SSLError, OSError):
        pass
    finally:
        gate.refusing -= 1
        await close_stream(stream)


def _peer(stream: anyio.abc.ByteStream) -> tuple[str, int] | None:
    try:
        addr = stream.extra(anyio.abc.SocketAttribute.remote_address)
    except anyio.TypedAttributeLookupError:
        return None
    if isinstance(addr, tuple) and len(addr) >= 2:
        return (str(addr[0]), int(addr[1]))
    return None
