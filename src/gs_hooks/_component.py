"""What a background part of the hooks is: the :class:`Component` protocol, and how work is started beside it.

A component (the CCU reporter, the maintenance watcher, the ban timer, the listener...) runs in the hooks' task
group from :meth:`~gs_hooks.Hooks.start` until :meth:`~gs_hooks.Hooks.aclose`: ``run`` reports ready through
``task_status`` and runs until cancelled; ``aclose`` flushes (it is called, in reverse start order, before the
task group is cancelled). A component may also report its health (:class:`~gs_hooks.HealthReporter`) and say
when it is idle (:class:`Idle`, what tests wait on instead of sleeping).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Protocol, runtime_checkable

import anyio
import anyio.abc

__all__ = ["Component", "Idle", "Spawn", "component_name"]

Spawn = Callable[[Callable[[], Coroutine[Any, Any, Any]]], bool]
"""Start a task in the hooks' task group: ``spawn(fn)`` runs ``fn()``; False (nothing started) when the hooks
are not running (before start, while closing)."""


class Component(Protocol):
    """A background part owned by :class:`~gs_hooks.Hooks` (CCU reporter, watchers, listener...)."""

    name: str

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled; call ``task_status.started()`` once ready."""
        ...

    async def aclose(self) -> None:
        """Flush: finish or persist in-flight work. Called before the task group is cancelled."""
        ...


@runtime_checkable
class Idle(Protocol):
    """A component that can say when it has nothing left to do until its next wake-up (tests on a fake clock)."""

    async def wait_idle(self) -> None:
        """Return once the component is asleep until its next deadline or event."""
        ...


def component_name(component: object) -> str:
    """A component's ``name``, or its type's name when it has none."""
    return str(getattr(component, "name", type(component).__name__))
