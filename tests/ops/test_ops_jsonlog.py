"""Structured logs on request: ``gs_hooks.JsonFormatter`` puts one JSON object per line, with the event's fields the
library passes as ``extra=`` (player, server id, reason, result code...), and never a secret."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ops_support import ADMIN_KEY, world

import gs_hooks
from gs_hooks import JsonFormatter, Secret

pytestmark = pytest.mark.anyio

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """gs_hooks' logs as JSON lines (what a user sets up with the standard logging API, as the README shows)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("gs_hooks")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_record_becomes_one_json_object_with_its_fields() -> None:
    record = logging.LogRecord("gs_hooks.kicks", logging.INFO, __file__, 1, "kicked %s", ("p1",), None)
    record.player = "p1"
    record.server_id = "1"
    record.reason = "ban"
    record.result_code = 0
    record.access_token = "tok-123456"  # a field named like a secret is masked
    record.api_key = Secret("key-123456")
    out = json.loads(JsonFormatter(utc=True).format(record))
    assert out["level"] == "INFO" and out["logger"] == "gs_hooks.kicks" and out["message"] == "kicked p1"
    assert out["ts"].endswith("+00:00") and "T" in out["ts"]
    assert {k: out[k] for k in ("player", "server_id", "reason", "result_code")} == {
        "player": "p1",
        "server_id": "1",
        "reason": "ban",
        "result_code": 0,
    }
    assert out["access_token"] == "***" and out["api_key"] == "***"


def test_an_exception_is_one_field_of_the_same_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("gs_hooks", logging.ERROR, __file__, 1, "failed", (), __import__("sys").exc_info())
    text = JsonFormatter().format(record)
    assert "\n" not in text and "ValueError: boom" in json.loads(text)["exception"]


async def test_the_librarys_events_carry_their_fields(json_lines: io.StringIO) -> None:
    forged = "forged-token-j-102"
    async with world() as w:
        await w.login("j-101", server_id="7")
        await w.hooks.kick("j-101", "manual", message="bye")
        with pytest.raises(gs_hooks.TokenInvalidError):
            await w.login("j-102", server_id="7", token=forged)
        async with httpx.AsyncClient(base_url=w.url) as client:
            await client.post("/admin/kick", json={"player": "nobody"}, headers=w.headers())
    got = lines(json_lines)
    kick = next(line for line in got if line["logger"] == "gs_hooks.kicks")
    assert (kick["player"], kick["server_id"], kick["reason"]) == ("j-101", "7", "manual")
    refusal = next(line for line in got if line["logger"] == "gs_hooks.login")
    assert (refusal["player"], refusal["server_id"], refusal["reason"]) == ("j-102", "7", "token_invalid")
    assert refusal["result_code"] == -4010203
    call = next(line for line in got if line["logger"] == "gs_hooks.gamebase" and line["level"] == "INFO")
    assert (call["api"], call["result_code"]) == ("verify_token", -4010203)
    admin = next(line for line in got if line["logger"] == "gs_hooks.admin")
    assert (admin["action"], admin["peer"], admin["player"]) == ("kick", "127.0.0.1", "nobody")
    text = json_lines.getvalue()
    assert forged not in text and ADMIN_KEY not in text
    assert all(isinstance(line["ts"], str) and line["message"] for line in got)


def test_the_readme_json_logging_snippet_works_as_written() -> None:
    sys.path.insert(0, str(README.parent / "tests"))
    try:
        from readme_support import python_blocks
    finally:
        sys.path.pop(0)
    (snippet,) = [block for block in python_blocks() if "JsonFormatter()" in block]
    logger = logging.getLogger("gs_hooks")
    handlers, level = list(logger.handlers), logger.level
    try:
        exec(snippet, {})  # noqa: S102 - the README's own code, which users copy
        (added,) = [h for h in logger.handlers if h not in handlers]
        record = logging.LogRecord("gs_hooks.kicks", logging.INFO, __file__, 1, "kicked", (), None)
        record.player = "7101"
        assert json.loads(added.format(record))["player"] == "7101"
        assert logger.level == logging.INFO
    finally:
        logger.handlers[:] = handlers
        logger.setLevel(level)
