"""The one HTTP client interface of the platform calls, and its implementations: the library's own keep-alive
client on asyncio, aiohttp when proxies are set or asked for, httpx on trio or when the game gives one.

Every request the library makes to a platform (Gamebase token verification, maintenance and ban polls, the CCU
sender, the GamePot inquiry) goes through :class:`HttpClient`: one method, :meth:`HttpClient.request`, with the
whole URL (already encoded), the headers, the body and a timeout, answering an :class:`HttpAnswer` (status,
headers, body) or raising :class:`~gs_hooks.HttpTransportError` when no answer came. Retries, result codes and
redaction stay with each platform's client; this layer only moves bytes. (The interface itself lives in
:mod:`gs_hooks._http_base`, which every implementation imports; it is re-exported here.)

Why the library's own client on asyncio: the platform calls share the game's loop, so the client's CPU per request
is what matters. Measured side by side on one sandbox (16 concurrent keep-alive GETs of the Gamebase token URL,
``python -m bench.http_clients``, figures in BENCHMARKS.md): plain httpx ~1,060 µs of client CPU per request, a
plain aiohttp session 89-93, aiosonic 103, pyreqwest 102, and an ``asyncio.Protocol`` with httptools' parser
28-30 (a bare prototype). :class:`~gs_hooks._fast_http.FastHttpClient` is that shape (~50 µs in the same bench)
with a bounded keep-alive pool, one deadline per request and the checks a product needs. It has no proxy support:
with proxies in the environment (``HTTPS_PROXY``...) the shared client takes aiohttp, which honours them, as it
does when the game asks for it (``GS_HOOKS_HTTP_CLIENT=aiohttp``). aiohttp and the fast client are asyncio-only
(uvloop's loop included), so on trio (and whenever the game hands in its own ``httpx.AsyncClient``) the same
interface runs on httpx.

- :class:`~gs_hooks._fast_http.FastHttpClient`: HTTP/1.1 on ``asyncio.Protocol`` + httptools, the default on
  asyncio.
- :class:`AiohttpClient`: an aiohttp ``ClientSession`` made on first use in the running loop (and made again if
  the loop changed); the URL is sent exactly as given (``yarl.URL(url, encoded=True)``: no re-quoting, so a
  percent-encoded path segment stays one segment); no redirects followed; proxies from the environment
  (``HTTP_PROXY``...) honoured when set, as httpx does.
- :class:`HttpxClient`: an ``httpx.AsyncClient``, given (left open) or made (closed by :meth:`~HttpClient.aclose`).
- :class:`AutoHttpClient`: what ``setup()`` shares (``hooks.http``): picks at its first request (fast or aiohttp
  on asyncio as above, httpx elsewhere), or wraps the game's ``httpx.AsyncClient``.

Transport errors: the message names the error's type and what it said, with any ``/tokens/<token>`` path
segment masked; the third-party exception is not chained (its text or its request may carry a URL with a token).
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Mapping
from typing import Literal

import aiohttp
import httpx
import sniffio
import yarl

from ._exceptions import ClosedError
from ._fast_http import FastHttpClient
from ._http_base import DEFAULT_MAX_CONNECTIONS, HttpAnswer, HttpClient
from ._http_base import transport_error as _transport_error

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "AiohttpClient",
    "AutoHttpClient",
    "FastHttpClient",
    "HttpAnswer",
    "HttpClient",
    "HttpxClient",
    "as_http_client",
]

Backend = Literal["fast", "aiohttp"]
"""The shared client's choice on asyncio (``GS_HOOKS_HTTP_CLIENT``)."""


def _proxies_in_env() -> bool:
    return any(k in ("http", "https", "all") for k in urllib.request.getproxies())


class AiohttpClient(HttpClient):
    """:class:`HttpClient` on an aiohttp ``ClientSession`` (asyncio only: uvloop's loop included).

    Args:
        max_connections: connections kept open at most (all hosts together).
    """

    __slots__ = ("_loop", "_session", "_timeouts", "max_connections")

    def __init__(self, *, max_connections: int = DEFAULT_MAX_CONNECTIONS) -> None:
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    def _open(self, loop: asyncio.AbstractEventLoop) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self.max_connections)
        self._session = aiohttp.ClientSession(connector=connector, trust_env=_proxies_in_env())
        self._loop = loop
        return self._session

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        timeout_s: float,
    ) -> HttpAnswer:
        """See :meth:`HttpClient.request`."""
        loop = asyncio.get_running_loop()
        session = self._session
        if session is None or self._loop is not loop or session.closed:
            session = self._open(loop)
        timeout = self._timeouts.get(timeout_s)
        if timeout is None:
            timeout = self._timeouts[timeout_s] = aiohttp.ClientTimeout(total=timeout_s)
        try:
            async with session.request(
                method,
                yarl.URL(url, encoded=True),
                headers=headers,
                data=content,
                timeout=timeout,
                allow_redirects=False,
            ) as response:
                body = await response.read()
                return HttpAnswer(response.status, response.headers, body)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise _transport_error(exc) from None

    async def aclose(self) -> None:
        """Close the session (its connections)."""
        session, self._session = self._session, None
        if session is not None and not session.closed:
            try:
                if self._loop is asyncio.get_running_loop():
                    await session.close()
            except RuntimeError:  # not on asyncio any more: nothing to close it on
                pass

    @property
    def is_closed(self) -> bool:
        """True when no session is open (none made yet, or closed)."""
        return self._session is None or self._session.closed

    def __repr__(self) -> str:
        return f"AiohttpClient(max_connections={self.max_connections}, open={self._session is not None})"


class HttpxClient(HttpClient):
    """:class:`HttpClient` on an ``httpx.AsyncClient`` (any anyio backend).

    Args:
        client: the game's client (left open by :meth:`aclose`); one is made (and closed) otherwise.
        max_connections: for a client made here: connections kept open at most.
    """

    __slots__ = ("_own", "client")

    def __init__(
        self, client: httpx.AsyncClient | None = None, *, max_connections: int = DEFAULT_MAX_CONNECTIONS
    ) -> None:
        self._own = client is None
        self.client = client or httpx.AsyncClient(limits=httpx.Limits(max_connections=max_connections))

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        timeout_s: float,
    ) -> HttpAnswer:
        """See :meth:`HttpClient.request`."""
        http = self.client
        try:
            # our headers set on the built request: cheaper than httpx merging a per-request dict into the
            # client's headers (same result: ours replace any of the same name)
            request = http.build_request(method, url, content=content, timeout=timeout_s)
            if headers:
                request.headers.update(headers)
            response = await http.send(request)
        except httpx.HTTPError as exc:
            raise _transport_error(exc) from None
        return HttpAnswer(response.status_code, response.headers, response.content)

    async def aclose(self) -> None:
        """Close the client when it was made here."""
        if self._own:
            await self.client.aclose()

    @property
    def is_closed(self) -> bool:
        """Whether the httpx client is closed."""
        return self.client.is_closed

    def __repr__(self) -> str:
        return f"HttpxClient(own={self._own})"


class AutoHttpClient(HttpClient):
    """The shared :class:`HttpClient` of ``setup()``, chosen at its first request: on asyncio the library's own
    client (:class:`~gs_hooks._fast_http.FastHttpClient`), or aiohttp when proxies are set in the environment or
    ``prefer="aiohttp"``; httpx on trio.

    Args:
        given: the game's ``httpx.AsyncClient`` (``setup(http_client=...)``): every request goes through it, and
            it stays open.
        max_connections: connections kept open at most.
        prefer: the client on asyncio: ``"fast"`` (the default; aiohttp anyway when proxies are set in the
            environment, which only aiohttp honours) or ``"aiohttp"`` (``GS_HOOKS_HTTP_CLIENT``).

    Attributes:
        backend: ``"fast"``, ``"aiohttp"`` or ``"httpx"`` once chosen, None before the first request.
    """

    __slots__ = ("_closed", "_impl", "max_connections", "prefer")

    def __init__(
        self,
        given: httpx.AsyncClient | None = None,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        prefer: Backend = "fast",
    ) -> None:
        self.max_connections = max_connections
        self.prefer = prefer
        self._impl: HttpClient | None = None if given is None else HttpxClient(given)
        self._closed = False

    @property
    def backend(self) -> str | None:
        """``"fast"``, ``"aiohttp"`` or ``"httpx"`` once chosen, None before the first request."""
        impl = self._impl
        if impl is None:
            return None
        if isinstance(impl, FastHttpClient):
            return "fast"
        return "aiohttp" if isinstance(impl, AiohttpClient) else "httpx"

    def _choose(self) -> HttpClient:
        if self._closed:
            raise ClosedError("the HTTP client is closed")
        if sniffio.current_async_library() != "asyncio":
            self._impl = HttpxClient(max_connections=self.max_connections)
        elif self.prefer == "aiohttp" or _proxies_in_env():
            self._impl = AiohttpClient(max_connections=self.max_connections)
        else:
            self._impl = FastHttpClient(max_connections=self.max_connections)
        return self._impl

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        timeout_s: float,
    ) -> HttpAnswer:
        """See :meth:`HttpClient.request`."""
        impl = self._impl or self._choose()
        return await impl.request(method, url, headers=headers, content=content, timeout_s=timeout_s)

    async def aclose(self) -> None:
        """Close what was made here (a given client stays open and is still used)."""
        impl = self._impl
        if isinstance(impl, HttpxClient) and not impl._own:
            return  # the game's client: the game closes it
        self._impl = None
        self._closed = True
        if impl is not None:
            await impl.aclose()

    @property
    def is_closed(self) -> bool:
        """True once :meth:`aclose` has closed what was made here; a given client's own state otherwise."""
        impl = self._impl
        if isinstance(impl, HttpxClient) and not impl._own:
            return impl.client.is_closed
        return self._closed

    def __repr__(self) -> str:
        return f"AutoHttpClient(backend={self.backend!r})"


def as_http_client(http: HttpClient | httpx.AsyncClient) -> HttpClient:
    """``http`` as an :class:`HttpClient`: an ``httpx.AsyncClient`` is wrapped (and left open), ours returned."""
    if isinstance(http, httpx.AsyncClient):
        return HttpxClient(http)
    return http
