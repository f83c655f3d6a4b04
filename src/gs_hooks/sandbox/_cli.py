"""``python -m gs_hooks sandbox``: run the platform sandbox until Ctrl-C / SIGTERM, printing what to configure."""

from __future__ import annotations

import argparse
import signal
import sys
from typing import TextIO

import anyio

from ._server import Sandbox

__all__ = ["add_sandbox_parser", "env_lines", "run_sandbox"]


def add_sandbox_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``sandbox`` sub-command to a parser."""
    p = sub.add_parser("sandbox", help="run the local platform emulator (Hive CCU, Gamebase, GamePot, Hive sender)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8700, help="port (default 8700; 0 = any free port)")
    p.add_argument(
        "--ccu-period", type=int, default=120, help="CCU grid period in seconds (120 = even minutes; 60 = any minute)"
    )
    p.add_argument(
        "--game-key",
        action="append",
        dest="game_keys",
        help="Hive game key to accept (repeatable; default sandbox_game)",
    )
    p.add_argument("--gamebase-app-id", default="sandbox-app")
    p.add_argument("--gamebase-secret", default="sandbox-secret")
    p.add_argument("--gamepot-project-id", default="sandbox-project")
    p.add_argument("--gamepot-api-key", default="sandbox-gamepot-key")


def env_lines(sb: Sandbox, args: argparse.Namespace) -> list[str]:
    """``NAME=value`` lines configuring gs_hooks against a running sandbox."""
    urls = sb.urls()
    game_keys = args.game_keys or ["sandbox_game"]
    return [
        f"GS_HOOKS_CCU_URL={urls['ccu_url']}",
        f"GS_HOOKS_GAME={game_keys[0]}",
        f"GS_HOOKS_CCU_PERIOD_S={args.ccu_period}",
        f"GS_HOOKS_GAMEBASE_URL={urls['gamebase_url']}",
        f"GS_HOOKS_GAMEBASE_APP_ID={args.gamebase_app_id}",
        f"GS_HOOKS_GAMEBASE_SECRET_KEY={args.gamebase_secret}",
        f"GS_HOOKS_GAMEPOT_URL={urls['gamepot_url']}",
        f"GS_HOOKS_GAMEPOT_PROJECT_ID={args.gamepot_project_id}",
        f"GS_HOOKS_GAMEPOT_API_KEY={args.gamepot_api_key}",
        f"GS_HOOKS_SANDBOX_ADMIN={urls['admin_url']}",
    ]


async def _serve(args: argparse.Namespace, out: TextIO) -> None:
    async with Sandbox.serve(
        args.port,
        host=args.host,
        ccu_period_s=args.ccu_period,
        game_keys=args.game_keys or ("sandbox_game",),
        gamebase_app_id=args.gamebase_app_id,
        gamebase_secret=args.gamebase_secret,
        gamepot_project_id=args.gamepot_project_id,
        gamepot_api_key=args.gamepot_api_key,
    ) as sb:
        print(f"gs_hooks sandbox listening on {sb.url}", file=out)
        print("# configure gs_hooks with:", file=out)
        for line in env_lines(sb, args):
            print(line, file=out)
        print("# Ctrl-C to stop", file=out, flush=True)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                print(f"stopping on {signal.Signals(signum).name}", file=out, flush=True)
                return


def run_sandbox(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Run the sandbox until a signal; returns the exit status."""
    try:
        anyio.run(_serve, args, out)
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"bad option: {exc}", file=sys.stderr)
        return 2
    return 0
