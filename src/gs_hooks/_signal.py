"""Two small wake-up primitives shared by the components: a :class:`Doorbell` (work was queued: wake the one worker)
and a :class:`Changed` broadcast (a component's state moved: what ``wait_idle()`` waits on).

Both may be made outside the event loop (in ``setup()``): their anyio events are created only while a task waits.
"""

from __future__ import annotations

import anyio

__all__ = ["Changed", "Doorbell"]


class Doorbell:
    """A wake-up call that is never lost: a ring before the waiter waits makes its wait return at once."""

    def __init__(self) -> None:
        self._rung = False
        self._event: anyio.Event | None = None

    @property
    def rung(self) -> bool:
        """Whether work was queued since the waiter last answered."""
        return self._rung

    def ring(self) -> None:
        """Work is queued (sync; from any task of the event loop)."""
        self._rung = True
        if self._event is not None:
            self._event.set()

    def answer(self) -> None:
        """The waiter takes the work queued so far: later rings are kept for its next wait."""
        self._rung = False

    async def wait(self) -> None:
        """Return once rung (at once when it was rung since the last :meth:`answer`)."""
        while not self._rung:
            event = self._event = anyio.Event()
            try:
                await event.wait()
            finally:
                self._event = None


class Changed:
    """A broadcast: :meth:`wait` returns at the next :meth:`notify` (a waiter then looks at the state again)."""

    def __init__(self) -> None:
        self._event: anyio.Event | None = None

    def notify(self) -> None:
        """Wake every current waiter (sync; no-op when none waits)."""
        if self._event is not None:
            self._event.set()
            self._event = None

    async def wait(self) -> None:
        """Return at the next :meth:`notify`."""
        if self._event is None:
            self._event = anyio.Event()
        await self._event.wait()
