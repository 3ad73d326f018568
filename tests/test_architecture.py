"""The engine's shape, kept so: imports point one way (down the layers below), no import cycles, and tasks never
import each other. Every import counts, at module level or inside a function (a deferred import still ties two
modules together). See docs/architecture.md."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("models", "data", "bench", "pages")
# lowest first: a module may import its own layer and the layers below it, never one above
LAYERS = (
    "models",
    "data",
    "bench.core",
    "bench.tasks",
    "bench.run",
    "bench.exec",
    "bench.experiments",
    "bench.cli",
    "bench.__main__",
    "pages",
    "app",
)


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    out = {"app": ROOT / "app.py"}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            out[_module_name(path)] = path
    return out


def _resolve(name: str, modules: set[str]) -> str | None:
    """The project module an import names (`bench.core.train`, or the package for `from bench.core import x`)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (anywhere in the file)."""
    sources = _sources()
    modules = set(sources)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in sources.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                target = _resolve(name, modules)
                if target and target != mod:
                    graph[mod].add(target)
    return graph


def layer(module: str) -> int:
    best = -1
    for i, prefix in enumerate(LAYERS):
        if module == prefix or module.startswith(prefix + "."):
            best = i  # the longest (most specific) prefix is the last match in LAYERS order for bench.*
    if best < 0 and module == "bench":
        return LAYERS.index("bench.core")
    assert best >= 0, f"{module} belongs to no layer: add it to LAYERS or move it"
    return best


def test_imports_point_down_the_layers() -> None:
    up = [
        f"{src} ({LAYERS[layer(src)]}) imports {dst} ({LAYERS[layer(dst)]})"
        for src, dsts in import_graph().items()
        for dst in dsts
        if layer(dst) > layer(src)
    ]
    assert not up, "imports that point up:\n" + "\n".join(sorted(up))


def test_there_are_no_import_cycles() -> None:
    graph = import_graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    # a package's __init__ and its own modules are one room: `bench.tasks` registry <-> its task packages
    # is not an import (the registry loads BUILTIN by name), so no exception is needed here
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_tasks_never_import_each_other() -> None:
    graph = import_graph()

    def task_of(m: str) -> str | None:
        parts = m.split(".")
        return parts[2] if len(parts) > 2 and parts[:2] == ["bench", "tasks"] else None

    crossing = [f"{a} -> {b}" for a, ds in graph.items() for b in ds if task_of(a) and task_of(b) and task_of(a) != task_of(b)]
    assert not crossing, "\n".join(crossing)


def test_the_check_sees_a_cycle_and_an_upward_import(monkeypatch) -> None:
    """The checks above can fail: a fake graph with an upward import and a cycle is caught."""
    graph = {"bench.core.train": {"bench.run.runner"}, "bench.run.runner": {"bench.core.train"}}
    assert layer("bench.run.runner") > layer("bench.core.train")
    import sys

    me = sys.modules[__name__]
    monkeypatch.setattr(me, "import_graph", lambda: {k: set(v) for k, v in graph.items()})
    for check in (test_imports_point_down_the_layers, test_there_are_no_import_cycles):
        try:
            check()
        except AssertionError:
            continue
        raise AssertionError(f"{check.__name__} did not catch the planted problem")


def test_engine_module_names_explain_themselves() -> None:
    """No `evaluate.py` beside `evaluators.py` or `forecasting.py` beside `forecast.py` in the engine, and no name
    used twice in it (a task package's `task.py` is its declaration, the same role everywhere)."""
    stems = [p.stem for m, p in _sources().items() if m.startswith("bench.") and p.stem not in ("__init__", "task")]
    names = sorted(set(stems))
    twice = sorted({n for n in stems if stems.count(n) > 1})
    clashes = [(a, b) for a in names for b in names if a != b and b.startswith(a) and b[len(a) :] in ("s", "ing", "ors", "ers")]
    assert not twice and not clashes, (twice, clashes)
