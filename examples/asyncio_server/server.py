"""A small real game server on gs_hooks: newline-delimited JSON over TCP (asyncio streams).

Client → server: ``{"op":"login","user_id":"…","access_token":"…"}``, ``{"op":"chat","text":"…"}``,
``{"op":"ping"}``. Server → client: ``welcome``, ``error`` (code + message), ``notice`` (maintenance warnings),
``chat`` (broadcast), ``pong``, and ``kick`` (reason + message) right before a kicked connection is closed.

This file is the pattern to copy: the game owns its sockets and protocol; gs_hooks tracks the connections
(``hooks.track_streams``), verifies logins (``hooks.login``), and asks the game to kick (``on_kick``) or to show
a notice (``on_notice``). It also bounds what a peer can hold: at most ``max_connections`` connections (the next
one gets a ``server_full`` error and is closed before it becomes a session), and a connection that sends no complete
line for ``idle_timeout_s`` gets an ``idle_timeout`` error and is closed (clients ``ping`` to stay). A player
leaves ``players`` when their last connection ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

import msgspec

import gs_hooks

log = logging.getLogger("example.server")

MAX_LINE = 4096
MAX_CONNECTIONS = 1000  # game connections at once; each holds a file descriptor
IDLE_TIMEOUT_S = 300.0  # a connection that sends no complete line this long is closed


@dataclass
class Player:
    """What the game knows about a logged-in player (used by the web-store callback)."""

    user_id: str
    server_id: str
    channel: str
    character: str
    level: int = 1


@dataclass
class GameServer:
    """The game: its connections, players, and the gs_hooks callbacks."""

    server_id: str = "0"
    channel: str = "1"
    max_connections: int = MAX_CONNECTIONS
    idle_timeout_s: float = IDLE_TIMEOUT_S
    hooks: gs_hooks.Hooks | None = None
    writers: dict[int, asyncio.StreamWriter] = field(default_factory=dict)
    players: dict[str, Player] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=lambda: {"logins": 0, "kicks": 0, "notices": 0, "errors": 0})
    limits: dict[str, int] = field(default_factory=lambda: {"refused_full": 0, "closed_idle": 0})
    _server: asyncio.AbstractServer | None = None
    _connections: int = 0

    # -- gs_hooks callbacks ----------------------------------------------------------------------------------

    async def on_kick(self, request: gs_hooks.KickRequest) -> None:
        """Tell the client why, then close its connection (``session.aclose()``: the same on every adapter)."""
        self.stats["kicks"] += 1
        writer = self.writers.get(request.session.id)
        if writer is not None:
            await self._send(writer, {"op": "kick", "reason": request.reason, "message": request.message})
        await request.session.aclose()

    async def on_notice(self, notice: Any) -> None:
        """Show a notice (maintenance warning) to one session or to everyone."""
        session = getattr(notice, "session", None)
        text = getattr(notice, "message", None) or getattr(notice, "text", "")
        targets = [self.writers[session.id]] if session is not None and session.id in self.writers else []
        if session is None:
            targets = list(self.writers.values())
        for writer in targets:
            self.stats["notices"] += 1
            await self._send(writer, {"op": "notice", "text": text})

    async def webstore_profile(self, cs_code: str) -> gs_hooks.WebstoreProfile | None:
        """Hive's web store asks which server/channel/character a user has (cs_code is the user id here)."""
        player = self.players.get(cs_code)
        if player is None:
            return None
        return gs_hooks.WebstoreProfile(
            servers=(
                gs_hooks.WebstoreServer(
                    server_id=player.server_id,
                    server_name=f"Server {player.server_id}",
                    channels=(
                        gs_hooks.WebstoreChannel(
                            channel_id=player.channel,
                            channel_name=f"Channel {player.channel}",
                            characters=(
                                gs_hooks.WebstoreCharacter(
                                    character_id=player.character,
                                    character_name=player.character,
                                    character_level=str(player.level),
                                ),
                            ),
                        ),
                    ),
                ),
            )
        )

    # -- the game protocol ----------------------------------------------------------------------------------

    async def handle_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One connection: read JSON lines until EOF; malformed input gets an error, never a crash."""
        session = gs_hooks.current_session()
        assert session is not None, "handle_client must be wrapped by hooks.track_streams"
        self.writers[session.id] = writer
        try:
            while not reader.at_eof():
                try:
                    async with asyncio.timeout(self.idle_timeout_s):
                        line = await reader.readuntil(b"\n")
                except TimeoutError:
                    self.limits["closed_idle"] += 1
                    await self._error(
                        writer, "idle_timeout", f"no message for {self.idle_timeout_s:g} s; send a ping to stay"
                    )
                    break
                except asyncio.IncompleteReadError:
                    break
                except asyncio.LimitOverrunError:
                    await self._error(writer, "line_too_long", f"lines are limited to {MAX_LINE} bytes")
                    break
                if self.hooks is None or session not in self.hooks.registry:
                    break  # kicked
                await self._dispatch(session, writer, line)
        except (ConnectionError, OSError):
            pass
        finally:
            self.writers.pop(session.id, None)
            self._forget_player(session)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _forget_player(self, session: gs_hooks.Session) -> None:
        """Drop the player of a connection that ends, unless another of their connections is still live.

        (This session is still in the registry while its handler runs: only the *other* sessions count.)
        """
        player_id = session.player_id
        if player_id is None or self.hooks is None:
            return
        if not any(other is not session for other in self.hooks.registry.sessions_of(player_id)):
            self.players.pop(player_id, None)

    async def _dispatch(self, session: gs_hooks.Session, writer: asyncio.StreamWriter, line: bytes) -> None:
        try:
            gs_hooks.check_json_depth(line)  # before the (recursive) decoder: a deeply nested line is an error too
            msg = msgspec.json.decode(line)
        except gs_hooks.ProtocolError as exc:
            await self._error(writer, "malformed", str(exc))
            return
        except msgspec.DecodeError:
            await self._error(writer, "malformed", "each line must be one JSON object")
            return
        if not isinstance(msg, dict) or not isinstance(msg.get("op"), str):
            await self._error(writer, "malformed", 'a message is a JSON object with a string "op"')
            return
        op = msg["op"]
        if op == "ping":
            await self._send(writer, {"op": "pong"})
        elif op == "login":
            await self._login(session, writer, msg)
        elif op == "chat":
            if session.player_id is None:
                await self._error(writer, "not_logged_in", "log in first")
                return
            text = msg.get("text")
            if not isinstance(text, str) or len(text) > 500:
                await self._error(writer, "malformed", "chat text must be a string of at most 500 characters")
                return
            for other in list(self.writers.values()):
                await self._send(other, {"op": "chat", "from": session.player_id, "text": text})
        else:
            await self._error(writer, "unknown_op", f"unknown op {op[:40]!r}; use login, chat or ping")

    async def _login(self, session: gs_hooks.Session, writer: asyncio.StreamWriter, msg: dict[str, Any]) -> None:
        assert self.hooks is not None
        try:
            # the client's values as they came: hooks.login refuses bad ones (InvalidLoginError) before asking
            # Gamebase, and binds a numeric user id as its string ("user_id": 7101 is player "7101")
            await self.hooks.login(session, msg.get("user_id"), msg.get("access_token"))
        except gs_hooks.LoginRefusedError as exc:  # banned, maintenance, bad token, invalid input, duplicate...
            ends_at = getattr(exc, "ends_at", None)  # BannedError / MaintenanceError: when it ends
            await self._error(writer, exc.reason, exc.message, ends_at=ends_at.isoformat() if ends_at else None)
            return
        except gs_hooks.PlatformUnavailableError as exc:  # Gamebase down: the player may retry
            await self._error(
                writer, "unavailable", "login service unavailable, try again later", retry_after_s=exc.retry_after_s
            )
            return
        except Exception:  # our config is wrong (PlatformError, ConfigError), a bug...: log it, answer generically
            log.exception("login of session %s failed", session.id)
            await self._error(writer, "internal", "login failed on the server")
            return
        player_id = session.player_id
        assert player_id is not None
        self.stats["logins"] += 1
        self.players[player_id] = Player(player_id, session.server_id, self.channel, f"hero-{player_id}", level=10)
        await self._send(writer, {"op": "welcome", "player": player_id, "server_id": session.server_id})

    async def _error(
        self,
        writer: asyncio.StreamWriter,
        code: str,
        message: str,
        *,
        ends_at: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        self.stats["errors"] += 1
        msg: dict[str, Any] = {"op": "error", "code": code, "message": message}
        if ends_at is not None:
            msg["ends_at"] = ends_at  # when a ban / a maintenance ends (ISO 8601)
        if retry_after_s is not None:
            msg["retry_after_s"] = retry_after_s  # the platform is down: try again in this many seconds
        await self._send(writer, msg)

    async def _send(self, writer: asyncio.StreamWriter, obj: dict[str, Any]) -> None:
        if writer.is_closing():
            return
        try:
            writer.write(msgspec.json.encode(obj) + b"\n")
            await asyncio.wait_for(writer.drain(), timeout=5)
        except (ConnectionError, OSError, TimeoutError):
            writer.close()

    # -- lifecycle --------------------------------------------------------------------------------------------

    async def start(self, hooks: gs_hooks.Hooks, host: str, port: int) -> int:
        """Listen for players; returns the bound port."""
        self.hooks = hooks
        tracked = hooks.track_streams(self.handle_client)

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            # The cap is checked before the connection becomes a session (it never counts as a player).
            if self._connections >= self.max_connections:
                self.limits["refused_full"] += 1
                await self._send(writer, {"op": "error", "code": "server_full", "message": "server full, retry later"})
                writer.close()
                return
            self._connections += 1
            try:
                await tracked(reader, writer)
            finally:
                self._connections -= 1

        self._server = await asyncio.start_server(accept, host, port, limit=MAX_LINE)
        sock = self._server.sockets[0]
        return int(sock.getsockname()[1])

    async def close(self) -> None:
        """Stop listening and close every connection."""
        if self._server is not None:
            self._server.close()
        for writer in list(self.writers.values()):
            writer.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), timeout=5)
