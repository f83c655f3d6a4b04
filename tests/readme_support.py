"""The README's own snippets, read from README.md, so tests exercise what a user copies."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import gs_hooks

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    """Every ```python block of the README, in order."""
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL)


def readme_function(name: str) -> Any:
    """The top-level ``def``/``async def`` called ``name`` in the README's Python blocks, defined as written."""
    for block in python_blocks():
        lines = block.splitlines()
        for i, line in enumerate(lines):
            if re.match(rf"(async )?def {name}\(", line):
                body = [line]
                for more in lines[i + 1 :]:
                    if more and not more[0].isspace():
                        break
                    body.append(more)
                namespace: dict[str, Any] = {"gs_hooks": gs_hooks}
                exec("\n".join(body), namespace)  # noqa: S102 - the README's own code, which users copy
                return namespace[name]
    raise AssertionError(f"no function {name!r} in the README's Python blocks")


def readme_kick_player() -> Any:
    """The Quickstart's ``kick_player`` (the recipe every adapter must honour)."""
    return readme_function("kick_player")
