"""The library's own HTTP/1.1 client for the platform calls on asyncio: :class:`FastHttpClient`.

Why: the platform calls run on the game's loop, and the client's CPU per request is the bulk of a token
verification's. Measured on one sandbox (16 concurrent keep-alive GETs of the Gamebase token URL), a plain aiohttp
session costs ~90 µs of client CPU per request, httpx ~1,060, and an ``asyncio.Protocol`` with httptools' parser
~30: the shape this module keeps, with what a product needs around it (a bounded pool, deadlines, checks).

Strategy: a request parses its URL's origin once (cached), checks and serializes its head, takes a connection
(:class:`~gs_hooks._fast_http_conn.Connection`) from the origin's idle stack (last in, first out) or opens one
within ``max_connections`` (or waits for one, first come first served), writes the request and awaits the
connection's future. One ``loop.call_at`` timer per request holds the whole deadline (connect, send, answer): it
fails the awaited future and closes the connection. A connection goes back to the pool only after a complete
answer that keeps it alive; a request that finds a reused connection closed by the server before any answer byte
is sent again once on a new connection when its method is idempotent (GET, PUT, DELETE). Every error is an
:class:`~gs_hooks.HttpTransportError` that chains nothing and names no URL.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import re
import ssl
import zlib
from collections import deque
from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit

from multidict import CIMultiDict

from ._fast_http_conn import MAX_BODY_BYTES, Answer, Connection, ConnectionClosedError, RemoteProtocolError
from ._http_base import DEFAULT_MAX_CONNECTIONS, HttpAnswer, HttpClient, transport_error

__all__ = ["DEFAULT_KEEPALIVE_S", "FastHttpClient"]

DEFAULT_KEEPALIVE_S: Final = 15.0
"""An idle connection older than this is closed instead of reused (aiohttp's default)."""

try:
    _VERSION = importlib.metadata.version("gs_hooks")
except importlib.metadata.PackageNotFoundError:  # a source tree that was not installed
    _VERSION = "0"
_USER_AGENT: Final = f"User-Agent: gs_hooks/{_VERSION}\r\n"

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_TARGET = re.compile(r"[^\x21-\x7e]")  # already percent-encoded: visible ASCII only
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # control characters (a TAB is allowed)
_BAD_AUTHORITY = re.compile(r"[^\x21-\x7e]|[/?#\\]")  # checked before urlsplit, which drops CR, LF and TAB
_OURS = frozenset({"host", "content-length", "transfer-encoding"})
_IDEMPOTENT = frozenset({"GET", "PUT", "DELETE"})
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
_CACHE_MAX = 256


class _Origin:
    __slots__ = ("host", "host_line", "key", "port", "tls")

    def __init__(self, key: str, host: str, port: int, tls: bool, host_line: str) -> None:
        self.key = key
        self.host = host
        self.port = port
        self.tls = tls
        self.host_line = host_line


def _parse_origin(key: str) -> _Origin:
    if _BAD_AUTHORITY.search(key[key.find("://") + 3 :]):
        raise ValueError("the URL's host part has whitespace, a control or a non-ASCII character")
    parts = urlsplit(key)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"unsupported URL scheme {scheme[:10]!r} (http or https)")
    if parts.username is not None or parts.password is not None:
        raise ValueError("credentials in the URL are not supported")
    host = parts.hostname
    if not host:
        raise ValueError("the URL has no host")
    default = 443 if scheme == "https" else 80
    port = parts.port or default
    shown = f"[{host}]" if ":" in host else host
    return _Origin(key, host, port, scheme == "https", f"Host: {shown}{'' if port == default else f':{port}'}\r\n")


class _Call:
    """One request's moving parts, for its deadline timer."""

    __slots__ = ("conn", "deadline", "expired", "fut")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.fut: asyncio.Future[Answer] | asyncio.Future[Connection | None] | None = None
        self.conn: Connection | None = None
        self.expired = False


def _expire(call: _Call) -> None:
    call.expired = True
    fut = call.fut
    if fut is not None and not fut.done():
        fut.set_exception(TimeoutError("no complete answer before the deadline"))
    if call.conn is not None:
        call.conn.close()


class FastHttpClient(HttpClient):
    """:class:`~gs_hooks.HttpClient` on ``asyncio.Protocol`` and httptools: HTTP/1.1 keep-alive, asyncio only
    (uvloop's loop included), no proxies, no redirects followed.

    The URL is sent as given (already percent-encoded); no ``Accept-Encoding`` is sent, and a gzip or deflate
    answer is still decoded. An answer's head may take 64 KiB, its body 16 MiB (decoded too): past either, or for
    a malformed or cut-short answer, the request raises. ``HEAD`` is not supported.

    Args:
        max_connections: connections open at most (all hosts together); requests beyond wait, first come first
            served.
        keepalive_s: an idle connection older than this is closed instead of reused.
        ssl_context: the TLS settings of ``https`` URLs (default: ``ssl.create_default_context()``).
    """

    __slots__ = (
        "_closed",
        "_conns",
        "_gen",
        "_idle",
        "_loop",
        "_names",
        "_origins",
        "_ssl",
        "_used",
        "_waiters",
        "keepalive_s",
        "max_connections",
    )

    def __init__(
        self,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        keepalive_s: float = DEFAULT_KEEPALIVE_S,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.max_connections = max_connections
        self.keepalive_s = keepalive_s
        self._ssl = ssl_context
        self._origins: dict[str, _Origin] = {}
        self._names: dict[str, str] = {}  # header names already checked -> lower case
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._gen = 0
        self._reset()

    def _reset(self) -> None:
        self._gen += 1
        self._idle: dict[str, list[Connection]] = {}
        self._conns: set[Connection] = set()
        self._used = 0  # connections open or being opened
        self._waiters: deque[tuple[str, asyncio.Future[Connection | None]]] = deque()

    # -- the request -------------------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        timeout_s: float,
    ) -> HttpAnswer:
        """See :meth:`gs_hooks.HttpClient.request`."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._reset()  # another loop's connections cannot be used (nor closed) here
        self._closed = False
        call = _Call(loop.time() + timeout_s)
        timer = loop.call_at(call.deadline, _expire, call)
        try:
            origin, payload = self._prepare(method, url, headers, content)
            status, raw, body = await self._send(loop, origin, method, payload, call)
            return _answer(status, raw, body)
        except (OSError, ValueError, RemoteProtocolError) as exc:  # TimeoutError is an OSError
            raise transport_error(exc) from None
        finally:
            timer.cancel()

    def _prepare(
        self, method: str, url: str, headers: Mapping[str, str] | None, content: bytes | None
    ) -> tuple[_Origin, bytes]:
        scheme_end = url.find("://")
        if scheme_end < 0:
            raise ValueError("the URL is not absolute")
        end = len(url)
        for mark in "/?#":
            at = url.find(mark, scheme_end + 3)
            if 0 <= at < end:
                end = at
        key, target = url[:end], url[end:].partition("#")[0]
        origin = self._origins.get(key)
        if origin is None:
            if len(self._origins) >= _CACHE_MAX:
                self._origins.clear()
            origin = self._origins[key] = _parse_origin(key)
        if not target.startswith("/"):
            target = "/" + target
        return origin, self._head(method, target, origin, headers, content)

    def _head(
        self, method: str, target: str, origin: _Origin, headers: Mapping[str, str] | None, content: bytes | None
    ) -> bytes:
        if not _TOKEN.fullmatch(method):
            raise ValueError("the method is not an HTTP token")
        if method == "HEAD":
            raise ValueError("HEAD is not supported by this client")
        if _BAD_TARGET.search(target):
            raise ValueError("the URL's path or query has a character that is not visible ASCII (percent-encode it)")
        lines = [f"{method} {target} HTTP/1.1\r\n", origin.host_line]
        agent = True
        if headers:
            names = self._names
            for name, value in headers.items():
                lower = names.get(name)
                if lower is None:
                    lower = self._check_name(name)
                if _BAD_VALUE.search(value):
                    raise ValueError(f"the value of header {name!r} has a control character")
                if lower == "user-agent":
                    agent = False
                lines.append(f"{name}: {value}\r\n")
        if agent:
            lines.append(_USER_AGENT)
        if content:
            lines.append(f"Content-Length: {len(content)}\r\n\r\n")
            return "".join(lines).encode() + content
        lines.append("Content-Length: 0\r\n\r\n" if method in _WITH_BODY else "\r\n")
        return "".join(lines).encode()

    def _check_name(self, name: str) -> str:
        if not _TOKEN.fullmatch(name):
            raise ValueError("a header name is not an HTTP token")
        lower = name.lower()
        if lower in _OURS:
            raise ValueError(f"the {name} header is set by the client")
        if len(self._names) < _CACHE_MAX:
            self._names[name] = lower
        return lower

    async def _send(
        self, loop: asyncio.AbstractEventLoop, origin: _Origin, method: str, payload: bytes, call: _Call
    ) -> Answer:
        fresh = False
        while True:
            conn, reused = await self._acquire(loop, origin, call, fresh)
            if call.expired or loop.time() >= call.deadline:
                # handed over in the loop turn its deadline passed (the timer found nothing to fail then): with
                # no timer left, the request must not start
                self._release(conn, loop)
                raise TimeoutError("no connection before the deadline")
            call.conn = conn
            fut: asyncio.Future[Answer] = loop.create_future()
            call.fut = fut
            try:
                conn.begin(fut, payload)
                answer = await fut
            except BaseException as exc:
                self._discard(conn)
                stale = isinstance(exc, ConnectionClosedError) and not conn.got_bytes
                if conn.gen != self._gen:  # aclose() (or a loop change) ended it: in-flight requests fail
                    raise ConnectionAbortedError("the client was closed") from None
                if reused and stale and not fresh and not call.expired and method in _IDEMPOTENT:
                    fresh = True  # the server closed it meanwhile: once more, on a new connection
                    continue
                raise
            finally:
                call.conn = call.fut = None
            self._release(conn, loop)
            return answer

    # -- the pool ----------------------------------------------------------------------------------------------

    async def _acquire(
        self, loop: asyncio.AbstractEventLoop, origin: _Origin, call: _Call, fresh: bool
    ) -> tuple[Connection, bool]:
        stack = self._idle.get(origin.key)
        now = loop.time()
        while stack and not fresh:
            conn = stack.pop()
            if now - conn.idle_since >= self.keepalive_s:
                for old in (conn, *stack):  # the rest of the stack is older still
                    self._discard(old)
                stack.clear()
            elif conn.open:
                return conn, True
            else:  # closing (the peer's FIN not handled yet): never reused
                self._discard(conn)
        if self._used < self.max_connections:
            self._used += 1
        elif self._waiters or not self._evict_idle():  # others wait first; else an idle connection makes room
            got = await self._wait(loop, origin, call)
            if got is not None:
                return got, True
        return await self._connect(loop, origin, call.deadline), False

    async def _wait(self, loop: asyncio.AbstractEventLoop, origin: _Origin, call: _Call) -> Connection | None:
        """Wait for a connection of ``origin`` (returned) or a free slot (None: the caller opens one)."""
        fut: asyncio.Future[Connection | None] = loop.create_future()
        entry = (origin.key, fut)
        self._waiters.append(entry)
        call.fut = fut
        gen = self._gen
        try:
            return await fut
        except BaseException:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                given = fut.result()  # handed over just as the wait ended: pass it on
                if given is None:
                    self._free_slot(gen)
                else:
                    self._release(given, loop)
            # else the entry stays queued, done: whoever reads the queue skips it (it may have been read already)
            raise
        finally:
            call.fut = None

    async def _connect(self, loop: asyncio.AbstractEventLoop, origin: _Origin, deadline: float) -> Connection:
        """Open a connection in a slot already counted (freed again if this fails)."""
        gen = self._gen
        conn = Connection(origin.key, self._lost)
        tls = None
        if origin.tls:
            tls = self._ssl = self._ssl or ssl.create_default_context()
        try:
            # the request's timer cannot reach a connect in progress: the same deadline, on the connect only
            async with asyncio.timeout_at(deadline):
                await loop.create_connection(
                    lambda: conn, origin.host, origin.port, ssl=tls, server_hostname=origin.host if tls else None
                )
        except BaseException:
            conn.close()
            self._free_slot(gen)
            raise
        conn.gen = gen
        if gen == self._gen:
            self._conns.add(conn)
        return conn

    def _release(self, conn: Connection, loop: asyncio.AbstractEventLoop) -> None:
        """Put back a connection whose exchange ended: to the oldest waiter, to the pool, or closed."""
        conn.waiter = None
        if conn not in self._conns:  # opened before aclose() or a loop change: not this pool's
            conn.close()
            return
        if not conn.reusable or conn.closed:
            self._discard(conn)
            return
        while self._waiters:
            key, fut = self._waiters.popleft()
            if fut.done():
                continue
            if key == conn.key:
                fut.set_result(conn)
            else:  # another origin waits: this connection's slot goes to it
                self._conns.discard(conn)
                conn.close()
                fut.set_result(None)
            return
        conn.idle_since = loop.time()
        self._idle.setdefault(conn.key, []).append(conn)

    def _discard(self, conn: Connection) -> None:
        conn.close()
        if conn in self._conns:
            self._conns.discard(conn)
            stack = self._idle.get(conn.key)
            if stack and conn in stack:
                stack.remove(conn)
            self._free_slot(self._gen)

    def _free_slot(self, gen: int) -> None:
        if gen != self._gen:
            return
        while self._waiters:
            _, fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # the slot passes to the oldest waiter
                return
        self._used -= 1

    def _evict_idle(self) -> bool:
        """Close the oldest idle connection of any origin to reuse its slot; False when none is idle."""
        for stack in self._idle.values():
            if stack:
                self._conns.discard(stack[0])
                stack.pop(0).close()
                return True
        return False

    def _lost(self, conn: Connection) -> None:
        if conn.waiter is None and conn in self._conns:  # idle: the peer closed it
            self._discard(conn)

    # -- closing -----------------------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close every connection (requests in flight fail); a later request opens new ones."""
        conns, waiters = self._conns, self._waiters
        self._closed = True
        self._reset()
        try:
            here = asyncio.get_running_loop() is self._loop
        except RuntimeError:  # not on asyncio: the connections' loop is gone
            here = False
        if not here:
            return
        for conn in conns:
            conn.close()
        for _, fut in waiters:
            if not fut.done():
                fut.set_exception(ConnectionAbortedError("the client was closed"))

    @property
    def is_closed(self) -> bool:
        """True before the first request and after :meth:`aclose` (until the next request)."""
        return self._loop is None or self._closed

    def __repr__(self) -> str:
        idle = sum(len(stack) for stack in self._idle.values())
        return f"FastHttpClient(max_connections={self.max_connections}, open={len(self._conns)}, idle={idle})"


def _answer(status: int, raw: list[tuple[bytes, bytes]], parts: list[bytes]) -> HttpAnswer:
    headers: CIMultiDict[str] = CIMultiDict([(n.decode("latin-1"), v.decode("latin-1")) for n, v in raw])
    body = parts[0] if len(parts) == 1 else b"".join(parts)
    encoding = headers.get("content-encoding")
    if encoding is not None:
        body = _decoded(encoding.strip().lower(), body)
    return HttpAnswer(status, headers, body)


def _decoded(encoding: str, body: bytes) -> bytes:
    if encoding in ("", "identity") or not body:  # a 204, or an empty body, has nothing to decode
        return body
    if encoding in ("gzip", "x-gzip"):
        attempts = [16 + zlib.MAX_WBITS]
    elif encoding == "deflate":
        attempts = [zlib.MAX_WBITS, -zlib.MAX_WBITS]  # zlib-wrapped as the RFC says, or raw as some servers send
    else:
        raise RemoteProtocolError(f"unsupported Content-Encoding {encoding[:20]!r}")
    for wbits in attempts:
        decoder = zlib.decompressobj(wbits)
        try:
            out = decoder.decompress(body, MAX_BODY_BYTES + 1)
        except zlib.error:
            continue
        if len(out) > MAX_BODY_BYTES:
            raise RemoteProtocolError(f"the answer's decoded body is over {MAX_BODY_BYTES} bytes")
        if not decoder.eof:
            raise RemoteProtocolError(f"the answer's {encoding} body is cut short")
        return out
    raise RemoteProtocolError(f"the answer's {encoding} body does not decode")
