"""The server's layout rules (docs/architecture.md): no import cycles among its modules, and the router's
offline work outside the runtime package. (That git tracks nothing generated is checked by ./dev test.)"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "server" / "switchboard"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_imports(path: Path) -> set[str]:
    """Every module `path` names in an import, at any depth of its code (lazy and TYPE_CHECKING too)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found - {name}


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    return all_imports(path) & modules


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_server_package_has_no_import_cycles() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(path) for path in files}
    # A package's __init__ re-exporting its submodules is not a cycle with them: leave __init__ edges out.
    graph = {
        module_name(path): imported_modules(path, modules) - {module_name(path).rpartition(".")[0]}
        for path in files
        if path.name != "__init__.py"
    }
    graph = {name: {t for t in targets if t in graph} for name, targets in graph.items()}
    assert find_cycle(graph) is None


def test_the_runtime_router_holds_only_what_serve_runs() -> None:
    routing = {path.name for path in (PACKAGE / "routing").glob("*.py")}
    assert not routing & {"train.py", "datasets.py", "metrics.py"}
    for path in (PACKAGE / "routing").glob("*.py"):
        tops = {name.split(".")[0] for name in all_imports(path)}
        assert not tops & {"sklearn", "scipy", "router_lab"}, path.name


def test_a_gateway_replica_does_not_load_the_language_servers_stack() -> None:
    """The gateway shares the catalog, plans and routing with the language server, but not pygls and
    lsprotocol: importing them cost every replica about 20 MB and 0.4 s of start-up for nothing."""
    probe = "import sys, switchboard.gateway.app, switchboard.gateway.cli; print(sorted(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert "'switchboard.gateway.app'" in loaded
    assert "'pygls" not in loaded and "'lsprotocol" not in loaded
