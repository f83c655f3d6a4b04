"""Exercises the Gamebase public API under ``mypy --strict`` (run by scripts/check); never executed by pytest."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx

import gs_hooks
from gs_hooks import (
    BanPage,
    GamebaseClient,
    GamebaseResult,
    MaintenanceChange,
    MaintenanceDetails,
    MaintenanceState,
    NoticeRequest,
    TokenInfo,
)


def on_maintenance(change: MaintenanceChange) -> None:
    details: MaintenanceDetails | None = change.details
    if change.state is MaintenanceState.ACTIVE and details is not None:
        ends: datetime | None = details.ends_at
        print(change.previous.value, details.message, details.url, ends, change.at)


async def on_notice(request: NoticeRequest) -> None:
    left: float = request.seconds_left
    print(request.session.id, request.kind, request.message, left)


async def login(hooks: gs_hooks.Hooks, session: gs_hooks.Session, user: str, token: str) -> str:
    try:
        info: TokenInfo = await hooks.login(session, user, token)
    except gs_hooks.TokenInvalidError as exc:
        return f"token: {exc.code}"
    except gs_hooks.MemberNotValidError as exc:
        return f"member: {exc.valid}"
    except gs_hooks.MaintenanceError as exc:
        return f"maintenance until {exc.ends_at}: {exc.url}"
    except gs_hooks.BannedError as exc:
        return f"banned until {exc.ends_at}"
    except gs_hooks.InvalidLoginError as exc:
        field: str = exc.field
        return f"{exc.reason}: {field}"
    except gs_hooks.PlatformUnavailableError as exc:
        retry_after: float = exc.retry_after_s
        return f"try again in {retry_after}"
    return info.member.valid


async def login_from_json(hooks: gs_hooks.Hooks, session: gs_hooks.Session, msg: dict[str, object]) -> None:
    """The client's values as they came (a JSON number, a missing field): login takes them and refuses bad ones."""
    user = msg.get("user_id")
    token = msg.get("access_token")
    await hooks.login(session, user if isinstance(user, str | int) else None, token if isinstance(token, str) else None)
    await hooks.login(session, 7101, gs_hooks.Secret("token"))
    await hooks.kick(7101)
    await hooks.ban(7101)
    hooks.saw_user(7101)
    print(hooks.registry.sessions_of(7101), hooks.bans.active_ban(7101))


async def client(http: httpx.AsyncClient) -> None:
    gb = GamebaseClient(http, base_url="https://api-gamebase.cloud.toast.com", app_id="app", secret_key="key")
    info = await gb.verify_token("u", gs_hooks.Secret("token"), transaction_id="tx")
    tx: str | None = info.transaction_id
    end = datetime.now(gs_hooks.KST)
    async for page in gb.iter_ban_histories(end - timedelta(hours=1), end, page_size=100):
        p: BanPage = page
        for record in p.records:
            print(record.user_id, record.begins_at, record.ends_at, tx)
    count: GamebaseResult = await gb.leaderboard_user_count("factor")
    print(count.data.get("totalCount"))
    under = await gb.under_maintenance()
    print(under.under_maintenance, [m.begin_date for m in under.maintenances])


def wire() -> gs_hooks.Hooks:
    return gs_hooks.setup(gs_hooks.Config.from_env(), on_maintenance=on_maintenance, on_notice=on_notice)
