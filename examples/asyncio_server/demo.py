"""``--demo``: the scripted story, with a live status line. Exit 0 only if every step was observed.

1. players log in with sandbox-issued Gamebase tokens (welcome);
2. CCU samples are accepted by the sandbox collector on the grid (a SHORT DEMO GRID of 60 s; production is 120 s);
3. Hive pushes a suspended-user batch: the banned players are kicked at once, the others stay, and a banned
   player's new login is refused with the ban's end date;
4. a Gamebase maintenance window is announced: players are warned, kicked at its begin, logins are refused
   while it lasts and accepted again after it ends;
5. Hive's web store asks for a player's profile: answered per the document (the sandbox validates it);
6. Gamebase answers one login with HTTP 503: the call is retried and the player gets in;
7. an operator uses the admin API: reads the status, kicks a player, lifts a Hive ban.

With ``--metrics-out PATH`` the ``/metrics`` exposition is saved when the story ends (a test reads it).
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import datetime, timedelta
from typing import Any

import httpx

import gs_hooks

from .bots import Bot, SandboxAdmin
from .server import GameServer

STEPS = (
    "login",
    "ccu",
    "ban kick",
    "ban refusal",
    "maintenance warning",
    "maintenance kick",
    "maintenance refusal",
    "login after maintenance",
    "web-store profile",
    "gamebase blip",
    "operator",
)


class Story:
    def __init__(self) -> None:
        self.seen: dict[str, str] = {}
        self.started = time.monotonic()
        self.tty = sys.stdout.isatty()
        self._last_status = ""

    def ok(self, step: str, detail: str) -> None:
        self.seen[step] = detail
        self._line(f"[{time.monotonic() - self.started:5.1f}s] ✔ {step}: {detail}", final=True)

    def status(self, text: str) -> None:
        if not self.tty and text == self._last_status:
            return  # a log file gets each status once; a terminal gets a live line
        self._last_status = text
        self._line(f"[{time.monotonic() - self.started:5.1f}s] … {text}", final=not self.tty)

    def _line(self, text: str, *, final: bool) -> None:
        if self.tty:
            sys.stdout.write("\r\033[K" + text + ("\n" if final else ""))
        else:
            sys.stdout.write(text + "\n")
        sys.stdout.flush()


def _kst(moment: datetime) -> str:
    return moment.astimezone(gs_hooks.KST).strftime("%Y-%m-%d %H:%M:%S")


async def run_demo(
    game: GameServer,
    hooks: gs_hooks.Hooks,
    sandbox: Any,
    *,
    game_host: str,
    game_port: int,
    listener_url: str | None,
    metrics_out: str | None = None,
) -> int:
    if sandbox is None or listener_url is None:
        print("--demo runs on the embedded sandbox: unset GS_HOOKS_CCU_URL and GS_HOOKS_GAMEBASE_URL", flush=True)
        return 2
    story = Story()
    print(f"demo: CCU grid period {hooks.config.ccu.period_s}s (SHORT DEMO GRID; production is 120 s)", flush=True)
    admin = SandboxAdmin(sandbox.url)
    bots = [Bot(str(1000 + i)) for i in range(1, 7)]
    try:
        await _story(story, hooks, admin, bots, game_host, game_port, listener_url)
    except (TimeoutError, ConnectionError, AssertionError) as exc:
        story.status(f"stopped: {type(exc).__name__}: {exc}")
    finally:
        if metrics_out:  # (before the players leave: the live counts are part of it)
            await _save_metrics(listener_url, metrics_out)
        for bot in bots:
            await bot.close()
        await admin.aclose()
    missing = [s for s in STEPS if s not in story.seen]
    print()
    print("summary:")
    for step in STEPS:
        print(f"  {'✔' if step in story.seen else '✘'} {step:<26} {story.seen.get(step, 'NOT OBSERVED')}")
    print(f"game stats: {game.stats}")
    print("demo passed" if not missing else f"demo FAILED: missing {', '.join(missing)}", flush=True)
    return 0 if not missing else 1


async def _story(
    story: Story,
    hooks: gs_hooks.Hooks,
    admin: SandboxAdmin,
    bots: list[Bot],
    host: str,
    port: int,
    listener_url: str,
) -> None:
    server_id = hooks.config.sessions.server_id
    # 1. logins
    tokens: dict[str, str] = {}
    for bot in bots:
        tokens[bot.user_id] = await admin.new_player(bot.user_id)
        await bot.connect(host, port)
        answer = await bot.login(tokens[bot.user_id])
        assert answer["op"] == "welcome", answer
    story.ok("login", f"{len(bots)} players welcomed on server {server_id}")

    # 2. CCU on the grid
    period = hooks.config.ccu.period_s
    deadline = time.monotonic() + period + 30
    while True:
        samples = [s for s in await admin.ccu_samples(server_id) if s.get("user") == len(bots)]
        if samples:
            s = samples[-1]
            assert str(s["date"]).endswith(":00"), s
            story.ok("ccu", f"sample {s['date']} KST server {s['server']} user {s['user']} accepted (result 100)")
            break
        if time.monotonic() > deadline:
            raise TimeoutError("no CCU sample reached the sandbox collector")
        story.status(f"waiting for the next {period}s grid instant for a CCU sample")
        await asyncio.sleep(1)

    # 3. Hive suspension batch: ban two players
    now = datetime.now(gs_hooks.KST)
    banned = bots[:2]
    end = now + timedelta(hours=1)
    report = await admin.push_suspensions(
        [{"player_id": int(b.user_id), "status": "B", "start_date": _kst(now), "end_date": _kst(end)} for b in banned]
    )
    for b in banned:
        kick = await b.expect("kick", timeout=10)
        assert kick["reason"] == "ban", kick
    assert all(not b.closed.is_set() for b in bots[2:]), "a player who was not banned was disconnected"
    story.ok("ban kick", f"Hive batch of {len(banned)} ({report.get('requests', '?')} request) kicked exactly them")
    retry = Bot(banned[0].user_id)
    await retry.connect(host, port)
    answer = await retry.login(tokens[retry.user_id])
    await retry.close()
    assert answer["op"] == "error" and answer["code"] == "banned" and answer.get("ends_at"), answer
    story.ok("ban refusal", f"{answer['message']} (ends_at {answer['ends_at']})")

    # 4. maintenance window: begin in 8 s, lasting 8 s
    remaining = bots[2:]
    begin = datetime.now(gs_hooks.KST) + timedelta(seconds=8)
    finish = begin + timedelta(seconds=8)
    await admin.set_maintenance(begin.isoformat(), finish.isoformat(), "Scheduled maintenance (demo)")
    notice = await remaining[0].expect("notice", timeout=15)
    story.ok("maintenance warning", notice["text"])
    for b in remaining:
        kick = await b.expect("kick", timeout=20)
        assert kick["reason"] == "maintenance", kick
    story.ok("maintenance kick", f"{len(remaining)} players kicked at the window's begin")
    late = Bot(remaining[0].user_id)
    await late.connect(host, port)
    answer = await late.login(tokens[late.user_id])
    await late.close()
    assert answer["op"] == "error" and answer["code"] == "maintenance", answer
    story.ok("maintenance refusal", f"{answer['message']} (ends_at {answer.get('ends_at')})")
    while datetime.now(gs_hooks.KST) < finish:
        story.status("maintenance in progress; waiting for its end")
        await asyncio.sleep(0.5)
    back = Bot(remaining[0].user_id)
    bots.append(back)
    await back.connect(host, port)
    for _ in range(40):  # the gate opens when the watcher's next poll (every second) sees the window over
        answer = await back.login(tokens[back.user_id])
        if answer["op"] == "welcome":
            break
        await asyncio.sleep(0.25)
    assert answer["op"] == "welcome", answer
    story.ok("login after maintenance", f"player {back.user_id} welcomed again")

    # 5. web-store profile
    report = await admin.call_webstore(listener_url + "/webstore-profile", back.user_id)
    assert report.get("violations") == [], report
    unknown = await admin.call_webstore(listener_url + "/webstore-profile", "no-such-user")
    assert unknown.get("violations") == [], unknown
    story.ok(
        "web-store profile",
        f"cs_code {back.user_id} → result {(report.get('body') or {}).get('result_code')}, "
        f"unknown → {(unknown.get('body') or {}).get('result_code')}, "
        "0 schema violations",
    )

    await _operator_steps(story, hooks, admin, remaining, banned[1], tokens, (host, port, listener_url), bots)


async def _operator_steps(
    story: Story,
    hooks: gs_hooks.Hooks,
    admin: SandboxAdmin,
    remaining: list[Bot],
    forgiven_bot: Bot,
    tokens: dict[str, str],
    where: tuple[str, int, str],
    bots: list[Bot],
) -> None:
    """6. A Gamebase blip retried; 7. the operator's admin API: status, a kick, a Hive ban lifted."""
    host, port, listener_url = where
    # 6. a Gamebase hiccup: one HTTP 503 on the token check, retried
    await admin.add_fault("gamebase.token", "status", 503, 1)
    late_comer = Bot(remaining[1].user_id)
    bots.append(late_comer)
    await late_comer.connect(host, port)
    answer = await late_comer.login(await admin.new_token(late_comer.user_id))  # a new token: not in the cache
    assert answer["op"] == "welcome", answer
    story.ok("gamebase blip", f"one HTTP 503 from Gamebase retried: player {late_comer.user_id} welcomed")

    # 7. the operator's side: the admin API (what `gs-hooks admin` and the dashboard's buttons call)
    key = hooks.config.listener.admin_key
    assert key is not None, "the admin API needs GS_HOOKS_ADMIN_KEY"
    headers = {"authorization": f"Bearer {key.get_secret_value()}"}
    async with httpx.AsyncClient(base_url=listener_url + "/admin/", headers=headers, timeout=15) as api:
        status = (await api.get("status")).json()
        kicked = (await api.post("kick", json={"player": late_comer.user_id, "message": "demo: operator kick"})).json()
        kick = await late_comer.expect("kick", timeout=10)
        assert kick["reason"] == "admin" and kicked["kicked"] == 1, (kick, kicked)
        lifted = (await api.post("unban", json={"player": forgiven_bot.user_id})).json()
    forgiven = Bot(forgiven_bot.user_id)
    bots.append(forgiven)
    await forgiven.connect(host, port)
    answer = await forgiven.login(tokens[forgiven.user_id])  # the client's token, still valid: from the cache
    assert answer["op"] == "welcome", answer
    story.ok(
        "operator",
        f"status {status['state']} (ready {status['ready']}), kicked {late_comer.user_id}, lifted "
        f"{len(lifted['lifted'])} {lifted['lifted'][0]['source']} ban of {forgiven.user_id}: welcomed again",
    )


async def _save_metrics(listener_url: str | None, path: str) -> None:
    """Save the listener's /metrics (the demo runs on loopback, inside the admin allowlist)."""
    if listener_url is None:
        return
    async with httpx.AsyncClient(timeout=15) as client:
        r = await client.get(listener_url + "/metrics")
    with open(path, "w", encoding="utf-8") as out:  # noqa: ASYNC230 - a small file, once, at exit
        out.write(r.text if r.status_code == 200 else f"# /metrics answered {r.status_code}: {r.text}\n")
