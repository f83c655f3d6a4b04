"""Real game processes in a fleet, for the multi-process tests: the sandbox (in this process, on its own event loop
thread), game processes (``fleet_game.py``) configured by ``GS_HOOKS_*`` variables, and game clients speaking the
example's protocol over TCP (what a player sees: ``welcome``, ``error``, ``kick``)."""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from anyio.from_thread import BlockingPortal, start_blocking_portal
from fleet_support import Child, free_port

from gs_hooks import KST
from gs_hooks.sandbox import Sandbox

GAME = Path(__file__).with_name("fleet_game.py")
GAME_INDEX = 539


class SandboxThread:
    """The platform sandbox on an event loop in a thread; its Python API called through the portal (thread-safe)."""

    def __init__(self, portal: BlockingPortal, sandbox: Sandbox) -> None:
        self.portal = portal
        self.sb = sandbox
        self.hive_key = secrets.token_urlsafe(24)

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self.portal.call(lambda: fn(*args, **kwargs))

    def token(self, user_id: str) -> str:
        """A member and a fresh access token for it."""

        def issue() -> str:
            gb = self.sb.gamebase
            if user_id not in gb.members:
                gb.add_member(user_id)
            return gb.issue_token(user_id)

        return str(self.portal.call(issue))

    def register(self, listener_url: str) -> None:
        """Hive's one registered webhook URL."""
        self.call(self.sb.hive.register, listener_url + "/hive/suspensions", self.hive_key, GAME_INDEX)

    def push(self, players: list[str], *, retries: int = 0, retry_delay_s: float = 0.0, batch_size: int = 100) -> Any:
        """Hive sends suspensions (blocking until answered or the retries are spent); returns the report."""
        return self.portal.call(
            lambda: self.sb.hive.push_suspensions(
                suspension_items(players), retries=retries, retry_delay_s=retry_delay_s, batch_size=batch_size
            )
        )

    def push_soon(self, players: list[str], *, retries: int, retry_delay_s: float) -> Any:
        """Like :meth:`push`, but returns a future at once (the test acts while Hive retransmits)."""

        async def push() -> Any:
            return await self.sb.hive.push_suspensions(
                suspension_items(players), retries=retries, retry_delay_s=retry_delay_s
            )

        return self.portal.start_task_soon(push)

    def counts(self) -> dict[str, int]:
        return dict(self.portal.call(lambda: dict(self.sb.gamebase.counts)))

    def env(self) -> dict[str, str]:
        urls = self.sb.urls()
        return {
            "GS_HOOKS_GAMEBASE_URL": urls["gamebase_url"],
            "GS_HOOKS_GAMEBASE_APP_ID": self.sb.gamebase.app_id,
            "GS_HOOKS_GAMEBASE_SECRET_KEY": self.sb.gamebase_secret,
            "GS_HOOKS_GAMEBASE_RETRIES": "0",
            "GS_HOOKS_HIVE_AUTH_KEY": self.hive_key,
            "GS_HOOKS_HIVE_GAME_INDEX": str(GAME_INDEX),
        }


def suspension_items(players: list[str]) -> list[dict[str, Any]]:
    start = (datetime.now(KST) - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S")
    return [
        {"player_id": int(p), "status": "P", "start_date": start, "end_date": "9999-12-31 00:00:00"} for p in players
    ]


@contextlib.contextmanager
def sandbox_thread() -> Iterator[SandboxThread]:
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(Sandbox.serve(port=0)) as sb:
        yield SandboxThread(portal, sb)


class Game:
    """One game process of the fleet (restartable on the same state file and listener port)."""

    def __init__(self, name: str, directory: Path, env: dict[str, str]) -> None:
        self.name = name
        self.directory = directory / name
        self.directory.mkdir(exist_ok=True)
        self.listen_port = free_port()
        self.env = {
            "GS_HOOKS_STATE": str(self.directory / "state.sqlite3"),
            "GS_HOOKS_LISTEN": f"127.0.0.1:{self.listen_port}",
            **env,
        }
        self.child: Child | None = None
        self.ready: dict[str, Any] = {}

    def start(self, **more_env: str) -> Game:
        if self.child is not None:  # a restart: the previous process's pipes are closed first
            self.child.stop()
        self.child = Child(self.name, env={**self.env, **more_env}, script=GAME, role_arg=False)
        self.ready = self.child.expect(lambda m: m.get("type") == "ready", timeout=30)
        return self

    @property
    def c(self) -> Child:
        assert self.child is not None
        return self.child

    @property
    def port(self) -> int:
        return int(self.ready["game_port"])

    @property
    def listener(self) -> str:
        return str(self.ready["listener"])

    def ask(self, message: dict[str, Any], answer: str, timeout: float = 20.0) -> dict[str, Any]:
        self.c.send(message)
        return self.c.expect(lambda m: m.get("type") == answer, timeout=timeout)

    def state(self) -> dict[str, Any]:
        return self.ask({"op": "state"}, "state")

    def kicks(self) -> list[dict[str, Any]]:
        return [m for m in self.c.drain() if m.get("type") == "kick"]

    def kill(self) -> None:
        self.c.kill()

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()


_OPEN: list[GameClient] = []


class GameClient:
    """A player's TCP connection to a game process (the example's newline-delimited JSON); closed by
    :func:`games` at the end."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.settimeout(None)
        self.file = self.sock.makefile("rb")
        self.messages: list[dict[str, Any]] = []
        self.closed = threading.Event()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        _OPEN.append(self)

    def _read(self) -> None:
        try:
            for raw in self.file:
                with self._lock:
                    self.messages.append(json.loads(raw))
        except (OSError, ValueError):
            pass
        finally:
            self.closed.set()

    def send(self, message: dict[str, Any]) -> None:
        self.sock.sendall(json.dumps(message).encode() + b"\n")

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                found = [m for m in self.messages if predicate(m)]
            if found:
                return found[0]
            if self.closed.is_set():
                with self._lock:
                    found = [m for m in self.messages if predicate(m)]
                if found:
                    return found[0]
                raise AssertionError(f"connection closed; messages: {self.messages}")
            time.sleep(0.01)
        raise AssertionError(f"no matching message in {timeout} s; messages: {self.messages}")

    def login(self, user_id: str, token: str) -> dict[str, Any]:
        """Log in; returns the ``welcome`` or the ``error``."""
        self.send({"op": "login", "user_id": user_id, "access_token": token})
        return self.wait_for(lambda m: m.get("op") in ("welcome", "error"))

    def kicks(self) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self.messages if m.get("op") == "kick"]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self._reader.join(5)
        with contextlib.suppress(OSError):
            self.file.close()
        with contextlib.suppress(OSError):
            self.sock.close()


def fleet_env(redis_url: str, sandbox: SandboxThread, **more: str) -> dict[str, str]:
    """The ``GS_HOOKS_*`` settings of a fleet game process against ``redis_url`` and the sandbox."""
    return {
        "GS_HOOKS_REDIS_URL": redis_url,
        "GS_HOOKS_REDIS_PREFIX": "t",
        "GS_HOOKS_GAME": "tinyfarm_KR",
        "GS_HOOKS_SERVER_ID": "s1",
        "GS_HOOKS_DUPLICATE_LOGIN": "allow",  # several live sessions of one player: each must be kicked
        "GS_HOOKS_FLEET_SOCKET_TIMEOUT_S": "2",
        "GS_HOOKS_FLEET_BLOCK_S": "0.5",
        "GS_HOOKS_GAMEBASE_MAINTENANCE_POLL_S": "1",
        "GS_HOOKS_GAMEBASE_MAINTENANCE_WARN_S": "3600",
        "GS_HOOKS_GAMEBASE_BAN_POLL_S": "0",
        **sandbox.env(),
        **more,
    }


@contextlib.contextmanager
def games(*items: Game) -> Iterator[list[Game]]:
    """Close every game client and stop every game process at the end, whatever happened."""
    try:
        yield list(items)
    finally:
        while _OPEN:
            _OPEN.pop().close()
        for g in items:
            g.stop()
