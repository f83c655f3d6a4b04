"""One JSON object per log line, with the standard ``logging`` API: :class:`JsonFormatter`.

gs_hooks logs events (a refused login, a kick, a webhook batch, a failed Gamebase call, an admin action) with
their fields passed as ``extra=`` (``player``, ``server_id``, ``reason``, ``result_code``, ``source``, ``api``,
``peer``...). A plain formatter shows the message; :class:`JsonFormatter` shows the message *and* those fields as
keys, so a log pipeline can filter on them without parsing text. Nothing here adds a secret: the library never
passes one, and a field whose name says it is one (``token``, ``secret``, ``password``, ``authorization``, a
``*_key`` other than ``player_key``) or whose value is a :class:`~gs_hooks.Secret` is written as ``"***"``.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from typing import Any

import msgspec

from ._config import Secret

__all__ = ["JsonFormatter"]

# Every attribute a LogRecord has without ``extra=`` (and what Formatter.format adds): not an event field.
_STANDARD = frozenset(
    {
        *logging.LogRecord("", 0, "", 0, "", (), None).__dict__,
        "message",
        "asctime",
        "taskName",
    }
)
_SECRET_NAMES = ("token", "secret", "password", "passwd", "authorization", "credential", "api_key", "auth_key")
_encoder = msgspec.json.Encoder()


def _secret_name(name: str) -> bool:
    lower = name.lower()
    if lower in ("player_key",):
        return False
    return any(part in lower for part in _SECRET_NAMES) or lower.endswith("_key") or lower == "key"


def _jsonable(value: Any) -> Any:
    if isinstance(value, Secret):
        return "***"
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


class JsonFormatter(logging.Formatter):
    """Format each record as one JSON object on one line.

    Keys: ``ts`` (ISO 8601 with the UTC offset, millisecond precision), ``level``, ``logger``, ``message``, then
    the event's fields given as ``extra=`` (``player``, ``server_id``, ``reason``, ``result_code``...), then
    ``exception`` (the formatted traceback) when the record has one. A field named like a secret is written as
    ``"***"``.

    Example::

        handler = logging.StreamHandler()
        handler.setFormatter(gs_hooks.JsonFormatter())
        logging.getLogger("gs_hooks").addHandler(handler)

    Args:
        utc: stamp times in UTC (default: the machine's local zone).
    """

    def __init__(self, *, utc: bool = False) -> None:
        super().__init__()
        self.utc = utc

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        when = datetime.fromtimestamp(record.created, UTC)
        if not self.utc:
            when = when.astimezone()
        out: dict[str, Any] = {
            "ts": when.isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name in _STANDARD or name.startswith("_") or name in out:
                continue
            out[name] = "***" if _secret_name(name) else _jsonable(value)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exception"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return _encoder.encode(out).decode("utf-8")
