"""A FIFO concurrency cap whose free slot costs no checkpoint (the verifier's concurrency cap)."""

from __future__ import annotations

from collections import deque
from types import TracebackType

import anyio

__all__ = ["Slots"]


class Slots:
    """A FIFO concurrency cap with a checkpoint-free fast path (backend-neutral: anyio events).

    Why not :class:`anyio.CapacityLimiter`: its ``acquire`` always checkpoints (twice, one of them in a shielded
    cancel scope), which measured ~0.5 ms of extra CPU per verification in the login-storm bench (``bench.gamebase``)
    on asyncio; here a free slot costs a counter decrement, and a released slot is handed straight to the
    oldest waiter.

    Args:
        total: the number of slots.
    """

    __slots__ = ("_free", "_waiters", "total")

    def __init__(self, total: int) -> None:
        if total < 1:
            raise ValueError("the number of slots must be >= 1")
        self.total = total
        self._free = total
        self._waiters: deque[anyio.Event] = deque()

    @property
    def borrowed(self) -> int:
        """Slots in use."""
        return self.total - self._free

    @property
    def waiting(self) -> int:
        """Tasks waiting for a slot."""
        return len(self._waiters)

    def acquire_nowait(self) -> bool:
        """Take a slot if one is free and nobody waits for one; whether it was taken."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        return False

    async def acquire(self) -> None:
        """Take a slot, waiting (FIFO) while none is free."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        event = anyio.Event()
        self._waiters.append(event)
        try:
            await event.wait()
        except BaseException:
            if event.is_set():  # a slot was handed to us as we were cancelled: pass it on
                self.release()
            else:
                self._waiters.remove(event)
            raise

    def release(self) -> None:
        """Give a slot back (to the oldest waiter, if any)."""
        if self._waiters:
            self._waiters.popleft().set()
        else:
            self._free += 1

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
