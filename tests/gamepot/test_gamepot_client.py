"""GamePotClient over real HTTP: against our own listener's inquiry (a GamePot-compatible server)."""

from __future__ import annotations

import socket
from datetime import timedelta

import httpx
import pytest
from gamepot_support import (
    API_KEY,
    PROJECT,
    TODAY,
    expected_column,
    history_with,
    known_samples,
    make_hooks,
    serving,
)

from gs_hooks import CcuRow, ConfigError, GamePotClient, GamePotError, MemoryCcuHistory, PlatformUnavailableError

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_ccu_returns_typed_rows_equal_to_the_history() -> None:
    rec = known_samples()
    hooks = make_hooks()
    hooks.gamepot_history = history_with(rec)
    days = (TODAY, TODAY - timedelta(days=1), TODAY - timedelta(days=2))
    async with serving(hooks) as url, httpx.AsyncClient() as http:
        client = GamePotClient(PROJECT, API_KEY, url, http=http)
        rows = await client.ccu(days[0], days[1].isoformat(), days[2])
        default_rows = await client.ccu()
        await client.aclose()  # a shared client stays open
        assert not http.is_closed
    assert len(rows) == 1440 and all(isinstance(r, CcuRow) for r in rows)
    cols = [expected_column(rec, d) for d in days]
    for m, row in enumerate(rows):
        assert row.minute == m
        assert (row.one, row.two, row.three) == (cols[0][m], cols[1][m], cols[2][m])
    assert default_rows == rows


@pytest.mark.parametrize(
    ("kwargs", "project", "key", "status"),
    [
        ({}, PROJECT, "wrong-key", -2),
        ({}, "no-such-project", API_KEY, -6),
        ({"three_date": "2020-5-9"}, PROJECT, API_KEY, -11),
        ({"two_date": "2020-04-31"}, PROJECT, API_KEY, -12),
        ({"one_date": "yesterday"}, PROJECT, API_KEY, -13),
    ],
)
async def test_documented_errors_raise_gamepot_error(
    kwargs: dict[str, str], project: str, key: str, status: int
) -> None:
    hooks = make_hooks()
    hooks.gamepot_history = MemoryCcuHistory()
    async with serving(hooks) as url, GamePotClient(project, key, url) as client:
        with pytest.raises(GamePotError) as info:
            await client.ccu(**kwargs)
    assert info.value.status == status == info.value.code
    assert key not in str(info.value)


async def test_missing_key_is_minus_1() -> None:
    hooks = make_hooks()
    async with serving(hooks) as url, GamePotClient(PROJECT, "", url) as client:
        with pytest.raises(GamePotError) as info:
            await client.ccu()
    assert info.value.status == -1 and info.value.is_key_error


async def test_unreachable_or_non_json_answers_are_platform_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with GamePotClient(PROJECT, API_KEY, f"http://127.0.0.1:{port}") as client:
        with pytest.raises(PlatformUnavailableError) as info:
            await client.ccu()
        assert API_KEY not in str(info.value)
    hooks = make_hooks()  # a listener without the route: 404 with the listener's own JSON error
    async with serving(hooks) as url, GamePotClient(PROJECT, API_KEY, url + "/elsewhere") as client:
        with pytest.raises(PlatformUnavailableError, match="HTTP 404"):
            await client.ccu()


def test_client_repr_hides_the_key_and_hooks_builds_one_from_config() -> None:
    client = GamePotClient(PROJECT, API_KEY, "http://127.0.0.1:1")
    assert API_KEY not in repr(client)
    assert client.url == f"http://127.0.0.1:1/v1/api/project/{PROJECT}/user/statistics/ccu"
    hooks = make_hooks()
    built = hooks.gamepot_client()
    assert built.project_id == PROJECT and built.base_url == "https://dashboard-api.gamepot.ntruss.com"
    from gs_hooks import Config, setup

    with pytest.raises(ConfigError, match="GS_HOOKS_GAMEPOT_PROJECT_ID"):
        setup(Config(state_path=":memory:")).gamepot_client()
    with pytest.raises(ValueError):
        GamePotClient("", API_KEY)
