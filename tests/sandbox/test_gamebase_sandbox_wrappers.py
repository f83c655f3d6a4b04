"""Gamebase emulator: the IAP (3) and leaderboard (9) wrapper APIs with their in-memory semantics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from gamebase_sandbox_support import Env, api, code, serve_gamebase

pytestmark = pytest.mark.anyio


@pytest.fixture
async def gb() -> AsyncIterator[Env]:
    async with serve_gamebase() as env:
        yield env


def iap(rest: str) -> str:
    return api("tcgb-inapp", rest)


def lb(rest: str) -> str:
    return api("tcgb-leaderboard", rest)


async def ok(env: Env, method: str, path: str, **kw: Any) -> dict[str, Any]:
    body = await env.call(method, path, **kw)
    assert code(body) == 0, body
    return body


# -- IAP ------------------------------------------------------------------------------------------------------


async def test_iap_items_list(gb: Env) -> None:
    gb.sim.add_iap_item("1000", 2, "gems x100", market_item_id="gems.100")
    gb.sim.add_iap_item("1000", 1, "gems x10")
    gb.sim.add_iap_item("2000", 9, "other app")
    body = await ok(gb, "GET", iap("/item/list/1000"))
    assert [(i["itemSeq"], i["itemName"]) for i in body["result"]] == [(1, "gems x10"), (2, "gems x100")]
    assert body["result"][1]["marketItemId"] == "gems.100"
    assert (await ok(gb, "GET", iap("/item/list/3000")))["result"] == []


async def test_iap_unconsumed_purchases_and_consume(gb: Env) -> None:
    p1 = gb.sim.add_purchase("u1", 1)
    p2 = gb.sim.add_purchase("u1", 2, market_id="AS")
    gb.sim.add_purchase("u2", 1)
    listed = await ok(gb, "POST", iap("/consumable/list"), json_body={"userKey": "u1"})
    assert [(p["paymentSeq"], p["itemSeq"]) for p in listed["result"]] == [(p1.payment_seq, 1), (p2.payment_seq, 2)]
    only_as = await ok(gb, "POST", iap("/consumable/list"), json_body={"userKey": "u1", "marketId": "AS"})
    assert [p["paymentSeq"] for p in only_as["result"]] == [p2.payment_seq]
    consumed = await ok(
        gb,
        "POST",
        iap(f"/consume/{p1.payment_seq}/items/1"),
        json_body={"purchaseToken": p1.purchase_token},
    )
    assert consumed["result"]["paymentSeq"] == p1.payment_seq
    assert consumed["result"]["consumed"] is True
    again = await gb.call(
        "POST", iap(f"/consume/{p1.payment_seq}/items/1"), json_body={"purchaseToken": p1.purchase_token}
    )
    assert code(again) == -4090001
    listed = await ok(gb, "POST", iap("/consumable/list"), json_body={"userKey": "u1"})
    assert [p["paymentSeq"] for p in listed["result"]] == [p2.payment_seq]


async def test_iap_consume_errors(gb: Env) -> None:
    p = gb.sim.add_purchase("u1", 1)
    path = iap(f"/consume/{p.payment_seq}/items/1")
    assert code(await gb.call("POST", path, json_body={"purchaseToken": "wrong"})) == -4040002
    assert (
        code(
            await gb.call(
                "POST", iap(f"/consume/{p.payment_seq}/items/2"), json_body={"purchaseToken": p.purchase_token}
            )
        )
        == -4040002
    )
    assert (
        code(await gb.call("POST", iap("/consume/999/items/1"), json_body={"purchaseToken": p.purchase_token}))
        == -4040002
    )
    assert code(await gb.call("POST", path, json_body={})) == -4000001
    assert code(await gb.call("POST", iap("/consumable/list"), json_body={})) == -4000001
    assert gb.sim.purchases[p.payment_seq].consumed is False


# -- leaderboard ----------------------------------------------------------------------------------------------


async def test_leaderboard_register_and_query(gb: Env) -> None:
    await ok(gb, "POST", lb("/factors/1/users/alice/score"), json_body={"score": 50})
    await ok(gb, "POST", lb("/factors/1/users/bob/score-with-extra"), json_body={"score": 70, "extra": "lvl9"})
    bulk = await ok(
        gb,
        "POST",
        lb("/scores"),
        json_body={
            "factorUserScoreInfoList": [
                {
                    "factor": "1",
                    "userScoreInfoList": [{"userId": "carol", "score": 50}, {"userId": "dave", "score": 10}],
                },
                {"factor": "2", "userScoreInfoList": [{"userId": "alice", "score": 1}]},
            ]
        },
    )
    assert bulk["resultCount"] == 3
    await ok(
        gb,
        "POST",
        lb("/scores-with-extra"),
        json_body={
            "factorUserScoreInfoList": [
                {"factor": "2", "userScoreInfoList": [{"userId": "bob", "score": 5, "extra": "x"}]}
            ]
        },
    )
    assert (await ok(gb, "GET", lb("/factors/1/user-count")))["totalCount"] == 4
    assert (await ok(gb, "GET", lb("/factors/2/user-count")))["totalCount"] == 2
    assert (await ok(gb, "GET", lb("/factors/9/user-count")))["totalCount"] == 0

    single = await ok(gb, "GET", lb("/factors/1/users"), params={"userId": "bob"})
    assert single["userInfo"]["rank"] == 1
    assert single["userInfo"]["score"] == 70
    assert single["userInfo"]["extra"] == "lvl9"
    # ties share a rank (alice registered first, carol later: both rank 2), then dave is 4th
    ranged = await ok(gb, "GET", lb("/factors/1/users"), params={"start": "1", "size": "10"})
    assert ranged["totalCount"] == 4
    assert [(u["userId"], u["rank"]) for u in ranged["userInfos"]] == [
        ("bob", 1),
        ("alice", 2),
        ("carol", 2),
        ("dave", 4),
    ]
    window = await ok(gb, "GET", lb("/factors/1/users"), params={"start": "2", "size": "2"})
    assert [u["userId"] for u in window["userInfos"]] == ["alice", "carol"]

    many = await ok(gb, "POST", lb("/get-users"), json_body={"userIds": ["alice", "bob"], "factors": ["1", "2"]})
    assert [(f["factor"], [(u["userId"], u["rank"]) for u in f["userInfos"]]) for f in many["userInfosByFactor"]] == [
        ("1", [("bob", 1), ("alice", 2)]),
        ("2", [("bob", 1), ("alice", 2)]),
    ]

    await ok(gb, "DELETE", lb("/factors/1/users"), params={"userId": "bob"})
    assert code(await gb.call("GET", lb("/factors/1/users"), params={"userId": "bob"})) == -4040002
    await ok(gb, "DELETE", lb("/factors/1/users"), params={"userIds": "alice,carol"})
    assert (await ok(gb, "GET", lb("/factors/1/user-count")))["totalCount"] == 1


async def test_leaderboard_score_replaces_the_previous_one(gb: Env) -> None:
    await ok(gb, "POST", lb("/factors/1/users/alice/score"), json_body={"score": 50})
    await ok(gb, "POST", lb("/factors/1/users/alice/score"), json_body={"score": 20.5})
    single = await ok(gb, "GET", lb("/factors/1/users"), params={"userId": "alice"})
    assert single["userInfo"]["score"] == 20.5


@pytest.mark.parametrize(
    ("method", "rest", "body", "params"),
    [
        ("POST", "/factors/1/users/a/score", {}, None),
        ("POST", "/factors/1/users/a/score", {"score": "high"}, None),
        ("POST", "/factors/1/users/a/score", {"score": True}, None),
        ("POST", "/factors/1/users/a/score-with-extra", {"score": 1, "extra": 5}, None),
        ("POST", "/scores", {"factorUserScoreInfoList": {}}, None),
        ("POST", "/scores", {"factorUserScoreInfoList": [{"factor": "1", "userScoreInfoList": [{"score": 1}]}]}, None),
        ("POST", "/scores", {"factorUserScoreInfoList": [{"userScoreInfoList": []}]}, None),
        ("POST", "/get-users", {"userIds": ["a"]}, None),
        ("GET", "/factors/1/users", None, None),
        ("GET", "/factors/1/users", None, {"start": "0", "size": "5"}),
        ("DELETE", "/factors/1/users", None, None),
    ],
)
async def test_leaderboard_bad_requests(
    gb: Env, method: str, rest: str, body: Any, params: dict[str, str] | None
) -> None:
    assert code(await gb.call(method, lb(rest), json_body=body, params=params)) == -4000001
    assert gb.sim.leaderboard == {}


async def test_bulk_scores_are_all_or_nothing(gb: Env) -> None:
    bad = {
        "factorUserScoreInfoList": [
            {"factor": "1", "userScoreInfoList": [{"userId": "a", "score": 1}, {"userId": "b"}]}
        ]
    }
    assert code(await gb.call("POST", lb("/scores"), json_body=bad)) == -4000001
    assert gb.sim.leaderboard == {}
