"""Calling the game's callbacks: sync or async, one frozen details object, never raising into gs_hooks.

Every callback a game passes to :func:`gs_hooks.setup` (``on_ban``, ``on_maintenance``, ``on_notice``,
``on_ccu_problem``...) takes one frozen details object and may return an awaitable. A callback's exception is
logged on ``gs_hooks`` and reported as ``False``: a failing callback never stops the component calling it.

:func:`call_callback_nowait` does not make a coroutine while the callback is sync (a ban batch calls thousands);
:func:`call_callback` is the same plus the await.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["call_callback", "call_callback_nowait"]

log = logging.getLogger("gs_hooks")

E = TypeVar("E")


async def call_callback(callback: Callable[[E], object] | None, event: E, /, *, what: str) -> bool:
    """Call a sync or async callback with ``event``; log (do not raise) its exception.

    Args:
        callback: the game's callback, or None (nothing to call: success).
        event: its one argument (a frozen details object).
        what: the callback's name, for the log line.

    Returns:
        True when the callback returned (or its awaitable finished) without raising.
    """
    if callback is None:
        return True
    done = call_callback_nowait(callback, event, what=what)
    return done if isinstance(done, bool) else await done


def call_callback_nowait(
    callback: Callable[[E], object], event: E, /, *, what: str
) -> bool | Coroutine[Any, Any, bool]:
    """:func:`call_callback` without a coroutine when the callback is sync.

    Returns:
        The success flag; or, when the callback returned an awaitable, a coroutine to await that finishes the
        call and returns the flag.
    """
    try:
        result = callback(event)
    except Exception:
        log.exception("%s callback raised", what)
        return False
    if result is not None and inspect.isawaitable(result):
        return _finish_callback(result, what)
    return True


async def _finish_callback(result: Awaitable[object], what: str) -> bool:
    try:
        await result
    except Exception:
        log.exception("%s callback raised", what)
        return False
    return True
