"""Simulated players and a small client of the sandbox's admin API (``/_sandbox/...``), used by ``--bots``,
``--demo`` and the end-to-end test. Everything goes over real sockets: TCP to the game, HTTP to the sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from typing import Any

import httpx
import msgspec


class SandboxAdmin:
    """The sandbox's control endpoints (works for an in-process or a separate sandbox)."""

    def __init__(self, base_url: str, http: httpx.AsyncClient | None = None) -> None:
        self.base = base_url.rstrip("/") + "/_sandbox"
        self.http = http or httpx.AsyncClient(timeout=15.0)

    async def _call(self, method: str, path: str, json: Any = None) -> Any:
        r = await self.http.request(method, self.base + path, json=json)
        r.raise_for_status()
        return r.json() if r.content else {}

    async def new_player(self, user_id: str) -> str:
        """Create a Gamebase member and issue it an access token (a client-side login)."""
        await self._call("POST", "/gamebase/members", {"userId": user_id})
        return await self.new_token(user_id)

    async def new_token(self, user_id: str) -> str:
        """Issue another access token to an existing member (a fresh client-side login)."""
        return str((await self._call("POST", f"/gamebase/members/{user_id}/tokens", {}))["accessToken"])

    async def set_maintenance(self, begin: str, end: str, message: str, url: str | None = None) -> None:
        await self._call("POST", "/gamebase/maintenance", {"begin": begin, "end": end, "message": message, "url": url})

    async def register_hive(self, url: str, auth_key: str, game_index: int) -> None:
        await self._call("POST", "/hive/register", {"url": url, "auth_key": auth_key, "game_index": game_index})

    async def push_suspensions(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        return dict(await self._call("POST", "/hive/suspensions", {"items": items}))

    async def call_webstore(self, url: str, cs_code: str) -> dict[str, Any]:
        return dict(await self._call("POST", "/hive/webstore", {"url": url, "cs_code": cs_code}))

    async def add_fault(self, route: str, kind: str, status: int, count: int) -> None:
        """Make the sandbox answer the next ``count`` requests of ``route`` with HTTP ``status``."""
        await self._call("POST", "/faults", {"route": route, "kind": kind, "status": status, "count": count})

    async def ccu_samples(self, server: str | None = None) -> list[dict[str, Any]]:
        r = await self.http.get(self.base + "/ccu/samples", params={"server": server} if server else None)
        r.raise_for_status()
        return list(r.json()["samples"])

    async def aclose(self) -> None:
        await self.http.aclose()


class Bot:
    """One player connection speaking the example's newline-delimited JSON.

    Messages wait in :attr:`inbox` until :meth:`expect` (or :meth:`login`) takes them; it keeps the latest
    ``inbox_limit`` (older ones are dropped and counted in :attr:`dropped`), so a bot nobody reads from (a chat
    flood, hours of ``--bots``) holds bounded memory.
    """

    def __init__(self, user_id: str, *, inbox_limit: int = 256) -> None:
        self.user_id = user_id
        self.inbox: deque[dict[str, Any]] = deque(maxlen=inbox_limit)
        self.dropped = 0
        self._new = asyncio.Condition()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()

    async def connect(self, host: str, port: int) -> None:
        self._reader, self._writer = await asyncio.open_connection(host, port)
        self.closed.clear()
        self._task = asyncio.create_task(self._read_loop())

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while True:
                line = await self._reader.readline()
                if not line:
                    break
                msg = msgspec.json.decode(line)
                async with self._new:
                    if len(self.inbox) == self.inbox.maxlen:
                        self.dropped += 1  # the oldest goes
                    self.inbox.append(msg)
                    self._new.notify_all()
        except (ConnectionError, OSError, msgspec.DecodeError):
            pass
        finally:
            self.closed.set()
            async with self._new:
                self._new.notify_all()

    async def send(self, obj: dict[str, Any]) -> None:
        assert self._writer is not None
        self._writer.write(msgspec.json.encode(obj) + b"\n")
        await self._writer.drain()

    async def expect(self, op: str, timeout: float = 10.0, **match: Any) -> dict[str, Any]:
        """Wait for (and consume) the next message with this op (and matching fields)."""

        def find() -> dict[str, Any] | None:
            for i, msg in enumerate(self.inbox):
                if msg.get("op") == op and all(msg.get(k) == v for k, v in match.items()):
                    del self.inbox[i]
                    return msg
            return None

        async def wait() -> dict[str, Any]:
            async with self._new:
                while True:
                    found = find()
                    if found is not None:
                        return found
                    if self.closed.is_set():
                        raise ConnectionError(f"{self.user_id}: connection closed before {op!r} arrived")
                    await self._new.wait()

        return await asyncio.wait_for(wait(), timeout)

    async def login(self, token: str, timeout: float = 10.0) -> dict[str, Any]:
        """Send a login; return the welcome or error answer."""
        await self.send({"op": "login", "user_id": self.user_id, "access_token": token})

        async def first_answer() -> dict[str, Any]:
            async with self._new:
                while True:
                    for i, msg in enumerate(self.inbox):
                        if msg.get("op") in ("welcome", "error"):
                            del self.inbox[i]
                            return msg
                    if self.closed.is_set():
                        raise ConnectionError(f"{self.user_id}: closed during login")
                    await self._new.wait()

        return await asyncio.wait_for(first_answer(), timeout)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def run_bots(
    count: int,
    host: str,
    port: int,
    *,
    sandbox_url: str | None,
    chat_every_s: float = 5.0,
    ping_every_s: float = 60.0,
) -> None:
    """``--bots N``: N players log in with sandbox-issued tokens and chat until cancelled.

    Nobody reads what the bots receive: their inboxes are emptied every round. Every ``ping_every_s`` each bot
    pings, so the server's idle timeout does not close a quiet one.
    """
    if sandbox_url is None:
        raise SystemExit("--bots needs the sandbox (set no platform URL, or GS_HOOKS_SANDBOX_URL)")
    admin = SandboxAdmin(sandbox_url)
    bots = [Bot(str(1000 + i)) for i in range(1, count + 1)]
    try:
        for bot in bots:
            token = await admin.new_player(bot.user_id)
            await bot.connect(host, port)
            answer = await bot.login(token)
            print(f"bot {bot.user_id}: {answer['op']}", flush=True)
        pinged = time.monotonic()
        while True:
            await asyncio.sleep(chat_every_s * random.uniform(0.5, 1.5))
            alive = [b for b in bots if not b.closed.is_set()]
            for bot in alive:
                bot.inbox.clear()
            if alive:
                await random.choice(alive).send({"op": "chat", "text": "gg"})
            if time.monotonic() - pinged >= ping_every_s:
                pinged = time.monotonic()
                for bot in alive:
                    with contextlib.suppress(ConnectionError, OSError):  # closed meanwhile: nothing to keep alive
                        await bot.send({"op": "ping"})
    finally:
        for bot in bots:
            await bot.close()
        await admin.aclose()
