"""The Hive (Com2uS) CCU collector: ``POST /modules/gameuser/currentuser/``.

Strategy: a pure part (:func:`extract_payload`, :func:`parse_sample`, :func:`encode_result`) turns a request
body into a checked sample or a result code, written from the document (hive-ccu-api.txt) and NOTES.md, and
independent of the client code under test. :class:`CcuCollector` holds the state (game keys, saved samples,
the reqkey index) and applies the stateful rules (302, 101, 301) in a synchronous core.

Checks, in order (the first failing one answers):

====  ==========================================================================================
200   no input: empty body, or an empty ``value`` field
203   not base64 (strict alphabet; line breaks tolerated; a raw ``+`` in a form field becomes a space
      and fails here, so URL-encode the base64 text as the document says)
204   not well-formed XML
201   a required child (``game``, ``server``, ``reqkey``, ``date``, ``user``) of the root is missing or empty
202   wrong format: ``date`` not ``YYYY-MM-DD HH:MM:SS``, seconds not ``00`` or not on the collector's KST grid
      (120 s period → even minutes), ``server`` not 1–20 letters/digits, ``user`` not a non-negative integer
      (at most 2147483647), ``reqkey`` not 1–64 visible ASCII characters
302   ``game`` is not a registered game key
101   ``reqkey`` was already saved (nothing is saved again; counted in ``duplicate_requests``)
301   sum rule, from the document's example (server01 = 100, server02 = 0, and server01 + server02 equals
      server01): the sample's ``user`` is above 0, other servers already saved a sample for the same game and
      date, and they all reported 0, so the sum over the servers equals this sample alone. Deterministic
      for a given arrival order; switch it off with ``sum_check=False``.
100   saved
====  ==========================================================================================

300 (DB error) is never produced by the collector itself: inject it with a ``result`` fault on route ``ccu``.
Every answer is HTTP 200 with a base64 body of ``<?xml ...?><response><result>CODE</result></response>``.
The root element of the request XML may have any name (NOTES: it is a client setting).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import parse_qs

from lxml import etree

from .._clock import KST, Clock, format_kst, grid_slot
from ..http._app import Request, Response

__all__ = [
    "CCU_FIELDS",
    "CcuAttempt",
    "CcuCollector",
    "CcuSample",
    "ParsedSample",
    "encode_result",
    "extract_payload",
    "parse_sample",
]

CCU_FIELDS = ("game", "server", "reqkey", "date", "user")
RESULT_TEXT = {
    100: "saved",
    101: "duplicate reqkey",
    200: "no input data",
    201: "required data missing",
    202: "wrong format",
    203: "not base64",
    204: "not XML",
    300: "DB error",
    301: "CCU equals the sum over servers",
    302: "no game key",
}
_SERVER_RE = re.compile(r"[A-Za-z0-9]{1,20}")
_DATE_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})")
_USER_RE = re.compile(r"[0-9]{1,10}")
_REQKEY_RE = re.compile(r"[\x21-\x7e]{1,64}")
_USER_MAX = 2_147_483_647

SendMethod = Literal["form", "body"]


@dataclass(frozen=True, slots=True)
class ParsedSample:
    """The five fields of a well-formed request (text as received, user as int, date as epoch seconds)."""

    game: str
    server: str
    reqkey: str
    date: str
    user: int
    slot: float


@dataclass(frozen=True, slots=True)
class CcuSample:
    """A saved sample.

    Attributes:
        game / server / reqkey / date / user: the request's fields (``date`` as sent, KST).
        slot: ``date`` as epoch seconds.
        received_at: sandbox clock time of arrival (epoch seconds).
        method: ``form`` (field ``value``) or ``body`` (raw base64 body).
    """

    game: str
    server: str
    reqkey: str
    date: str
    user: int
    slot: float
    received_at: float
    method: SendMethod

    def to_json(self) -> dict[str, Any]:
        """A JSON-able view (``received_kst`` added)."""
        return {
            "game": self.game,
            "server": self.server,
            "reqkey": self.reqkey,
            "date": self.date,
            "user": self.user,
            "slot": self.slot,
            "received_at": self.received_at,
            "received_kst": format_kst(self.received_at),
            "lateness_s": self.received_at - self.slot,
            "method": self.method,
        }


@dataclass(frozen=True, slots=True)
class CcuAttempt:
    """One request the collector answered (every result code, injected faults included).

    Attributes:
        received_at: sandbox clock time.
        result: the result code answered.
        method: how the payload was sent.
        reqkey / game / server / date: the fields, when they could be read.
        injected: True when a fault rule chose the answer.
    """

    received_at: float
    result: int
    method: SendMethod
    reqkey: str | None = None
    game: str | None = None
    server: str | None = None
    date: str | None = None
    injected: bool = False

    def to_json(self) -> dict[str, Any]:
        """A JSON-able view."""
        return {
            "received_at": self.received_at,
            "result": self.result,
            "method": self.method,
            "reqkey": self.reqkey,
            "game": self.game,
            "server": self.server,
            "date": self.date,
            "injected": self.injected,
        }


def extract_payload(body: bytes, content_type: str) -> tuple[SendMethod, bytes]:
    """The base64 text of a request and how it was sent.

    A urlencoded body with a ``value`` field is the form method; anything else (including a raw base64 body
    that a client labelled as a form, as ``curl -d`` does) is the body method.
    """
    if content_type == "application/x-www-form-urlencoded" or body.startswith(b"value="):
        try:
            text = body.decode("ascii")
        except UnicodeDecodeError:
            return "body", body
        fields = parse_qs(text, keep_blank_values=True)
        if "value" in fields:
            return "form", fields["value"][0].encode("latin-1", "replace")
    return "body", body


_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _decode(payload: bytes) -> bytes | int:
    text = payload.strip().replace(b"\r\n", b"").replace(b"\n", b"")
    if not text:
        return 200
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return 203


def _fields(raw: bytes) -> dict[str, str] | int:
    try:
        root = etree.fromstring(raw, parser=_PARSER)
    except (etree.XMLSyntaxError, ValueError):
        return 204
    out: dict[str, str] = {}
    for name in CCU_FIELDS:
        el = root.find(name)
        if el is None or el.text is None or not el.text.strip():
            continue
        out[name] = el.text
    return out


def parse_sample(payload: bytes, period_s: float) -> ParsedSample | tuple[int, dict[str, str]]:
    """Check a base64 payload (stateless checks: 200, 203, 204, 201, 202).

    Returns:
        the sample, or (result code, whatever fields could be read).
    """
    raw = _decode(payload)
    if isinstance(raw, int):
        return raw, {}
    fields = _fields(raw)
    if isinstance(fields, int):
        return fields, {}
    if any(name not in fields for name in CCU_FIELDS):
        return 201, fields
    server, reqkey, date, user = fields["server"], fields["reqkey"], fields["date"], fields["user"]
    if not _SERVER_RE.fullmatch(server) or not _REQKEY_RE.fullmatch(reqkey) or not _USER_RE.fullmatch(user):
        return 202, fields
    if int(user) > _USER_MAX:
        return 202, fields
    m = _DATE_RE.fullmatch(date)
    if m is None or m.group(6) != "00":
        return 202, fields
    try:
        y, mo, d, h, mi = (int(g) for g in m.groups()[:5])
        moment = datetime(y, mo, d, h, mi, tzinfo=KST)
    except ValueError:
        return 202, fields
    slot = moment.timestamp()
    if grid_slot(slot, period_s).timestamp() != slot:
        return 202, fields
    return ParsedSample(fields["game"], server, reqkey, date, int(user), slot)


def encode_result(code: int) -> bytes:
    """The collector's answer: base64 of ``<?xml ...?><response><result>CODE</result></response>``."""
    xml = f'<?xml version="1.0" encoding="utf-8"?>\n<response><result>{code}</result></response>'
    return base64.b64encode(xml.encode("utf-8"))


@dataclass(slots=True)
class CcuCollector:
    """The collector's state and rules.

    Args:
        clock: the sandbox clock (arrival times).
        period_s: the grid period dates must sit on (120 → even minutes, 60 → every minute).
        game_keys: registered game keys (others get 302).
        sum_check: apply the 301 sum rule.

    Attributes:
        samples: saved samples, in arrival order.
        attempts: every answered request.
        duplicate_requests: requests answered 101.
        result_counts: how many times each result code was answered.
    """

    clock: Clock
    period_s: int = 120
    game_keys: set[str] = field(default_factory=lambda: {"sandbox_game"})
    sum_check: bool = True
    samples: list[CcuSample] = field(default_factory=list)
    attempts: list[CcuAttempt] = field(default_factory=list)
    duplicate_requests: int = 0
    result_counts: Counter[int] = field(default_factory=Counter)
    _by_reqkey: dict[str, CcuSample] = field(default_factory=dict)
    _by_slot: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.period_s <= 0 or 3600 % self.period_s or self.period_s % 60:
            raise ValueError(f"CCU period must be a whole number of minutes dividing an hour, got {self.period_s}")

    @property
    def duplicates_saved(self) -> int:
        """Samples saved with a reqkey that was already saved (must stay 0)."""
        return len(self.samples) - len({s.reqkey for s in self.samples})

    def set_game_keys(self, keys: Iterable[str]) -> None:
        """Replace the registered game keys."""
        self.game_keys = set(keys)

    def reset_nowait(self) -> None:
        """Forget every sample, attempt and counter (game keys stay)."""
        self.samples.clear()
        self.attempts.clear()
        self.duplicate_requests = 0
        self.result_counts.clear()
        self._by_reqkey.clear()
        self._by_slot.clear()

    def samples_for(self, game: str | None = None, server: str | None = None) -> list[CcuSample]:
        """Saved samples, optionally of one game and/or server id."""
        return [s for s in self.samples if (game is None or s.game == game) and (server is None or s.server == server)]

    def totals(self, games: Iterable[str] | None = None) -> dict[float, int]:
        """Sum over server ids per slot (epoch seconds), for the given games (None = all)."""
        wanted = None if games is None else set(games)
        out: dict[float, int] = {}
        latest: dict[tuple[str, str, float], int] = {}
        for s in self.samples:
            if wanted is None or s.game in wanted:
                latest[(s.game, s.server, s.slot)] = s.user
        for (_, _, slot), user in latest.items():
            out[slot] = out.get(slot, 0) + user
        return out

    def submit_nowait(self, body: bytes, content_type: str) -> int:
        """Process one request body; returns the result code (and saves the sample on 100)."""
        now = self.clock.time()
        method, payload = extract_payload(body, content_type)
        parsed = parse_sample(payload, self.period_s)
        if isinstance(parsed, tuple):
            code, fields = parsed
            return self._record(now, code, method, fields)
        fields = {"game": parsed.game, "server": parsed.server, "reqkey": parsed.reqkey, "date": parsed.date}
        if parsed.game not in self.game_keys:
            return self._record(now, 302, method, fields)
        if parsed.reqkey in self._by_reqkey:
            self.duplicate_requests += 1
            return self._record(now, 101, method, fields)
        slot_users = self._by_slot.setdefault((parsed.game, parsed.date), {})
        others = {srv: u for srv, u in slot_users.items() if srv != parsed.server}
        if self.sum_check and parsed.user > 0 and others and sum(others.values()) == 0:
            return self._record(now, 301, method, fields)
        sample = CcuSample(
            parsed.game, parsed.server, parsed.reqkey, parsed.date, parsed.user, parsed.slot, now, method
        )
        self.samples.append(sample)
        self._by_reqkey[sample.reqkey] = sample
        slot_users[sample.server] = sample.user
        return self._record(now, 100, method, fields)

    def _record(self, now: float, code: int, method: SendMethod, fields: dict[str, str], injected: bool = False) -> int:
        self.attempts.append(
            CcuAttempt(
                now,
                code,
                method,
                fields.get("reqkey"),
                fields.get("game"),
                fields.get("server"),
                fields.get("date"),
                injected,
            )
        )
        self.result_counts[code] += 1
        return code

    async def handle(self, request: Request) -> Response:
        """The HTTP handler of the collector route."""
        code = self.submit_nowait(request.body, request.content_type)
        return _answer(code)

    async def answer_injected(self, request: Request, code: int) -> Response:
        """Answer a fault-injected result code (e.g. 300 DB error) without saving anything."""
        method, payload = extract_payload(request.body, request.content_type)
        parsed = parse_sample(payload, self.period_s)
        if isinstance(parsed, tuple):
            fields = parsed[1]
        else:
            fields = {"game": parsed.game, "server": parsed.server, "reqkey": parsed.reqkey, "date": parsed.date}
        self._record(self.clock.time(), code, method, fields, injected=True)
        return _answer(code)

    def stats(self) -> dict[str, Any]:
        """Counters as JSON."""
        return {
            "period_s": self.period_s,
            "game_keys": sorted(self.game_keys),
            "sum_check": self.sum_check,
            "samples": len(self.samples),
            "attempts": len(self.attempts),
            "duplicate_requests": self.duplicate_requests,
            "duplicates_saved": self.duplicates_saved,
            "result_counts": {str(k): v for k, v in sorted(self.result_counts.items())},
        }


def _answer(code: int) -> Response:
    return Response(200, encode_result(code), [("content-type", "text/plain; charset=utf-8")])
