"""No two parts of tmf_server import each other, directly or round a longer loop.

A part is a package under tmf_server (events, problems, ...) or a module at its top (app, errors, ...). The graph is
read from the source with `ast`: nothing is imported, so no module's import-time effects can hide an edge.
"""
from __future__ import annotations

import ast
from pathlib import Path

import tmf_server

ROOT = Path(tmf_server.__file__).parent


def _part(module: str) -> str | None:
    """tmf_server.events.outbox -> events; anything outside tmf_server -> None."""
    names = module.split(".")
    if names[0] != "tmf_server" or len(names) < 2:
        return None
    return names[1]


def _is_part(name: str) -> bool:
    return (ROOT / f"{name}.py").is_file() or (ROOT / name).is_dir()


def _imported(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against the importing package
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            found.add(source)
            # `from tmf_server import events` names a part, not a module of the top package
            found.update(f"{source}.{alias.name}" for alias in node.names
                         if source == "tmf_server" and _is_part(alias.name))
    return found


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT.parent).with_suffix("")
        module = ".".join(relative.parts[:-1] if path.name == "__init__.py" else relative.parts)
        part = _part(module)
        if part is None:
            continue
        edges = graph.setdefault(part, set())
        for target in map(_part, _imported(path, module)):
            if target is not None and target != part:
                edges.add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One loop of the graph as the list of its parts (first part repeated at the end), or None."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" once every path from it is explored

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state:
                loop = visit(target, path + [target])
                if loop:
                    return loop
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            loop = visit(start, [start])
            if loop:
                return loop
    return None


def test_the_graph_is_read_from_the_source():
    graph = package_graph()
    # Edges every reader of the code can see, so an empty or broken parse cannot pass unnoticed.
    assert "problems" in graph["api"]
    assert "store" in graph["problems"]
    assert "events" in graph["problems"]


def test_no_package_cycles():
    loop = find_cycle(package_graph())
    assert loop is None, "tmf_server's parts import each other: " + " -> ".join(loop)


def test_a_cycle_is_found():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
