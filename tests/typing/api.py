"""Exercises the public API under ``mypy --strict`` (run by scripts/check); never executed by pytest."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import anyio
import anyio.abc

import gs_hooks
from gs_hooks import KickRequest, Session, SessionEvent, SessionRegistry, TrackWebSocketsMiddleware
from gs_hooks.sessions import Connection, current_session, track_anyio, track_asyncio_streams, track_websockets


async def kick_player(request: KickRequest) -> None:
    session: Session = request.session
    reason: str = request.reason
    message: str = request.message
    print(session.id, session.player_id, reason, message, request.details)
    await session.aclose()


def kick_player_sync(request: KickRequest) -> None:
    print(request.session.server_id)
    request.session.close()


class MyConnection:
    """A custom adapter's connection handle."""

    @property
    def closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


async def handle_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    session = current_session()
    if session is not None:
        session.set_attr("level", 3)
        level: Any = session.get_attr("level")
        print(level, session.remote, session.channel, session.connected_at, session.logged_in_at)
    writer.close()


async def handle_stream(stream: anyio.abc.SocketStream) -> None:
    await stream.aclose()


async def handle_ws(websocket: Any) -> None:
    await websocket.close()


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    pass


class GameDatabase:
    def health(self) -> gs_hooks.ComponentHealth:
        return gs_hooks.ComponentHealth(name="game-db", ok=True)


async def main() -> None:
    hooks: gs_hooks.Hooks = gs_hooks.setup(gs_hooks.Config.from_env(), on_kick=kick_player)
    gs_hooks.setup(gs_hooks.Config(), on_kick=kick_player_sync)
    warnings: list[gs_hooks.ConfigWarning] = hooks.config_warnings()
    print([(w.setting, w.problem) for w in warnings])
    hooks.add_health(GameDatabase())
    reports: tuple[gs_hooks.ComponentHealth, ...] = hooks.readiness()
    print([(r.name, r.ok, r.error, r.since) for r in reports], hooks.live, hooks.ready_document()["ready"])
    async with hooks:
        server = await asyncio.start_server(hooks.track_streams(handle_client), "127.0.0.1", 0)
        server.close()
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        handler = hooks.track_anyio(handle_stream, server_id="1", channel="lobby")
        del listener, handler
        hooks.track_websockets(handle_ws)
        middleware: TrackWebSocketsMiddleware = hooks.asgi_middleware(asgi_app, server_id="2")
        TrackWebSocketsMiddleware(asgi_app, registry=hooks.registry, channel="c")
        del middleware

        registry: SessionRegistry = hooks.registry
        connection: Connection = MyConnection()
        session = registry.open_nowait(server_id="1", channel="", remote=("127.0.0.1", 1), connection=connection)
        assert session.connection is connection
        older: list[Session] = hooks.bind_player(session, "player-1")
        older = registry.bind_player_nowait(session, "player-1")
        n: int = await hooks.kick(session, "ban", message="bye", details=None)
        n = await hooks.kick("player-1")
        closed: bool = registry.close_nowait(session)
        counts: tuple[int, int] = (registry.count_players("1"), registry.count_connections("1"))
        found: Session | None = registry.get(session.id)
        mine: tuple[Session, ...] = registry.sessions_of("player-1") + registry.sessions_on("1")
        remove = registry.add_observer(lambda event: print(event.kind, event.session.id))
        remove()

        def observer(event: SessionEvent) -> None:
            print(event.kind)

        registry.add_observer(observer)
        print(older, n, closed, counts, found, mine, len(registry), list(registry), session in registry)
        hooks.kick_watch.grace_s = 5.0
        forced: int = hooks.kick_watch.forced
        received: signal.Signals = await hooks.serve_until_signal(kick=False, signals=(signal.SIGTERM,))
        print(forced, received.name)

    await hooks.start()
    await hooks.aclose()
    track_asyncio_streams(SessionRegistry(), handle_client)
    track_anyio(SessionRegistry(duplicate_login="refuse_newer"), handle_stream)
    track_websockets(SessionRegistry(default_server_id="7"), handle_ws)


# -- the callbacks setup() takes, each typed by its capability's Protocol (sync or async) -------------------------


def on_ban(event: gs_hooks.BanEvent) -> None:
    print(event.player_key, event.ban.ends_at, event.sessions_kicked)


async def on_maintenance(change: gs_hooks.MaintenanceChange) -> None:
    print(change.previous, change.state, change.details, change.at)


def on_notice(request: gs_hooks.NoticeRequest) -> None:
    print(request.session.id, request.message, request.seconds_left)


async def on_ccu_problem(problem: gs_hooks.CcuProblem) -> None:
    print(problem.server, problem.code, problem.outcome)


async def webstore_profile(cs_code: str) -> gs_hooks.WebstoreProfile | None:
    return None if not cs_code else gs_hooks.WebstoreProfile(servers=())


def webstore_profile_sync(cs_code: str) -> gs_hooks.WebstoreProfile | None:
    return None


def typed_callbacks() -> None:
    gs_hooks.setup(
        gs_hooks.Config(),
        on_kick=kick_player,
        on_ban=on_ban,
        on_maintenance=on_maintenance,
        on_notice=on_notice,
        on_ccu_problem=on_ccu_problem,
        webstore_profile=webstore_profile,
    )
    gs_hooks.setup(gs_hooks.Config(), webstore_profile=webstore_profile_sync)
