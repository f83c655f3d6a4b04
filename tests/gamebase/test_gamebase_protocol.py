"""The pure Gamebase protocol: envelopes, models, result codes, dates, the maintenance state machine."""

from __future__ import annotations

import ast
import importlib
import inspect
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest

from gs_hooks import KST, PlatformError, ProtocolError
from gs_hooks.gamebase import _models as models
from gs_hooks.gamebase import _protocol as p
from gs_hooks.gamebase._protocol import MaintenanceDetails as W
from gs_hooks.gamebase._protocol import MaintenanceState as S

TOKEN_SAMPLE = b"""{
  "header": {"transactionId": "tx-1", "resultCode": 0, "resultMessage": "String", "isSuccessful": true},
  "linkedIdP": {"idPCode": "PAYCO", "idPId": "payco-1"},
  "member": {
    "userId": "u1", "valid": "Y", "appId": "app", "regDate": 1488257745000, "lastLoginDate": 1488286059000,
    "authList": [
      {"userId": "u1", "authSystem": "gbid", "idPCode": "Guest", "authKey": "k1", "regDate": 1488257745000},
      {"userId": "u1", "authSystem": "gbid", "idPCode": "Facebook", "authKey": "k2", "regDate": 1490922916000}
    ]
  }
}"""


def _imports(module: object, allowed_relative: tuple[str, ...]) -> set[str]:
    tree = ast.parse(inspect.getsource(module))  # type: ignore[arg-type]
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            assert node.module in allowed_relative, f"relative import of {node.module} pulls in more than allowed"
    return imported


# The modules _protocol re-exports (models, dates, the maintenance lifecycle, the endpoint table): pure as well.
PURE_PARTS = ("_dates", "_models", "_maintenance_state", "_endpoints")
IO_LIBRARIES = {"anyio", "httpx", "httpcore", "trio", "asyncio", "socket"}


def test_protocol_module_imports_no_io_library() -> None:
    # _ids (player ids, dot segments) is pure too: checked below to import nothing but the standard library
    imported = _imports(p, ("_exceptions", "_ids", *PURE_PARTS))
    assert not imported & IO_LIBRARIES, imported
    for name in PURE_PARTS:
        part = importlib.import_module(f"gs_hooks.gamebase.{name}")
        imported = _imports(part, ("_exceptions", *PURE_PARTS))
        assert not imported & IO_LIBRARIES, (name, imported)
    from gs_hooks import _ids

    assert _imports(_ids, ()) <= {"__future__", "re", "unicodedata", "typing"}


def test_token_sample_decodes() -> None:
    info = p.decode_result(TOKEN_SAMPLE, models.TokenInfo, route="verify_token")
    assert info.member.user_id == "u1"
    assert info.member.valid == "Y"
    assert info.member.reg_date == 1488257745000
    assert [a.idp_code for a in info.member.auth_list] == ["Guest", "Facebook"]
    assert info.linked_idp == models.LinkedIdp(idp_code="PAYCO", idp_id="payco-1")
    assert info.transaction_id == "tx-1"


def test_unknown_fields_are_ignored_everywhere() -> None:
    body = (
        b'{"header": {"isSuccessful": true, "resultCode": 0, "newHeaderField": 1}, "brandNew": {"x": [1]},'
        b' "member": {"userId": "u", "valid": "Y", "futureField": "z", "authList": [{"idPCode": "g", "n": 2}]}}'
    )
    info = p.decode_result(body, models.TokenInfo, route="verify_token", transaction_id="ours")
    assert info.member.auth_list[0].idp_code == "g"
    # no transaction id in the body: the one we sent is filled in
    assert info.transaction_id == "ours"


def test_failed_header_raises_platform_error_with_code_message_and_transaction() -> None:
    body = (
        b'{"header": {"transactionId": "18a1", "resultCode": -4010002, "isSuccessful": false,'
        b' "resultMessage": "Gamebase product appKey is invalid, appId:C3JmSctU",'
        b' "traceError": {"trackingTime": 1489726350287, "throwPoint": "gateway", "uri": "/x"}}}'
    )
    with pytest.raises(PlatformError) as info:
        p.decode_result(body, models.UnderMaintenance, route="under_maintenance", transaction_id="mine")
    err = info.value
    assert err.platform == "gamebase"
    assert err.code == -4010002
    assert "appKey is invalid" in err.message
    assert "check GS_HOOKS_GAMEBASE_APP_ID" in err.message  # config codes say what to fix
    assert err.transaction_id == "18a1"


def test_failed_header_message_is_redacted() -> None:
    body = b'{"header": {"resultCode": -4010203, "isSuccessful": false, "resultMessage": "bad token tok-SECRET-1"}}'
    with pytest.raises(PlatformError) as info:
        p.decode_result(body, models.TokenInfo, route="verify_token", transaction_id="t", secrets=["tok-SECRET-1"])
    assert "tok-SECRET-1" not in str(info.value)
    assert info.value.transaction_id == "t"


@pytest.mark.parametrize(
    "body",
    [b"<html>502</html>", b"[]", b'{"nothing": 1}', b'{"header": "x"}'],
)
def test_non_envelopes_are_protocol_errors(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        p.decode_result(body, models.TokenInfo, route="verify_token")


def test_success_with_a_body_that_does_not_fit_is_a_protocol_error() -> None:
    body = b'{"header": {"isSuccessful": true, "resultCode": 0}, "member": {"userId": 5}}'
    with pytest.raises(ProtocolError, match=r"verify_token: unexpected answer"):
        p.decode_result(body, models.TokenInfo, route="verify_token")


def test_successful_flag_with_nonzero_code_is_a_failure() -> None:
    body = b'{"header": {"isSuccessful": true, "resultCode": -5000001}}'
    with pytest.raises(PlatformError) as info:
        p.decode_result(body, models.UnderMaintenance, route="m")
    assert info.value.code == -5000001


def test_result_code_classification_matches_the_vendor_list() -> None:
    expected = {
        0: p.ResultClass.SUCCESS,
        -4010001: p.ResultClass.CONFIG,
        -4010002: p.ResultClass.CONFIG,
        -4010003: p.ResultClass.CONFIG,
        -4010004: p.ResultClass.CONFIG,
        -4000007: p.ResultClass.CONFIG,
        -4060003: p.ResultClass.CONFIG,
        -4010203: p.ResultClass.TOKEN_INVALID,
        -4010204: p.ResultClass.MEMBER_NOT_VALID,
        -4010208: p.ResultClass.TOKEN_EXPIRED,
        -4040401: p.ResultClass.NO_SUCH_MEMBER,
        -4000001: p.ResultClass.UNKNOWN,
        -5000000: p.ResultClass.UNKNOWN,
        -5000016: p.ResultClass.UNKNOWN,
        -5000200: p.ResultClass.UNKNOWN,
        -5000209: p.ResultClass.UNKNOWN,
    }
    for code in range(-5000015, -5000000):
        expected[code] = p.ResultClass.TRANSIENT
    for code in range(-5000208, -5000200):
        expected[code] = p.ResultClass.TRANSIENT
    assert {c: p.classify(c) for c in expected} == expected
    assert p.is_transient(None)
    assert sum(1 for c in expected if p.is_transient(c)) == 15 + 8


def test_members_idp_userids_and_launching_decode() -> None:
    members = p.decode_result(
        b'{"header": {"isSuccessful": true, "resultCode": 0},'
        b' "memberList": [{"userId": "a", "valid": "D", "appId": "x", "regDate": 1}]}',
        models.MemberList,
        route="members",
    )
    assert [(m.user_id, m.valid) for m in members.members] == [("a", "D")]
    idp = p.decode_result(
        b'{"header": {"isSuccessful": true, "resultCode": 0},'
        b' "result": {"u1": [{"authKey": "k", "idPCode": "gbid", "authSystem": "gbid"}]}}',
        models.IdpInfo,
        route="idp_info",
    )
    assert idp.result["u1"][0].auth_key == "k"
    ids = p.decode_result(
        b'{"header": {"isSuccessful": true, "resultCode": 0}, "result": {"k": "u1"}}', models.UserIds, route="ids"
    )
    assert ids.result == {"k": "u1"}
    launching = p.decode_result(
        b'{"header": {"resultCode": 0, "resultMessage": "String", "isSuccessful": true},'
        b' "launchingData": {"status": {"code": 303, "message": "m"}, "app": {"storeCode": "GG"},'
        b' "maintenance": {"typeCode": "APP", "beginDate": "2018-05-23T10:44:00+09:00",'
        b' "endDate": "2022-01-01T10:44:00+09:00", "url": null, "reason": "r", "message": "msg"}}}',
        models.SimpleLaunching,
        route="simple_launching",
    )
    assert launching.under_maintenance
    assert launching.transaction_id is None
    m = launching.launching_data.maintenance
    assert m is not None
    details = p.MaintenanceDetails.from_info(m)
    assert details.begins_at == datetime(2018, 5, 23, 10, 44, tzinfo=KST)
    assert details.message == "msg"
    assert details.url is None


def test_dates_accept_epoch_millis_and_iso() -> None:
    moment = datetime(2026, 3, 4, 5, 6, 7, 123000, tzinfo=UTC)
    millis = 1772600767123
    assert p.parse_date(millis) == moment
    assert p.parse_date(str(millis)) == moment
    assert p.parse_date(float(millis)) == moment
    assert p.parse_date("2026-03-04T14:06:07.123+09:00") == moment
    assert p.parse_date("2026-03-04T14:06:07.123+0900") == moment
    assert p.parse_date("2026-03-04T05:06:07.123Z") == moment
    assert p.parse_date("2026-03-04T14:06:07.123") == moment  # no zone: KST
    assert p.parse_date("2026-03-04 14:06:07.123456789+09:00") == moment + timedelta(microseconds=456)
    assert p.parse_date("2026-03-04T00:06-05:00") == datetime(2026, 3, 4, 0, 6, tzinfo=timezone(timedelta(hours=-5)))
    assert p.parse_date(None) is None
    assert p.parse_date("") is None
    assert p.parse_date(0) is None
    for bad in ("yesterday", "2026-13", "12:00", True):
        with pytest.raises(ValueError, match="not"):
            p.parse_date(bad)  # type: ignore[arg-type]


def test_format_date_is_the_query_format_and_refuses_naive() -> None:
    assert p.format_date(datetime(2026, 1, 2, 3, 4, 5, tzinfo=KST)) == "2026-01-02T03:04:05.000+09:00"
    with pytest.raises(ValueError, match="naive"):
        p.format_date(datetime(2026, 1, 2))


def _ban_body(begin: object, end: object, release: object) -> bytes:
    page = {
        "header": {"isSuccessful": True, "resultCode": 0, "transactionId": "t"},
        "pagingInfo": {
            "first": True,
            "last": False,
            "numberOfElements": 1,
            "page": 0,
            "size": 1,
            "totalElements": 2,
            "totalPages": 2,
        },
        "result": [
            {
                "appId": "a",
                "banCaller": "CONSOLE",
                "banReason": "r",
                "banType": "TEMPORARY",
                "beginDate": begin,
                "endDate": end,
                "flags": "Leaderboard",
                "message": "m",
                "name": "n",
                "regUser": "op",
                "releaseCaller": None,
                "releaseDate": release,
                "releaseReason": None,
                "releaseUser": None,
                "seq": 7,
                "templateCode": 3,
                "userId": "u1",
                "somethingNew": True,
            }
        ],
    }
    return msgspec.json.encode(page)


@pytest.mark.parametrize(
    ("begin", "end"),
    [
        (1767193200000, 1767279600000),
        ("2026-01-01T00:00:00.000+09:00", "2026-01-02T00:00:00.000+09:00"),
        ("1767193200000", "2026-01-02T00:00:00+09:00"),
    ],
)
def test_ban_page_accepts_millis_and_iso(begin: object, end: object) -> None:
    page = p.decode_ban_page(_ban_body(begin, end, None), route="ban_histories")
    assert page.paging.total_pages == 2
    assert not page.paging.last
    (record,) = page.records
    assert record.begins_at == datetime(2026, 1, 1, tzinfo=KST)
    assert record.ends_at == datetime(2026, 1, 2, tzinfo=KST)
    assert record.released_at is None
    assert (record.user_id, record.seq, record.ban_type, record.template_code) == ("u1", 7, "TEMPORARY", 3)


def test_ban_page_with_unreadable_date_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="ban_histories"):
        p.decode_ban_page(_ban_body("soon", None, None), route="ban_histories")


def test_wrapped_result_keeps_the_rest_of_the_answer() -> None:
    r = p.decode_wrapped(
        b'{"header": {"isSuccessful": true, "resultCode": 0}, "totalCount": 3}', route="lb", transaction_id="t"
    )
    assert r.data == {"totalCount": 3}
    assert r.transaction_id == "t"


def test_redact() -> None:
    assert p.redact("a tok b tok", ["tok", ""]) == "a *** b ***"


# -- maintenance state machine -------------------------------------------------------------------------------

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=KST).timestamp()


def window(begin: float, end: float, message: str = "m") -> W:
    return W(
        begins_at=datetime.fromtimestamp(begin, KST),
        ends_at=datetime.fromtimestamp(end, KST),
        message=message,
    )


def test_transition_table_is_complete_and_paths_are_legal() -> None:
    assert set(p.MAINTENANCE_TRANSITIONS) == set(S)
    for a in S:
        for b in S:
            try:
                path = p.maintenance_path(a, b)
            except ValueError:
                continue
            prev = a
            for step in path:
                assert step in p.MAINTENANCE_TRANSITIONS[prev]
                prev = step
            assert path[-1] is b
    assert p.maintenance_path(S.ACTIVE, S.ANNOUNCED) == [S.ENDED, S.ANNOUNCED]
    with pytest.raises(ValueError, match="illegal maintenance transition none -> ended"):
        p.maintenance_path(S.NONE, S.ENDED)
    with pytest.raises(ValueError, match="illegal"):
        p.maintenance_path(S.ANNOUNCED, S.ENDED)


def test_derive_follows_the_window_by_the_clock() -> None:
    w = window(T0 + 600, T0 + 1200)
    assert p.derive_maintenance(S.NONE, [], T0) == (S.NONE, None)
    assert p.derive_maintenance(S.NONE, [w], T0) == (S.ANNOUNCED, w)
    assert p.derive_maintenance(S.ANNOUNCED, [w], T0 + 600) == (S.ACTIVE, w)
    assert p.derive_maintenance(S.ACTIVE, [w], T0 + 1199) == (S.ACTIVE, w)
    assert p.derive_maintenance(S.ACTIVE, [w], T0 + 1200) == (S.ENDED, None)
    assert p.derive_maintenance(S.ACTIVE, [], T0 + 900) == (S.ENDED, None)  # cleared early
    assert p.derive_maintenance(S.ANNOUNCED, [], T0) == (S.NONE, None)  # cancelled
    assert p.derive_maintenance(S.ENDED, [w], T0 + 1300) == (S.ENDED, None)
    # the flag alone, with no window: active of unknown extent
    assert p.derive_maintenance(S.NONE, [], T0, under_maintenance=True) == (S.ACTIVE, W())


def test_derive_with_stale_knowledge_never_ends_an_active_window() -> None:
    w = window(T0, T0 + 600)
    assert p.derive_maintenance(S.ACTIVE, [w], T0 + 700, fresh=False) == (S.ACTIVE, None)
    assert p.derive_maintenance(S.ACTIVE, [], T0 + 700, fresh=False) == (S.ACTIVE, None)
    # but an announced window still begins on time
    later = window(T0 + 100, T0 + 600)
    assert p.derive_maintenance(S.ANNOUNCED, [later], T0 + 100, fresh=False) == (S.ACTIVE, later)


def test_derive_picks_the_active_then_the_earliest_window() -> None:
    a = window(T0 + 100, T0 + 200, "a")
    b = window(T0 + 300, T0 + 400, "b")
    assert p.derive_maintenance(S.NONE, [b, a], T0) == (S.ANNOUNCED, a)
    assert p.derive_maintenance(S.ANNOUNCED, [b, a], T0 + 150) == (S.ACTIVE, a)
    assert p.derive_maintenance(S.ACTIVE, [b, a], T0 + 250) == (S.ANNOUNCED, b)


def test_due_warnings_collapses_missed_lead_times() -> None:
    begin = T0 + 1000
    leads = (600.0, 300.0, 60.0)
    assert p.due_warnings(begin, leads, frozenset(), T0) == ([], begin - 600)
    assert p.due_warnings(begin, leads, frozenset(), begin - 600) == ([600.0], begin - 300)
    # announced late: 600 and 300 both passed → one warning now, next at 60
    assert p.due_warnings(begin, leads, frozenset(), begin - 200) == ([600.0, 300.0], begin - 60)
    assert p.due_warnings(begin, leads, frozenset({600.0, 300.0}), begin - 200) == ([], begin - 60)
    assert p.due_warnings(begin, leads, frozenset({600.0, 300.0, 60.0}), begin - 10) == ([], None)
    assert p.due_warnings(begin, leads, frozenset(), begin) == ([], None)
