"""The Gamebase emulator's wire details: result codes, the failure exception, and parsing of parameters."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from .._clock import KST, to_datetime
from ..http._app import Request, Response

__all__ = [
    "ALREADY_CONSUMED",
    "INVALID_APPKEY",
    "INVALID_APP_ID",
    "INVALID_PARAMETER",
    "INVALID_SECRET_KEY",
    "INVALID_TOKEN",
    "MEMBER_NOT_VALID",
    "NOT_FOUND",
    "NO_SUCH_MEMBER",
    "OS_CODES",
    "PAGE_DEFAULT",
    "PAGE_MAX",
    "STORE_CODES",
    "TOKEN_EXPIRED",
    "UNAUTHENTICATED",
    "UNSUPPORTED_VERSION",
    "UNSUPPORTED_VERSION_LAUNCHING",
    "ApiError",
    "Handler",
    "RouteSpec",
    "bad",
    "default_message",
    "iso",
    "json_body",
    "ms",
    "multi",
    "number",
    "parse_bool",
    "parse_int",
    "parse_iso",
    "str_list",
    "transaction_id",
]

Handler = Callable[[Request], Awaitable[Response]]
RouteSpec = tuple[str, str, str, Handler]
"""(route name, method, path pattern, handler)."""

INVALID_PARAMETER = -4000001
UNSUPPORTED_VERSION = -4000007
UNSUPPORTED_VERSION_LAUNCHING = -4060003
INVALID_APP_ID = -4010001
INVALID_APPKEY = -4010002
UNAUTHENTICATED = -4010003
INVALID_SECRET_KEY = -4010004
INVALID_TOKEN = -4010203
MEMBER_NOT_VALID = -4010204
TOKEN_EXPIRED = -4010208
NO_SUCH_MEMBER = -4040401
NOT_FOUND = -4040002
ALREADY_CONSUMED = -4090001

OS_CODES = frozenset({"AOS", "IOS", "WEB", "WINDOWS"})
STORE_CODES = {"AOS": "GG", "IOS": "AS", "WEB": "WEB", "WINDOWS": "WINDOWS"}
PAGE_DEFAULT = 20
PAGE_MAX = 2000


class ApiError(Exception):
    """A Gamebase failure answer: the result code, its message, and ``traceError.throwPoint``."""

    def __init__(self, code: int, message: str, throw_point: str = "") -> None:
        self.code = code
        self.message = message
        self.throw_point = throw_point
        super().__init__(message)


def bad(message: str) -> ApiError:
    """The vendor's invalid-parameter failure."""
    return ApiError(INVALID_PARAMETER, f"Invalid parameter: {message}")


def ms(ts: float) -> int:
    """Epoch milliseconds."""
    return round(ts * 1000)


def iso(ts: float, *, millis: bool = False) -> str:
    """ISO 8601 in KST."""
    return to_datetime(ts, KST).isoformat(timespec="milliseconds" if millis else "seconds")


def parse_iso(name: str, value: str | None) -> float:
    """A query parameter's ISO 8601 time with an offset, as epoch seconds."""
    if not value:
        raise bad(f"'{name}' is mandatory (ISO 8601, e.g. 2026-01-01T00:00:00.000+09:00)")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        hint = " (URL-encode '+' as %2B)" if " " in value else ""
        raise bad(f"'{name}' is not an ISO 8601 time{hint}") from None
    if moment.tzinfo is None:
        raise bad(f"'{name}' must carry a UTC offset, e.g. +09:00")
    return moment.timestamp()


def parse_int(name: str, value: str | None, default: int, minimum: int) -> int:
    """A query parameter's integer (``default`` when absent)."""
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise bad(f"'{name}' must be an integer") from None
    if number < minimum:
        raise bad(f"'{name}' must be >= {minimum}")
    return number


def parse_bool(name: str, value: str | None, default: bool) -> bool:
    """A query parameter's ``true``/``false`` (``default`` when absent)."""
    if value is None or value == "":
        return default
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise bad(f"'{name}' must be true or false")


def default_message(code: int) -> str:
    """The result message of an injected failure without one."""
    return "Internal server error (sandbox)" if code <= -5000000 else f"Error {code} (sandbox)"


def json_body(request: Request) -> dict[str, Any]:
    """The request body as a JSON object."""
    try:
        body = msgspec.json.decode(request.body)
    except msgspec.DecodeError:
        raise bad("the body is not JSON") from None
    if not isinstance(body, dict):
        raise bad("the body must be a JSON object")
    return body


def str_list(body: dict[str, Any], key: str) -> list[str]:
    """A body field that must be an array of strings."""
    value = body.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad(f"'{key}' must be an array of strings")
    return value


def number(body: dict[str, Any], key: str) -> float:
    """A body field that must be a number."""
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad(f"'{key}' must be a number")
    return float(value)


def multi(request: Request, *names: str) -> list[str]:
    """Every value of the query parameters ``names`` (repeated or comma-separated)."""
    out: list[str] = []
    for key, value in parse_qsl(request.query_string, keep_blank_values=False):
        if key in names:
            out.extend(v for v in value.split(",") if v)
    return out


def transaction_id(request: Request) -> str:
    """The request's ``X-TCGB-Transaction-Id`` when it is printable ASCII of at most 128 characters, else a new
    UUID (a value that cannot be echoed in a response header is replaced, not echoed)."""
    value = request.header("x-tcgb-transaction-id")
    if value and len(value) <= 128 and all(32 <= ord(ch) < 127 for ch in value):
        return value
    return str(uuid.uuid4())
