"""What only the library's own client (``gs_hooks._fast_http.FastHttpClient``) does, against real loopback servers.

The behaviours every client shares are in tests/test_http_client.py (the ``fast`` case). Here: the keep-alive
pool (reuse, the cap, idle expiry, a connection the server closed), the one resend of an idempotent request on a
connection the server closed meanwhile, answer framing (chunked through uvicorn, until EOF, cut short, 1xx,
garbage, the size caps, gzip), the deadline and cancellation, TLS with SNI, the request checks, uvloop, and the
``GS_HOOKS_HTTP_CLIENT`` knob. The edge cases a good server never makes come from a small raw
``asyncio.start_server`` in this file.
"""

from __future__ import annotations

import asyncio
import gzip
import re
import socket
import ssl
import struct
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trustme
from tests.asgi_support import run_uvicorn

import gs_hooks
from gs_hooks import FakeClock, HttpTransportError
from gs_hooks._fast_http import FastHttpClient
from gs_hooks._fast_http_wire import MAX_BODY_BYTES, MAX_HEAD_BYTES
from gs_hooks._http_client import AutoHttpClient
from gs_hooks.http import Request, Response, Router, serve_http
from gs_hooks.sandbox import Sandbox
from http_client_support import verify_only

pytestmark = pytest.mark.anyio

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the fast client is asyncio-only (uvloop's loop in the suite's second pass)


# -- a raw server for the answers a good server never gives ------------------------------------------------------


class Raw:
    """A raw TCP server on loopback whose connection handler is the test's.

    Attributes:
        connections: connections accepted so far.
        requests: every request head received (bytes), in order.
        closed: connections whose client closed them (EOF seen by the handler).
    """

    def __init__(self, handle: Callable[[Raw, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]) -> None:
        self.handle = handle
        self.connections = 0
        self.requests: list[bytes] = []
        self.closed = 0
        self.client_gone = asyncio.Event()
        self.got_request = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.url = ""

    async def read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        """One request's head and body (the head returned), or None at EOF."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            self.closed += 1
            self.client_gone.set()
            return None
        match = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
        if match:
            await reader.readexactly(int(match.group(1)))
        self.requests.append(head)
        self.got_request.set()
        return head

    async def wait_eof(self, reader: asyncio.StreamReader) -> None:
        """Wait until the client closes the connection."""
        await reader.read()
        self.closed += 1
        self.client_gone.set()

    async def _on(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        self.connections += 1
        try:
            await self.handle(self, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except RuntimeError:  # uvloop: a write after the client closed the connection
            if not writer.is_closing():
                raise
        finally:
            writer.close()
            self._tasks.discard(task)
            self._writers.discard(writer)

    @asynccontextmanager
    async def serve(self) -> AsyncIterator[Raw]:
        server = await asyncio.start_server(self._on, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        try:
            yield self
        finally:
            server.close()
            for writer in list(self._writers):  # a handler still waiting sees its connection end
                writer.close()
            await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), 5)


@asynccontextmanager
async def raw(
    handle: Callable[[Raw, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[Raw]:
    async with Raw(handle).serve() as srv:
        yield srv


@asynccontextmanager
async def client(**kwargs: Any) -> AsyncIterator[FastHttpClient]:
    http = FastHttpClient(**kwargs)
    try:
        yield http
    finally:
        await http.aclose()


async def answer_each(srv: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A well-behaved keep-alive server: every request answered ``ok``."""
    while await srv.read_request(reader) is not None:
        writer.write(OK)


async def stall(srv: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read the request, never answer it (the connection stays open until the client closes it)."""
    await srv.read_request(reader)
    await srv.wait_eof(reader)


def answer_with(*replies: bytes, then_close: bool = True) -> Callable[[Raw, Any, Any], Awaitable[None]]:
    """A handler answering the first requests of each connection with ``replies`` in turn, then closing."""

    async def handle(srv: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for reply in replies:
            if await srv.read_request(reader) is None:
                return
            writer.write(reply)
            await writer.drain()
        if not then_close:
            await srv.wait_eof(reader)

    return handle


async def rejected(http: FastHttpClient, url: str, method: str = "GET", **kwargs: Any) -> HttpTransportError:
    with pytest.raises(HttpTransportError) as caught:
        await http.request(method, url, timeout_s=kwargs.pop("timeout_s", 5.0), **kwargs)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    return caught.value


# -- the pool ------------------------------------------------------------------------------------------------------


async def test_a_kept_alive_connection_is_reused_and_an_idle_one_past_keepalive_is_not() -> None:
    async with raw(answer_each) as srv:
        async with client() as http:
            for _ in range(3):
                assert (await http.request("GET", srv.url + "/a", timeout_s=5.0)).content == b"ok"
            assert srv.connections == 1
        async with client(keepalive_s=0.0) as http:  # every idle connection is already too old
            for _ in range(2):
                assert (await http.request("GET", srv.url + "/a", timeout_s=5.0)).content == b"ok"
            assert srv.connections == 3
            await asyncio.wait_for(srv.client_gone.wait(), 5)  # the expired one was closed, not left open


async def test_a_get_on_a_connection_the_server_closed_meanwhile_is_sent_once_more_and_a_post_is_not() -> None:
    async def one_then_drop(srv: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One answer per connection, kept alive; the connection is closed when the next request arrives."""
        if await srv.read_request(reader) is None:
            return
        writer.write(OK)
        await writer.drain()
        await srv.read_request(reader)  # the next request: dropped unanswered

    async with raw(one_then_drop) as srv, client() as http:
        await http.request("GET", srv.url + "/1", timeout_s=5.0)
        answer = await http.request("GET", srv.url + "/2", timeout_s=5.0)
        assert answer.content == b"ok"
        assert srv.connections == 2  # the resend went on a new connection
        assert [r.split(b" ")[1] for r in srv.requests] == [b"/1", b"/2", b"/2"]
        error = await rejected(http, srv.url + "/3", "POST", content=b"x")
        assert error.kind == "ConnectionClosedError"
        assert [r.split(b" ")[1] for r in srv.requests].count(b"/3") == 1  # never sent twice


async def test_a_connection_the_server_closed_after_its_answer_leaves_the_pool() -> None:
    async with raw(answer_with(OK)) as srv, client() as http:
        await http.request("GET", srv.url + "/1", timeout_s=5.0)
        await asyncio.wait_for(_until(lambda: "idle=0" in repr(http)), 5)  # the peer's close was seen
        answer = await http.request("POST", srv.url + "/2", content=b"x", timeout_s=5.0)  # no resend needed
        assert answer.content == b"ok" and srv.connections == 2 and len(srv.requests) == 2


async def test_connection_close_is_honoured() -> None:
    reply = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    async with raw(answer_with(reply, reply, then_close=False)) as srv, client() as http:
        for _ in range(2):
            assert (await http.request("GET", srv.url + "/", timeout_s=5.0)).content == b"ok"
        assert srv.connections == 2 and len(srv.requests) == 2


async def test_the_pool_cap_holds_and_every_waiting_request_is_answered() -> None:
    async def slow(srv: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await srv.read_request(reader) is not None:
            await asyncio.sleep(0.02)
            writer.write(OK)

    async with raw(slow) as srv, client(max_connections=2) as http:
        answers = await asyncio.gather(*(http.request("GET", srv.url + f"/{i}", timeout_s=5.0) for i in range(5)))
        assert [a.content for a in answers] == [b"ok"] * 5
        assert srv.connections == 2


async def test_a_request_waiting_for_a_slot_times_out_and_leaves_the_queue() -> None:
    async with raw(stall) as srv, client(max_connections=1) as http:
        first = asyncio.create_task(http.request("GET", srv.url + "/stall", timeout_s=5.0))
        await asyncio.wait_for(srv.got_request.wait(), 5)
        error = await rejected(http, srv.url + "/second", timeout_s=0.2)
        assert error.kind == "timeout"
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        srv.handle = answer_each
        assert (await http.request("GET", srv.url + "/third", timeout_s=5.0)).content == b"ok"  # the slot is back


def answer_then_block_the_loop(
    block_s: float, then: Callable[[], None] | None = None
) -> Callable[[Raw, Any, Any], Awaitable[None]]:
    """Answer each request after 50 ms, then hold the loop ``block_s`` right after the client reads the answer (the
    game's CPU work: whatever else is due, e.g. a waiting request's deadline, falls in the same loop turn), and
    call ``then`` in that turn too."""

    async def handle(srv: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await srv.read_request(reader) is not None:
            await asyncio.sleep(0.05)
            writer.write(OK)
            loop = asyncio.get_running_loop()  # call_later(0): after the next poll, i.e. after the client reads
            loop.call_later(0, time.sleep, block_s)  # holding the loop is the point
            if then is not None:
                loop.call_later(0, then)

    return handle


async def test_a_waiting_request_handed_a_connection_as_its_deadline_passes_times_out() -> None:
    # The answer to A frees the one connection for B in the loop turn B's deadline passes: the deadline timer then
    # found nothing to fail (B's wait was over) and B, never timed again, hung on a server that does not answer it.
    async def a_only(srv: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (head := await srv.read_request(reader)) is not None:
            if head.startswith(b"GET /b "):
                await srv.wait_eof(reader)  # B, if it is sent, is never answered
                return
            await asyncio.sleep(0.05)
            writer.write(OK)
            if head.startswith(b"GET /a "):
                asyncio.get_running_loop().call_soon(time.sleep, 0.3)  # holding the loop is the point

    async with raw(a_only) as srv, client(max_connections=1) as http:
        first = asyncio.create_task(http.request("GET", srv.url + "/a", timeout_s=5.0))
        await asyncio.wait_for(srv.got_request.wait(), 5)
        second = asyncio.create_task(http.request("GET", srv.url + "/b", timeout_s=0.1))
        assert (await first).content == b"ok"
        with pytest.raises(HttpTransportError) as caught:
            await asyncio.wait_for(second, 3)  # a hang fails here (TimeoutError from wait_for), not in the client
        assert caught.value.kind == "timeout"
        assert (await http.request("GET", srv.url + "/again", timeout_s=0.5)).content == b"ok"  # slot and pool fine
        assert srv.requests[-1].startswith(b"GET /again")


async def test_a_waiter_cancelled_as_a_slot_frees_is_cancelled_and_the_slot_goes_on() -> None:
    # Cancelled in the loop turn the connection was handed over: the queue had already been read, and removing
    # the waiter's entry again raised ValueError, which came out as an HttpTransportError: the cancellation was lost.
    tasks: dict[str, asyncio.Task[Any]] = {}
    async with (
        raw(answer_then_block_the_loop(0.0, lambda: tasks["b"].cancel())) as srv,
        client(max_connections=1) as http,
    ):
        first = asyncio.create_task(http.request("GET", srv.url + "/a", timeout_s=5.0))
        await asyncio.wait_for(srv.got_request.wait(), 5)
        tasks["b"] = asyncio.create_task(http.request("GET", srv.url + "/b", timeout_s=5.0))
        assert (await first).content == b"ok"
        with pytest.raises(asyncio.CancelledError):
            await tasks["b"]
        srv.handle = answer_each
        assert (await http.request("GET", srv.url + "/c", timeout_s=1.0)).content == b"ok"


async def test_a_waiters_deadline_in_the_turn_a_slot_frees_is_a_timeout() -> None:
    # The same turn, for a deadline: the error was "ValueError: ('http://host:port', <Future ...>) is not in deque"
    # (the kind ValueError, and an origin in the text), not a timeout.
    async with raw(answer_then_block_the_loop(0.3)) as srv, client(max_connections=1) as http:
        first = asyncio.create_task(http.request("GET", srv.url + "/a", timeout_s=5.0))
        await asyncio.wait_for(srv.got_request.wait(), 5)
        error = await rejected(http, srv.url + "/b", timeout_s=0.1)
        await first
        assert error.kind == "timeout" and "127.0.0.1" not in str(error)


async def test_aclose_fails_a_request_in_flight_and_leaves_nothing_open() -> None:
    # The in-flight GET's connection, closed by aclose(), looked like one the server had closed: the GET was sent
    # once more on a new connection, which stayed open (pooled) in a client that said it was closed.
    async def slow(srv: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (head := await srv.read_request(reader)) is not None:
            if b"/slow" in head:
                await asyncio.sleep(0.2)
            writer.write(OK)

    async with raw(slow) as srv:
        http = FastHttpClient()
        await http.request("GET", srv.url + "/warm", timeout_s=5.0)  # a kept-alive connection to reuse
        task = asyncio.create_task(http.request("GET", srv.url + "/slow", timeout_s=5.0))
        await _until(lambda: len(srv.requests) == 2)
        await http.aclose()
        with pytest.raises(HttpTransportError) as caught:
            await task
        assert caught.value.kind == "ConnectionAbortedError"
        assert srv.connections == 1 and http.is_closed
        assert "open=0, idle=0" in repr(http)


async def test_aclose_fails_an_answer_running_to_the_end_of_the_connection() -> None:
    # Our own close ended the connection cleanly, which an answer without Content-Length takes as its end: the
    # request returned a cut body as a success.
    async def half(srv: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await srv.read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"result": {"isSucc')
        await srv.wait_eof(reader)

    async with raw(half) as srv:
        http = FastHttpClient()
        task = asyncio.create_task(http.request("GET", srv.url + "/", timeout_s=5.0))
        await asyncio.wait_for(srv.got_request.wait(), 5)
        await _until(lambda: any(c.got_bytes for c in http._conns))
        await http.aclose()
        with pytest.raises(HttpTransportError) as caught:
            await task
        assert caught.value.kind == "ConnectionAbortedError"


async def test_a_slot_handed_over_as_the_client_closes_is_not_carried_into_the_new_pool() -> None:
    # A freed slot went to a waiter of another origin, then aclose() ran before the waiter woke: it connected in
    # the new pool, which had never counted that slot (open connections past max_connections, the count drifting).
    async def slow(srv: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (head := await srv.read_request(reader)) is not None:
            if b"/slow" in head:
                await asyncio.sleep(0.05)
            writer.write(OK)

    async with raw(slow) as one, raw(slow) as other:
        http = FastHttpClient(max_connections=1)

        async def then_close() -> None:
            await http.request("GET", one.url + "/slow", timeout_s=5.0)
            await http.aclose()  # the same step as the release that handed the slot on

        first = asyncio.create_task(then_close())
        await asyncio.wait_for(one.got_request.wait(), 5)
        waiting = asyncio.create_task(http.request("GET", other.url + "/", timeout_s=5.0))
        await first
        with pytest.raises(HttpTransportError) as caught:
            await waiting
        assert caught.value.kind == "ConnectionAbortedError"
        assert http._used == len(http._conns) == 0
        await asyncio.gather(*(http.request("GET", other.url + f"/{i}", timeout_s=5.0) for i in range(3)))
        assert http._used == len(http._conns) == 1 and other.connections == 1  # the cap holds
        await http.aclose()


async def test_requests_that_give_up_waiting_leave_the_queue_at_once() -> None:
    # In an outage (every slot held by a stalled request) the requests that timed out or were cancelled while
    # waiting stayed queued until a slot freed, each holding its error, its traceback and its request's frames.
    async with raw(stall) as srv, client(max_connections=1) as http:
        held = asyncio.create_task(http.request("GET", srv.url + "/held", timeout_s=30.0))
        await asyncio.wait_for(srv.got_request.wait(), 5)
        timed_out = [asyncio.create_task(http.request("GET", srv.url + f"/t{i}", timeout_s=0.05)) for i in range(50)]
        cancelled = [asyncio.create_task(http.request("GET", srv.url + f"/c{i}", timeout_s=30.0)) for i in range(50)]
        await asyncio.sleep(0)
        for task in cancelled:
            task.cancel()
        results = await asyncio.gather(*timed_out, *cancelled, return_exceptions=True)
        assert sum(isinstance(r, HttpTransportError) for r in results) == 50
        assert sum(isinstance(r, asyncio.CancelledError) for r in results) == 50
        assert len(http._waiters) == 0 and not held.done()
        held.cancel()
        with pytest.raises(asyncio.CancelledError):
            await held


async def test_an_idle_connection_already_closing_is_not_reused() -> None:
    async with raw(answer_each) as srv, client() as http:
        await http.request("GET", srv.url + "/1", timeout_s=5.0)
        (idle,) = http._idle[srv.url]
        assert idle.transport is not None
        idle.transport.close()  # closing, its connection_lost not run yet
        # a POST is never sent twice: taking the closing connection would have failed it
        assert (await http.request("POST", srv.url + "/2", content=b"x", timeout_s=5.0)).content == b"ok"
        assert srv.connections == 2


async def test_a_body_until_eof_cut_by_a_reset_raises() -> None:
    async def reset(srv: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await srv.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npart of i")
        await writer.drain()
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
        writer.transport.abort()

    async with raw(reset) as srv, client() as http:
        assert (await rejected(http, srv.url + "/")).kind == "ConnectionClosedError"


# -- answers ------------------------------------------------------------------------------------------------------


async def test_chunked_answers_from_uvicorn_arrive_whole_on_one_connection() -> None:
    peers: set[Any] = set()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        peers.add(tuple(scope["client"]))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-many", b"1"), (b"x-many", b"2")]})
        for part in (b"alpha-", b"beta-" * 5000, b"gamma"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async with run_uvicorn(app, lifespan="off") as url, client() as http:
        for _ in range(2):
            answer = await http.request("GET", url + "/stream", timeout_s=5.0)
            assert answer.content == b"alpha-" + b"beta-" * 5000 + b"gamma"
            assert answer.headers.get("transfer-encoding") == "chunked"
            assert answer.headers.getall("x-many") == ["1", "2"]  # type: ignore[attr-defined]  # duplicates kept
        assert len(peers) == 1  # kept alive


async def test_a_body_until_eof_is_read_whole() -> None:
    reply = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it"
    async with raw(answer_with(reply)) as srv, client() as http:
        assert (await http.request("GET", srv.url + "/", timeout_s=5.0)).content == b"all of it"
        assert (await http.request("GET", srv.url + "/", timeout_s=5.0)).content == b"all of it"
        assert srv.connections == 2  # never reused


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..", "ConnectionClosedError"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabc", "ConnectionClosedError"),
        (b"HTTP/1.1 200 OK\r\nContent-Len", "ConnectionClosedError"),
        (b"\x16\x03\x01 garbage, not HTTP\r\n\r\n", "RemoteProtocolError"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", "RemoteProtocolError"),
        (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n", "RemoteProtocolError"),
    ],
    ids=["cut-mid-body", "cut-mid-chunk", "cut-mid-head", "garbage", "two-lengths", "upgrade"],
)
async def test_a_bad_or_cut_answer_raises(reply: bytes, kind: str) -> None:
    async with raw(answer_with(reply)) as srv, client() as http:
        error = await rejected(http, srv.url + "/tokens/tok-SECRET-1")
        assert error.kind == kind
        assert "tok-SECRET" not in str(error)


async def test_interim_answers_are_skipped() -> None:
    reply = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" + OK
    async with raw(answer_with(reply, OK, then_close=False)) as srv, client() as http:
        answer = await http.request("POST", srv.url + "/", content=b"body", timeout_s=5.0)
        assert (answer.status, answer.content, answer.headers.get("link")) == (200, b"ok", None)
        assert (await http.request("GET", srv.url + "/", timeout_s=5.0)).content == b"ok"
        assert srv.connections == 1  # still in step with the server


async def test_extra_bytes_after_an_answer_keep_the_connection_out_of_the_pool() -> None:
    async with raw(answer_with(OK + b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra", OK)) as srv, client() as http:
        assert (await http.request("GET", srv.url + "/", timeout_s=5.0)).content == b"ok"
        assert (await http.request("GET", srv.url + "/", timeout_s=5.0)).content == b"ok"  # not "extra"
        assert srv.connections == 2


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate"])
async def test_a_compressed_answer_is_decoded(encoding: str) -> None:
    text = b"compressed " * 200
    if encoding == "gzip":
        body = gzip.compress(text)
    elif encoding == "deflate":
        body = zlib.compress(text)
    else:
        packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        body = packer.compress(text) + packer.flush()
    name = encoding.removeprefix("raw-").encode()
    reply = b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nContent-Length: %d\r\n\r\n%s" % (name, len(body), body)
    async with raw(answer_with(reply)) as srv, client() as http:
        assert (await http.request("GET", srv.url + "/", timeout_s=5.0)).content == text
        assert b"accept-encoding" not in srv.requests[0].lower()


async def test_an_empty_answer_marked_compressed_is_empty() -> None:
    replies = (
        b"HTTP/1.1 204 No Content\r\nContent-Encoding: gzip\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 0\r\n\r\n",
    )
    async with raw(answer_with(*replies, then_close=False)) as srv, client() as http:
        assert [(await http.request("GET", srv.url + "/", timeout_s=5.0)).content for _ in replies] == [b"", b""]


async def test_an_unknown_or_broken_encoding_raises() -> None:
    unknown = b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 2\r\n\r\nok"
    broken = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\n\r\nok"
    async with raw(answer_with(unknown, broken)) as srv, client() as http:
        assert "Content-Encoding" in str(await rejected(http, srv.url + "/"))
        assert (await rejected(http, srv.url + "/")).kind == "RemoteProtocolError"


async def test_a_head_or_a_body_over_the_cap_raises() -> None:
    big_head = b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * MAX_HEAD_BYTES + b"\r\nContent-Length: 2\r\n\r\nok"
    size = MAX_BODY_BYTES + 1
    big_body = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size

    async def handle(srv: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await srv.read_request(reader)
        if head is None:
            return
        if b"/head" in head:
            writer.write(big_head)
        else:
            writer.write(big_body)
            chunk = b"b" * 65536
            for _ in range(size // len(chunk) + 1):
                writer.write(chunk)
                await writer.drain()
        await srv.wait_eof(reader)

    async with raw(handle) as srv, client() as http:
        assert f"over {MAX_HEAD_BYTES}" in str(await rejected(http, srv.url + "/head"))
        assert f"over {MAX_BODY_BYTES}" in str(await rejected(http, srv.url + "/body"))


# -- deadline, cancellation ---------------------------------------------------------------------------------------


async def test_a_stalled_answer_times_out_and_its_connection_is_closed() -> None:
    async def half_then_stall(srv: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await srv.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")  # then nothing
        await srv.wait_eof(reader)

    async with raw(half_then_stall) as srv, client() as http:
        error = await rejected(http, srv.url + "/tokens/tok-SECRET-2", timeout_s=0.2)
        assert error.kind == "timeout" and "tok-SECRET" not in str(error)
        await asyncio.wait_for(srv.client_gone.wait(), 5)
        assert "open=0" in repr(http)


async def test_a_cancelled_request_closes_its_connection() -> None:
    async def stall_once(srv: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if srv.connections == 1:
            await srv.read_request(reader)
            await srv.wait_eof(reader)
        else:
            await answer_each(srv, reader, writer)

    async with raw(stall_once) as srv, client() as http:
        task = asyncio.create_task(http.request("GET", srv.url + "/stall", timeout_s=5.0))
        await asyncio.wait_for(srv.got_request.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(srv.client_gone.wait(), 5)  # the server sees it closed
        assert (await http.request("GET", srv.url + "/next", timeout_s=5.0)).content == b"ok"
        assert srv.connections == 2  # never reused


# -- TLS, hosts, requests -----------------------------------------------------------------------------------------


async def test_https_with_sni_and_the_given_context() -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    names: list[str | None] = []
    server_ctx.sni_callback = lambda _sock, name, _ctx: names.append(name)  # type: ignore[assignment,func-returns-value]
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    async def hello(request: Request) -> Response:
        return Response.text(f"host={request.header('host')}")

    router = Router()
    router.add("GET", "/hello", hello)
    async with serve_http(router, ssl_context=server_ctx) as srv, client(ssl_context=client_ctx) as http:
        url = f"https://localhost:{srv.port}/hello"
        for _ in range(2):
            answer = await http.request("GET", url, timeout_s=5.0)
            assert answer.content == f"host=localhost:{srv.port}".encode()
        assert names == ["localhost"]  # one handshake, with SNI
    async with serve_http(router, ssl_context=server_ctx) as srv, client() as default:
        error = await rejected(default, f"https://localhost:{srv.port}/hello")  # the system's trust: refused
        assert "CERTIFICATE_VERIFY_FAILED" in str(error)


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6(), reason="no IPv6 loopback")
async def test_an_ipv6_literal_host() -> None:
    seen: list[bytes] = []

    async def handle(srv: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await srv.read_request(reader)
        seen.append(head or b"")
        writer.write(OK)
        await srv.wait_eof(reader)

    srv = Raw(handle)
    server = await asyncio.start_server(srv._on, "::1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with client() as http:
            assert (await http.request("GET", f"http://[::1]:{port}/v6?x=%20", timeout_s=5.0)).content == b"ok"
    finally:
        server.close()
    assert seen[0].startswith(b"GET /v6?x=%20 HTTP/1.1\r\n") and f"\r\nHost: [::1]:{port}\r\n".encode() in seen[0]


async def test_the_request_head_is_what_was_given() -> None:
    async with raw(answer_each) as srv, client() as http:
        await http.request("GET", srv.url + "?q=1#frag", headers={"X-A": "1"}, timeout_s=5.0)
        await http.request("POST", srv.url + "/p", timeout_s=5.0)
        await http.request("DELETE", srv.url + "/p", headers={"User-Agent": "game/1"}, timeout_s=5.0)
        get, post, delete = srv.requests
        port = srv.url.rsplit(":", 1)[1]
        assert (
            get
            == f"GET /?q=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-A: 1\r\nUser-Agent: gs_hooks/".encode()
            + (get.split(b"gs_hooks/", 1)[1])
        )
        assert b"content-length" not in get.lower()
        assert b"\r\nContent-Length: 0\r\n" in post
        assert b"\r\nUser-Agent: game/1\r\n" in delete and b"gs_hooks/" not in delete


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GE T", "/", {}),
        ("HEAD", "/", {}),
        ("GET", "/a b", {}),
        ("GET", "/a\x00", {}),
        ("GET", "/", {"Bad Name": "x"}),
        ("GET", "/", {"X-Ok": "a\r\nInjected: 1"}),
        ("GET", "/", {"X-Ok": "a\x00"}),
        ("GET", "/", {"X-Ok": "a\x0bb"}),
        ("GET", "/\u00e9", {}),
        ("GET", "/a\tb", {}),
        ("GET", "/", {"Host": "elsewhere"}),
        ("GET", "/", {"Transfer-Encoding": "chunked"}),
    ],
    ids=["method", "head", "space", "nul", "name", "crlf", "nul-value", "vt-value", "non-ascii", "tab", "host", "te"],
)
async def test_a_bad_request_raises_before_anything_is_sent(method: str, path: str, headers: dict[str, str]) -> None:
    async with raw(answer_each) as srv, client() as http:
        error = await rejected(http, srv.url + path, method, headers=headers)
        assert error.kind == "ValueError"
        assert srv.connections == 0


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/x",
        "http://user:pw@127.0.0.1/x",
        "127.0.0.1/x",
        "http:///x",
        "http://127.0.0.1\r\n:80/x",  # urlsplit alone drops the CR LF and connects
        "http://127.0.0.1\t/x",
        "http://h\u00f6st/x",
    ],
)
async def test_a_bad_url_raises(url: str) -> None:
    async with client() as http:
        assert (await rejected(http, url)).kind == "ValueError"


async def test_aclose_then_a_request_reopens() -> None:
    async with raw(answer_each) as srv:
        http = FastHttpClient()
        assert http.is_closed  # nothing open yet
        await http.request("GET", srv.url + "/", timeout_s=5.0)
        assert not http.is_closed
        await http.aclose()
        assert http.is_closed
        await asyncio.wait_for(srv.client_gone.wait(), 5)
        assert (await http.request("GET", srv.url + "/", timeout_s=5.0)).content == b"ok"
        await http.aclose()
        assert srv.connections == 2


def test_the_client_runs_on_uvloop_and_survives_a_loop_change() -> None:
    uvloop = pytest.importorskip("uvloop")
    http = FastHttpClient()

    async def once() -> bytes:
        async with raw(answer_each) as srv:
            return (await http.request("GET", srv.url + "/", timeout_s=5.0)).content

    loop = uvloop.new_event_loop()
    try:
        assert loop.run_until_complete(once()) == b"ok"
    finally:
        loop.close()
    plain = asyncio.new_event_loop()
    try:
        assert plain.run_until_complete(once()) == b"ok"  # the first loop's pool is dropped, not used
        plain.run_until_complete(http.aclose())
    finally:
        plain.close()


# -- the knob ----------------------------------------------------------------------------------------------------


async def test_the_knob_picks_aiohttp_through_setup_and_a_bad_value_is_named() -> None:
    async with Sandbox.serve(port=0, clock=FakeClock()) as sb:
        assert sb.gamebase is not None
        sb.gamebase.add_member("u1")
        token = sb.gamebase.issue_token("u1")
        env = {
            "GS_HOOKS_STATE": ":memory:",
            "GS_HOOKS_HTTP_CLIENT": "aiohttp",
            "GS_HOOKS_GAMEBASE_URL": sb.url,
            "GS_HOOKS_GAMEBASE_APP_ID": sb.gamebase_app_id,
            "GS_HOOKS_GAMEBASE_SECRET_KEY": sb.gamebase_secret,
            "GS_HOOKS_GAMEBASE_MAINTENANCE_POLL_S": "0",
            "GS_HOOKS_GAMEBASE_BAN_POLL_S": "0",
        }
        config = gs_hooks.Config.from_env(env)
        assert config.http_backend == "aiohttp"
        async with gs_hooks.setup(config) as hooks:
            assert (await hooks.verify_token("u1", token)).member.valid == "Y"
            assert isinstance(hooks.http, AutoHttpClient) and hooks.http.backend == "aiohttp"
        async with gs_hooks.setup(verify_only(sb)) as hooks:
            assert (await hooks.verify_token("u1", gs_hooks_token(sb))).member.valid == "Y"
            assert isinstance(hooks.http, AutoHttpClient) and hooks.http.backend == "fast"
    with pytest.raises(gs_hooks.ConfigError, match="GS_HOOKS_HTTP_CLIENT"):
        gs_hooks.Config.from_env({"GS_HOOKS_HTTP_CLIENT": "fastest"})


def gs_hooks_token(sb: Sandbox) -> str:
    assert sb.gamebase is not None
    return sb.gamebase.issue_token("u1")


async def test_proxies_in_the_environment_take_aiohttp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # aiohttp honours it: the request still goes straight to the server
    async with raw(answer_each) as srv:
        http = AutoHttpClient()
        try:
            assert (await http.request("GET", srv.url + "/", timeout_s=5.0)).content == b"ok"
            assert http.backend == "aiohttp"
        finally:
            await http.aclose()


async def _until(check: Callable[[], bool]) -> None:
    while not check():
        await asyncio.sleep(0.005)
