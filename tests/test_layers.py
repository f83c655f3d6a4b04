"""The house's layers, checked on the source (AST, nothing imported): no import cycle, no upward import, no import
hidden in a function but optional dependencies, and pure modules that pull in no IO library.

The layers, bottom up (ARCHITECTURE.md draws them):

0. bottom: the error tree, time, the clock, back-off, callbacks, the component protocol, the lifecycle, the store,
   the config, the rate-limited log, wake-up signals, health, ids, JSON checks, the HTTP clients of the platform
   calls (the interface, the library's own client and its connection, aiohttp, httpx), the event counters, the
   JSON log formatter;
1. core: ``sessions`` (registry, adapters, kicker) and ``http`` (router, server, listener);
2. ``_services``: what every install receives;
3. capabilities: ``bans``, ``ccu``, ``gamebase``, ``hive``, ``gamepot``, ``fleet`` (each may import the neighbours
   listed in :data:`NEIGHBOURS`), and the ``sandbox`` tool;
4. wiring: each package's ``_install`` (and ``_api``, the methods it lends to ``Hooks``);
5. ``_login`` and ``ops``; 6. ``_hooks``; 7. ``_setup``; 8. the package itself and ``__main__``.

Every import counts: at module level, under ``TYPE_CHECKING`` and inside functions. The implicit import of a
module's parent package (``import gs_hooks.a.b`` runs ``gs_hooks/a/__init__.py``) is not an edge.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import gs_hooks

SRC = Path(gs_hooks.__file__).resolve().parent
PACKAGE = "gs_hooks"

BOTTOM = {
    "_backoff",
    "_callbacks",
    "_clock",
    "_component",
    "_config",
    "_counters",
    "_exceptions",
    "_fast_http",
    "_fast_http_conn",
    "_fast_http_wire",
    "_fleet_ops",
    "_health",
    "_http_base",
    "_http_client",
    "_ids",
    "_json",
    "_jsonlog",
    "_lifecycle",
    "_metrics",
    "_ratelog",
    "_signal",
    "_store",
    "_time",
}
CORE = {"sessions", "http"}
CAPABILITIES = {"bans", "ccu", "gamebase", "hive", "gamepot", "fleet", "sandbox"}
NEIGHBOURS: dict[str, set[str]] = {
    "bans": set(),
    "ccu": set(),
    "gamebase": set(),
    "hive": {"bans"},  # the suspension webhook records into the ban book
    "gamepot": {"ccu"},  # the CCU history is the reporter's spool
    # fleet mode: the ban book's persistence, the CCU sum, leader-only polls, the web-store answer from the player's
    # process, the fleet's CCU history for the GamePot inquiry and the dashboard
    "fleet": {"bans", "ccu", "gamebase", "gamepot", "hive"},
    "sandbox": {"ccu", "gamebase", "gamepot", "hive"},  # the emulator may share the platforms' protocol tables
}
WIRING = {"_install", "_api"}
UPPER = {"_login": 5, "ops": 5, "_hooks": 6, "_setup": 7, "__main__": 8}

OPTIONAL = {"prometheus_client", "redis", "trio", "uvloop"}
"""Optional dependencies: the only imports allowed inside a function (the feature says what to install)."""
PENDING_IN_FUNCTION = {("gs_hooks._config", "hmac")}
"""In-function imports in files another change owns (the config split hoists this one); tolerated, not required."""

IO = {
    "aiohttp",
    "anyio",
    "asyncio",
    "h11",
    "httpcore",
    "httpx",
    "selectors",
    "sniffio",
    "socket",
    "sqlite3",
    "ssl",
    "trio",
}


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    imports: set[str] = field(default_factory=set)  # gs_hooks modules, every import
    external: set[str] = field(default_factory=set)  # top-level names of other libraries, every import
    in_function: set[str] = field(default_factory=set)  # full names imported inside a function


def _modules() -> dict[str, Module]:
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = [PACKAGE, *path.relative_to(SRC).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        found[".".join(parts)] = Module(".".join(parts), path, is_package)
    return found


def _targets(module: Module, node: ast.Import | ast.ImportFrom, known: dict[str, Module]) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    if node.level:
        base = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join([*base, *([node.module] if node.module else [])])
    else:
        target = node.module or ""
    for alias in node.names:
        yield f"{target}.{alias.name}" if f"{target}.{alias.name}" in known else target


def _in_functions(tree: ast.Module) -> set[int]:
    inner: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            inner |= {id(n) for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom)}
    return inner


def _graph() -> dict[str, Module]:
    known = _modules()
    for module in known.values():
        tree = ast.parse(module.path.read_text(encoding="utf-8"))
        inner = _in_functions(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for target in _targets(module, node, known):
                if id(node) in inner:
                    module.in_function.add(target)
                if target == PACKAGE or target.startswith(PACKAGE + "."):
                    while target not in known:
                        target = target.rsplit(".", 1)[0]
                    if target != module.name:
                        module.imports.add(target)
                elif target != "__future__":
                    module.external.add(target.split(".")[0])
    return known


GRAPH = _graph()


def _unit(name: str) -> str:
    """The package (or top-level module) a module belongs to: ``gs_hooks.bans._book`` -> ``bans``."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else PACKAGE


def rank(name: str) -> int:
    """The layer of a module (see the module docstring)."""
    unit, leaf = _unit(name), name.rsplit(".", 1)[-1]
    if unit == PACKAGE:
        return 8
    if unit in UPPER:
        return UPPER[unit]
    if unit in BOTTOM:
        return 0
    if unit == "_services":
        return 2
    if unit in CORE | CAPABILITIES and leaf in WIRING:
        return 4
    if unit in CORE:
        return 1
    if unit in CAPABILITIES:
        return 3
    raise AssertionError(f"{name} is in no layer: add it to the picture (and to ARCHITECTURE.md)")


def _sccs(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                out.append(sorted(component))
    return out


def test_the_scan_sees_the_package() -> None:
    assert len(GRAPH) > 60
    assert "gs_hooks.sessions._registry" in GRAPH["gs_hooks.sessions._kicker"].imports
    assert "gs_hooks._setup" in GRAPH[PACKAGE].imports
    assert "prometheus_client.core" in GRAPH["gs_hooks.ops._probes"].in_function


def test_no_import_cycle_among_modules() -> None:
    cycles = [c for c in _sccs({name: module.imports for name, module in GRAPH.items()}) if len(c) > 1]
    assert cycles == []


def test_every_module_is_in_a_layer() -> None:
    for name in GRAPH:
        rank(name)


def test_no_upward_import() -> None:
    bad = []
    for name, module in GRAPH.items():
        for target in module.imports:
            same_unit = _unit(target) == _unit(name)
            # same layer: the bottom modules use each other (no cycle, above), capabilities their neighbours (below)
            if rank(target) > rank(name) or (rank(target) == rank(name) and not same_unit and rank(name) not in (0, 3)):
                bad.append(f"{name} -> {target}")
    assert bad == []


def test_capabilities_import_only_their_listed_neighbours() -> None:
    bad = []
    for name, module in GRAPH.items():
        if rank(name) != 3:
            continue
        unit = _unit(name)
        for target in module.imports:
            if rank(target) == 3 and _unit(target) not in {unit} | NEIGHBOURS[unit]:
                bad.append(f"{name} -> {target}")
    assert bad == []


def test_only_the_wiring_sees_the_services() -> None:
    """A capability's working code takes narrow dependencies (a clock, a client, a callback), never Services."""
    importers = {name for name, module in GRAPH.items() if f"{PACKAGE}._services" in module.imports}
    assert importers, "the scan found no importer of _services"
    assert {name for name in importers if rank(name) < 4} == set()


def test_nothing_imports_setup_but_the_package() -> None:
    importers = {name for name, module in GRAPH.items() if f"{PACKAGE}._setup" in module.imports}
    assert importers == {PACKAGE}
    importers = {name for name, module in GRAPH.items() if PACKAGE in module.imports}
    assert importers == set()


def test_only_the_command_line_imports_the_sandbox() -> None:
    importers = {
        name
        for name, module in GRAPH.items()
        if _unit(name) != "sandbox" and any(_unit(t) == "sandbox" for t in module.imports)
    }
    assert importers == {f"{PACKAGE}.__main__"}


def test_imports_inside_functions_are_optional_dependencies_only() -> None:
    bad = {
        (name, target)
        for name, module in GRAPH.items()
        for target in module.in_function
        if target.split(".")[0] not in OPTIONAL and (name, target) not in PENDING_IN_FUNCTION
    }
    assert bad == set()


PURE = [
    *sorted(name for name in GRAPH if name.endswith("._protocol")),
    "gs_hooks._time",
    "gs_hooks._fast_http_wire",
    "gs_hooks._ids",
    "gs_hooks._json",
    "gs_hooks.bans._enforce",
    "gs_hooks.bans._memory",
    "gs_hooks.bans._model",
    "gs_hooks.ccu._model",
    "gs_hooks.http._strict",
    "gs_hooks.sessions._registry",
    "gs_hooks.sessions._session",
]


def _closure(name: str) -> set[str]:
    seen, todo = set(), [name]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(GRAPH[current].imports)
    return seen


def test_pure_modules_pull_in_no_io_library() -> None:
    assert len(PURE) >= 9  # every _protocol module (ccu, gamebase, gamepot, hive) and the rest
    for name in PURE:
        reached = _closure(name)
        io = {lib for module in reached for lib in GRAPH[module].external} & IO
        assert io == set(), f"{name} pulls in {sorted(io)} through {sorted(reached)}"


# -- size: one job per file, functions a reader can hold (issue 15) ---------------------------------------------

MAX_FILE_LINES = 450
MAX_FUNCTION_LINES = 60
# the issue's own exceptions: the sandbox's route tables and the generated config table (none needs it today)
SIZE_EXEMPT: frozenset[str] = frozenset()


def _sizes() -> tuple[list[str], list[str]]:
    files, functions = [], []
    for path in sorted(SRC.rglob("*.py")):
        where = path.relative_to(SRC).as_posix()
        if where in SIZE_EXEMPT:
            continue
        text = path.read_text(encoding="utf-8")
        if (n := len(text.splitlines())) > MAX_FILE_LINES:
            files.append(f"{where}: {n} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    functions.append(f"{where}:{node.lineno} {node.name}: {length} lines")
    return files, functions


def test_no_file_or_function_outgrows_its_job() -> None:
    files, functions = _sizes()
    assert files == [], f"files over {MAX_FILE_LINES} lines: split them by job"
    assert functions == [], f"functions over {MAX_FUNCTION_LINES} lines"
