"""The pure JSON checks: nesting bounded before decoding, repeated keys found (``gs_hooks._json``)."""

from __future__ import annotations

import ast
import contextlib
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gs_hooks
import gs_hooks._json
from gs_hooks._json import MAX_JSON_DEPTH, check_json_depth, duplicate_key

# Strings full of what a naive scan would miscount: brackets, quotes, backslashes, colons, escapes.
tricky_text = st.text(alphabet=st.sampled_from(list('[]{}":\\,ab \u00e9\u2028\x00')), max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | tricky_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky_text, inner, max_size=3),
    max_leaves=30,
)


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def too_deep(data: bytes, max_depth: int) -> bool:
    try:
        check_json_depth(data, max_depth)
    except gs_hooks.ProtocolError:
        return True
    return False


def test_the_module_is_pure_and_bottom_layer() -> None:
    tree = ast.parse(Path(gs_hooks._json.__file__).read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(("." * node.level) + (node.module or ""))
    assert imported <= {"__future__", "json", "re", "typing", "msgspec", "._exceptions"}, imported


@settings(max_examples=300, deadline=None)
@given(value=json_values, ascii_only=st.booleans(), limit=st.integers(1, 6))
def test_the_scan_measures_the_depth_exactly(value: Any, ascii_only: bool, limit: int) -> None:
    data = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert too_deep(data, limit) == (depth(value) > limit), data


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=80) | json_values.map(lambda v: json.dumps(v).encode()[:-1]))
def test_any_bytes_get_a_verdict_and_an_accepted_text_never_recurses_too_far(data: bytes) -> None:
    if too_deep(data, 3):
        return
    with contextlib.suppress(msgspec.DecodeError):  # not JSON is fine: a RecursionError is not
        msgspec.json.decode(data)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"[" * 2000 + b"]" * 2000, id="arrays-2000"),
        pytest.param(b'{"a":' * 2000 + b"1" + b"}" * 2000, id="objects-2000"),
        pytest.param(b"[" * 2000, id="unclosed-2000"),
        pytest.param(b'["]",' * 40 + b"1" + b"]" * 40, id="brackets-in-strings-hide-nothing"),
        pytest.param(b'["\\"]",' * 40 + b"1" + b"]" * 40, id="escaped-quotes-hide-nothing"),
        pytest.param(b'{"cs_code":"a","x":' + b"[" * 2000 + b"]" * 2000 + b"}", id="webstore-shape"),
    ],
)
def test_deep_texts_are_refused_before_the_decoder_recurses(data: bytes) -> None:
    with pytest.raises(gs_hooks.ProtocolError, match=f"deeper than {MAX_JSON_DEPTH} levels"):
        check_json_depth(data)


@pytest.mark.parametrize(
    "data",
    [
        b"[" * 32 + b"]" * 32,
        b'{"a":"' + b"[" * 100 + b'"}',
        b'["' + b"\\\\" * 3 + b'", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["]',
        b"[]" * 10_000,
    ],
)
def test_shallow_texts_pass(data: bytes) -> None:
    check_json_depth(data)


def _text_with_pairs(pairs: list[tuple[str, int]], escape: bool) -> bytes:
    def key(k: str) -> str:
        if escape and k:  # the same key written with a \u escape: decoders read it as the same name
            return f'"\\u{ord(k[0]):04x}{json.dumps(k[1:])[1:-1]}"'
        return json.dumps(k)

    inner = ",".join(f"{key(k)}:{v}" for k, v in pairs)
    return ('{"outer":[{' + inner + '}], "s": "a:b"}').encode()


@settings(max_examples=300, deadline=None)
@given(pairs=st.lists(st.tuples(tricky_text, st.integers(0, 9)), max_size=5), escape=st.booleans())
def test_repeated_keys_are_found_however_they_are_written(pairs: list[tuple[str, int]], escape: bool) -> None:
    data = _text_with_pairs(pairs, escape)
    check_json_depth(data)
    names = [k for k, _ in pairs]
    repeated = {k for k in names if names.count(k) > 1}
    found = duplicate_key(data)
    if repeated:
        assert found in repeated
    else:
        assert found is None


def test_repeats_in_different_objects_are_fine() -> None:
    assert duplicate_key(b'{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}') is None
    assert duplicate_key(b'{"game_index":1,"game_index":2}') == "game_index"
    assert duplicate_key(b'{"game_index":1,"game\\u005findex":2}') == "game_index"
