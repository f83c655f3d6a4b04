"""Hive payloads, pure: the suspension batch's strict validation and the web-store answer with defaults."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

import gs_hooks.hive._protocol as protocol
from gs_hooks.hive import (
    HiveRequestError,
    WebstoreChannel,
    WebstoreCharacter,
    WebstoreProfile,
    WebstoreServer,
    decode_suspension_batch,
    decode_webstore_request,
    encode_webstore_response,
)

KST = timezone(timedelta(hours=9))

# The document's curl example, verbatim.
CURL_EXAMPLE = (
    b'{"game_index": 539, "server_url": "{URL of the game server of the project registered to the Hive console game '
    b'server}", "data": [{"player_id": 1, "status": "B", "start_date": "2024-07-10 20:56:59", "end_date": '
    b'"2024-07-13 20:56:59"}, {"player_id": 2, "status": "B", "start_date": "2024-07-10 20:56:59", "end_date": '
    b'"2024-07-20 20:56:59"}, {"player_id": 3, "status": "P", "start_date": "2024-07-10 20:56:59", "end_date": '
    b'"9999-12-31 00:00:00"}]}'
)


def batch(*items: dict[str, Any], game_index: Any = 539) -> bytes:
    return json.dumps({"game_index": game_index, "server_url": "http://game/hook", "data": list(items)}).encode()


def item(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "player_id": 7,
        "status": "B",
        "start_date": "2026-03-01 10:00:00",
        "end_date": "2026-03-02 10:00:00",
    }
    base.update(over)
    return base


def test_the_documents_curl_example_decodes() -> None:
    players = decode_suspension_batch(CURL_EXAMPLE, game_index=539)
    assert [(p.player_id, p.permanent) for p in players] == [(1, False), (2, False), (3, True)]
    assert players[0].starts_at == datetime(2024, 7, 10, 20, 56, 59, tzinfo=KST)
    assert players[0].ends_at == datetime(2024, 7, 13, 20, 56, 59, tzinfo=KST)
    assert players[2].ends_at is None


def test_the_documents_json_example_typo_is_refused_with_a_clear_message() -> None:
    # The document's "Request JSON examples" writes "2024-07 -10 20:56:59": not a date; the whole batch is refused.
    body = batch(item(player_id=1), item(player_id=3, status="P", start_date="2024-07 -10 20:56:59"))
    with pytest.raises(HiveRequestError) as info:
        decode_suspension_batch(body, game_index=539)
    assert info.value.result_code == 422
    assert "data[1] (player_id 3)" in info.value.message and "YYYY-MM-DD HH:MM:SS" in info.value.message


def test_permanent_whatever_the_end_and_9999_means_no_end() -> None:
    players = decode_suspension_batch(
        batch(item(status="P"), item(player_id=8, end_date="9999-12-31 00:00:00")), game_index=539
    )
    assert [(p.permanent, p.ends_at) for p in players] == [(True, None), (True, None)]


def test_dates_are_read_in_the_configured_zone() -> None:
    (p,) = decode_suspension_batch(batch(item()), game_index=539, utc_offset_h=0)
    assert p.starts_at == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    (k,) = decode_suspension_batch(batch(item()), game_index=539)
    assert k.starts_at.timestamp() == p.starts_at.timestamp() - 9 * 3600


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        (b"", 400, "not valid JSON"),
        (b"{", 400, "not valid JSON"),
        (b"[]", 400, "suspension list"),
        (batch(item(player_id=True)), 400, "Expected `int`, got `bool`"),
        (batch(item(player_id="7")), 400, "Expected `int`, got `str`"),
        (batch(item(player_id=7.0)), 400, "Expected `int`, got `float`"),
        (batch(item(player_id=-1)), 400, ">= 0"),
        (batch(item(status="X")), 422, "is not P (permanent) or B"),
        (batch(item(status="p")), 422, "is not P (permanent) or B"),
        (batch(item(status=["P"])), 400, "Expected `str`"),
        (batch(item(start_date=None)), 400, "str"),
        (batch(item(), game_index="539"), 400, "int"),
        (batch(item(), game_index=540), 409, "game_index 540"),
        (b'{"game_index": 539, "data": []}', 400, "server_url"),
        (batch(item(start_date="2026-03-01T10:00:00")), 422, "YYYY-MM-DD HH:MM:SS"),
        (batch(item(start_date="2026-3-1 10:00:00")), 422, "YYYY-MM-DD HH:MM:SS"),
        (batch(item(start_date="2026-03-01 10:00:00.5")), 422, "YYYY-MM-DD HH:MM:SS"),
        (batch(item(start_date="2026-02-30 10:00:00")), 422, "not a real date"),
        (batch(item(end_date="2026-03-01 24:00:00")), 422, "not a real date"),
        (batch(item(end_date="2026-03-01 09:00:00")), 422, "not after start_date"),
        (batch(item(), item(player_id=8, end_date="")), 422, "data[1]"),
        (batch(item(start_date="0001-01-01 00:00:00")), 422, "not a real date"),
        (batch(item(end_date="9999-12-31 23:59:59")), 422, "not a real date"),
    ],
)
def test_malformed_batches_are_refused(body: bytes, code: int, words: str) -> None:
    with pytest.raises(HiveRequestError) as info:
        decode_suspension_batch(body, game_index=539)
    assert info.value.result_code == code
    assert words in info.value.message


def test_unknown_fields_are_ignored_and_an_empty_list_is_fine() -> None:
    body = json.dumps(
        {"game_index": 539, "server_url": "u", "extra": 1, "data": [dict(item(), reason="spam")]}
    ).encode()
    assert len(decode_suspension_batch(body, game_index=539)) == 1
    assert decode_suspension_batch(batch(), game_index=539) == []


def test_error_messages_are_bounded_and_printable() -> None:
    with pytest.raises(HiveRequestError) as info:
        decode_suspension_batch(batch(item(start_date="\x00\x1b[31m" + "x" * 5000)), game_index=539)
    assert len(info.value.message) < 300
    assert info.value.message.isprintable()


# -- web-store ----------------------------------------------------------------------------------------------

# The document's five success examples, verbatim (data and envelope).
DOC_EXAMPLES: list[dict[str, Any]] = [
    {
        "result_code": 200,
        "result_message": "success",
        "cs_code": "c_123412341234",
        "data": [
            {
                "server_id": "1",
                "server_name": "Server 1",
                "channels": [
                    {
                        "channel_id": "1",
                        "channel_name": "Channel 1",
                        "characters": [
                            {"character_id": "A", "character_name": "Character A", "character_level": "99"},
                            {"character_id": "B", "character_name": "Character B", "character_level": "10"},
                        ],
                    }
                ],
            }
        ],
    },
    {
        "result_code": 200,
        "result_message": "success",
        "cs_code": "c_123412341234",
        "data": [
            {
                "server_id": "2",
                "server_name": "Server 2",
                "channels": [
                    {
                        "channel_id": "0",
                        "channel_name": "-",
                        "characters": [
                            {"character_id": "C", "character_name": "Character C", "character_level": "11"},
                            {"character_id": "D", "character_name": "Character E", "character_level": "12"},
                        ],
                    }
                ],
            }
        ],
    },
    {
        "result_code": 200,
        "result_message": "success",
        "cs_code": "c_123412341234",
        "data": [
            {
                "server_id": "3",
                "server_name": "Server 3",
                "channels": [
                    {
                        "channel_id": "2",
                        "channel_name": "Channel 2",
                        "characters": [{"character_id": "-", "character_name": "-", "character_level": "99"}],
                    }
                ],
            }
        ],
    },
    {
        "result_code": 200,
        "result_message": "success",
        "cs_code": "c_123412341234",
        "data": [
            {
                "server_id": "4",
                "server_name": "Server 4",
                "channels": [
                    {
                        "channel_id": "0",
                        "channel_name": "-",
                        "characters": [{"character_id": "-", "character_name": "-", "character_level": "99"}],
                    }
                ],
            }
        ],
    },
    {
        "result_code": 200,
        "result_message": "success",
        "cs_code": "c_123412341234",
        "data": [
            {
                "server_id": "1",
                "server_name": "Server 1",
                "channels": [
                    {
                        "channel_id": "1",
                        "channel_name": "Channel 1",
                        "characters": [
                            {"character_id": "A", "character_name": "Character A", "character_level": "99"},
                            {"character_id": "B", "character_name": "Character B", "character_level": "10"},
                        ],
                    },
                    {
                        "channel_id": "2",
                        "channel_name": "Channel 2",
                        "characters": [
                            {"character_id": "A2", "character_name": "Character A2", "character_level": "99"},
                            {"character_id": "B2", "character_name": "Character B2", "character_level": "10"},
                        ],
                    },
                ],
            }
        ],
    },
]

# What a game returns for each shape: only what it uses; the library fills the rest.
GAME_PROFILES: list[WebstoreProfile] = [
    WebstoreProfile(
        servers=(
            WebstoreServer(
                server_id="1",
                server_name="Server 1",
                channels=(
                    WebstoreChannel(
                        channel_id="1",
                        channel_name="Channel 1",
                        characters=(
                            WebstoreCharacter(character_id="A", character_name="Character A", character_level=99),
                            WebstoreCharacter(character_id="B", character_name="Character B", character_level="10"),
                        ),
                    ),
                ),
            ),
        )
    ),
    WebstoreProfile(
        servers=(
            WebstoreServer(
                server_id="2",
                server_name="Server 2",
                channels=(
                    WebstoreChannel(
                        characters=(
                            WebstoreCharacter(character_id="C", character_name="Character C", character_level=11),
                            WebstoreCharacter(character_id="D", character_name="Character E", character_level=12),
                        ),
                    ),
                ),
            ),
        )
    ),
    WebstoreProfile(
        servers=(
            WebstoreServer(
                server_id="3",
                server_name="Server 3",
                channels=(
                    WebstoreChannel(
                        channel_id="2", channel_name="Channel 2", characters=(WebstoreCharacter(character_level=99),)
                    ),
                ),
            ),
        )
    ),
    WebstoreProfile(
        servers=(
            WebstoreServer(
                server_id="4",
                server_name="Server 4",
                channels=(WebstoreChannel(characters=(WebstoreCharacter(character_level="99"),)),),
            ),
        )
    ),
    WebstoreProfile(
        servers=(
            WebstoreServer(
                server_id="1",
                server_name="Server 1",
                channels=(
                    WebstoreChannel(
                        channel_id="1",
                        channel_name="Channel 1",
                        characters=(
                            WebstoreCharacter(character_id="A", character_name="Character A", character_level="99"),
                            WebstoreCharacter(character_id="B", character_name="Character B", character_level="10"),
                        ),
                    ),
                    WebstoreChannel(
                        channel_id="2",
                        channel_name="Channel 2",
                        characters=(
                            WebstoreCharacter(character_id="A2", character_name="Character A2", character_level="99"),
                            WebstoreCharacter(character_id="B2", character_name="Character B2", character_level="10"),
                        ),
                    ),
                ),
            ),
        )
    ),
]


@pytest.mark.parametrize("shape", range(5))
def test_the_documents_five_shapes_are_produced_exactly(shape: int) -> None:
    code, body = encode_webstore_response("c_123412341234", GAME_PROFILES[shape])
    assert code == 200
    assert json.loads(body) == DOC_EXAMPLES[shape]
    assert list(json.loads(body)) == ["result_code", "result_message", "cs_code", "data"]


def test_defaults_fill_unused_levels() -> None:
    code, body = encode_webstore_response(
        "c", WebstoreProfile(servers=(WebstoreServer(server_id="9", server_name="S"),))
    )
    assert code == 200
    assert json.loads(body)["data"] == [
        {
            "server_id": "9",
            "server_name": "S",
            "channels": [
                {
                    "channel_id": "0",
                    "channel_name": "-",
                    "characters": [{"character_id": "-", "character_name": "-", "character_level": "0"}],
                }
            ],
        }
    ]


@pytest.mark.parametrize("profile", [None, WebstoreProfile()])
def test_no_information_is_204_with_empty_data(profile: WebstoreProfile | None) -> None:
    code, body = encode_webstore_response("c_1", profile)
    assert code == 204
    assert json.loads(body) == {
        "result_code": 204,
        "result_message": "no information about the user",
        "cs_code": "c_1",
        "data": [],
    }


@pytest.mark.parametrize(
    "bad",
    [
        {"servers": []},
        WebstoreProfile(servers=(WebstoreServer(server_id="", server_name="S"),)),
        WebstoreProfile(servers=("server 1",)),  # type: ignore[arg-type]
        WebstoreProfile(servers=(WebstoreServer(server_id="1", server_name="S", channels=(None,)),)),  # type: ignore[arg-type]
        WebstoreProfile(
            servers=(
                WebstoreServer(
                    server_id="1",
                    server_name="S",
                    channels=(WebstoreChannel(characters=(WebstoreCharacter(character_level=True),)),),
                ),
            )
        ),
    ],
)
def test_a_malformed_game_profile_is_a_protocol_error(bad: Any) -> None:
    with pytest.raises(protocol.ProtocolError):
        encode_webstore_response("c", bad)


def test_webstore_request_needs_a_cs_code() -> None:
    assert decode_webstore_request(b'{"cs_code": "c_1234123"}') == "c_1234123"
    for body in (b"", b"{cs_code: 1}", b'{"cs_code": 1}', b'{"cs_code": ""}', b"{}", b"[]", b"null"):
        with pytest.raises(HiveRequestError) as info:
            decode_webstore_request(body)
        assert info.value.result_code == 400
