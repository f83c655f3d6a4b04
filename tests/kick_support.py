"""A :class:`gs_hooks.sessions.Connection` for tests that open sessions without a real socket."""

from __future__ import annotations

from collections.abc import Callable

import anyio.lowlevel


class FakeConnection:
    """Records its close: ``on_close`` is called once, on the first ``close()``/``aclose()``.

    Args:
        on_close: called when the connection is closed (e.g. ``lambda: closed.append("a")``).
        fail: ``close()`` raises this instead (a custom adapter whose close breaks).
    """

    def __init__(self, on_close: Callable[[], object] | None = None, *, fail: BaseException | None = None) -> None:
        self.on_close = on_close
        self.fail = fail
        self.closes = 0

    @property
    def closing(self) -> bool:
        return self.closes > 0

    def close(self) -> None:
        if self.fail is not None:
            raise self.fail
        self.closes += 1
        if self.closes == 1 and self.on_close is not None:
            self.on_close()

    async def aclose(self) -> None:
        await anyio.lowlevel.checkpoint()
        self.close()
