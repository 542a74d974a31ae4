"""The package's shape: imports point one way (no cycle among the harness's modules, and packages import only
those below them in :data:`LAYERS`, counting imports inside functions and under TYPE_CHECKING), and the names
outside engines import from their old places still work."""

from __future__ import annotations

import ast
import importlib
import sys
import warnings
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "harness"


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """Module → harness modules it imports anywhere in its file (top level, functions, TYPE_CHECKING)."""
    known = modules()

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(filter(None, (resolve(alias.name) for alias in node.names)))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parent + ([base] if base else []))
                for alias in node.names:
                    target = resolve(f"{base}.{alias.name}") or resolve(base)
                    if target:
                        targets.add(target)
        graph[name] = targets - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for node in graph:
            if node not in index:
                visit(node)
    finally:
        sys.setrecursionlimit(limit)
    return found


def test_no_import_cycle_inside_the_package() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    """The check itself can fail: a made-up graph with a three-module loop."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_graph_sees_imports_inside_functions_and_type_checking() -> None:
    graph = import_graph()
    assert "harness.run.runner" in graph["harness.cli"]  # imported inside a command function
    assert "harness.scenario" in graph["harness.capacity.results"]  # under TYPE_CHECKING


LAYERS = [
    ["harness.cli", "harness.proc"],  # the command line; the deprecated alias of harness.infra.proc
    ["harness.report"],
    ["harness.capacity"],
    ["harness.run"],
    ["harness.analysis"],
    ["harness.results"],
    ["harness.loadgen"],
    ["harness.scenario"],
    ["harness.engines"],
    ["harness.kafka"],
    ["harness.infra"],
    ["harness.workload", "harness.histograms", "harness.units", "harness.errors", "harness.versions", "harness"],
]
"""The packages from the top down: a module may import its own package and anything below it, never above.
docs/development.md's package map lists them in this order."""


def layer_of(module: str) -> int:
    for index, names in enumerate(LAYERS):
        if any(module == name or module.startswith(name + ".") for name in names if name != "harness"):
            return index
    assert module == "harness", f"{module} is in no layer: add its package to LAYERS"
    return len(LAYERS) - 1


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{source} -> {target}" for source, targets in graph.items() for target in targets
                  if layer_of(target) < layer_of(source))


def test_imports_point_down_the_layers() -> None:
    assert upward_imports(import_graph()) == []


def test_the_layer_check_finds_an_upward_import() -> None:
    assert upward_imports({"harness.kafka.admin": {"harness.run.runner"}, "harness.run.runner": {"harness.kafka"}}) == [
        "harness.kafka.admin -> harness.run.runner"]


def test_the_old_place_of_managed_process_still_imports_with_a_warning() -> None:
    """README's "Adding an engine" once said ``from harness.proc import ManagedProcess``; engines outside this
    repository still do."""
    sys.modules.pop("harness.proc", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = importlib.import_module("harness.proc")
    from harness.infra.proc import ManagedProcess

    assert old.ManagedProcess is ManagedProcess
    assert any(issubclass(w.category, DeprecationWarning) and "harness.infra.proc" in str(w.message)
               for w in caught)


@pytest.mark.parametrize("name", ["harness.engines.base", "harness.engines.process", "harness.errors",
                                  "harness.workload", "harness.engines.registry"])
def test_the_plug_in_interface_stays_where_readme_says(name: str) -> None:
    importlib.import_module(name)


MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60


def test_rooms_stay_small() -> None:
    """No module over 450 lines, no function over 60 (docstring included): a module that outgrows that holds
    more than one thing."""
    big = []
    for name, path in sorted(modules().items()):
        text = path.read_text()
        if text.count("\n") > MAX_MODULE_LINES:
            big.append(f"{name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text, str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    big.append(f"{name}.{node.name}: {length} lines")
    assert big == []
