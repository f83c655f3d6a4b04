"""The pure part of :class:`~gs_hooks._fast_http.FastHttpClient`: a request's head written and checked, an answer's
headers and body decoded (no IO here).

A URL's origin (scheme, host, port) is parsed once per distinct origin and cached, as are the header names already
checked: the platform calls use a few of each, over and over. What is refused (``ValueError``, before anything is
sent): a method that is not an HTTP token, ``HEAD`` (an answer without a body the parser cannot know of), a target
(path and query) with anything but visible ASCII (the URL comes percent-encoded), a host part with whitespace,
control or non-ASCII characters, a header name that is not a token, a header value with a control character
(a TAB aside), and the headers the client sets itself (``Host``, ``Content-Length``, ``Transfer-Encoding``).
"""

from __future__ import annotations

import importlib.metadata
import re
import zlib
from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit

from multidict import CIMultiDict

__all__ = ["MAX_BODY_BYTES", "MAX_HEAD_BYTES", "Origin", "RemoteProtocolError", "RequestWriter", "decode_answer"]

MAX_HEAD_BYTES: Final = 64 * 1024
"""An answer's status line and headers (1xx answers before it included) may take this many bytes at most."""
MAX_BODY_BYTES: Final = 16 * 1024 * 1024
"""An answer's body may take this many bytes at most (after decompression too)."""


class RemoteProtocolError(Exception):
    """The peer's answer is not acceptable HTTP/1.1 (malformed, too large, an upgrade, an unknown encoding)."""


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
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
_CACHE_MAX = 256


class Origin:
    """Where a request goes: the pool's key (``scheme://host:port`` as written), host, port, TLS, its Host line."""

    __slots__ = ("host", "host_line", "key", "port", "tls")

    def __init__(self, key: str, host: str, port: int, tls: bool, host_line: str) -> None:
        self.key = key
        self.host = host
        self.port = port
        self.tls = tls
        self.host_line = host_line


def parse_origin(key: str) -> Origin:
    """The origin of ``key`` (``scheme://host[:port]``). Raises ValueError: not http(s), credentials, no host, a
    host part with whitespace, a control or a non-ASCII character."""
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
    return Origin(key, host, port, scheme == "https", f"Host: {shown}{'' if port == default else f':{port}'}\r\n")


class RequestWriter:
    """Writes request heads (see the module's docstring), with its caches of origins and checked header names."""

    __slots__ = ("names", "origins")

    def __init__(self) -> None:
        self.origins: dict[str, Origin] = {}
        self.names: dict[str, str] = {}  # header names already checked -> lower case

    def prepare(
        self, method: str, url: str, headers: Mapping[str, str] | None, content: bytes | None
    ) -> tuple[Origin, bytes]:
        """The origin of ``url`` and the request's bytes (head and body). Raises ValueError (see the module)."""
        scheme_end = url.find("://")
        if scheme_end < 0:
            raise ValueError("the URL is not absolute")
        end = len(url)
        for mark in "/?#":
            at = url.find(mark, scheme_end + 3)
            if 0 <= at < end:
                end = at
        key, target = url[:end], url[end:].partition("#")[0]
        origin = self.origins.get(key)
        if origin is None:
            if len(self.origins) >= _CACHE_MAX:
                self.origins.clear()
            origin = self.origins[key] = parse_origin(key)
        if not target.startswith("/"):
            target = "/" + target
        return origin, self._head(method, target, origin, headers, content)

    def _head(
        self, method: str, target: str, origin: Origin, headers: Mapping[str, str] | None, content: bytes | None
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
            names = self.names
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
        if len(self.names) < _CACHE_MAX:
            self.names[name] = lower
        return lower


def decode_answer(raw: list[tuple[bytes, bytes]], parts: list[bytes]) -> tuple[CIMultiDict[str], bytes]:
    """A complete answer's headers (decoded as latin-1) and body (a gzip or deflate body decoded)."""
    headers: CIMultiDict[str] = CIMultiDict([(n.decode("latin-1"), v.decode("latin-1")) for n, v in raw])
    body = parts[0] if len(parts) == 1 else b"".join(parts)
    encoding = headers.get("content-encoding")
    if encoding is not None:
        body = _decoded(encoding.strip().lower(), body)
    return headers, body


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
