"""GamePot CCU inquiry: pure query validation, the answer's wire shape, and the per-minute rule.

No IO here (no anyio, no httpx): the listener route (:mod:`._inquiry`), the client (:mod:`._client`) and the
dashboard (:mod:`._dashboard`) wrap these functions.

The rules (``gamepot-ccu-inquiry-api.txt`` and NOTES.md):

- Dates are ``YYYY-MM-DD`` exactly (ASCII digits, a real calendar day) in KST. A missing or empty date takes
  its default: ``oneDate`` today, ``twoDate`` yesterday, ``threeDate`` the day before yesterday.
- The key is checked first (``-1`` no ``x-api-key``, ``-2`` a key that is not the configured one), then the
  project id (``-6``), then the dates in the order of their codes (``threeDate`` ``-11``, ``twoDate`` ``-12``,
  ``oneDate`` ``-13``, as the sandbox does); the first failure answers. With one project and one key, a wrong
  key is "the dashboard's key and the header's key differ" (``-2``) and no key at all is "a key that is not on
  the dashboard" (``-1``).
- Rows are per minute, ``00:00``..``23:59`` (1440). Samples are taken once per grid period (120 s): a minute
  shows the sample of the slot it falls in; its value is the sum over server ids of their sample for that slot;
  a minute whose slot has no sample (not taken yet, or the process was down) is ``null``.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta, timezone

import msgspec

from .._exceptions import PlatformError, ProtocolError

__all__ = [
    "ERR_KEY_DELETED",
    "ERR_KEY_EXPIRED",
    "ERR_KEY_MISMATCH",
    "ERR_KEY_UNUSED",
    "ERR_ONE_DATE",
    "ERR_PROJECT_ID",
    "ERR_THREE_DATE",
    "ERR_TWO_DATE",
    "ERR_UNKNOWN_KEY",
    "MINUTES_PER_DAY",
    "STATUS_OK",
    "CcuAnswer",
    "CcuEdge",
    "CcuNode",
    "CcuResult",
    "CcuRow",
    "ErrorAnswer",
    "GamePotError",
    "HistorySample",
    "InquiryDates",
    "build_answer",
    "check_key",
    "check_project",
    "day_bounds",
    "decode_answer",
    "default_dates",
    "minute_label",
    "minute_values",
    "parse_date",
    "resolve_dates",
    "slot_sums",
]

STATUS_OK = 1
ERR_UNKNOWN_KEY = -1
ERR_KEY_MISMATCH = -2
ERR_KEY_DELETED = -3
ERR_KEY_UNUSED = -4
ERR_KEY_EXPIRED = -5
ERR_PROJECT_ID = -6
ERR_THREE_DATE = -11
ERR_TWO_DATE = -12
ERR_ONE_DATE = -13

MINUTES_PER_DAY = 1440
# KST, defined here rather than imported from _clock (which imports anyio): this module stays IO-free.
KST = timezone(timedelta(hours=9), "KST")
_DAY_S = 86_400

#: What each documented status means (used for messages; the platform's own message wins when it sends one).
MEANINGS: Mapping[int, str] = {
    ERR_UNKNOWN_KEY: "the x-api-key is not a key of this dashboard",
    ERR_KEY_MISMATCH: "the dashboard's key and the x-api-key header differ",
    ERR_KEY_DELETED: "the x-api-key was deleted from the dashboard",
    ERR_KEY_UNUSED: "the x-api-key is not in use on the dashboard",
    ERR_KEY_EXPIRED: "the x-api-key has expired",
    ERR_PROJECT_ID: "projectId was wrong.",
    ERR_THREE_DATE: "threeDate must be YYYY-MM-DD",
    ERR_TWO_DATE: "twoDate must be YYYY-MM-DD",
    ERR_ONE_DATE: "oneDate must be YYYY-MM-DD",
}

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class GamePotError(PlatformError):
    """A GamePot CCU inquiry answered (or must answer) with an error status.

    Raised by :class:`~gs_hooks.GamePotClient` for GamePot's documented errors, and by the validation
    functions here, which the listener route turns into the document's error body.

    Attributes:
        status: the GamePot status (``-1`` unknown key, ``-2`` key mismatch, ``-3`` deleted key, ``-4`` unused
            key, ``-5`` expired key, ``-6`` bad project id, ``-11``/``-12``/``-13`` bad
            ``threeDate``/``twoDate``/``oneDate``); also in ``code``.
    """

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__("gamepot", status, message)

    @property
    def is_key_error(self) -> bool:
        """The key was refused (``-1``..``-5``): fix ``x-api-key``."""
        return -5 <= self.status <= -1

    @property
    def is_date_error(self) -> bool:
        """A date was refused (``-11``..``-13``): send ``YYYY-MM-DD``."""
        return self.status in (ERR_ONE_DATE, ERR_TWO_DATE, ERR_THREE_DATE)


# -- wire shape -----------------------------------------------------------------------------------------------


class CcuNode(msgspec.Struct, frozen=True, rename="camel"):
    """``edges[].node``: one minute of the three dates."""

    created_at: str
    one: int | None
    two: int | None
    three: int | None


class CcuEdge(msgspec.Struct, frozen=True):
    """``edges[]``."""

    node: CcuNode


class CcuResult(msgspec.Struct, frozen=True, rename="camel"):
    """``result``."""

    total_count: int
    edges: list[CcuEdge]


class CcuAnswer(msgspec.Struct, frozen=True):
    """The success answer: ``{"status": 1, "result": {"totalCount": 1440, "edges": [...]}}``."""

    status: int
    result: CcuResult


class ErrorAnswer(msgspec.Struct, frozen=True):
    """The error answer: ``{"status": -6, "message": "projectId was wrong."}``."""

    status: int
    message: str


class _AnyAnswer(msgspec.Struct):
    status: int
    message: str | None = None
    result: CcuResult | None = None


# -- typed rows -------------------------------------------------------------------------------------------------


class CcuRow(msgspec.Struct, frozen=True, kw_only=True):
    """One minute of a CCU inquiry, as :meth:`GamePotClient.ccu` returns it.

    Attributes:
        time: ``HH:MM`` (the answer's ``createdAt``), KST.
        one / two / three: concurrent users on the first/second/third date at that minute, None where there
            was no sample.
    """

    time: str
    one: int | None
    two: int | None
    three: int | None

    @property
    def minute(self) -> int:
        """Minutes since midnight (``"01:30"`` → 90)."""
        hh, mm = self.time.split(":")
        return int(hh) * 60 + int(mm)


class HistorySample(msgspec.Struct, frozen=True, kw_only=True):
    """One CCU sample of the history.

    Attributes:
        at: epoch seconds of the grid instant the sample is for (its slot), not the send time.
        server_id: the server id it counts.
        users: the user count.
        state: delivery state (reporter's word: ``delivered``, ``pending``, ``refused``...), "" if unknown.
        result: last Hive result code of its delivery, None before any answer.
    """

    at: float
    server_id: str
    users: int
    state: str = ""
    result: int | None = None


class InquiryDates(msgspec.Struct, frozen=True):
    """The three dates of an inquiry (KST calendar days)."""

    one: date
    two: date
    three: date


# -- validation -------------------------------------------------------------------------------------------------


def parse_date(value: str, status: int, name: str) -> date:
    """Parse a strict ``YYYY-MM-DD`` date.

    Raises:
        GamePotError: with ``status`` when the value is not exactly ``YYYY-MM-DD`` or not a calendar day.
    """
    if _DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    shown = value if len(value) <= 40 else value[:40] + "…"
    raise GamePotError(status, f"{name} {shown!r} is not a date: only the YYYY-MM-DD format is possible")


def default_dates(today: date) -> InquiryDates:
    """The defaults: today and the two days before."""
    return InquiryDates(today, today - timedelta(days=1), today - timedelta(days=2))


def resolve_dates(query: Mapping[str, str], today: date) -> InquiryDates:
    """The inquiry's three dates from its query (missing or empty → default).

    Raises:
        GamePotError: ``-11``/``-12``/``-13`` for a bad ``threeDate``/``twoDate``/``oneDate``, checked in that
            order (the first bad one answers).
    """
    defaults = default_dates(today)
    out: dict[str, date] = {}
    for name, status, default in (
        ("threeDate", ERR_THREE_DATE, defaults.three),
        ("twoDate", ERR_TWO_DATE, defaults.two),
        ("oneDate", ERR_ONE_DATE, defaults.one),
    ):
        raw = query.get(name)
        out[name] = default if raw is None or raw == "" else parse_date(raw, status, name)
    return InquiryDates(out["oneDate"], out["twoDate"], out["threeDate"])


def check_key(given: str | None, expected: str) -> None:
    """Compare the ``x-api-key`` header with the configured key in constant time.

    Raises:
        GamePotError: ``-1`` when no key was sent, ``-2`` when it is not the configured key.
    """
    if not given:
        raise GamePotError(ERR_UNKNOWN_KEY, "no x-api-key header: send the key issued for this project")
    if not hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
        raise GamePotError(ERR_KEY_MISMATCH, "the x-api-key header is not the key of this project")


def check_project(given: str, expected: str) -> None:
    """Check the path's project id.

    Raises:
        GamePotError: ``-6`` ("projectId was wrong.") when it differs.
    """
    if given != expected:
        raise GamePotError(ERR_PROJECT_ID, "projectId was wrong.")


# -- the per-minute rule ------------------------------------------------------------------------------------------


def day_bounds(day: date) -> tuple[float, float]:
    """Epoch seconds of KST midnight starting ``day`` and of the next midnight."""
    start = datetime(day.year, day.month, day.day, tzinfo=KST).timestamp()
    return start, start + _DAY_S


def minute_label(minute: int) -> str:
    """``HH:MM`` for minutes since midnight."""
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _check_period(period_s: int) -> None:
    if period_s <= 0 or period_s % 60 or _DAY_S % period_s:
        raise ValueError(f"period must be a whole number of minutes dividing 24 h, got {period_s!r}")


def slot_sums(samples: Iterable[HistorySample], day: date, period_s: int) -> dict[int, int]:
    """Sum of users over server ids, per grid slot of ``day``.

    Args:
        samples: history samples (others days' samples are ignored).
        day: the KST calendar day.
        period_s: the grid period (a whole number of minutes dividing 24 h).

    Returns:
        slot index (``0`` = the slot starting at 00:00) → summed users, for the slots that have a sample.
        When a server id has more than one sample in a slot (the period changed), its latest one counts.
    """
    _check_period(period_s)
    start, end = day_bounds(day)
    latest: dict[tuple[int, str], tuple[float, int]] = {}
    for s in samples:
        if not start <= s.at < end:
            continue
        key = (int((s.at - start) // period_s), s.server_id)
        seen = latest.get(key)
        if seen is None or s.at >= seen[0]:
            latest[key] = (s.at, s.users)
    sums: dict[int, int] = {}
    for (slot, _), (_, users) in latest.items():
        sums[slot] = sums.get(slot, 0) + users
    return sums


def minute_values(samples: Iterable[HistorySample], day: date, period_s: int) -> list[int | None]:
    """The 1440 per-minute values of ``day``: the sum of the minute's slot, or None without a sample."""
    sums = slot_sums(samples, day, period_s)
    per_slot = period_s // 60
    return [sums.get(m // per_slot) for m in range(MINUTES_PER_DAY)]


def build_answer(one: Sequence[int | None], two: Sequence[int | None], three: Sequence[int | None]) -> CcuAnswer:
    """The success answer from three per-minute series (1440 values each)."""
    if not len(one) == len(two) == len(three) == MINUTES_PER_DAY:
        raise ValueError("each series must have 1440 per-minute values")
    edges = [CcuEdge(CcuNode(minute_label(m), one[m], two[m], three[m])) for m in range(MINUTES_PER_DAY)]
    return CcuAnswer(STATUS_OK, CcuResult(len(edges), edges))


# -- client side ----------------------------------------------------------------------------------------------------

_answer_decoder = msgspec.json.Decoder(_AnyAnswer)


def decode_answer(body: bytes) -> list[CcuRow]:
    """Read an inquiry answer (the client side).

    Returns:
        The rows, in the answer's order.

    Raises:
        GamePotError: the answer's status is not 1 (carries the status and GamePot's message).
        ProtocolError: the body is not the document's shape.
    """
    try:
        answer = _answer_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"GamePot CCU answer is not the documented JSON shape: {exc}") from exc
    if answer.status != STATUS_OK:
        message = answer.message or MEANINGS.get(answer.status, "undocumented error status")
        raise GamePotError(answer.status, message)
    if answer.result is None:
        raise ProtocolError("GamePot CCU answer has status 1 but no result")
    rows: list[CcuRow] = []
    for edge in answer.result.edges:
        node = edge.node
        if not re.fullmatch(r"[0-9]{2}:[0-9]{2}", node.created_at):
            raise ProtocolError(f"GamePot CCU answer has a createdAt that is not HH:MM: {node.created_at[:20]!r}")
        rows.append(CcuRow(time=node.created_at, one=node.one, two=node.two, three=node.three))
    return rows
