"""Fleet mode's wire format, pure: key names, entry encoding, and the decisions made over what Redis returned.

No IO here (no redis, no anyio): the IO modules beside this one send the Lua scripts of :mod:`._lua` and hand
what comes back to these functions. Every key of one fleet lives under ``{prefix}:{game}:`` (``P`` below):

====================  =========================================================================================
``P:epoch``           random id of this Redis's data (SET NX); a change means Redis lost its data
``P:members``         zset pid -> expiry (ms, Redis's clock); pruned on read
``P:member:{pid}``    hash of one process (host, pid, started_ms, server_ids, listener, version, ccu_through)
``P:leader``          ``pid|token``, PX lease; ``P:leader:fence`` is the token counter
``P:bans``            stream of ban batches; ``P:bans:set`` the fleet's ban set; ``P:bans:seq`` entry numbers
``P:inbox:{pid}``     stream of messages to one process (``:seq`` beside it)
``P:owner:{player}``  ``pid|session|login_ms``: who owns the player now
``P:ccu:r:{slot}``    hash ``server|pid`` -> absolute count; ``P:ccu:frozen``, ``P:ccu:pending``, ``P:ccu:hist:{s}``
``P:maint``           the leader's last maintenance poll (JSON :class:`PublishedMaintenance`), fenced
``P:bans:wm``         the Gamebase ban poller's watermark (epoch seconds), fenced
``P:ccu:open``        zset of slots with reports not all frozen; ``P:ccu:refused`` (field -> game key refused under);
                      ``P:ccu:servers`` (server ids with history); ``P:reply:{id}`` a forwarded request's answer
====================  =========================================================================================

Stream entries carry a per-stream sequence number (``s``, from INCR in the same script as the XADD), so a
reader sees a gap (trimmed entries, a Redis that rolled back) as a number that does not follow its cursor's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import msgspec

from ._keys import Keys, make_process_id
from ._maintenance_protocol import PublishedMaintenance, decode_maintenance, encode_maintenance

__all__ = [
    "OP_APPLY",
    "OP_KICK",
    "OP_LIFT",
    "BanRow",
    "Cursor",
    "Fence",
    "Keys",
    "KickNotice",
    "MemberInfo",
    "Owner",
    "PendingSample",
    "PublishedMaintenance",
    "StreamEntry",
    "ban_field",
    "block_ms",
    "ccu_field",
    "decode_cursor",
    "decode_entry",
    "decode_kick",
    "decode_maintenance",
    "decode_member",
    "decode_row",
    "decode_rows",
    "encode_cursor",
    "encode_maintenance",
    "encode_row",
    "encode_rows",
    "freeze_ready",
    "frozen_field",
    "gap",
    "history_value",
    "live_members",
    "make_process_id",
    "member_fields",
    "ownership_diff",
    "parse_frozen_field",
    "parse_history",
]

OP_APPLY = "apply"  # a ban batch entry that applies its rows
OP_LIFT = "lift"  # a ban batch entry that lifts them (tombstones)
OP_KICK = "kick"  # an inbox message: a session lost its player to a newer login


class Fence(msgspec.Struct, frozen=True, gc=False):
    """A leader's lease: its process id and fencing token (a fresh token per acquisition)."""

    pid: str
    token: int

    @property
    def lease(self) -> str:
        """The value of ``P:leader`` while this lease holds: ``pid|token``."""
        return f"{self.pid}|{self.token}"


# -- stream entries ------------------------------------------------------------------------------------------------


class StreamEntry(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One entry of a fleet stream.

    Attributes:
        id: the stream id (``ms-n``).
        seq: the entry's number in its stream (consecutive from 1).
        op: what it is (``apply``/``lift`` for ban batches, ``kick`` or another verb for inbox messages).
        origin: the process id that published it.
        event: the publisher's event id (logs, metrics, dedupe of a re-sent entry).
        body: the payload (msgpack: ban rows, a kick notice...).
    """

    id: str
    seq: int
    op: str
    origin: str
    event: str
    body: bytes


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def decode_entry(entry_id: bytes | str, fields: Mapping[bytes, bytes]) -> StreamEntry:
    """A :class:`StreamEntry` from what XREAD returned.

    Raises:
        ValueError: a field is missing or malformed (an entry not written by gs_hooks).
    """
    try:
        return StreamEntry(
            id=_text(entry_id),
            seq=int(fields[b"s"]),
            op=fields[b"o"].decode(),
            origin=fields[b"p"].decode(),
            event=fields[b"e"].decode(),
            body=bytes(fields[b"b"]),
        )
    except (KeyError, UnicodeDecodeError) as exc:
        raise ValueError(f"stream entry {_text(entry_id)} is not a gs_hooks entry: {exc!r}") from None


class Cursor(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Where a reader stands in a stream; the caller persists it with the effects of the entries read.

    Attributes:
        epoch: the ``P:epoch`` the entries came from.
        last_id: the id of the last entry handled (``0-0`` before the first).
        seq: that entry's sequence number (0 before the first).
    """

    epoch: str
    last_id: str = "0-0"
    seq: int = 0


_CURSOR_DECODER = msgspec.json.Decoder(Cursor)


def encode_cursor(cursor: Cursor) -> bytes:
    """The cursor as bytes for the caller's store."""
    return msgspec.json.encode(cursor)


def decode_cursor(data: bytes | str) -> Cursor:
    """Inverse of :func:`encode_cursor`. Raises ValueError when ``data`` is not a cursor."""
    try:
        return _CURSOR_DECODER.decode(data)
    except msgspec.DecodeError as exc:
        raise ValueError(f"not a fleet stream cursor: {exc}") from None


def gap(cursor: Cursor, first: StreamEntry) -> bool:
    """True when ``first`` (the first entry read after ``cursor``) does not follow it: entries were lost."""
    return first.seq != cursor.seq + 1


# -- ban batches ---------------------------------------------------------------------------------------------------


class BanRow(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """One ban as the fleet carries it (the ban book converts to and from its own rows).

    Encoded as a msgpack array in this field order: the scripts compare fields 3-5 and 7 (status, start, end,
    lifted) to apply the book's rules inside Redis. Times are epoch seconds.
    """

    source: str
    player: str
    status: str
    start: float
    end: float | None
    message: str
    lifted_at: float | None = None


_ROW_ENCODER = msgspec.msgpack.Encoder()
_ROWS_DECODER = msgspec.msgpack.Decoder(list[BanRow])
_ROW_DECODER = msgspec.msgpack.Decoder(BanRow)


def ban_field(source: str, player: str) -> str:
    """The ``P:bans:set`` field of a (source, player) pair."""
    return f"{source}\x1f{player}"


def encode_row(row: BanRow) -> bytes:
    """One row as msgpack (the value stored in ``P:bans:set``)."""
    return _ROW_ENCODER.encode(row)


def encode_rows(rows: Iterable[BanRow]) -> bytes:
    """A list of rows as msgpack."""
    return _ROW_ENCODER.encode(list(rows))


def decode_row(value: bytes) -> BanRow:
    """One row of the fleet ban set. Raises ValueError when ``value`` is not a row."""
    try:
        return _ROW_DECODER.decode(value)
    except msgspec.DecodeError as exc:
        raise ValueError(f"not a ban row: {exc}") from None


def decode_rows(body: bytes) -> list[BanRow]:
    """Rows of a ban batch entry. Raises ValueError when ``body`` is not a list of rows."""
    try:
        return _ROWS_DECODER.decode(body)
    except msgspec.DecodeError as exc:
        raise ValueError(f"not a ban batch: {exc}") from None


# -- presence ------------------------------------------------------------------------------------------------------


class Owner(msgspec.Struct, frozen=True, gc=False):
    """The value of ``P:owner:{player}``: the process, the session there, and the login time (ms)."""

    pid: str
    session: str
    login_ms: int

    def encode(self) -> str:
        """``pid|session|login_ms``."""
        return f"{self.pid}|{self.session}|{self.login_ms}"

    @classmethod
    def parse(cls, value: bytes | str) -> Owner:
        """Inverse of :meth:`encode`. Raises ValueError on another shape."""
        text = _text(value)
        pid, sep, rest = text.partition("|")
        session, sep2, login = rest.rpartition("|")
        if not sep or not sep2 or not login.isdigit():
            raise ValueError(f"not an owner value: {text[:80]!r}")
        return cls(pid, session, int(login))


class KickNotice(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """An inbox message: ``previous`` lost ``player`` to ``current`` (owner values)."""

    player: str
    previous: str
    current: str


_KICK_DECODER = msgspec.msgpack.Decoder(KickNotice)


def decode_kick(body: bytes) -> KickNotice:
    """The kick notice of an inbox entry. Raises ValueError when ``body`` is not one."""
    try:
        return _KICK_DECODER.decode(body)
    except msgspec.DecodeError as exc:
        raise ValueError(f"not a kick notice: {exc}") from None


def ownership_diff(expected: Mapping[str, str], actual: Sequence[bytes | str | None]) -> tuple[list[str], list[str]]:
    """Compare the owner values this process holds with what MGET returned (same order as ``expected``).

    Returns:
        (players owned by someone else now, players whose key is missing and should be claimed again).
    """
    lost: list[str] = []
    missing: list[str] = []
    for (player, mine), value in zip(expected.items(), actual, strict=True):
        if value is None:
            missing.append(player)
        elif _text(value) != mine:
            lost.append(player)
    return lost, missing


# -- membership ----------------------------------------------------------------------------------------------------


class MemberInfo(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A live process as its heartbeat describes it.

    Attributes:
        pid: the process id (:func:`make_process_id`).
        expires_ms: when its membership lapses without a new heartbeat (Redis's clock).
        started_ms: when it joined.
        server_ids: the CCU server ids it serves.
        ccu_through_ms: the last slot it reported (or declined as stale); 0 before any.
        host, listener, version: for operators.
    """

    pid: str
    expires_ms: int
    started_ms: int = 0
    server_ids: tuple[str, ...] = ()
    ccu_through_ms: int = 0
    host: str = ""
    listener: str = ""
    version: str = ""


def member_fields(
    *, host: str, os_pid: int, started_ms: int, server_ids: Iterable[str], listener: str = "", version: str = ""
) -> dict[str, str]:
    """The hash fields a heartbeat writes (``ccu_through`` is written by the CCU report)."""
    return {
        "host": host,
        "os_pid": str(os_pid),
        "started_ms": str(started_ms),
        "server_ids": ",".join(server_ids),
        "listener": listener,
        "version": version,
    }


def _int(value: bytes | str | None) -> int:
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0


def decode_member(pid: str, expires_ms: int, fields: Mapping[bytes, bytes]) -> MemberInfo:
    """A :class:`MemberInfo` from the member's hash (an expired hash gives only pid and expiry)."""
    get = fields.get
    servers = _text(get(b"server_ids", b""))
    return MemberInfo(
        pid=pid,
        expires_ms=expires_ms,
        started_ms=_int(get(b"started_ms")),
        server_ids=tuple(s for s in servers.split(",") if s),
        ccu_through_ms=_int(get(b"ccu_through")),
        host=_text(get(b"host", b"")),
        listener=_text(get(b"listener", b"")),
        version=_text(get(b"version", b"")),
    )


def live_members(members: Iterable[MemberInfo], now_ms: int) -> list[MemberInfo]:
    """The members whose membership has not lapsed at ``now_ms``, in pid order."""
    return sorted((m for m in members if m.expires_ms > now_ms), key=lambda m: m.pid)


# -- CCU -----------------------------------------------------------------------------------------------------------


def ccu_field(server: str, pid: str) -> str:
    """The ``P:ccu:r:{slot}`` field of one process's count for one server id."""
    return f"{server}|{pid}"


def frozen_field(server: str, slot_ms: int) -> str:
    """The ``P:ccu:frozen`` field (and ``P:ccu:pending`` member) of a (server id, slot)."""
    return f"{server}|{slot_ms}"


def parse_frozen_field(value: bytes | str) -> tuple[str, int]:
    """Inverse of :func:`frozen_field`. Raises ValueError on another shape."""
    server, sep, slot = _text(value).rpartition("|")
    if not sep or not slot.isdigit():
        raise ValueError(f"not a CCU slot field: {_text(value)[:80]!r}")
    return server, int(slot)


class PendingSample(msgspec.Struct, frozen=True, gc=False):
    """A frozen sample not yet answered by the platform."""

    server: str
    slot_ms: int
    users: int


def freeze_ready(server: str, slot_ms: int, members: Iterable[MemberInfo], now_ms: int, collect_wait_ms: int) -> bool:
    """Whether the leader may freeze (server, slot) now.

    True once the collect wait after the slot has passed, or when every live member that serves ``server`` and
    joined before the slot has reported it (``ccu_through >= slot``). A member that joined after the slot had
    no count at its instant and is not waited for; an expired member is not either.
    """
    if now_ms >= slot_ms + collect_wait_ms:
        return True
    for m in members:
        if m.expires_ms <= now_ms or server not in m.server_ids or m.started_ms > slot_ms:
            continue
        if m.ccu_through_ms < slot_ms:
            return False
    return True


def history_value(slot_ms: int, users: int, code: int) -> str:
    """A ``P:ccu:hist:{server}`` member: ``slot_ms:users:code``."""
    return f"{slot_ms}:{users}:{code}"


def parse_history(value: bytes | str) -> tuple[int, int, int]:
    """Inverse of :func:`history_value`: (slot_ms, users, code). Raises ValueError on another shape."""
    parts = _text(value).split(":")
    if len(parts) != 3 or not all(p.lstrip("-").isdigit() for p in parts):
        raise ValueError(f"not a CCU history value: {_text(value)[:80]!r}")
    return int(parts[0]), int(parts[1]), int(parts[2])


# -- timing --------------------------------------------------------------------------------------------------------


def block_ms(block_s: float, socket_timeout_s: float | None) -> int:
    """The block time of a blocking XREAD: the wish, kept at least 0.5 s (or a quarter) below the socket timeout.

    A blocking read longer than the client's socket timeout fails with a timeout instead of returning empty.
    """
    wish = max(1, int(block_s * 1000))
    if socket_timeout_s is None:
        return wish
    limit = int(socket_timeout_s * 1000)
    return max(1, min(wish, limit - max(500, limit // 4)))
