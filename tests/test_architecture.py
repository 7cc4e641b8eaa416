"""The import graph the README's layout promises: no cycles, and imports pointing one way.

Every import counts, including those inside functions: a lazy import is how a cycle hides.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("pipelines", "assets", "dedup", "quality", "contacts")

# dedup's stages, in the order they may import each other (a stage imports earlier ones only).
# `spark` (issue 27) runs earlier stages' functions on a cluster, so it comes after them.
STAGES = ("ingest", "identity", "matching", "admin", "snapshot", "service", "spark")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for pkg in PRODUCT for p in (ROOT / pkg).rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        # `from a.b import c` names module a.b.c when c is a module, else a name in a.b.
        targets = {t for t in _imports(path) if t in modules and t != name}
        graph[name] = targets
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Modules folded into their package (a package __init__ importing its own modules aside)."""

    def pkg(name: str) -> str:
        return name if (ROOT / name.replace(".", "/")).is_dir() else name.rpartition(".")[0]

    folded: dict[str, set[str]] = {}
    for name, targets in graph.items():
        folded.setdefault(pkg(name), set()).update(
            pkg(t)
            for t in targets
            if not pkg(t).startswith(pkg(name) + ".") and pkg(t) != pkg(name)
        )
    return folded


def test_no_import_cycle_between_modules() -> None:
    assert _cycle(_graph()) is None, " -> ".join(_cycle(_graph()) or [])


def test_no_import_cycle_between_packages() -> None:
    # A package-level cycle (a -> b -> a through different modules) is a floor plan that lies.
    cycle = _cycle(_package_graph(_graph()))
    assert cycle is None, " -> ".join(cycle or [])


def _all_imports() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for pkg in PRODUCT for p in (ROOT / pkg).rglob("*.py")}


@pytest.mark.parametrize(
    ("library", "allowed"),
    [
        # The in-process runner (`contacts run`) materializes the same assets the code location serves.
        ("dagster", ("pipelines", "assets", "contacts.runner")),
        ("splink", ("dedup.matching", "dedup.spark")),
        ("great_expectations", ("quality.gx_suites", "quality.gx_worker")),
    ],
)
def test_library_imported_only_where_it_belongs(library: str, allowed: tuple[str, ...]) -> None:
    offenders = sorted(
        module
        for module, names in _all_imports().items()
        if any(n == library or n.startswith(library + ".") for n in names)
        and not any(module == a or module.startswith(a + ".") for a in allowed)
    )
    assert offenders == []


def _layer(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "dedup":
        return f"dedup.{parts[1]}" if len(parts) > 1 and parts[1] in STAGES else "dedup"
    return parts[0]


# What each layer may import from the product (besides itself). pipelines -> assets -> dedup,
# quality; contacts sits on top; dedup's top level is the contracts every stage reads.
ALLOWED = {
    "dedup": set(),
    **{
        f"dedup.{stage}": {"dedup", *(f"dedup.{s}" for s in STAGES[:i])}
        for i, stage in enumerate(STAGES)
    },
    "quality": {"dedup", *(f"dedup.{s}" for s in STAGES)},
    "assets": {"dedup", "quality", *(f"dedup.{s}" for s in STAGES)},
    "pipelines": {"assets", "dedup", "quality", *(f"dedup.{s}" for s in STAGES)},
    "contacts": {"assets", "pipelines", "dedup", "quality", *(f"dedup.{s}" for s in STAGES)},
}


def test_imports_point_one_way() -> None:
    graph = _graph()
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in graph.items()
        for target in targets
        if _layer(target) != _layer(module) and _layer(target) not in ALLOWED[_layer(module)]
    )
    assert wrong == []
