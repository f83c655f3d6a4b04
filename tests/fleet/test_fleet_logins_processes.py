"""Duplicate login across real processes: 4 fleet processes (hooks on the sandbox's Gamebase, in their own OS
processes) log one player in 250 times each, all at once, with sandbox tokens. Whatever the interleaving, exactly
one session is left, the owner key names it, and every other login was refused or bound then kicked
(``duplicate_login``) as the policy says; the ownership re-check is off, so the claims and notices alone did it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fleet_ccu_support import SandboxProcess
from fleet_support import Child, RedisServer, children

B_CHILD = Path(__file__).with_name("fleet_b_child.py")
PLAYER = "7101"


@pytest.fixture
def sandbox() -> Iterator[SandboxProcess]:
    sb = SandboxProcess()
    try:
        yield sb
    finally:
        sb.stop()


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["kick_older", "refuse_newer"])
def test_a_thousand_concurrent_logins_of_one_player_on_four_processes_leave_one_session(
    redis_server: RedisServer, sandbox: SandboxProcess, tmp_path: Path, policy: str
) -> None:
    token = sandbox.token(PLAYER)
    procs = [
        Child(
            "logins",
            redis_server.url,
            str(i),
            sandbox.url,
            "sandbox-app",
            "sandbox-secret",
            policy,
            str(tmp_path / f"p{i}.sqlite3"),
            script=B_CHILD,
        )
        for i in range(4)
    ]
    with children(*procs):
        pids = [c.expect(lambda m: m["type"] == "ready")["pid"] for c in procs]
        for c in procs:  # as close to together as four pipes allow
            c.send({"op": "logins", "player": PLAYER, "token": token, "n": 250})
        outcomes = [c.expect(lambda m: m["type"] == "logins", timeout=60)["outcomes"] for c in procs]
        state = settled(procs)
    assert sum(len(o) for o in outcomes) == 1000
    live = [(i, sid) for i, s in enumerate(state) for sid in s["sessions"]]
    assert len(live) == 1, live
    ((proc, session),) = live
    assert state[0]["owner"].startswith(f"{pids[proc]}|{session}|")  # the owner key names the one left
    ok = {(i, sid) for i, o in enumerate(outcomes) for sid, outcome in o if outcome == "ok"}
    refused = [outcome for o in outcomes for _, outcome in o if outcome != "ok"]
    kicked = {(i, sid) for i, s in enumerate(state) for sid, reason in s["kicked"] if reason == "duplicate_login"}
    assert set(refused) <= {"duplicate_login"}  # no other reason: every loser lost to the policy
    assert ok == kicked | {(proc, session)}  # every login that bound and is gone was kicked, once
    assert len(ok) + len(refused) == 1000
    if policy == "refuse_newer":
        assert len(ok) == 1 and not kicked  # the first claim won; every later one was refused


def settled(procs: list[Child]) -> list[dict[str, object]]:
    """Each process's state once kicks in flight have landed (the same answer twice in a row)."""
    previous: list[dict[str, object]] | None = None
    for _ in range(50):
        state = []
        for c in procs:
            c.send({"op": "state", "player": PLAYER})
            state.append(c.expect(lambda m: m["type"] == "state"))
        if state == previous:
            return state
        previous = state
        time.sleep(0.4)  # longer than an inbox read blocks: a notice in flight lands meanwhile
    raise AssertionError(f"the processes did not settle: {previous}")
