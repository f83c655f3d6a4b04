"""The interface of the platform calls' HTTP client: :class:`HttpClient`, :class:`HttpAnswer`, the error shape.

Its implementations live beside it: :mod:`gs_hooks._http_client` (aiohttp, httpx, the shared ``AutoHttpClient``)
and :mod:`gs_hooks._fast_http` (the library's own keep-alive client on ``asyncio.Protocol`` and httptools). This
module is the one they all import, so none of them imports another for the interface.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

import httpx

from ._exceptions import HttpTransportError

__all__ = ["DEFAULT_MAX_CONNECTIONS", "HttpAnswer", "HttpClient", "transport_error"]

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


def transport_error(exc: BaseException) -> HttpTransportError:
    """The library's :class:`~gs_hooks.HttpTransportError` for ``exc`` (not chained by the caller: ``from None``).

    Its kind is ``timeout`` for a timeout, the exception's type name otherwise; its text is what ``exc`` said, with
    any ``/tokens/<token>`` path segment masked.
    """
    text = _TOKEN_SEGMENT.sub(r"\1***", str(exc)).strip()
    name = "timeout" if isinstance(exc, TimeoutError | httpx.TimeoutException) else type(exc).__name__
    return HttpTransportError(f"{name}: {text}" if text else name, name)
