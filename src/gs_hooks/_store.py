"""The one sqlite store shared by the CCU spool, CCU history, the ban book and poller watermarks.

sqlite3 calls block, so async callers go through :meth:`Store.run`, which runs a function on a worker thread
holding the store's lock (one connection, serialized). Sync callers at start-up may use :meth:`Store.run_sync`.
WAL journal with ``synchronous=FULL``: a committed row survives ``kill -9`` and power loss.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import anyio.to_thread

from ._exceptions import ConfigError

__all__ = ["Store"]

T = TypeVar("T")


class Store:
    """A sqlite database used from async code.

    Args:
        path: file path, or ``:memory:`` for a store that does not persist.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        if path != ":memory:":
            parent = Path(path).expanduser().resolve().parent
            if not parent.is_dir():
                raise ConfigError("GS_HOOKS_STATE", f"directory {str(parent)!r} of the sqlite store does not exist")
        try:
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        except sqlite3.Error as exc:
            raise ConfigError("GS_HOOKS_STATE", f"cannot open sqlite store {path!r}: {exc}") from exc
        self._lock = threading.Lock()
        self._closed = False
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA busy_timeout=30000")

    def run_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` under the store lock, in this thread."""
        with self._lock:
            if self._closed:
                raise RuntimeError("store is closed")
            return fn(self._conn)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` under the store lock on a worker thread."""
        return await anyio.to_thread.run_sync(self.run_sync, fn)

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __repr__(self) -> str:
        return f"Store({self.path!r})"
