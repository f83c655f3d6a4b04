"""Bench (a) of issue 6: suspension-webhook POSTs through the embedded listener, side by side with baselines.

Servers, each in its own subprocess (pinned to one core when the machine allows, the loader on the other):

1. ``ours``       gs_hooks.http: Router + Bearer guard + msgspec validation, on the embedded h11/anyio server.
1b. ``ours_anyio`` the same server with its asyncio fast path off (``HttpServer(fast_path=False)``: anyio's socket
   streams, as on trio), so ``ours/ours_anyio`` says what the fast path (``gs_hooks.http._asyncio_path``) pays.
2. ``starlette``  the same handler logic as a Starlette route, served by uvicorn.
3. ``asgi``       the same handler logic as a raw ASGI callable, served by uvicorn.
4. ``h11``        a bare h11-over-anyio loop with the handler inlined: the limit of this design.

uvicorn runs with ``http="h11"`` and ``loop="asyncio"`` (what a plain ``pip install uvicorn`` gives) and no access
log; ours runs on asyncio too. The loader is the same for all: N keep-alive connections over raw sockets on
127.0.0.1, a fixed number of requests, every response checked.

Measurement: the servers are started once and stay up (idle between their turns); each round loads every server
once, in an order rotated from round to round (and reversed on odd rounds), so a burst of load from elsewhere on
a shared machine hits all servers alike. The headline ratio is the median of the per-round ratios (each pairs
samples taken seconds apart); the quartiles of those per-round ratios, the ratio of medians and the ratio of the
best rounds are reported beside it. Each server also reports its own CPU time (``time.process_time_ns`` on
SIGUSR1), so the CPU cost per request is exact and insensitive to the loader and to time spent descheduled.

Run: ``python -m bench.listener`` (``--smoke`` for one short round, ``--json`` for machine output).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import msgspec

PATH = "/hive/suspensions"
TOKEN = "bench-secret-key"
SERVERS = ("ours", "ours_anyio", "starlette", "asgi", "h11")
OK_BODY = b'{"result_code":0}'


class Suspension(msgspec.Struct, forbid_unknown_fields=True):
    player_id: int
    status: str
    start_date: str
    end_date: str


_decoder = msgspec.json.Decoder(list[Suspension])
_expected_auth = f"Bearer {TOKEN}".encode()


def validate(body: bytes) -> bool:
    """The shared handler logic: decode and validate a batch; True when well-formed."""
    try:
        items = _decoder.decode(body)
    except msgspec.ValidationError:
        return False
    return all(item.status in ("P", "B") and len(item.start_date) == 19 for item in items)


def payload(n: int = 100) -> bytes:
    """A suspension batch of ``n`` items."""
    items = [
        {
            "player_id": 1_000_000 + i,
            "status": "B",
            "start_date": "2024-07-10 20:56:59",
            "end_date": "2024-07-13 20:56:59",
        }
        for i in range(n)
    ]
    return json.dumps(items, separators=(",", ":")).encode()


# -- servers (run in a subprocess) -----------------------------------------------------------------------------


def _serve_ours(port_cb: Any, *, fast_path: bool = True) -> None:
    import anyio

    from gs_hooks.http import HttpServer, Request, Response, Router

    def guard(request: Request) -> Response | None:
        auth = request.header("authorization")
        if auth is None or not hmac.compare_digest(auth.encode("latin-1"), _expected_auth):
            return Response.error(401, "missing or wrong bearer key")
        return None

    async def handler(request: Request) -> Response:
        if not validate(request.body):
            return Response.json({"result_code": 1, "message": "invalid body"}, status=400)
        return Response.json({"result_code": 0})

    router = Router()
    router.add("POST", PATH, handler, guard=guard)

    async def main() -> None:
        server = HttpServer(router, host="127.0.0.1", port=0, fast_path=fast_path)
        async with anyio.create_task_group() as tg:
            await tg.start(server.run)
            port_cb(server.port)

    anyio.run(main)


def _asgi_app() -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] != "POST" or scope["path"] != PATH:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        auth = b""
        for k, v in scope["headers"]:
            if k == b"authorization":
                auth = v
                break
        if not hmac.compare_digest(auth, _expected_auth):
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        ok = validate(b"".join(chunks))
        body = OK_BODY if ok else b'{"result_code":1}'
        await send(
            {
                "type": "http.response.start",
                "status": 200 if ok else 400,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def _starlette_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request as SRequest
    from starlette.responses import Response as SResponse
    from starlette.routing import Route as SRoute

    async def suspensions(request: SRequest) -> SResponse:
        auth = request.headers.get("authorization", "")
        if not hmac.compare_digest(auth.encode("latin-1"), _expected_auth):
            return SResponse(status_code=401)
        body = await request.body()
        if not validate(body):
            return SResponse(b'{"result_code":1}', status_code=400, media_type="application/json")
        return SResponse(msgspec.json.encode({"result_code": 0}), media_type="application/json")

    return Starlette(routes=[SRoute(PATH, suspensions, methods=["POST"])])


def _serve_uvicorn(app: Any, port_cb: Any) -> None:
    import uvicorn

    # uvicorn binds port 0 itself (its own sockets get TCP_NODELAY from asyncio, as in production).
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        http="h11",
        loop="asyncio",
        lifespan="off",
        access_log=False,
        log_level="warning",
        backlog=1024,
    )
    server = uvicorn.Server(config)

    async def main() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                await task
                return
            await asyncio.sleep(0.01)
        port_cb(server.servers[0].sockets[0].getsockname()[1])
        await task

    asyncio.run(main())


def _serve_h11(port_cb: Any) -> None:
    import anyio
    import anyio.abc
    import h11

    async def connection(stream: anyio.abc.ByteStream) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await stream.receive(65_536))
                    continue
                if isinstance(event, h11.Request):
                    auth = b""
                    for k, v in event.headers:
                        if k == b"authorization":
                            auth = v
                    authorized = hmac.compare_digest(auth, _expected_auth)
                    chunks = []
                    while True:
                        ev = conn.next_event()
                        if ev is h11.NEED_DATA:
                            conn.receive_data(await stream.receive(65_536))
                        elif isinstance(ev, h11.Data):
                            chunks.append(ev.data)
                        else:
                            break
                    ok = authorized and validate(b"".join(chunks))
                    body = OK_BODY if ok else b'{"result_code":1}'
                    out = conn.send(
                        h11.Response(
                            status_code=200 if ok else 400,
                            headers=[("content-type", "application/json"), ("content-length", str(len(body)))],
                        )
                    )
                    out += conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage())
                    await stream.send(out)
                    conn.start_next_cycle()
                else:
                    return
        except (anyio.EndOfStream, anyio.BrokenResourceError, h11.ProtocolError):
            return
        finally:
            await stream.aclose()

    async def main() -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        port_cb(listener.extra(anyio.abc.SocketAttribute.local_port))
        await listener.serve(connection)

    anyio.run(main)


def _serve(kind: str) -> None:
    def port_cb(port: int) -> None:
        print(port, flush=True)

    def report_cpu(signum: int, frame: Any) -> None:
        os.write(1, f"{time.process_time_ns()}\n".encode())

    signal.signal(signal.SIGUSR1, report_cpu)

    if kind == "ours":
        _serve_ours(port_cb)
    elif kind == "ours_anyio":
        _serve_ours(port_cb, fast_path=False)
    elif kind == "starlette":
        _serve_uvicorn(_starlette_app(), port_cb)
    elif kind == "asgi":
        _serve_uvicorn(_asgi_app(), port_cb)
    elif kind == "h11":
        _serve_h11(port_cb)
    else:
        raise SystemExit(f"unknown server kind {kind!r}; one of {', '.join(SERVERS)}")


# -- loader ----------------------------------------------------------------------------------------------------


def _request_bytes(body: bytes) -> bytes:
    return (
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _one_connection(port: int, request: bytes, budget: list[int]) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    done = 0
    try:
        while budget[0] > 0:
            budget[0] -= 1
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200 "):
                raise RuntimeError(f"unexpected response head: {head[:60]!r}")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length)
            if body != OK_BODY:
                raise RuntimeError(f"unexpected response body: {body[:60]!r}")
            done += 1
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return done


async def _load(port: int, *, requests: int, connections: int, body: bytes) -> float:
    """Send ``requests`` POSTs over ``connections`` keep-alive connections; returns requests per wall second."""
    request = _request_bytes(body)
    budget = [requests]
    start = time.perf_counter()
    counts = await asyncio.gather(*(_one_connection(port, request, budget) for _ in range(connections)))
    elapsed = time.perf_counter() - start
    if sum(counts) != requests:
        raise RuntimeError(f"served {sum(counts)} of {requests} requests")
    return requests / elapsed


async def _warm(port: int, *, connections: int, body: bytes) -> None:
    """A few requests per connection, not timed (imports, caches, the first connections)."""
    request = _request_bytes(body)
    await asyncio.gather(*(_one_connection(port, request, [20]) for _ in range(connections)))


class _Server:
    def __init__(self, kind: str, cpu: int | None) -> None:
        self.kind = kind
        env = dict(os.environ)
        src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
        cmd = [sys.executable, "-m", "bench.listener", "--serve", kind]
        if cpu is not None and hasattr(os, "sched_setaffinity"):
            cmd = ["taskset", "-c", str(cpu), *cmd] if _have("taskset") else cmd
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            env=env,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(5)
            self.proc.stdout.close()
            raise RuntimeError(f"server {kind} did not start (exit {self.proc.returncode})")
        self.port = int(line)

    def cpu_ns(self) -> int:
        """The server process's CPU time so far (it answers SIGUSR1 with ``time.process_time_ns()``)."""
        assert self.proc.stdout is not None
        self.proc.send_signal(signal.SIGUSR1)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"server {self.kind} exited (code {self.proc.poll()})")
        return int(line)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        finally:
            assert self.proc.stdout is not None
            self.proc.stdout.close()


def _have(program: str) -> bool:
    from shutil import which

    return which(program) is not None


def run(
    smoke: bool = False,
    *,
    servers: Sequence[str] = SERVERS,
    rounds: int | None = None,
    requests: int | None = None,
    connections: int = 16,
) -> dict[str, Any]:
    """Run the bench and return its figures.

    Args:
        smoke: one short round (for the test suite: proves the bench runs, measures nothing).
        servers: which servers to run.
        rounds: repeats (each loads every server once).
        requests: requests per round and server.
        connections: concurrent keep-alive connections of the loader.

    Returns:
        ``{"req_per_s": {server: median}, "samples": {server: [...]}, "ratios": {pair: median of per-round ratios},
        "ratio_quartiles": {pair: [q1, q3]}, "server_us_per_req": {...}, "cpu_ratios": {...}, "setup": {...}}``.
    """
    rounds = rounds or (1 if smoke else 25)
    requests = requests or (200 if smoke else 3_000)
    if smoke:
        connections = min(connections, 4)
    body = payload(100)
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    server_cpu = cpus[-1] if len(cpus) >= 2 else None
    if server_cpu is not None:
        os.sched_setaffinity(0, [c for c in cpus if c != server_cpu])
    samples: dict[str, list[float]] = {kind: [] for kind in servers}
    us_per_req: dict[str, list[float]] = {kind: [] for kind in servers}
    started: dict[str, _Server] = {}
    try:
        for kind in servers:
            started[kind] = _Server(kind, server_cpu)
            asyncio.run(_warm(started[kind].port, connections=connections, body=body))
        for round_no in range(rounds):
            shift = round_no % len(servers)  # every server takes every position in turn ...
            order = [*servers[shift:], *servers[:shift]]
            if round_no % 2:  # ... and runs both before and after each other one
                order.reverse()
            for kind in order:
                server = started[kind]
                cpu0 = server.cpu_ns()
                rate = asyncio.run(_load(server.port, requests=requests, connections=connections, body=body))
                us_per_req[kind].append((server.cpu_ns() - cpu0) / 1_000 / requests)
                samples[kind].append(rate)
    finally:
        for server in started.values():
            server.stop()
        if server_cpu is not None:
            os.sched_setaffinity(0, cpus)
    medians = {kind: statistics.median(v) for kind, v in samples.items()}
    cpu_medians = {kind: statistics.median(v) for kind, v in us_per_req.items()}
    # Paired ratios: within a round the servers ran seconds apart, so a ratio per round cancels most of the drift
    # of a shared machine; the median over rounds is the headline figure, its quartiles show the spread.
    per_round = [_ratios({kind: samples[kind][i] for kind in servers}) for i in range(rounds)]
    paired = {name: statistics.median(r[name] for r in per_round) for name in per_round[0]} if per_round else {}
    return {
        "req_per_s": medians,
        "samples": samples,
        "ratios": paired,
        "ratio_quartiles": {name: _quartiles([r[name] for r in per_round]) for name in paired},
        "ratios_of_medians": _ratios(medians),
        "ratios_of_best": _ratios({kind: max(v) for kind, v in samples.items()}),
        "server_us_per_req": cpu_medians,
        # baseline CPU per request / ours: > 1 means ours costs less, like the throughput ratios
        "cpu_ratios": _ratios({kind: 1.0 / v for kind, v in cpu_medians.items() if v > 0}),
        "setup": {
            "rounds": rounds,
            "requests": requests,
            "connections": connections,
            "body_bytes": len(body),
            "server_cpu": server_cpu,
            "python": sys.version.split()[0],
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        },
    }


def _quartiles(values: list[float]) -> list[float]:
    if len(values) < 2:
        return [values[0], values[0]] if values else []
    q = statistics.quantiles(values, n=4)
    return [q[0], q[2]]


def _ratios(figures: dict[str, float]) -> dict[str, float]:
    ratios: dict[str, float] = {}
    pairs = [
        ("ours", "starlette"),
        ("ours", "asgi"),
        ("ours", "h11"),
        ("ours", "ours_anyio"),
        ("ours_anyio", "starlette"),
        ("ours_anyio", "asgi"),
        ("h11", "starlette"),
        ("h11", "asgi"),
    ]
    for a, b in pairs:
        if figures.get(a) and figures.get(b):
            ratios[f"{a}/{b}"] = figures[a] / figures[b]
    return ratios


def _print(result: dict[str, Any]) -> None:
    setup = result["setup"]
    print(
        f"listener bench: {setup['requests']} POSTs of {setup['body_bytes']} B x {setup['rounds']} rounds, "
        f"{setup['connections']} keep-alive connections, server on cpu {setup['server_cpu']}, "
        f"Python {setup['python']}, load average at the end {setup['load_average']}"
    )
    for kind, rate in result["req_per_s"].items():
        spread = ", ".join(f"{s:.0f}" for s in result["samples"][kind])
        us = result["server_us_per_req"][kind]
        print(f"  {kind:10s} {rate:7.0f} req/s   {us:6.1f} server CPU-us/req   (rounds: {spread})")
    bars = {"ours/starlette": 1.1, "ours/asgi": 0.9}
    print("  ratio            paired  [quartiles]   of-medians  of-best  server-CPU   (paired: median per-round ratio)")
    for name, value in result["ratios"].items():
        bar = bars.get(name)
        q1, q3 = result["ratio_quartiles"][name]
        of_medians = result["ratios_of_medians"].get(name, 0.0)
        of_best = result["ratios_of_best"].get(name, 0.0)
        cpu_value = result["cpu_ratios"].get(name, 0.0)
        verdict = "" if bar is None else (f"   bar >= {bar}: " + ("met" if value >= bar else "NOT met"))
        print(
            f"  {name:16s} {value:5.2f}x  [{q1:4.2f}-{q3:4.2f}]    {of_medians:5.2f}x    {of_best:5.2f}x"
            f"    {cpu_value:5.2f}x{verdict}"
        )


def main(argv: Sequence[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.listener", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="one short round")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--requests", type=int)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        _serve(args.serve)
        return
    result = run(
        args.smoke,
        servers=tuple(s for s in args.servers.split(",") if s),
        rounds=args.rounds,
        requests=args.requests,
        connections=args.connections,
    )
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print(result)


if __name__ == "__main__":
    main()
