"""``POST /webstore-profile`` over real HTTP: the game's typed answer, defaults, 204, deadline and failures."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest

import gs_hooks
from gs_hooks import FakeClock
from gs_hooks.hive import WebstoreChannel, WebstoreCharacter, WebstoreProfile, WebstoreServer
from gs_hooks.http import HttpServer, serve_http

pytestmark = pytest.mark.anyio

URL = "/webstore-profile"
SHARED = "webstore-shared-key-42"


@asynccontextmanager
async def running(
    callback: Callable[..., Any], clock: FakeClock | None = None, **hive: Any
) -> AsyncIterator[tuple[gs_hooks.Hooks, HttpServer]]:
    cfg = gs_hooks.Config(state_path=":memory:", hive=gs_hooks.HiveConfig(**hive))
    hooks = gs_hooks.setup(cfg, clock=clock or FakeClock(), webstore_profile=callback)
    async with hooks, serve_http(hooks.router, port=0) as server:
        yield hooks, server


PROFILE = WebstoreProfile(
    servers=(
        WebstoreServer(
            server_id="1",
            server_name="Server 1",
            channels=(
                WebstoreChannel(
                    channel_id="1",
                    channel_name="Channel 1",
                    characters=(WebstoreCharacter(character_id="A", character_name="Character A", character_level=99),),
                ),
            ),
        ),
    )
)


async def known(cs_code: str) -> WebstoreProfile | None:
    return PROFILE if cs_code == "c_known" else None


async def test_known_user_gets_200_with_data() -> None:
    async with running(known) as (_, server), httpx.AsyncClient() as client:
        r = await client.post(server.url + URL, json={"cs_code": "c_known"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
        assert r.json() == {
            "result_code": 200,
            "result_message": "success",
            "cs_code": "c_known",
            "data": [
                {
                    "server_id": "1",
                    "server_name": "Server 1",
                    "channels": [
                        {
                            "channel_id": "1",
                            "channel_name": "Channel 1",
                            "characters": [
                                {"character_id": "A", "character_name": "Character A", "character_level": "99"}
                            ],
                        }
                    ],
                }
            ],
        }


async def test_unknown_user_gets_204_with_empty_data() -> None:
    async with running(known) as (_, server), httpx.AsyncClient() as client:
        r = await client.post(server.url + URL, json={"cs_code": "c_nobody"})
        assert r.status_code == 200
        assert r.json() == {
            "result_code": 204,
            "result_message": "no information about the user",
            "cs_code": "c_nobody",
            "data": [],
        }


async def test_a_sync_callback_works_too() -> None:
    async with running(lambda cs: PROFILE) as (_, server), httpx.AsyncClient() as client:
        r = await client.post(server.url + URL, json={"cs_code": "c"})
        assert r.json()["result_code"] == 200


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_a_slow_callback_gets_500_at_the_deadline(anyio_backend: str) -> None:
    clock = FakeClock()
    started = anyio.Event()

    async def slow(cs_code: str) -> WebstoreProfile:
        started.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async with running(slow, clock, webstore_timeout_s=2.0) as (_, server), httpx.AsyncClient() as client:
        answers: list[httpx.Response] = []

        async def call() -> None:
            answers.append(await client.post(server.url + URL, json={"cs_code": "c_slow"}))

        async with anyio.create_task_group() as tg:
            tg.start_soon(call)
            await started.wait()
            await clock.settle()
            await clock.advance(1.9)
            assert answers == []
            await clock.advance(0.1)
        assert answers[0].status_code == 200
        assert answers[0].json() == {
            "result_code": 500,
            "result_message": "server error (timeout)",
            "cs_code": "c_slow",
            "data": [],
        }


@pytest.mark.parametrize(
    "result",
    [
        RuntimeError("db down"),
        "not a profile",
        WebstoreProfile(servers=(WebstoreServer(server_id="", server_name=""),)),
    ],
)
async def test_a_failing_or_malformed_callback_gets_500(result: Any) -> None:
    async def bad(cs_code: str) -> Any:
        if isinstance(result, Exception):
            raise result
        return result

    async with running(bad) as (_, server), httpx.AsyncClient() as client:
        r = await client.post(server.url + URL, json={"cs_code": "c1"})
        assert r.status_code == 200
        assert r.json()["result_code"] == 500 and r.json()["data"] == [] and r.json()["cs_code"] == "c1"


@pytest.mark.parametrize("payload", [b"", b"{cs_code: 1}", b'{"cs_code": 7}', b'{"cs_code": ""}', b"[1]"])
async def test_a_request_without_cs_code_is_400(payload: bytes) -> None:
    calls: list[str] = []

    async def cb(cs_code: str) -> None:
        calls.append(cs_code)

    async with running(cb) as (_, server), httpx.AsyncClient() as client:
        r = await client.post(server.url + URL, content=payload)
        assert r.status_code == 400
        assert r.json()["result_code"] == 400 and r.json()["data"] == []
        assert calls == []


async def test_the_optional_shared_key_is_checked_before_the_body(secrets_guard: None) -> None:
    async with (
        running(known, webstore_key=gs_hooks.Secret(SHARED), webstore_key_header="X-Store-Key") as (_, server),
        httpx.AsyncClient() as client,
    ):
        for headers in ({}, {"x-store-key": "nope"}, {"x-gs-hooks-key": SHARED}):
            r = await client.post(server.url + URL, json={"cs_code": "c_known"}, headers=headers)
            assert r.status_code == 401 and r.json()["result_code"] == 401
            assert SHARED not in r.text
        r = await client.post(server.url + URL, json={"cs_code": "c_known"}, headers={"X-Store-Key": SHARED})
        assert r.json()["result_code"] == 200


async def test_the_allowlist_applies() -> None:
    cfg = gs_hooks.Config(state_path=":memory:", listener=gs_hooks.ListenerConfig(webstore_allow=("192.0.2.0/24",)))
    hooks = gs_hooks.setup(cfg, clock=FakeClock(), webstore_profile=known)
    async with hooks, serve_http(hooks.router, port=0) as server, httpx.AsyncClient() as client:
        r = await client.post(server.url + URL, json={"cs_code": "c_known"})
        assert r.status_code == 403


async def test_disabled_means_no_route() -> None:
    cfg = gs_hooks.Config(state_path=":memory:", hive=gs_hooks.HiveConfig(webstore_enabled=False))
    hooks = gs_hooks.setup(cfg, clock=FakeClock(), webstore_profile=known)
    async with hooks, serve_http(hooks.router, port=0) as server, httpx.AsyncClient() as client:
        r = await client.post(server.url + URL, json={"cs_code": "c_known"})
        assert r.status_code == 404
        json.loads(r.text)
