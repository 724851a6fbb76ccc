"""The library's import graph, read with ``ast``: layered in one direction, no Streamlit.

Every import counts, also those inside functions (a lazy import is still a dependency), except those
under ``if TYPE_CHECKING:``. Two levels: modules (``pipeline.scans`` ↔ ``pipeline.validate`` would be
a circle) and the library's top-level parts, a subpackage counting as one (``pipeline.models`` ↔
``pipeline.ihc`` would be a folder loop even without a module circle).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pipeline"


def _modules() -> dict[str, tuple[Path, list[str]]]:
    """module name → (file, the package its relative imports start from)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
            package = parts
        else:
            package = parts[:-1]
        found[".".join(parts)] = (path, package)
    return found


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for n in ast.walk(node))
    return skipped


def imports_of(path: Path, package: list[str]) -> set[str]:
    """Every absolute module name ``path`` imports (names under ``from x import name`` that are
    modules count as that module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = _type_checking_nodes(tree)
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            names.add(target)
            names.update(f"{target}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {
        name: {t for t in imports_of(path, package) if t in modules and t != name}
        for name, (path, package) in modules.items()
    }


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def part(module: str) -> str:
    """``pipeline.ihc.model`` → ``pipeline.ihc``; ``pipeline.scans`` stays itself."""
    return ".".join(module.split(".")[:2])


def test_the_graph_sees_imports_of_every_kind():
    graph = import_graph()
    assert "pipeline.journey_index" in graph["pipeline.journeys"]  # from .journey_index import ...
    assert "pipeline.db" in graph["pipeline.scans"]
    assert "pipeline.models.heuristics" not in graph["pipeline.models.base"]  # importlib by name: not an import
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_imports_itself_back():
    assert circles(import_graph()) == []


def test_no_loop_between_the_library_parts():
    parts: dict[str, set[str]] = {}
    for module, targets in import_graph().items():
        parts.setdefault(part(module), set()).update(part(t) for t in targets if part(t) != part(module))
    assert circles(parts) == []


def test_the_journey_type_is_ground_floor():
    graph = import_graph()
    assert graph["pipeline.journey_index"] <= {"pipeline.errors"}


def test_the_library_never_imports_streamlit():
    offenders = [
        name
        for name, (path, package) in _modules().items()
        if any(t == "streamlit" or t.startswith("streamlit.") for t in imports_of(path, package))
    ]
    assert offenders == []
