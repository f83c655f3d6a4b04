"""The Hive/Com2uS CCU API message family, pure: no IO, no anyio, no httpx.

A sample is five fields (``game``, ``server``, ``reqkey``, ``date``, ``user``) put in an XML document
(``<?xml version="1.0" encoding="utf-8"?>`` + a configurable root element with the five children, in that
order), encoded to base64 and POSTed either as the form field ``value`` or as the raw body. The answer is base64
XML holding a ``result`` element somewhere; :func:`classify` maps its code to what the reporter does next
(see ``NOTES.md``):

====================  =============================================================
100, 101              ``delivered`` (saved, or already saved under the same reqkey)
300, transport error  ``retry`` with backoff, keeping date and reqkey
200–204, 301          ``our_fault``: kept as refused, reported, not retried
302                   ``config_fault``: kept as refused, reported, not retried
====================  =============================================================

Unknown codes are retried (keeping the reqkey makes a resend harmless) and logged by the reporter.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import re
from urllib.parse import quote, unquote_to_bytes

import msgspec
from lxml import etree

from .._exceptions import ProtocolError

__all__ = [
    "CODE_MESSAGES",
    "CcuOutcome",
    "CcuSample",
    "build_xml",
    "classify",
    "decode_request",
    "encode_request",
    "make_reqkey",
    "parse_response",
]

XML_DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>'

#: Result codes of the document and their meaning.
CODE_MESSAGES: dict[int, str] = {
    100: "CCU data saved",
    101: "not processed: duplicate request (same reqkey)",
    200: "parameter error: no input data",
    201: "parameter error: required data missing",
    202: "parameter error: input data in a wrong format",
    203: "base64 encoding error",
    204: "not well-formed XML",
    300: "collector DB error",
    301: "CCU data equals the sum of the servers' data",
    302: "no such game key",
}


class CcuOutcome(enum.Enum):
    """What a send's result means for the sample."""

    DELIVERED = "delivered"
    """The collector has the sample (100 saved, 101 duplicate)."""
    RETRY = "retry"
    """Transient (300, transport error, non-2xx, unreadable answer): resend later with the same reqkey."""
    OUR_FAULT = "our_fault"
    """The collector refused the data (200–204, 301): resending the same bytes cannot help."""
    CONFIG_FAULT = "config_fault"
    """The collector refused our configuration (302 unknown game key)."""


_OUTCOMES: dict[int, CcuOutcome] = {
    100: CcuOutcome.DELIVERED,
    101: CcuOutcome.DELIVERED,
    200: CcuOutcome.OUR_FAULT,
    201: CcuOutcome.OUR_FAULT,
    202: CcuOutcome.OUR_FAULT,
    203: CcuOutcome.OUR_FAULT,
    204: CcuOutcome.OUR_FAULT,
    300: CcuOutcome.RETRY,
    301: CcuOutcome.OUR_FAULT,
    302: CcuOutcome.CONFIG_FAULT,
}


def classify(code: int | None) -> CcuOutcome:
    """The outcome of a result code; ``None`` (no readable answer) and unknown codes mean :attr:`~CcuOutcome.RETRY`."""
    if code is None:
        return CcuOutcome.RETRY
    return _OUTCOMES.get(code, CcuOutcome.RETRY)


_DATE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
_SERVER = re.compile(r"[A-Za-z0-9]{1,20}")


class CcuSample(msgspec.Struct, frozen=True, kw_only=True):
    """One CCU sample as the collector receives it.

    Attributes:
        game: the Hive game key (e.g. ``tinyfarm_KR``).
        server: the server id (1–20 letters/digits).
        date: the KST grid instant the sample is for, ``YYYY-MM-DD HH:MM:SS``.
        user: the number of concurrent users.
        reqkey: MD5 hex of ``game|server|date`` (:func:`make_reqkey`).
    """

    game: str
    server: str
    date: str
    user: int
    reqkey: str

    @classmethod
    def create(cls, *, game: str, server: str, date: str, user: int) -> CcuSample:
        """A sample with its deterministic reqkey.

        Raises:
            ValueError: a field is not allowed (server id, date format, negative count).
        """
        if not _SERVER.fullmatch(server):
            raise ValueError(f"server id {server!r} is not allowed: 1–20 letters/digits")
        if not _DATE.fullmatch(date):
            raise ValueError(f"date {date!r} is not YYYY-MM-DD HH:MM:SS")
        if user < 0:
            raise ValueError(f"user count {user} is negative")
        return cls(game=game, server=server, date=date, user=user, reqkey=make_reqkey(game, server, date))


def make_reqkey(game: str, server: str, date: str) -> str:
    """MD5 hex of ``game|server|date``: the same sample always carries the same key, so resends are deduplicated."""
    return hashlib.md5(f"{game}|{server}|{date}".encode(), usedforsecurity=False).hexdigest()


def build_xml(sample: CcuSample, root: str = "currentuser") -> bytes:
    """The XML document of a sample: declaration, ``root``, then game, server, reqkey, date, user."""
    element = etree.Element(root)
    for name, value in (
        ("game", sample.game),
        ("server", sample.server),
        ("reqkey", sample.reqkey),
        ("date", sample.date),
        ("user", str(sample.user)),
    ):
        etree.SubElement(element, name).text = value
    return XML_DECLARATION + etree.tostring(element, encoding="utf-8")


def encode_request(sample: CcuSample, *, root: str = "currentuser", method: str = "form") -> tuple[bytes, str]:
    """The POST body and content type for a sample.

    Args:
        sample: the sample.
        root: XML root element name.
        method: ``form`` (``value=<base64>``, URL-encoded) or ``body`` (the base64 text alone).

    Returns:
        ``(body, content_type)``.
    """
    b64 = base64.b64encode(build_xml(sample, root))
    if method == "form":
        return b"value=" + quote(b64, safe="").encode("ascii"), "application/x-www-form-urlencoded"
    if method == "body":
        return b64, "text/plain; charset=us-ascii"
    raise ValueError(f"send method {method!r} is not allowed; use form or body")


_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _b64(data: bytes) -> bytes:
    try:
        return base64.b64decode(b"".join(data.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError(f"CCU: not base64 ({exc})") from exc


def _xml(data: bytes, what: str) -> etree._Element:
    try:
        return etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise ProtocolError(f"CCU {what}: not well-formed XML ({exc})") from exc


def parse_response(body: bytes) -> int:
    """The ``result`` code of a collector answer (base64 XML; plain XML is accepted too).

    Raises:
        ProtocolError: the answer is not base64/XML or holds no integer ``result`` element.
    """
    data = body.strip()
    if not data:
        raise ProtocolError("CCU answer: empty body")
    xml = data if data.startswith(b"<") else _b64(data)
    tree = _xml(xml, "answer")
    found = tree.xpath("//*[local-name()='result']")
    if not isinstance(found, list) or not found or not isinstance(found[0], etree._Element):
        raise ProtocolError("CCU answer: no result element")
    text = (found[0].text or "").strip()
    if not text.isdigit():
        raise ProtocolError(f"CCU answer: result {text[:20]!r} is not a number")
    return int(text)


def decode_request(body: bytes, content_type: str = "") -> CcuSample:
    """Read a sample from a POST body in either sending method (the inverse of :func:`encode_request`).

    Raises:
        ProtocolError: not base64, not XML, a missing child, or a non-integer ``user``.
    """
    data = body.strip()
    if data.startswith(b"value="):
        # base64 has no spaces: a literal "+" (a client that did not URL-encode) stays "+".
        data = unquote_to_bytes(data[len(b"value=") :].split(b"&", 1)[0])
    tree = _xml(_b64(data), "request")
    fields: dict[str, str] = {}
    for name in ("game", "server", "reqkey", "date", "user"):
        child = tree.find(name)
        if child is None:
            raise ProtocolError(f"CCU request: no {name} element")
        fields[name] = (child.text or "").strip()
    if not fields["user"].isdigit():
        raise ProtocolError(f"CCU request: user {fields['user'][:20]!r} is not a count")
    return CcuSample(
        game=fields["game"],
        server=fields["server"],
        date=fields["date"],
        user=int(fields["user"]),
        reqkey=fields["reqkey"],
    )
