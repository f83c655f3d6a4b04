"""Bench of issue 16's stream: the bare fan-out of bans to reader processes, and one ban's round trip.

    python -m bench.fleet            # full run (a private redis-server on a free loopback port)
    python -m bench.fleet --smoke    # small and once (used by the test suite; no timing asserted)

1. Fan-out: 2,000 bans in 20 batches (one stream entry per batch, as a Hive push is one batch) published through
   ``fleet.Publisher`` (pipelined, the ban-set merge script) to 8 reader processes reading with
   ``fleet.StreamReader``; the figure is from the first publish to the moment the last reader holds all 2,000
   (each reader notes ``time.perf_counter()``, the system-wide monotonic clock on Linux). The issue's floor for
   the bare fan-out on this kind of machine: ~150 ms pipelined, ~70 ms with hiredis.
2. Round trip: one ban published, read by a reader in another process; 1,000 one at a time; p50/p99
   (research: ~0.3 ms p50).
3. The research's own shape for comparison: the same 2,000 bans as 2,000 entries of one ban (pipelines of 100).

Both with and without hiredis (redis-py uses it when it is importable; ``--no-hiredis`` hides it), each in fresh
interpreters; medians over repeats.

4. End to end, with real game processes (``bench/fleet_e2e.py``): a ban received by one process's webhook → the
   kick callback on another; 2,000 bans in 20 Hive batches applied by 8 processes; leader failover; maintenance
   polls per period with 4 processes against one.
5. Game-loop cost (issue 16's last bar): the tracked echo of ``bench/sessions.py`` (its load client and rounds) served
   by a game process whose hooks come from ``gs_hooks.setup()`` with fleet mode on (this redis-server) against the
   same server with fleet mode off, interleaved rounds; the ratio on / off (median of the per-round ratios, and
   their quartiles). Bar: >= 0.95. The echo logs no player in; a second variant does: each connection first logs
   in (``hooks.login``: a Gamebase token of the sandbox, verified once per player then cached; the ban check; the
   bind under ``kick_older``), and with fleet mode on the login goes through the fleet's claim step
   (``FleetLogins``, installed by ``setup()``: one script on Redis per login, the release of the owner key batched
   at the session's end); the bench counts the claims Redis answered, so a login that skipped the step is seen.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

import gs_hooks
from bench import fleet_e2e
from bench.fleet_e2e import start_redis as _start_redis
from bench.sessions import LOGIN_OK, echo_rounds, ratio_figures
from bench.sessions import _echo as _echo_lines
from gs_hooks import current_session
from gs_hooks.fleet import (
    BanRow,
    FleetConfig,
    FleetRedis,
    Keys,
    MemoryOutbox,
    Outgoing,
    Presence,
    Publisher,
    StreamReader,
)
from gs_hooks.fleet._protocol import decode_rows
from gs_hooks.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[1]
BATCHES, PER_BATCH, READERS = 20, 100, 8


def _hide_hiredis(argv: list[str]) -> None:
    if "--no-hiredis" in argv:
        sys.modules["hiredis"] = None  # type: ignore[assignment]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _config(url: str) -> FleetConfig:
    return FleetConfig(url=url, game="bench", prefix="b", socket_timeout_s=5.0, block_s=2.0)


# -- reader process ------------------------------------------------------------------------------------------------


async def _reader(url: str, want: int, echo: bool) -> None:
    keys = Keys("b", "bench")
    redis = FleetRedis(_config(url))
    await redis.start()
    seen: set[str] = set()

    class Handler:
        async def entries(self, entries: Any, cursor: Any) -> None:
            now = time.perf_counter()
            for e in entries:
                rows = decode_rows(e.body)
                if echo:
                    print(json.dumps({"event": e.event, "at": now}), flush=True)
                seen.update(r.player for r in rows)
            if want and len(seen) >= want:
                print(json.dumps({"done": now}), flush=True)

        async def reload(self, reason: str, cursor: Any) -> None:
            print(json.dumps({"ready": True}), flush=True)

    reader = StreamReader(redis, keys.bans, keys.epoch, block_ms=2000)
    async with anyio.create_task_group() as tg:
        await tg.start(reader.run, None, Handler())


# -- measuring process ---------------------------------------------------------------------------------------------


def _spawn_readers(url: str, n: int, want: int, echo: bool, flags: list[str]) -> list[subprocess.Popen[str]]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.fleet", "--reader", url, str(want), "1" if echo else "0", *flags],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]
    for p in procs:
        assert p.stdout is not None
        json.loads(p.stdout.readline())  # ready
    return procs


async def _fanout(url: str, flags: list[str], batches: int, readers: int, per_batch: int = PER_BATCH) -> float:
    keys = Keys("b", "bench")
    redis = FleetRedis(_config(url))
    await redis.start()
    await redis.call("DEL", keys.bans, keys.bans_set, keys.bans_seq)
    procs = _spawn_readers(url, readers, batches * per_batch, False, flags)
    outbox = MemoryOutbox()
    pub = Publisher(redis, keys.bans, "bench", outbox, maxlen=100_000, set_key=keys.bans_set)
    stamp = int(time.time() * 1000)
    for b in range(batches):
        rows = tuple(
            BanRow("hive", f"{stamp}-{b}-{i}", "permanent", 1.0, None, "Cheating (bench)") for i in range(per_batch)
        )
        outbox.put(Outgoing(op="apply", event=f"b{b}", rows=rows))
    start = time.perf_counter()
    await pub.publish_pending()
    done = []
    for p in procs:
        assert p.stdout is not None
        done.append(json.loads(p.stdout.readline())["done"])
        p.terminate()
        p.wait()
    await redis.aclose()
    return max(done) - start


async def _round_trip(url: str, flags: list[str], n: int) -> list[float]:
    keys = Keys("b", "bench")
    redis = FleetRedis(_config(url))
    await redis.start()
    [proc] = _spawn_readers(url, 1, 0, True, flags)
    assert proc.stdout is not None
    outbox = MemoryOutbox()
    pub = Publisher(redis, keys.bans, "bench", outbox, maxlen=100_000, set_key=keys.bans_set)
    out: list[float] = []
    for i in range(n + 50):  # the first 50 warm up
        outbox.put(Outgoing(op="apply", event=f"r{i}", rows=(BanRow("hive", f"rt{i}", "permanent", 1.0, None, ""),)))
        start = time.perf_counter()
        await pub.publish_pending()
        got = json.loads(proc.stdout.readline())
        if i >= 50:
            out.append(got["at"] - start)
    proc.terminate()
    proc.wait()
    await redis.aclose()
    return out


def _measure(url: str, flags: list[str], smoke: bool) -> dict[str, Any]:
    repeats = 1 if smoke else 5
    fan = [anyio.run(_fanout, url, flags, 2 if smoke else BATCHES, 2 if smoke else READERS) for _ in range(repeats)]
    total = 2 * PER_BATCH if smoke else BATCHES * PER_BATCH
    single = [anyio.run(_fanout, url, flags, total, 2 if smoke else READERS, 1) for _ in range(repeats)]
    rt = anyio.run(_round_trip, url, flags, 50 if smoke else 1000)
    return {
        "fanout_ms_median": round(statistics.median(fan) * 1e3, 1),
        "fanout_ms_runs": [round(f * 1e3, 1) for f in fan],
        "fanout_one_entry_per_ban_ms_median": round(statistics.median(single) * 1e3, 1),
        "round_trip_p50_ms": round(_pct(rt, 0.5) * 1e3, 3),
        "round_trip_p99_ms": round(_pct(rt, 0.99) * 1e3, 3),
    }


# -- 5. the game loop's cost: the tracked echo with fleet mode on and off ---------------------------------------------

ECHO_BAR = 0.95
ECHO_PLAYER_BASE = 3_000_000


class _ClaimCounter:
    """Counts the claims Redis answered for one presence (the proof each login went through the fleet's claim step,
    which ``setup()`` installs in fleet mode)."""

    def __init__(self, presence: Presence) -> None:
        self.claims = 0
        self._claim = presence.claim
        presence.claim = self._counted  # type: ignore[method-assign]  # the bench's probe, on this instance only

    async def _counted(self, *args: Any, **kwargs: Any) -> Any:
        result = await self._claim(*args, **kwargs)
        self.claims += 1
        return result


async def _echo_server() -> None:
    """A game process: hooks from ``setup()`` (fleet mode on when ``GS_HOOKS_REDIS_URL`` is set) and the tracked echo
    server of ``bench.sessions`` (``hooks.track_streams``). With ``BENCH_ECHO_TOKENS`` (JSON: client index ->
    token), each connection first logs player ``ECHO_PLAYER_BASE + i`` in. Prints its port, then, at the end of
    stdin, what it saw."""
    config = gs_hooks.Config.from_env()
    hooks = gs_hooks.setup(config)
    tokens: dict[str, str] = json.loads(os.environ.get("BENCH_ECHO_TOKENS", "{}"))
    presence: _ClaimCounter | None = None
    if hooks.fleet is not None:
        assert hooks.fleet.logins is not None, "setup() installs the fleet's claim step"
        presence = _ClaimCounter(hooks.fleet.logins.presence)
    refused: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if tokens:
            index = (await reader.readline()).split()[1].decode()
            session = current_session()
            assert session is not None
            try:
                await hooks.login(session, str(ECHO_PLAYER_BASE + int(index)), tokens[index])
            except gs_hooks.GsHooksError as exc:
                refused.append(f"{type(exc).__name__}: {exc}")
                writer.write(b"refused\n")
                return
            writer.write(LOGIN_OK)
        await _echo_lines(reader, writer)

    async with hooks:
        server = await asyncio.start_server(hooks.track_streams(handle), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        print(json.dumps({"port": port, "fleet": hooks.fleet is not None}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        server.close()
        await server.wait_closed()
        print(
            json.dumps(
                {
                    "claims": presence.claims if presence is not None else 0,
                    "refused": refused[:3],
                    "sessions_left": len(hooks.registry),
                    "fleet_connected": hooks.fleet.connected if hooks.fleet is not None else None,
                }
            ),
            flush=True,
        )


@contextlib.asynccontextmanager
async def _echo_servers(env: dict[str, dict[str, str]], out: dict[str, dict[str, Any]]) -> Any:
    """Start one echo game process per name (its environment on top of ours); yields their ports; at the end, their
    closing reports in ``out``."""
    procs: dict[str, asyncio.subprocess.Process] = {}
    ports: dict[str, int] = {}
    try:
        for name, extra in env.items():
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.fleet",
                "--echo-server",
                cwd=ROOT,
                env={**os.environ, **extra},
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            procs[name] = proc
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            if not line:
                raise RuntimeError(f"the {name} echo server did not start")
            started = json.loads(line)
            if started["fleet"] != ("GS_HOOKS_REDIS_URL" in extra):
                raise RuntimeError(f"the {name} echo server has fleet mode {started['fleet']}")
            ports[name] = int(started["port"])
        yield ports
    finally:
        for name, proc in procs.items():
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.close()
            try:
                line = await asyncio.wait_for(proc.stdout.readline(), 30)
                out[name] = json.loads(line) if line else {"error": "no report"}
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def _ratio_row(rates: dict[str, list[float]]) -> dict[str, Any]:
    median, quartiles = ratio_figures(rates["fleet_on"], rates["fleet_off"])
    return {
        "fleet_on_roundtrips_per_s": round(statistics.median(rates["fleet_on"])),
        "fleet_off_roundtrips_per_s": round(statistics.median(rates["fleet_off"])),
        "ratio": round(median, 3),
        "ratio_quartiles": [round(q, 3) for q in quartiles],
        "meets_bar": median >= ECHO_BAR,
    }


async def _echo_cost(url: str, smoke: bool) -> dict[str, Any]:
    rounds, clients, trips = (2, 4, 10) if smoke else (21, 50, 200)
    login_trips = 5 if smoke else 20
    with tempfile.TemporaryDirectory() as tmp:
        prefix = "echo" + os.urandom(3).hex()

        def env(fleet: bool, name: str) -> dict[str, str]:
            values = {"GS_HOOKS_STATE": str(Path(tmp) / f"{name}.sqlite3"), "GS_HOOKS_DUPLICATE_LOGIN": "kick_older"}
            if fleet:
                values |= {"GS_HOOKS_REDIS_URL": url, "GS_HOOKS_REDIS_PREFIX": prefix, "GS_HOOKS_GAME": "bench"}
            return values

        reports: dict[str, dict[str, Any]] = {}
        plain_env = {"fleet_on": env(True, "on"), "fleet_off": env(False, "off")}
        async with _echo_servers(plain_env, reports) as ports:
            rates = await echo_rounds(ports, rounds=rounds, clients=clients, trips=trips)
        out: dict[str, Any] = {"tracked_echo": _ratio_row(rates)}
        out["tracked_echo"] |= {"rounds": rounds, "clients": clients, "trips_per_client": trips}
        leftover = {name: r.get("sessions_left") for name, r in reports.items()}
        if any(leftover.values()):
            raise RuntimeError(f"tracked sessions left behind: {leftover}")

        async with Sandbox.serve(port=0) as sb:
            tokens = {}
            for i in range(clients):
                sb.gamebase.add_member(str(ECHO_PLAYER_BASE + i))
                tokens[str(i)] = sb.gamebase.issue_token(str(ECHO_PLAYER_BASE + i))
            gamebase = {
                "GS_HOOKS_GAMEBASE_URL": sb.urls()["gamebase_url"],
                "GS_HOOKS_GAMEBASE_APP_ID": sb.gamebase.app_id,
                "GS_HOOKS_GAMEBASE_SECRET_KEY": sb.gamebase_secret,
                "GS_HOOKS_GAMEBASE_BAN_POLL_S": "0",
                "BENCH_ECHO_TOKENS": json.dumps(tokens),
            }
            login_env = {"fleet_on": env(True, "lon") | gamebase, "fleet_off": env(False, "loff") | gamebase}
            reports = {}
            async with _echo_servers(login_env, reports) as ports:
                rates = await echo_rounds(ports, rounds=rounds, clients=clients, trips=login_trips, login=True)
        logins = rounds * clients
        claims = reports.get("fleet_on", {}).get("claims")
        if claims != logins or any(r.get("refused") for r in reports.values()):
            raise RuntimeError(f"each login should go through the fleet's claim step: {logins} logins, {reports}")
        out["tracked_echo_with_logins"] = _ratio_row(rates) | {
            "rounds": rounds,
            "clients": clients,
            "trips_per_client": login_trips,
            "logins_per_server": logins,
            "fleet_claims_on_redis": claims,
        }
        out["bar"] = f">= {ECHO_BAR} (the tracked echo, fleet mode on / off)"
        return out


def bench_echo_cost(url: str, smoke: bool = False) -> dict[str, Any]:
    """The tracked echo with fleet mode on vs off (and the variant with a login per connection)."""
    return asyncio.run(_echo_cost(url, smoke))


# -- harness -------------------------------------------------------------------------------------------------------


def _in_subprocess(url: str, smoke: bool, hiredis: bool) -> dict[str, Any]:
    flags = [] if hiredis else ["--no-hiredis"]
    argv = [sys.executable, "-m", "bench.fleet", "--measure", url, *flags, *(["--smoke"] if smoke else [])]
    out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=True, env=dict(os.environ))
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run(smoke: bool = False) -> dict[str, Any]:
    """Run both measurements with and without hiredis; returns the figures (ms)."""
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = _start_redis(tmp)
        try:
            out: dict[str, Any] = {
                "pure_python_parser": _in_subprocess(url, smoke, hiredis=False),
                "hiredis": _in_subprocess(url, smoke, hiredis=True),
            }
            out["game_loop_cost"] = bench_echo_cost(url, smoke)
        finally:
            proc.kill()
            proc.wait()
    out["setup"] = (
        f"{BATCHES} batches x {PER_BATCH} bans, {READERS} reader processes, one redis-server, all on this machine"
        if not smoke
        else "smoke: 2 batches, 2 readers"
    )
    out["research_floor"] = {"fanout_ms": {"pipelined": 150, "hiredis": 70}, "round_trip_p50_ms": 0.3}
    out["end_to_end"] = fleet_e2e.run(smoke=smoke)  # real game processes: issue 16's bars
    return out


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    _hide_hiredis(argv)
    parser = argparse.ArgumentParser(prog="python -m bench.fleet")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--no-hiredis", action="store_true")
    parser.add_argument("--measure", metavar="URL")
    parser.add_argument("--reader", nargs=3, metavar=("URL", "WANT", "ECHO"))
    parser.add_argument("--echo-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    flags = ["--no-hiredis"] if args.no_hiredis else []
    if args.echo_server:
        asyncio.run(_echo_server())
    elif args.reader:
        url, want, echo = args.reader
        anyio.run(_reader, url, int(want), echo == "1")
    elif args.measure:
        result = _measure(args.measure, flags, args.smoke)
        from redis.utils import HIREDIS_AVAILABLE  # after --no-hiredis took effect

        result["hiredis_in_use"] = HIREDIS_AVAILABLE
        print(json.dumps(result))
    else:
        print(json.dumps(run(smoke=args.smoke), indent=2))


if __name__ == "__main__":
    main()
