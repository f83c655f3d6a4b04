"""The one sqlite store shared by the CCU spool, CCU history, the ban book and poller watermarks.

sqlite3 calls block, so async callers go through :meth:`Store.run`, which runs a function on a worker thread
holding the store's lock (one connection, serialized). Sync callers at start-up may use :meth:`Store.run_sync`.
WAL journal with ``synchronous=FULL``: a committed row survives ``kill -9`` and power loss.

Opening is strict, so that a store that lost its data is never mistaken for an empty one:

- a new store file is written whole (sqlite header, WAL mode, the ``gs_hooks_meta`` table) under a temporary
  name, then linked into place: gs_hooks never leaves an empty or half-made store file behind;
- so an existing **0-byte** file is refused (truncated, or made by something else), as is a file that is not a
  sqlite database, one shorter than its header says (truncated), or one that fails ``PRAGMA quick_check``;
- every open ends with a committed write (``gs_hooks_meta.opened_at``), so a read-only file or directory and a
  full disk are found at start.

Each refusal is a :class:`~gs_hooks.StoreError` naming the file, the setting, and what to do. While running, a
failed sqlite call marks the store unhealthy (:meth:`Store.health`) until a later call commits a change.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import anyio.to_thread

from ._exceptions import StoreError
from ._health import ComponentHealth

__all__ = ["Store"]

T = TypeVar("T")

_MAGIC = b"SQLite format 3\x00"
_LOW_SPACE = 1 << 20  # below this many free bytes, a write failure is reported as a full disk
_META = (
    "CREATE TABLE IF NOT EXISTS gs_hooks_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "INSERT OR IGNORE INTO gs_hooks_meta (key, value) VALUES ('format', '1')",
)
_PROBE = "INSERT INTO gs_hooks_meta (key, value) VALUES ('opened_at', ?) ON CONFLICT (key) DO UPDATE SET value = ?"


class Store:
    """A sqlite database used from async code.

    Args:
        path: file path, or ``:memory:`` for a store that does not persist.
        setting: the setting that names the file (in error messages): ``GS_HOOKS_STATE`` or ``GS_HOOKS_CCU_SPOOL``.
        name: the store's name in its :meth:`health` report.

    Raises:
        StoreError: the file cannot be used as a store (see the module's docstring); nothing was changed in it.
    """

    def __init__(self, path: str, *, setting: str = "GS_HOOKS_STATE", name: str = "store") -> None:
        self.path = path
        self.setting = setting
        self.name = name
        self._lock = threading.Lock()
        self._closed = False
        self._state: tuple[str | None, float] = (None, time.time())  # (error or None, since)
        if path == ":memory:":
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
            self._conn.execute("PRAGMA busy_timeout=30000")
        else:
            self._conn = _open_file(path, setting)

    def run_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` under the store lock, in this thread.

        A sqlite error marks the store unhealthy; a later call that commits a change marks it healthy again.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("store is closed")
            conn = self._conn
            before = conn.total_changes
            try:
                out = fn(conn)
            except sqlite3.Error as exc:
                if self._state[0] is None:
                    self._state = (f"{self.path}: {exc}", time.time())
                raise
            if self._state[0] is not None and conn.total_changes != before and not conn.in_transaction:
                self._state = (None, time.time())
            return out

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` under the store lock on a worker thread."""
        return await anyio.to_thread.run_sync(self.run_sync, fn)

    def health(self) -> ComponentHealth:
        """Whether the last sqlite calls worked: not ok from a failed call until a call commits a change.

        Returns:
            The report (``error`` names the file and sqlite's message); no IO.
        """
        error, since = self._state
        if self._closed:
            return ComponentHealth(name=self.name, ok=False, error="closed", since=since)
        return ComponentHealth(name=self.name, ok=error is None, error=error, since=since)

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __repr__(self) -> str:
        return f"Store({self.path!r})"


# -- opening a file store ------------------------------------------------------------------------------------------


def _open_file(path: str, setting: str) -> sqlite3.Connection:
    p = Path(path).expanduser()
    parent = p.resolve().parent
    if not parent.is_dir():
        raise StoreError(setting, path, f"directory {str(parent)!r} of the sqlite store does not exist")
    if p.exists():
        _check_file(p, path, setting)
    else:
        _create(p, path, setting)
    try:
        conn = sqlite3.connect(p, check_same_thread=False, isolation_level=None, timeout=30)
    except sqlite3.Error as exc:
        raise StoreError(setting, path, _diagnose(p, path, exc)) from exc
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=30000")
        problems = [str(r[0]) for r in conn.execute("PRAGMA quick_check(5)")]
        if problems != ["ok"]:
            detail = "; ".join(problems)[:300]
            raise StoreError(setting, path, f"{path} is damaged ({detail}); {_RESTORE}")
        now = repr(time.time())
        conn.execute("BEGIN IMMEDIATE")
        for statement in _META:  # a store made before the marker existed gets it here
            conn.execute(statement)
        conn.execute(_PROBE, (now, now))
        conn.execute("COMMIT")
    except BaseException as exc:
        conn.close()
        if isinstance(exc, sqlite3.Error):
            raise StoreError(setting, path, _diagnose(p, path, exc)) from exc
        raise
    return conn


_RESTORE = (
    "restore it from a backup, or move it away to start with an empty store (the bans and CCU history it held "
    "are then gone)"
)


def _check_file(p: Path, path: str, setting: str) -> None:
    """Refuse, before sqlite touches it, a file that cannot be a store with its data intact."""
    if p.is_dir():
        raise StoreError(setting, path, f"{path} is a directory, not a sqlite file")
    try:
        size = p.stat().st_size
        with p.open("rb") as f:
            head = f.read(100)
    except OSError as exc:
        raise StoreError(setting, path, f"{path} cannot be read ({exc}): make it readable by this process") from exc
    if size == 0:
        raise StoreError(
            setting,
            path,
            f"{path} is empty (0 bytes). gs_hooks writes a new store whole, so an empty file is a store that was "
            "truncated (its bans and CCU history are gone) or a file made by something else: restore it from a "
            "backup; if it never held data, delete it and an empty store is created",
        )
    if len(head) < 100 or not head.startswith(_MAGIC):
        raise StoreError(setting, path, f"{path} is not a sqlite database (overwritten or damaged); {_RESTORE}")
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(head[28:32], "big")
    size_valid = head[24:28] == head[92:96]  # the header's page count is maintained (every sqlite since 3.7)
    if page_size < 512 or page_size & (page_size - 1):
        raise StoreError(setting, path, f"{path} has a damaged sqlite header; {_RESTORE}")
    if size % page_size or (size_valid and size < pages * page_size):
        expected = f"; its header says {pages * page_size}" if size_valid else ""
        raise StoreError(setting, path, f"{path} is truncated ({size} bytes{expected}); {_RESTORE}")


def _create(p: Path, path: str, setting: str) -> None:
    """Write a new store whole under a temporary name, then link it into place (never over an existing file)."""
    tmp = p.with_name(f".{p.name}.{os.getpid()}.{secrets.token_hex(4)}.new")
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")  # recorded in the file's header
            conn.execute("PRAGMA synchronous=FULL")
            for statement in _META:
                conn.execute(statement)
        finally:
            conn.close()  # checkpoints: the whole store is in the file
        try:
            os.link(tmp, p)
        except FileExistsError:
            pass  # another process created it meanwhile: open theirs
        except OSError:  # a filesystem without hard links
            if not p.exists():
                os.replace(tmp, p)
        _fsync_dir(p.parent)
    except (sqlite3.Error, OSError) as exc:
        raise StoreError(setting, path, _diagnose(p, path, exc, creating=True)) from exc
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
            with contextlib.suppress(OSError):
                leftover.unlink()


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _diagnose(p: Path, path: str, exc: BaseException, *, creating: bool = False) -> str:
    """What went wrong opening the store, in an operator's words, from sqlite's code and the file system."""
    code = str(getattr(exc, "sqlite_errorname", ""))
    if code.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return f"{path} is damaged or not a sqlite database ({exc}); {_RESTORE}"
    directory = p.resolve().parent
    exists = p.exists()
    if (
        code.startswith("SQLITE_READONLY")
        or (exists and not os.access(p, os.R_OK | os.W_OK))
        or not os.access(directory, os.W_OK | os.X_OK)
    ):
        return (
            f"{path} cannot be {'created' if creating else 'written'} ({exc}): make the file and its directory "
            f"{str(directory)!r} writable by this process (sqlite also creates {p.name}-wal and {p.name}-shm "
            "beside it)"
        )
    try:
        free: int | None = shutil.disk_usage(directory).free
    except OSError:
        free = None
    if code == "SQLITE_FULL" or (free is not None and free < _LOW_SPACE):
        return f"the disk holding {path} is full ({free} bytes free; {exc}): free some space, then start again"
    return f"cannot {'create' if creating else 'open'} {path} ({exc}): check the file, its directory and the disk"
