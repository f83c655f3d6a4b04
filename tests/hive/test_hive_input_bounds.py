"""Hive bodies the decoder alone would mishandle: deep nesting, repeated keys, non-ASCII digits, huge ids.

Each is refused in the route's documented error shape (webhook: HTTP 400 with ``result_code``/``result_message``;
web-store: HTTP 400 with result_code 400 and ``data: []``), changes no state, and logs no error or traceback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

import gs_hooks
from gs_hooks import KST, FakeClock
from gs_hooks.hive import HiveRequestError, WebstoreProfile, decode_suspension_batch, decode_webstore_request
from gs_hooks.hive._protocol import MAX_PLAYER_ID, parse_hive_date, zone_of
from gs_hooks.http import HttpServer, serve_http

pytestmark = pytest.mark.anyio

KEY = "hive-bounds-test-key-0001"
GAME = 539
DEEP = "[" * 2000 + "]" * 2000


def item(pid: Any = 7, **over: Any) -> str:
    fields = {"player_id": pid, "status": "B", "start_date": "2026-03-01 10:00:00", "end_date": "2026-03-02 10:00:00"}
    fields.update(over)
    return (
        "{" + ",".join(f"{json.dumps(k)}:{v if k == 'player_id' else json.dumps(v)}" for k, v in fields.items()) + "}"
    )


def batch(*items: str, head: str = f'"game_index":{GAME},"server_url":"http://game"') -> bytes:
    return ("{" + head + ',"data":[' + ",".join(items) + "]}").encode()


# Each: (body, result code, words of the message).
BAD_WEBHOOK_BODIES = {
    "nested-2000-in-an-unknown-field": (
        batch(item(), head=f'"game_index":{GAME},"server_url":"u","x":{DEEP}'),
        400,
        "deeper than 32",
    ),
    "nested-2000-as-data": (f'{{"game_index":{GAME},"server_url":"u","data":{DEEP}}}'.encode(), 400, "deeper than 32"),
    "game_index-twice-ours-last": (
        batch(item(), head=f'"game_index":1,"game_index":{GAME},"server_url":"u"'),
        400,
        "'game_index' twice",
    ),
    "game_index-twice-ours-first": (
        batch(item(), head=f'"game_index":{GAME},"game_index":1,"server_url":"u"'),
        400,
        "'game_index' twice",
    ),
    "game_index-twice-escaped": (
        batch(item(), head=f'"game_index":1,"game\\u005findex":{GAME},"server_url":"u"'),
        400,
        "'game_index' twice",
    ),
    "player_id-twice": (
        batch(item().replace('"player_id":7', '"player_id":7,"player_id":8')),
        400,
        "'player_id' twice",
    ),
    "end_date-twice": (
        batch(item(end_date="2026-03-02 10:00:00")[:-1] + ',"end_date":"9999-12-31 00:00:00"}'),
        400,
        "'end_date' twice",
    ),
    "repeat-inside-an-unknown-field": (batch(item()[:-1] + ',"extra":{"a":1,"a":2}}'), 400, "'a' twice"),
    "player_id-10^40": (batch(item(10**40)), 400, "player_id"),
    "player_id-2^63": (batch(item(2**63)), 400, "player_id"),
    "fullwidth-digits-start": (batch(item(start_date="２０２４-07-10 00:00:00")), 422, "not a date"),
    "arabic-indic-digits-end": (batch(item(end_date="\u0662\u0660\u0662\u0666-03-02 10:00:00")), 422, "not a date"),
    "devanagari-digits-time": (batch(item(start_date="2026-03-01 \u0967\u0966:00:00")), 422, "not a date"),
}


@pytest.mark.parametrize(("body", "code", "words"), BAD_WEBHOOK_BODIES.values(), ids=BAD_WEBHOOK_BODIES.keys())
def test_webhook_bodies_are_refused_with_a_clear_message(body: bytes, code: int, words: str) -> None:
    with pytest.raises(HiveRequestError) as info:
        decode_suspension_batch(body, game_index=GAME)
    assert info.value.result_code == code
    assert words in info.value.message
    assert len(info.value.message) < 300


def test_the_documented_body_and_the_largest_id_still_decode() -> None:
    players = decode_suspension_batch(batch(item(0), item(MAX_PLAYER_ID, status="P")), game_index=GAME)
    assert [p.player_id for p in players] == [0, 2**63 - 1]
    # unknown fields (nested a little), spacing and escapes in values are fine
    body = batch(item(1)[:-1] + ', "extra": {"a": [1, {"b": "x\\"]"}], "c": "{:}"}}', item(2))
    assert [p.player_id for p in decode_suspension_batch(body, game_index=GAME)] == [1, 2]


@pytest.mark.parametrize(
    "value", ["２０２４-07-10 00:00:00", "\u0662\u0660\u0662\u0664-01-01 00:00:00", "2024-07-10 0\u0661:00:00"]
)
def test_the_date_parser_takes_ascii_digits_only(value: str) -> None:
    # strptime (and int()) take any script's digits; the webhook's format is ASCII
    assert datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
    with pytest.raises(ValueError, match="not a date"):
        parse_hive_date(value, zone_of(9))


BAD_WEBSTORE_BODIES = {
    "nested-2000": (f'{{"cs_code":"c_1","x":{DEEP}}}'.encode(), "deeper than 32"),
    "cs_code-twice": (b'{"cs_code":"c_1","cs_code":"c_2"}', "'cs_code' twice"),
    "cs_code-twice-escaped": (b'{"cs_code":"c_1","cs\\u005fcode":"c_2"}', "'cs_code' twice"),
}


@pytest.mark.parametrize(("body", "words"), BAD_WEBSTORE_BODIES.values(), ids=BAD_WEBSTORE_BODIES.keys())
def test_webstore_bodies_are_refused_with_a_clear_message(body: bytes, words: str) -> None:
    with pytest.raises(HiveRequestError) as info:
        decode_webstore_request(body)
    assert info.value.result_code == 400
    assert words in info.value.message


def test_a_webstore_body_with_an_extra_field_or_escapes_still_decodes() -> None:
    assert decode_webstore_request(b'{"cs_code": "c_\\"1", "extra": [1, 2]}') == 'c_"1'


# -- over HTTP, through setup() ------------------------------------------------------------------------------


@asynccontextmanager
async def running(
    tmp_path: Path, kicks: list[gs_hooks.KickRequest]
) -> AsyncIterator[tuple[gs_hooks.Hooks, HttpServer]]:
    calls: list[str] = []

    async def profile(cs_code: str) -> WebstoreProfile | None:
        calls.append(cs_code)
        return None

    cfg = gs_hooks.Config(
        state_path=str(tmp_path / "state.db"),
        hive=gs_hooks.HiveConfig(auth_key=gs_hooks.Secret(KEY), game_index=GAME),
    )
    hooks = gs_hooks.setup(
        cfg, on_kick=kicks.append, clock=FakeClock(datetime(2026, 3, 1, 12, tzinfo=KST)), webstore_profile=profile
    )
    async with hooks, serve_http(hooks.router, port=0) as server:
        yield hooks, server
    assert calls == []  # no refused web-store body reached the game's callback


async def test_bad_bodies_over_http_get_400_change_nothing_and_log_no_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    kicks: list[gs_hooks.KickRequest] = []
    async with running(tmp_path, kicks) as (hooks, server), httpx.AsyncClient(base_url=server.url) as client:
        for pid in ("7", "8", str(10**40)):
            hooks.bind_player(hooks.registry.open_nowait(), pid)
        changes = hooks.store.run_sync(lambda c: c.total_changes)
        for name, (body, code, words) in BAD_WEBHOOK_BODIES.items():
            r = await client.post("/hive/suspensions", content=body, headers={"authorization": f"Bearer {KEY}"})
            assert r.status_code == 400, name
            answer = r.json()
            assert answer["result_code"] == code and words in answer["result_message"], name
        for name, (body, words) in BAD_WEBSTORE_BODIES.items():
            r = await client.post("/webstore-profile", content=body)
            assert r.status_code == 400, name
            answer = r.json()
            assert answer["result_code"] == 400 and words in answer["result_message"], name
            assert answer["data"] == [] and answer["cs_code"] == ""
        assert hooks.bans.active_bans() == [] and kicks == []
        assert hooks.store.run_sync(lambda c: c.total_changes) == changes
    assert [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []
