"""The fleet's pure wire format: keys, entries, cursors, rows, owners, and the decisions over them."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys

import pytest

from gs_hooks.fleet import _keys, _lua, _maintenance_protocol
from gs_hooks.fleet import _protocol as p
from gs_hooks.fleet._keys import Keys, make_process_id


def _imports(module: object) -> set[str]:
    tree = ast.parse(inspect.getsource(module))  # type: ignore[arg-type]
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            imported.add("." + (node.module or ""))
    return imported


def test_protocol_modules_import_no_io_library() -> None:
    assert _imports(p) == {"__future__", "collections", "msgspec", "._keys", "._maintenance_protocol"}
    # the maintenance result carries the watcher's own (pure) window struct; KST names the +09:00 offset
    assert _imports(_maintenance_protocol) == {
        "__future__",
        "datetime",
        "msgspec",
        "._time",
        ".gamebase._maintenance_state",
    }
    assert _imports(_lua) == {"__future__", "hashlib"}
    assert _imports(_keys) == {"__future__", "re"}


def test_importing_the_fleet_package_does_not_import_redis() -> None:
    code = "import sys, gs_hooks.fleet; print('redis' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_keys_live_under_prefix_and_game() -> None:
    k = Keys("gs_hooks", "tinyfarm_KR")
    assert k.epoch == "gs_hooks:tinyfarm_KR:epoch"
    assert k.member("h/1/ab") == "gs_hooks:tinyfarm_KR:member:h/1/ab"
    assert k.inbox("h/1/ab") == k.inbox_prefix + "h/1/ab"
    assert k.owner("7101") == "gs_hooks:tinyfarm_KR:owner:7101"
    assert k.ccu_reports(1_700_000_000_000) == "gs_hooks:tinyfarm_KR:ccu:r:1700000000000"
    assert k.seq(k.bans) == k.bans_seq
    for bad in ("a:b", "", "x y", "a" * 65):
        with pytest.raises(ValueError, match="must be 1-64"):
            Keys(bad, "g")


def test_process_id_has_no_separator() -> None:
    pid = make_process_id("host:name|with stuff", 42, "abcd1234")
    assert "|" not in pid and ":" not in pid and " " not in pid
    assert pid.endswith("/42/abcd1234")


def test_entry_decoding_and_malformed_entries() -> None:
    e = p.decode_entry(b"1-0", {b"s": b"3", b"o": b"apply", b"p": b"pid", b"e": b"ev", b"b": b"\x90"})
    assert (e.id, e.seq, e.op, e.origin, e.event, e.body) == ("1-0", 3, "apply", "pid", "ev", b"\x90")
    with pytest.raises(ValueError, match="not a gs_hooks entry"):
        p.decode_entry(b"1-0", {b"x": b"1"})


def test_cursor_round_trip_and_gap_rule() -> None:
    c = p.Cursor(epoch="e1", last_id="5-0", seq=7)
    assert p.decode_cursor(p.encode_cursor(c)) == c
    with pytest.raises(ValueError, match="cursor"):
        p.decode_cursor(b"nonsense")

    def entry(seq: int) -> p.StreamEntry:
        return p.StreamEntry(id="9-0", seq=seq, op="apply", origin="x", event="e", body=b"")

    assert not p.gap(c, entry(8))
    assert p.gap(c, entry(9))  # entry 8 is gone (trimmed)
    assert p.gap(c, entry(1))  # the counter restarted: Redis lost data


def test_ban_rows_round_trip() -> None:
    rows = [p.BanRow("hive", "7101", "permanent", 1.5, None, "m"), p.BanRow("api", "x", "temporary", 1, 2, "", 3.0)]
    assert p.decode_rows(p.encode_rows(rows)) == rows
    assert p.decode_row(p.encode_row(rows[0])) == rows[0]
    assert p.ban_field("hive", "7101") == "hive\x1f7101"
    with pytest.raises(ValueError, match="not a ban batch"):
        p.decode_rows(b"\xc1")


def test_owner_value_round_trip_even_with_separator_in_session() -> None:
    o = p.Owner("h/1/ab", "12|3", 1700)
    assert p.Owner.parse(o.encode()) == o
    with pytest.raises(ValueError, match="not an owner"):
        p.Owner.parse("garbage")


def test_ownership_diff() -> None:
    held = {"a": "me|1|1", "b": "me|2|1", "c": "me|3|1"}
    lost, missing = p.ownership_diff(held, [b"me|1|1", b"other|9|2", None])
    assert lost == ["b"] and missing == ["c"]


def test_live_members_drops_lapsed() -> None:
    ms = [
        p.MemberInfo(pid="b", expires_ms=200),
        p.MemberInfo(pid="a", expires_ms=101),
        p.MemberInfo(pid="c", expires_ms=100),
    ]
    assert [m.pid for m in p.live_members(ms, 100)] == ["a", "b"]


def test_freeze_decision() -> None:
    slot = 10_000
    m1 = p.MemberInfo(pid="1", expires_ms=20_000, started_ms=0, server_ids=("s1",), ccu_through_ms=slot)
    m2 = p.MemberInfo(pid="2", expires_ms=20_000, started_ms=0, server_ids=("s1",), ccu_through_ms=slot - 1)
    late = p.MemberInfo(pid="3", expires_ms=20_000, started_ms=slot + 1, server_ids=("s1",))
    dead = p.MemberInfo(pid="4", expires_ms=10_500, started_ms=0, server_ids=("s1",))
    other = p.MemberInfo(pid="5", expires_ms=20_000, started_ms=0, server_ids=("s2",))
    assert p.freeze_ready("s1", slot, [m1, late, other], 10_600, 10_000)
    assert not p.freeze_ready("s1", slot, [m1, m2], 10_600, 10_000)  # m2 has not reported
    assert p.freeze_ready("s1", slot, [m1, m2], 20_000, 10_000)  # the collect wait passed
    assert p.freeze_ready("s1", slot, [m1, dead], 10_600, 10_000)  # a lapsed member is not waited for
    assert not p.freeze_ready("s1", slot, [m1, dead], 10_400, 10_000)  # ... while it is live


def test_ccu_fields_and_history() -> None:
    assert p.parse_frozen_field(p.frozen_field("s1", 99)) == ("s1", 99)
    assert p.parse_history(p.history_value(99, 5, 100)) == (99, 5, 100)
    with pytest.raises(ValueError):
        p.parse_history("1:2")


def test_block_time_stays_below_socket_timeout() -> None:
    assert p.block_ms(2.0, 5.0) == 2000
    assert p.block_ms(10.0, 5.0) == 3750
    assert p.block_ms(1.0, 1.0) == 500
    assert p.block_ms(3.0, None) == 3000
