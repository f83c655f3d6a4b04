"""The Hive sender: suspension pushes (batches of ≤ 100, Bearer key, retransmission) and the web-store call
with its answer validator, against small real receivers served by gs_hooks.http over loopback."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from gs_hooks.http import Request, Response, Router, serve_http
from gs_hooks.http._app import DropConnection
from gs_hooks.sandbox import Sandbox, SuspensionItem

pytestmark = pytest.mark.anyio

KEY = "game-server-key-1"
FIXTURES = Path(__file__).parent / "fixtures"
# The document's request example (curl -d), with the server URL placeholder filled in by the test.
DOC_REQUEST = (
    '{"game_index": 539, "server_url": "{URL}", "data": [{"player_id": 1, "status": "B", "start_date": '
    '"2024-07-10 20:56:59", "end_date": "2024-07-13 20:56:59"}, {"player_id": 2, "status": "B", "start_date": '
    '"2024-07-10 20:56:59", "end_date": "2024-07-20 20:56:59"}, {"player_id": 3, "status": "P", "start_date": '
    '"2024-07-10 20:56:59", "end_date": "9999-12-31 00:00:00"}]}'
)


@dataclass
class Receiver:
    """A game server's suspension endpoint that records requests and follows a script of failures."""

    requests: list[tuple[str | None, str | None, Any]] = field(default_factory=list)
    script: dict[int, str] = field(default_factory=dict)  # request number (1-based) → failure kind

    async def handle(self, request: Request) -> Response:
        self.requests.append((request.header("authorization"), request.content_type, json.loads(request.body)))
        failure = self.script.get(len(self.requests))
        if failure == "code":
            return Response.json({"result_code": 1})
        if failure == "http":
            return Response.error(500, "boom")
        if failure == "garbage":
            return Response.text("ok")
        if failure == "drop":
            raise DropConnection
        if request.header("authorization") != f"Bearer {KEY}":
            return Response.json({"result_code": 401}, status=401)
        return Response.json({"result_code": 0})


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox.serve() as sandbox:
        yield sandbox


@pytest.fixture
async def receiver(sb: Sandbox) -> AsyncIterator[tuple[Receiver, str]]:
    rec = Receiver()
    router = Router()
    router.add("POST", "/hive/suspensions", rec.handle)
    async with serve_http(router) as server:
        url = server.url + "/hive/suspensions"
        sb.hive.register(url, KEY, 539)
        yield rec, url


def items(n: int) -> list[SuspensionItem]:
    return [
        SuspensionItem(player_id=i, status="B", start_date="2024-07-10 20:56:59", end_date="2024-07-13 20:56:59")
        for i in range(1, n + 1)
    ]


async def test_document_request_example_round_trips(sb: Sandbox, receiver: tuple[Receiver, str]) -> None:
    rec, url = receiver
    doc = json.loads(DOC_REQUEST.replace("{URL}", url))
    report = await sb.hive.push_suspensions([SuspensionItem(**d) for d in doc["data"]])
    assert report.ok and report.batches == 1
    [(auth, ctype, body)] = rec.requests
    assert auth == f"Bearer {KEY}"
    assert ctype == "application/json"
    assert body == doc


async def test_2000_items_make_exactly_20_requests_of_100(sb: Sandbox, receiver: tuple[Receiver, str]) -> None:
    rec, _ = receiver
    report = await sb.hive.push_suspensions(items(2000))
    assert report.ok
    assert (report.items, report.batches, len(report.attempts)) == (2000, 20, 20)
    assert len(rec.requests) == 20
    assert all(len(body["data"]) == 100 for _, _, body in rec.requests)
    ids = [d["player_id"] for _, _, body in rec.requests for d in body["data"]]
    assert ids == list(range(1, 2001))


async def test_last_batch_holds_the_remainder(sb: Sandbox, receiver: tuple[Receiver, str]) -> None:
    rec, _ = receiver
    await sb.hive.push_suspensions(items(250))
    assert [len(body["data"]) for _, _, body in rec.requests] == [100, 100, 50]


async def test_batch_size_cannot_exceed_100(sb: Sandbox, receiver: tuple[Receiver, str]) -> None:
    with pytest.raises(ValueError, match="at most 100"):
        await sb.hive.push_suspensions(items(5), batch_size=101)


@pytest.mark.parametrize("failure", ["code", "http", "garbage", "drop"])
async def test_failed_batches_are_retransmitted(sb: Sandbox, receiver: tuple[Receiver, str], failure: str) -> None:
    rec, _ = receiver
    rec.script = {3: failure, 4: failure}  # batch 2 fails twice, then succeeds
    report = await sb.hive.push_suspensions(items(2000), retries=2)
    assert report.ok
    assert len(report.attempts) == 22 and len(rec.requests) == 22
    batch2 = [a for a in report.attempts if a.batch == 2]
    assert [a.attempt for a in batch2] == [1, 2, 3]
    assert [a.ok for a in batch2] == [False, False, True]
    assert batch2[0].error is not None
    # the retransmission carries the same batch
    assert rec.requests[2][2] == rec.requests[3][2] == rec.requests[4][2]


async def test_without_retries_failures_are_reported(sb: Sandbox, receiver: tuple[Receiver, str]) -> None:
    rec, _ = receiver
    rec.script = {2: "code", 5: "http"}
    report = await sb.hive.push_suspensions(items(500))
    assert not report.ok
    assert report.failed_batches == [1, 4]
    assert len(rec.requests) == 5
    assert report.attempts[1].result_code == 1 and report.attempts[1].error == "result_code 1"
    assert report.attempts[4].http_status == 500


async def test_retries_are_bounded(sb: Sandbox, receiver: tuple[Receiver, str]) -> None:
    rec, _ = receiver
    rec.script = dict.fromkeys(range(1, 10), "http")
    report = await sb.hive.push_suspensions(items(1), retries=3)
    assert report.failed_batches == [0] and len(rec.requests) == 4


async def test_wrong_key_is_rejected_by_the_receiver(sb: Sandbox, receiver: tuple[Receiver, str]) -> None:
    report = await sb.hive.push_suspensions(items(1), auth_key="wrong")
    assert report.failed_batches == [0]
    assert report.attempts[0].http_status == 401


async def test_transport_error_is_recorded(sb: Sandbox) -> None:
    sb.hive.register("http://127.0.0.1:9/nothing-listens-here", KEY, 1)
    report = await sb.hive.push_suspensions(items(1), retries=1)
    assert report.failed_batches == [0]
    assert [a.error for a in report.attempts] == ["transport error: ConnectError"] * 2


async def test_push_needs_a_registration(sb: Sandbox) -> None:
    with pytest.raises(RuntimeError, match="register"):
        await sb.hive.push_suspensions(items(1))


async def test_admin_register_and_push(sb: Sandbox, receiver: tuple[Receiver, str]) -> None:
    rec, url = receiver
    async with httpx.AsyncClient(base_url=sb.url) as client:
        r = await client.post("/_sandbox/hive/register", json={"url": url, "auth_key": KEY, "game_index": 7})
        assert r.json() == {"url": url, "game_index": 7, "server_url": url}
        assert KEY not in r.text
        raw = [{"player_id": 3, "status": "P", "start_date": "2024-07-10 20:56:59", "end_date": "9999-12-31 00:00:00"}]
        r = await client.post("/_sandbox/hive/suspensions", json={"items": raw * 150, "retries": 1})
        doc = r.json()
        assert (doc["ok"], doc["batches"], doc["requests"]) == (True, 2, 2)
        history = (await client.get("/_sandbox/hive/suspensions")).json()
        assert history["count"] == 2
        bad = await client.post("/_sandbox/hive/suspensions", json={"items": "x"})
        assert bad.status_code == 400
    assert rec.requests[0][2]["game_index"] == 7


# -- web-store profile -------------------------------------------------------------------------------------


def document_examples() -> list[str]:
    """The document's five successful response examples, verbatim (split on their `//` captions)."""
    text = (FIXTURES / "webstore_examples.txt").read_text()
    parts = re.split(r"^\s*//.*$", text, flags=re.MULTILINE)
    return [p.strip() for p in parts if p.strip()]


def test_fixture_holds_the_five_document_examples() -> None:
    examples = document_examples()
    assert len(examples) == 5
    assert all(json.loads(e)["cs_code"] == "c_123412341234" for e in examples)


@pytest.fixture
async def webstore() -> AsyncIterator[tuple[dict[str, Callable[[Request], Response]], str, list[Any]]]:
    answers: dict[str, Callable[[Request], Response]] = {}
    seen: list[Any] = []

    async def handle(request: Request) -> Response:
        seen.append((request.content_type, json.loads(request.body)))
        return answers[request.path_params["case"]](request)

    router = Router()
    router.add("POST", "/{case}/webstore-profile", handle)
    async with serve_http(router) as server:
        yield answers, server.url, seen


def raw_json(text: str, status: int = 200, ctype: str = "application/json") -> Callable[[Request], Response]:
    return lambda _request: Response(status, text.encode(), [("content-type", ctype)])


@pytest.mark.parametrize("index", range(5))
async def test_document_examples_have_zero_violations(
    sb: Sandbox, webstore: tuple[dict[str, Callable[[Request], Response]], str, list[Any]], index: int
) -> None:
    answers, base, seen = webstore
    example = document_examples()[index]
    answers["doc"] = raw_json(example)
    report = await sb.hive.call_webstore(f"{base}/doc/webstore-profile", "c_123412341234")
    assert report.violations == []
    assert report.ok and report.http_status == 200
    assert report.body == json.loads(example)  # unchanged in shape
    assert seen == [("application/json", {"cs_code": "c_123412341234"})]


def good(**top: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(document_examples()[0])
    doc.update(top)
    return doc


def character(**fields: Any) -> dict[str, Any]:
    doc = good()
    doc["data"][0]["channels"][0]["characters"][0].update(fields)
    return doc


def channel(**fields: Any) -> dict[str, Any]:
    doc = good()
    doc["data"][0]["channels"][0].update(fields)
    return doc


BROKEN: list[tuple[str, Any, str]] = [
    ("level-int", character(character_level=99), "character_level: must be string, got number"),
    ("level-text", character(character_level="max"), "is not a number as a string"),
    ("id-int", character(character_id=7), "character_id: must be string"),
    ("char-null", character(character_name=None), "character_name: must be string, got null"),
    (
        "char-missing",
        {
            **good(),
            "data": [
                {
                    "server_id": "1",
                    "server_name": "S",
                    "channels": [
                        {
                            "channel_id": "1",
                            "channel_name": "C",
                            "characters": [{"character_id": "A", "character_name": "A"}],
                        }
                    ],
                }
            ],
        },
        "character_level: required field missing",
    ),
    ("char-default-mismatch", character(character_id="-", character_name="Bob"), "disagree"),
    ("chan-default-mismatch", channel(channel_id="0", channel_name="Lobby"), "disagree"),
    ("chan-empty-chars", channel(characters=[]), "characters: empty array"),
    ("server-int", {**good(), "data": [{**good()["data"][0], "server_id": 1}]}, "server_id: must be string"),
    ("no-channels", {**good(), "data": [{"server_id": "1", "server_name": "S"}]}, "channels: required field missing"),
    ("code-201", good(result_code=201), "not a documented code"),
    ("code-str", good(result_code="200"), "result_code: must be integer, got string"),
    ("code-bool", good(result_code=True), "result_code: must be integer, got boolean"),
    ("no-message", {k: v for k, v in good().items() if k != "result_message"}, "result_message: required"),
    ("cs-mismatch", good(cs_code="c_other"), "does not echo"),
    ("204-with-data", good(result_code=204), "must be [] when result_code is 204"),
    ("200-empty", good(data=[]), "answer 204"),
    ("data-object", good(data={}), "data: must be array, got object"),
    ("top-array", [good()], "$: must be object, got array"),
    ("empty-id", channel(channel_id=""), "empty string"),
]


@pytest.mark.parametrize(("case", "body", "expected"), BROKEN, ids=[b[0] for b in BROKEN])
async def test_broken_answers_are_reported(
    sb: Sandbox,
    webstore: tuple[dict[str, Callable[[Request], Response]], str, list[Any]],
    case: str,
    body: Any,
    expected: str,
) -> None:
    answers, base, _ = webstore
    answers[case] = raw_json(json.dumps(body))
    report = await sb.hive.call_webstore(f"{base}/{case}/webstore-profile", "c_123412341234")
    assert not report.ok
    assert any(expected in v for v in report.violations), report.violations


async def test_204_and_500_shapes_conform(
    sb: Sandbox, webstore: tuple[dict[str, Callable[[Request], Response]], str, list[Any]]
) -> None:
    answers, base, _ = webstore
    answers["none"] = raw_json('{"result_code": 204, "result_message": "no user", "cs_code": "c_9", "data": []}')
    answers["err"] = raw_json('{"result_code": 500, "result_message": "server error", "cs_code": "c_9", "data": []}')
    for case in ("none", "err"):
        report = await sb.hive.call_webstore(f"{base}/{case}/webstore-profile", "c_9")
        assert report.violations == [], case


async def test_transport_level_problems_are_reported(
    sb: Sandbox, webstore: tuple[dict[str, Callable[[Request], Response]], str, list[Any]]
) -> None:
    answers, base, _ = webstore
    answers["html"] = raw_json("<html>", ctype="text/html")
    answers["http500"] = raw_json(json.dumps(good()), status=500)
    answers["text-json"] = raw_json(json.dumps(good()), ctype="text/plain")
    html = await sb.hive.call_webstore(f"{base}/html/webstore-profile", "c_123412341234")
    assert "body is not valid JSON" in html.violations and html.body is None
    assert any("content-type" in v for v in html.violations)
    status = await sb.hive.call_webstore(f"{base}/http500/webstore-profile", "c_123412341234")
    assert status.violations == ["HTTP status 500: the answer must be HTTP 200 with result_code in the body"]
    ctype = await sb.hive.call_webstore(f"{base}/text-json/webstore-profile", "c_123412341234")
    assert ctype.violations == ["content-type 'text/plain': must be application/json"]
    down = await sb.hive.call_webstore("http://127.0.0.1:9/webstore-profile", "c_1")
    assert down.violations == ["transport error: ConnectError"] and down.http_status is None


async def test_admin_webstore_call(
    sb: Sandbox, webstore: tuple[dict[str, Callable[[Request], Response]], str, list[Any]]
) -> None:
    answers, base, seen = webstore
    answers["doc"] = raw_json(document_examples()[4])
    async with httpx.AsyncClient(base_url=sb.url) as client:
        r = await client.post(
            "/_sandbox/hive/webstore",
            json={"url": f"{base}/doc/webstore-profile", "cs_code": "c_123412341234", "headers": {"x-k": "v"}},
        )
    doc = r.json()
    assert doc["ok"] is True and doc["violations"] == []
    assert doc["body"] == json.loads(document_examples()[4])
    assert seen == [("application/json", {"cs_code": "c_123412341234"})]
