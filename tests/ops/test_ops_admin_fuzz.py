"""Property-based fuzzing of the admin API over real HTTP (as the Hive webhook's fuzz does).

Quick profile in CI (200 examples per property). The deep profile is run by hand::

    GS_HOOKS_FUZZ_EXAMPLES=100000 python -m pytest -q -o timeout=0 tests/ops/test_ops_admin_fuzz.py

Properties: no crash, never a 500, every answer is JSON in the documented shape (an answer, or
``{"error": {"status", "message"[, "field"]}}``), a refused request changes nothing (no sqlite write, no ban, no
session kicked, no ``on_kick``), and nothing is done without the key.
"""

from __future__ import annotations

import json
import os
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
from gs_hooks.http import serve_http

EXAMPLES = int(os.environ.get("GS_HOOKS_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
    database=None,
)
KEY = "fuzz-admin-key-123456"
PLAYERS = [str(i) for i in range(40)]

json_scalars = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
players = st.one_of(
    st.sampled_from(PLAYERS), st.sampled_from(PLAYERS), st.integers(-5, 60), st.text(max_size=12), json_scalars
)
words = st.sampled_from(["admin", "cheating", "", "x" * 70, "tab\there"]) | json_scalars
dates = st.sampled_from(
    ["2026-03-06T00:00:00+09:00", "2026-03-01T00:00:00+09:00", "2026-03-06T00:00:00", "9999-12-31T23:59:59Z", "x"]
) | st.text(max_size=30)
kick_bodies = st.fixed_dictionaries(
    {"player": players}, optional={"reason": words, "message": words}
) | st.fixed_dictionaries({"player": players, "extra": json_values})
ban_bodies = st.fixed_dictionaries(
    {"player": players},
    optional={
        "until": dates | json_scalars,
        "duration_s": st.floats(allow_nan=True) | st.integers(-10, 10**12) | json_scalars,
        "message": words,
    },
)
unban_bodies = st.fixed_dictionaries({"player": players}, optional={"source": json_scalars})


def encoded(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    return strategy.map(lambda d: json.dumps(d).encode())


near_valid = st.fixed_dictionaries(
    {"player": st.sampled_from(PLAYERS)},
    optional={"reason": st.sampled_from(["admin", "cheating"]), "message": st.sampled_from(["", "bye"])},
)
bodies = {
    "kick": st.one_of(encoded(near_valid), encoded(kick_bodies), encoded(json_values), st.binary(max_size=120)),
    "ban": st.one_of(encoded(ban_bodies), encoded(ban_bodies), encoded(json_values), st.binary(max_size=120)),
    "unban": st.one_of(encoded(unban_bodies), encoded(unban_bodies), encoded(json_values), st.binary(max_size=120)),
}
queries = st.dictionaries(
    st.sampled_from(["q", "offset", "limit", "player", "server_id", "source", "q", "limit", "other"]),
    st.text(max_size=12) | st.integers(-3, 1000).map(str),
    max_size=4,
)


@dataclass
class Live:
    portal: anyio.from_thread.BlockingPortal
    hooks: gs_hooks.Hooks
    url: str
    kicks: list[gs_hooks.KickRequest] = field(default_factory=list)

    def state(self) -> tuple[Any, ...]:
        def snapshot() -> tuple[Any, ...]:
            changes = self.hooks.store.run_sync(lambda c: c.total_changes)
            bans = sorted((b.source, b.player_key, b.ends_at) for b in self.hooks.bans.active_bans())
            sessions = sorted(s.id for s in self.hooks.registry)
            return changes, bans, sessions, len(self.kicks)

        return self.portal.call(lambda: anyio.to_thread.run_sync(snapshot))

    def refill(self) -> None:
        """Put every fuzz player back online (an accepted kick or ban takes sessions away)."""

        async def again() -> None:
            for player in PLAYERS:
                if not self.hooks.registry.sessions_of(player) and self.hooks.bans.active_ban(player) is None:
                    self.hooks.bind_player(self.hooks.registry.open_nowait(), player)

        self.portal.call(again)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    path = tmp_path_factory.mktemp("adminfuzz") / "state.db"
    kicks: list[gs_hooks.KickRequest] = []
    cfg = gs_hooks.Config(
        state_path=str(path), listener=gs_hooks.ListenerConfig(admin_key=gs_hooks.Secret(KEY), dashboard=True)
    )

    @asynccontextmanager
    async def running() -> AsyncIterator[tuple[gs_hooks.Hooks, str]]:
        hooks = gs_hooks.setup(cfg, on_kick=kicks.append, clock=FakeClock(datetime(2026, 3, 5, tzinfo=KST)))
        async with hooks, serve_http(hooks.router, port=0) as server:
            await hooks.ban("39")  # something to unban and list
            yield hooks, server.url

    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(running()) as (hooks, url),
    ):
        live = Live(portal, hooks, url, kicks)
        live.refill()
        yield live


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as c:
        yield c


def check_shape(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code != 500 and r.status_code in (200, 400, 401, 404, 413), r.text
    body = r.json()
    assert isinstance(body, dict)
    if r.status_code != 200:
        assert set(body) == {"error"}
        error = body["error"]
        assert set(error) <= {"status", "message", "field"} and error["status"] == r.status_code
        assert isinstance(error["message"], str) and error["message"]
    return body


@FUZZ
@given(action=st.sampled_from(["kick", "ban", "unban"]), data=st.data())
def test_actions_answer_every_body_and_rejects_change_nothing(
    live: Live, client: httpx.Client, action: str, data: st.DataObject
) -> None:
    body = data.draw(bodies[action])
    live.refill()
    before = live.state()
    r = client.post(
        f"{live.url}/admin/{action}", content=body, headers={"authorization": f"Bearer {KEY}", "content-type": "x"}
    )
    check_shape(r)
    event(f"{action} {r.status_code}")
    if r.status_code != 200:
        assert live.state() == before


@FUZZ
@given(path=st.sampled_from(["sessions", "bans", "status"]), query=queries)
def test_lists_answer_every_query_and_change_nothing(
    live: Live, client: httpx.Client, path: str, query: dict[str, str]
) -> None:
    live.refill()
    before = live.state()
    r = client.get(f"{live.url}/admin/{path}", params=query, headers={"x-gs-hooks-key": KEY})
    body = check_shape(r)
    event(f"{path} {r.status_code}")
    if r.status_code == 200 and path != "status":
        assert len(body[path]) <= body["limit"] and body["total"] >= len(body[path])
    assert live.state() == before


@FUZZ
@given(
    action=st.sampled_from(["kick", "ban", "unban"]),
    data=st.data(),
    auth=st.text(max_size=40),
    header=st.sampled_from(["authorization", "x-gs-hooks-key"]),
)
def test_nothing_is_done_without_the_key(
    live: Live, client: httpx.Client, action: str, data: st.DataObject, auth: str, header: str
) -> None:
    body = data.draw(bodies[action])
    live.refill()
    before = live.state()
    value = auth if header == "x-gs-hooks-key" else f"Bearer {auth}"
    if KEY in value:
        return
    try:
        r = client.post(f"{live.url}/admin/{action}", content=body, headers={header: value.encode("utf-8")})
    except httpx.LocalProtocolError:
        return  # a header value httpx itself refuses to send
    assert check_shape(r)["error"]["status"] == 401
    event(f"{action} {header} 401")
    assert live.state() == before


def test_the_fuzzed_world_is_real(live: Live, client: httpx.Client) -> None:
    # guard against fuzzing a world where nothing could change: a good request does change the state
    live.portal.call(live.hooks.unban, "1")  # (an accepted fuzz ban may hold it)
    live.refill()
    before = live.state()
    r = client.post(f"{live.url}/admin/kick", json={"player": "1"}, headers={"authorization": f"Bearer {KEY}"})
    assert r.status_code == 200, r.text
    assert live.state() != before
    assert live.hooks.store.path != ":memory:"
