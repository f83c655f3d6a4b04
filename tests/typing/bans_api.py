"""Exercises the bans / Hive public API under ``mypy --strict`` (run by scripts/check); never executed by pytest."""

from __future__ import annotations

from datetime import datetime, timedelta

import gs_hooks
from gs_hooks import Ban, BanBook, BanDetails, BanEvent, WebstoreChannel, WebstoreCharacter, WebstoreProfile


async def on_ban(event: BanEvent) -> None:
    ban: Ban = event.ban
    kicked: int = event.sessions_kicked
    ends: datetime | None = ban.ends_at
    print(event.player_key, ban.source, ban.status, ban.starts_at, ends, ban.message, kicked)


def on_kick(request: gs_hooks.KickRequest) -> None:
    if request.reason == "ban" and isinstance(request.details, BanDetails):
        print(request.details.source, request.details.ends_at)


async def webstore_profile(cs_code: str) -> WebstoreProfile | None:
    if not cs_code:
        return None
    character = WebstoreCharacter(character_id="A", character_name="Hero", character_level=99)
    channel = WebstoreChannel(channel_id="1", channel_name="Ch 1", characters=(character,))
    return WebstoreProfile(servers=(gs_hooks.WebstoreServer(server_id="1", server_name="S1", channels=(channel,)),))


async def main() -> None:
    hooks = gs_hooks.setup(gs_hooks.Config(), on_kick=on_kick, on_ban=on_ban, webstore_profile=webstore_profile)
    async with hooks:
        book: BanBook = hooks.bans
        ban: Ban = await hooks.ban("p1", datetime.now(gs_hooks.KST) + timedelta(days=1), message="x")
        lifted: int = await hooks.unban("p1")
        active: Ban | None = book.active_ban("p1")
        changed: bool = book.apply_nowait(ban)
        print(lifted, active, changed, [b.player_key for b in book.active_bans()])
