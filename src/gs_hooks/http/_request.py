"""Reading one request on the embedded listener: the head checked where h11 is lenient, routed by the policy
(:mod:`._policy`: route, allowlist, guard and declared size before any body byte is read, ``100 Continue`` only
after them), then the body up to the route's limit, with chunked framing checked strictly (:mod:`._strict`).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote

import h11

from .._ratelog import RateLimitedLog
from ._app import Request, Response, Route, Router, safe_for_log
from ._connection import Close, Connection, Reject, fmt_peer
from ._limits import HttpLimits
from ._policy import Routing, route_request, too_large
from ._strict import ChunkedScanner, head_is_strict

__all__ = ["RequestReader"]

# Trailer fields that would change framing, routing or authorization if anyone merged them into the head.
_FORBIDDEN_TRAILERS = frozenset(
    {b"content-length", b"transfer-encoding", b"host", b"authorization", b"content-type", b"trailer", b"connection"}
)
_Head = tuple[list[tuple[bytes, bytes]], bytes | None, bool, bool]  # headers, Content-Length, chunked, expect


class RequestReader:
    """Reads requests for one server.

    Args:
        router: the routes.
        limits: the listener's limits.
        log: the server's rate-limited log (refusals caused by a flood are summarised, not logged one by one).
    """

    def __init__(self, router: Router, limits: HttpLimits, log: RateLimitedLog) -> None:
        self._router = router
        self._limits = limits
        self._log = log

    async def read(self, c: Connection, event: h11.Request) -> tuple[Request, Route | None, Response | None]:
        """Check the head, route it, run allowlist and guard, then read the body.

        Returns:
            (request, route, None) to run the handler, or (request, None, response) to answer without it.

        Raises:
            Reject: framing or limit violation (answer and close).
        """
        capture = c.capture
        assert capture is not None
        raw = capture[0] if len(capture) == 1 else b"".join(capture)
        headers, content_length, chunked, expect = self._check_head(raw, event)
        request, raw_path = _request_of(c, event, headers)
        routing = route_request(
            self._router,
            request,
            raw_path=raw_path,
            max_body=self._limits.max_body_bytes,
            declared=None if content_length is None else int(content_length),
        )
        if routing.route is None:
            return request, None, await self._answer_early(c, request, routing, content_length)
        conn = c.conn
        if expect and conn.they_are_waiting_for_100_continue:
            await c.stream.send(conn.send(h11.InformationalResponse(status_code=100, headers=[])) or b"")
        c.capture = None
        request.body = await self._body(c, raw, chunked, routing.limit)
        return request, routing.route, None

    def _check_head(self, raw: bytes, event: h11.Request) -> _Head:
        """What framing needs from the head, once it passed the checks h11 does not make."""
        if not head_is_strict(raw):
            raise Reject(400, "malformed request head (bare LF/CR or obsolete line folding)")
        if event.http_version != b"1.1" and event.http_version != b"1.0":
            raise Reject(505)
        headers = _header_list(event.headers)
        head_size = len(event.target)
        content_length: bytes | None = None
        chunked = expect = False
        for name, value in headers:
            head_size += len(name) + len(value) + 4
            if name == b"content-length":
                content_length = value
            elif name == b"transfer-encoding":
                chunked = True
            elif name == b"expect":
                expect = True
        if head_size > self._limits.max_header_bytes:
            raise Reject(431)
        if chunked and content_length is not None:
            raise Reject(400, "both Content-Length and Transfer-Encoding: refusing an ambiguous body")
        if chunked and event.http_version != b"1.1":
            raise Reject(400, "Transfer-Encoding in an HTTP/1.0 request")
        return headers, content_length, chunked, expect

    async def _answer_early(
        self, c: Connection, request: Request, routing: Routing, content_length: bytes | None
    ) -> Response:
        """The policy's answer, given before the body: closing, or after draining a small body."""
        answer = routing.answer
        assert answer is not None
        if routing.note:
            self._log.log(
                logging.INFO,
                answer.status,
                "refused %s %s from %s (%d): %s",
                request.method,
                request.raw_path,
                fmt_peer(c.client),
                answer.status,
                routing.note,
            )
        if routing.closes:
            answer.close = True
            return answer
        return await self._drain_small(c, answer, content_length)

    async def _body(self, c: Connection, raw: bytes, chunked: bool, limit: int) -> bytes:
        conn = c.conn
        if chunked:
            c.scanner = ChunkedScanner(limit)
            c.fed = 0
            c.feed_scanner(raw[raw.find(b"\r\n\r\n") + 4 :])
        try:
            body = await _read_body(c, limit)
        finally:
            scanner, c.scanner = c.scanner, None
        if scanner is not None and (not scanner.done or scanner.consumed != c.fed - len(conn.trailing_data[0])):
            raise Reject(400, "malformed chunked body")
        return body

    async def _drain_small(self, c: Connection, response: Response, content_length: bytes | None) -> Response:
        """Read and discard a small body so an error answer can keep the connection (else close it)."""
        limit = self._limits.max_body_bytes
        if c.conn.they_are_waiting_for_100_continue or (content_length is not None and int(content_length) > limit):
            response.close = True  # not worth waiting for
            return response
        c.capture = None
        size = 0
        while True:
            ev = await c.next_event()
            if type(ev) is h11.Data:
                size += len(ev.data)
                if size > limit:
                    response.close = True
                    return response
            else:
                if type(ev) is not h11.EndOfMessage:
                    response.close = True
                return response


def _request_of(c: Connection, event: h11.Request, headers: list[tuple[bytes, bytes]]) -> tuple[Request, str]:
    """The :class:`Request` of a head, and its path as sent (still percent-encoded)."""
    path_part, _, query = bytes(event.target).partition(b"?")
    try:
        text = path_part.decode("ascii")
        path = unquote(text, errors="strict") if "%" in text else text
    except (UnicodeDecodeError, ValueError):
        raise Reject(400, "request target is not valid") from None
    request = Request(
        method=event.method.decode("ascii"),
        path=path,
        query_string=query.decode("latin-1") if query else "",
        headers=headers,
        client=c.client,
        raw_path=safe_for_log(text),
    )
    return request, text


async def _read_body(c: Connection, limit: int) -> bytes:
    conn = c.conn
    chunks: list[bytes] = []
    size = 0
    while True:
        ev = conn.next_event()
        if ev is h11.NEED_DATA:
            await c.receive()
            continue
        if type(ev) is h11.Data:
            size += len(ev.data)
            if size > limit:
                raise Reject(413, too_large(limit))
            chunks.append(ev.data)
        elif type(ev) is h11.EndOfMessage:
            for name, _ in ev.headers:
                if name in _FORBIDDEN_TRAILERS:
                    raise Reject(400, "forbidden field in the chunked trailer")
            break
        else:
            raise Close
    if len(chunks) == 1:
        return bytes(chunks[0])
    return b"".join(chunks)


def _header_list(headers: Any) -> list[tuple[bytes, bytes]]:
    """h11's headers as a plain list of (lower-case name, value) (one pass over h11's internal list if it has one)."""
    items = getattr(headers, "_full_items", None)
    if items is not None:
        return [(name, value) for _, name, value in items]
    return list(headers)
