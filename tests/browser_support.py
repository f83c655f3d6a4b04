"""A headless Chromium driven over the DevTools protocol, for the dashboard tests (Debian's ``chromium``).

``FLAGS`` are the headless flags every run uses; :func:`chromium` starts one browser with its own profile and
yields its first page as a :class:`Page` (JavaScript dialogs answered as told and recorded); the browser is
stopped on every exit path.
"""

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
import websockets.asyncio.client

__all__ = ["CHROMIUM", "FLAGS", "NO_CHROMIUM", "Page", "chromium"]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NO_CHROMIUM = "no `chromium` binary on PATH (Debian: apt-get install chromium)"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


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
                error = message.get("error")
                if error is not None and "navigated or closed" in str(error.get("message", "")):
                    # the page reloaded while the call ran (the dashboard reloads itself after an action)
                    raise RuntimeError(f"the document was replaced during {method}")
                assert error is None, error
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
            *FLAGS,
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
