"""Components with scripted faults, for the lifecycle and readiness tests."""

from __future__ import annotations

import anyio
import anyio.abc


class Crasher:
    """A component with a bug: it raises ``RuntimeError("component bug")`` once ``go`` is set."""

    name = "crasher"

    def __init__(self) -> None:
        self.go = anyio.Event()

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await self.go.wait()
        raise RuntimeError("component bug")

    async def aclose(self) -> None:
        pass
