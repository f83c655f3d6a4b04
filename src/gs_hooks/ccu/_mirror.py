"""The CCU mirror: a best-effort copy of every new sample to a second collector (``GS_HOOKS_CCU_MIRROR_URL``, the
platform's test server). Never retried, never recorded, never in the way of the main delivery: at most
``2 * max_inflight`` copies in flight, the rest skipped (logged at debug level).
"""

from __future__ import annotations

import logging

import anyio
import anyio.abc
import httpx

from .._config import CcuConfig
from .._exceptions import HttpTransportError, ProtocolError
from .._http_client import HttpClient, as_http_client
from .._signal import Changed
from ._model import CcuSampleRow
from ._protocol import encode_request, parse_response

__all__ = ["CcuMirror"]

log = logging.getLogger("gs_hooks.ccu")


class CcuMirror:
    """Copies samples to the mirror collector.

    Args:
        config: the CCU settings (``mirror_url`` set; the request's form, the timeout, ``max_inflight``).
        http: the shared HTTP client (an ``httpx.AsyncClient`` is wrapped).
        changed: notified when a copy ends.
    """

    def __init__(self, config: CcuConfig, *, http: HttpClient | httpx.AsyncClient, changed: Changed) -> None:
        if config.mirror_url is None:
            raise ValueError("CcuMirror needs config.mirror_url (GS_HOOKS_CCU_MIRROR_URL)")
        self.config = config
        self.url: str = config.mirror_url
        self.http = as_http_client(http)
        self._changed = changed
        self._in_flight = 0
        self._tg: anyio.abc.TaskGroup | None = None

    @property
    def in_flight(self) -> int:
        """Copies under way."""
        return self._in_flight

    async def run(self) -> None:
        """Hold the copies' task group until cancelled."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            await anyio.sleep_forever()

    def copy(self, rows: list[CcuSampleRow]) -> None:
        """Start a copy of each row (skipped while :meth:`run` does not run, or too many are in flight)."""
        tg = self._tg
        if tg is None:
            return
        for row in rows:
            if self._in_flight >= 2 * self.config.max_inflight:
                log.debug("CCU mirror: too many copies in flight; %s %s not mirrored", row.server, row.date)
                continue
            self._in_flight += 1
            tg.start_soon(self._send, row)

    async def _send(self, row: CcuSampleRow) -> None:
        try:
            body, ctype = encode_request(row.sample(), root=self.config.xml_root, method=self.config.send_method)
            resp = await self.http.request(
                "POST", self.url, content=body, headers={"content-type": ctype}, timeout_s=self.config.timeout_s
            )
            code = parse_response(resp.content) if 200 <= resp.status < 300 else None
            log.debug("CCU mirror: %s %s -> HTTP %s result %s", row.server, row.date, resp.status, code)
        except (HttpTransportError, ProtocolError) as exc:
            log.debug("CCU mirror: %s %s failed: %s", row.server, row.date, type(exc).__name__)
        finally:
            self._in_flight -= 1
            self._changed.notify()
