"""The dashboard as an incident tool, read from the server's HTML: the zoomable time axis, the logins and kicks
panels, Gamebase and webhook health, the full ban list (searched, paged: never "and N more"), the live sessions
with kick buttons, version / host / uptime, and still one self-contained page."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import lxml.html
import pytest
from ops_support import ADMIN_KEY, DASH_KEY, NOW, World, world

from gs_hooks import KST, MemoryCcuHistory, Secret, _metrics
from gs_hooks.bans import Ban

pytestmark = pytest.mark.anyio


def history_of_the_last_day(now: float, period_s: int = 120) -> MemoryCcuHistory:
    """A sample per slot over the last 24 hours, users = minutes before now (easy to read back)."""
    history = MemoryCcuHistory()
    last = int(now // period_s) * period_s
    for slot in range(last - 86_400, last + 1, period_s):
        history.record_nowait(float(slot), "1", int((now - slot) // 60))
    return history


@asynccontextmanager
async def dashboard(*, fake_clock: bool = True, **listener: Any) -> AsyncIterator[tuple[World, httpx.AsyncClient]]:
    async with world(fake_clock=fake_clock, **listener) as w, httpx.AsyncClient(base_url=w.url) as client:
        w.hooks.gamepot_history = history_of_the_last_day(w.hooks.clock.time())
        yield w, client


async def page(client: httpx.AsyncClient, **params: str) -> Any:
    r = await client.get("/dashboard", params=params)
    assert r.status_code == 200, r.text
    return lxml.html.fromstring(r.text)


async def test_the_zoomed_axis_shows_the_last_hour_and_the_day_view_keeps_the_overlay() -> None:
    async with dashboard() as (w, client):
        now = w.hooks.clock.time()
        hour = await page(client, span="1h")
        six = await page(client, span="6h")
        day = await page(client)
    svg = hour.get_element_by_id("ccu-chart")
    assert svg.get("data-span") == "1h"
    assert (int(svg.get("data-start")), int(svg.get("data-end"))) == (int(now - 3600), int(now))
    ticks = [int(t.get("data-ts")) for t in svg.xpath('.//*[contains(@class, "tick")]')]
    labels = [t.text_content() for t in svg.xpath('.//*[contains(@class, "tick")]')]
    assert len(ticks) == 6 and all(now - 3600 < t <= now for t in ticks) and all(t % 600 == 0 for t in ticks)
    assert labels[0] == datetime.fromtimestamp(ticks[0], KST).strftime("%H:%M")  # KST clock times
    points = {int(c.get("data-ts")): int(c.get("data-value")) for c in svg.xpath(".//circle")}
    assert len(points) == 30 and all(now - 3600 <= t <= now for t in points)  # a point per 2-min slot, no more
    assert all(v == int((now - t) // 60) for t, v in points.items())
    assert "now 14:36" in svg.text_content()
    six_svg = six.get_element_by_id("ccu-chart")
    assert six_svg.get("data-span") == "6h" and len(six_svg.xpath(".//circle")) == 180
    assert len(six_svg.xpath('.//*[contains(@class, "tick")]')) == 6  # hourly ticks
    assert day.get_element_by_id("ccu-chart").get("data-span") is None
    assert {g.get("data-series") for g in day.xpath('//svg[@id="ccu-chart"]/g')} == {"one", "two", "three"}
    spans = {a.get("data-span"): a for a in hour.xpath('//nav[@class="spans"]/a')}
    assert spans["1h"].get("class") == "on" and spans["24h"].get("href") == "dashboard"


async def test_a_bad_zoom_or_page_is_a_clear_400() -> None:
    async with dashboard() as (_, client):
        r = await client.get("/dashboard", params={"span": "2d", "bp": "zero"})
    assert r.status_code == 400
    error = lxml.html.fromstring(r.text).get_element_by_id("error").text_content()
    assert "span='2d' is not a zoom level: use 1h, 6h or 24h" in error and "bp='zero' is not a page number" in error


async def test_the_full_ban_list_is_searched_and_paged() -> None:
    async with dashboard() as (w, client):
        start = NOW - timedelta(hours=1)
        w.hooks.bans.apply_many_nowait(
            [
                Ban(player_key=f"p{i:03d}", source="hive", status="permanent", starts_at=start + timedelta(seconds=i))
                for i in range(60)
            ]
        )
        first = await page(client)
        second = await page(client, bp="3")
        found = await page(client, bq="p05")
    text = lxml.html.tostring(first, encoding="unicode")
    assert "more</li>" not in text and " more" not in first.get_element_by_id("bans").text_content()
    assert first.get_element_by_id("bans-all").text_content() == "all 60 in the ban list ↓"
    rows = first.xpath('//section[@id="ban-list"]//tr[@data-player]')
    assert [r.get("data-player") for r in rows] == [f"p{i:03d}" for i in range(59, 34, -1)]  # 25, newest first
    assert "page 1 of 3 · 60 rows" in first.get_element_by_id("ban-list-pager").text_content()
    next_link = first.xpath('//div[@id="ban-list-pager"]/a[@class="next"]')[0].get("href")
    assert next_link == "dashboard?bp=2#ban-list"
    assert [r.get("data-player") for r in second.xpath('//section[@id="ban-list"]//tr[@data-player]')] == [
        f"p{i:03d}" for i in range(9, -1, -1)
    ]
    assert [r.get("data-player") for r in found.xpath('//section[@id="ban-list"]//tr[@data-player]')] == [
        f"p05{i}" for i in range(9, -1, -1)
    ]
    buttons = found.xpath('//section[@id="ban-list"]//button[@data-action="unban"]/@data-player')
    assert len(buttons) == 10


async def test_live_sessions_with_kick_buttons_and_the_operator_bar() -> None:
    async with dashboard() as (w, client):
        await w.login("3101")
        await w.login("3102", server_id="2")
        w.hooks.registry.open_nowait(server_id="2")
        doc = await page(client)
        found = await page(client, sq="3102")
    rows = doc.xpath('//section[@id="sessions"]//tr[@data-session]')
    assert [r.get("data-player") for r in rows] == ["3101", "3102", ""]
    assert doc.xpath('//section[@id="sessions"]//button[@data-action="kick"]/@data-player') == ["3101", "3102"]
    assert [r.get("data-player") for r in found.xpath('//section[@id="sessions"]//tr[@data-session]')] == ["3102"]
    key = doc.get_element_by_id("admin-key")
    assert key.get("type") == "password" and key.get("value") is None  # the admin key is never put in the page
    assert doc.xpath('//input[@name="sq"]/@form') == ["view"]


async def test_without_an_admin_key_the_page_has_no_buttons_and_says_why() -> None:
    async with dashboard(admin_key=None) as (w, client):
        await w.login("3101")
        doc = await page(client)
    assert doc.xpath("//button[@data-action]") == []
    assert "GS_HOOKS_ADMIN_KEY" in doc.get_element_by_id("admin-off").text_content()


async def test_the_dashboard_key_is_carried_and_offered_to_the_buttons_only_when_it_is_the_admin_key() -> None:
    async with dashboard(admin_key=None, dashboard_key=Secret(DASH_KEY)) as (_, client):
        doc = await page(client, key=DASH_KEY, span="1h", bq="p")
    assert doc.get_element_by_id("admin-key").get("value") == DASH_KEY
    assert doc.xpath('//form[@id="view"]//input[@name="key"]/@value') == [DASH_KEY]
    assert doc.xpath('//form[@id="view"]//input[@name="span"]/@value') == ["1h"]
    hrefs = doc.xpath('//nav[@class="spans"]/a/@href')
    assert all(f"key={DASH_KEY}" in h and "bq=p" in h for h in hrefs)
    async with dashboard(dashboard_key=Secret(DASH_KEY)) as (_, client):
        doc = await page(client, key=DASH_KEY)
    assert doc.get_element_by_id("admin-key").get("value") is None  # a separate admin key: typed by the operator
    assert ADMIN_KEY not in lxml.html.tostring(doc, encoding="unicode")


@pytest.fixture
def pinned_rates() -> Iterator[list[float]]:
    """The process-wide login and kick tallies on a clock of the test's own, far from now: only its events are in
    their last hour (other tests log players in too)."""
    at = [4_000_000_000.0]
    saved = [(tally, tally.time) for tally in (_metrics.LOGINS, _metrics.KICKS)]
    for tally, _ in saved:
        tally.time = lambda: at[0]
    try:
        yield at
    finally:
        for tally, clock in saved:
            tally.time = clock


async def test_logins_and_kicks_of_the_last_hour_by_outcome_and_reason(pinned_rates: list[float]) -> None:
    def rows(doc: Any, ident: str) -> dict[str, tuple[int, int]]:
        section = doc.get_element_by_id(ident)
        return {
            tr.get("data-label"): (
                int(tr.xpath('./td[contains(@class, "total")]')[0].text_content()),
                len(tr.xpath(".//svg/rect")),
            )
            for tr in section.xpath(".//tr[@data-label]")
        }

    async with dashboard() as (w, client):
        before = await page(client)
        await w.login("3201")
        with pytest.raises(Exception, match="invalid"):
            await w.login("3202", token="forged-token")
        pinned_rates[0] += 600  # ten minutes later
        await w.login("3203")
        await w.hooks.kick("3201", "manual")
        after = await page(client)
        pinned_rates[0] += 3_000  # 60 minutes after the first events: they are out of the window
        later = await page(client)
    assert "no logins in the last hour" in before.get_element_by_id("rates-logins").text_content()
    assert rows(after, "rates-logins") == {"ok": (2, 2), "token_invalid": (1, 1)}  # (total, minutes with a bar)
    assert rows(after, "rates-kicks") == {"manual": (1, 1)}
    assert rows(later, "rates-logins") == {"ok": (1, 1)} and rows(later, "rates-kicks") == {"manual": (1, 1)}


async def test_gamebase_and_webhook_health_cards() -> None:
    async with dashboard(fake_clock=False) as (w, client):  # (the Gamebase retry sleeps its back-off)
        await w.login("3301")
        w.sandbox.faults.add(route="gamebase.token", kind="status", status=503, count=2)
        with pytest.raises(Exception, match="HTTP 503"):
            await w.login("3302")
        failing = await page(client)
        await w.login("3303")
        async with httpx.AsyncClient(base_url=w.url) as c:
            await c.post(w.hooks.config.hive.suspension_path, json={}, headers={"authorization": "Bearer nope-nope"})
        healthy = await page(client)
    card = failing.get_element_by_id("peer-gamebase")
    assert card.xpath('.//*[contains(@class, "state")]')[0].text_content() == "failing"
    assert card.xpath('.//td[@class="last-error"]')[0].text_content().startswith("http_5xx at ")
    assert card.xpath('.//td[@class="latency"]')[0].text_content().endswith(" ms")
    assert healthy.get_element_by_id("peer-gamebase").xpath('.//*[contains(@class, "state")]')[0].text_content() == "ok"
    webhook = healthy.get_element_by_id("peer-webhook")
    assert webhook.xpath('.//td[@class="last-error"]')[0].text_content().startswith("401 at ")


async def test_version_host_uptime_and_a_self_contained_page() -> None:
    async with dashboard() as (_, client):
        r = await client.get("/dashboard")
    doc = lxml.html.fromstring(r.text)
    assert doc.get_element_by_id("version").text_content() == _metrics.VERSION
    assert doc.get_element_by_id("host").text_content()
    assert doc.get_element_by_id("uptime").text_content().endswith(" s")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    assert doc.xpath("//script[@src] | //link | //img | //iframe") == []
    assert "http://" not in r.text.replace("http://www.w3.org/2000/svg", "") and "https://" not in r.text
