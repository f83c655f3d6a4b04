"""The admin API over the real listener (and mounted as ASGI under uvicorn): no action without the key, the
allowlist enforced, kicks/bans/unbans that take effect, searchable and paged lists, the documented error shape for
every malformed request (and no state change), every action logged with who asked and counted."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from ops_support import ADMIN_KEY, DASH_KEY, World, world
from starlette.applications import Starlette
from starlette.routing import Mount

from gs_hooks import BannedError, Secret, _metrics

pytestmark = pytest.mark.anyio

ACTIONS = [
    ("GET", "/admin/status", None),
    ("GET", "/admin/sessions", None),
    ("POST", "/admin/kick", {"player": "5101"}),
    ("GET", "/admin/bans", None),
    ("POST", "/admin/ban", {"player": "5101"}),
    ("POST", "/admin/unban", {"player": "5102"}),
]


def state(w: World) -> tuple[Any, ...]:
    book = w.hooks.bans
    return (
        sorted((s.id, s.player_id) for s in w.hooks.registry),
        sorted((b.source, b.player_key, b.ends_at) for b in book.active_bans()),
        len(w.kicks),
    )


async def populated(w: World) -> None:
    await w.login("5101")
    await w.login("5103", server_id="2")
    await w.hooks.ban("5102")


def error_of(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["status"] == status
    message = body["error"]["message"]
    assert isinstance(message, str) and message
    return message


async def test_no_action_and_no_read_without_the_key() -> None:
    async with world() as w, httpx.AsyncClient(base_url=w.url) as client:
        await populated(w)
        before = state(w)
        counted = _metrics.ADMIN_REQUESTS.total("kick", "401")
        for method, path, body in ACTIONS:
            for headers in (
                {},
                {"authorization": "Bearer not-the-key"},
                {"x-gs-hooks-key": "not-the-key"},
                {"authorization": f"Basic {ADMIN_KEY}"},
                {"authorization": f"Bearer {ADMIN_KEY}x"},
            ):
                r = await client.request(method, path, json=body, headers=headers)
                message = error_of(r, 401)
                assert ADMIN_KEY not in message and r.headers["www-authenticate"].startswith("Bearer")
            # two keys, one of them right: refused (which one counts would be ambiguous)
            both = [("authorization", "Bearer wrong"), ("x-gs-hooks-key", ADMIN_KEY)]
            error_of(await client.request(method, path, json=body, headers=both), 401)
        assert state(w) == before
        assert _metrics.ADMIN_REQUESTS.total("kick", "401") == counted + 6


async def test_the_api_is_off_without_any_key_and_says_which_setting_turns_it_on() -> None:
    async with world(admin_key=None) as w, httpx.AsyncClient(base_url=w.url) as client:
        await populated(w)
        before = state(w)
        r = await client.post("/admin/kick", json={"player": "5101"}, headers=w.headers("anything"))
        assert "GS_HOOKS_ADMIN_KEY" in error_of(r, 403)
        assert state(w) == before


async def test_the_dashboard_key_serves_while_no_admin_key_is_set() -> None:
    async with world(admin_key=None, dashboard_key=Secret(DASH_KEY)) as w, httpx.AsyncClient(base_url=w.url) as c:
        await w.login("5101")
        r = await c.post("/admin/kick", json={"player": "5101"}, headers={"x-gs-hooks-key": DASH_KEY})
        assert r.status_code == 200 and r.json()["kicked"] == 1
    async with world(dashboard_key=Secret(DASH_KEY)) as w, httpx.AsyncClient(base_url=w.url) as c:
        await w.login("5101")
        error_of(await c.post("/admin/kick", json={"player": "5101"}, headers=w.headers(DASH_KEY)), 401)
        assert (await c.get("/admin/status", headers=w.headers())).status_code == 200


async def test_the_admin_allowlist_is_enforced() -> None:
    async with world(admin_allow=("192.0.2.0/24",)) as w, httpx.AsyncClient(base_url=w.url) as client:
        await populated(w)
        before = state(w)
        for method, path, body in ACTIONS:
            r = await client.request(method, path, json=body, headers=w.headers())
            assert r.status_code == 403, (path, r.text)
        assert state(w) == before


async def test_without_redis_kick_and_sessions_answer_as_in_one_process() -> None:
    # fleet mode off: no owner lookup, no per-process counts, no wait; the shapes as before fleet mode's admin kick
    async with world() as w, httpx.AsyncClient(base_url=w.url, headers=w.headers()) as client:
        await populated(w)
        assert w.hooks.fleet is None
        r = await client.get("/admin/sessions", params={"player": "5101"})
        assert set(r.json()) == {"total", "offset", "limit", "sessions"} and r.json()["total"] == 1
        r = await client.post("/admin/kick", json={"player": "5101"})
        assert r.status_code == 200 and r.json() == {"player": "5101", "reason": "admin", "kicked": 1}
        assert set(error_of(await client.post("/admin/kick", json={"player": "5101"}), 404).split()) >= {"no", "live"}


async def test_kick_ban_and_unban_take_effect() -> None:
    async with world() as w, httpx.AsyncClient(base_url=w.url, headers=w.headers()) as client:
        await populated(w)
        r = await client.post("/admin/kick", json={"player": 5101, "reason": "cheating", "message": "see support"})
        assert r.json() == {"player": "5101", "reason": "cheating", "kicked": 1}
        assert [(k.reason, k.message, k.session.player_id) for k in w.kicks] == [("cheating", "see support", "5101")]
        assert w.hooks.registry.sessions_of("5101") == ()
        assert "no live session" in error_of(await client.post("/admin/kick", json={"player": "5101"}), 404)

        r = await client.post("/admin/ban", json={"player": "5103", "duration_s": 3600, "message": "chargeback"})
        ban = r.json()
        assert r.status_code == 200 and ban["source"] == "api" and ban["status"] == "temporary" and ban["changed"]
        assert ban["message"] == "chargeback"
        assert w.kicks[-1].reason == "ban" and w.kicks[-1].session.player_id == "5103"
        with pytest.raises(BannedError):
            await w.login("5103")
        until = (w.hooks.clock.now() + timedelta(days=2)).isoformat()
        r = await client.post("/admin/ban", json={"player": "5104", "until": until})
        assert r.json()["ends_at"] == until
        r = await client.post("/admin/ban", json={"player": "5105"})
        assert r.json()["status"] == "permanent" and r.json()["ends_at"] is None

        r = await client.post("/admin/unban", json={"player": "5103"})
        assert r.status_code == 200 and [b["source"] for b in r.json()["lifted"]] == ["api"]
        await w.login("5103")  # logs in again
        assert "no ban" in error_of(await client.post("/admin/unban", json={"player": "5103"}), 404)


async def test_sessions_and_bans_are_searched_and_paged() -> None:
    async with world() as w, httpx.AsyncClient(base_url=w.url, headers=w.headers()) as client:
        for i in range(7):
            await w.login(f"pl-{i}", server_id="1" if i < 4 else "2")
        w.hooks.registry.open_nowait(server_id="2")  # not logged in
        r = (await client.get("/admin/sessions", params={"server_id": "2"})).json()
        assert r["total"] == 4 and [s["player"] for s in r["sessions"]] == ["pl-4", "pl-5", "pl-6", None]
        r = (await client.get("/admin/sessions", params={"player": "pl-5"})).json()
        assert [(s["player"], s["server_id"]) for s in r["sessions"]] == [("pl-5", "2")]
        r = (await client.get("/admin/sessions", params={"q": "pl-", "offset": 2, "limit": 3})).json()
        assert r["total"] == 7 and [s["player"] for s in r["sessions"]] == ["pl-2", "pl-3", "pl-4"]

        now = w.hooks.clock.now()
        for i in range(30):
            await w.hooks.bans.apply(
                [_ban(f"b-{i:02d}", "hive" if i % 2 else "gamebase", now - timedelta(minutes=30 - i))]
            )
        r = (await client.get("/admin/bans", params={"limit": 5})).json()
        assert r["total"] == 30 and r["active"] == 30
        assert [b["player"] for b in r["bans"]] == ["b-29", "b-28", "b-27", "b-26", "b-25"]  # newest first
        r = (await client.get("/admin/bans", params={"q": "b-1", "offset": 8, "limit": 5})).json()
        assert r["total"] == 10 and [b["player"] for b in r["bans"]] == ["b-11", "b-10"]
        r = (await client.get("/admin/bans", params={"source": "gamebase", "limit": 500})).json()
        assert r["total"] == 15 and {b["source"] for b in r["bans"]} == {"gamebase"}
        for params in ({"limit": "0"}, {"limit": "501"}, {"offset": "-1"}, {"offset": "x"}, {"colour": "red"}):
            error_of(await client.get("/admin/bans", params=params), 400)


def _ban(player: str, source: str, start: Any) -> Any:
    from gs_hooks.bans import Ban

    return Ban(player_key=player, source=source, status="permanent", starts_at=start)


MALFORMED = [
    ("/admin/kick", b""),
    ("/admin/kick", b"not json"),
    ("/admin/kick", b"[1, 2]"),
    ("/admin/kick", b"{}"),
    ("/admin/kick", b'{"player": null}'),
    ("/admin/kick", b'{"player": true}'),
    ("/admin/kick", b'{"player": ""}'),
    ("/admin/kick", b'{"player": "a/b"}'),
    ("/admin/kick", b'{"player": "5101", "reason": ""}'),
    ("/admin/kick", b'{"player": "5101", "reason": 5}'),
    ("/admin/kick", b'{"player": "5101", "message": "line\\nbreak"}'),
    ("/admin/kick", b'{"player": "5101", "extra": 1}'),
    ("/admin/ban", b'{"player": "5101", "until": "tomorrow"}'),
    ("/admin/ban", b'{"player": "5101", "until": "2030-01-01T00:00:00"}'),
    ("/admin/ban", b'{"player": "5101", "until": "2000-01-01T00:00:00+09:00"}'),
    ("/admin/ban", b'{"player": "5101", "duration_s": -5}'),
    ("/admin/ban", b'{"player": "5101", "duration_s": "1h"}'),
    ("/admin/ban", b'{"player": "5101", "duration_s": 60, "until": "2030-01-01T00:00:00+09:00"}'),
    ("/admin/unban", b'{"player": 1.5}'),
    ("/admin/unban", b'{"players": ["5102"]}'),
]


@pytest.mark.parametrize(("path", "body"), MALFORMED)
async def test_a_malformed_body_gets_a_clear_400_and_changes_nothing(path: str, body: bytes) -> None:
    async with world() as w, httpx.AsyncClient(base_url=w.url, headers=w.headers()) as client:
        await populated(w)
        before = state(w)
        r = await client.post(path, content=body, headers={"content-type": "application/json"})
        message = error_of(r, 400)
        assert len(message) < 300
        assert state(w) == before


async def test_every_action_is_logged_with_who_asked_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gs_hooks.admin")
    async with world() as w, httpx.AsyncClient(base_url=w.url, headers=w.headers()) as client:
        await populated(w)
        before = {a: _metrics.ADMIN_REQUESTS.total(a, "200") for a in ("kick", "ban", "unban")}
        await client.post("/admin/kick", json={"player": "5101"})
        await client.post("/admin/ban", json={"player": "5106"})
        await client.post("/admin/unban", json={"player": "5106"})
    for action in ("kick", "ban", "unban"):
        assert _metrics.ADMIN_REQUESTS.total(action, "200") == before[action] + 1
        (record,) = [r for r in caplog.records if getattr(r, "action", None) == action]
        assert record.peer == "127.0.0.1"  # type: ignore[attr-defined]
        assert record.player in ("5101", "5106")  # type: ignore[attr-defined]
        assert "by 127.0.0.1" in record.getMessage()
    assert ADMIN_KEY not in caplog.text


async def test_status_says_version_host_uptime_and_readiness() -> None:
    async with world() as w, httpx.AsyncClient(base_url=w.url, headers=w.headers()) as client:
        await populated(w)
        doc = (await client.get("/admin/status")).json()
    assert doc["version"] == _metrics.VERSION and doc["host"] and doc["state"] == "running"
    assert doc["uptime_s"] >= 0 and doc["ready"] is True and doc["live"] is True
    assert doc["sessions"] == 2 and doc["players"] == 2 and doc["bans_active"] == 1
    assert {"listener", "gamebase-verifier"} <= {c["name"] for c in doc["components"]}


@asynccontextmanager
async def uvicorn_serving(app: Any) -> AsyncIterator[str]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", ws="none", http="h11")
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        with anyio.fail_after(10):
            while not server.started:
                await anyio.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        finally:
            server.should_exit = True


async def test_the_admin_api_is_in_the_asgi_app_under_a_prefix() -> None:
    async with world() as w:
        await w.login("5101")
        app = Starlette(routes=[Mount("/gs", app=w.hooks.asgi_app())])
        async with uvicorn_serving(app) as base, httpx.AsyncClient(base_url=base) as client:
            error_of(await client.post("/gs/admin/kick", json={"player": "5101"}), 401)
            r = await client.post("/gs/admin/kick", json={"player": "5101"}, headers=w.headers())
            assert r.json()["kicked"] == 1


def test_the_start_summary_and_warnings_name_the_admin_api() -> None:
    from gs_hooks import Config, ListenerConfig
    from gs_hooks.ops import StartFacts, config_warnings, start_warnings, startup_summary

    def listener(**options: Any) -> Config:
        return Config(state_path=":memory:", listener=ListenerConfig(**options))

    facts = StartFacts(listener_url="http://127.0.0.1:9100")
    keyed = listener(listen="127.0.0.1:9100", admin_key=Secret(ADMIN_KEY))
    assert "admin API: on (GS_HOOKS_ADMIN_KEY), loopback only" in startup_summary(keyed, facts)
    shared = listener(listen="127.0.0.1:9100", dashboard_key=Secret(DASH_KEY))
    assert "admin API: on (the dashboard key)" in startup_summary(shared, facts)
    assert "admin API: off (GS_HOOKS_ADMIN_KEY unset)" in startup_summary(listener(), StartFacts())
    assert ADMIN_KEY not in startup_summary(keyed, facts)
    public = listener(listen="0.0.0.0:9100", admin_key=Secret(ADMIN_KEY), admin_allow=("0.0.0.0/0",))
    warned = [str(w) for w in start_warnings(public, facts)]
    assert any("the admin API" in w and "GS_HOOKS_LISTEN_ADMIN_ALLOW" in w for w in warned), warned
    unserved = [
        str(w) for w in [*config_warnings(keyed), *start_warnings(listener(admin_key=Secret(ADMIN_KEY)), StartFacts())]
    ]
    assert any(w.startswith("GS_HOOKS_ADMIN_KEY: the admin API is configured but not served") for w in unserved), (
        unserved
    )


README_CALLS = re.findall(
    r"-d '(\{.*?\})' \$URL/admin/(\w+)", (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
)


async def test_the_readme_curl_bodies_are_accepted_as_written() -> None:
    calls = README_CALLS
    assert {action for _, action in calls} == {"kick", "ban", "unban"}
    async with world() as w, httpx.AsyncClient(base_url=w.url, headers=w.headers()) as client:
        await w.login("7101")
        for body, action in calls:
            data = json.loads(body)
            if "until" in data:  # the README's date is an example: keep it in the future of this run
                data["until"] = (w.hooks.clock.now() + timedelta(days=3)).isoformat()
            r = await client.post(f"/admin/{action}", json=data)
            assert r.status_code == 200, (action, body, r.text)
