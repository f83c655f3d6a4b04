"""Hive payloads received on the listener: the suspended-user webhook and the web-store profile API."""

from ._handlers import (
    SuspensionWebhook,
    WebstoreEndpoint,
    WebstoreProfileCallback,
    hive_player_key,
    register_hive_routes,
)
from ._protocol import (
    HiveRequestError,
    HiveSuspension,
    HiveSuspensionBatch,
    SuspendedPlayer,
    WebstoreChannel,
    WebstoreCharacter,
    WebstoreProfile,
    WebstoreServer,
    decode_suspension_batch,
    decode_webstore_request,
    encode_webstore_response,
)

__all__ = [
    "HiveRequestError",
    "HiveSuspension",
    "HiveSuspensionBatch",
    "SuspendedPlayer",
    "SuspensionWebhook",
    "WebstoreChannel",
    "WebstoreCharacter",
    "WebstoreEndpoint",
    "WebstoreProfile",
    "WebstoreProfileCallback",
    "WebstoreServer",
    "decode_suspension_batch",
    "decode_webstore_request",
    "encode_webstore_response",
    "hive_player_key",
    "register_hive_routes",
]
