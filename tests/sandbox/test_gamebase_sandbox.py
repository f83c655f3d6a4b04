"""The Gamebase emulator over real loopback HTTP with a plain httpx client: envelope, checks, token, members."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from gamebase_sandbox_support import (
    APP,
    KEY,
    SAMPLE_COMMON,
    SAMPLE_FAILURE,
    SAMPLE_IDP,
    SAMPLE_MEMBER,
    SAMPLE_MEMBERS,
    SAMPLE_TOKEN,
    SAMPLE_USERIDS,
    Env,
    api,
    assert_same_shape,
    code,
    serve_gamebase,
)

from gs_hooks import Secret
from gs_hooks.http import Request, Response, Router, serve_http
from gs_hooks.sandbox._gamebase import GamebaseSim
from gs_hooks.sandbox._gamebase_state import GamebaseSimError

pytestmark = pytest.mark.anyio

INTERNAL_CODES = [*range(-5000001, -5000016, -1), *range(-5000201, -5000209, -1)]


@pytest.fixture
async def gb() -> AsyncIterator[Env]:
    async with serve_gamebase() as env:
        yield env


def token_path(user: str, token: str, version: str = "v1.0") -> str:
    return api("tcgb-gateway", f"/members/{user}/tokens/{token}", version)


# One plausible, successful request per route: (method, path after /apps/{appId}, service, json body, params).
CALLS: dict[str, tuple[str, str, str, Any, dict[str, str] | None]] = {
    "gamebase.token": ("GET", "/members/u1/tokens/{token}", "tcgb-gateway", None, None),
    "gamebase.launching": (
        "GET",
        "/launching/simple",
        "tcgb-launching",
        None,
        {"osCode": "AOS", "clientVersion": "1.0.0"},
    ),
    "gamebase.maintenance": ("GET", "/maintenances/under-maintenance", "tcgb-launching", None, None),
    "gamebase.member": ("GET", "/members/u1", "tcgb-member", None, None),
    "gamebase.members": ("POST", "/members", "tcgb-member", {"userIdList": ["u1"]}, None),
    "gamebase.idp": ("POST", "/auth/authKeys", "tcgb-member", {"userIdList": ["u1"]}, None),
    "gamebase.userids": (
        "POST",
        "/members/userIds/authKeys",
        "tcgb-member",
        {"authKeyList": ["guest-u1"]},
        {"authSystem": "gbid"},
    ),
    "gamebase.bans": (
        "GET",
        "/members/bans",
        "tcgb-member",
        None,
        {"begin": "2025-01-01T00:00:00.000+09:00", "end": "2027-01-01T00:00:00.000+09:00"},
    ),
    "gamebase.ban_releases": (
        "GET",
        "/members/bans/release",
        "tcgb-member",
        None,
        {"begin": "2025-01-01T00:00:00.000+09:00", "end": "2027-01-01T00:00:00.000+09:00"},
    ),
    "gamebase.iap.consume": ("POST", "/consume/{payment}/items/7", "tcgb-inapp", "purchase", None),
    "gamebase.iap.items": ("GET", "/item/list/1000", "tcgb-inapp", None, None),
    "gamebase.iap.consumables": ("POST", "/consumable/list", "tcgb-inapp", {"userKey": "u1"}, None),
    "gamebase.leaderboard.user_count": ("GET", "/factors/1/user-count", "tcgb-leaderboard", None, None),
    "gamebase.leaderboard.users": ("GET", "/factors/1/users", "tcgb-leaderboard", None, {"start": "1", "size": "10"}),
    "gamebase.leaderboard.get_users": (
        "POST",
        "/get-users",
        "tcgb-leaderboard",
        {"userIds": ["u1"], "factors": ["1"]},
        None,
    ),
    "gamebase.leaderboard.score": ("POST", "/factors/1/users/u1/score", "tcgb-leaderboard", {"score": 5}, None),
    "gamebase.leaderboard.score_with_extra": (
        "POST",
        "/factors/1/users/u1/score-with-extra",
        "tcgb-leaderboard",
        {"score": 5, "extra": "x"},
        None,
    ),
    "gamebase.leaderboard.scores": (
        "POST",
        "/scores",
        "tcgb-leaderboard",
        {"factorUserScoreInfoList": [{"factor": "1", "userScoreInfoList": [{"userId": "u1", "score": 3}]}]},
        None,
    ),
    "gamebase.leaderboard.scores_with_extra": (
        "POST",
        "/scores-with-extra",
        "tcgb-leaderboard",
        {
            "factorUserScoreInfoList": [
                {"factor": "1", "userScoreInfoList": [{"userId": "u1", "score": 3, "extra": "e"}]}
            ]
        },
        None,
    ),
    "gamebase.leaderboard.delete_users": ("DELETE", "/factors/1/users", "tcgb-leaderboard", None, {"userId": "u1"}),
}


async def call_route(
    env: Env, name: str, *, version: str = "v1.0", app: str = APP, headers: Any = None
) -> dict[str, Any]:
    """Call route ``name`` with a request that succeeds on a prepared sim (fresh token/purchase per call)."""
    method, rest, service, body, params = CALLS[name]
    if "u1" not in env.sim.members:
        env.sim.add_member("u1")
    if "{token}" in rest:
        rest = rest.replace("{token}", env.sim.issue_token("u1"))
    if body == "purchase":
        purchase = env.sim.add_purchase("u1", 7)
        rest = rest.replace("{payment}", purchase.payment_seq)
        body = {"purchaseToken": purchase.purchase_token}
    return await env.call(method, api(service, rest, version, app), json_body=body, params=params, headers=headers)


def test_route_table_covers_every_endpoint_on_both_versions() -> None:
    sim = GamebaseSim()
    routes = sim.routes()
    names = {name for name, *_ in routes}
    assert names == set(CALLS)
    assert {"gamebase.token", "gamebase.launching", "gamebase.member", "gamebase.members", "gamebase.idp"} <= names
    for version in ("v1.0", "v1.3", "{apiVersion}"):
        assert {name for name, _, path, _ in routes if f"/{version}/" in path} == names
    assert len([n for n in names if n.startswith("gamebase.iap.")]) == 3
    # nine leaderboard APIs: the two GET .../users variants (single user, range) share one route
    assert len([n for n in names if n.startswith("gamebase.leaderboard.")]) == 8
    assert all(path.startswith("/_sandbox/gamebase/") for _, _, path, _ in sim.admin_routes())


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("version", ["v1.0", "v1.3"])
async def test_every_route_succeeds_on_both_versions(gb: Env, name: str, version: str) -> None:
    body = await call_route(gb, name, version=version)
    assert code(body) == 0, body
    assert body["header"]["resultMessage"] == "SUCCESS"
    assert gb.sim.counts[name] == 1


@pytest.mark.parametrize("name", sorted(CALLS))
async def test_every_route_runs_the_common_checks(gb: Env, name: str) -> None:
    expected_version_code = -4060003 if CALLS[name][2] == "tcgb-launching" else -4000007
    assert code(await call_route(gb, name, version="v2.0")) == expected_version_code
    assert code(await call_route(gb, name, app="other-app")) == -4010001
    assert code(await call_route(gb, name, headers={"X-Secret-Key": "wrong"})) == -4010004
    gb.sim.product_enabled = False
    assert code(await call_route(gb, name)) == -4010002
    gb.sim.product_enabled = True
    assert code(await call_route(gb, name)) == 0
    assert gb.sim.counts[name] == 5


async def test_missing_secret_key_is_unauthenticated(gb: Env) -> None:
    gb.sim.add_member("u1")
    r = await gb.http.get(api("tcgb-member", "/members/u1"), headers={"X-Secret-Key": ""})
    assert r.status_code == 200
    assert code(r.json()) == -4010003


async def test_failure_envelope_matches_the_document_example(gb: Env) -> None:
    gb.sim.product_enabled = False
    tx = "18a1ae42-6b1d-54c8-894e-54e97bca07fq"
    path = api("tcgb-launching", "/maintenances/under-maintenance")
    body = await gb.call("GET", path, headers={"X-TCGB-Transaction-Id": tx})
    assert_same_shape(body, SAMPLE_FAILURE)
    header = body["header"]
    assert header["resultCode"] == -4010002
    assert header["resultMessage"] == SAMPLE_FAILURE["header"]["resultMessage"]
    assert header["transactionId"] == tx
    assert header["traceError"]["uri"] == path
    assert header["traceError"]["throwPoint"] == "gateway"
    assert header["traceError"]["trackingTime"] == round(gb.clock.time() * 1000)


async def test_transaction_id_is_echoed_or_generated(gb: Env) -> None:
    gb.sim.add_member("u1")
    tx = "88a1ae42-6b1d-48c8-894e-54e97aca07fq"
    r = await gb.http.get(api("tcgb-member", "/members/u1"), headers={"X-TCGB-Transaction-Id": tx})
    assert r.headers["X-TCGB-Transaction-Id"] == tx
    assert r.json()["header"]["transactionId"] == tx
    assert_same_shape({"header": r.json()["header"]}, SAMPLE_COMMON)
    generated = []
    for _ in range(2):
        r = await gb.http.get(api("tcgb-member", "/members/u1"))
        generated.append(r.headers["X-TCGB-Transaction-Id"])
        assert r.json()["header"]["transactionId"] == generated[-1]
        uuid.UUID(generated[-1])
    assert generated[0] != generated[1]
    # failures echo it too
    r = await gb.http.get(api("tcgb-member", "/members/nobody"), headers={"X-TCGB-Transaction-Id": tx})
    assert r.headers["X-TCGB-Transaction-Id"] == tx
    assert r.json()["header"]["transactionId"] == tx
    assert code(r.json()) == -4040401


# -- token authentication ----------------------------------------------------------------------------------------


async def test_token_auth_round_trips_the_document_sample(gb: Env) -> None:
    gb.sim.add_member("u1", idp="google", auth_key="g-123")
    gb.sim.link_idp("u1", "facebook", auth_key="fb-9")
    token = gb.sim.issue_token("u1", idp="google")
    body = await gb.call("GET", token_path("u1", token), params={"linkedIdP": "true"})
    assert_same_shape(body, SAMPLE_TOKEN)
    assert body["linkedIdP"] == {"idPCode": "google", "idPId": "g-123"}
    member = body["member"]
    assert member["appId"] == APP
    assert member["lastLoginDate"] == round(gb.clock.time() * 1000)
    assert [a["idPCode"] for a in member["authList"]] == ["google", "facebook"]
    plain = await gb.call("GET", token_path("u1", token), params={"linkedIdP": "false"})
    assert "linkedIdP" not in plain
    assert plain["member"] == member
    assert "linkedIdP" not in await gb.call("GET", token_path("u1", token))


async def test_token_auth_codes(gb: Env) -> None:
    sim = gb.sim
    sim.add_member("u1")
    sim.add_member("u2")
    good = sim.issue_token("u1")
    assert code(await gb.call("GET", token_path("u1", good))) == 0
    assert code(await gb.call("GET", token_path("u1", "never-issued"))) == -4010203
    assert code(await gb.call("GET", token_path("u2", good))) == -4010203  # someone else's token
    revoked = sim.issue_token("u1")
    sim.revoke_token(revoked)
    assert code(await gb.call("GET", token_path("u1", revoked))) == -4010203
    expired = sim.issue_token("u1")
    sim.expire_token(expired)
    assert code(await gb.call("GET", token_path("u1", expired))) == -4010208
    assert code(await gb.call("GET", token_path("u1", good))) == 0  # the others are untouched
    assert code(await gb.call("GET", token_path("u1", good), params={"linkedIdP": "maybe"})) == -4000001


async def test_token_expires_with_the_clock(gb: Env) -> None:
    gb.sim.add_member("u1")
    token = gb.sim.issue_token("u1", ttl=60)
    assert code(await gb.call("GET", token_path("u1", token))) == 0
    await gb.clock.advance(59.9)
    assert code(await gb.call("GET", token_path("u1", token))) == 0
    await gb.clock.advance(0.1)
    assert code(await gb.call("GET", token_path("u1", token))) == -4010208


@pytest.mark.parametrize("valid", ["D", "B", "M", "T", "P"])
async def test_token_auth_refuses_members_that_are_not_valid(gb: Env, valid: str) -> None:
    gb.sim.add_member("u1")
    token = gb.sim.issue_token("u1")
    gb.sim.set_member_valid("u1", valid)
    body = await gb.call("GET", token_path("u1", token))
    assert code(body) == -4010204
    assert token not in body["header"]["resultMessage"]
    assert token not in body["header"]["traceError"]["uri"]
    gb.sim.set_member_valid("u1", "Y")
    assert code(await gb.call("GET", token_path("u1", token))) == 0


async def test_token_auth_refuses_a_missing_member(gb: Env) -> None:
    token = gb.sim.issue_token("ghost")
    assert code(await gb.call("GET", token_path("ghost", token))) == -4010204


async def test_tokens_are_unique(gb: Env) -> None:
    gb.sim.add_member("u1")
    tokens = {gb.sim.issue_token("u1") for _ in range(200)}
    assert len(tokens) == 200


# -- injected failures and counters -------------------------------------------------------------------------------


@pytest.mark.parametrize("internal", INTERNAL_CODES)
async def test_internal_errors_are_injectable(gb: Env, internal: int) -> None:
    gb.sim.add_member("u1")
    token = gb.sim.issue_token("u1")
    gb.sim.fail_next("gamebase.token", internal, n=2)
    for _ in range(2):
        body = await gb.call("GET", token_path("u1", token))
        assert code(body) == internal
        assert body["header"]["traceError"]["throwPoint"] == "gateway"
    assert code(await gb.call("GET", token_path("u1", token))) == 0
    assert gb.sim.counts["gamebase.token"] == 3


async def test_injected_failures_hit_only_their_route_and_come_after_auth(gb: Env) -> None:
    gb.sim.add_member("u1")
    gb.sim.fail_next("gamebase.member", -5000003)
    assert code(await call_route(gb, "gamebase.members")) == 0
    assert code(await call_route(gb, "gamebase.member", headers={"X-Secret-Key": "bad"})) == -4010004
    assert code(await call_route(gb, "gamebase.member")) == -5000003
    assert code(await call_route(gb, "gamebase.member")) == 0
    assert gb.sim.counts == {"gamebase.members": 1, "gamebase.member": 3}


def test_fail_next_refuses_unknown_routes() -> None:
    sim = GamebaseSim()
    with pytest.raises(GamebaseSimError, match="unknown Gamebase route"):
        sim.fail_next("gamebase.nope", -5000001)
    with pytest.raises(GamebaseSimError):
        sim.fail_next("gamebase.token", -5000001, n=0)


# -- members --------------------------------------------------------------------------------------------------


async def test_member_round_trips_the_document_sample(gb: Env) -> None:
    gb.sim.add_member("u1", info={"language": "en"})
    gb.sim.issue_token("u1")
    body = await gb.call("GET", api("tcgb-member", "/members/u1"))
    assert_same_shape(body, SAMPLE_MEMBER)
    assert body["memberInfo"]["language"] == "en"
    without = await gb.call("GET", api("tcgb-member", "/members/u1"), params={"includeMemberInfo": "false"})
    assert "memberInfo" not in without
    assert without["member"] == body["member"]


async def test_member_states_and_missing_member(gb: Env) -> None:
    gb.sim.add_member("u1")
    assert "lastLoginDate" not in (await gb.call("GET", api("tcgb-member", "/members/u1")))["member"]
    for valid in ["D", "B", "M", "T", "P", "Y"]:
        gb.sim.set_member_valid("u1", valid)
        assert (await gb.call("GET", api("tcgb-member", "/members/u1")))["member"]["valid"] == valid
    body = await gb.call("GET", api("tcgb-member", "/members/nobody"))
    assert code(body) == -4040401
    assert body["header"]["traceError"]["throwPoint"] == "member"
    bad = await gb.call("GET", api("tcgb-member", "/members/u1"), params={"includeMemberInfo": "yes"})
    assert code(bad) == -4000001


async def test_members_round_trip_and_skip_unknown_ids(gb: Env) -> None:
    gb.sim.add_member("u1")
    gb.sim.add_member("u2", valid="D")
    body = await gb.call("POST", api("tcgb-member", "/members"), json_body={"userIdList": ["u1", "zz", "u2"]})
    assert_same_shape(body, SAMPLE_MEMBERS)
    assert [(m["userId"], m["valid"]) for m in body["memberList"]] == [("u1", "Y"), ("u2", "D")]
    for bad in [{}, {"userIdList": "u1"}, {"userIdList": [1]}]:
        assert code(await gb.call("POST", api("tcgb-member", "/members"), json_body=bad)) == -4000001
    r = await gb.http.post(api("tcgb-member", "/members"), content=b"{not json")
    assert code(r.json()) == -4000001


async def test_idp_info_round_trips(gb: Env) -> None:
    gb.sim.add_member("u1", idp="gbid", auth_key="k1")
    gb.sim.link_idp("u1", "google", auth_key="g1")
    gb.sim.add_member("u2")
    body = await gb.call("POST", api("tcgb-member", "/auth/authKeys"), json_body={"userIdList": ["u1", "u2", "zz"]})
    assert_same_shape(body, SAMPLE_IDP)
    assert set(body["result"]) == {"u1", "u2"}
    assert [(e["idPCode"], e["authKey"], e["authSystem"]) for e in body["result"]["u1"]] == [
        ("gbid", "k1", "gbid"),
        ("google", "g1", "gbid"),
    ]


async def test_user_ids_by_auth_key_round_trip(gb: Env) -> None:
    gb.sim.add_member("u1", auth_key="k1")
    gb.sim.add_member("u2", auth_key="k2", auth_system="other")
    path = api("tcgb-member", "/members/userIds/authKeys")
    body = await gb.call("POST", path, params={"authSystem": "gbid"}, json_body={"authKeyList": ["k1", "k2", "k3"]})
    assert_same_shape(body, SAMPLE_USERIDS)
    assert body["result"] == {"k1": "u1"}
    other = await gb.call("POST", path, params={"authSystem": "other"}, json_body={"authKeyList": ["k2"]})
    assert other["result"] == {"k2": "u2"}
    assert code(await gb.call("POST", path, json_body={"authKeyList": ["k1"]})) == -4000001
    assert code(await gb.call("POST", path, params={"authSystem": "gbid"}, json_body={})) == -4000001


async def test_secret_key_is_compared_exactly(gb: Env) -> None:
    gb.sim.add_member("u1")
    for wrong in [KEY + "x", KEY[:-1], KEY.lower()]:
        body = await gb.call("GET", api("tcgb-member", "/members/u1"), headers={"X-Secret-Key": wrong})
        assert code(body) == -4010004
        assert wrong not in str(body)


async def test_unechoable_transaction_ids_are_replaced(gb: Env) -> None:
    gb.sim.add_member("u1")
    for bad in [b"caf\xe9", b"x" * 129]:
        r = await gb.http.get(api("tcgb-member", "/members/u1"), headers={"X-TCGB-Transaction-Id": bad})
        assert r.status_code == 200
        tx = r.json()["header"]["transactionId"]
        assert r.headers["X-TCGB-Transaction-Id"] == tx
        uuid.UUID(tx)


async def test_error_response_for_a_fault_layer(gb: Env) -> None:
    """A fault layer in front of a route answers in the platform's shape through ``error_response``."""

    async def faulty(request: Request) -> Response:
        return gb.sim.error_response(request, -5000002)

    router = Router()
    router.add("GET", "/tcgb-member/v1.0/apps/{appId}/members/{userId}", faulty)
    async with serve_http(router, port=0) as server:
        r = await gb.http.get(
            f"{server.url}{api('tcgb-member', '/members/u1')}", headers={"X-TCGB-Transaction-Id": "tx-1"}
        )
    body = r.json()
    assert r.status_code == 200
    assert r.headers["X-TCGB-Transaction-Id"] == "tx-1"
    assert_same_shape(body, SAMPLE_FAILURE)
    assert body["header"]["resultCode"] == -5000002
    assert body["header"]["transactionId"] == "tx-1"


async def test_secret_key_may_be_given_as_a_secret() -> None:
    sim = GamebaseSim(app_id=APP, secret_key=Secret(KEY))
    assert KEY not in repr(sim.secret_key)
    router = Router()
    for _, method, path, handler in sim.routes():
        router.add(method, path, handler)
    sim.add_member("u1")
    async with serve_http(router, port=0) as server, httpx.AsyncClient(base_url=server.url) as client:
        ok = await client.get(api("tcgb-member", "/members/u1"), headers={"X-Secret-Key": KEY})
        bad = await client.get(api("tcgb-member", "/members/u1"), headers={"X-Secret-Key": "no"})
    assert code(ok.json()) == 0
    assert code(bad.json()) == -4010004
