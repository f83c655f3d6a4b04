"""The dashboard in a real headless Chromium (Debian's ``chromium``), driven over the DevTools protocol: an operator
clicks "kick" and "unban", confirms (or cancels) the browser's dialog, and the player is kicked / unbanned; the
zoomed axis shows the last hour; a screenshot is saved per view (in the test's tmp dir)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ops_support import ADMIN_KEY, World, world

from browser_support import CHROMIUM, NO_CHROMIUM, Page, chromium
from gs_hooks import BannedError, MemoryCcuHistory

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM),
]


def is_png(path: Path) -> bool:
    data = path.read_bytes()
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


async def check_the_zoom(page: Page, base: str, now: float, shots: Path) -> None:
    """The day view, then the zoomed axis: the last hour, ticks every ten minutes inside it; then six hours."""
    await page.goto(base)
    await page.screenshot(shots / "day.png")
    assert await page.evaluate("document.querySelectorAll('#ccu-chart g[data-series]').length") == 3
    await page.evaluate("document.querySelector('nav.spans a[data-span=\"1h\"]').click()")
    await page.wait_for("location.search.includes('span=1h')")
    axis = await page.evaluate(
        "(() => {const s = document.getElementById('ccu-chart');"
        " return [s.dataset.span, +s.dataset.start, +s.dataset.end,"
        " [...s.querySelectorAll('.tick')].map(t => +t.dataset.ts), s.querySelectorAll('circle').length];})()"
    )
    span, start, end, ticks, points = axis
    assert span == "1h" and end - start == 3600 and abs(end - now) < 60
    assert len(ticks) == 6 and all(start < t <= end for t in ticks) and 29 <= points <= 31
    await page.screenshot(shots / "last-hour.png")
    await page.goto(base + "?span=6h")
    await page.screenshot(shots / "last-6-hours.png")


async def kick_from_the_page(page: Page, w: World, shots: Path) -> None:
    """Cancelling the confirmation does nothing; confirming kicks the player through the admin API."""
    page.accept_dialogs = False
    await page.evaluate("document.querySelector('button[data-action=kick][data-player=\"2101\"]').click()")
    assert page.dialogs == ["Kick every live session of player 2101?"]
    await page.wait_for("document.getElementById('action-status').textContent.includes('cancelled')")
    assert w.hooks.registry.sessions_of("2101") != () and w.kicks == []

    page.accept_dialogs = True
    await page.evaluate("document.querySelector('button[data-action=kick][data-player=\"2101\"]').click()")
    await page.wait_for("!document.querySelector('#sessions tr[data-player=\"2101\"]')")  # reloaded without it
    assert w.hooks.registry.sessions_of("2101") == ()
    assert [(k.reason, k.session.player_id) for k in w.kicks] == [("admin", "2101")]
    assert await page.evaluate("document.getElementById('admin-key').value") == ADMIN_KEY  # kept for the tab
    await page.wait_for("document.getElementById('action-status').textContent === 'kicked 1 session(s) of 2101'")
    await page.screenshot(shots / "after-kick.png")


async def unban_from_the_page(page: Page, w: World, base: str, shots: Path) -> None:
    """The unban button of the ban list lifts the ban: the player logs in again."""
    with pytest.raises(BannedError):
        await w.login("2103")
    await page.evaluate("document.querySelector('#ban-list button[data-action=unban][data-player=\"2103\"]').click()")
    assert page.dialogs[-1] == "Lift every ban of player 2103?"
    await page.wait_for("!document.querySelector('#ban-list tr[data-player=\"2103\"]')")
    assert w.hooks.bans.active_ban("2103") is None
    await w.login("2103")
    await page.goto(base + "#ban-list")
    await page.screenshot(shots / "ban-list.png")


async def test_kick_and_unban_from_the_page_with_a_screenshot_per_view(tmp_path: Path) -> None:
    async with world() as w, chromium(tmp_path) as page:
        history = MemoryCcuHistory()
        now = w.hooks.clock.time()
        for i in range(120):  # the last four hours, a sample every two minutes
            history.record_nowait(now - 14_400 + i * 120, "1", 200 + i)
        w.hooks.gamepot_history = history
        await w.login("2101")
        await w.login("2102", server_id="2")
        await w.hooks.ban("2103", message="chargeback")
        base = f"{w.url}/dashboard"

        await check_the_zoom(page, base, now, tmp_path)
        await page.goto(base)  # the operator types the admin key once
        await page.evaluate(
            f"(() => {{const k = document.getElementById('admin-key'); k.value = {json.dumps(ADMIN_KEY)};"
            " k.dispatchEvent(new Event('change'));})()"
        )
        await kick_from_the_page(page, w, tmp_path)
        await unban_from_the_page(page, w, base, tmp_path)

        # a wrong key: refused, said on the page, nothing done
        await page.evaluate("document.getElementById('admin-key').value = 'not-the-key'")
        await page.evaluate("document.querySelector('button[data-action=kick][data-player=\"2102\"]').click()")
        await page.wait_for("document.getElementById('action-status').textContent.includes('refused (401)')")
        assert w.hooks.registry.sessions_of("2102") != ()

    for name in ("day", "last-hour", "last-6-hours", "after-kick", "ban-list"):
        assert is_png(tmp_path / f"{name}.png"), name
