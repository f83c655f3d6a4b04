"""Session registry benchmarks, each beside its baseline in the same run.

    python -m bench.sessions            # full run (about a minute), prints a table
    python -m bench.sessions --smoke    # each part once, briefly (used by the test suite)

Parts:

1. **pair**: create + register + unregister of one session (``open_nowait`` + ``close_nowait``, called the way
   the adapters call them: by position), median ns per pair over repeats, with 10,000 other sessions live; beside bare
   inline dict code doing the same indexing (a tuple record into a per-server dict and out again). Also the
   full lifecycle with a login (``bind_player_nowait``: the by-player index and the players-per-server count)
   beside the same bare dict code for both indexes.
2. **memory**: bytes per tracked session with 1,000,000 sessions (tracemalloc: every allocation the registry
   makes, indexes included; the peer-address tuples and player-id strings are the connection's own data,
   allocated before measuring), connected-only and logged-in; plus the RSS growth as a cross-check.
3. **gc**: a full ``gc.collect()`` with 1,000,000 logged-in sessions tracked vs with none (same other heap,
   measured before building them and after dropping them); medians, and minimums (noise only adds time). The
   first collection after building is shown apart: it also untracks the million fresh peer-address tuples.
4. **echo**: a tracked vs a bare asyncio echo server in the same process, alternating rounds under the same
   load from a separate client process (N concurrent clients, each connecting, doing M round trips, closing);
   throughput in round trips per second, ratio tracked / bare.

Bars (issue 2): pair ≤ 0.4 µs; ≤ 350 bytes/session; gc delta ≤ 5 ms; echo ratio ≥ 0.97.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import statistics
import sys
import time
import tracemalloc
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gs_hooks import SessionRegistry
from gs_hooks.sessions import track_asyncio_streams

BARS = {"pair_ns": 400.0, "bytes_per_session": 350.0, "gc_delta_ms": 5.0, "echo_ratio": 0.97}
REMOTE = ("127.0.0.1", 54321)
ROOT = str(Path(__file__).resolve().parents[1])


# -- 1. pair cost ------------------------------------------------------------------------------------------------


def _ours_pairs(reg: SessionRegistry, n: int) -> float:
    open_nowait, close_nowait = reg.open_nowait, reg.close_nowait
    remote = REMOTE
    t0 = time.perf_counter_ns()
    for _ in range(n):
        close_nowait(open_nowait(None, "", remote, None))
    return (time.perf_counter_ns() - t0) / n


def _bare_pairs(by_server: dict[str, dict[int, tuple[Any, ...]]], n: int) -> float:
    ids = itertools.count(10**9).__next__
    now = time.time
    remote = REMOTE
    t0 = time.perf_counter_ns()
    for _ in range(n):
        i = ids()
        by_server["0"][i] = (i, "0", now(), "", remote, None)
        del by_server["0"][i]
    return (time.perf_counter_ns() - t0) / n


def _ours_logins(reg: SessionRegistry, pids: list[str], n: int) -> float:
    open_nowait, close_nowait, bind = reg.open_nowait, reg.close_nowait, reg.bind_player_nowait
    remote = REMOTE
    t0 = time.perf_counter_ns()
    for k in range(n):
        session = open_nowait(None, "", remote, None)
        bind(session, pids[k])
        close_nowait(session)
    return (time.perf_counter_ns() - t0) / n


def _bare_logins(
    by_server: dict[str, dict[int, tuple[Any, ...]]],
    by_player: dict[str, tuple[Any, ...]],
    players_on: dict[str, int],
    pids: list[str],
    n: int,
) -> float:
    ids = itertools.count(10**9).__next__
    now = time.time
    remote = REMOTE
    t0 = time.perf_counter_ns()
    for k in range(n):
        i = ids()
        pid = pids[k]
        by_server["0"][i] = rec = (i, "0", now(), "", remote, None)
        by_player[pid] = rec
        players_on["0"] = players_on.get("0", 0) + 1
        del by_server["0"][i]
        del by_player[pid]
        players_on["0"] -= 1
    return (time.perf_counter_ns() - t0) / n


def bench_pairs(*, repeats: int, block: int, live: int = 10_000) -> dict[str, Any]:
    """Median ns per pair, ours and bare, interleaved repeat by repeat."""
    reg = SessionRegistry()
    for i in range(live):
        reg.bind_player_nowait(reg.open_nowait(remote=REMOTE), f"live-{i}")
    by_server: dict[str, dict[int, tuple[Any, ...]]] = {"0": {}}
    by_player: dict[str, tuple[Any, ...]] = {}
    players_on: dict[str, int] = {"0": live}
    for i in range(live):
        rec = (i, "0", 0.0, "", REMOTE, None)
        by_server["0"][i] = rec
        by_player[f"live-{i}"] = rec
    pids = [f"player-{k}" for k in range(block)]
    ours: list[float] = []
    bare: list[float] = []
    ours_login: list[float] = []
    bare_login: list[float] = []
    gc.collect()
    gc.disable()  # as timeit does: a collection landing in one block would only add noise to it
    try:
        for _ in range(repeats):
            bare.append(_bare_pairs(by_server, block))
            ours.append(_ours_pairs(reg, block))
            bare_login.append(_bare_logins(by_server, by_player, players_on, pids, block))
            ours_login.append(_ours_logins(reg, pids, block))
    finally:
        gc.enable()
    assert len(reg) == live and reg.count_players("0") == live
    pair_ns = statistics.median(ours)
    login_ns = statistics.median(ours_login)
    return {
        "pair_ns": round(pair_ns, 1),
        "pair_ns_min": round(min(ours), 1),
        "bare_pair_ns": round(statistics.median(bare), 1),
        "bare_pair_ns_min": round(min(bare), 1),
        "pair_ratio": round(pair_ns / statistics.median(bare), 2),
        "login_pair_ns": round(login_ns, 1),
        "bare_login_pair_ns": round(statistics.median(bare_login), 1),
        "login_pair_ratio": round(login_ns / statistics.median(bare_login), 2),
        "repeats": repeats,
        "pairs_per_repeat": block,
    }


# -- 2. memory and 3. gc ---------------------------------------------------------------------------------------------


def _inputs(n: int) -> tuple[list[tuple[str, int]], list[str]]:
    remotes = [(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", 1024 + i % 60000) for i in range(n)]
    pids = [f"player-{i:07d}" for i in range(n)]
    return remotes, pids


def _fill(reg: SessionRegistry, remotes: list[tuple[str, int]], pids: list[str] | None) -> None:
    open_nowait = reg.open_nowait
    if pids is None:
        for remote in remotes:
            open_nowait(remote=remote)
        return
    bind = reg.bind_player_nowait
    for remote, pid in zip(remotes, pids, strict=True):
        bind(open_nowait(remote=remote), pid)


def _traced_bytes(remotes: list[tuple[str, int]], pids: list[str] | None) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        reg = SessionRegistry()
        _fill(reg, remotes, pids)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(reg) == len(remotes)
    del reg
    return (after - before) / len(remotes)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _gc_ms(repeats: int) -> tuple[float, float]:
    """Median and minimum ms of a full collection."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        gc.collect()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), min(times)


def bench_memory_and_gc(*, sessions: int, gc_repeats: int) -> dict[str, Any]:
    """Bytes per session (tracemalloc, RSS) and full-collection time with and without the sessions."""
    remotes, pids = _inputs(sessions)
    connected = _traced_bytes(remotes, None)
    logged_in = _traced_bytes(remotes, pids)
    del remotes, pids
    gc.collect()
    before = _gc_ms(gc_repeats)
    remotes, pids = _inputs(sessions)
    gc.collect()
    rss0 = _rss()
    reg = SessionRegistry()
    _fill(reg, remotes, pids)
    rss1 = _rss()
    # From here the sessions alone hold their peer tuples and player ids (as a server's connections would):
    # a million-item input list kept alive would make every collection walk it, which is not registry cost.
    del remotes, pids
    t0 = time.perf_counter()
    gc.collect()  # the first one also untracks the million fresh peer-address tuples (one-off)
    first_ms = (time.perf_counter() - t0) * 1000
    gc_with = _gc_ms(gc_repeats)
    assert reg.count_players("0") == sessions
    del reg
    gc.collect()
    after = _gc_ms(gc_repeats)
    # "without" is measured before building and after dropping the sessions, with the same other heap
    gc_without = (statistics.median([before[0], after[0]]), min(before[1], after[1]))
    return {
        "sessions": sessions,
        "bytes_per_session": round(logged_in, 1),
        "bytes_per_session_connected_only": round(connected, 1),
        "rss_bytes_per_session": round((rss1 - rss0) / sessions, 1),
        "gc_ms_without": round(gc_without[0], 2),
        "gc_ms_with": round(gc_with[0], 2),
        "gc_delta_ms": round(gc_with[0] - gc_without[0], 2),
        "gc_delta_ms_of_minimums": round(gc_with[1] - gc_without[1], 2),
        "gc_first_collection_ms": round(first_ms, 2),
    }


# -- 4. echo server ------------------------------------------------------------------------------------------------


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


LOGIN_OK = b"ok\n"


async def _client_load(port: int, clients: int, trips: int, login: bool = False) -> float:
    payload = b"x" * 63 + b"\n"

    async def one(i: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        if login:  # the server logs client i in as player i first (see bench.fleet's echo server)
            writer.write(f"login {i}\n".encode())
            answer = await reader.readline()
            if answer != LOGIN_OK:
                raise RuntimeError(f"login refused: {answer!r}")
        for _ in range(trips):
            writer.write(payload)
            if await reader.readline() != payload:
                raise RuntimeError("echo mismatch")
        writer.close()
        await writer.wait_closed()

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(clients)))
    return time.perf_counter() - t0


def _load_client_main() -> None:
    """The load generator process: reads ``port clients trips [login]`` lines, answers elapsed seconds."""
    for line in sys.stdin:
        port, clients, trips, *login = line.split()
        elapsed = asyncio.run(_client_load(int(port), int(clients), int(trips), login == ["login"]))
        print(elapsed, flush=True)


async def echo_rounds(
    ports: Mapping[str, int], *, rounds: int, clients: int, trips: int, login: bool = False
) -> dict[str, list[float]]:
    """The same load against each echo server, round after round, from one separate client process.

    Each round runs every server once, back to back, in an order rotated round by round (so no server is always
    first); within a round the servers see the same machine load, which the ratio of their rates cancels.

    Args:
        ports: the servers' loopback ports, by name.
        rounds: how many rounds.
        clients: concurrent connections per run; each connects, does ``trips`` round trips, closes.
        trips: round trips per connection (63 bytes and a newline).
        login: each connection first sends ``login <i>`` and waits for ``ok`` (servers that log players in).

    Returns:
        Round trips per second of every run, by server name, in round order.
    """
    names = list(ports)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.sessions",
        "--load-client",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdin is not None and proc.stdout is not None
    rates: dict[str, list[float]] = {name: [] for name in names}
    try:
        for r in range(rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                proc.stdin.write(f"{ports[name]} {clients} {trips}{' login' if login else ''}\n".encode())
                await proc.stdin.drain()
                line = await asyncio.wait_for(proc.stdout.readline(), 120)
                if not line:
                    raise RuntimeError("the load client died")
                rates[name].append(clients * trips / float(line))
    finally:
        proc.stdin.close()
        await proc.wait()
    return rates


def ratio_figures(ours: list[float], baseline: list[float]) -> tuple[float, list[float]]:
    """The median of the per-round ratios ours / baseline, and their quartiles (Q1, Q3)."""
    ratios = [o / b for o, b in zip(ours, baseline, strict=True)]
    median = statistics.median(ratios)
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [median, median, median]
    return median, [quartiles[0], quartiles[2]]


async def _bench_echo(*, rounds: int, clients: int, trips: int) -> dict[str, Any]:
    reg = SessionRegistry()
    bare = await asyncio.start_server(_echo, "127.0.0.1", 0)
    tracked = await asyncio.start_server(track_asyncio_streams(reg, _echo), "127.0.0.1", 0)
    ports = {"bare": bare.sockets[0].getsockname()[1], "tracked": tracked.sockets[0].getsockname()[1]}
    try:
        rates = await echo_rounds(ports, rounds=rounds, clients=clients, trips=trips)
    finally:
        for server in (bare, tracked):
            server.close()
            await server.wait_closed()
    assert len(reg) == 0, "tracked sessions left behind"
    bare_rate = statistics.median(rates["bare"])
    tracked_rate = statistics.median(rates["tracked"])
    # Each round runs both servers back to back: the ratio within a round cancels slow drifts in machine load.
    pairwise, quartiles = ratio_figures(rates["tracked"], rates["bare"])
    return {
        "bare_roundtrips_per_s": round(bare_rate),
        "tracked_roundtrips_per_s": round(tracked_rate),
        "echo_ratio": round(pairwise, 3),
        "echo_ratio_of_medians": round(tracked_rate / bare_rate, 3),
        "echo_ratio_quartiles": [round(q, 3) for q in quartiles],
        "rounds": rounds,
        "clients": clients,
        "trips_per_client": trips,
    }


def bench_echo(*, rounds: int, clients: int, trips: int) -> dict[str, Any]:
    """Tracked vs bare asyncio echo server throughput under the same load."""
    return asyncio.run(_bench_echo(rounds=rounds, clients=clients, trips=trips))


# -- entry points --------------------------------------------------------------------------------------------------


def run(smoke: bool = False) -> dict[str, Any]:
    """Run every part; ``smoke`` runs each once, briefly. Returns the figures (and the bars) as a dict."""
    if smoke:
        result = {
            "pair": bench_pairs(repeats=1, block=1000, live=100),
            "memory": bench_memory_and_gc(sessions=10_000, gc_repeats=1),
            "echo": bench_echo(rounds=1, clients=4, trips=10),
        }
    else:
        result = {
            "pair": bench_pairs(repeats=41, block=20_000),
            "memory": bench_memory_and_gc(sessions=1_000_000, gc_repeats=7),
            "echo": bench_echo(rounds=21, clients=50, trips=200),
        }
    result["bars"] = _verdicts(result)
    return result


def _verdicts(result: dict[str, Any]) -> dict[str, str]:
    figures = {
        "pair_ns": result["pair"]["pair_ns"],
        "bytes_per_session": result["memory"]["bytes_per_session"],
        "gc_delta_ms": result["memory"]["gc_delta_ms"],
        "echo_ratio": result["echo"]["echo_ratio"],
    }
    out = {}
    for key, value in figures.items():
        bar = BARS[key]
        ok = value >= bar if key == "echo_ratio" else value <= bar
        out[key] = f"{value} ({'meets' if ok else 'MISSES'} {'≥' if key == 'echo_ratio' else '≤'} {bar})"
    return out


def print_table(result: dict[str, Any]) -> None:
    """Print the figures as a table."""
    p, m, e = result["pair"], result["memory"], result["echo"]
    rows = [
        ("create+register+unregister (ns/pair, median)", f"{p['pair_ns']}", f"{p['bare_pair_ns']}", p["pair_ratio"]),
        ("  fastest repeat (ns/pair)", f"{p['pair_ns_min']}", f"{p['bare_pair_ns_min']}", ""),
        (
            "  same, with a login: both indexes (ns/pair)",
            f"{p['login_pair_ns']}",
            f"{p['bare_login_pair_ns']}",
            p["login_pair_ratio"],
        ),
        (f"bytes/session at {m['sessions']:,}, logged in", f"{m['bytes_per_session']}", "", ""),
        ("  connected only", f"{m['bytes_per_session_connected_only']}", "", ""),
        ("  RSS growth per session (logged in)", f"{m['rss_bytes_per_session']}", "", ""),
        ("gc.collect() ms (with sessions / without)", f"{m['gc_ms_with']}", f"{m['gc_ms_without']}", ""),
        ("  gc delta ms (medians; minimums)", f"{m['gc_delta_ms']}; {m['gc_delta_ms_of_minimums']}", "", ""),
        ("  first collection after building (ms)", f"{m['gc_first_collection_ms']}", "", ""),
        (
            f"echo round trips/s ({e['clients']}×{e['trips_per_client']}, {e['rounds']} rounds)",
            f"{e['tracked_roundtrips_per_s']}",
            f"{e['bare_roundtrips_per_s']}",
            e["echo_ratio"],
        ),
        (
            "  per-round ratio quartiles (of medians)",
            "",
            "",
            f"{e['echo_ratio_quartiles']} ({e['echo_ratio_of_medians']})",
        ),
    ]
    header = ("measure", "gs_hooks", "baseline", "ratio")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(4)]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    print()
    for key, verdict in result["bars"].items():
        print(f"bar {key}: {verdict}")


def main(argv: list[str] | None = None) -> int:
    """Command line: run the benches and print the table (or serve as the echo load client)."""
    parser = argparse.ArgumentParser(prog="python -m bench.sessions", description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="each part once, briefly")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    parser.add_argument("--load-client", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load_client:
        _load_client_main()
        return 0
    result = run(smoke=args.smoke)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
