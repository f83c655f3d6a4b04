"""Parts of the fleet login tests: hooks (``gs_hooks.setup`` against the sandbox's Gamebase) made a fleet process
by hand: their own Redis connection, pid, heartbeat, inbox reader and :class:`FleetLogins` as the login flow's
claim step. Real Redis, real HTTP to the sandbox, real registry and kicker."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import anyio

import gs_hooks
from gs_hooks import KickRequest, SystemClock, WebstoreProfile
from gs_hooks.fleet import Cursor, FleetConfig, FleetRedis, Keys, Membership, Presence, StreamEntry, StreamReader
from gs_hooks.fleet._logins import FleetLogins
from gs_hooks.fleet._protocol import OP_KICK
from gs_hooks.fleet._webstore import OP_WEBSTORE, FleetWebstore
from gs_hooks.hive import WebstoreProfileCallback
from gs_hooks.sandbox import Sandbox

KEYS = Keys("t", "tinyfarm_KR")


class Inbox:
    """The inbox reader's handler: kick notices to the logins, web-store requests to the forwarder, a reload to an
    immediate re-check."""

    def __init__(self, logins: FleetLogins, webstore: FleetWebstore | None) -> None:
        self.logins = logins
        self.webstore = webstore

    async def entries(self, entries: Sequence[StreamEntry], cursor: Cursor) -> None:
        for entry in entries:
            if entry.op == OP_KICK:
                await self.logins.on_kick_notice(entry)
            elif entry.op == OP_WEBSTORE and self.webstore is not None:
                await self.webstore.on_request(entry)

    async def reload(self, reason: str, cursor: Cursor) -> None:
        if reason != "new":
            await self.logins.on_inbox_reload()


class Trampoline:
    """The ``webstore_profile`` given to ``setup()``; the test points it at the fleet forwarder once made."""

    def __init__(self) -> None:
        self.target: WebstoreProfileCallback | None = None

    async def __call__(self, cs_code: str) -> WebstoreProfile | None:
        assert self.target is not None
        result = self.target(cs_code)
        return await result if inspect.isawaitable(result) else result


def hooks_env(sb: Sandbox, tmp_path: Path, name: str, policy: str) -> dict[str, str]:
    return {
        "GS_HOOKS_LISTEN": "127.0.0.1:0",
        "GS_HOOKS_STATE": str(tmp_path / f"{name}.sqlite3"),
        "GS_HOOKS_SERVER_ID": "s1",
        "GS_HOOKS_GAMEBASE_URL": sb.urls()["gamebase_url"],
        "GS_HOOKS_GAMEBASE_APP_ID": sb.gamebase.app_id,
        "GS_HOOKS_GAMEBASE_SECRET_KEY": sb.gamebase_secret,
        "GS_HOOKS_GAMEBASE_BAN_POLL_S": "0",
        "GS_HOOKS_DUPLICATE_LOGIN": policy,
    }


class LoginNode:
    """One fleet process for logins."""

    def __init__(
        self,
        config: FleetConfig,
        pid: str,
        hooks: gs_hooks.Hooks,
        *,
        recheck_s: float = 5.0,
        webstore: WebstoreProfileCallback | None = None,
        webstore_timeout_s: float = 3.0,
    ) -> None:
        self.pid = pid
        self.hooks = hooks
        self.redis = FleetRedis(config)
        self.membership = Membership(self.redis, KEYS, pid, heartbeat_s=0.2, member_ttl_s=2.0)
        self.presence = Presence(self.redis, KEYS, pid)
        self.logins = FleetLogins(self.presence, hooks.registry, hooks.kicker, clock=SystemClock(), recheck_s=recheck_s)
        hooks._login.claims = self.logins
        self.webstore = (
            None
            if webstore is None
            else FleetWebstore(
                webstore, redis=self.redis, keys=KEYS, presence=self.presence, timeout_s=webstore_timeout_s
            )
        )
        self.reader = StreamReader(self.redis, KEYS.inbox(pid), KEYS.epoch, block_ms=300)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[LoginNode]:
        await self.redis.start()
        try:
            async with anyio.create_task_group() as tg:
                await tg.start(self.membership.run)
                await tg.start(self.reader.run, None, Inbox(self.logins, self.webstore))
                await tg.start(self.logins.run)
                if self.webstore is not None:
                    await tg.start(self.webstore.run)
                yield self
                tg.cancel_scope.cancel()
        finally:
            await self.redis.aclose()


def make_hooks(
    sb: Sandbox,
    tmp_path: Path,
    name: str,
    policy: str,
    kicks: list[KickRequest],
    webstore: WebstoreProfileCallback | None = None,
) -> gs_hooks.Hooks:
    config = gs_hooks.Config.from_env(hooks_env(sb, tmp_path, name, policy))
    return gs_hooks.setup(config, on_kick=kicks.append, webstore_profile=webstore)
