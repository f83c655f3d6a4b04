"""Issue 14.1: a value placed in a Gamebase URL path stays exactly one segment, for every endpoint that takes one.

Against the sandbox over loopback: a value is either refused locally (no request reaches the sandbox) or sent as
one percent-encoded segment that the sandbox decodes back to the same value. And the verifier accepts only the
token endpoint's own answer about the user it asked for.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote

import httpx
import pytest

import gs_hooks
from gs_hooks import (
    Config,
    FakeClock,
    GamebaseClient,
    GamebaseConfig,
    InvalidLoginError,
    PlatformError,
    Secret,
)
from gs_hooks.http import Request, Response, Router, serve_http
from gs_hooks.sandbox import Sandbox
from gs_hooks.sandbox._gamebase import GamebaseSim

pytestmark = pytest.mark.anyio

DOTS = [".", "..", "...", "\uff0e\uff0e", "\u2025", "\u2024", "\ufe52"]  # refused: dot segments (NFKC too)
ENCODED = ["%2e%2e", "%2E%2E", ".%2e", "/", "a/../b", "?", "#", "a?b#c", "%", "한글", " a b "]  # one segment each


class Wire:
    """The raw request paths httpx put on the wire (what the server receives, before any decoding)."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, request: httpx.Request) -> None:
        self.paths.append(request.url.raw_path.decode("ascii").partition("?")[0])


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox.serve(port=0, clock=FakeClock()) as sandbox:
        yield sandbox


@pytest.fixture
async def wire() -> Wire:
    return Wire()


@pytest.fixture
async def client(sb: Sandbox, wire: Wire) -> AsyncIterator[GamebaseClient]:
    async with httpx.AsyncClient(event_hooks={"request": [wire]}) as http:
        yield GamebaseClient(http, base_url=sb.url, app_id=sb.gamebase_app_id, secret_key=sb.gamebase_secret, retries=0)


def _sent(sb: Sandbox) -> int:
    return sum(sb.gamebase.counts.values())


def _one_segment(wire: Wire, value: str) -> None:
    """The last request's path holds ``value`` as exactly one encoded segment, and no dot segment."""
    segments = wire.paths[-1].split("/")
    assert quote(value, safe="") in segments, (value, wire.paths[-1])
    assert "." not in segments and ".." not in segments


Call = Callable[[GamebaseClient, str], Awaitable[Any]]

# Every client method that places a caller's value in the path, with the value in each path position.
PATH_CALLS: dict[str, Call] = {
    "verify_token.user_id": lambda c, v: c.verify_token(v, "tok"),
    "verify_token.access_token": lambda c, v: c.verify_token("u1", v),
    "member.user_id": lambda c, v: c.member(v),
    "iap_consume.payment_seq": lambda c, v: c.iap_consume(v, 1, {"purchaseToken": "t"}),
    "iap_consume.item_seq": lambda c, v: c.iap_consume("2026", v, {"purchaseToken": "t"}),
    "iap_items.app_seq": lambda c, v: c.iap_items(v),
    "leaderboard_user_count.factor": lambda c, v: c.leaderboard_user_count(v),
    "leaderboard_user.factor": lambda c, v: c.leaderboard_user(v, "u1"),
    "leaderboard_range.factor": lambda c, v: c.leaderboard_range(v, 1, 10),
    "leaderboard_set_score.factor": lambda c, v: c.leaderboard_set_score(v, "u1", {"score": 1}),
    "leaderboard_set_score.user_id": lambda c, v: c.leaderboard_set_score("f1", v, {"score": 1}),
    "leaderboard_set_score_with_extra.factor": lambda c, v: c.leaderboard_set_score_with_extra(v, "u1", {"score": 1}),
    "leaderboard_set_score_with_extra.user_id": lambda c, v: c.leaderboard_set_score_with_extra("f1", v, {"score": 1}),
    "leaderboard_delete_user.factor": lambda c, v: c.leaderboard_delete_user(v, "u1"),
}


@pytest.mark.parametrize("where", sorted(PATH_CALLS))
@pytest.mark.parametrize("value", [*DOTS, ""])
async def test_dot_and_empty_values_are_refused_before_any_request(
    sb: Sandbox, client: GamebaseClient, wire: Wire, where: str, value: str
) -> None:
    with pytest.raises(ValueError, match="cannot be a URL path segment") as info:
        await PATH_CALLS[where](client, value)
    assert _sent(sb) == 0 and wire.paths == []
    assert value not in str(info.value) or not value  # the message never holds the value (it may be a token)


@pytest.mark.parametrize("value", ENCODED)
async def test_each_value_is_one_segment_the_sandbox_decodes_back(
    sb: Sandbox, client: GamebaseClient, wire: Wire, value: str
) -> None:
    sim = sb.gamebase
    # verify_token: the value as the user id, then as the access token
    sim.add_member(value)
    token = sim.issue_token(value)
    info = await client.verify_token(value, token)
    assert info.member.user_id == value
    _one_segment(wire, value)
    sim.add_member("u1")
    sim.tokens[value] = sim.tokens.pop(sim.issue_token("u1"))
    assert (await client.verify_token("u1", value)).member.user_id == "u1"
    _one_segment(wire, value)
    # member
    assert (await client.member(value)).member.user_id == value
    _one_segment(wire, value)
    # iap: payment seq and app seq
    purchase = sim.add_purchase("u1", 7)
    sim.purchases[value] = sim.purchases.pop(purchase.payment_seq)
    consumed = await client.iap_consume(value, 7, {"purchaseToken": purchase.purchase_token})
    assert consumed.data["result"]["consumed"] is True
    _one_segment(wire, value)
    sim.add_iap_item(value, 1, "sword")
    assert [i["itemName"] for i in (await client.iap_items(value)).data["result"]] == ["sword"]
    _one_segment(wire, value)
    # leaderboard: the factor (and the user id where it is a path value)
    await client.leaderboard_set_score(value, value, {"score": 10})
    _one_segment(wire, value)
    assert sim.leaderboard[value][value][0] == 10.0
    await client.leaderboard_set_score_with_extra(value, "u1", {"score": 5, "extra": "x"})
    _one_segment(wire, value)
    assert sim.leaderboard[value]["u1"][:2] == (5.0, "x")
    assert (await client.leaderboard_user_count(value)).data["totalCount"] == 2
    _one_segment(wire, value)
    assert (await client.leaderboard_user(value, value)).data["userInfo"]["userId"] == value
    _one_segment(wire, value)
    assert (await client.leaderboard_range(value, 1, 10)).data["totalCount"] == 2
    _one_segment(wire, value)
    await client.leaderboard_delete_user(value, "u1")
    _one_segment(wire, value)
    assert set(sim.leaderboard[value]) == {value}


async def test_app_id_and_api_version_are_path_values_too() -> None:
    async with httpx.AsyncClient() as http:
        for bad in ("", ".", "..", "\uff0e\uff0e"):
            with pytest.raises(ValueError):
                GamebaseClient(http, base_url="http://127.0.0.1:9", app_id=bad, secret_key="k")
            with pytest.raises(ValueError):
                GamebaseClient(http, base_url="http://127.0.0.1:9", app_id="a", secret_key="k", api_version=bad)
    async with (
        Sandbox.serve(port=0, clock=FakeClock(), gamebase_app_id="app/1?#") as sb,
        httpx.AsyncClient() as http,
    ):
        client = GamebaseClient(http, base_url=sb.url, app_id="app/1?#", secret_key=sb.gamebase_secret)
        sb.gamebase.add_member("u1")
        assert (await client.member("u1")).member.user_id == "u1"


def _config(url: str, app_id: str, secret: str) -> Config:
    gamebase = GamebaseConfig(
        url=url, app_id=app_id, secret_key=Secret(secret), retries=0, maintenance_poll_s=0, ban_poll_s=0
    )
    return Config(state_path=":memory:", gamebase=gamebase)


async def test_the_issues_attack_token_dotdot_never_becomes_a_member_lookup(sb: Sandbox) -> None:
    sb.gamebase.add_member("victim")
    async with httpx.AsyncClient() as http:
        client = GamebaseClient(http, base_url=sb.url, app_id=sb.gamebase_app_id, secret_key=sb.gamebase_secret)
        for token in ("..", ".", "\uff0e\uff0e", "\u2025"):
            with pytest.raises(ValueError):
                await client.verify_token("victim", token)
    hooks = gs_hooks.setup(_config(sb.url, sb.gamebase_app_id, sb.gamebase_secret), clock=sb.clock)  # type: ignore[arg-type]
    async with hooks:
        session = hooks.registry.open_nowait()
        for token in ("..", ".", "%2e%2e/..", "../..", "\uff0e\uff0e"):
            with pytest.raises(InvalidLoginError):
                await hooks.login(session, "victim", token)
        assert session.player_id is None
    assert _sent(sb) == 0  # neither the token route nor a member lookup was ever asked


def _answer(body: dict[str, Any]) -> Response:
    header = {"transactionId": "tx", "isSuccessful": True, "resultCode": 0, "resultMessage": "SUCCESS"}
    return Response.json({"header": header, **body})


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        # what a server that resolved the token path to Get Member would answer: the member shape
        ({"member": {"userId": "victim", "valid": "Y"}, "memberInfo": {"osCode": "AOS"}}, "memberInfo"),
        # a token-shaped answer about somebody else
        ({"member": {"userId": "someone-else", "valid": "Y"}}, "another member"),
    ],
)
async def test_the_verifier_accepts_only_the_token_answer_for_the_user_asked(answer: dict[str, Any], why: str) -> None:
    sim = GamebaseSim(app_id="app", secret_key="key", clock=FakeClock())
    router = Router()
    asked: list[str] = []

    async def impostor(request: Request) -> Response:
        asked.append(request.path_params["userId"])
        return _answer(answer)

    for name, method, path, handler in sim.routes():
        router.add(method, path, impostor if name == "gamebase.token" else handler)
    async with serve_http(router, port=0) as server:
        hooks = gs_hooks.setup(_config(server.url, "app", "key"), clock=sim.clock)  # type: ignore[arg-type]
        async with hooks:
            session = hooks.registry.open_nowait()
            with pytest.raises(PlatformError, match=why) as info:
                await hooks.login(session, "victim", "some-token")
            assert not isinstance(info.value, gs_hooks.LoginRefusedError)
            assert session.player_id is None and hooks.registry.player_ids() == ()
            assert hooks.verifier is not None and hooks.verifier.cached_nowait("victim", "some-token") is None
            async with httpx.AsyncClient() as http:
                client = GamebaseClient(http, base_url=server.url, app_id="app", secret_key="key")
                with pytest.raises(gs_hooks.ProtocolError, match=why):
                    await client.verify_token("victim", "some-token")
    assert asked == ["victim", "victim"]
