"""The ban book's timer: the component that does the book's queued work, always running while the hooks run.

The book never does background work itself: whenever it queues some (bans recorded by the sync core to enforce,
a batch cut short, a start or an end put on its timeline, a write to retry, its first load) it rings its
doorbell (:class:`~gs_hooks._signal.Doorbell`). The timer answers: it runs the book's ``tick`` (enforce what is
queued and what has started, drop what has ended, retry failed writes, purge), then sleeps on the injected clock
until the book's next deadline or the next ring. A ring while it works is kept, so nothing queued waits for the
next deadline.

The timer sees the book only through :class:`Chores` (its public methods), and the book does not know the timer.
"""

from __future__ import annotations

import logging
from typing import Protocol

import anyio
import anyio.abc

from .._clock import Clock
from .._signal import Changed, Doorbell

__all__ = ["BanTimer", "Chores"]

log = logging.getLogger("gs_hooks.bans")


class Chores(Protocol):
    """What the timer needs of the ban book."""

    clock: Clock
    doorbell: Doorbell

    @property
    def loaded(self) -> bool:
        """Whether the book has read its persistence."""
        ...

    async def load(self) -> None:
        """Read the persistence (once)."""
        ...

    async def tick(self) -> int:
        """Do the queued and due work; returns sessions kicked."""
        ...

    def next_deadline(self) -> float | None:
        """When the book next has work that is not rung for, or None."""
        ...

    async def flush(self) -> int:
        """One last try at writing what could not be written; returns what is still unwritten."""
        ...


class BanTimer:
    """The ban book's component: enforces bans queued by the sync core and bans whose start has come, drops
    ended bans from memory, retries failed writes, purges old rows. Sleeps on the injected clock until the next
    deadline or ring.

    Args:
        book: the ban book.
        load_at_start: read the store when starting (otherwise the book loads on first use, and rings).
    """

    name = "bans"

    def __init__(self, book: Chores, *, load_at_start: bool = True) -> None:
        self.book = book
        self.load_at_start = load_at_start
        self._asleep = False
        self._changed = Changed()

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled."""
        book = self.book
        if self.load_at_start:
            await book.load()
        task_status.started()
        bell = book.doorbell
        while True:
            bell.answer()
            if book.loaded:
                try:
                    await book.tick()
                except Exception:
                    log.exception("ban timer tick failed")
            if not bell.rung:
                await self._sleep(book.next_deadline() if book.loaded else None)

    async def _sleep(self, deadline: float | None) -> None:
        """Until the deadline or a ring. Asleep (for :meth:`wait_idle`) once the clock knows the deadline."""
        bell = self.book.doorbell
        try:
            async with anyio.create_task_group() as tg:
                if deadline is None:
                    self._note_asleep(True)
                else:
                    tg.start_soon(self._sleep_until, deadline, tg.cancel_scope)
                await bell.wait()
                tg.cancel_scope.cancel()
        finally:
            self._note_asleep(False)

    async def _sleep_until(self, deadline: float, scope: anyio.CancelScope) -> None:
        self._note_asleep(True)
        await self.book.clock.sleep_until(deadline)
        scope.cancel()

    def _note_asleep(self, asleep: bool) -> None:
        self._asleep = asleep
        self._changed.notify()

    @property
    def idle(self) -> bool:
        """Asleep with nothing queued: every ring so far has been answered and its work done."""
        return self._asleep and not self.book.doorbell.rung

    async def wait_idle(self) -> None:
        """Return once the timer sleeps with nothing queued (its work, writes included, done). For tests on a
        fake clock; waits for as long as the timer does not run."""
        while not self.idle:
            await self._changed.wait()

    async def aclose(self) -> None:
        """Flush: see :meth:`BanBook.flush <gs_hooks.BanBook.flush>`."""
        await self.book.flush()

    def __repr__(self) -> str:
        return f"BanTimer(asleep={self._asleep})"
