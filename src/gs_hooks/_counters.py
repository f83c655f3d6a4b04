"""Plain counters for the hooks' metrics: :class:`Tally` (a counter by bounded label values, optionally per minute),
:class:`Timing` (a histogram), :class:`LastSeen` (last success / last error of a peer), :class:`Cell` (a hot
path's counter, folded into its tally).

No dependency: :mod:`gs_hooks._metrics` declares the families with these, the capabilities count into them, and
:mod:`gs_hooks.ops` exports them to Prometheus. A tally counts with a dict update and no lock (meant for the event
loop's thread; hot paths use a cell); timings and last-seen records, one per network exchange, take a lock; reads
copy what they need.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["LATENCY_BUCKETS", "OTHER", "Cell", "LastSeen", "Tally", "Timing", "fold"]

OTHER = "other"
"""The label value that stands for every value outside a label's known set (or beyond ``max_series``)."""

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Cell:
    """One label value set of a :class:`Tally` on a hot path: ``cell.n += k`` counts (see :meth:`Tally.cell`)."""

    __slots__ = ("folded", "n")

    def __init__(self) -> None:
        self.n = 0
        self.folded = 0


_CELLED: list[Tally] = []  # tallies that have cells


def fold() -> None:
    """Fold every cell into its tally (a batch's entry point calls it when it returns)."""
    for tally in _CELLED:
        tally.fold()


class Tally:
    """A counter by label values, with bounded label sets; optionally per minute over the last hour.

    Counting is lock-free (a dict update, about a tenth of a microsecond): it is meant for the event loop's thread.
    Reads copy what they need.

    Args:
        name: the Prometheus family name without ``_total`` (``gs_hooks_logins``).
        help: the family's help text.
        labels: the label names, in order.
        known: for some labels, every value they may take (others count as ``other``); listed values are
            exported at 0 before their first event, so a rate over them exists from the start.
        max_series: distinct label value sets kept at most; the rest are counted under ``other``.
        minutes: keep per-minute counts of the last ``minutes`` minutes (0: totals only).
        time: wall-clock seconds (tests inject their own).

    Attributes:
        time: the clock of the per-minute counts, settable (a test of the process-wide tallies pins it).
    """

    kind = "counter"

    def __init__(
        self,
        name: str,
        help: str,
        labels: tuple[str, ...] = (),
        *,
        known: Mapping[str, Iterable[str]] | None = None,
        max_series: int = 64,
        minutes: int = 0,
        time: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.help = help
        self.labels = labels
        known = known or {}
        self._known = tuple(frozenset(known[label]) if label in known else None for label in labels)
        self._max_series = max_series
        self._minutes = minutes
        self.time = time
        self._totals: dict[tuple[str, ...], int] = {}
        self._keys: dict[tuple[str, ...], tuple[str, ...]] = {}  # label values as given -> as counted
        self._by_minute: dict[int, dict[tuple[str, ...], int]] = {}
        self._minute_at = float("inf")
        self._next_minute_at = float("-inf")
        self._bucket: dict[tuple[str, ...], int] = {}
        self._cells: list[tuple[Cell, tuple[str, ...]]] = []
        if labels and all(k is not None for k in self._known):
            self._preset(labels, known)

    def _preset(self, labels: tuple[str, ...], known: Mapping[str, Iterable[str]]) -> None:
        keys: list[tuple[str, ...]] = [()]
        for label in labels:
            keys = [(*k, v) for k in keys for v in sorted(known[label])]
        for key in keys[: self._max_series]:
            self._totals[key] = 0

    def _key(self, values: tuple[str, ...]) -> tuple[str, ...]:
        if len(values) != len(self.labels):
            raise ValueError(f"{self.name} takes {len(self.labels)} label values, got {len(values)}")
        key = tuple(v if k is None or v in k else OTHER for v, k in zip(values, self._known, strict=True))
        if key not in self._totals and len(self._totals) >= self._max_series:
            key = (OTHER,) * len(key)
        if len(self._keys) < 4 * self._max_series:
            self._keys[values] = key
        return key

    def cell(self, *values: str) -> Cell:
        """A counter of one label value set for a hot path (one attribute add per event: ``cell.n += k``).

        What it counted is folded into this tally at its next :meth:`inc`, at every read, and at
        :func:`fold` (which a ban batch's entry point calls when it returns).
        """
        cell = Cell()
        self._cells.append((cell, self._key(values)))
        _CELLED.append(self)
        return cell

    def fold(self) -> None:
        """Move what the cells counted into the totals and the current minute."""
        for cell, key in self._cells:
            delta = cell.n - cell.folded
            if delta > 0:
                cell.folded += delta
                self._add(key, delta)

    def inc(self, *values: str, by: int = 1) -> None:
        """Count ``by`` events with these label values (``by`` <= 0 counts nothing)."""
        if by <= 0:
            return
        key = self._keys.get(values)
        if key is None:
            key = self._key(values)
        if self._cells:
            self.fold()
        self._add(key, by)

    def _add(self, key: tuple[str, ...], by: int) -> None:
        totals = self._totals
        totals[key] = totals.get(key, 0) + by
        if self._minutes:
            now = self.time()
            if not self._minute_at <= now < self._next_minute_at:
                self._roll(now)
            bucket = self._bucket
            bucket[key] = bucket.get(key, 0) + by

    def _roll(self, now: float) -> None:
        """Count into ``now``'s minute from here on; forget minutes out of the window (before it, or after it:
        the clock went back)."""
        minute = int(now // 60)
        self._minute_at = minute * 60.0
        self._next_minute_at = self._minute_at + 60.0
        self._bucket = self._by_minute.setdefault(minute, {})
        for old in [m for m in self._by_minute if not minute - self._minutes < m <= minute]:
            del self._by_minute[old]

    def totals(self) -> dict[tuple[str, ...], int]:
        """Every label value set counted (or known) → its total since the process started."""
        self.fold()
        return dict(self._totals)

    def total(self, *values: str) -> int:
        """The total of one label value set (0 when never counted)."""
        self.fold()
        return self._totals.get(tuple(values), 0)

    def recent(self, minutes: int = 60) -> tuple[int, dict[tuple[str, ...], list[int]]]:
        """Per-minute counts of the last ``minutes`` minutes (the current minute last).

        Returns:
            (the current minute as ``int(time // 60)``, label value set → one count per minute, oldest first).
        """
        self.fold()
        minutes = min(minutes, self._minutes)
        now = int(self.time() // 60)
        out: dict[tuple[str, ...], list[int]] = {}
        for minute, bucket in list(self._by_minute.items()):
            age = now - minute
            if 0 <= age < minutes:
                for key, n in list(bucket.items()):
                    out.setdefault(key, [0] * minutes)[minutes - 1 - age] += n
        return now, out


class Timing:
    """A histogram of seconds by label values (bounded like :class:`Tally`).

    Args:
        name: the Prometheus family name (``..._seconds``).
        help: the family's help text.
        labels: the label names.
        buckets: the upper bounds (``+Inf`` is added).
        max_series: distinct label value sets kept at most (the rest under ``other``).
    """

    kind = "histogram"

    def __init__(
        self,
        name: str,
        help: str,
        labels: tuple[str, ...] = (),
        *,
        buckets: tuple[float, ...] = LATENCY_BUCKETS,
        max_series: int = 64,
    ) -> None:
        self.name = name
        self.help = help
        self.labels = labels
        self.buckets = buckets
        self._max_series = max_series
        self._lock = threading.Lock()
        # label values -> [count per bucket (not cumulative, +Inf last), sum]
        self._series: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}

    def observe(self, seconds: float, *values: str) -> None:
        """Count one duration."""
        key = tuple(values)
        index = len(self.buckets)
        for i, bound in enumerate(self.buckets):
            if seconds <= bound:
                index = i
                break
        with self._lock:
            series = self._series.get(key)
            if series is None:
                if len(self._series) >= self._max_series:
                    key = (OTHER,) * len(values)
                series = self._series.setdefault(key, ([0] * (len(self.buckets) + 1), [0.0]))
            series[0][index] += 1
            series[1][0] += seconds

    def snapshot(self) -> dict[tuple[str, ...], tuple[list[int], float]]:
        """Label values → (cumulative counts per bucket, ``+Inf`` last; the sum of the seconds)."""
        with self._lock:
            out = {}
            for key, (counts, total) in self._series.items():
                running, cumulative = 0, []
                for n in counts:
                    running += n
                    cumulative.append(running)
                out[key] = (cumulative, total[0])
            return out


class LastSeen:
    """How the latest exchanges with a peer went: last success, last error (its code), the latest latency.

    Times are wall-clock epoch seconds. Read :meth:`snapshot`.
    """

    def __init__(self, time: Callable[[], float] = time.time) -> None:
        self._time = time
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {
            "last_success_at": None,
            "last_error_at": None,
            "last_error_code": None,
            "last_latency_s": None,
        }

    def success(self, latency_s: float | None = None) -> None:
        """An exchange that worked."""
        with self._lock:
            self._state["last_success_at"] = self._time()
            if latency_s is not None:
                self._state["last_latency_s"] = latency_s

    def error(self, code: str, latency_s: float | None = None) -> None:
        """An exchange that failed with ``code`` (a result code, ``transport``, ``http_5xx``...)."""
        with self._lock:
            self._state["last_error_at"] = self._time()
            self._state["last_error_code"] = code
            if latency_s is not None:
                self._state["last_latency_s"] = latency_s

    def snapshot(self) -> dict[str, Any]:
        """``last_success_at``, ``last_error_at``, ``last_error_code``, ``last_latency_s`` (None: not yet)."""
        with self._lock:
            return dict(self._state)
