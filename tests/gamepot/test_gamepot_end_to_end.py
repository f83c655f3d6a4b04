"""End to end on the fake clock: sessions → the CCU reporter samples on the grid → delivered to the sandbox's Hive
collector → the spool is the CCU history → our GamePot inquiry, the sandbox's GamePot inquiry (both read with
GamePotClient) and the dashboard all tell the same story."""

from __future__ import annotations

from datetime import datetime, timedelta

import anyio
import httpx
import lxml.html
import pytest
from gamepot_support import API_KEY, GAME, PROJECT, make_ccu_hooks

from gs_hooks import KST, FakeClock, GamePotClient, Hooks
from gs_hooks.http import serve_http
from gs_hooks.sandbox import Sandbox

pytestmark = pytest.mark.anyio

SB_PROJECT = "sandbox-e2e-project"
SB_KEY = "sandbox-e2e-key-0123"
FIRST = datetime(2026, 11, 22, 9, 0, tzinfo=KST)  # the first grid instant of the run
SLOTS = 25


async def step(clock: FakeClock, hooks: Hooks, seconds: float) -> None:
    """Advance virtual time, letting the reporter finish each due send (real IO) before moving on."""
    target = clock.time() + seconds
    with anyio.fail_after(30):
        while True:
            await hooks.ccu.wait_idle()
            deadline = clock.next_deadline()
            if deadline is None or deadline > target:
                break
            await clock.advance_to(max(deadline, clock.time()))
        await clock.advance_to(target)
        await hooks.ccu.wait_idle()


async def test_reported_samples_come_back_through_both_inquiries_and_the_dashboard() -> None:
    clock = FakeClock(FIRST - timedelta(seconds=103))
    async with Sandbox.serve(
        clock=clock, game_keys=[GAME], gamepot_project_id=SB_PROJECT, gamepot_api_key=SB_KEY
    ) as sb:
        hooks = make_ccu_hooks(sb.urls()["ccu_url"], dashboard=True, clock=clock, server_ids=("1", "2"))
        expected: dict[int, int] = {}  # minute of the slot → players summed over server ids
        async with hooks, serve_http(hooks.router, port=0) as listener:
            await step(clock, hooks, 103 - 0.5)  # just before the first instant
            for k in range(SLOTS):
                hooks.bind_player(hooks.registry.open_nowait(server_id="1"), f"a{k}")
                # server 2 has a player from the first slot on: with 0 there, the collector's 301 sum rule would
                # refuse server 1's first sample whenever server 2's sample arrived first (the two are sent at once)
                if k % 4 != 1:
                    hooks.bind_player(hooks.registry.open_nowait(server_id="2"), f"b{k}")
                expected[9 * 60 + 2 * k] = hooks.registry.count_players("1") + hooks.registry.count_players("2")
                await step(clock, hooks, 120)
            assert len(sb.ccu.samples) == 2 * SLOTS

            async with httpx.AsyncClient() as http:
                ours = await GamePotClient(PROJECT, API_KEY, listener.url, http=http).ccu()
                theirs = await GamePotClient(SB_PROJECT, SB_KEY, sb.url, http=http).ccu()
                page = (await http.get(listener.url + "/dashboard")).text

    # our inquiry (from the spool) and GamePot's (the sandbox, from what it received) agree row by row
    assert ours == theirs
    today = {row.minute: row.one for row in ours if row.one is not None}
    assert today == {m + d: v for m, v in expected.items() for d in (0, 1)}
    assert all(row.two is None and row.three is None for row in ours)  # nothing reported the days before

    doc = lxml.html.fromstring(page)
    points = {int(c.get("data-minute")): int(c.get("data-value")) for c in doc.xpath('//circle[@data-series="one"]')}
    assert points == expected
    assert doc.get_element_by_id("backlog").text_content() == "0"
    assert doc.get_element_by_id("delivery-state").text_content() == "healthy"
    last = FIRST + timedelta(minutes=2 * (SLOTS - 1))
    for sid in ("1", "2"):
        row = doc.xpath(f'//section[@id="servers"]//tr[@data-server="{sid}"]')[0].text_content()
        assert "100 saved" in row
        assert last.strftime("%Y-%m-%d %H:%M") in row  # delivered within its own slot
