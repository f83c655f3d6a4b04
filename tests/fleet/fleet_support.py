"""Real parts for the fleet tests: a redis-server on a free loopback port, a TCP proxy the test controls, and
child processes (imported by module name; tests/ has no packages).

Where ``redis-server`` is missing a test is skipped with a message naming ``apt-get install redis-server``;
with ``CI=true`` a missing server fails the test instead (CI installs it: a skip there would hide the suite).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gs_hooks.fleet import FleetConfig

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("fleet_child.py")


def make_config(url: str, **overrides: object) -> FleetConfig:
    """Fleet settings for tests on ``url``: prefix ``t``, short socket timeout and block time."""
    values: dict[str, object] = {"url": url, "game": "tinyfarm_KR", "prefix": "t", "socket_timeout_s": 2.0}
    values["block_s"] = 0.5
    values.update(overrides)
    return FleetConfig(**values)  # type: ignore[arg-type]


def need_redis_server() -> str:
    """The redis-server binary; skip (or fail under CI=true) when there is none."""
    found = shutil.which("redis-server")
    if found is None:
        message = "redis-server is not installed: apt-get install redis-server (fleet tests need a real Redis)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " -- CI=true: a missing server is a failure, not a skip")
        pytest.skip(message)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


class RedisServer:
    """A real ``redis-server`` in a temporary directory on a free loopback port.

    Args:
        directory: where its files go.
        appendonly: AOF persistence (``appendfsync always``: a kill -9 loses nothing acknowledged).
        extra: more ``--option value`` arguments.
    """

    def __init__(
        self, directory: Path, *, appendonly: bool = False, password: str | None = None, extra: tuple[str, ...] = ()
    ) -> None:
        self.binary = need_redis_server()
        self.password = password
        self.directory = directory
        self.appendonly = appendonly
        self.extra = extra
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.paused = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "always",
            "--enable-debug-command", "local",
            "--protected-mode", "no",
            "--logfile", str(self.directory / "redis.log"),
            *(("--requirepass", self.password) if self.password else ()),
            *self.extra,
        ]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}: {log}")
            try:
                if self.command("PING") == "PONG":
                    return
            except OSError:
                pass
            except RuntimeError as exc:  # LOADING: an AOF being read back
                if "LOADING" not in str(exc):
                    raise
            time.sleep(0.02)
        raise RuntimeError("redis-server did not answer PING within 10 s")

    def kill(self) -> None:
        """kill -9 (AOF with fsync always keeps every acknowledged write)."""
        if self.proc is not None and self.proc.poll() is None:
            if self.paused:
                self.resume()
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def restart(self, *, down_s: float = 0.0) -> None:
        """kill -9, stay down ``down_s``, start again on the same port."""
        self.kill()
        time.sleep(down_s)
        self.start()

    def pause(self) -> None:
        """SIGSTOP: connections stay open, nothing answers."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def command(self, *args: str) -> Any:
        """One command over a fresh socket (RESP, minimal parser: enough for simple replies and integers)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            f = s.makefile("rb")
            if self.password:
                s.sendall(_encode(("AUTH", self.password)))
                _read_reply(f)
            s.sendall(_encode(args))
            return _read_reply(f)

    def client_kill_all(self) -> int:
        """CLIENT KILL every normal client connection (not this one); returns how many were killed."""
        return int(self.command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"))

    def stop(self) -> None:
        self.kill()


def _encode(args: tuple[str, ...]) -> bytes:
    return (f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)).encode()


def _read_reply(f: Any) -> Any:
    line = f.readline().rstrip(b"\r\n")
    kind, rest = line[:1], line[1:]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode(errors="replace")
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read_reply(f) for _ in range(n)]
    raise RuntimeError(f"unexpected reply {line!r}")


class TcpProxy:
    """A loopback TCP proxy to Redis that the test controls: :meth:`cut` drops every connection through it and
    refuses new ones until :meth:`restore` (one process's path to Redis, cut while the others' stay);
    :meth:`hold_replies_after` holds the answers of one connection, from one command on, until :meth:`release`
    (Redis has answered it; the process waits: an interleaving made on purpose)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._cut = False
        self._closed = False
        self._marker: bytes | None = None  # armed: the command whose connection's answers get held
        self._holding: socket.socket | None = None  # the client side of the connection whose answers are held
        self._held: list[bytes] = []
        self.holding = threading.Event()  # set once an answer is held
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._cut:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, request: bool) -> None:
        try:
            while data := src.recv(65536):
                with self._lock:
                    if request and self._marker is not None and self._marker in data:
                        self._marker, self._holding = None, src
                    if not request and dst is self._holding:
                        self._held.append(data)
                        self.holding.set()
                        continue
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self._cut = True
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def restore(self) -> None:
        self._cut = False

    def hold_replies_after(self, marker: bytes) -> None:
        """Hold (in order) every answer on the connection that next sends a command containing ``marker``, from
        that command's answer on, until :meth:`release`; :attr:`holding` is set once one is held."""
        with self._lock:
            self._marker, self._holding, self._held = marker, None, []
            self.holding.clear()

    def release(self) -> None:
        """Send the held answers on, and stop holding."""
        with self._lock:
            client, self._holding, self._marker = self._holding, None, None
            held, self._held = self._held, []
            if client is not None:
                with contextlib.suppress(OSError):
                    for data in held:
                        client.sendall(data)

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._listener.close()


class Child:
    """A child process running ``fleet_child.py ROLE`` (or another ``script``), speaking JSON lines on stdout
    (and reading stdin)."""

    def __init__(
        self, role: str, *args: str, env: dict[str, str] | None = None, script: Path = CHILD, role_arg: bool = True
    ) -> None:
        self.role = role  # the script's first argument, unless role_arg is False (then only a name)
        self.proc = subprocess.Popen(
            [sys.executable, str(script), *([role] if role_arg else []), *args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        self._threads = [
            threading.Thread(target=self._read, daemon=True),
            threading.Thread(target=self._read_err, daemon=True),
        ]
        for t in self._threads:
            t.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            try:
                self.lines.put(json.loads(raw))
            except ValueError:
                self.lines.put({"raw": raw.decode(errors="replace")})

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self.stderr.append(raw.decode(errors="replace"))

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()

    def expect(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 20.0) -> dict[str, Any]:
        """The next line matching ``predicate`` (earlier lines are kept in :attr:`seen`)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.role} child: no matching line in {timeout} s; stderr: {self.errors()}")
            try:
                line = self.lines.get(timeout=min(left, 0.2))
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    raise AssertionError(
                        f"{self.role} child exited {self.proc.returncode}; stderr: {self.errors()}"
                    ) from None
                continue
            self.seen.append(line)
            if predicate(line):
                return line

    def drain(self) -> list[dict[str, Any]]:
        """Every line received so far (also kept in :attr:`seen`)."""
        while True:
            try:
                self.seen.append(self.lines.get_nowait())
            except queue.Empty:
                return self.seen

    def errors(self) -> str:
        return "".join(self.stderr)[-3000:]

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()
        for t in self._threads:  # every line the process wrote is read before the pipes close
            t.join(5)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


@contextlib.contextmanager
def children(*items: Child) -> Iterator[list[Child]]:
    """Stop every child at the end, whatever happened."""
    try:
        yield list(items)
    finally:
        for c in items:
            c.stop()
