"""The house's import rules, read from the source: no import circles (at module level or inside
functions; imports under ``if TYPE_CHECKING:`` run no code and are left out), and no arrow from
`crawler` to `scheduler` (the direction is scheduler -> crawler)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("crawler", "scheduler")


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(tree: ast.AST, package: str) -> set[str]:
    """Every module name an import statement of `tree` names, anywhere but TYPE_CHECKING."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def graph() -> dict[str, set[str]]:
    known = modules()
    edges: dict[str, set[str]] = {}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets = set()
        for imported in _imported(tree, package):
            # `from crawler import neardup` names the module crawler.decide.neardup; `from crawler
            # import CrawlerError` names the package crawler itself
            while imported and imported not in known:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        edges[name] = targets
    return edges


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(edges.get(node, ())):
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
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

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return found


def _parents(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def test_the_graph_sees_the_imports_it_should() -> None:
    edges = graph()
    assert "crawler.fetch.passes" in edges["scheduler.service.jobs"]
    assert (
        "crawler.decide.neardup" in edges["crawler.decide.articles"]
    )  # `from crawler import neardup`
    assert "crawler.fetch.spiders.news" in edges["crawler.fetch.passes"]  # inside a function
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circles() -> None:
    edges = graph()
    # a package's __init__ is imported before any module in it: an arrow from a module to its
    # own package is no circle of the house
    edges = {
        name: {t for t in targets if t not in _parents(name)} for name, targets in edges.items()
    }
    assert circles(edges) == []


def test_the_crawler_never_imports_the_scheduler() -> None:
    back = {
        (name, target)
        for name, targets in graph().items()
        if name.split(".")[0] == "crawler"
        for target in targets
        if target.split(".")[0] == "scheduler"
    }
    assert back == set()


@pytest.mark.parametrize(
    "module",
    [
        "scheduler.delivery.notify",
        "scheduler.delivery.notify.apprise",
        "scheduler.delivery.notify.email",
        "scheduler.delivery.notify.webhook",
        "scheduler.config",
        "scheduler.config.values",
        "scheduler.config.schema",
    ],
)
def test_imported_first_in_a_fresh_interpreter(module: str) -> None:
    """The channel modules declare their keys with the config's value types and the config
    gathers them: each side must import cleanly whichever comes first."""
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}; import scheduler.config as c; c.channel_types()"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
