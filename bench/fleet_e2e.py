"""Bench of issue 16's end-to-end bars: real game processes in fleet mode on one redis-server, the platform sandbox
in the measuring process.

    python -m bench.fleet_e2e            # full run (figures printed as JSON)
    python -m bench.fleet_e2e --smoke    # small and once (used by the test suite; no timing asserted)

1. Kick latency: one ban sent by Hive (the sandbox's sender) to the webhook listener of one process → the kick
   callback runs on each of the 3 other processes (4 processes), 1,000 bans one at a time, each banning a player
   with one live session on every process. Times are ``time.perf_counter()`` (CLOCK_MONOTONIC, system-wide on
   Linux) to the callback from: the moment the listener's handler got the request ("accepted"), just before the
   sandbox sent the POST (adds the HTTP client's own time), and the answer's arrival. Bar: p50 <= 3 ms, p99 <= 10 ms.
2. Fan-out: 2,000 bans in 20 Hive batches (one POST each, answered one after the other) to one process of 8; the
   figure is from the moment the last batch was answered to the moment the last of the 8 processes has applied all
   2,000 (its ``on_ban`` ran for each). Bar: <= 300 ms.
3. Leader failover: ``kill -9`` of the leader of 4 processes → another process leads (lease TTL 3 s, renewed every
   1 s, the defaults). Bar: <= 10 s.
4. Maintenance polls: Gamebase under-maintenance requests per poll period with 1 process and with 4 (poll 1 s,
   counted by the sandbox). Bar: 4 processes <= 1.5x one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import queue
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio

import gs_hooks
from gs_hooks import KST
from gs_hooks.http._app import Request, Response
from gs_hooks.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[1]
GAME_INDEX = 539


# -- a private Redis ---------------------------------------------------------------------------------------------


def start_redis(directory: str) -> tuple[subprocess.Popen[bytes], str]:
    """A private redis-server (no persistence) on a free loopback port; returns it and its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: apt-get install redis-server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", directory, "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    for _ in range(500):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                c.sendall(b"PING\r\n")
                if c.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            time.sleep(0.01)
    return proc, f"redis://127.0.0.1:{port}/0"


# -- the game process -------------------------------------------------------------------------------------------------


async def _game() -> None:
    config = gs_hooks.Config.from_env()
    want = 0
    applied = 0

    def on_kick(request: gs_hooks.KickRequest) -> None:
        t = time.perf_counter()
        print(json.dumps({"kick": request.session.player_id, "t": t}), flush=True)

    def on_ban(event: gs_hooks.BanEvent) -> None:
        nonlocal applied
        applied += 1
        if want and applied == want:
            print(json.dumps({"all": time.perf_counter()}), flush=True)

    hooks = gs_hooks.setup(config, on_kick=on_kick, on_ban=on_ban)
    route, _, _ = hooks.router.resolve("POST", config.hive.suspension_path)
    if route is not None:  # note when the listener's handler got each ban, printed once the answer is on its way
        handler = route.handler
        loop = asyncio.get_running_loop()

        async def noted(request: Request) -> Response:
            accepted = time.perf_counter()
            response = await handler(request)
            loop.call_soon(lambda: print(json.dumps({"accepted": accepted}), flush=True))
            return response

        route.handler = noted
    async with hooks:
        fleet = hooks.fleet
        assert fleet is not None
        listener = hooks.listener.url if hooks.listener is not None else None
        print(json.dumps({"ready": True, "listener": listener, "pid": fleet.pid, "os_pid": os.getpid()}), flush=True)

        async def leader() -> None:
            leading = False
            while True:
                if fleet.is_leader != leading:
                    leading = fleet.is_leader
                    print(json.dumps({"leader": leading, "t": time.perf_counter()}), flush=True)
                await anyio.sleep(0.005)

        async with anyio.create_task_group() as tg:
            tg.start_soon(leader)
            while True:
                line = await anyio.to_thread.run_sync(sys.stdin.readline)
                if not line:
                    break
                msg = json.loads(line)
                if msg["op"] == "sessions":
                    for player in msg["players"]:
                        hooks.bind_player(hooks.registry.open_nowait(), player)
                    print(json.dumps({"sessions": len(hooks.registry)}), flush=True)
                elif msg["op"] == "expect":
                    want, applied = int(msg["n"]), 0
                    print(json.dumps({"expecting": want}), flush=True)
            tg.cancel_scope.cancel()


# -- the measuring process ------------------------------------------------------------------------------------------


class Proc:
    """A game process: JSON lines in, JSON lines out (read on a thread into a queue)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.fleet_e2e", "--game"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        self.ready = self.expect(lambda m: "ready" in m, 60)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put(json.loads(raw))

    def expect(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("a game process did not answer")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if predicate(line):
                return line

    def send(self, msg: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()

    def stop(self, kill: bool = False) -> None:
        if self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _items(players: list[str]) -> list[dict[str, Any]]:
    start = (datetime.now(KST) - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S")
    return [
        {"player_id": int(p), "status": "P", "start_date": start, "end_date": "9999-12-31 00:00:00"} for p in players
    ]


class Fleet:
    """A fleet of game processes on one Redis (fresh prefix per use) and one sandbox."""

    def __init__(self, redis_url: str, sandbox: Any, directory: Path, n: int, *, gamebase: bool = False) -> None:
        self.prefix = "e" + secrets.token_hex(3)
        self.hive_key = secrets.token_urlsafe(16)
        self.sandbox = sandbox
        self.directory = directory
        self.env = {
            "GS_HOOKS_REDIS_URL": redis_url,
            "GS_HOOKS_REDIS_PREFIX": self.prefix,
            "GS_HOOKS_GAME": "bench",
            "GS_HOOKS_DUPLICATE_LOGIN": "allow",
            "GS_HOOKS_HIVE_AUTH_KEY": self.hive_key,
            "GS_HOOKS_HIVE_GAME_INDEX": str(GAME_INDEX),
        }
        if gamebase:
            self.env |= {
                "GS_HOOKS_GAMEBASE_URL": sandbox.urls()["gamebase_url"],
                "GS_HOOKS_GAMEBASE_APP_ID": sandbox.gamebase.app_id,
                "GS_HOOKS_GAMEBASE_SECRET_KEY": sandbox.gamebase_secret,
                "GS_HOOKS_GAMEBASE_MAINTENANCE_POLL_S": "1",
                "GS_HOOKS_GAMEBASE_BAN_POLL_S": "0",
            }
        self.procs: list[Proc] = []
        self.n = 0
        for _ in range(n):
            self.add()

    def add(self, listen: bool = True) -> Proc:
        self.n += 1
        path = self.directory / f"{self.prefix}-{self.n}"
        path.mkdir()
        env = {**self.env, "GS_HOOKS_STATE": str(path / "state.sqlite3")}
        if listen:
            env["GS_HOOKS_LISTEN"] = "127.0.0.1:0"
        proc = Proc(env)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for p in self.procs:
            p.stop()


async def _kick_latency(redis_url: str, sb: Any, directory: Path, n: int, procs: int) -> dict[str, Any]:
    fleet = Fleet(redis_url, sb, directory, procs)
    try:
        receiver, others = fleet.procs[0], fleet.procs[1:]
        sb.hive.register(str(receiver.ready["listener"]) + "/hive/suspensions", fleet.hive_key, GAME_INDEX)
        warm = 50
        players = [str(1_000_000 + i) for i in range(n + warm)]
        for p in others:
            p.send({"op": "sessions", "players": players})
            await anyio.to_thread.run_sync(p.expect, lambda m: "sessions" in m)
        each: list[float] = []
        slowest: list[float] = []
        from_accepted: list[float] = []
        from_answer: list[float] = []
        for i, player in enumerate(players):
            start = time.perf_counter()
            report = await sb.hive.push_suspensions(_items([player]))
            answered = time.perf_counter()
            if report.failed_batches:
                raise RuntimeError(f"the webhook refused a ban: {report.attempts[-1]}")
            accepted = float((await anyio.to_thread.run_sync(receiver.expect, lambda m: "accepted" in m))["accepted"])
            times = []
            for p in others:
                line = await anyio.to_thread.run_sync(p.expect, lambda m, player=player: m.get("kick") == player)
                times.append(float(line["t"]))
            if i >= warm:
                each += [t - start for t in times]
                slowest.append(max(times) - start)
                from_accepted += [t - accepted for t in times]
                from_answer.append(max(times) - answered)
        return {
            "from_post_sent_p50_ms": round(_pct(each, 0.5) * 1e3, 3),
            "from_post_sent_p99_ms": round(_pct(each, 0.99) * 1e3, 3),
            "from_listener_accepted_p50_ms": round(_pct(from_accepted, 0.5) * 1e3, 3),
            "from_listener_accepted_p99_ms": round(_pct(from_accepted, 0.99) * 1e3, 3),
            "slowest_of_3_from_post_sent_p50_ms": round(_pct(slowest, 0.5) * 1e3, 3),
            "slowest_of_3_from_post_sent_p99_ms": round(_pct(slowest, 0.99) * 1e3, 3),
            "from_answer_received_p50_ms": round(_pct(from_answer, 0.5) * 1e3, 3),
            "bans": n,
            "processes": procs,
        }
    finally:
        fleet.stop()


async def _fanout(redis_url: str, sb: Any, directory: Path, batches: int, procs: int, repeats: int) -> dict[str, Any]:
    fleet = Fleet(redis_url, sb, directory, procs)
    try:
        receiver = fleet.procs[0]
        sb.hive.register(str(receiver.ready["listener"]) + "/hive/suspensions", fleet.hive_key, GAME_INDEX)
        figures: list[float] = []
        for r in range(repeats):
            total = batches * 100
            players = [str(2_000_000 + r * 100_000 + i) for i in range(total)]
            for p in fleet.procs:
                p.send({"op": "expect", "n": total})
                await anyio.to_thread.run_sync(p.expect, lambda m: "expecting" in m)
            report = await sb.hive.push_suspensions(_items(players), batch_size=100)
            answered = time.perf_counter()
            if report.failed_batches:
                raise RuntimeError("the webhook refused a batch")
            done = [float((await anyio.to_thread.run_sync(p.expect, lambda m: "all" in m))["all"]) for p in fleet.procs]
            figures.append(max(done) - answered)
        return {
            "after_last_answer_ms_median": round(statistics.median(figures) * 1e3, 1),
            "after_last_answer_ms_runs": [round(f * 1e3, 1) for f in figures],
            "bans": batches * 100,
            "batches": batches,
            "processes": procs,
        }
    finally:
        fleet.stop()


async def _failover(redis_url: str, sb: Any, directory: Path, procs: int, repeats: int) -> dict[str, Any]:
    fleet = Fleet(redis_url, sb, directory, procs)
    figures: list[float] = []
    try:
        leading: dict[int, bool] = {}

        def leader_now(timeout: float = 30.0) -> tuple[Proc, float]:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                for p in fleet.procs:
                    try:
                        line = p.lines.get_nowait()
                    except queue.Empty:
                        continue
                    if "leader" in line:
                        leading[id(p)] = line["leader"]
                        if line["leader"]:
                            return p, float(line["t"])
                time.sleep(0.001)
            raise TimeoutError("no leader")

        for _ in range(repeats):
            current = next((p for p in fleet.procs if leading.get(id(p))), None)
            if current is None:
                current, _ = await anyio.to_thread.run_sync(leader_now)
            killed_at = time.perf_counter()
            current.stop(kill=True)
            fleet.procs.remove(current)
            _, took_at = await anyio.to_thread.run_sync(leader_now)
            figures.append(took_at - killed_at)
            fleet.add(listen=False)
        return {
            "takeover_s_median": round(statistics.median(figures), 2),
            "takeover_s_runs": [round(f, 2) for f in figures],
            "processes": procs,
            "lease": "TTL 3 s, renewed every 1 s",
        }
    finally:
        fleet.stop()


async def _maintenance_polls(redis_url: str, sb: Any, directory: Path, window_s: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for procs in (1, 4):
        fleet = Fleet(redis_url, sb, directory, procs, gamebase=True)
        try:
            await anyio.sleep(2.0)  # a leader polls
            before = sb.gamebase.counts["gamebase.maintenance"]
            await anyio.sleep(window_s)
            out[f"polls_per_period_{procs}_processes"] = round(
                (sb.gamebase.counts["gamebase.maintenance"] - before) / window_s, 2
            )
        finally:
            fleet.stop()
    out["ratio_4_to_1"] = round(out["polls_per_period_4_processes"] / out["polls_per_period_1_processes"], 2)
    out["poll_period_s"] = 1.0
    return out


PARTS = ("kick_on_another_process", "fanout_2000_bans_8_processes", "leader_failover", "maintenance_polls")


async def _measure(redis_url: str, smoke: bool, only: tuple[str, ...] = PARTS) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        out: dict[str, Any] = {}
        async with Sandbox.serve(port=0) as sb:
            if "kick_on_another_process" in only:
                out["kick_on_another_process"] = await _kick_latency(
                    redis_url, sb, directory, 20 if smoke else 1000, 2 if smoke else 4
                )
            if "fanout_2000_bans_8_processes" in only:
                out["fanout_2000_bans_8_processes"] = await _fanout(
                    redis_url, sb, directory, 2 if smoke else 20, 2 if smoke else 8, 1 if smoke else 5
                )
            if "leader_failover" in only:
                out["leader_failover"] = await _failover(redis_url, sb, directory, 2 if smoke else 4, 1 if smoke else 3)
            if "maintenance_polls" in only:
                out["maintenance_polls"] = await _maintenance_polls(redis_url, sb, directory, 3.0 if smoke else 20.0)
        return out


def run(smoke: bool = False, only: tuple[str, ...] = PARTS) -> dict[str, Any]:
    """Every end-to-end figure (or those named in ``only``) against a private redis-server; returns them."""
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_redis(tmp)
        try:
            result: dict[str, Any] = anyio.run(_measure, url, smoke, only)
        finally:
            proc.kill()
            proc.wait()
    result["bars"] = {
        "kick_p50_ms": 3,
        "kick_p99_ms": 10,
        "fanout_after_last_answer_ms": 300,
        "failover_s": 10,
        "maintenance_polls_ratio": 1.5,
    }
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet_e2e")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--game", action="store_true", help="(internal) run one game process")
    parser.add_argument("--only", action="append", choices=PARTS, help="run only these parts (repeatable)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.game:
        asyncio.run(_game())
    else:
        print(json.dumps(run(smoke=args.smoke, only=tuple(args.only or PARTS)), indent=2))


if __name__ == "__main__":
    main()
