"""The GamePot CCU inquiry client (GamePot's dashboard API, or any gs_hooks listener serving the same route)."""

from __future__ import annotations

from datetime import date
from urllib.parse import quote, urlencode

import httpx

from .._config import GAMEPOT_DEFAULT_URL, Secret
from .._exceptions import HttpTransportError, PlatformUnavailableError, ProtocolError
from .._http_client import AutoHttpClient, HttpClient, as_http_client
from ._protocol import CcuRow, decode_answer

__all__ = ["GamePotClient"]


def _date_param(value: date | str) -> str:
    # date objects are formatted; strings go as given (the platform validates them and answers -11/-12/-13).
    return value.isoformat() if isinstance(value, date) else value


class GamePotClient:
    """Client of GamePot's CCU inquiry.

    Args:
        project_id: the GamePot project id.
        api_key: the ``x-api-key`` issued by GamePot.
        base_url: the dashboard API (``https://dashboard-api.gamepot.ntruss.com``), or a gs_hooks listener.
        http: the shared client (``hooks.http``) or an ``httpx.AsyncClient`` (left open); a private one is made
            (aiohttp on asyncio, httpx on trio; closed by :meth:`aclose`) otherwise.
        accept_language: the ``accept-language`` header (None: not sent).
        timeout_s: HTTP timeout of one inquiry.
    """

    def __init__(
        self,
        project_id: str,
        api_key: Secret | str,
        base_url: str = GAMEPOT_DEFAULT_URL,
        *,
        http: HttpClient | httpx.AsyncClient | None = None,
        accept_language: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        if not project_id:
            raise ValueError("project_id is required")
        self.project_id = project_id
        self._api_key = api_key if isinstance(api_key, Secret) else Secret(api_key)
        self.base_url = base_url.rstrip("/")
        self._own_http = http is None
        self._http = as_http_client(http) if http is not None else AutoHttpClient()
        self.accept_language = accept_language
        self.timeout_s = timeout_s

    @property
    def url(self) -> str:
        """The inquiry URL of this project."""
        return f"{self.base_url}/v1/api/project/{quote(self.project_id, safe='')}/user/statistics/ccu"

    async def ccu(
        self,
        one_date: date | str | None = None,
        two_date: date | str | None = None,
        three_date: date | str | None = None,
    ) -> list[CcuRow]:
        """Concurrent users per minute of three dates (omitted dates: the platform's defaults).

        Args:
            one_date / two_date / three_date: ``date`` objects or ``YYYY-MM-DD`` strings (KST days).

        Returns:
            The rows, ``00:00``..``23:59`` (1440 for a full answer); None where there was no sample.

        Raises:
            GamePotError: the platform answered an error status (``.status``: -1..-6, -11..-13).
            PlatformUnavailableError: GamePot could not be reached, or answered a non-JSON error (5xx...).
            ProtocolError: a 2xx answer that is not the documented shape.
        """
        params: dict[str, str] = {}
        for name, value in (("oneDate", one_date), ("twoDate", two_date), ("threeDate", three_date)):
            if value is not None:
                params[name] = _date_param(value)
        headers = {"x-api-key": self._api_key.get_secret_value(), "accept": "application/json"}
        if self.accept_language:
            headers["accept-language"] = self.accept_language
        url = f"{self.url}?{urlencode(params, quote_via=quote)}" if params else self.url
        try:
            response = await self._http.request("GET", url, headers=headers, timeout_s=self.timeout_s)
        except HttpTransportError as exc:
            raise PlatformUnavailableError("gamepot", None, f"CCU inquiry to {self.base_url} failed: {exc}") from exc
        try:
            return decode_answer(response.content)
        except ProtocolError as exc:
            if response.is_success:
                raise
            raise PlatformUnavailableError(
                "gamepot", None, f"CCU inquiry to {self.base_url} answered HTTP {response.status}"
            ) from exc

    async def aclose(self) -> None:
        """Close the private HTTP client (a shared one stays open)."""
        if self._own_http:
            await self._http.aclose()

    async def __aenter__(self) -> GamePotClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"GamePotClient(project_id={self.project_id!r}, base_url={self.base_url!r})"
