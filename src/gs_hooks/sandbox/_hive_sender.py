"""The Hive side of the two Hive → game server calls: the suspended-user push and the web-store profile call.

Strategy: payload building and answer validation are pure functions (:func:`suspension_batches`,
:func:`validate_webstore_answer`) written from hive-suspended-user-webhook.txt and
hive-webstore-profile-api.txt; :class:`HiveSender` does the IO with one ``httpx.AsyncClient`` and records every
attempt and answer.

Suspension push: items are split into batches of at most 100 (the document: 2,000 users → 20 requests), each
POSTed as ``{"game_index", "server_url", "data": [...]}`` with ``Authorization: Bearer <key>``. A batch
succeeded when the answer is 2xx JSON with ``result_code`` 0; otherwise (other code, non-2xx, unreadable body,
transport error) it is retransmitted up to ``retries`` more times.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec

from .._clock import Clock
from .._config import Secret
from ._webstore_check import validate_webstore_answer

__all__ = [
    "HiveSender",
    "HiveTarget",
    "PushAttempt",
    "PushReport",
    "SuspensionItem",
    "WebstoreReport",
    "suspension_batches",
    "validate_webstore_answer",
]

MAX_BATCH = 100


class SuspensionItem(msgspec.Struct, frozen=True, kw_only=True):
    """One suspended user as Hive sends it.

    Attributes:
        player_id: Hive player id.
        status: ``P`` permanent or ``B`` with a period.
        start_date / end_date: ``YYYY-MM-DD HH:MM:SS`` (KST; ``9999-12-31 00:00:00`` = no end).
    """

    player_id: int
    status: str
    start_date: str
    end_date: str


@dataclass(frozen=True, slots=True)
class HiveTarget:
    """A registered game server: suspension URL, Bearer key, game index, and the ``server_url`` sent."""

    url: str
    auth_key: Secret
    game_index: int
    server_url: str


@dataclass(frozen=True, slots=True)
class PushAttempt:
    """One POST of one batch.

    Attributes:
        batch: batch index (0-based) within the push.
        attempt: 1 for the first send, 2.. for retransmissions.
        size: items in the batch.
        at: sandbox clock time of the send.
        http_status: the answer's status (None on transport error).
        result_code: the answer's ``result_code`` when readable.
        error: what went wrong (None on success).
        body: the answer body (text, truncated to 2,000 characters).
    """

    batch: int
    attempt: int
    size: int
    at: float
    http_status: int | None
    result_code: int | None
    error: str | None
    body: str = ""

    @property
    def ok(self) -> bool:
        """Whether the game server accepted the batch."""
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        """A JSON-able view."""
        return {
            "batch": self.batch,
            "attempt": self.attempt,
            "size": self.size,
            "at": self.at,
            "http_status": self.http_status,
            "result_code": self.result_code,
            "error": self.error,
            "ok": self.ok,
            "body": self.body,
        }


@dataclass(slots=True)
class PushReport:
    """The outcome of one :meth:`HiveSender.push_suspensions`.

    Attributes:
        items: items pushed.
        batches: number of batches (requests without retransmissions).
        attempts: every POST, in order.
        failed_batches: indexes of batches still failed after the retries.
    """

    items: int
    batches: int
    attempts: list[PushAttempt] = field(default_factory=list)
    failed_batches: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every batch was accepted."""
        return not self.failed_batches

    def to_json(self) -> dict[str, Any]:
        """A JSON-able view."""
        return {
            "ok": self.ok,
            "items": self.items,
            "batches": self.batches,
            "requests": len(self.attempts),
            "failed_batches": self.failed_batches,
            "attempts": [a.to_json() for a in self.attempts],
        }


@dataclass(slots=True)
class WebstoreReport:
    """The outcome of one web-store profile call.

    Attributes:
        url / cs_code: what was called.
        http_status: the answer's status (None on transport error).
        body: the parsed JSON answer (None when unreadable).
        violations: every way the answer breaks the document (empty = conforming).
    """

    url: str
    cs_code: str
    http_status: int | None
    body: Any
    violations: list[str]

    @property
    def ok(self) -> bool:
        """The answer conforms to the document."""
        return not self.violations

    def to_json(self) -> dict[str, Any]:
        """A JSON-able view."""
        return {
            "ok": self.ok,
            "url": self.url,
            "cs_code": self.cs_code,
            "http_status": self.http_status,
            "body": self.body,
            "violations": self.violations,
        }


def _item_json(item: SuspensionItem | Mapping[str, Any]) -> Any:
    if isinstance(item, SuspensionItem):
        return msgspec.to_builtins(item)
    return dict(item)


def suspension_batches(
    items: Sequence[SuspensionItem | Mapping[str, Any]],
    *,
    game_index: int,
    server_url: str,
    batch_size: int = MAX_BATCH,
) -> list[dict[str, Any]]:
    """Split items into request bodies of at most ``batch_size`` (≤ 100) items.

    Mapping items are sent as given (so a test can send a malformed item on purpose).

    Raises:
        ValueError: ``batch_size`` outside 1..100.
    """
    if not 1 <= batch_size <= MAX_BATCH:
        raise ValueError(f"batch_size must be 1..{MAX_BATCH} (the document sends at most 100 per request)")
    return [
        {
            "game_index": game_index,
            "server_url": server_url,
            "data": [_item_json(i) for i in items[start : start + batch_size]],
        }
        for start in range(0, len(items), batch_size)
    ]


# -- IO -------------------------------------------------------------------------------------------------------


class HiveSender:
    """Sends what Hive sends to a game server, and records it.

    Args:
        clock: the sandbox clock (attempt times, retry delays).
        client: the ``httpx.AsyncClient`` to use; without one, the sender makes its own on first use and
            closes it in :meth:`aclose`.

    Attributes:
        target: the registered game server, if any.
        history: every suspension POST ever made (all pushes).
        webstore_calls: every web-store report.
    """

    def __init__(self, clock: Clock, client: httpx.AsyncClient | None = None) -> None:
        self.clock = clock
        self.client = client
        self._owned: httpx.AsyncClient | None = None
        self.target: HiveTarget | None = None
        self.history: list[PushAttempt] = []
        self.webstore_calls: list[WebstoreReport] = []

    def register(self, url: str, auth_key: str, game_index: int, *, server_url: str | None = None) -> HiveTarget:
        """Register the game server's suspension URL, its Bearer key and the game index.

        Args:
            url: where batches are POSTed.
            auth_key: the game server authentication key (sent as ``Bearer``).
            game_index: the ``game_index`` field.
            server_url: the ``server_url`` field (default: ``url``).
        """
        self.target = HiveTarget(url, Secret(auth_key), game_index, server_url or url)
        return self.target

    def reset_nowait(self) -> None:
        """Forget the history (the registration stays)."""
        self.history.clear()
        self.webstore_calls.clear()

    def _client(self) -> httpx.AsyncClient:
        if self.client is not None:
            return self.client
        if self._owned is None:
            self._owned = httpx.AsyncClient(timeout=10.0)
        return self._owned

    async def aclose(self) -> None:
        """Close the client the sender made itself (a client passed in is left open)."""
        if self._owned is not None:
            owned, self._owned = self._owned, None
            await owned.aclose()

    async def push_suspensions(
        self,
        items: Iterable[SuspensionItem | Mapping[str, Any]],
        *,
        batch_size: int = MAX_BATCH,
        retries: int = 0,
        retry_delay_s: float = 0.0,
        auth_key: str | None = None,
    ) -> PushReport:
        """POST suspended users to the registered game server in batches of at most 100.

        Args:
            items: suspensions (:class:`SuspensionItem` or mappings sent as given).
            batch_size: items per request, 1..100.
            retries: retransmissions of a failed batch (0 = none).
            retry_delay_s: wait between retransmissions (sandbox clock).
            auth_key: send this Bearer key instead of the registered one (to test rejection).

        Raises:
            RuntimeError: no game server is registered.
            ValueError: bad ``batch_size`` or ``retries``.
        """
        if self.target is None:
            raise RuntimeError("no game server registered: call sandbox.hive.register(url, auth_key, game_index)")
        if retries < 0:
            raise ValueError("retries must be >= 0")
        target = self.target
        listed = list(items)
        bodies = suspension_batches(
            listed, game_index=target.game_index, server_url=target.server_url, batch_size=batch_size
        )
        key = auth_key if auth_key is not None else target.auth_key.get_secret_value()
        headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
        report = PushReport(items=len(listed), batches=len(bodies))
        for index, body in enumerate(bodies):
            content = json.dumps(body, separators=(",", ":")).encode()
            for attempt in range(1, retries + 2):
                if attempt > 1 and retry_delay_s > 0:
                    await self.clock.sleep(retry_delay_s)
                result = await self._post(target.url, content, headers, index, attempt, len(body["data"]))
                report.attempts.append(result)
                self.history.append(result)
                if result.ok:
                    break
            else:
                report.failed_batches.append(index)
        return report

    async def _post(
        self, url: str, content: bytes, headers: dict[str, str], batch: int, attempt: int, size: int
    ) -> PushAttempt:
        at = self.clock.time()
        try:
            response = await self._client().post(url, content=content, headers=headers)
        except httpx.HTTPError as exc:
            return PushAttempt(batch, attempt, size, at, None, None, f"transport error: {type(exc).__name__}")
        text = response.text[:2000]
        code: int | None = None
        error: str | None = None
        try:
            doc = response.json()
        except ValueError:
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get("result_code"), int):
            code = doc["result_code"]
        if not 200 <= response.status_code < 300:
            error = f"HTTP {response.status_code}"
        elif code is None:
            error = "answer has no integer result_code"
        elif code != 0:
            error = f"result_code {code}"
        return PushAttempt(batch, attempt, size, at, response.status_code, code, error, text)

    async def call_webstore(
        self, url: str, cs_code: str, *, headers: Mapping[str, str] | None = None
    ) -> WebstoreReport:
        """POST ``{"cs_code": ...}`` to a game server's ``/webstore-profile`` and validate the answer.

        Args:
            url: the full endpoint URL.
            cs_code: the user's cs_code.
            headers: extra headers (e.g. the studio's shared key).

        Returns:
            a :class:`WebstoreReport` (``violations`` lists every deviation from the document).
        """
        try:
            response = await self._client().post(url, json={"cs_code": cs_code}, headers=dict(headers or {}))
        except httpx.HTTPError as exc:
            report = WebstoreReport(url, cs_code, None, None, [f"transport error: {type(exc).__name__}"])
        else:
            ctype = response.headers.get("content-type", "").lower()
            body, violations = validate_webstore_answer(response.status_code, ctype, response.content, cs_code)
            report = WebstoreReport(url, cs_code, response.status_code, body, violations)
        self.webstore_calls.append(report)
        return report
