"""Fleet mode: many game-server processes on one Redis behave as one game.

The primitives live here; the capabilities (ban book, login, CCU reporter, pollers) are wired to them elsewhere.
Importing this package does not import ``redis`` (an optional dependency: the ``fleet`` extra);
creating a :class:`FleetRedis` does.
"""

from __future__ import annotations

from .._config import FleetConfig, redact_url
from ._ccu import FleetCcu
from ._leader import LeaderJob, Leadership
from ._membership import Membership, new_process_id
from ._node import Fleet
from ._presence import ClaimResult, Presence
from ._protocol import BanRow, Cursor, Fence, Keys, KickNotice, MemberInfo, Owner, PendingSample, StreamEntry
from ._redis import FencedError, FleetError, FleetRedis
from ._stream import MemoryOutbox, Outbox, Outgoing, Publisher, StreamHandler, StreamReader, read_ban_set

__all__ = [
    "BanRow",
    "ClaimResult",
    "Cursor",
    "Fence",
    "FencedError",
    "Fleet",
    "FleetCcu",
    "FleetConfig",
    "FleetError",
    "FleetRedis",
    "Keys",
    "KickNotice",
    "LeaderJob",
    "Leadership",
    "MemberInfo",
    "Membership",
    "MemoryOutbox",
    "Outbox",
    "Outgoing",
    "Owner",
    "PendingSample",
    "Presence",
    "Publisher",
    "StreamEntry",
    "StreamHandler",
    "StreamReader",
    "new_process_id",
    "read_ban_set",
    "redact_url",
]
