"""Run the example game server.

    python -m examples.asyncio_server                 # game on :7777; embedded sandbox if no platform URL is set
    python -m examples.asyncio_server --bots 20       # plus 20 simulated players
    python -m examples.asyncio_server --demo          # the scripted end-to-end story; exit 0 only if all steps seen
    python -m examples.asyncio_server --demo --fleet 3  # the fleet story: 3 processes on a private redis-server
    python -m examples.asyncio_server --loop uvloop   # the same on uvloop's event loop

Configuration comes only from GS_HOOKS_* variables (see the README's table), so the same server runs against
the real platforms. With none of GS_HOOKS_CCU_URL / GS_HOOKS_GAMEBASE_URL / GS_HOOKS_LISTEN set, it starts the
platform sandbox in-process and points every component at it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

import gs_hooks

from .embedded import embedded_environment, uses_real_platforms
from .server import GameServer

log = logging.getLogger("example")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m examples.asyncio_server", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="game host to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7777, help="game port (default 7777; 0 = any free port)")
    p.add_argument("--bots", type=int, default=0, help="simulated players that log in and chat")
    p.add_argument("--demo", action="store_true", help="run the scripted story and exit (0 = every step observed)")
    p.add_argument("--max-connections", type=int, default=1000, help="game connections at once (default 1000)")
    p.add_argument("--idle-timeout", type=float, default=300.0, help="close a silent connection after (s, 300)")
    p.add_argument("--verbose", action="store_true", help="log gs_hooks at INFO")
    p.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio", help="event loop (default asyncio)")
    p.add_argument("--metrics-out", help="with --demo: save the /metrics exposition here when the story ends")
    p.add_argument(
        "--fleet",
        type=int,
        metavar="N",
        help="with --demo: the fleet story instead, N (>= 3) game processes on a private redis-server",
    )
    args = p.parse_args(argv)
    if args.fleet is not None and (not args.demo or args.fleet < 3):
        p.error("--fleet N goes with --demo, and N is at least 3")
    return args


async def _fleet_demo(args: argparse.Namespace) -> int:
    try:
        from .fleet_demo import run_fleet_demo  # needs redis (the fleet extra)
    except ImportError as exc:
        print(
            f"demo FAILED: the fleet demo needs {exc.name}: pip install redis hiredis "
            "(or the fleet extra: pip install -e '.[fleet]' from a checkout)",
            flush=True,
        )
        return 2
    return await run_fleet_demo(args.fleet, verbose=args.verbose)


async def amain(args: argparse.Namespace) -> int:
    from contextlib import AsyncExitStack

    if args.fleet is not None:
        return await _fleet_demo(args)
    async with AsyncExitStack() as stack:
        env = dict(os.environ)
        sandbox = None
        if not uses_real_platforms(env):
            from gs_hooks.sandbox import Sandbox

            period = 60 if args.demo else int(env.get("GS_HOOKS_CCU_PERIOD_S", "120"))
            sandbox = await stack.enter_async_context(Sandbox.serve(port=0, ccu_period_s=period))
            env = embedded_environment(env, sandbox, demo=args.demo)
        config = gs_hooks.Config.from_env(env)
        game = GameServer(
            server_id=config.sessions.server_id,
            max_connections=args.max_connections,
            idle_timeout_s=args.idle_timeout,
        )
        hooks = gs_hooks.setup(
            config,
            on_kick=game.on_kick,
            on_notice=game.on_notice,
            webstore_profile=game.webstore_profile,
        )
        await stack.enter_async_context(hooks)
        port = await game.start(hooks, args.host, args.port)
        stack.push_async_callback(game.close)
        listener_url = hooks.listener.url if hooks.listener is not None else None
        if sandbox is not None and listener_url is not None:
            sandbox.hive.register(
                listener_url + config.hive.suspension_path,
                env["GS_HOOKS_HIVE_AUTH_KEY"],
                int(env["GS_HOOKS_HIVE_GAME_INDEX"]),
            )
        print(f"game server      tcp://{args.host}:{port}  (newline-delimited JSON)")
        if hooks.fleet is not None:
            print(f"fleet            process {hooks.fleet.pid}  (game {config.fleet.game}, Redis {config.fleet.url})")
        if listener_url:
            print(f"webhook listener {listener_url}  (suspensions: {config.hive.suspension_path}, /webstore-profile)")
            if config.listener.dashboard:
                print(f"dashboard        {listener_url}/dashboard")
            if config.listener.admin_key is not None:
                print(f"admin API        {listener_url}/admin/  (`gs-hooks admin`; key: GS_HOOKS_ADMIN_KEY, set it)")
        if sandbox is not None:
            print(f"sandbox          {sandbox.url}  (embedded; CCU grid period {config.ccu.period_s}s)")
        sys.stdout.flush()

        if args.demo:
            from .demo import run_demo

            return await run_demo(
                game,
                hooks,
                sandbox,
                game_host=args.host,
                game_port=port,
                listener_url=listener_url,
                metrics_out=args.metrics_out,
            )

        if args.bots:
            from .bots import run_bots

            bots = asyncio.create_task(
                run_bots(args.bots, args.host, port, sandbox_url=env.get("GS_HOOKS_SANDBOX_URL"))
            )
            stack.callback(bots.cancel)
        # Ctrl-C or SIGTERM (Docker, Kubernetes, systemd): every player is kicked (reason "shutdown"), then leaving
        # the stack closes the game server, then the hooks in order (flush: CCU spool, bans; then close)
        await hooks.serve_until_signal()
        print("shutting down: flushing CCU spool, closing listener", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    loop_factory = None
    if args.loop == "uvloop":
        import uvloop  # optional: pip install uvloop

        loop_factory = uvloop.new_event_loop
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(amain(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
