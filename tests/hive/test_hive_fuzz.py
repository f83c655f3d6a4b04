"""Property-based fuzzing of the Hive webhook and web-store bodies, pure and over real HTTP.

Quick profile in CI (200 examples per property). The deep profile is run by hand::

    GS_HOOKS_FUZZ_EXAMPLES=100000 python -m pytest -q -o timeout=0 tests/hive/test_hive_fuzz.py

Properties: no crash, never a 500, every answer in the documented shape, and a refused webhook request changes
nothing (no sqlite write, no book entry, no kick, no ``on_ban``).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import anyio.from_thread
import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import gs_hooks
from gs_hooks import KST, FakeClock
from gs_hooks.hive import (
    HiveRequestError,
    WebstoreProfile,
    WebstoreServer,
    decode_suspension_batch,
    decode_webstore_request,
)
from gs_hooks.http import serve_http
from gs_hooks.sandbox import validate_webstore_answer

EXAMPLES = int(os.environ.get("GS_HOOKS_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
KEY = "fuzz-webhook-key-123456"
GAME = 539

# -- strategies ---------------------------------------------------------------------------------------------

json_scalars = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


def date_strings() -> st.SearchStrategy[str]:
    well_formed = st.builds(
        lambda y, mo, d, h, mi, s: f"{y:04d}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}:{s:02d}",
        st.integers(0, 9999),
        st.integers(0, 13),
        st.integers(0, 32),
        st.integers(0, 25),
        st.integers(0, 61),
        st.integers(0, 61),
    )
    return (
        st.sampled_from(["9999-12-31 00:00:00", "2026-03-01 10:00:00", "2026-03-09 10:00:00"])
        | well_formed
        | st.text(max_size=25)
    )


real_dates = st.builds(
    lambda d, sec: f"2026-03-{d:02d} {sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}",
    st.integers(1, 12),
    st.integers(0, 86_399),
) | st.just("9999-12-31 00:00:00")
good_items = st.fixed_dictionaries(
    {
        "player_id": st.integers(0, 80),
        "status": st.sampled_from(["P", "B"]),
        "start_date": real_dates,
        "end_date": real_dates,
    }
)
wild_items = st.fixed_dictionaries(
    {
        "player_id": st.integers(-5, 2**64)
        | st.booleans()
        | st.text(max_size=5)
        | st.floats(allow_nan=False)
        | st.none(),
        "status": st.sampled_from(["P", "B"]) | st.text(max_size=3) | st.integers(),
        "start_date": date_strings() | json_scalars,
        "end_date": date_strings() | json_scalars,
    },
    optional={"extra": json_values},
)
good_batches = st.fixed_dictionaries(
    {
        "game_index": st.sampled_from([GAME] * 9 + [GAME + 1]),
        "server_url": st.just("http://game/hook"),
        "data": st.lists(good_items, max_size=6),
    }
)
wild_batches = st.fixed_dictionaries(
    {
        "game_index": st.sampled_from([GAME, 0, -1, 2**63]) | json_scalars,
        "server_url": st.text(max_size=20) | json_scalars,
        "data": st.lists(good_items | wild_items, max_size=5) | json_values,
    }
)
near_valid = (good_batches | good_batches | wild_batches).map(lambda d: json.dumps(d).encode())


def drop_random_key(blob: bytes, which: int) -> bytes:
    d = json.loads(blob)
    if isinstance(d, dict) and d:
        d.pop(sorted(d)[which % len(d)])
    return json.dumps(d).encode()


webhook_bodies = st.one_of(
    near_valid,
    near_valid,
    near_valid,
    st.builds(drop_random_key, near_valid, st.integers(0, 5)),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
)
good_cs_codes = st.text(min_size=1, max_size=40).map(lambda c: json.dumps({"cs_code": c}).encode())
webstore_bodies = st.one_of(
    good_cs_codes,
    good_cs_codes,
    st.fixed_dictionaries({"cs_code": json_scalars}).map(lambda d: json.dumps(d).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=120),
)

# -- pure properties ----------------------------------------------------------------------------------------


@FUZZ
@given(webhook_bodies)
def test_decoding_a_webhook_body_never_crashes(body: bytes) -> None:
    try:
        players = decode_suspension_batch(body, game_index=GAME)
    except HiveRequestError as exc:
        code, message = exc.result_code, exc.message
        assert code in (400, 409, 422) and message
        return
    for p in players:
        assert p.starts_at.tzinfo is not None
        assert p.permanent == (p.ends_at is None)
        assert p.ends_at is None or p.ends_at > p.starts_at


@FUZZ
@given(webstore_bodies)
def test_decoding_a_webstore_body_never_crashes(body: bytes) -> None:
    try:
        assert decode_webstore_request(body)
    except HiveRequestError as exc:
        code = exc.result_code
        assert code == 400


# -- over HTTP ----------------------------------------------------------------------------------------------


@dataclass
class Live:
    portal: anyio.from_thread.BlockingPortal
    hooks: gs_hooks.Hooks
    url: str
    kicks: list[gs_hooks.KickRequest] = field(default_factory=list)
    ban_events: list[Any] = field(default_factory=list)

    def state(self) -> tuple[int, int, int, int]:
        def snapshot() -> tuple[int, int, int, int]:
            changes = self.hooks.store.run_sync(lambda c: c.total_changes)
            return changes, len(self.hooks.bans.recorded_keys), len(self.kicks), len(self.ban_events)

        return self.portal.call(lambda: anyio.to_thread.run_sync(snapshot))


async def profile(cs_code: str) -> WebstoreProfile | None:
    if len(cs_code) % 2:
        return None
    return WebstoreProfile(servers=(WebstoreServer(server_id="1", server_name=cs_code[:10] or "S"),))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    path = tmp_path_factory.mktemp("fuzz") / "state.db"
    kicks: list[gs_hooks.KickRequest] = []
    events: list[Any] = []
    cfg = gs_hooks.Config(
        state_path=str(path), hive=gs_hooks.HiveConfig(auth_key=gs_hooks.Secret(KEY), game_index=GAME)
    )

    @asynccontextmanager
    async def running() -> AsyncIterator[tuple[gs_hooks.Hooks, str]]:
        hooks = gs_hooks.setup(
            cfg,
            on_kick=kicks.append,
            on_ban=events.append,
            clock=FakeClock(datetime(2026, 3, 5, tzinfo=KST)),
            webstore_profile=profile,
        )
        async with hooks, serve_http(hooks.router, port=0) as server:
            for i in range(50):  # some live players the accepted batches may ban
                hooks.bind_player(hooks.registry.open_nowait(), str(i))
            yield hooks, server.url

    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(running()) as (hooks, url),
    ):
        yield Live(portal, hooks, url, kicks, events)


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as c:
        yield c


@FUZZ
@given(body=webhook_bodies)
def test_webhook_answers_every_body_without_500_and_rejects_change_nothing(
    live: Live, client: httpx.Client, body: bytes
) -> None:
    before = live.state()
    r = client.post(
        live.url + "/hive/suspensions",
        content=body,
        headers={"authorization": f"Bearer {KEY}", "content-type": "application/json"},
    )
    assert r.status_code in (200, 400), r.text
    answer = r.json()
    event(f"result_code {answer['result_code']}")
    if r.status_code == 200:
        assert answer == {"result_code": 0}
    else:
        assert answer["result_code"] in (400, 409, 422) and isinstance(answer["result_message"], str)
        assert live.state() == before


@FUZZ
@given(body=webhook_bodies, auth=st.text(max_size=40))
def test_webhook_without_the_key_changes_nothing(live: Live, client: httpx.Client, body: bytes, auth: str) -> None:
    before = live.state()
    headers = {"authorization": auth.encode("utf-8")} if auth.strip() else {}
    try:
        r = client.post(live.url + "/hive/suspensions", content=body, headers=headers)
    except httpx.LocalProtocolError:
        return  # a header value httpx itself refuses to send
    assert r.status_code == 401
    assert r.json()["result_code"] == 401
    assert live.state() == before


@FUZZ
@given(body=webstore_bodies)
def test_webstore_answers_every_body_without_500(live: Live, client: httpx.Client, body: bytes) -> None:
    before = live.state()
    r = client.post(live.url + "/webstore-profile", content=body, headers={"content-type": "application/json"})
    assert r.status_code in (200, 400), r.text
    answer = r.json()
    event(f"result_code {answer['result_code']}")
    assert set(answer) == {"result_code", "result_message", "cs_code", "data"}
    if r.status_code == 200:
        cs_code = json.loads(body)["cs_code"]
        assert answer["cs_code"] == cs_code
        assert answer["result_code"] == (204 if len(cs_code) % 2 else 200)
        _, violations = validate_webstore_answer(r.status_code, r.headers["content-type"], r.content, cs_code)
        assert violations == []
    else:
        assert answer["result_code"] == 400 and answer["data"] == []
    assert live.state() == before


def test_the_fuzzed_database_is_a_real_file(live: Live) -> None:
    # guard against fuzzing a store that does not persist (the "no state change" check reads sqlite)
    path = live.hooks.store.path
    assert path != ":memory:"
    with sqlite3.connect(path) as conn:
        conn.execute("SELECT count(*) FROM bans_book").fetchone()
