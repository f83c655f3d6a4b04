"""The ``gs-hooks`` command (also ``python -m gs_hooks``).

Sub-commands:
    sandbox   run the local platform emulator and print the settings that point gs_hooks at it.
    admin     call the admin API of a running game server (status, sessions, kick, ban, unban, bans).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .ops._admin_cli import add_admin_parser, run_admin
from .sandbox._cli import add_sandbox_parser, run_sandbox

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(prog="gs-hooks", description="gs_hooks command-line tools")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_sandbox_parser(sub)
    add_admin_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "sandbox":
        return run_sandbox(args)
    if args.command == "admin":
        return run_admin(args)
    parser.print_help()
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
