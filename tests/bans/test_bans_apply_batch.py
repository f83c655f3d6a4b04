"""Applying a batch of bans: the sync fast path keeps the order and the outcome of the awaited path."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import anyio
import pytest

import gs_hooks
from gs_hooks import KST, FakeClock
from gs_hooks.bans import Ban, BanDetails, BanEvent
from kick_support import FakeConnection

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=KST)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def login(hooks: gs_hooks.Hooks, player: str, on_close: Callable[[], object] | None = None) -> gs_hooks.Session:
    session = hooks.registry.open_nowait(connection=FakeConnection(on_close))
    hooks.bind_player(session, player)
    return session


def ban(player: str, ends_at: datetime | None = None, message: str = "") -> Ban:
    status = "permanent" if ends_at is None else "temporary"
    return Ban(player_key=player, source="hive", status=status, starts_at=T0, ends_at=ends_at, message=message)


async def test_async_callbacks_are_called_in_batch_order() -> None:
    """on_kick is called in the batch's order (its async part runs beside the batch, bounded by the kick grace:
    the batch never waits for it); an async on_ban is awaited in order."""
    log: list[str] = []

    def on_kick(request: gs_hooks.KickRequest) -> Awaitable[None]:
        log.append(f"kick {request.session.player_id} {request.session.id}")
        return anyio.lowlevel.checkpoint()

    async def on_ban(event: BanEvent) -> None:
        await anyio.lowlevel.checkpoint()
        log.append(f"ban {event.player_key} {event.sessions_kicked}")

    config = gs_hooks.Config(state_path=":memory:", sessions=gs_hooks.SessionsConfig(duplicate_login="allow"))
    hooks = gs_hooks.setup(config, on_kick=on_kick, on_ban=on_ban, clock=FakeClock(T0))
    async with hooks:
        a1, a2, b1 = login(hooks, "a"), login(hooks, "a"), login(hooks, "b")
        changed = await hooks.bans.apply([ban("a"), ban("b")])
        assert len(changed) == 2
    assert log == [f"kick a {a1.id}", f"kick a {a2.id}", "ban a 2", f"kick b {b1.id}", "ban b 1"]
    assert len(hooks.registry) == 0


async def test_mixed_sync_and_async_kicks_count_every_session() -> None:
    seen: list[int] = []

    def on_kick(request: gs_hooks.KickRequest) -> object:
        seen.append(request.session.id)
        if len(seen) % 2:
            return None
        return anyio.lowlevel.checkpoint()  # every other kick is async

    events: list[BanEvent] = []
    config = gs_hooks.Config(state_path=":memory:", sessions=gs_hooks.SessionsConfig(duplicate_login="allow"))
    hooks = gs_hooks.setup(config, on_kick=on_kick, on_ban=events.append, clock=FakeClock(T0))
    async with hooks:
        sessions = [login(hooks, "p") for _ in range(5)] + [login(hooks, "q")]
        await hooks.bans.apply([ban("p"), ban("q")])
    assert seen == [s.id for s in sessions]
    assert [(e.player_key, e.sessions_kicked) for e in events] == [("p", 5), ("q", 1)]


async def test_a_raising_on_kick_in_a_batch_closes_the_connection_and_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    closed: list[str] = []

    def on_kick(request: gs_hooks.KickRequest) -> None:
        if request.session.player_id == "a":
            raise RuntimeError("game bug")

    events: list[BanEvent] = []
    hooks = gs_hooks.setup(
        gs_hooks.Config(state_path=":memory:"), on_kick=on_kick, on_ban=events.append, clock=FakeClock(T0)
    )
    async with hooks:
        login(hooks, "a", on_close=lambda: closed.append("a"))
        login(hooks, "b", on_close=lambda: closed.append("b"))
        with caplog.at_level(logging.ERROR, logger="gs_hooks"):
            await hooks.bans.apply([ban("a"), ban("b")])
        assert closed == ["a"]  # the default kick ran for the failed on_kick only
    assert closed == ["a", "b"]  # b's on_kick left it open: the safety net closed it at shutdown
    assert [(e.player_key, e.sessions_kicked) for e in events] == [("a", 1), ("b", 1)]
    assert any("on_kick" in r.getMessage() for r in caplog.records)


async def test_default_messages_follow_each_bans_zone_within_a_batch() -> None:
    kicks: list[gs_hooks.KickRequest] = []
    hooks = gs_hooks.setup(gs_hooks.Config(state_path=":memory:"), on_kick=kicks.append, clock=FakeClock(T0))
    end = T0 + timedelta(days=1)
    async with hooks:
        for p in ("k1", "u1", "k2", "x", "perm"):
            login(hooks, p)
        await hooks.bans.apply(
            [
                ban("k1", end),
                ban("u1", end.astimezone(UTC)),  # the same instant in another zone
                ban("k2", end),
                ban("x", end, message="custom"),
                ban("perm"),
            ]
        )
    messages = {k.session.player_id: k.message for k in kicks}
    assert messages == {
        "k1": "You are banned until 2026-03-02 12:00:00 KST.",
        "u1": "You are banned until 2026-03-02 03:00:00 UTC.",
        "k2": "You are banned until 2026-03-02 12:00:00 KST.",
        "x": "custom",
        "perm": "You are permanently banned.",
    }
    details = {k.session.player_id: k.details for k in kicks}
    assert details["u1"] == BanDetails(
        source="hive", status="temporary", starts_at=T0, ends_at=end.astimezone(UTC), message=""
    )
