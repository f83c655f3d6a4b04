"""Checking a game server's web-store profile answer against hive-webstore-profile-api.txt (pure)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["validate_webstore_answer"]

_RESULT_CODES = (200, 204, 500)


def _type_name(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _need(obj: Mapping[str, Any], key: str, path: str, kind: type, out: list[str]) -> Any:
    """The value at ``key`` if present with the right JSON type, else None (and a violation)."""
    if key not in obj:
        out.append(f"{path}.{key}: required field missing")
        return None
    v = obj[key]
    ok = isinstance(v, kind) and not (kind is int and isinstance(v, bool))
    if not ok:
        want = {str: "string", int: "integer", list: "array", dict: "object"}[kind]
        out.append(f"{path}.{key}: must be {want}, got {_type_name(v)}")
        return None
    return v


def _string_field(obj: Mapping[str, Any], key: str, path: str, out: list[str]) -> str | None:
    v = _need(obj, key, path, str, out)
    if v is not None and v == "":
        out.append(f'{path}.{key}: empty string (send the documented default, e.g. "-" or "0")')
    return v  # type: ignore[no-any-return]


def _objects(obj: Mapping[str, Any], key: str, path: str, out: list[str], what: str) -> list[dict[str, Any]]:
    arr = _need(obj, key, path, list, out)
    if arr is None:
        return []
    if not arr:
        out.append(f"{path}.{key}: empty array (an unused {what} is sent as one default entry)")
    items: list[dict[str, Any]] = []
    for i, v in enumerate(arr):
        if isinstance(v, dict):
            items.append(v)
        else:
            out.append(f"{path}.{key}[{i}]: must be object, got {_type_name(v)}")
            items.append({})
    return items


def _check_pair(id_value: str | None, name_value: str | None, id_default: str, path: str, out: list[str]) -> None:
    """An unused level is sent as (id default, "-") together; one without the other is inconsistent."""
    if id_value is None or name_value is None:
        return
    if (id_value == id_default) != (name_value == "-"):
        out.append(
            f'{path}: id "{id_value}" and name "{name_value}" disagree: an unused level is '
            f'id "{id_default}" with name "-", a used one has neither default'
        )


def validate_webstore_answer(http_status: int, content_type: str, body: bytes, cs_code: str) -> tuple[Any, list[str]]:
    """Check a game server's ``/webstore-profile`` answer against the document.

    Checks: HTTP 200 with a JSON object; ``result_code`` an integer in 200/204/500; ``result_message`` and
    ``cs_code`` strings (``cs_code`` echoing the request's); ``data`` an array, ``[]`` for 204 and non-empty
    for 200; every server has string ``server_id``/``server_name`` and a non-empty ``channels`` array; every
    channel string ``channel_id``/``channel_name`` (unused: ``"0"``/``"-"``) and a non-empty ``characters``
    array; every character string ``character_id``/``character_name`` (unused: ``"-"``/``"-"``) and a string
    ``character_level`` of digits (unavailable: ``"0"``). Ids and levels must be strings, not numbers.

    Returns:
        (the parsed JSON or None, the list of violations; empty when the answer conforms).
    """
    out: list[str] = []
    if http_status != 200:
        out.append(f"HTTP status {http_status}: the answer must be HTTP 200 with result_code in the body")
    if "json" not in content_type:
        out.append(f"content-type {content_type or '(none)'!r}: must be application/json")
    try:
        doc = json.loads(body)
    except ValueError:
        out.append("body is not valid JSON")
        return None, out
    if not isinstance(doc, dict):
        out.append(f"$: must be object, got {_type_name(doc)}")
        return doc, out
    code = _need(doc, "result_code", "$", int, out)
    if code is not None and code not in _RESULT_CODES:
        out.append(f"$.result_code: {code} is not a documented code (200, 204, 500)")
    _need(doc, "result_message", "$", str, out)
    echoed = _need(doc, "cs_code", "$", str, out)
    if echoed is not None and echoed != cs_code:
        out.append(f"$.cs_code: {echoed!r} does not echo the request's cs_code {cs_code!r}")
    data = _need(doc, "data", "$", list, out)
    if data is None:
        return doc, out
    if code == 204 and data:
        out.append("$.data: must be [] when result_code is 204 (no user information)")
    if code == 200 and not data:
        out.append("$.data: empty with result_code 200: answer 204 when there is no user information")
    for si, server in enumerate(data):
        _check_server(server, f"$.data[{si}]", out)
    return doc, out


def _check_server(server: Any, spath: str, out: list[str]) -> None:
    """One ``data[]`` entry: its ids and names, its channels and their characters."""
    if not isinstance(server, dict):
        out.append(f"{spath}: must be object, got {_type_name(server)}")
        return
    _string_field(server, "server_id", spath, out)
    _string_field(server, "server_name", spath, out)
    for ci, channel in enumerate(_objects(server, "channels", spath, out, "channel")):
        cpath = f"{spath}.channels[{ci}]"
        if not channel:
            continue
        cid = _string_field(channel, "channel_id", cpath, out)
        cname = _string_field(channel, "channel_name", cpath, out)
        _check_pair(cid, cname, "0", cpath, out)
        for ki, character in enumerate(_objects(channel, "characters", cpath, out, "character")):
            kpath = f"{cpath}.characters[{ki}]"
            if not character:
                continue
            kid = _string_field(character, "character_id", kpath, out)
            kname = _string_field(character, "character_name", kpath, out)
            _check_pair(kid, kname, "-", kpath, out)
            level = _string_field(character, "character_level", kpath, out)
            if level and not level.isdigit():
                out.append(f'{kpath}.character_level: {level!r} is not a number as a string ("0" if unknown)')
