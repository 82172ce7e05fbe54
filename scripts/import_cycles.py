#!/usr/bin/env python3
"""Print the import circles among the project's own modules (edge/, transcoding/).

A circle is two or more modules that import each other, directly or round a
longer loop. Circles make a module impossible to understand, test or move
alone, and they are what import order bugs are made of, so the project keeps
none (tests/test_import_cycles.py fails on any it does not know about).

Every import statement counts, wherever it stands: at module level, inside a
function (a deferred import still ties the two modules together, it only hides
the circle from the interpreter), and under `if TYPE_CHECKING:` (the two
modules still depend on each other's shapes). Importing `a.b.c` does not count
as importing the packages `a` and `a.b`; `from a.b import name` counts as
importing `a.b.name` when that is one of our modules and `a.b` otherwise.

Usage: scripts/import_cycles.py [ROOT]   (exit status 1 when there is a circle)
"""
from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("edge", "transcoding")


@dataclass(frozen=True)
class Edge:
    importer: str
    imported: str
    line: int
    deferred: bool       # inside a function
    type_only: bool      # under `if TYPE_CHECKING:`

    def describe(self) -> str:
        how = ", ".join(w for w, on in (("in a function", self.deferred), ("TYPE_CHECKING", self.type_only)) if on)
        return f"{self.importer} -> {self.imported} (line {self.line}{'; ' + how if how else ''})"


def modules(root: Path) -> dict[str, Path]:
    """Our modules by dotted name (a package is named for its __init__.py)."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """(node, deferred, type_only) for every import statement in the tree."""
    def walk(node: ast.AST, deferred: bool, type_only: bool):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, deferred, type_only
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                yield from walk(child, True, type_only)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    yield from walk(ast.Module(body=[stmt], type_ignores=[]), deferred, True)
                for stmt in child.orelse:
                    yield from walk(ast.Module(body=[stmt], type_ignores=[]), deferred, type_only)
            else:
                yield from walk(child, deferred, type_only)
    yield from walk(tree, False, False)


def edges(root: Path) -> list[Edge]:
    ours = modules(root)
    found: list[Edge] = []
    for name, path in ours.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, deferred, type_only in _imports(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    targets.append(sub if sub in ours else source)
            for target in targets:
                # `import a.b.c` of something not ours (or an attribute path): its longest module of ours
                while target and target not in ours:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    found.append(Edge(name, target, node.lineno, deferred, type_only))
    return found


@dataclass(frozen=True)
class Circle:
    modules: frozenset[str]   # every module of the strongly connected group
    loop: tuple[Edge, ...]    # one shortest loop through it, as the imports that close it


def cycles(root: Path) -> list[Circle]:
    """Every group of modules that import each other, with one shortest loop through each."""
    graph: dict[str, dict[str, Edge]] = {}
    for e in edges(root):
        graph.setdefault(e.importer, {}).setdefault(e.imported, e)
    found = [Circle(frozenset(group), tuple(_shortest_loop(graph, min(group), group)))
             for group in _strongly_connected(graph)]
    return sorted(found, key=lambda c: sorted(c.modules))


def _strongly_connected(graph: dict[str, dict[str, Edge]]) -> list[set[str]]:
    """Tarjan's algorithm (iterative); only the groups of two or more modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[set[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, {}))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, {})))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    group = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.add(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(group)
    return groups


def _shortest_loop(graph: dict[str, dict[str, Edge]], start: str, group: set[str]) -> list[Edge]:
    """Breadth-first from `start` back to itself, inside the group."""
    came_from: dict[str, Edge] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child, e in sorted(graph.get(node, {}).items()):
                if child not in group:
                    continue
                if child == start:
                    loop = [e]
                    while loop[0].importer != start:
                        loop.insert(0, came_from[loop[0].importer])
                    return loop
                if child not in came_from:
                    came_from[child] = e
                    following.append(child)
        frontier = following
    raise AssertionError(f"{start} is in a circle but no loop was found")


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent
    found = cycles(root)
    for circle in found:
        names = [e.importer for e in circle.loop]
        print(" -> ".join(names + [names[0]]))
        for e in circle.loop:
            print("    " + e.describe())
        if len(circle.modules) > len(names):
            print("    (the group also holds: " + ", ".join(sorted(circle.modules - set(names))) + ")")
    print(f"{len(found)} import circle(s) in {', '.join(PACKAGES)}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
