"""The hooks' lifecycle as data: every state has its moves in one table, an illegal move raises, and the hooks
follow the table (start, crash, close)."""

from __future__ import annotations

import anyio
import pytest

import gs_hooks
from component_support import Crasher
from gs_hooks._exceptions import LifecycleError
from gs_hooks._lifecycle import TRANSITIONS, Lifecycle, State

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_the_table_names_every_state_and_closed_is_final() -> None:
    assert set(TRANSITIONS) == set(State)
    assert all(targets <= set(State) for targets in TRANSITIONS.values())
    assert TRANSITIONS[State.CLOSED] == frozenset()


@pytest.mark.parametrize("start", list(State))
def test_a_move_outside_the_table_raises_and_changes_nothing(start: State) -> None:
    for target in State:
        lifecycle = Lifecycle()
        lifecycle.state = start
        if target in TRANSITIONS[start]:
            lifecycle.move(target)
            assert lifecycle.state is target
        else:
            with pytest.raises(LifecycleError, match=f"cannot go from '{start.value}' to '{target.value}'"):
                lifecycle.move(target)
            assert lifecycle.state is start


def test_lifecycle_errors_are_ours_and_runtime_errors() -> None:
    assert issubclass(LifecycleError, gs_hooks.GsHooksError) and issubclass(LifecycleError, RuntimeError)


async def test_the_hooks_walk_the_table_through_a_crash_and_close_their_resources(anyio_backend: str) -> None:
    hooks = gs_hooks.setup(gs_hooks.Config(state_path=":memory:"))
    client = hooks.http  # made (and owned) by the hooks
    crasher = Crasher()
    hooks.add_component(crasher)
    lifecycle = hooks.services.lifecycle
    seen = [lifecycle.state]

    async def run() -> None:
        await hooks.start()
        try:
            with anyio.CancelScope(shield=True):
                seen.append(lifecycle.state)
                crasher.go.set()
                while hooks.live:
                    await anyio.lowlevel.checkpoint()
                assert hooks.health()["status"] == "crashed"
                seen.append(lifecycle.state)
                with pytest.raises(LifecycleError, match="cannot start hooks in state 'crashed'"):
                    await hooks.start()
        finally:
            await hooks.aclose()  # raises the crash (the task group's exit), and still closes everything

    with pytest.raises(BaseExceptionGroup) as caught:
        await run()
    assert caught.group_contains(RuntimeError, match="component bug")
    seen.append(lifecycle.state)
    assert seen == [State.NEW, State.RUNNING, State.CRASHED, State.CLOSED]
    assert client.is_closed
    await hooks.aclose()  # closing closed hooks moves nothing
    assert lifecycle.state is State.CLOSED


async def test_closed_hooks_cannot_start_again(anyio_backend: str) -> None:
    hooks = gs_hooks.setup(gs_hooks.Config(state_path=":memory:"))
    async with hooks:
        assert hooks.services.lifecycle.state is State.RUNNING
    with pytest.raises(LifecycleError, match="cannot start hooks in state 'closed'"):
        await hooks.start()
    with pytest.raises(LifecycleError, match="before start"):
        hooks.add_component(Crasher())
