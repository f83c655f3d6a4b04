"""The parts the fleet story (``--demo --fleet N``) runs: a private ``redis-server``, game processes (this example's
server in fleet mode, each a separate OS process) and a small client of their admin API.

Every part is stopped by its ``stop()`` (``redis-server`` and the game processes: SIGTERM, then SIGKILL after a
grace); :func:`fleet_parts` stops them all on every way out of its ``async with``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aredis

ROOT = Path(__file__).resolve().parents[2]  # where ``python -m examples.asyncio_server`` runs
REDIS_MISSING = (
    "the fleet demo needs a private redis-server and none is on PATH: install it "
    "(Debian/Ubuntu: apt-get install redis-server) and run the demo again"
)
_GAME_LINE = re.compile(r"^game server\s+tcp://(\S+):(\d+)")
_LISTENER_LINE = re.compile(r"^webhook listener\s+(http://\S+)")
_FLEET_LINE = re.compile(r"^fleet\s+process (\S+)")


class PartFailed(RuntimeError):
    """A part of the fleet story did not start, or died."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _stop_process(proc: asyncio.subprocess.Process, grace_s: float) -> None:
    """SIGTERM, then SIGKILL after ``grace_s``; always reaped."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
    await proc.wait()


class PrivateRedis:
    """A ``redis-server`` of its own (loopback, a free port, a temporary directory, no persistence: it lives as long
    as the story), and a client of it.

    Args:
        binary: the ``redis-server`` executable.
        directory: where its files go.
    """

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.port = _free_port()
        self.proc: asyncio.subprocess.Process | None = None
        self.client: aredis.Redis = aredis.Redis(host="127.0.0.1", port=self.port, decode_responses=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self, timeout_s: float = 10.0) -> None:
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory), "--save", ""]
        args += ["--appendonly", "no", "--logfile", str(self.directory / "redis.log")]
        self.proc = await asyncio.create_subprocess_exec(
            self.binary, *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        async with asyncio.timeout(timeout_s):
            while True:
                if self.proc.returncode is not None:
                    raise PartFailed(f"redis-server exited with {self.proc.returncode} (see {self.directory})")
                with contextlib.suppress(OSError, aredis.ConnectionError):
                    if await self.client.ping():
                        return
                await asyncio.sleep(0.05)

    async def get(self, key: str) -> str | None:
        value = await self.client.get(key)
        return None if value is None else str(value)

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.client.aclose()
        if self.proc is not None:
            await _stop_process(self.proc, grace_s=5.0)


class GameProcess:
    """One game process: ``python -m examples.asyncio_server --port 0`` with the fleet's ``GS_HOOKS_*`` settings.

    It reads what the server prints (game port, webhook listener, fleet process id) and keeps the tail of its
    stderr for a report.

    Args:
        number: 1, 2, 3... (how the story names it).
        env: the process's whole environment.
        verbose: pass ``--verbose`` (gs_hooks logs at INFO on its stderr).
    """

    def __init__(self, number: int, env: dict[str, str], *, verbose: bool = False) -> None:
        self.number = number
        self.env = env
        self.verbose = verbose
        self.server_id = env["GS_HOOKS_SERVER_ID"]
        self.proc: asyncio.subprocess.Process | None = None
        self.host = "127.0.0.1"
        self.port = 0
        self.listener = ""
        self.fleet_pid = ""
        self.stderr: deque[str] = deque(maxlen=20)
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def name(self) -> str:
        return f"process {self.number}"

    @property
    def os_pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self, timeout_s: float) -> None:
        """Start it; return once it printed its game port, listener and fleet process id."""
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "examples.asyncio_server",
            "--port",
            "0",
            *(["--verbose"] if self.verbose else []),
            cwd=ROOT,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self._tasks = [asyncio.create_task(self._read_stdout()), asyncio.create_task(self._read_stderr())]
        waiting = asyncio.create_task(self._ready.wait())
        exited = asyncio.create_task(self.proc.wait())
        done, _ = await asyncio.wait((waiting, exited), timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        exited.cancel()
        if waiting not in done:
            why = f"exited with {self.proc.returncode}" if exited in done else f"not ready within {timeout_s:g} s"
            raise PartFailed(f"{self.name} {why}; stderr: {self.stderr_tail()}")

    async def _read_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode(errors="replace").strip()
            if m := _GAME_LINE.match(line):
                self.host, self.port = m.group(1), int(m.group(2))
            elif m := _LISTENER_LINE.match(line):
                self.listener = m.group(1)
            elif m := _FLEET_LINE.match(line):
                self.fleet_pid = m.group(1)
            if self.port and self.listener and self.fleet_pid:
                self._ready.set()

    async def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        async for raw in self.proc.stderr:
            self.stderr.append(raw.decode(errors="replace").rstrip())

    def stderr_tail(self, lines: int = 20) -> str:
        return " | ".join(list(self.stderr)[-lines:]) or "(empty)"

    async def kill9(self) -> None:
        """``kill -9``: no flush, no goodbye (its membership and lease simply stop being renewed)."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None:
            await _stop_process(self.proc, grace_s=10.0)
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class Admin:
    """The admin API of every game process (``/admin/...`` on its listener, the key the story gave them all)."""

    def __init__(self, key: str) -> None:
        self.http = httpx.AsyncClient(timeout=10.0, headers={"authorization": f"Bearer {key}"})

    async def status(self, game: GameProcess) -> dict[str, Any]:
        r = await self.http.get(game.listener + "/admin/status")
        r.raise_for_status()
        return dict(r.json())

    async def holds_ban(self, game: GameProcess, player: str) -> bool:
        r = await self.http.get(game.listener + "/admin/bans", params={"player": player})
        r.raise_for_status()
        return any(b.get("player") == player for b in r.json()["bans"])

    async def aclose(self) -> None:
        await self.http.aclose()


@contextlib.asynccontextmanager
async def fleet_parts(binary: str) -> AsyncIterator[tuple[PrivateRedis, list[GameProcess], Path]]:
    """A private Redis, a list the caller fills with game processes, and a temporary directory; everything is
    stopped (game processes first, then Redis) and the directory removed on the way out, whatever happened."""
    directory = Path(tempfile.mkdtemp(prefix="gs_hooks_fleet_demo_"))
    redis = PrivateRedis(binary, directory)
    games: list[GameProcess] = []
    try:
        await redis.start()
        yield redis, games, directory
    finally:
        try:  # failed, cancelled (Ctrl-C, SIGTERM) or done: every process is stopped
            await asyncio.gather(*(g.stop() for g in games), return_exceptions=True)
        finally:
            try:
                await redis.stop()
            finally:
                shutil.rmtree(directory, ignore_errors=True)
