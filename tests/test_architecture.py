"""The layout's rules that import-linter's contracts (pyproject.toml) do not state.

- No import cycle among Trunkline's modules. Counted twice: module-level imports (a cycle there
  can fail at import time, whoever is imported first) and every import, late ones inside
  functions too (a cycle there still means two modules that cannot be read apart). Today's
  cycles are listed below, each named; a new one fails.
- Importing the SMPP worker's entry point does not import FastAPI or Starlette.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import deque
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path

import grimp
import pytest

from gateway.roles import SIP, SMPP

PACKAGES = ("gateway", "sms", "sip")
ROOT = Path(__file__).resolve().parents[1]

# Cycles of module-level imports: none today.
ALLOWED_MODULE_LEVEL_CYCLES: frozenset[frozenset[str]] = frozenset()

# Cycles counting every import, late ones included.
ALLOWED_CYCLES: frozenset[frozenset[str]] = frozenset()

Graph = Mapping[str, frozenset[str]]


@cache
def _import_graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True, cache_dir=None)


def _source(module: str) -> Path:
    path = ROOT.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _module_level_import_lines(module: str) -> set[int]:
    """The lines of the import statements that run when ``module`` is imported: everything but
    the bodies of functions (class bodies and ``if``/``try`` blocks run at import time)."""
    lines: set[int] = set()
    pending: list[ast.AST] = [ast.parse(_source(module).read_text())]
    while pending:
        for child in ast.iter_child_nodes(pending.pop()):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                lines.add(child.lineno)
            pending.append(child)
    return lines


def _edges(module_level_only: bool) -> Graph:
    graph = _import_graph()
    edges: dict[str, frozenset[str]] = {}
    for module in graph.modules:
        imported = graph.find_modules_directly_imported_by(module)
        if module_level_only:
            lines = _module_level_import_lines(module)
            imported = {
                target
                for target in imported
                if any(
                    detail["line_number"] in lines
                    for detail in graph.get_import_details(importer=module, imported=target)
                )
            }
        edges[module] = frozenset(imported)
    return edges


def strongly_connected(edges: Graph) -> list[frozenset[str]]:
    """The groups of two or more modules that reach each other (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[frozenset[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work: list[tuple[str, Iterable[str]]] = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(edges.get(successor, ())))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
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
                        groups.append(frozenset(group))
    return groups


def shortest_cycle(edges: Graph, group: frozenset[str]) -> list[str]:
    """One shortest cycle through the group's first module, for the failure message."""
    start = min(group)
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for successor in sorted(edges.get(node, ())):
            if successor not in group:
                continue
            if successor == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if successor not in came_from:
                came_from[successor] = node
                queue.append(successor)
    return sorted(group)


def _new_cycles(edges: Graph, allowed: frozenset[frozenset[str]]) -> list[str]:
    return [
        " -> ".join(shortest_cycle(edges, group))
        for group in strongly_connected(edges)
        if group not in allowed
    ]


def test_cycles_are_found() -> None:
    edges = {"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"}), "d": frozenset({"a"})}
    assert strongly_connected(edges) == [frozenset({"a", "b", "c"})]
    assert shortest_cycle(edges, frozenset({"a", "b", "c"})) == ["a", "b", "c", "a"]
    assert strongly_connected({"a": frozenset({"b"}), "b": frozenset()}) == []


def test_late_imports_do_not_count_as_module_level() -> None:
    module = ROOT / "gateway" / "supervisor.py"
    lines = _module_level_import_lines("gateway.supervisor")
    source = module.read_text().splitlines()
    assert any("from gateway.roles import" in source[line - 1] for line in lines)
    assert not any("import prepare_storage" in source[line - 1] for line in lines)


def test_no_new_module_level_import_cycle() -> None:
    edges = _edges(module_level_only=True)
    assert _new_cycles(edges, ALLOWED_MODULE_LEVEL_CYCLES) == []
    assert set(ALLOWED_MODULE_LEVEL_CYCLES) <= set(strongly_connected(edges)), "a cycle is gone: unlist it"


def test_no_new_import_cycle_counting_late_imports() -> None:
    edges = _edges(module_level_only=False)
    assert _new_cycles(edges, ALLOWED_CYCLES) == []
    assert set(ALLOWED_CYCLES) <= set(strongly_connected(edges)), "a cycle is gone: unlist it"


@pytest.mark.parametrize("module", [SMPP.entry_point.module, SIP.entry_point.module, "gateway.core.errors"])
def test_importing_leaves_fastapi_out(module: str) -> None:
    """The SMPP and SIP workers (and the errors they raise) run without the web framework."""
    code = (
        f"import sys, {module}; "
        "print(sorted({name.split('.')[0] for name in sys.modules} & {'fastapi', 'starlette', 'uvicorn'}))"
    )
    run = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT)
    assert run.stdout.strip() == "[]"


def test_a_sip_worker_process_starts_without_numpy() -> None:
    """Every pjsua2 worker imports this; numpy (~15 MB of RSS each) waits for in-band DTMF."""
    code = "import sys, sip.worker.process, sip.worker.ua; print('numpy' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT)
    assert run.stdout.strip() == "False"
