"""The one HTTP client interface of the platform calls: aiohttp on asyncio, httpx on trio or when the game gives one.

Every request the library makes to a platform (Gamebase token verification, maintenance and ban polls, the CCU
sender, the GamePot inquiry) goes through :class:`HttpClient`: one method, :meth:`HttpClient.request`, with the
whole URL (already encoded), the headers, the body and a timeout, answering an :class:`HttpAnswer` (status,
headers, body) or raising :class:`~gs_hooks.HttpTransportError` when no answer came. Retries, result codes and
redaction stay with each platform's client; this layer only moves bytes.

Why aiohttp on asyncio: measured side by side on one sandbox (``python -m bench.http_clients``, figures in
BENCHMARKS.md), a plain aiohttp session costs the game's loop about a tenth of the CPU per request of a plain
``httpx.AsyncClient`` and a third of httpx on an aiohttp transport; httpx's pool work also grows with concurrency,
aiohttp's does not. aiohttp is asyncio-only, so on trio (and whenever the game hands in its own
``httpx.AsyncClient``) the same interface runs on httpx.

- :class:`AiohttpClient`: an aiohttp ``ClientSession`` made on first use in the running loop (and made again if
  the loop changed); the URL is sent exactly as given (``yarl.URL(url, encoded=True)``: no re-quoting, so a
  percent-encoded path segment stays one segment); no redirects followed; proxies from the environment
  (``HTTP_PROXY``...) honoured when set, as httpx does.
- :class:`HttpxClient`: an ``httpx.AsyncClient``, given (left open) or made (closed by :meth:`~HttpClient.aclose`).
- :class:`AutoHttpClient`: what ``setup()`` shares (``hooks.http``): picks aiohttp on asyncio and httpx elsewhere
  at its first request, or wraps the game's ``httpx.AsyncClient``.

Transport errors: the message names the error's type and what it said, with any ``/tokens/<token>`` path
segment masked; the third-party exception is not chained (its text or its request may carry a URL with a token).
"""

from __future__ import annotations

import asyncio
import re
import urllib.request
from collections.abc import Mapping
from typing import Final

import aiohttp
import httpx
import sniffio
import yarl

from ._exceptions import ClosedError, HttpTransportError

__all__ = ["AiohttpClient", "AutoHttpClient", "HttpAnswer", "HttpClient", "HttpxClient", "as_http_client"]

DEFAULT_MAX_CONNECTIONS: Final = 64
"""Connections one client keeps open at most (all hosts together)."""

_TOKEN_SEGMENT = re.compile(r"(/tokens/)[^/?#\s\"']+")


class HttpAnswer:
    """An HTTP answer, read whole.

    Attributes:
        status: the status code.
        headers: the response headers (case-insensitive lookups: ``headers.get("retry-after")``).
        content: the body.
    """

    __slots__ = ("content", "headers", "status")

    def __init__(self, status: int, headers: Mapping[str, str], content: bytes) -> None:
        self.status = status
        self.headers = headers
        self.content = content

    @property
    def is_success(self) -> bool:
        """True for a 2xx status."""
        return 200 <= self.status < 300

    def __repr__(self) -> str:
        return f"HttpAnswer(status={self.status}, {len(self.content)} bytes)"


class HttpClient:
    """The interface every platform call goes through (see the module's docstring for the implementations)."""

    __slots__ = ()

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        timeout_s: float,
    ) -> HttpAnswer:
        """Send one request and read its answer whole.

        Args:
            method: ``GET``, ``POST``...
            url: the whole URL, path and query already percent-encoded; sent as given.
            headers: request headers (beside the client's own, e.g. ``User-Agent``).
            content: the body.
            timeout_s: the limit of the whole request (connecting, sending, reading the answer).

        Returns:
            The answer, whatever its status.

        Raises:
            HttpTransportError: no answer (connection refused or broken, timeout, a malformed answer).
            ClosedError: the shared client was closed (the hooks closed).
        """
        raise NotImplementedError

    async def aclose(self) -> None:
        """Close the connections this client owns (a client the game gave stays open)."""

    @property
    def is_closed(self) -> bool:
        """True once :meth:`aclose` has closed this client (one the game gave is never closed here)."""
        return False


def _transport_error(exc: BaseException) -> HttpTransportError:
    text = _TOKEN_SEGMENT.sub(r"\1***", str(exc)).strip()
    name = "timeout" if isinstance(exc, TimeoutError | httpx.TimeoutException) else type(exc).__name__
    return HttpTransportError(f"{name}: {text}" if text else name, name)


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
    """The shared :class:`HttpClient` of ``setup()``: aiohttp on asyncio, httpx on trio, chosen at first use.

    Args:
        given: the game's ``httpx.AsyncClient`` (``setup(http_client=...)``): every request goes through it, and
            it stays open.
        max_connections: connections kept open at most.

    Attributes:
        backend: ``"aiohttp"`` or ``"httpx"`` once chosen, None before the first request.
    """

    __slots__ = ("_closed", "_impl", "max_connections")

    def __init__(
        self, given: httpx.AsyncClient | None = None, *, max_connections: int = DEFAULT_MAX_CONNECTIONS
    ) -> None:
        self.max_connections = max_connections
        self._impl: HttpClient | None = None if given is None else HttpxClient(given)
        self._closed = False

    @property
    def backend(self) -> str | None:
        """``"aiohttp"`` or ``"httpx"`` once chosen, None before the first request."""
        impl = self._impl
        if impl is None:
            return None
        return "aiohttp" if isinstance(impl, AiohttpClient) else "httpx"

    def _choose(self) -> HttpClient:
        if self._closed:
            raise ClosedError("the HTTP client is closed")
        if sniffio.current_async_library() == "asyncio":
            self._impl = AiohttpClient(max_connections=self.max_connections)
        else:
            self._impl = HttpxClient(max_connections=self.max_connections)
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
