"""The public surface: ``gs_hooks.__all__`` is complete, sorted, and every name is documented."""

from __future__ import annotations

import inspect
import types

import gs_hooks
import gs_hooks.sessions


def _ruff_sort_key(name: str) -> tuple[int, str]:
    # RUF022 ("isort-style"): SCREAMING_CASE constants, then CamelCase classes, then everything else.
    if name.isupper():
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def _public_names(module: types.ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and getattr(value, "__module__", module.__name__).startswith("gs_hooks")
    }


def test_all_is_sorted_and_unique() -> None:
    for module in (gs_hooks, gs_hooks.sessions):
        names = list(module.__all__)
        assert names == sorted(names, key=_ruff_sort_key), module.__name__
        assert len(names) == len(set(names)), module.__name__


def test_all_is_complete() -> None:
    assert _public_names(gs_hooks) - {"annotations"} <= set(gs_hooks.__all__)
    for name in gs_hooks.__all__:
        assert hasattr(gs_hooks, name), name


def test_every_exported_name_has_a_docstring() -> None:
    for module in (gs_hooks, gs_hooks.sessions):
        for name in module.__all__:
            member = getattr(module, name)
            if inspect.isclass(member) or inspect.isfunction(member):
                assert inspect.getdoc(member), f"{module.__name__}.{name} has no docstring"


def test_every_public_method_of_the_session_api_has_a_docstring() -> None:
    classes = [getattr(gs_hooks.sessions, n) for n in gs_hooks.sessions.__all__]
    classes += [gs_hooks.Hooks, gs_hooks.KickRequest]
    for cls in filter(inspect.isclass, classes):
        for attr, value in vars(cls).items():
            if not attr.startswith("_") and inspect.isfunction(value):
                assert inspect.getdoc(value), f"{cls.__name__}.{attr} has no docstring"


def test_the_session_adapters_are_reachable_from_hooks() -> None:
    for method in ("track_streams", "track_anyio", "track_websockets", "asgi_middleware", "kick", "bind_player"):
        assert inspect.getdoc(getattr(gs_hooks.Hooks, method)), method
