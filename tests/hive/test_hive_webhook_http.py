"""The Hive suspension webhook over real HTTP on the embedded listener: auth before the body, strict rejects
that change nothing, durable-before-answer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import gs_hooks
from gs_hooks import KST, FakeClock
from gs_hooks._store import Store
from gs_hooks.http import HttpServer, serve_http

pytestmark = pytest.mark.anyio

KEY = "hive-webhook-test-key-0001"
PATH = "/hive/suspensions"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=KST)


def config(tmp_path: Path, **hive: Any) -> gs_hooks.Config:
    return gs_hooks.Config(
        state_path=str(tmp_path / "state.db"),
        hive=gs_hooks.HiveConfig(auth_key=gs_hooks.Secret(KEY), game_index=539, **hive),
    )


@asynccontextmanager
async def running(
    cfg: gs_hooks.Config, kicks: list[gs_hooks.KickRequest]
) -> AsyncIterator[tuple[gs_hooks.Hooks, HttpServer]]:
    hooks = gs_hooks.setup(cfg, on_kick=kicks.append, clock=FakeClock(T0))
    async with hooks, serve_http(hooks.router, port=0) as server:
        yield hooks, server


def body(*items: dict[str, Any], game_index: int = 539) -> bytes:
    return json.dumps({"game_index": game_index, "server_url": "http://game", "data": list(items)}).encode()


def item(pid: int, **over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "player_id": pid,
        "status": "B",
        "start_date": "2026-03-01 11:00:00",
        "end_date": "2026-03-08 11:00:00",
    }
    d.update(over)
    return d


def rows(path: Path) -> list[tuple[Any, ...]]:
    import sqlite3

    if not path.exists():
        return []
    conn = sqlite3.connect(path)
    try:
        return sorted(conn.execute("SELECT * FROM bans_book").fetchall())
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


async def raw_exchange(server: HttpServer, head: bytes, *, wait_s: float = 5.0) -> bytes:
    """Send only ``head`` and read the answer until the server closes (never sending a body)."""
    async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
        await stream.send(head)
        data = b""
        with anyio.fail_after(wait_s):
            while True:
                try:
                    data += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    break
    return data


@pytest.mark.parametrize(
    "auth",
    [None, "Bearer wrong-key-xxxxxxxx", "Basic " + KEY, "Bearer", "bearer " + KEY + "x", KEY],
)
async def test_missing_or_wrong_bearer_is_refused_before_the_body_is_read(
    tmp_path: Path, auth: str | None, secrets_guard: None
) -> None:
    kicks: list[gs_hooks.KickRequest] = []
    async with running(config(tmp_path), kicks) as (hooks, server):
        head = f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n"
        if auth is not None:
            head += f"Authorization: {auth}\r\n"
        answer = await raw_exchange(server, (head + "\r\n").encode())
        status_line, _, rest = answer.partition(b"\r\n")
        assert status_line == b"HTTP/1.1 401 "  # h11 sends no reason phrase
        payload = json.loads(rest.partition(b"\r\n\r\n")[2])
        assert payload["result_code"] == 401 and payload["result_message"]
        assert b"www-authenticate: Bearer" in rest
        assert hooks.bans.active_bans() == []
        assert KEY.encode() not in answer


async def test_right_bearer_is_accepted_any_scheme_case(tmp_path: Path) -> None:
    kicks: list[gs_hooks.KickRequest] = []
    async with running(config(tmp_path), kicks) as (hooks, server), httpx.AsyncClient() as client:
        for scheme in ("Bearer", "bearer", "BEARER"):
            r = await client.post(
                server.url + PATH, content=body(item(1)), headers={"authorization": f"{scheme} {KEY}"}
            )
            assert r.status_code == 200 and r.json() == {"result_code": 0}
        assert [b.player_key for b in hooks.bans.active_bans()] == ["1"]


async def test_two_authorization_headers_are_refused(tmp_path: Path) -> None:
    async with running(config(tmp_path), []) as (hooks, server), httpx.AsyncClient() as client:
        headers = [("authorization", f"Bearer {KEY}"), ("authorization", "Bearer other-key-value")]
        r = await client.post(server.url + PATH, content=body(item(1)), headers=headers)
        assert r.status_code == 401
        assert hooks.bans.active_bans() == []


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"not json", 400),
        (body(item(1), item(2, player_id="2")), 400),
        (body(item(1), item(2, player_id=True)), 400),
        (body(item(1), item(2, status="Z")), 422),
        (body(item(1), item(2, end_date="2026/03/08 11:00:00")), 422),
        (body(item(1), game_index=1), 409),
    ],
)
async def test_a_malformed_batch_changes_nothing(tmp_path: Path, payload: bytes, code: int) -> None:
    kicks: list[gs_hooks.KickRequest] = []
    async with running(config(tmp_path), kicks) as (hooks, server), httpx.AsyncClient() as client:
        s = hooks.registry.open_nowait()
        hooks.bind_player(s, "1")
        before = rows(tmp_path / "state.db")
        r = await client.post(server.url + PATH, content=payload, headers={"authorization": f"Bearer {KEY}"})
        assert r.status_code == 400
        assert r.json()["result_code"] == code and r.json()["result_message"]
        assert hooks.bans.active_bans() == [] and kicks == [] and s in hooks.registry
        assert rows(tmp_path / "state.db") == before


async def test_answer_zero_only_after_the_bans_are_on_disk(tmp_path: Path) -> None:
    kicks: list[gs_hooks.KickRequest] = []
    async with running(config(tmp_path), kicks) as (_hooks, server), httpx.AsyncClient() as client:
        r = await client.post(
            server.url + PATH, content=body(item(5), item(6, status="P")), headers={"authorization": f"Bearer {KEY}"}
        )
        assert r.json() == {"result_code": 0}
        # another connection to the file sees both rows at once: committed before the answer
        on_disk = rows(tmp_path / "state.db")
        assert [(r[0], r[1], r[2]) for r in on_disk] == [("hive", "5", "temporary"), ("hive", "6", "permanent")]


async def test_a_store_failure_answers_503_keeps_the_ban_in_force_and_a_resend_records_it(tmp_path: Path) -> None:
    kicks: list[gs_hooks.KickRequest] = []
    async with running(config(tmp_path), kicks) as (hooks, server), httpx.AsyncClient() as client:
        s = hooks.registry.open_nowait()
        hooks.bind_player(s, "5")
        hooks.bans.active_ban("x")  # loaded
        good = hooks.store
        broken = Store(str(tmp_path / "broken.db"))
        broken.close()
        hooks.services.replace_store(broken)
        auth = {"authorization": f"Bearer {KEY}"}
        r = await client.post(server.url + PATH, content=body(item(5)), headers=auth)
        assert r.status_code == 503
        assert r.json()["result_code"] == 503
        # not recorded, so not acknowledged; but enforced at once and held in memory
        assert rows(tmp_path / "state.db") == []
        assert [k.session.id for k in kicks] == [s.id]
        assert hooks.bans.active_ban("5") is not None
        hooks.services.replace_store(good)
        r = await client.post(server.url + PATH, content=body(item(5)), headers=auth)  # Hive sends again
        assert r.json() == {"result_code": 0}
        assert [(r[0], r[1]) for r in rows(tmp_path / "state.db")] == [("hive", "5")]
        assert len(kicks) == 1


async def test_player_key_format_maps_hive_ids(tmp_path: Path) -> None:
    kicks: list[gs_hooks.KickRequest] = []
    async with running(config(tmp_path, player_key_format="hive:{id}"), kicks) as (hooks, server):
        s = hooks.registry.open_nowait()
        hooks.bind_player(s, "hive:42")
        async with httpx.AsyncClient() as client:
            r = await client.post(server.url + PATH, content=body(item(42)), headers={"authorization": f"Bearer {KEY}"})
        assert r.json() == {"result_code": 0}
        assert [k.session.id for k in kicks] == [s.id]
        ban = hooks.bans.active_ban("hive:42")
        assert ban is not None and ban.ends_at == datetime(2026, 3, 8, 11, 0, tzinfo=KST)


async def test_allowlist_refuses_other_addresses(tmp_path: Path) -> None:
    cfg = gs_hooks.Config(
        state_path=str(tmp_path / "s.db"),
        hive=gs_hooks.HiveConfig(auth_key=gs_hooks.Secret(KEY), game_index=539),
        listener=gs_hooks.ListenerConfig(suspension_allow=("10.0.0.0/8",)),
    )
    async with running(cfg, []) as (hooks, server), httpx.AsyncClient() as client:
        r = await client.post(server.url + PATH, content=body(item(1)), headers={"authorization": f"Bearer {KEY}"})
        assert r.status_code == 403
        assert hooks.bans.active_bans() == []


async def test_no_key_no_route(tmp_path: Path) -> None:
    hooks = gs_hooks.setup(gs_hooks.Config(state_path=str(tmp_path / "s.db")), clock=FakeClock(T0))
    assert all(r.pattern != PATH for r in hooks.router.routes())
    assert all(r.pattern != "/webstore-profile" for r in hooks.router.routes())
    await hooks.aclose()
