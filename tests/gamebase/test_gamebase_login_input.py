"""Login input: one canonical player id (issue 13.1), local refusals before any platform call (13.3), and what
``hooks.login`` raises, typed and documented. Against the full sandbox over loopback, through a real adapter."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from gamebase_client_support import Env, Recorder, make_hooks

import gs_hooks
from gs_hooks import (
    Config,
    FakeClock,
    GamebaseConfig,
    InvalidLoginError,
    LoginRefusedError,
    PlatformUnavailableError,
    Secret,
)
from gs_hooks.sandbox import Sandbox

pytestmark = [pytest.mark.anyio, pytest.mark.members("u1")]


def _config(sb: Sandbox, **settings: Any) -> Config:
    options: dict[str, Any] = {
        "url": sb.urls()["gamebase_url"],
        "app_id": sb.gamebase_app_id,
        "secret_key": Secret(sb.gamebase_secret),
        "retries": 0,
        "maintenance_poll_s": 0.0,
        "ban_poll_s": 0.0,
    }
    options.update(settings)
    return Config(state_path=":memory:", gamebase=GamebaseConfig(**options))


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox.serve(port=0, clock=FakeClock()) as sandbox:
        yield sandbox


class LineGame:
    """A tiny game server in the README's shape: newline-delimited JSON over asyncio streams, each connection
    tracked by ``hooks.track_streams``, the login handler catching what ``hooks.login`` documents."""

    def __init__(self, hooks: gs_hooks.Hooks) -> None:
        self.hooks = hooks
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = gs_hooks.current_session()
        try:
            while line := await reader.readline():
                msg = json.loads(line)
                try:
                    await self.hooks.login(session, msg.get("user_id"), msg.get("access_token"))
                    reply: dict[str, Any] = {"op": "welcome", "player": session.player_id}
                except LoginRefusedError as exc:
                    reply = {"op": "error", "reason": exc.reason, "message": exc.message}
                except PlatformUnavailableError as exc:
                    reply = {"op": "error", "reason": "try_later", "retry_after_s": exc.retry_after_s}
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
        finally:
            writer.close()

    async def __aenter__(self) -> LineGame:
        self.server = await asyncio.start_server(self.hooks.track_streams(self.handle), "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return await asyncio.open_connection("127.0.0.1", port)


async def _hang_up(writer: asyncio.StreamWriter, hooks: gs_hooks.Hooks) -> None:
    """Close the client side and wait (bounded) until the server side has let the session go."""
    writer.close()
    await writer.wait_closed()
    for _ in range(500):
        if len(hooks.registry) == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the server kept the connection")


async def _ask(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, msg: dict[str, Any]) -> dict[str, Any]:
    writer.write(json.dumps(msg).encode() + b"\n")
    await writer.drain()
    line = await asyncio.wait_for(reader.readline(), 10)
    answer: dict[str, Any] = json.loads(line)
    return answer


@pytest.mark.parametrize("ban_with", ["7101", 7101])
async def test_a_numeric_user_id_is_one_player_everywhere(sb: Sandbox, ban_with: str | int) -> None:
    """The issue's story: JSON ``"user_id": 7101`` logs in as "7101"; a ban by "7101" (or 7101) kicks it; a second
    login while banned is refused."""
    sb.gamebase.add_member("7101")
    token = sb.gamebase.issue_token("7101")
    async with gs_hooks.setup(_config(sb), clock=sb.clock) as hooks, LineGame(hooks) as game:  # type: ignore[arg-type]
        reader, writer = await game.connect()
        answer = await _ask(reader, writer, {"op": "login", "user_id": 7101, "access_token": token})
        assert answer == {"op": "welcome", "player": "7101"}
        (session,) = hooks.registry.sessions_of("7101")
        assert session.player_id == "7101"
        assert hooks.registry.sessions_of(7101) == (session,)  # type: ignore[arg-type]
        assert hooks.verifier is not None and hooks.verifier.cached_nowait(7101, token) is not None

        await hooks.ban(ban_with)  # type: ignore[arg-type]
        assert hooks.verifier.cached_nowait("7101", token) is None  # the ban dropped the cached verification
        assert await asyncio.wait_for(reader.read(), 10) == b""  # the socket is closed: the player is out
        assert hooks.registry.sessions_of("7101") == ()
        await _hang_up(writer, hooks)

        reader, writer = await game.connect()
        answer = await _ask(reader, writer, {"op": "login", "user_id": 7101, "access_token": token})
        assert answer["op"] == "error" and answer["reason"] == "banned"
        answer = await _ask(reader, writer, {"op": "login", "user_id": "7101", "access_token": token})
        assert answer["reason"] == "banned"
        assert hooks.registry.count_players(hooks.config.sessions.server_id) == 0
        await _hang_up(writer, hooks)


BAD_TOKENS: list[tuple[Any, str]] = [
    (None, "missing"),
    ("", "empty"),
    (7, "must be a string"),
    (b"bytes-token", "must be a string"),
    ("a/b", "'/'"),
    ("/", "'/'"),
    ("a\\b", "'/'"),
    (" tok", "whitespace"),
    ("tok en", "whitespace"),
    ("tok\n", "whitespace"),
    ("tok\x00en", "control"),
    (".", "only dots"),
    ("..", "only dots"),
    ("\uff0e\uff0e", "non-ASCII"),
    ("\u2025", "non-ASCII"),
    ("x" * 4097, "longer than 4096"),
    (Secret(""), "empty"),
    (Secret(".."), "only dots"),
]
BAD_USER_IDS: list[tuple[Any, str]] = [
    (None, "missing"),
    ("", "empty"),
    (" ", "whitespace"),
    ("u1 ", "whitespace"),
    ("a/b", "'/'"),
    ("/", "'/'"),
    (".", "only dots"),
    ("..", "only dots"),
    ("\uff0e\uff0e", "only dots"),
    ("u\x001", "control"),
    ("x" * 129, "longer than 128"),
    (1.5, "float"),
    (True, "bool"),
]


async def test_bad_login_input_is_refused_before_any_platform_call(sb: Sandbox) -> None:
    sb.gamebase.add_member("u1")
    token = sb.gamebase.issue_token("u1")
    async with gs_hooks.setup(_config(sb), clock=sb.clock) as hooks:  # type: ignore[arg-type]
        session = hooks.registry.open_nowait()
        cases = [("u1", t, "access_token", why) for t, why in BAD_TOKENS]
        cases += [(u, token, "user_id", why) for u, why in BAD_USER_IDS]
        for user_id, access_token, field, why in cases:
            with pytest.raises(InvalidLoginError) as info:
                await hooks.login(session, user_id, access_token)
            with pytest.raises(InvalidLoginError) as verified:
                await hooks.verify_token(user_id, access_token)
            for error in (info.value, verified.value):
                assert isinstance(error, LoginRefusedError)
                assert error.reason == "invalid_login"
                assert error.field == field, (user_id, field)
                assert why in error.message, (user_id, error.message)
        assert sum(sb.gamebase.counts.values()) == 0  # nothing reached Gamebase
        assert session.player_id is None and hooks.registry.player_ids() == ()
        # the issue's own case, and a good login still works
        with pytest.raises(InvalidLoginError, match="access token is missing"):
            await hooks.login(session, "7001", None)  # type: ignore[arg-type]
        await hooks.login(session, "u1", Secret(token))
        assert session.player_id == "u1"


async def test_a_refusal_message_never_holds_the_token(sb: Sandbox) -> None:
    async with gs_hooks.setup(_config(sb), clock=sb.clock) as hooks:  # type: ignore[arg-type]
        session = hooks.registry.open_nowait()
        for token in ("secret part/other part", "SeCrEt-TOKEN value", "SeCrEt\x00TOKEN"):
            with pytest.raises(InvalidLoginError) as info:
                await hooks.login(session, "u1", token)
            assert "SeCrEt" not in str(info.value) and "secret part" not in str(info.value)


async def test_gamebase_down_raises_unavailable_with_a_retry_hint(gb: Env) -> None:
    async with make_hooks(gb, Recorder(), maintenance_poll_s=0) as hooks:
        session = hooks.registry.open_nowait()
        gb.faults.http_500 = 1
        with pytest.raises(PlatformUnavailableError) as info:
            await hooks.login(session, "u1", gb.sim.issue_token("u1"))
        assert info.value.retry_after_s == 5.0  # the client's default when Gamebase sends no Retry-After
        gb.faults.http_500 = 1
        gb.faults.retry_after = "17"
        with pytest.raises(PlatformUnavailableError) as info:
            await hooks.login(session, "u1", gb.sim.issue_token("u1"))
        assert info.value.retry_after_s == 17.0
        assert session.player_id is None


# -- the README's Quickstart handler and the example server answer each case ---------------------------------------

README = Path(__file__).resolve().parents[2] / "README.md"


def _quickstart() -> dict[str, Any]:
    """The README Quickstart's code block, run as written (up to ``asyncio.run(main())``)."""
    text = README.read_text()
    block = text.split("## Quickstart", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert block.rstrip().endswith("asyncio.run(main())")
    namespace: dict[str, Any] = {"__name__": "readme_quickstart"}
    exec(compile(block.rstrip().removesuffix("asyncio.run(main())"), str(README), "exec"), namespace)  # noqa: S102
    return namespace


async def _exchange(port: int, line: bytes) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(line)
        await writer.drain()
        answer: dict[str, Any] = json.loads(await asyncio.wait_for(reader.readline(), 10))
        return answer
    finally:
        writer.close()
        await writer.wait_closed()


async def _answers_each_case(sb: Sandbox, port: int, hooks: gs_hooks.Hooks, code_key: str) -> None:
    """The login cases a game must answer, against a server on ``port`` (answers carry the code at ``code_key``)."""
    sb.gamebase.add_member("7101")
    token = sb.gamebase.issue_token("7101")

    def login(user_id: Any, access_token: Any) -> bytes:
        return json.dumps({"op": "login", "user_id": user_id, "access_token": access_token}).encode() + b"\n"

    answer = await _exchange(port, login(7101, token))
    assert answer["op"] == "welcome" and answer["player"] == "7101"
    for bad in (login("7101", ".."), login(None, token), login("7101", None), b'{"op": "login"}\n'):
        answer = await _exchange(port, bad)
        assert answer["op"] == "error" and answer[code_key] == "invalid_login", answer
    assert sb.gamebase.counts["gamebase.token"] == 1
    sb.faults.add("gamebase.token", "status", status=503, count=1)
    answer = await _exchange(port, login("7101", sb.gamebase.issue_token("7101")))
    assert answer[code_key] == "unavailable" and answer["retry_after_s"] == 5.0
    sb.faults.add("gamebase.token", "result", code=-4010004, count=1)  # "invalid secret key": our config
    answer = await _exchange(port, login("7101", sb.gamebase.issue_token("7101")))
    assert answer[code_key] == "internal"
    await hooks.ban(7101)  # type: ignore[arg-type]
    answer = await _exchange(port, login(7101, sb.gamebase.issue_token("7101")))
    assert answer[code_key] == "banned"


async def test_the_readme_login_handler_answers_each_case(sb: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    readme = _quickstart()
    async with gs_hooks.setup(_config(sb), clock=sb.clock) as hooks:  # type: ignore[arg-type]
        readme["hooks"] = hooks
        server = await asyncio.start_server(hooks.track_streams(readme["handle_client"]), "127.0.0.1", 0)
        async with server:
            with caplog.at_level(logging.ERROR):
                await _answers_each_case(sb, server.sockets[0].getsockname()[1], hooks, "code")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == ["login failed"]


async def test_the_example_server_answers_each_case(sb: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    from examples.asyncio_server.server import GameServer

    game = GameServer(server_id="0")
    hooks = gs_hooks.setup(_config(sb), clock=sb.clock, on_kick=game.on_kick)  # type: ignore[arg-type]
    async with hooks:
        port = await game.start(hooks, "127.0.0.1", 0)
        try:
            with caplog.at_level(logging.ERROR):
                await _answers_each_case(sb, port, hooks, "code")
        finally:
            await game.close()
    (failed,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert failed.startswith("login of session") and failed.endswith("failed")  # the config error, logged once
