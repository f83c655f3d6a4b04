"""The sqlite store at start (issue 14.7): a store that lost its data or cannot be written is refused with a
StoreError naming the file, the setting and what to do, never opened as an empty store; a new store is written
whole; a failing store shows in ``/healthz`` and recovers; bans lost at exit are logged once.

The broken files are real: truncated, overwritten with garbage, damaged in a b-tree page, on a read-only mount,
on a full tmpfs (the last two in a mount namespace of a child process, ``unshare -rm``, so no root is needed
where user namespaces are allowed).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import anyio
import httpx
import pytest

import gs_hooks
from gs_hooks import KST, FakeClock, StoreError
from gs_hooks._store import Store
from gs_hooks.bans import Ban

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=KST)
SRC = str(Path(__file__).resolve().parents[1] / "src")


def bans(n: int) -> list[Ban]:
    return [Ban(player_key=f"p{i}", source="hive", status="permanent", starts_at=T0) for i in range(n)]


async def _store_with_bans(path: Path, n: int) -> None:
    hooks = gs_hooks.setup(gs_hooks.Config(state_path=str(path)), clock=FakeClock(T0))
    async with hooks:
        await hooks.bans.apply(bans(n))


def store_with_bans(path: Path, n: int = 121) -> None:
    """A real state store holding ``n`` bans, written and closed by the library."""
    anyio.run(_store_with_bans, path, n)
    assert not Path(str(path) + "-wal").exists()  # closed cleanly: everything is in the file


async def _start(path: Path) -> None:
    hooks = gs_hooks.setup(gs_hooks.Config(state_path=str(path)), clock=FakeClock(T0))
    async with hooks:
        hooks.bans.active_ban("p0")


def start_fails(path: Path) -> StoreError:
    with pytest.raises(StoreError) as info:
        anyio.run(_start, path)
    err = info.value
    assert err.path == str(path) and err.setting == "GS_HOOKS_STATE"
    assert str(err).startswith("GS_HOOKS_STATE: ") and str(path) in str(err)
    return err


def test_a_zero_byte_state_file_is_refused_instead_of_starting_empty(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    store_with_bans(path)
    path.write_bytes(b"")  # truncated to 0 bytes (a bad restore, a full disk during a copy)
    err = start_fails(path)
    assert "empty (0 bytes)" in str(err) and "restore it from a backup" in str(err)
    assert path.stat().st_size == 0  # nothing was written into it


def test_a_truncated_state_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    store_with_bans(path)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 4096, len(data) - 100):
        path.write_bytes(data[:cut])
        err = start_fails(path)
        assert "truncated" in str(err), str(err)
        assert path.stat().st_size == cut


def test_a_garbage_state_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    path.write_bytes(b"this is not a database\n" * 500)
    err = start_fails(path)
    assert "not a sqlite database" in str(err)


def test_a_damaged_page_is_found_by_the_integrity_check(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    store_with_bans(path)
    data = bytearray(path.read_bytes())
    page = 4096
    # scribble over the cell area of the last page (a b-tree page of the ban table): the header stays valid
    data[-page + 200 : -8] = b"\xa5" * (page - 208)
    path.write_bytes(bytes(data))
    err = start_fails(path)
    assert "damaged" in str(err)


def test_a_new_store_is_written_whole_and_an_empty_sqlite_file_opens(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    store = Store(str(path))
    store.close()
    assert path.stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.sqlite3"]  # no temporary file left behind
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM gs_hooks_meta WHERE key='format'").fetchone() == ("1",)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()
    # a file sqlite itself made, with no table at all, holds nothing to lose: it opens
    other = tmp_path / "made-by-sqlite.db"
    conn = sqlite3.connect(other)
    conn.execute("VACUUM")
    conn.close()
    Store(str(other)).close()


def test_a_store_made_before_the_marker_keeps_its_bans(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    store_with_bans(path, n=3)
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE gs_hooks_meta")  # as an older gs_hooks left it
    conn.commit()
    conn.close()
    anyio.run(_start, path)  # opens, keeps its bans
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM bans_book").fetchone() == (3,)
    assert conn.execute("SELECT value FROM gs_hooks_meta WHERE key='format'").fetchone() == ("1",)
    conn.close()


# -- read-only and full disks, for real, in a mount namespace of a child process ------------------------------------


def _namespaces() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=30).returncode == 0


CHILD = """
import asyncio, json, os, sys
from datetime import datetime
import gs_hooks
from gs_hooks import KST, FakeClock
from gs_hooks._store import Store
from gs_hooks.bans import Ban

path = sys.argv[1]

async def make():
    hooks = gs_hooks.setup(gs_hooks.Config(state_path=path), clock=FakeClock(datetime(2026, 3, 1, tzinfo=KST)))
    async with hooks:
        t0 = datetime(2026, 3, 1, tzinfo=KST)
        await hooks.bans.apply([Ban(player_key=f"p{i}", source="hive", status="permanent", starts_at=t0)
                                for i in range(121)])

async def start():
    hooks = gs_hooks.setup(gs_hooks.Config(state_path=path))
    try:
        async with hooks:
            return {"started": True}
    except gs_hooks.StoreError as exc:
        return {"error": str(exc), "path": exc.path, "setting": exc.setting}

{body}
"""


def run_in_namespace(tmp_path: Path, mount: str, body: str) -> dict[str, object]:
    """Run ``body`` (Python) in a child with ``mount`` (shell) applied in a private mount namespace."""
    if not _namespaces():
        pytest.skip("needs unshare -rm (a mount namespace) to make a real read-only or full filesystem")
    script = tmp_path / "child.py"
    script.write_text(CHILD.replace("{body}", textwrap.dedent(body)))
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = f"{mount} && exec {sys.executable} {script} {tmp_path / 'disk' / 'state.sqlite3'}"
    out = subprocess.run(["unshare", "-rm", "sh", "-c", cmd], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_a_store_on_a_read_only_filesystem_is_refused_at_start(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    store_with_bans(disk / "state.sqlite3")
    result = run_in_namespace(
        tmp_path,
        f"mount --bind {disk} {disk} && mount -o remount,bind,ro {disk}",
        "print(json.dumps(asyncio.run(start())))",
    )
    assert result["setting"] == "GS_HOOKS_STATE" and result["path"] == str(disk / "state.sqlite3")
    assert "cannot be written" in str(result["error"]) and "writable by this process" in str(result["error"])
    assert sqlite3.connect(disk / "state.sqlite3").execute("SELECT count(*) FROM bans_book").fetchone() == (121,)


def test_a_store_on_a_full_disk_is_refused_at_start(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    body = """
        asyncio.run(make())
        fd = os.open(os.path.join(os.path.dirname(path), "filler"), os.O_WRONLY | os.O_CREAT)
        try:  # fill the disk
            while os.write(fd, b"x" * 4096):
                pass
        except OSError:
            pass
        os.close(fd)
        print(json.dumps(asyncio.run(start())))
    """
    result = run_in_namespace(tmp_path, f"mount -t tmpfs -o size=512k tmpfs {disk}", body)
    assert result["setting"] == "GS_HOOKS_STATE"
    assert "is full" in str(result["error"]) and "free some space" in str(result["error"])


# -- while running --------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_store_that_cannot_be_written_shows_in_healthz_and_recovers(tmp_path: Path) -> None:
    config = gs_hooks.Config(
        state_path=str(tmp_path / "state.sqlite3"),
        listener=gs_hooks.ListenerConfig(listen="127.0.0.1:0"),
    )
    clock = FakeClock(T0)
    hooks = gs_hooks.setup(config, clock=clock)
    async with hooks, httpx.AsyncClient() as http:
        assert hooks.listener is not None
        url = hooks.listener.url + "/healthz"
        await hooks.bans.apply(bans(10))
        doc = (await http.get(url)).json()
        assert doc["stores"] == [{"name": "store", "ok": True, "error": None, "since": doc["stores"][0]["since"]}]
        # the disk fills up: sqlite may not grow the file by one more page
        pages = hooks.store.run_sync(lambda c: c.execute("PRAGMA page_count").fetchone()[0])
        hooks.store.run_sync(lambda c: c.execute(f"PRAGMA max_page_count={pages}"))
        error = ""
        for k in range(200):  # until a batch needs a new page
            batch = [
                Ban(player_key=f"q{k}-{i}", source="api", status="permanent", starts_at=T0, message="x" * 200)
                for i in range(20)
            ]
            try:
                await hooks.bans.apply(batch)
            except sqlite3.OperationalError as exc:
                error = str(exc)
                break
        assert error == "database or disk is full"
        answer = await http.get(url)
        assert answer.status_code == 200  # alive: the bans are held in memory, a restart would lose them
        store = answer.json()["stores"][0]
        assert store["ok"] is False and "database or disk is full" in store["error"]
        assert str(tmp_path / "state.sqlite3") in store["error"]
        # space comes back: the retry writes the held bans, the store is healthy again
        hooks.store.run_sync(lambda c: c.execute("PRAGMA max_page_count=4294967294"))
        await clock.advance(60)
        await hooks.bans.tick()
        assert (await http.get(url)).json()["stores"][0]["ok"] is True
        assert hooks.bans.unsaved_count == 0


@pytest.mark.anyio
async def test_bans_lost_at_exit_are_logged_once_with_the_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # a platform ban source is configured, so the ban timer runs (and flushes) before the Hooks flush
    config = gs_hooks.Config(
        state_path=str(tmp_path / "state.sqlite3"),
        hive=gs_hooks.HiveConfig(auth_key=gs_hooks.Secret("k" * 32), game_index=539),
    )
    clock = FakeClock(T0)
    hooks = gs_hooks.setup(config, clock=clock)
    async with hooks:
        assert "bans" in hooks.health()["components"]
        hooks.store.run_sync(lambda c: c.execute("PRAGMA query_only=1"))  # every write fails from here
        for player in ("a", "b", "c"):
            with pytest.raises(sqlite3.OperationalError):
                await hooks.ban(player, T0 + timedelta(days=1))
    lost = [r for r in caplog.records if "lost at exit" in r.getMessage()]
    assert len(lost) == 1, [r.getMessage() for r in lost]
    assert lost[0].levelno == logging.ERROR
    assert lost[0].getMessage().startswith(f"3 bans could not be written to the store {tmp_path / 'state.sqlite3'}")
