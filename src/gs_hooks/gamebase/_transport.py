"""What the Gamebase client adds around httpx: the pool gate, transaction ids, Retry-After, quiet request logs.

Pool gate: concurrent requests enter httpx's connection pool one at a time, each once the previous one holds a
connection (learned from httpcore's ``trace`` extension; see :class:`PoolGate`), waiting at most the client's
timeout; a transport that reports no such traces is not gated.

Logs: httpx's own ``HTTP Request:`` line for our requests is demoted to DEBUG (kept only when the ``httpx`` logger
is enabled for DEBUG) and its token segment masked (:class:`_RedactTokenPaths`).
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import re
from collections.abc import Mapping
from typing import Any, Final

import anyio
import httpx

from ._slots import Slots

__all__ = ["RETRY_AFTER_S", "PoolGate", "install_log_filter", "new_transaction_id", "retry_after"]

_TOKEN_SEGMENT = re.compile(r"(/tokens/)[^/?#\s\"']+")
_OUR_URLS: set[str] = set()  # the URL prefix of every GamebaseClient made in this process


class _RedactTokenPaths(logging.Filter):
    """On httpx's logger: our requests' ``HTTP Request: GET <url>`` lines go to DEBUG, with the token masked.

    httpx logs every request at INFO; for the Gamebase client (a maintenance poll, a ban poll, a verification per
    login) that is noise at the level operators run. A line about a Gamebase API URL of one of our clients is
    demoted to DEBUG and only kept when the ``httpx`` logger is enabled for DEBUG (turn it on with
    ``logging.getLogger("httpx").setLevel(logging.DEBUG)``); the game's own httpx requests are left alone. Any
    ``/tokens/<token>`` path segment in a kept line is masked as ``/tokens/***``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and args:
            changed = False
            ours = False
            new: list[object] = []
            for arg in args:
                if isinstance(arg, httpx.URL | str):
                    text = str(arg)
                    if not ours and _OUR_URLS and text.startswith(tuple(_OUR_URLS)):
                        ours = True
                    if "/tokens/" in text:
                        arg = _TOKEN_SEGMENT.sub(r"\1***", text)
                        changed = True
                new.append(arg)
            if changed:
                record.args = tuple(new)
            if ours and record.levelno > logging.DEBUG:
                record.levelno = logging.DEBUG
                record.levelname = logging.getLevelName(logging.DEBUG)
                if not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
                    return False
        if isinstance(record.msg, str) and "/tokens/" in record.msg:
            record.msg = _TOKEN_SEGMENT.sub(r"\1***", record.msg)
        return True


def install_log_filter(base_url: str) -> None:
    """Demote and mask httpx's request lines for the Gamebase API at ``base_url`` (see :class:`_RedactTokenPaths`)."""
    _OUR_URLS.add(base_url + "/tcgb-")  # every Gamebase service path starts so
    httpx_log = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactTokenPaths) for f in httpx_log.filters):
        httpx_log.addFilter(_RedactTokenPaths())


RETRY_AFTER_S: Final = 5.0
"""The ``retry_after_s`` hint of a :class:`~gs_hooks.PlatformUnavailableError` when Gamebase sent no Retry-After."""


def retry_after(value: str | None) -> float | None:
    """A ``Retry-After`` in seconds (1..300), or None when absent or not delta-seconds."""
    text = (value or "").strip()
    if not (text.isascii() and text.isdigit()):
        return None
    return float(min(max(int(text[:6]), 1), 300))


def _tx_prefix() -> str:
    r = os.urandom(10).hex()
    return f"{r[:8]}-{r[8:12]}-4{r[12:15]}-{'89ab'[int(r[15], 16) & 3]}{r[16:19]}-"


_tx_state = [_tx_prefix()]
_tx_counter = itertools.count(random.getrandbits(40))


def _new_tx_prefix() -> None:
    _tx_state[0] = _tx_prefix()


if hasattr(os, "register_at_fork"):  # a forked process draws its own prefix
    os.register_at_fork(after_in_child=_new_tx_prefix)


def new_transaction_id() -> str:
    """A fresh transaction id, shaped like a UUID: a random per-process prefix and a counter.

    Why not ``uuid.uuid4()``: it reads 16 bytes from the OS and builds a UUID object per request (measured in the
    login-storm bench); a random prefix plus a 48-bit counter is as unique within a process and across processes.
    """
    return f"{_tx_state[0]}{next(_tx_counter) & 0xFFFFFFFFFFFF:012x}"


# httpcore's trace events that mean "this request holds its connection" (headers going out on one) or "opens
# one that no other request can take" (plain TCP, a SOCKS proxy's TCP, a unix socket).
_CLAIM_EVENTS = ("send_request_headers.started", "connect_tcp.started", "connect_unix_socket.started")


class PoolGate(Slots):
    """One slot in front of httpx's connection pool, opened by each request once it holds a connection.

    Why: httpcore's pool hands an idle connection to every request that arrives before the first one has marked
    it active (two lock checkpoints later); all but one then fail with ``ConnectionNotAvailable`` and go round
    the pool again, which measured up to a retry per request and ~30 % more CPU per verification at 8 concurrent
    requests (``bench.gamebase``). Letting our next request into the pool only once the previous one holds its
    connection (or is opening a new one, which no other request can take) avoids those retries.

    Args:
        timeout_s: how long a request waits at the gate before it goes in regardless (the request ahead may sit
            in a full pool).

    Attributes:
        traced: whether the transport reports when a request holds a connection (until it does, no gate).
    """

    __slots__ = ("timeout_s", "traced")

    def __init__(self, timeout_s: float) -> None:
        super().__init__(1)
        self.timeout_s = timeout_s
        self.traced = False

    async def send(self, http: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
        """``http.send(request)`` through the gate."""
        extensions = request.extensions
        if "trace" in extensions:  # someone else traces this request: stay out of the way
            return await http.send(request)
        held = False
        if self.traced:
            held = self.acquire_nowait()
            if not held:
                with anyio.move_on_after(self.timeout_s) as waited:
                    await self.acquire()
                held = not waited.cancelled_caught
        claim = _Claim(self, extensions, held)
        extensions["trace"] = claim
        try:
            return await http.send(request)
        finally:
            claim.open()


class _Claim:
    """The ``trace`` extension of one request: opens the gate once httpcore has put the request on a connection."""

    __slots__ = ("extensions", "gate", "held")

    def __init__(self, gate: PoolGate, extensions: dict[str, Any], held: bool) -> None:
        self.gate = gate
        self.extensions = extensions
        self.held = held

    async def __call__(self, name: str, info: Mapping[str, Any]) -> None:
        if name.endswith(_CLAIM_EVENTS):
            if self.extensions.get("trace") is self:  # a transport may have chained its own trace: keep that
                del self.extensions["trace"]  # nothing more to learn from this request
            self.gate.traced = True
            self.open()

    def open(self) -> None:
        """Release the slot this request holds (once)."""
        if self.held:
            self.held = False
            self.gate.release()
