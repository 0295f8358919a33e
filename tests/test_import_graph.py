"""The import graph of the core, drawn from its ``import`` statements: no circle between its packages or modules.

Imports inside functions count (they hide a circle, they do not remove it); ``if TYPE_CHECKING:`` blocks do not.
Run this file to print the core's packages in dependency order: ``uv run python tests/test_import_graph.py``.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _modules(package: str) -> dict[str, Path]:
    found = {}
    for path in (ROOT / package).rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(name: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    tree = ast.parse(path.read_text())
    typing_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for statement in block.body
        for node in ast.walk(statement)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        yield from (target for target in targets if target in known and target != name)


def module_graph(package: str) -> dict[str, set[str]]:
    known = _modules(package)
    return {name: set(_imports(name, path, known)) for name, path in known.items()}


def unit_of(module: str) -> str:
    """The package (or top-level module) of the core a module belongs to: ``vrtx_pipelines.pull.run`` -> ``pull``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def package_graph(package: str = "vrtx_pipelines") -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, imported in module_graph(package).items():
        unit = unit_of(module)
        graph.setdefault(unit, set()).update(unit_of(m) for m in imported if unit_of(m) != unit)
    graph.pop(package, None)  # the package's own __init__ (its version)
    for deps in graph.values():
        deps.discard(package)
    return graph


def _circle(graph: dict[str, set[str]]) -> list[str] | None:
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        return list(exc.args[1])
    return None


def layers(graph: dict[str, set[str]]) -> list[list[str]]:
    """The graph in dependency order: each layer imports only from the layers before it."""
    sorter = TopologicalSorter(graph)
    sorter.prepare()
    ordered = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        ordered.append(ready)
        sorter.done(*ready)
    return ordered


def test_no_circle_between_the_cores_packages() -> None:
    graph = package_graph()
    assert _circle(graph) is None, f"the core's packages import each other in a circle: {_circle(graph)}"
    # The flows sit on the shared layers; the Dagster definitions and the command line sit on the flows.
    assert "orchestration" not in set().union(
        *(deps for unit, deps in graph.items() if unit not in ("cli", "definitions"))
    )
    assert not graph["db"] - {"config"}


def test_no_circle_between_modules_of_the_core_the_providers_or_the_api() -> None:
    for package in ("vrtx_pipelines", "providers", "api"):
        graph = module_graph(package)
        assert _circle(graph) is None, f"{package} modules import each other in a circle: {_circle(graph)}"


if __name__ == "__main__":
    graph = package_graph()
    if (circle := _circle(graph)) is not None:
        sys.exit(f"circle: {' -> '.join(circle)}")
    for depth, layer in enumerate(layers(graph)):
        for unit in layer:
            print(f"{depth:2}  {unit:15} -> {', '.join(sorted(graph[unit])) or '(nothing of the core)'}")
