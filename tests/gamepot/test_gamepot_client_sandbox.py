"""GamePotClient against the sandbox's GamePot endpoint (samples reported to its Hive CCU collector over HTTP)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta

import anyio
import httpx
import pytest
from gamepot_support import API_KEY as OUR_KEY
from gamepot_support import (
    NOW,
    TODAY,
    Recorded,
    expected_column,
    history_with,
    known_samples,
    make_hooks,
    serving,
)
from gamepot_support import PROJECT as OUR_PROJECT

from gs_hooks import FakeClock, GamePotClient, GamePotError, PlatformUnavailableError
from gs_hooks.sandbox import Sandbox

pytestmark = pytest.mark.anyio

PROJECT = "sandbox-gp-project"
KEY = "sandbox-gp-key-0123456789"
GAME = "sandbox_game"


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox.serve(clock=FakeClock(NOW), gamepot_project_id=PROJECT, gamepot_api_key=KEY) as sb:
        yield sb


def _minute(hhmm: str) -> int:
    return int(hhmm[:2]) * 60 + int(hhmm[3:])


async def report_all(url: str, rec: Recorded) -> int:
    """POST every sample to the sandbox's Hive CCU collector (raw base64 body), a few at a time."""
    bodies = []
    for (day, hhmm), servers in rec.items():
        date = f"{day.isoformat()} {hhmm}:00"
        for server, users in servers.items():
            reqkey = hashlib.md5(f"{GAME}|{server}|{date}".encode()).hexdigest()  # noqa: S324 - the platform's key
            xml = (
                f'<?xml version="1.0" encoding="utf-8"?><currentuser><game>{GAME}</game><server>{server}</server>'
                f"<reqkey>{reqkey}</reqkey><date>{date}</date><user>{users}</user></currentuser>"
            )
            bodies.append(base64.b64encode(xml.encode()))
    saved = 0
    limiter = anyio.CapacityLimiter(8)

    async def post(client: httpx.AsyncClient, body: bytes) -> None:
        nonlocal saved
        async with limiter:
            r = await client.post("/modules/gameuser/currentuser/", content=body)
        assert b"<result>100</result>" in base64.b64decode(r.content)
        saved += 1

    async with httpx.AsyncClient(base_url=url) as client, anyio.create_task_group() as tg:
        for body in bodies:
            tg.start_soon(post, client, body)
    return saved


async def test_client_reads_the_sandbox_inquiry_row_by_row(sandbox: Sandbox) -> None:
    rec = known_samples()
    days = (TODAY, TODAY - timedelta(days=1), TODAY - timedelta(days=2))
    # a sparser day than the listener tests (one POST per sample): every 20 minutes, plus the day's edges
    rec = {k: v for k, v in rec.items() if k[0] in days and (_minute(k[1]) % 20 == 0 or _minute(k[1]) in (2, 1438))}
    assert len(rec) > 100
    assert await report_all(sandbox.url, rec) == sum(len(v) for v in rec.values())
    async with GamePotClient(PROJECT, KEY, sandbox.url) as client:
        rows = await client.ccu(days[0], days[1], days[2].isoformat())
        defaults = await client.ccu()
    cols = [expected_column(rec, d) for d in days]
    assert len(rows) == 1440
    for m, row in enumerate(rows):
        assert row.time == f"{m // 60:02d}:{m % 60:02d}"
        assert (row.one, row.two, row.three) == (cols[0][m], cols[1][m], cols[2][m]), row
    assert defaults == rows  # no dates: today and the two days before


@pytest.mark.parametrize(
    ("setup_key", "project", "kwargs", "status"),
    [
        (None, PROJECT, {}, -1),  # a key the dashboard does not know
        ("other", PROJECT, {}, -2),  # a key of another project
        ("deleted", PROJECT, {}, -3),
        ("unused", PROJECT, {}, -4),
        ("expired", PROJECT, {}, -5),
        ("ok", "no-such-project", {}, -6),
        ("ok", PROJECT, {"three_date": "2020-5-09"}, -11),
        ("ok", PROJECT, {"two_date": "2020-04-31"}, -12),
        ("ok", PROJECT, {"one_date": "03/01/2020"}, -13),
    ],
)
async def test_each_documented_error_raises_gamepot_error(
    sandbox: Sandbox, setup_key: str | None, project: str, kwargs: dict[str, str], status: int
) -> None:
    key = KEY
    if setup_key is None:
        key = "never-registered-key"
    elif setup_key == "other":
        sandbox.gamepot.add_project("another-project")
        key = "key-of-another-project"
        sandbox.gamepot.set_key(key, "another-project")
    elif setup_key in ("deleted", "unused", "expired"):
        key = f"{setup_key}-key-123"
        sandbox.gamepot.set_key(key, PROJECT, setup_key)  # type: ignore[arg-type]
    async with GamePotClient(project, key, sandbox.url) as client:
        with pytest.raises(GamePotError) as info:
            await client.ccu(**kwargs)
    assert info.value.status == status == info.value.code
    assert info.value.platform == "gamepot" and info.value.message
    assert key not in str(info.value)


async def test_key_expiring_by_time_and_a_failing_platform(sandbox: Sandbox) -> None:
    sandbox.gamepot.set_key("soon-expired-key", PROJECT, expires_at=NOW.timestamp() + 60)
    async with GamePotClient(PROJECT, "soon-expired-key", sandbox.url) as client:
        assert len(await client.ccu()) == 1440
        await sandbox.clock.advance(61)  # type: ignore[attr-defined]
        with pytest.raises(GamePotError) as info:
            await client.ccu()
        assert info.value.status == -5
    sandbox.faults.add("gamepot.ccu", "status", status=503, count=1)
    async with GamePotClient(PROJECT, KEY, sandbox.url) as client:
        with pytest.raises(PlatformUnavailableError, match="HTTP 503"):
            await client.ccu()
        assert len(await client.ccu()) == 1440  # the fault was for one request


async def test_our_inquiry_and_the_sandboxs_answer_the_same_json(sandbox: Sandbox) -> None:
    """Two independent implementations of the document (ours on the listener, the sandbox's) agree."""
    rec = {k: v for k, v in known_samples(seed=11).items() if _minute(k[1]) % 30 == 0}
    await report_all(sandbox.url, rec)
    hooks = make_hooks()
    hooks.gamepot_history = history_with(rec)
    query = {"oneDate": TODAY.isoformat(), "twoDate": (TODAY - timedelta(days=7)).isoformat(), "threeDate": ""}
    async with serving(hooks) as url, httpx.AsyncClient() as client:
        ours = await client.get(
            f"{url}/v1/api/project/{OUR_PROJECT}/user/statistics/ccu", params=query, headers={"x-api-key": OUR_KEY}
        )
        theirs = await client.get(
            f"{sandbox.url}/v1/api/project/{PROJECT}/user/statistics/ccu", params=query, headers={"x-api-key": KEY}
        )
    assert ours.json()["status"] == 1
    assert ours.json() == theirs.json()
    assert sum(e["node"]["two"] is not None for e in ours.json()["result"]["edges"]) > 50
