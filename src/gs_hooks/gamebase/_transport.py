"""What the Gamebase client adds around the HTTP client: transaction ids, Retry-After, quiet request logs.

(The pool gate that let requests into httpx's connection pool one at a time is gone: on asyncio the requests go
through aiohttp, whose pool has no such contention; a game that hands in its own ``httpx.AsyncClient``, or runs
on trio, gets httpx's pool as it is.)

Logs (requests through httpx; aiohttp logs none): httpx's own ``HTTP Request:`` line for our requests is demoted
to DEBUG (kept only when the ``httpx`` logger is enabled for DEBUG) and its token segment masked
(:class:`_RedactTokenPaths`).
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import re
from typing import Final

import httpx

__all__ = ["RETRY_AFTER_S", "install_log_filter", "new_transaction_id", "retry_after"]

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
