"""The code's shape: the pipeline shows in the folders, every module stands above what it imports."""

from __future__ import annotations

import ast
from pathlib import Path

from .conftest import REPO

PACKAGE = REPO / "src" / "bulletin"

# Lowest first. A module imports only from its own layer or the ones below it, and never
# in a loop: the web side and the command line stand on the stages, never the reverse.
LAYERS = [
    {"errors", "dates", "slugs", "addresses", "links", "files", "workers", "text"},
    {"report", "cache", "tokens"},
    {"config", "output"},
    {"templates", "ledger", "subscriptions"},
    {"site"},
    {"urls"},
    {"feeds"},
    {"digests"},
    {"mail"},
    {"build", "init", "unchanged", "patch"},
    {"web"},
    {"cli", "__main__"},
]
MAX_FUNCTION_LINES = 60


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """bulletin's modules that `name` imports anywhere (in functions and type checks too)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                stem = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module and node.module.startswith("bulletin"):
                stem = node.module.removeprefix("bulletin").lstrip(".")
            else:
                continue
            for alias in node.names:
                full = f"{stem}.{alias.name}".lstrip(".")
                targets.add(full if full in known else stem)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("bulletin."):
                    targets.add(alias.name.removeprefix("bulletin."))
    return {t for t in targets if t and t != name and t in known}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items() if name}


def _layer(name: str) -> int:
    top = name.split(".")[0]
    for number, layer in enumerate(LAYERS):
        if top in layer:
            return number
    raise AssertionError(f"{name} is in no layer: add it to LAYERS in tests/test_layout.py")


def test_every_module_stands_above_what_it_imports() -> None:
    wrong = [
        f"{name} imports {target}"
        for name, targets in _graph().items()
        for target in sorted(targets)
        if target.split(".")[0] != name.split(".")[0] and _layer(target) > _layer(name)
    ]
    assert wrong == []


def test_no_import_loops() -> None:
    graph = _graph()
    loops: list[str] = []
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            loops.append(" → ".join([*path[path.index(name) :], name]))
            return
        if name in done:
            return
        for target in sorted(graph.get(name, ())):
            visit(target, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
    assert loops == []


def test_the_import_graph_sees_imports() -> None:
    graph = _graph()
    assert "site.reader" in graph["feeds.writer"]
    assert "ledger" in graph["digests.editions"]  # inside a function
    assert "mail.send" in graph["cli"]


def test_no_function_is_over_60_lines() -> None:
    long = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{name}.{node.name}: {lines} lines")
    assert long == []
