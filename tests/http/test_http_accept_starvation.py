"""Out of file descriptors (issue 14.8): the listener logs one line per interval, keeps retrying, and recovers.

A real server process lowers its own ``RLIMIT_NOFILE`` to a few dozen descriptors above what it uses; the test
opens more connections than that and holds them, so every further ``accept()`` fails with EMFILE. asyncio's own
accept loop logged one ERROR record per failed accept (thousands a second, 162 MB in 35 s in the report) and
anyio's listener (TLS, trio) died on the first one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import anyio.abc
import pytest

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.timeout(60)]

_SERVER = r"""
import json, logging, os, resource, sys
import anyio
from gs_hooks.http import Request, Response, Router, serve_http

backend = sys.argv[1]
records = []

class Keep(logging.Handler):
    def emit(self, record):
        records.append({"level": record.levelname, "logger": record.name, "message": record.getMessage()})

root = logging.getLogger()
root.addHandler(Keep())
root.setLevel(logging.INFO)

def report(server):
    errors = [r for r in records if r["level"] in ("ERROR", "CRITICAL")]
    print(json.dumps({
        "errors": len(errors),
        "first_errors": errors[:3],
        "summaries": [r["message"] for r in records if "more like this" in r["message"]],
        "accept_failures": getattr(server, "accept_failures", None),
    }), flush=True)

async def main():
    router = Router()

    async def ping(request):
        return Response.json({"pong": True})

    router.add("GET", "/ping", ping)
    async with anyio.create_task_group() as tg:
        async with serve_http(router, port=0) as server:
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 24, hard))
            print(server.port, flush=True)
            while True:
                command = (await anyio.to_thread.run_sync(sys.stdin.readline)).strip()
                if command == "report":
                    report(server)
                else:
                    break
        report(server)  # after the server stopped (its pending log summaries written)

if backend == "uvloop":
    anyio.run(main, backend="asyncio", backend_options={"use_uvloop": True})
else:
    anyio.run(main, backend=backend)
"""


@contextmanager
def server_process(backend: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER, backend],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()


async def ask(proc: subprocess.Popen[str], command: str) -> dict[str, Any]:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(command + "\n")
    proc.stdin.flush()
    line = await anyio.to_thread.run_sync(proc.stdout.readline)
    assert line, "the server process died"
    result: dict[str, Any] = json.loads(line)
    return result


@pytest.mark.parametrize("backend", ["asyncio", "uvloop", "trio"])
async def test_running_out_of_descriptors_logs_once_per_interval_and_recovers(backend: str) -> None:
    if backend == "uvloop":
        pytest.importorskip("uvloop")
    with server_process(backend) as proc:
        assert proc.stdout is not None
        port = int(await anyio.to_thread.run_sync(proc.stdout.readline))
        held: list[anyio.abc.SocketStream] = []
        try:
            for _ in range(60):  # more than the server's descriptors allow: the rest wait in its backlog
                held.append(await anyio.connect_tcp("127.0.0.1", port))
            await anyio.sleep(1.5)  # every accept attempt fails meanwhile
            starved = await ask(proc, "report")
        finally:
            for stream in held:
                await stream.aclose()
        assert 1 <= starved["errors"] <= 2, starved  # the first failure is logged; the others are counted
        assert starved["accept_failures"] is not None and starved["accept_failures"] >= 2, starved
        assert "cannot accept connections" in starved["first_errors"][0]["message"]
        # Descriptors are back: the listener accepts again by itself.
        raw = b""
        with anyio.fail_after(15):
            async with await anyio.connect_tcp("127.0.0.1", port) as stream:
                await stream.send(b"GET /ping HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                while True:
                    try:
                        raw += await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        break
        assert raw.startswith(b"HTTP/1.1 200 ") and raw.endswith(b'{"pong":true}')
        final = await ask(proc, "exit")
        assert final["errors"] <= 3, final
        assert any("cannot accept connections" in line and "more like this" in line for line in final["summaries"])
