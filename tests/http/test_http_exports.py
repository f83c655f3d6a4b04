"""The public surface of ``gs_hooks.http``: complete, sorted, documented."""

from __future__ import annotations

import inspect
import types

import gs_hooks.http


def _sort_key(name: str) -> tuple[int, str]:
    if name.isupper():
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def test_all_is_sorted_unique_and_complete() -> None:
    names = list(gs_hooks.http.__all__)
    assert names == sorted(names, key=_sort_key)
    assert len(names) == len(set(names))
    public = {
        name
        for name, value in vars(gs_hooks.http).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType) and name != "annotations"
    }
    assert public == set(names)


def test_every_public_object_and_method_is_documented() -> None:
    for name in gs_hooks.http.__all__:
        member = getattr(gs_hooks.http, name)
        if inspect.isclass(member) or inspect.isfunction(member):
            assert inspect.getdoc(member), name
        if inspect.isclass(member):
            for attr, value in vars(member).items():
                if not attr.startswith("_") and (inspect.isfunction(value) or isinstance(value, property)):
                    assert inspect.getdoc(value), f"{name}.{attr}"


def test_asgi_app_is_as_asgi() -> None:
    assert gs_hooks.http.asgi_app is gs_hooks.http.as_asgi
