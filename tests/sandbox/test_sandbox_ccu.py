"""The Hive CCU collector, checked against hive-ccu-api.txt over HTTP with a plain httpx client.

Payloads are built by hand here (XML text → base64 → form field or raw body), independent of gs_hooks.ccu.
"""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from datetime import datetime
from urllib.parse import quote

import httpx
import pytest

from gs_hooks import KST, FakeClock
from gs_hooks.sandbox import Sandbox

pytestmark = pytest.mark.anyio

PATH = "/modules/gameuser/currentuser/"
START = datetime(2016, 6, 23, 16, 25, 30, tzinfo=KST)


def ccu_xml(
    game: str | None = "sandbox_game",
    server: str | None = "1",
    reqkey: str | None = "0cc175b9c0f1b6a831c399e269772661",
    date: str | None = "2016-06-23 16:24:00",
    user: str | None = "10",
    root: str = "currentuser",
) -> bytes:
    parts = [
        f"<{name}>{value}</{name}>"
        for name, value in (("game", game), ("server", server), ("reqkey", reqkey), ("date", date), ("user", user))
        if value is not None
    ]
    return f'<?xml version="1.0" encoding="utf-8"?><{root}>{"".join(parts)}</{root}>'.encode()


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def result_of(response: httpx.Response) -> int:
    assert response.status_code == 200
    xml = base64.b64decode(response.content, validate=True).decode("utf-8")
    m = re.search(r"<result>(\d+)</result>", xml)
    assert m is not None, xml
    return int(m.group(1))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
async def sb(clock: FakeClock) -> AsyncIterator[Sandbox]:
    async with Sandbox.serve(clock=clock, game_keys=("sandbox_game", "tinyfarm_KR")) as sandbox:
        yield sandbox


@pytest.fixture
async def client(sb: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sb.url) as c:
        yield c


async def send_form(client: httpx.AsyncClient, raw: bytes) -> int:
    # The document: "Origin XML base64 encoding → URL encoding", as PHP cURL sends the value field.
    body = "value=" + quote(b64(raw), safe="")
    headers = {"content-type": "application/x-www-form-urlencoded"}
    return result_of(await client.post(PATH, content=body, headers=headers))


async def send_body(client: httpx.AsyncClient, raw: bytes) -> int:
    return result_of(await client.post(PATH, content=b64(raw).encode()))


async def test_document_example_date_is_saved_with_the_form_method(sb: Sandbox, client: httpx.AsyncClient) -> None:
    assert await send_form(client, ccu_xml()) == 100
    [sample] = sb.ccu.samples
    assert (sample.game, sample.server, sample.date, sample.user, sample.method) == (
        "sandbox_game",
        "1",
        "2016-06-23 16:24:00",
        10,
        "form",
    )
    assert sample.received_at == START.timestamp()
    assert sample.slot == datetime(2016, 6, 23, 16, 24, tzinfo=KST).timestamp()


async def test_raw_body_method_is_saved(sb: Sandbox, client: httpx.AsyncClient) -> None:
    assert await send_body(client, ccu_xml(server="tinyfarm01", user="0")) == 100
    assert [s.method for s in sb.ccu.samples] == ["body"]


async def test_raw_body_labelled_as_form_is_read_as_body(sb: Sandbox, client: httpx.AsyncClient) -> None:
    # curl -d '<base64>' labels a raw body as a form; there is no value field, so it is the body method.
    headers = {"content-type": "application/x-www-form-urlencoded"}
    r = await client.post(PATH, content=b64(ccu_xml()).encode(), headers=headers)
    assert result_of(r) == 100
    assert sb.ccu.samples[0].method == "body"


async def test_answer_is_base64_xml_with_a_result_element(client: httpx.AsyncClient) -> None:
    r = await client.post(PATH, content=b64(ccu_xml()).encode())
    xml = base64.b64decode(r.content).decode()
    assert xml.startswith('<?xml version="1.0" encoding="utf-8"?>')
    assert "<response><result>100</result></response>" in xml


async def test_any_root_element_name_is_accepted(client: httpx.AsyncClient) -> None:
    assert await send_body(client, ccu_xml(root="ccu")) == 100


@pytest.mark.parametrize("body", [b"", b"value=", b"   "])
async def test_200_no_input(client: httpx.AsyncClient, body: bytes) -> None:
    headers = {"content-type": "application/x-www-form-urlencoded"} if body.startswith(b"value") else {}
    assert result_of(await client.post(PATH, content=body, headers=headers)) == 200


@pytest.mark.parametrize("missing", ["game", "server", "reqkey", "date", "user"])
async def test_201_missing_field(client: httpx.AsyncClient, missing: str) -> None:
    assert await send_form(client, ccu_xml(**{missing: None})) == 201  # type: ignore[arg-type]


async def test_201_empty_field(client: httpx.AsyncClient) -> None:
    assert await send_form(client, ccu_xml(user="")) == 201


@pytest.mark.parametrize(
    "field",
    [
        {"date": "2016-06-23 16:23:00"},  # odd minute: not on the two-minute grid
        {"date": "2016-06-23 16:24:30"},  # seconds not 00
        {"date": "2016-06-23T16:24:00"},
        {"date": "2016-02-30 16:24:00"},
        {"date": "16:24"},
        {"server": "tiny_farm"},
        {"server": "a" * 21},
        {"server": "서버1"},
        {"user": "-1"},
        {"user": "1.5"},
        {"user": "ten"},
        {"user": "99999999999"},
        {"reqkey": "has space"},
    ],
)
async def test_202_wrong_format(sb: Sandbox, client: httpx.AsyncClient, field: dict[str, str]) -> None:
    assert await send_form(client, ccu_xml(**field)) == 202  # type: ignore[arg-type]
    assert sb.ccu.samples == []


async def test_server_id_rule_accepts_20_letters_and_digits(client: httpx.AsyncClient) -> None:
    assert await send_form(client, ccu_xml(server="Ab3" + "x" * 17)) == 100


async def test_203_not_base64(client: httpx.AsyncClient) -> None:
    assert result_of(await client.post(PATH, content=ccu_xml())) == 203
    assert result_of(await client.post(PATH, content=b"!!!not base64!!!")) == 203


async def test_203_unencoded_plus_in_form_field(client: httpx.AsyncClient) -> None:
    raw = b"<?xml?>" + bytes([0xFB, 0xEF]) * 4  # base64 text with '+' in it
    text = b64(raw)
    assert "+" in text
    headers = {"content-type": "application/x-www-form-urlencoded"}
    assert result_of(await client.post(PATH, content="value=" + text, headers=headers)) == 203


async def test_204_not_xml(client: httpx.AsyncClient) -> None:
    assert await send_body(client, b"game=sandbox_game&user=10") == 204
    assert await send_body(client, b"<currentuser><game>x</currentuser>") == 204


async def test_302_unknown_game_key(sb: Sandbox, client: httpx.AsyncClient) -> None:
    assert await send_form(client, ccu_xml(game="derbydays_SEA")) == 302
    sb.ccu.set_game_keys(["derbydays_SEA"])
    assert await send_form(client, ccu_xml(game="derbydays_SEA")) == 100


async def test_101_duplicate_reqkey_is_never_saved_twice(sb: Sandbox, client: httpx.AsyncClient) -> None:
    assert await send_form(client, ccu_xml()) == 100
    assert await send_body(client, ccu_xml()) == 101
    assert await send_form(client, ccu_xml(user="11")) == 101  # same reqkey, other content: still a duplicate
    assert len(sb.ccu.samples) == 1
    assert sb.ccu.duplicate_requests == 2
    assert sb.ccu.duplicates_saved == 0
    assert sb.ccu.samples[0].user == 10


async def test_300_db_error_is_injectable(sb: Sandbox, client: httpx.AsyncClient) -> None:
    sb.faults.add("ccu", "result", code=300, count=1)
    assert await send_form(client, ccu_xml()) == 300
    assert sb.ccu.samples == []
    assert sb.ccu.attempts[-1].injected and sb.ccu.attempts[-1].reqkey == "0cc175b9c0f1b6a831c399e269772661"
    assert await send_form(client, ccu_xml()) == 100  # the resend with the same reqkey is saved


async def test_301_sum_rule_from_the_document_example(sb: Sandbox, client: httpx.AsyncClient) -> None:
    # server02 reported 0; server01 = 100 would make server01 + server02 == server01.
    assert await send_form(client, ccu_xml(server="server02", reqkey="k2", user="0")) == 100
    assert await send_form(client, ccu_xml(server="server01", reqkey="k1", user="100")) == 301
    assert [s.server for s in sb.ccu.samples] == ["server02"]
    # Another date, or a sum that differs from the sample, is saved.
    assert await send_form(client, ccu_xml(server="server01", reqkey="k3", date="2016-06-23 16:22:00")) == 100
    assert await send_form(client, ccu_xml(server="server03", reqkey="k4", user="5")) == 301
    assert await send_form(client, ccu_xml(server="server03", reqkey="k5", user="0")) == 100


async def test_sum_rule_can_be_switched_off(sb: Sandbox, client: httpx.AsyncClient) -> None:
    r = await client.put("/_sandbox/ccu/sum-check", json={"enabled": False})
    assert r.json() == {"sum_check": False}
    assert await send_form(client, ccu_xml(server="a", reqkey="k1", user="0")) == 100
    assert await send_form(client, ccu_xml(server="b", reqkey="k2", user="7")) == 100


async def test_sixty_second_period_accepts_every_minute(clock: FakeClock) -> None:
    async with Sandbox.serve(clock=clock, ccu_period_s=60) as sb, httpx.AsyncClient(base_url=sb.url) as client:
        assert await send_form(client, ccu_xml(date="2016-06-23 16:23:00")) == 100
        assert await send_form(client, ccu_xml(reqkey="k2", date="2016-06-23 16:23:30")) == 202


def test_period_must_be_whole_minutes_dividing_an_hour() -> None:
    with pytest.raises(ValueError, match="whole number of minutes"):
        Sandbox(ccu_period_s=90)
    with pytest.raises(ValueError, match="whole number of minutes"):
        Sandbox(ccu_period_s=420)


async def test_admin_lists_samples_attempts_and_stats(sb: Sandbox, client: httpx.AsyncClient, clock: FakeClock) -> None:
    assert await send_form(client, ccu_xml()) == 100
    await clock.advance(5)
    assert await send_form(client, ccu_xml()) == 101
    assert await send_form(client, ccu_xml(game="tinyfarm_KR", reqkey="t1", server="0")) == 100
    samples = (await client.get("/_sandbox/ccu/samples", params={"game": "sandbox_game"})).json()
    assert samples["count"] == 1
    assert samples["samples"][0]["lateness_s"] == 90.0
    assert samples["samples"][0]["received_kst"] == "2016-06-23 16:25:30"
    attempts = (await client.get("/_sandbox/ccu/attempts")).json()
    assert [a["result"] for a in attempts["attempts"]] == [100, 101, 100]
    assert attempts["attempts"][1]["received_at"] == START.timestamp() + 5
    stats = (await client.get("/_sandbox/ccu/stats")).json()
    assert stats["duplicate_requests"] == 1 and stats["duplicates_saved"] == 0
    assert stats["result_counts"] == {"100": 2, "101": 1}


async def test_admin_sets_game_keys_and_resets(sb: Sandbox, client: httpx.AsyncClient) -> None:
    r = await client.put("/_sandbox/ccu/game-keys", json={"game_keys": ["derbydays_SEA"]})
    assert r.json() == {"game_keys": ["derbydays_SEA"]}
    assert await send_form(client, ccu_xml()) == 302
    assert await send_form(client, ccu_xml(game="derbydays_SEA")) == 100
    assert (await client.post("/_sandbox/reset")).json() == {"reset": True}
    assert sb.ccu.samples == [] and sb.ccu.attempts == []
    assert await send_form(client, ccu_xml(game="derbydays_SEA")) == 100  # reqkey index forgotten too
    bad = await client.put("/_sandbox/ccu/game-keys", json={"game_keys": "x"})
    assert bad.status_code == 400


async def test_only_post_is_allowed(client: httpx.AsyncClient) -> None:
    r = await client.get(PATH)
    assert r.status_code == 405
