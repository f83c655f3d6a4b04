"""The Redis key names of one fleet (pure), and fleet process ids.

Every key of a fleet is under ``{prefix}:{game}:``; see :mod:`._protocol` for what each key holds.
"""

from __future__ import annotations

import re

__all__ = ["Keys", "make_process_id"]

_PREFIX = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_HOST_SAFE = re.compile(r"[^A-Za-z0-9.\-]")


class Keys:
    """Every Redis key of one fleet, under ``{prefix}:{game}:``.

    Args:
        prefix: ``GS_HOOKS_REDIS_PREFIX`` (letters, digits, ``_.-``).
        game: ``GS_HOOKS_GAME``.

    Raises:
        ValueError: the prefix or game holds a character that would change a key's meaning.
    """

    __slots__ = (
        "bans",
        "bans_seq",
        "bans_set",
        "bans_wm",
        "base",
        "ccu_frozen",
        "ccu_open",
        "ccu_pending",
        "ccu_refused",
        "ccu_servers",
        "epoch",
        "fence",
        "leader",
        "maint",
        "members",
    )

    def __init__(self, prefix: str, game: str) -> None:
        for what, value in (("prefix", prefix), ("game", game)):
            if not _PREFIX.fullmatch(value):
                raise ValueError(f"fleet {what} {value!r} must be 1-64 letters, digits, '_', '.' or '-'")
        self.base = f"{prefix}:{game}:"
        b = self.base
        self.epoch = b + "epoch"
        self.members = b + "members"
        self.leader = b + "leader"
        self.fence = b + "leader:fence"
        self.bans = b + "bans"
        self.bans_set = b + "bans:set"
        self.bans_seq = b + "bans:seq"
        self.bans_wm = b + "bans:wm"
        self.ccu_frozen = b + "ccu:frozen"
        self.ccu_pending = b + "ccu:pending"
        self.ccu_open = b + "ccu:open"
        self.ccu_refused = b + "ccu:refused"
        self.ccu_servers = b + "ccu:servers"
        self.maint = b + "maint"

    def member(self, pid: str) -> str:
        """The hash of process ``pid``."""
        return f"{self.base}member:{pid}"

    def inbox(self, pid: str) -> str:
        """The inbox stream of process ``pid``."""
        return f"{self.base}inbox:{pid}"

    @property
    def inbox_prefix(self) -> str:
        """What an inbox key starts with (a script computes the previous owner's inbox from it)."""
        return f"{self.base}inbox:"

    def seq(self, stream: str) -> str:
        """The sequence counter of a stream key."""
        return stream + ":seq"

    def owner(self, player: str) -> str:
        """The owner key of a player."""
        return f"{self.base}owner:{player}"

    def ccu_reports(self, slot_ms: int) -> str:
        """The hash of absolute counts reported for the slot starting at ``slot_ms``."""
        return f"{self.base}ccu:r:{slot_ms}"

    def ccu_history(self, server: str) -> str:
        """The zset of sent samples of one server id."""
        return f"{self.base}ccu:hist:{server}"

    def reply(self, request: str) -> str:
        """The short-lived list a forwarded request's answer is pushed to."""
        return f"{self.base}reply:{request}"

    def __repr__(self) -> str:
        return f"Keys({self.base!r})"


def make_process_id(host: str, os_pid: int, token: str) -> str:
    """A fleet-unique process id: ``host/pid/token`` (host reduced to ``[A-Za-z0-9.-]``, at most 40 chars).

    Never holds ``|`` or ``:`` (owner and lease values are ``pid|...``; keys are ``...:{pid}``).
    """
    safe = _HOST_SAFE.sub("_", host)[:40] or "host"
    return f"{safe}/{os_pid}/{token}"
