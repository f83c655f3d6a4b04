"""The dashboard in a real headless Chromium (Debian's ``chromium``), driven over the DevTools protocol: an operator
clicks "kick" and "unban", confirms (or cancels) the browser's dialog, and the player is kicked / unbanned; the
zoomed axis shows the last hour; a screenshot is saved per view (in the test's tmp dir)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import websockets.asyncio.client
from ops_support import ADMIN_KEY, World, world

from gs_hooks import BannedError, MemoryCcuHistory

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("chromium") is None and shutil.which("chromium-browser") is None,
        reason="no `chromium` binary on PATH (Debian: apt-get install chromium)",
    ),
]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Page:
    """One Chromium page over the DevTools protocol; answers JavaScript dialogs as told and records them."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self._id = 0
        self.accept_dialogs = True
        self.dialogs: list[str] = []

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        mine = self._id
        await self.ws.send(json.dumps({"id": mine, "method": method, "params": params}))
        while True:
            message = json.loads(await self.ws.recv())
            if message.get("method") == "Page.javascriptDialogOpening":
                self.dialogs.append(message["params"]["message"])
                self._id += 1
                answer = {"accept": self.accept_dialogs}
                await self.ws.send(
                    json.dumps({"id": self._id, "method": "Page.handleJavaScriptDialog", "params": answer})
                )
            elif message.get("id") == mine:
                assert "error" not in message, message["error"]
                return dict(message["result"])

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise RuntimeError(f"{details.get('text')}: {details.get('exception', {}).get('description')}")
        return result["result"].get("value")

    async def wait_for(self, condition: str, timeout: float = 20) -> None:
        with anyio.fail_after(timeout):
            while True:
                try:
                    if await self.evaluate(f"document.readyState === 'complete' && ({condition})"):
                        return
                except RuntimeError:
                    pass  # the document was replaced while we asked
                await anyio.sleep(0.05)

    async def goto(self, url: str) -> None:
        await self.call("Page.navigate", url=url)
        await self.wait_for(f"location.href === {json.dumps(url)}")

    async def screenshot(self, path: Path) -> None:
        shot = await self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        await anyio.Path(path).write_bytes(base64.b64decode(shot["data"]))


@asynccontextmanager
async def chromium(tmp_path: Path) -> AsyncIterator[Page]:
    assert CHROMIUM is not None
    profile = tmp_path / "profile"
    process = await anyio.open_process(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--window-size=1280,1800",
            f"--user-data-dir={profile}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        with anyio.fail_after(30):
            while not (port_file.exists() and port_file.read_text().strip()):
                await anyio.sleep(0.05)
            port = int(port_file.read_text().split()[0])
            async with httpx.AsyncClient() as client:
                while True:
                    targets = (await client.get(f"http://127.0.0.1:{port}/json/list")).json()
                    pages = [t for t in targets if t.get("type") == "page"]
                    if pages:
                        break
                    await anyio.sleep(0.05)
        async with websockets.asyncio.client.connect(pages[0]["webSocketDebuggerUrl"], max_size=None) as ws:
            page = Page(ws)
            await page.call("Page.enable")
            yield page
    finally:
        process.terminate()
        with anyio.move_on_after(10):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()


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
