"""GamebaseClient against the sandbox's Gamebase over loopback: every endpoint, every documented code."""

from __future__ import annotations

import logging
import traceback
from datetime import datetime, timedelta

import anyio
import httpx
import pytest
from gamebase_client_support import APP, KEY, Env, refused_token, serve_gamebase

from gs_hooks import KST, FakeClock, PlatformError, PlatformUnavailableError
from gs_hooks.gamebase import GamebaseClient

pytestmark = pytest.mark.anyio

TRANSIENT = [*range(-5000001, -5000016, -1), *range(-5000201, -5000209, -1)]


def _client(env: Env, **kwargs: object) -> GamebaseClient:
    kwargs.setdefault("backoff_base_s", 0.0)
    return env.client(**kwargs)


async def test_verify_token_returns_the_member_and_echoes_our_transaction_id(gb: Env) -> None:
    gb.sim.add_member("u1")
    token = gb.sim.issue_token("u1")
    client = _client(gb)
    info = await client.verify_token("u1", token, transaction_id="my-tx-1")
    assert info.member.user_id == "u1"
    assert info.member.valid == "Y"
    assert info.member.app_id == APP
    assert info.transaction_id == "my-tx-1"
    assert info.linked_idp is None
    linked = await client.verify_token("u1", token, linked_idp=True)
    assert linked.linked_idp is not None
    assert linked.linked_idp.idp_code == "guest"
    # generated when not given: a fresh uuid each call
    other = await client.verify_token("u1", token)
    assert other.transaction_id is not None
    assert len(other.transaction_id) == 36
    assert other.transaction_id != linked.transaction_id


@pytest.mark.parametrize(
    ("script", "code"),
    [
        ("forged", -4010203),
        ("revoked", -4010203),
        ("other_user", -4010203),
        ("expired", -4010208),
        ("banned", -4010204),
        ("withdrawn", -4010204),
        ("missing", -4010204),
    ],
)
async def test_token_refusals_carry_code_and_transaction(gb: Env, script: str, code: int) -> None:
    gb.sim.add_member("u1")
    gb.sim.add_member("u2")
    user, token = await refused_token(gb, script, ttl=60)
    with pytest.raises(PlatformError) as info:
        await _client(gb).verify_token(user, token, transaction_id="tx-refused")
    err = info.value
    assert type(err) is PlatformError
    assert err.code == code
    assert err.transaction_id == "tx-refused"
    assert token not in str(err)
    assert gb.sim.counts["gamebase.token"] == 1  # a refusal is not retried


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("app_id", -4010001),
        ("product", -4010002),
        ("no_key", -4010003),
        ("wrong_key", -4010004),
        ("version", -4000007),
        ("version_launching", -4060003),
    ],
)
async def test_configuration_codes_raise_at_once_and_say_what_to_fix(gb: Env, case: str, code: int) -> None:
    kwargs: dict[str, object] = {}
    if case == "app_id":
        kwargs["app_id"] = "not-our-app"
    elif case == "product":
        gb.sim.product_enabled = False
    elif case == "no_key":
        kwargs["secret_key"] = ""
    elif case == "wrong_key":
        kwargs["secret_key"] = "wrong-secret-value"
    else:
        kwargs["api_version"] = "v9.9"
    client = _client(gb, **kwargs)
    call = client.under_maintenance() if case == "version_launching" else client.member("u1")
    with pytest.raises(PlatformError) as info:
        await call
    assert info.value.code == code
    assert type(info.value) is PlatformError
    assert "check GS_HOOKS_GAMEBASE_" in info.value.message
    assert info.value.transaction_id is not None
    assert sum(gb.sim.counts.values()) == 1


@pytest.mark.parametrize("code", TRANSIENT)
async def test_every_transient_code_is_retried_then_succeeds(gb: Env, code: int) -> None:
    gb.sim.fail_next("gamebase.maintenance", code, n=2)
    result = await _client(gb, retries=2).under_maintenance(transaction_id="tx-r")
    assert result.under_maintenance is False
    assert result.transaction_id == "tx-r"
    assert gb.sim.counts["gamebase.maintenance"] == 3


async def test_transient_codes_exhaust_the_retries(gb: Env) -> None:
    gb.sim.fail_next("gamebase.maintenance", -5000201, n=5)
    with pytest.raises(PlatformUnavailableError) as info:
        await _client(gb, retries=2).under_maintenance(transaction_id="tx-gone")
    assert info.value.code == -5000201
    assert info.value.transaction_id == "tx-gone"
    assert "gave up after 3 attempts" in info.value.message
    assert gb.sim.counts["gamebase.maintenance"] == 3


async def test_http_5xx_is_retried(gb: Env) -> None:
    gb.faults.http_500 = 2
    result = await _client(gb, retries=2).under_maintenance()
    assert not result.under_maintenance
    assert gb.faults.http_500 == 0
    gb.faults.http_500 = 5
    with pytest.raises(PlatformUnavailableError, match="HTTP 500"):
        await _client(gb, retries=1).under_maintenance()
    assert gb.faults.http_500 == 3


async def test_unknown_error_codes_are_not_retried(gb: Env) -> None:
    gb.sim.fail_next("gamebase.member", -4000001, n=3, message="Invalid parameter: x")
    with pytest.raises(PlatformError) as info:
        await _client(gb, retries=2).member("u1")
    assert type(info.value) is PlatformError
    assert info.value.code == -4000001
    assert gb.sim.counts["gamebase.member"] == 1


async def test_transport_errors_are_retried_and_translated_without_the_url() -> None:
    # A port nothing listens on: connect errors on every attempt.
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    token = "tok-transport-SECRET-123"
    async with httpx.AsyncClient() as http:
        client = GamebaseClient(
            http,
            base_url=f"http://127.0.0.1:{port}",
            app_id=APP,
            secret_key=KEY,
            retries=2,
            clock=FakeClock(),
            backoff_base_s=0.0,
        )
        with pytest.raises(PlatformUnavailableError) as info:
            await client.verify_token("u1", token)
    err = info.value
    assert err.code is None
    assert "verify_token: ConnectError" in err.message
    assert "gave up after 3 attempts" in err.message
    assert client.requests_sent == 3
    text = "".join(traceback.format_exception(err))
    assert token not in text
    assert "/tokens/" not in text
    assert KEY not in text


async def test_backoff_sleeps_on_the_clock_with_jitter(gb: Env) -> None:
    gb.sim.fail_next("gamebase.maintenance", -5000001, n=2)
    client = gb.client(retries=2, backoff_base_s=1.0, backoff_max_s=10.0)
    start = gb.clock.time()
    done = anyio.Event()

    async def call() -> None:
        await client.under_maintenance()
        done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        slept: list[float] = []
        while not done.is_set():
            deadline = gb.clock.next_deadline()
            if deadline is None:
                await anyio.sleep(0.001)  # the request is on the wire
                continue
            slept.append(deadline - gb.clock.time())
            await gb.clock.advance_to(deadline)
    assert len(slept) == 2
    assert 0.5 <= slept[0] <= 1.0  # retry 1: [d/2, d] with d = 1 s
    assert 1.0 <= slept[1] <= 2.0  # retry 2: d = 2 s
    assert gb.clock.time() - start == pytest.approx(sum(slept))


async def test_members_idp_and_user_ids(gb: Env) -> None:
    gb.sim.add_member("u1", idp="google", auth_key="g-key-1")
    gb.sim.add_member("u2", valid="D")
    client = _client(gb)
    detail = await client.member("u1")
    assert detail.member.auth_list[0].auth_key == "g-key-1"
    assert detail.member_info is not None
    assert detail.member_info.os_code == "AOS"
    brief = await client.member("u1", include_member_info=False)
    assert brief.member_info is None
    with pytest.raises(PlatformError) as info:
        await client.member("nobody")
    assert info.value.code == -4040401
    members = await client.members(["u1", "u2", "nobody"])
    assert {m.user_id: m.valid for m in members.members} == {"u1": "Y", "u2": "D"}
    idp = await client.idp_info(["u1"])
    assert [(a.idp_code, a.auth_key) for a in idp.result["u1"]] == [("google", "g-key-1")]
    ids = await client.user_ids_by_auth_key(["g-key-1", "nope"])
    assert ids.result == {"g-key-1": "u1"}


async def test_simple_launching_and_under_maintenance(gb: Env) -> None:
    client = _client(gb)
    launching = await client.simple_launching("AOS", "1.0.0")
    assert launching.launching_data.status.code == 200
    assert not launching.under_maintenance
    assert launching.launching_data.app is not None
    assert launching.launching_data.app.store_code == "GG"
    now = gb.clock.now()
    gb.sim.set_maintenance(now + timedelta(minutes=10), now + timedelta(minutes=20), "soon", "http://m.example")
    under = await client.under_maintenance()
    assert not under.under_maintenance
    (window,) = under.maintenances
    assert window.message == "soon"
    await gb.clock.advance(600)
    under = await client.under_maintenance()
    assert under.under_maintenance
    launching = await client.simple_launching("AOS", "1.0.0")
    assert launching.under_maintenance
    assert launching.launching_data.maintenance is not None
    assert launching.launching_data.maintenance.url == "http://m.example"


@pytest.mark.parametrize("date_format", ["millis", "iso"])
async def test_ban_histories_page_through_in_both_date_formats(date_format: str) -> None:
    async with serve_gamebase(ban_date_format=date_format) as gb:
        client = _client(gb)
        begin = gb.clock.now()
        for i in range(7):
            gb.sim.add_ban(f"u{i}", end=begin + timedelta(days=1 + i), message=f"ban {i}")
            await gb.clock.advance(60)
        end = gb.clock.now()
        pages = [pg async for pg in client.iter_ban_histories(begin, end, page_size=3)]
        assert [len(pg.records) for pg in pages] == [3, 3, 1]
        assert [pg.paging.page for pg in pages] == [0, 1, 2]
        records = [r for pg in pages for r in pg.records]
        assert [r.user_id for r in records] == [f"u{i}" for i in range(7)]
        assert records[2].begins_at == begin + timedelta(minutes=2)
        assert records[2].ends_at == begin + timedelta(days=3)
        assert records[0].ban_type == "TEMPORARY"
        gb.sim.release_ban("u3", reason="appeal")
        releases = [r async for pg in client.iter_ban_release_histories(begin, gb.clock.now()) for r in pg.records]
        assert [(r.user_id, r.release_reason) for r in releases] == [("u3", "appeal")]
        assert releases[0].released_at == gb.clock.now()
        empty = await client.ban_histories(end + timedelta(hours=1), end + timedelta(hours=2))
        assert empty.records == ()
        assert empty.paging.total_elements == 0
        assert gb.sim.counts["gamebase.bans"] == 4


async def test_iap_wrapper_routes(gb: Env) -> None:
    client = _client(gb)
    gb.sim.add_iap_item("1000", 7, "gem pack")
    purchase = gb.sim.add_purchase("u1", 7)
    items = await client.iap_items("1000")
    assert [i["itemName"] for i in items.data["result"]] == ["gem pack"]
    pending = await client.iap_consumables({"userKey": "u1"})
    assert [x["paymentSeq"] for x in pending.data["result"]] == [purchase.payment_seq]
    consumed = await client.iap_consume(purchase.payment_seq, 7, {"purchaseToken": purchase.purchase_token})
    assert consumed.data["result"]["consumed"] is True
    with pytest.raises(PlatformError) as info:
        await client.iap_consume(purchase.payment_seq, 7, {"purchaseToken": purchase.purchase_token})
    assert info.value.code == -4090001
    pending = await client.iap_consumables({"userKey": "u1"})
    assert pending.data["result"] == []


async def test_leaderboard_wrapper_routes(gb: Env) -> None:
    client = _client(gb)
    await client.leaderboard_set_score("f1", "u1", {"score": 10})
    await client.leaderboard_set_score_with_extra("f1", "u2", {"score": 30, "extra": "x"})
    await client.leaderboard_set_scores(
        {"factorUserScoreInfoList": [{"factor": "f1", "userScoreInfoList": [{"userId": "u3", "score": 20}]}]}
    )
    await client.leaderboard_set_scores_with_extra(
        {
            "factorUserScoreInfoList": [
                {"factor": "f1", "userScoreInfoList": [{"userId": "u4", "score": 5, "extra": "e"}]}
            ]
        }
    )
    assert (await client.leaderboard_user_count("f1")).data["totalCount"] == 4
    assert (await client.leaderboard_user("f1", "u3")).data["userInfo"]["rank"] == 2
    ranged = await client.leaderboard_range("f1", 1, 2)
    assert [u["userId"] for u in ranged.data["userInfos"]] == ["u2", "u3"]
    many = await client.leaderboard_users({"userIds": ["u1", "u4"], "factors": ["f1"]})
    assert {u["userId"] for u in many.data["userInfosByFactor"][0]["userInfos"]} == {"u1", "u4"}
    await client.leaderboard_delete_user("f1", "u2")
    assert (await client.leaderboard_user_count("f1")).data["totalCount"] == 3
    with pytest.raises(PlatformError) as info:
        await client.leaderboard_user("f1", "u2")
    assert info.value.code == -4040002


async def test_secret_and_token_never_reach_logs_or_reprs(gb: Env, caplog: pytest.LogCaptureFixture) -> None:
    gb.sim.add_member("u1")
    token = gb.sim.issue_token("u1")
    client = _client(gb)
    caplog.set_level(logging.DEBUG)  # httpx logs every request URL (ours at DEBUG)
    await client.verify_token("u1", token)
    gb.sim.revoke_token(token)
    with pytest.raises(PlatformError) as info:
        await client.verify_token("u1", token)
    gb.sim.fail_next("gamebase.token", -5000001, n=5)
    with pytest.raises(PlatformUnavailableError) as gone:
        await _client(gb, retries=1).verify_token("u1", token)
    texts = [r.getMessage() for r in caplog.records]
    assert any("HTTP Request" in t and "/tokens/***" in t for t in texts)  # httpx's line, masked
    for text in [*texts, repr(client), str(info.value), str(gone.value)]:
        assert token not in text
        assert KEY not in text
    assert "Secret('**********')" in repr(client)


async def test_the_secret_key_is_sent_as_a_header(gb: Env) -> None:
    # The sim checks X-Secret-Key on every route; a member call going through proves the header.
    gb.sim.add_member("u1")
    assert (await _client(gb).member("u1")).member.user_id == "u1"
    assert (await _client(gb, api_version="v1.3").member("u1")).member.user_id == "u1"


async def test_bad_arguments_fail_clearly() -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(ValueError, match="retries"):
            GamebaseClient(http, base_url="http://x", app_id="a", secret_key="k", retries=-1)
        client = GamebaseClient(http, base_url="http://127.0.0.1:9", app_id="a", secret_key="k")
        with pytest.raises(ValueError, match="naive"):
            await client.ban_histories(datetime(2026, 1, 1), datetime(2026, 1, 2, tzinfo=KST))
