"""Imports flow one way: yolo -> search_spaces -> trainables -> analysis -> yct, and no
module imports itself back through others. Every import counts: at the top of a file,
inside functions, under ``TYPE_CHECKING``."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("yolo", "search_spaces", "trainables", "analysis", "yct")
# what the core may never import, at any depth of a function
FORBIDDEN_IN_CORE = ("ray", "mlflow", "optuna")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for layer in LAYERS for p in (ROOT / layer).rglob("*.py")}


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The project modules ``path`` imports (``from a import b`` is ``a.b`` when that is a
    module, else ``a``), and the third-party top-level names as they are."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in known else base)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(path, name, known) for name, path in modules.items()}


def test_no_package_imports_one_above_it() -> None:
    upward = []
    for module, imports in _graph().items():
        rank = LAYERS.index(module.split(".")[0])
        for target in imports:
            top = target.split(".")[0]
            if top in LAYERS and LAYERS.index(top) > rank:
                upward.append(f"{module} -> {target}")
            if top in FORBIDDEN_IN_CORE and module.startswith("yolo"):
                upward.append(f"{module} -> {target} (the core knows nothing of {top})")
    assert not upward, upward


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in graph:
                continue
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
                result.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return result


def test_no_module_imports_itself_back() -> None:
    graph = {m: {t for t in ts if t != m} for m, ts in _graph().items()}
    # a package's __init__ re-exporting its modules is not a cycle through them
    for module in graph:
        graph[module] = {t for t in graph[module] if not module.startswith(t + ".")}
    assert not _cycles(graph), _cycles(graph)


def test_the_checker_sees_imports_inside_functions(tmp_path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from trainables import study\n")
    assert "trainables.study" in _imports(source, "yolo.m", {"trainables.study"})
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
