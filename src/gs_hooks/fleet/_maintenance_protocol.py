"""Fleet mode's wire format for the maintenance result the leader publishes (``P:maint``), pure (no IO): the
leader's poll as JSON, and back with the zones named (UTC, KST). Re-exported by :mod:`._protocol`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec

from .._time import KST
from ..gamebase._maintenance_state import MaintenanceDetails

__all__ = ["PublishedMaintenance", "decode_maintenance", "encode_maintenance"]


class PublishedMaintenance(msgspec.Struct, frozen=True, kw_only=True):
    """The leader's last maintenance poll, as every process's watcher reads it (``P:maint``).

    Attributes:
        polled_at: when the leader polled (its clock, epoch seconds).
        leader: the process id of the leader that polled.
        windows: the windows Gamebase reported.
        under_maintenance: Gamebase's flag (or simple launching's status 303).
        error: the poll's error (no secret) when it failed; the windows are then empty.
    """

    polled_at: float
    leader: str
    windows: tuple[MaintenanceDetails, ...] = ()
    under_maintenance: bool = False
    error: str | None = None


_MAINT_DECODER = msgspec.json.Decoder(PublishedMaintenance)
_ZONES = {timedelta(0): UTC, timedelta(hours=9): KST}


def encode_maintenance(result: PublishedMaintenance) -> bytes:
    """JSON (dates as ISO 8601 with their offset)."""
    return msgspec.json.encode(result)


def _named(moment: datetime | None) -> datetime | None:
    offset = None if moment is None else moment.utcoffset()
    zone = None if offset is None else _ZONES.get(offset)
    return moment if moment is None or zone is None else moment.replace(tzinfo=zone)


def decode_maintenance(data: bytes | str) -> PublishedMaintenance:
    """Inverse of :func:`encode_maintenance` (offsets +00:00 and +09:00 come back as UTC and KST).

    Raises:
        ValueError: ``data`` is not a published maintenance result.
    """
    try:
        result = _MAINT_DECODER.decode(data)
    except msgspec.DecodeError as exc:
        raise ValueError(f"not a published maintenance result: {exc}") from None
    windows = tuple(
        msgspec.structs.replace(w, begins_at=_named(w.begins_at), ends_at=_named(w.ends_at)) for w in result.windows
    )
    return msgspec.structs.replace(result, windows=windows)
