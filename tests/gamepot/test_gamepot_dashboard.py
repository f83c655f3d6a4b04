"""The /dashboard page: access rules, the chart's data points against the history, and its form and links at the
root and under a mount prefix — in real headless Chromium when the ``chromium`` binary is there (driven over the
DevTools protocol to press "Show" and follow "reset"), and by parsing the server's HTML otherwise."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urljoin

import anyio
import httpx
import lxml.html
import pytest
from gamepot_support import NOW, TODAY, Recorded, history_with, known_samples, make_hooks, serving
from starlette.applications import Starlette
from starlette.routing import Mount

from asgi_support import run_uvicorn
from browser_support import CHROMIUM, FLAGS, NO_CHROMIUM, chromium
from gs_hooks import Ban, MemoryCcuHistory, Secret
from gs_hooks.gamepot import DeliveryHealth, ServerHealth
from gs_hooks.http import serve_http

pytestmark = pytest.mark.anyio

DEFAULT_DAYS = (TODAY, TODAY - timedelta(days=1), TODAY - timedelta(days=7))


class HealthyHistory(MemoryCcuHistory):
    """An in-memory history that also reports delivery health (plain data, like the reporter's spool would)."""

    def __init__(self, health: DeliveryHealth) -> None:
        super().__init__()
        self.health = health

    async def delivery_health(self, server_ids: Iterable[str]) -> DeliveryHealth:
        return self.health


def expected_points(rec: Recorded, day: date) -> dict[int, int]:
    """minute of each slot that has a sample → users summed over server ids (the chart's data points)."""
    out: dict[int, int] = {}
    for (d, hhmm), servers in rec.items():
        if d == day:
            hh, mm = hhmm.split(":")
            out[int(hh) * 60 + int(mm)] = sum(servers.values())
    return out


def chart_points(page: str) -> dict[tuple[str, str], dict[int, int]]:
    """(series, date) → {minute: value}, read from the SVG circles of a page's HTML."""
    doc = lxml.html.fromstring(page)
    svg = doc.xpath('//svg[@id="ccu-chart"]')
    assert len(svg) == 1
    out: dict[tuple[str, str], dict[int, int]] = {}
    for c in svg[0].xpath('.//circle[contains(concat(" ", @class, " "), " pt ")]'):
        key = (c.get("data-series"), c.get("data-date"))
        minute = int(c.get("data-minute"))
        assert c.get("data-time") == f"{minute // 60:02d}:{minute % 60:02d}"
        assert minute not in out.setdefault(key, {}), "one point per slot"
        out[key][minute] = int(c.get("data-value"))
    return out


def check_chart(page: str, rec: Recorded, days: Sequence[date]) -> None:
    points = chart_points(page)
    assert set(points) <= {(n, d.isoformat()) for n, d in zip(("one", "two", "three"), days, strict=True)}
    for name, day in zip(("one", "two", "three"), days, strict=True):
        want = expected_points(rec, day)
        assert points.get((name, day.isoformat()), {}) == want, f"{name} {day}"


async def test_dashboard_is_off_by_default() -> None:
    hooks = make_hooks()
    assert hooks.dashboard is None
    async with serving(hooks) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/dashboard")).status_code == 404


async def test_chart_points_match_the_history_in_the_html() -> None:
    rec = known_samples()
    hooks = make_hooks(dashboard=True)
    hooks.gamepot_history = history_with(rec)
    async with serving(hooks) as url, httpx.AsyncClient(base_url=url) as client:
        r = await client.get("/dashboard")
        chosen = await client.get("/dashboard", params={"one": "2026-11-20", "three": "2026-11-21"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "script-src 'unsafe-inline'" in r.headers["content-security-policy"]
    check_chart(r.text, rec, DEFAULT_DAYS)
    assert len(expected_points(rec, TODAY)) > 300  # the comparison is not vacuous
    check_chart(chosen.text, rec, (date(2026, 11, 20), TODAY - timedelta(days=1), date(2026, 11, 21)))
    doc = lxml.html.fromstring(chosen.text)
    assert doc.xpath('//input[@name="one"]/@value') == ["2026-11-20"]
    assert "http://" not in r.text.replace("http://www.w3.org/2000/svg", "")  # no CDN, no external asset


async def test_bad_dashboard_date_is_a_clear_400_page() -> None:
    hooks = make_hooks(dashboard=True)
    hooks.gamepot_history = MemoryCcuHistory()
    async with serving(hooks) as url, httpx.AsyncClient(base_url=url) as client:
        r = await client.get("/dashboard", params={"two": "2026-13-01"})
    assert r.status_code == 400
    doc = lxml.html.fromstring(r.text)
    assert "two='2026-13-01' is not a date: use YYYY-MM-DD" in doc.get_element_by_id("error").text_content()
    assert doc.get_element_by_id("ccu-chart") is not None


async def test_dashboard_key_and_allowlist() -> None:
    key = "dash-secret-123"
    hooks = make_hooks(dashboard=True, listener={"dashboard_key": Secret(key)})
    async with serving(hooks) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/dashboard")).status_code == 401
        assert (await client.get("/dashboard", params={"key": "wrong"})).status_code == 401
        by_header = await client.get("/dashboard", headers={"x-gs-hooks-key": key})
        by_query = await client.get("/dashboard", params={"key": key, "one": "2026-11-01"})
    assert by_header.status_code == 200 and key not in by_header.text
    assert by_query.status_code == 200
    # the date form carries the key given in the query along, so "Show" keeps working
    assert lxml.html.fromstring(by_query.text).xpath('//form//input[@name="key"]/@value') == [key]
    assert key not in repr(hooks.dashboard)

    fenced = make_hooks(dashboard=True, listener={"dashboard_allow": ("192.0.2.0/24",)})
    async with serving(fenced) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/dashboard")).status_code == 403


async def test_live_counts_and_delivery_health_are_shown() -> None:
    hooks = make_hooks(dashboard=True)
    health = DeliveryHealth(
        backlog_depth=3,
        servers=(
            ServerHealth(server_id="1", last_result=100, last_success_at=NOW.timestamp() - 120),
            ServerHealth(server_id="2", last_result=201, last_success_at=None),
        ),
    )
    hooks.gamepot_history = HealthyHistory(health)
    for i in range(4):
        hooks.bind_player(hooks.registry.open_nowait(server_id="1"), f"p{i}")
    hooks.registry.open_nowait(server_id="2")
    async with serving(hooks) as url, httpx.AsyncClient(base_url=url) as client:
        page = (await client.get("/dashboard")).text
    doc = lxml.html.fromstring(page)
    assert doc.get_element_by_id("live-total").text_content() == "4"
    assert doc.get_element_by_id("backlog").text_content() == "3"
    assert doc.get_element_by_id("delivery-state").text_content() == "1 failing"
    row1 = doc.xpath('//section[@id="servers"]//tr[@data-server="1"]')[0].text_content()
    row2 = doc.xpath('//section[@id="servers"]//tr[@data-server="2"]')[0].text_content()
    assert "100 saved" in row1 and "2026-11-22 14:35:10" in row1 and "2 min ago" in row1
    assert "201 bad game key" in row2 and "never" in row2
    assert "4" in row1 and "1" in row2
    # the ban book is there but empty; no maintenance watcher is configured (no Gamebase URL): said plainly
    assert doc.get_element_by_id("bans-total").text_content() == "0"
    assert "no player is banned" in doc.get_element_by_id("bans").text_content()
    assert "n/a" in doc.get_element_by_id("maintenance").text_content()


async def test_active_bans_from_the_ban_book_are_listed() -> None:
    hooks = make_hooks(dashboard=True)
    hooks.gamepot_history = MemoryCcuHistory()
    start = NOW - timedelta(hours=1)
    async with serving(hooks) as url, httpx.AsyncClient(base_url=url) as client:
        hooks.bans.apply_many_nowait(
            [
                Ban(player_key="cheater-1", source="hive", status="permanent", starts_at=start),
                Ban(
                    player_key="spammer-2",
                    source="api",
                    status="temporary",
                    starts_at=start,
                    ends_at=NOW + timedelta(days=3),
                ),
                Ban(
                    player_key="later-3",
                    source="api",
                    status="temporary",
                    starts_at=NOW + timedelta(days=1),
                    ends_at=NOW + timedelta(days=2),
                ),  # not in force yet
            ]
        )
        page = (await client.get("/dashboard")).text
    bans = lxml.html.fromstring(page).get_element_by_id("bans")
    assert bans.get_element_by_id("bans-total").text_content() == "2"
    items = [li.text_content() for li in bans.xpath(".//li")]
    assert items == ["spammer-2 api · until 11-25 14:37", "cheater-1 hive · permanent"]


async def _chromium(*args: str) -> str:
    assert CHROMIUM is not None
    result = await anyio.run_process(
        [
            CHROMIUM,
            *FLAGS,
            "--disable-quic",
            *args,
        ],
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    return result.stdout.decode("utf-8")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
async def test_dashboard_in_headless_chromium(tmp_path: Path) -> None:
    rec = known_samples()
    hooks = make_hooks(dashboard=True)
    hooks.gamepot_history = history_with(rec)
    for i in range(7):
        hooks.bind_player(hooks.registry.open_nowait(server_id="1"), f"p{i}")
    shot = tmp_path / "dashboard.png"
    async with serving(hooks) as url:
        dom = await _chromium(f"--user-data-dir={tmp_path / 'profile-dom'}", "--dump-dom", url + "/dashboard")
        await _chromium(
            f"--user-data-dir={tmp_path / 'profile-shot'}",
            f"--screenshot={shot}",
            "--window-size=1280,900",
            url + "/dashboard",
        )
    # the DOM as the browser built it: every data point of the three default days matches the history
    check_chart(dom, rec, DEFAULT_DAYS)
    doc = lxml.html.fromstring(dom)
    legend = [el.text_content() for el in doc.xpath('//form[@class="dates"]//div[@class="item"]//b')]
    assert legend == ["today · Sun", "yesterday · Sat", "a week ago · Sun"]
    assert doc.get_element_by_id("live-total").text_content() == "7"
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    # width, height from the IHDR chunk
    assert int.from_bytes(data[16:20], "big") == 1280 and int.from_bytes(data[20:24], "big") == 900


async def test_maintenance_state_from_the_gamebase_watcher() -> None:
    from gs_hooks import Config, FakeClock, GamebaseConfig, GamePotConfig, ListenerConfig, setup
    from gs_hooks.sandbox import Sandbox

    clock = FakeClock(NOW)
    async with Sandbox.serve(clock=clock, gamebase_app_id="gp-app", gamebase_secret="gp-secret-key") as sb:
        sb.gamebase.set_maintenance(NOW + timedelta(minutes=10), NOW + timedelta(minutes=40), "server upgrade")
        cfg = Config(
            state_path=":memory:",
            gamepot=GamePotConfig(),
            listener=ListenerConfig(dashboard=True),
            gamebase=GamebaseConfig(url=sb.url, app_id="gp-app", secret_key=Secret("gp-secret-key"), ban_poll_s=0),
        )
        hooks = setup(cfg, clock=clock)
        async with hooks, serve_http(hooks.router, port=0) as server, httpx.AsyncClient(base_url=server.url) as c:
            announced = lxml.html.fromstring((await c.get("/dashboard")).text)
            await clock.advance(11 * 60)
            await hooks.maintenance.wait_idle()
            active = lxml.html.fromstring((await c.get("/dashboard")).text)
    card = announced.get_element_by_id("maintenance")
    assert card.get_element_by_id("maintenance-state").text_content() == "announced"
    assert "from 2026-11-22 14:47 · until 2026-11-22 15:17 · server upgrade" in card.text_content()
    assert active.get_element_by_id("maintenance-state").text_content() == "active"
    assert "badge bad" in lxml.html.tostring(active.get_element_by_id("maintenance-state")).decode()


# -- under a mount prefix (issue 13.10): every link and form the page produces stays under the prefix ---------------

DASH_KEY = "dash-prefix-key-1"


@asynccontextmanager
async def dashboard_at(where: str) -> AsyncIterator[str]:
    """A dashboard with a key and a known history, served at ``<base>/dashboard`` (the base is returned): by the
    embedded listener at the root, or mounted under ``/gs`` in a Starlette app run by uvicorn."""
    hooks = make_hooks(dashboard=True, listener={"dashboard_key": Secret(DASH_KEY)})
    hooks.gamepot_history = history_with(known_samples())
    if where == "root":
        async with serving(hooks) as url:
            yield url
        return
    app = Starlette(routes=[Mount("/gs", app=hooks.asgi_app())])
    async with hooks, run_uvicorn(app, lifespan="off") as url:
        yield url + "/gs"


async def test_links_and_form_of_the_page_resolve_under_a_mount_prefix() -> None:
    async with dashboard_at("mounted") as base, httpx.AsyncClient() as client:
        page = await client.get(f"{base}/dashboard", params={"key": DASH_KEY})
        assert page.status_code == 200
        doc = lxml.html.fromstring(page.text)
        form = doc.xpath('//form[@class="dates"]')[0]
        action = urljoin(str(page.url), form.get("action") or "")
        fields = {i.get("name"): i.get("value") for i in form.xpath(".//input[@name]")}
        shown = await client.get(action, params={**fields, "one": "2026-11-20"})
        reset = await client.get(urljoin(str(page.url), form.xpath(".//a")[0].get("href")))
    assert action == f"{base}/dashboard"
    assert shown.status_code == 200, shown.url
    assert lxml.html.fromstring(shown.text).xpath('//input[@name="one"]/@value') == ["2026-11-20"]
    assert reset.status_code == 200 and reset.url == httpx.URL(f"{base}/dashboard", params={"key": DASH_KEY})
    assert lxml.html.fromstring(reset.text).xpath('//input[@name="one"]/@value') == [TODAY.isoformat()]


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
@pytest.mark.parametrize("where", ["root", "mounted"])
async def test_dashboard_form_and_reset_link_in_headless_chromium(tmp_path: Path, where: str) -> None:
    async with dashboard_at(where) as base, chromium(tmp_path) as page:
        start = f"{base}/dashboard?key={DASH_KEY}"
        await page.call("Page.navigate", url=start)
        await page.wait_for(f"location.href === {json.dumps(start)}")
        assert await page.evaluate("document.querySelector('form.dates').action") == f"{base}/dashboard"
        # pick another date for the first series and press "Show", as an operator would
        await page.evaluate(
            "document.querySelector('input[name=one]').value = '2026-11-20';"
            "document.querySelector('form.dates').requestSubmit()"
        )
        await page.wait_for("location.search.includes('one=2026-11-20')")
        shown = await page.evaluate(
            "[location.origin + location.pathname, document.querySelector('#ccu-chart g[data-series=one]')"
            ".dataset.date, new URLSearchParams(location.search).get('key')]"
        )
        assert shown == [f"{base}/dashboard", "2026-11-20", DASH_KEY]
        # "reset" goes back to the default dates, still under the prefix and with the key
        await page.evaluate("document.querySelector('form.dates a').click()")
        await page.wait_for("!location.search.includes('one=')")
        back = await page.evaluate("[location.href, document.querySelector('input[name=one]').value]")
        assert back == [start, TODAY.isoformat()]
