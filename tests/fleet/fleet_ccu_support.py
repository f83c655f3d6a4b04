"""Parts of the fleet CCU tests: one fleet "process" in this test process (its own connection, pid, membership,
lease, sink and leader job), a counter whose counts the test sets, and the sandbox collector's accepted samples.

A ``Node`` is real all the way down (a real Redis, the real sampler, sink, freeze script and sender over HTTP to
the sandbox); several Nodes in one test stand for several processes (the multi-process tests use real ones).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from gs_hooks import KST, CcuConfig, SystemClock
from gs_hooks._signal import Changed
from gs_hooks._store import Store
from gs_hooks._time import format_kst, grid_slot
from gs_hooks.ccu import CcuReporter, CcuSpool
from gs_hooks.ccu._metrics import CcuMetrics
from gs_hooks.ccu._sampler import CcuSampler, SampleSink
from gs_hooks.fleet import FleetCcu, FleetConfig, FleetRedis, Keys, Leadership, Membership
from gs_hooks.fleet._ccu_leader import FleetCcuLeader
from gs_hooks.fleet._ccu_sink import FleetSink
from gs_hooks.sandbox import CCU_PATH, Sandbox

GAME = "tinyfarm_KR"
KEYS = Keys("t", GAME)


def future_slots(n: int, *, days: int = 1) -> list[int]:
    """``n`` consecutive minute slots (epoch seconds) starting a whole day from now: the sandbox takes any minute,
    Redis never finds them stale, and the leader freezes each only once every live member reported it."""
    start = grid_slot(datetime.now(KST) + timedelta(days=days), 60).timestamp()
    return [int(start) + 60 * i for i in range(n)]


class SetCounter:
    """A counter whose counts the test sets: ``counts[(server, slot)]``, 0 when unset."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, int], int] = {}

    def count(self, server_id: str, instant: float) -> int:
        return self.counts.get((server_id, int(instant)), 0)


class Node:
    """One fleet process's CCU parts, built from its own connection."""

    def __init__(
        self,
        config: FleetConfig,
        pid: str,
        servers: tuple[str, ...],
        *,
        ccu_url: str,
        http: httpx.AsyncClient,
        direct: SampleSink | None = None,
        staleness_s: float = 5.0,
        collect_wait_s: float = 10.0,
        started_ms: int | None = None,
    ) -> None:
        self.redis = FleetRedis(config)
        self.pid = pid
        self.servers = servers
        self.membership = Membership(
            self.redis, KEYS, pid, heartbeat_s=1, member_ttl_s=30, server_ids=servers, started_ms=started_ms
        )
        self.leadership = Leadership(self.redis, KEYS, pid, ttl_s=30, renew_s=1)
        self.fleet = FleetCcu(self.redis, KEYS, pid, self.leadership, staleness_s=staleness_s)
        self.reports: list[tuple[int, dict[str, int], dict[str, str]]] = []
        self.sink = FleetSink(
            self.fleet,
            self.membership,
            staleness_s=staleness_s,
            clock=SystemClock(),
            direct=direct,
            on_report=lambda slot, counts, outcomes: self.reports.append((slot, counts, outcomes)),
        )
        self.counter = SetCounter()
        self.sampler = CcuSampler(
            game=GAME,
            server_ids=servers,
            counter=self.counter,
            period_s=60,
            clock=SystemClock(),
            sink=self.sink,
            metrics=CcuMetrics(),
            changed=Changed(),
        )
        self.leader = FleetCcuLeader(
            self.fleet,
            self.membership,
            CcuConfig(game=GAME, server_ids=servers, url=ccu_url, backoff_base_s=0.05, backoff_max_s=0.2),
            url=ccu_url,
            http=http,
            clock=SystemClock(),
            collect_wait_s=collect_wait_s,
            poll_s=0.05,
            rejoin_s=0,
        )

    async def start(self) -> None:
        await self.redis.start()
        await self.membership.beat()

    async def take(self, slot: int, counts: Mapping[str, int], *, now: float | None = None) -> None:
        """The sampler's step at a grid instant with these counts (taken at ``now``, on time by default)."""
        for server, n in counts.items():
            self.counter.counts[(server, slot)] = n
        await self.sampler.take(slot, slot if now is None else now)

    async def aclose(self) -> None:
        await self.redis.aclose()


def accepted(sb: Sandbox) -> dict[tuple[str, str], list[int]]:
    """(server, date) -> the users of every sample the collector saved (100) for the game."""
    out: dict[tuple[str, str], list[int]] = {}
    for s in sb.ccu.samples_for(GAME):
        out.setdefault((s.server, s.date), []).append(s.user)
    return out


def date(slot: int) -> str:
    return format_kst(slot)


def codes(sb: Sandbox) -> list[tuple[str | None, str | None, int]]:
    """Every answered attempt: (server, date, code)."""
    return [(a.server, a.date, a.result) for a in sb.ccu.attempts]


def sandbox_kwargs() -> dict[str, Any]:
    return {"ccu_period_s": 60, "game_keys": (GAME,)}


def local_reporter(tmp_path: Path, url: str, http: httpx.AsyncClient, servers: tuple[str, ...]) -> CcuReporter:
    """The single-process reporter (spool + sender) a fleet sink sends a lone server id's samples through while
    Redis is unreachable."""
    return CcuReporter(
        CcuConfig(game=GAME, server_ids=servers, url=url, backoff_base_s=0.05, backoff_max_s=0.2),
        http=http,
        spool=CcuSpool(Store(str(tmp_path / "spool.sqlite3"))),
        counter=SetCounter(),
        owns_store=True,
    )


class SandboxProcess:
    """``python -m gs_hooks sandbox`` in its own process (the collector and Gamebase the fleet's children use),
    read and driven through its ``/_sandbox`` admin API."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gs_hooks", "sandbox", "--port", "0", "--ccu-period", "60", "--game-key", GAME],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.proc.kill()
            raise RuntimeError(f"the sandbox did not start: {line!r}")
        self.url = line.strip().rsplit(" ", 1)[1]
        self.http = httpx.Client(base_url=self.url, timeout=10)

    @property
    def ccu_url(self) -> str:
        return self.url + CCU_PATH

    def samples(self) -> list[dict[str, Any]]:
        return list(self.http.get("/_sandbox/ccu/samples", params={"game": GAME}).json()["samples"])

    def stats(self) -> dict[str, Any]:
        return dict(self.http.get("/_sandbox/ccu/stats").json())

    def fault(self, **rule: Any) -> int:
        return int(self.http.post("/_sandbox/faults", json=rule).json()["id"])

    def clear_faults(self) -> None:
        self.http.delete("/_sandbox/faults")

    def token(self, user: str) -> str:
        self.http.post("/_sandbox/gamebase/members", json={"userId": user})
        return str(self.http.post(f"/_sandbox/gamebase/members/{user}/tokens", json={}).json()["accessToken"])

    def stop(self) -> None:
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
