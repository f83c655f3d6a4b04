"""A reporter process for the outage test (run as a script; not collected by pytest).

    python ccu_outage_child.py URL SPOOL START_EPOCH

It runs a real CcuReporter on its own FakeClock (trio backend), two server ids, a production 120 s grid, and
obeys commands on stdin, one per line:

    tick N    advance N grid periods, one at a time; after each, print a JSON status line
    full      the spool's disk is full from now on: its connection may not grow the file by one more page
              (``PRAGMA max_page_count`` = its size; writes needing a page fail with SQLITE_FULL)
    space     the disk has space again
    quit      orderly shutdown (aclose), then exit 0

A status line: ``pending`` (samples not delivered yet, held in memory or spooled), ``taken`` (samples taken),
``held`` (samples held in memory because the spool could not record them), ``spooled`` (rows in the spool).

The test kills it with SIGKILL in the middle of a tick.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ccu_helpers import make_reporter, running, step

from gs_hooks import FakeClock, SessionRegistry
from gs_hooks.ccu import CcuReporter, SampleState


def status(clock: FakeClock, reporter: CcuReporter) -> dict[str, object]:
    held = {r.key: r for r in reporter.unrecorded}
    spooled = reporter.spool.rows_sync()
    rows = {r.key: r for r in spooled} | held  # memory is the truth for held rows
    return {
        "now": clock.time(),
        "pending": sum(1 for r in rows.values() if r.state is SampleState.PENDING),
        "taken": len(rows),
        "held": len(held),
        "spooled": len(spooled),
    }


def set_disk(reporter: CcuReporter, *, full: bool) -> None:
    store = reporter.spool.store
    pages = store.run_sync(lambda c: int(c.execute("PRAGMA page_count").fetchone()[0]))
    limit = pages if full else 4294967294
    store.run_sync(lambda c: c.execute(f"PRAGMA max_page_count={limit}"))


async def main(url: str, spool: str, start: float) -> None:
    clock = FakeClock(start)
    reg = SessionRegistry(default_server_id="1", time=clock.time)
    for sid, n in (("1", 3), ("2", 2)):
        for k in range(n):
            reg.bind_player_nowait(reg.open_nowait(server_id=sid), f"{sid}-{k}")
    path = Path(spool)
    async with httpx.AsyncClient() as http:
        reporter = make_reporter(
            path.parent,
            clock,
            http,
            url=url,
            registry=reg,
            spool_name=path.name,
            backoff_base_s=2.0,
            backoff_max_s=120.0,
            timeout_s=2.0,
        )
        async with running(reporter):
            await step(clock, reporter, 0)
            print(json.dumps({"ready": True, "now": clock.time()}), flush=True)
            stdin = anyio.wrap_file(sys.stdin)
            async for line in stdin:
                cmd = line.split()
                if not cmd:
                    continue
                if cmd[0] == "quit":
                    break
                if cmd[0] in ("full", "space"):
                    set_disk(reporter, full=cmd[0] == "full")
                    print(json.dumps({"disk": cmd[0]}), flush=True)
                if cmd[0] == "tick":
                    for _ in range(int(cmd[1])):
                        # the population moves a little every slot (never to 0 on a server)
                        reg.bind_player_nowait(reg.open_nowait(server_id="1"), f"p{clock.time()}")
                        await step(clock, reporter, 120)
                        print(json.dumps(status(clock, reporter)), flush=True)
    print(json.dumps({"closed": True}), flush=True)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], float(sys.argv[3]), backend="trio")
