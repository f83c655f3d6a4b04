"""The platform sandbox: a faithful local emulator of the Hive, Gamebase and GamePot APIs, as a real server.

async with Sandbox.serve(port=0) as sb:
    print(sb.urls())          # point gs_hooks (or curl) at these

From a shell: ``python -m gs_hooks sandbox --port 8700``.
"""

from ._faults import FaultHit, FaultRule, Faults
from ._gamebase import GamebaseSim
from ._gamepot import GamePotKey, GamePotSim
from ._hive_ccu import CcuAttempt, CcuCollector, CcuSample, encode_result, extract_payload, parse_sample
from ._hive_sender import (
    HiveSender,
    HiveTarget,
    PushAttempt,
    PushReport,
    SuspensionItem,
    WebstoreReport,
    suspension_batches,
    validate_webstore_answer,
)
from ._server import CCU_PATH, Sandbox

__all__ = [
    "CCU_PATH",
    "CcuAttempt",
    "CcuCollector",
    "CcuSample",
    "FaultHit",
    "FaultRule",
    "Faults",
    "GamePotKey",
    "GamePotSim",
    "GamebaseSim",
    "HiveSender",
    "HiveTarget",
    "PushAttempt",
    "PushReport",
    "Sandbox",
    "SuspensionItem",
    "WebstoreReport",
    "encode_result",
    "extract_payload",
    "parse_sample",
    "suspension_batches",
    "validate_webstore_answer",
]
