"""Rate-limited logging for storms of one kind of record (accept errors, refused requests, failing handlers).

The first record of a kind is logged at once. Repeats within ``interval_s`` are only counted; the first repeat
after the interval logs one summary line with the count (``... (and 812 more like this in the last 10 s)``), and
:meth:`RateLimitedLog.flush` logs what is still counted (call it at shutdown). Pure bookkeeping over an injected
monotonic time: no task, no timer.
"""

from __future__ import annotations

import logging
import time as _time
from collections.abc import Callable, Hashable, Mapping
from typing import Any

__all__ = ["RateLimitedLog"]


class RateLimitedLog:
    """Log the first record of each key, then at most one summary per ``interval_s`` per key.

    Args:
        logger: where records go.
        interval_s: the window in which repeats of one key are counted instead of logged.
        time: monotonic seconds (inject a fake in tests).
        max_keys: keys remembered at most; the oldest window is summarised and dropped beyond it (bounded memory
            even when keys carry peer addresses).
    """

    __slots__ = ("_keys", "_logger", "_max_keys", "_time", "interval_s")

    def __init__(
        self,
        logger: logging.Logger,
        *,
        interval_s: float = 10.0,
        time: Callable[[], float] = _time.monotonic,
        max_keys: int = 1024,
    ) -> None:
        self._logger = logger
        self.interval_s = interval_s
        self._time = time
        self._max_keys = max_keys
        # key -> [window start, suppressed count, level, msg, args, extra]
        self._keys: dict[Hashable, list[Any]] = {}

    def log(
        self,
        level: int,
        key: Hashable,
        msg: str,
        *args: object,
        exc_info: Any = None,
        extra: Mapping[str, object] | None = None,
    ) -> bool:
        """Log ``msg % args`` at ``level`` unless a record of ``key`` was logged less than ``interval_s`` ago.

        ``extra`` (the event's fields, see :class:`~gs_hooks.JsonFormatter`) goes on the record as with
        ``logging``; a summary line carries the fields of its kind's latest record.

        Returns:
            True when a record was written, False when this one was only counted.
        """
        if not self._logger.isEnabledFor(level):
            return False
        now = self._time()
        entry = self._keys.get(key)
        if entry is not None and now - entry[0] < self.interval_s:
            entry[1] += 1
            entry[5] = extra
            return False
        suppressed = 0 if entry is None else entry[1]
        if entry is None and len(self._keys) >= self._max_keys:
            self._evict()
        self._keys[key] = [now, 0, level, msg, args, extra]
        if suppressed:
            self._logger.log(
                level,
                msg + " (and %d more like this in the last %.0f s)",
                *args,
                suppressed,
                now - entry[0] if entry is not None else self.interval_s,
                exc_info=exc_info,
                extra=extra,
            )
        else:
            self._logger.log(level, msg, *args, exc_info=exc_info, extra=extra)
        return True

    def suppressed(self, key: Hashable) -> int:
        """Records of ``key`` counted but not yet summarised."""
        entry = self._keys.get(key)
        return 0 if entry is None else int(entry[1])

    def flush(self) -> int:
        """Log one summary line per key with suppressed records; forget every key. Returns the lines written."""
        lines = 0
        for entry in self._keys.values():
            if entry[1]:
                self._summarise(entry)
                lines += 1
        self._keys.clear()
        return lines

    def _summarise(self, entry: list[Any]) -> None:
        _, count, level, msg, args, extra = entry
        self._logger.log(level, msg + " (%d more like this, not logged one by one)", *args, count, extra=extra)

    def _evict(self) -> None:
        oldest = min(self._keys, key=lambda k: self._keys[k][0])
        entry = self._keys.pop(oldest)
        if entry[1]:
            self._summarise(entry)
