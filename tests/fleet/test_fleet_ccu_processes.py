"""The CCU bar on real processes: 4 fleet processes (2 server ids, some shared), 60 slots driven by the test (each
process's sampler takes the slot when told, dated when the instant was due), the sandbox collector in its own
process, a real redis-server, and every fault of the issue: kill -9 of a process before and after its report, of
the leader before the freeze, between the freeze and the send, and during the send; a process paused past its
heartbeat and past an instant; Redis restarted (without persistence); one process cut off from Redis by a TCP
proxy. After all of it: 0 missing, 0 doubled, every sample equal to the sum of the counts Redis accepted."""

from __future__ import annotations

import signal
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fleet_ccu_support import SandboxProcess, date, future_slots
from fleet_support import Child, RedisServer, TcpProxy

B_CHILD = Path(__file__).with_name("fleet_b_child.py")
SERVES = {1: ("s1", "s2"), 2: ("s1", "s2"), 3: ("s1",), 4: ("s2",)}
FROZEN = "t:tinyfarm_KR:ccu:frozen"


def count(index: int, server: str, k: int) -> int:
    return 10 * index + k % 7 + (100 if server == "s2" else 0)


@pytest.fixture
def sandbox() -> Iterator[SandboxProcess]:
    sb = SandboxProcess()
    try:
        yield sb
    finally:
        sb.stop()


class Proc:
    """One fleet process of the test (a restarted one is a new Proc: a new pid)."""

    def __init__(self, index: int, url: str, sandbox: SandboxProcess) -> None:
        self.index = index
        self.url = url
        servers = ",".join(SERVES[index])
        self.child = Child("ccu", url, str(index), servers, sandbox.ccu_url, script=B_CHILD)
        self.pid = str(self.child.expect(lambda m: m["type"] == "ready")["pid"])
        self.alive = True
        self.quiet = False  # paused or cut off: its reports come later

    def take(self, slot: int, k: int, at: float) -> None:
        counts = {s: count(self.index, s, k) for s in SERVES[self.index]}
        self.child.send({"op": "take", "slot": slot, "at": at, "counts": counts})

    def reported(self, slot: int, timeout: float = 20) -> dict[str, Any]:
        return self.child.expect(lambda m: m["type"] == "report" and m["slot"] == slot, timeout)

    def kill(self) -> None:
        self.child.kill()
        self.alive = False


class Fleet:
    def __init__(self, redis: RedisServer, sandbox: SandboxProcess, proxy: TcpProxy) -> None:
        self.redis = redis
        self.sandbox = sandbox
        self.proxy = proxy
        self.procs: list[Proc] = []
        self.slots = future_slots(60)
        for i in SERVES:
            self.start(i)

    def start(self, index: int) -> Proc:
        url = self.proxy.url if index == 4 else self.redis.url  # process 4 reaches Redis through the proxy
        proc = Proc(index, url, self.sandbox)
        self.procs.append(proc)
        return proc

    @property
    def live(self) -> list[Proc]:
        return [p for p in self.procs if p.alive]

    def take(self, k: int, *, only: Callable[[Proc], bool] = lambda p: True, wait: bool = True) -> None:
        at = time.time()
        chosen = [p for p in self.live if only(p)]
        for p in chosen:
            p.take(self.slots[k], k, at)
        if wait:
            for p in chosen:
                if not p.quiet:
                    p.reported(self.slots[k])

    def leader(self, timeout: float = 15) -> Proc:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = self.redis.command("GET", "t:tinyfarm_KR:leader")
            except (OSError, RuntimeError):
                value = None
            if value:
                pid = value.rsplit("|", 1)[0]
                for p in self.live:
                    if p.pid == pid:
                        return p
            time.sleep(0.05)
        raise AssertionError("no live leader")

    def frozen(self, k: int, servers: tuple[str, ...] = ("s1", "s2")) -> bool:
        return all(self.redis.command("HGET", FROZEN, f"{s}|{self.slots[k] * 1000}") is not None for s in servers)

    def wait(self, predicate: Callable[[], bool], what: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, what
            time.sleep(0.05)

    def stop(self) -> None:
        for p in self.procs:
            p.child.stop()


@pytest.mark.slow
def test_sixty_slots_four_processes_two_server_ids_every_fault(
    redis_server: RedisServer, sandbox: SandboxProcess
) -> None:
    proxy = TcpProxy(redis_server.port)
    fleet = Fleet(redis_server, sandbox, proxy)
    try:
        drive(fleet)
        expected = sums(fleet)
        fleet.wait(lambda: len(sandbox.samples()) >= len(expected), "every slot sent", timeout=60)
        time.sleep(1.0)  # a doubled sample would arrive now
        samples = sandbox.samples()
    finally:
        fleet.stop()
        proxy.close()
    got: dict[tuple[str, str], list[int]] = defaultdict(list)
    for s in samples:
        got[(s["server"], s["date"])].append(s["user"])
    want = {(server, date(slot)): [total] for (server, slot), total in expected.items()}
    assert len(want) == 120  # every slot of both server ids had counts: none may be missing
    assert dict(got) == want  # one sample each (0 doubled, 0 missing), each the sum of the accepted counts
    stats = sandbox.stats()
    assert stats["duplicates_saved"] == 0
    assert stats["duplicate_requests"] >= 1  # the send cut by the leader's death went again, answered 101
    assert terms(fleet) >= 5  # three leaders killed, Redis restarted: each a new term


def drive(fleet: Fleet) -> None:
    k = 0
    while k < 60:
        step = FAULTS.get(k)
        k = step(fleet, k) if step is not None else normal(fleet, k)


def normal(fleet: Fleet, k: int) -> int:
    fleet.take(k)
    return k + 1


def kill_after_report(fleet: Fleet, k: int) -> int:
    leader = fleet.leader()
    victim = next(p for p in fleet.live if p is not leader and p.index != 4)
    fleet.take(k)
    victim.kill()
    fleet.start(victim.index)  # a new process (new pid) takes its place from the next slot
    return k + 1


def kill_before_report(fleet: Fleet, k: int) -> int:
    leader = fleet.leader()
    victim = next(p for p in fleet.live if p is not leader and p.index != 4)
    fleet.take(k, only=lambda p: p is not victim, wait=False)  # its command never arrives: it dies first
    victim.kill()
    for p in fleet.live:
        p.reported(fleet.slots[k])
    fleet.start(victim.index)
    return k + 1


def kill_leader_before_freeze(fleet: Fleet, k: int) -> int:
    leader = fleet.leader()
    held = next(p for p in fleet.live if p is not leader and "s1" in SERVES[p.index] and p.index != 4)
    at = time.time()
    for p in fleet.live:
        if p is not held:
            p.take(fleet.slots[k], k, at)
    for p in fleet.live:
        if p is not held:
            p.reported(fleet.slots[k])
    assert not fleet.frozen(k, ("s1",))  # the leader waits for the held process's s1 count
    leader.kill()
    fleet.leader()
    held.take(fleet.slots[k], k, at)
    held.reported(fleet.slots[k])
    fleet.start(leader.index)
    return k + 1


def kill_leader_between_freeze_and_send(fleet: Fleet, k: int) -> int:
    fleet.sandbox.fault(route="ccu", kind="status", status=503)  # every send fails: frozen, pending
    leader = fleet.leader()
    fleet.take(k)
    fleet.wait(lambda: fleet.frozen(k), "slot frozen")
    leader.kill()
    fleet.sandbox.clear_faults()
    fleet.leader()  # the new leader sends the frozen values
    fleet.start(leader.index)
    return k + 1


def kill_leader_during_the_send(fleet: Fleet, k: int) -> int:
    fleet.sandbox.fault(route="ccu", kind="delay", delay_s=1.5, count=2)  # the collector saves, then answers
    leader = fleet.leader()
    fleet.take(k)
    fleet.wait(lambda: fleet.frozen(k), "slot frozen")
    time.sleep(0.5)  # the sends are in flight
    leader.kill()
    fleet.leader()
    fleet.start(leader.index)
    return k + 1


def pause_past_heartbeat_and_instant(fleet: Fleet, k: int) -> int:
    leader = fleet.leader()
    paused = next(p for p in fleet.live if p is not leader and p.index != 4)
    paused.child.signal(signal.SIGSTOP)
    paused.quiet = True
    fleet.take(k)  # its command waits in its pipe
    fleet.wait(lambda: fleet.frozen(k), "slot frozen without the paused process", timeout=10)
    paused.child.signal(signal.SIGCONT)
    late = paused.reported(fleet.slots[k])
    assert late["counts"] == {} and late["outcomes"] == {}  # taken past the staleness bound: no count
    paused.quiet = False
    return k + 1


def restart_redis(fleet: Fleet, k: int) -> int:
    fleet.sandbox.fault(route="ccu", kind="status", status=503)  # frozen, not sent when Redis loses its data
    fleet.take(k)
    fleet.wait(lambda: fleet.frozen(k), "slot frozen")
    fleet.redis.restart()  # no persistence: reports, frozen values, pending samples, the lease are gone
    fleet.sandbox.clear_faults()
    fleet.take(k + 1)  # the processes write their kept counts of slot k again (a new epoch), then k + 1
    fleet.take(k + 2)
    return k + 3


def cut_one_process(fleet: Fleet, k: int) -> int:
    cut = next(p for p in fleet.live if p.index == 4)
    fleet.proxy.cut()
    cut.quiet = True
    for j in range(k, k + 4):
        fleet.take(j)
        if j == k:  # past its membership (and its lease, when it led): frozen without its count
            fleet.wait(lambda: fleet.frozen(k), "slot frozen without the cut process", timeout=15)
    fleet.proxy.restore()
    late = [cut.reported(fleet.slots[j]) for j in range(k, k + 4)]  # kept, written once Redis answered
    assert {"frozen"} <= {o for m in late for o in m["outcomes"].values()}  # too late for the first slot
    cut.quiet = False
    return k + 4


FAULTS: dict[int, Callable[[Fleet, int], int]] = {
    5: kill_after_report,
    10: kill_before_report,
    16: kill_leader_before_freeze,
    22: kill_leader_between_freeze_and_send,
    27: kill_leader_during_the_send,
    32: pause_past_heartbeat_and_instant,
    38: restart_redis,
    46: cut_one_process,
}


def terms(fleet: Fleet) -> int:
    return sum(1 for p in fleet.procs for m in p.child.seen if m.get("type") == "leader")


def sums(fleet: Fleet) -> dict[tuple[str, int], int]:
    """(server id, slot) -> the sum over processes of each one's count Redis accepted (an absolute count written
    again after a data loss is the same count)."""
    accepted: dict[tuple[str, int], dict[str, int]] = defaultdict(dict)
    for p in fleet.procs:
        for m in p.child.drain():
            if m.get("type") != "report":
                continue
            for server, outcome in m["outcomes"].items():
                if outcome == "ok":
                    accepted[(server, m["slot"])][p.pid] = m["counts"][server]
    return {key: sum(by_pid.values()) for key, by_pid in accepted.items()}
