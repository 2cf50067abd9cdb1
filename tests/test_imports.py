"""The package's modules form no import circle and each imports on its own.

The graph is read from the source (``ast``), counting every import statement,
also those inside functions and under ``TYPE_CHECKING``: a lazy import that
closes a circle still ties two modules into one idea. Importing a submodule
runs its package's ``__init__`` first; that implicit edge is not counted,
since a package re-exporting its own submodules is not a circle of ideas.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "deepsort_edge"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The package module a dotted import name lands in (longest known prefix)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        package = name if is_package else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    root = ".".join([*base, node.module] if node.module else base)
                else:
                    root = node.module or ""
                # "from pkg import sub" imports the submodule when there is one, else pkg.
                imported = [
                    f"{root}.{alias.name}" if f"{root}.{alias.name}" in modules else root
                    for alias in node.names
                ]
            else:
                continue
            for dotted in imported:
                target = _resolve(dotted, modules)
                if target is not None and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_cycle_finder_finds_a_planted_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    cycle = find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"}
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_graph_sees_lazy_and_relative_imports():
    graph = import_graph(package_modules())
    # from_timm imports the exporter inside a function; tracks.py uses a relative import.
    assert "deepsort_edge.appearance.export" in graph["deepsort_edge.appearance.embedder"]
    assert "deepsort_edge.tracking.boxes" in graph["deepsort_edge.tracking.tracks"]
    assert "deepsort_edge.appearance.preprocess" in graph["deepsort_edge.appearance.export.calibration"]


def test_no_import_cycles():
    cycle = find_cycle(import_graph(package_modules()))
    assert cycle is None, " -> ".join(cycle)


# Top-level packages of the export extra (and timm's torchvision), absent after the test command.
EXPORT_EXTRA_MODULES = {"torch", "torchvision", "timm"}


def test_each_module_imports_on_its_own():
    """Every module imports in an interpreter where no other package module was imported yet."""
    names = sorted(n for n in package_modules() if not n.endswith("__main__"))
    code = (
        "import importlib, importlib.util, sys\n"
        "failed = []\n"
        f"for name in {names!r}:\n"
        "    for loaded in [m for m in sys.modules if m == 'deepsort_edge' or m.startswith('deepsort_edge.')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        # Modules of the export extra may need torch where the test command installed none.
        "    except ModuleNotFoundError as exc:\n"
        f"        if not (exc.name in {sorted(EXPORT_EXTRA_MODULES)!r} and importlib.util.find_spec(exc.name) is None):\n"
        "            failed.append(f'{name}: {type(exc).__name__}: {exc}')\n"
        "    except Exception as exc:\n"
        "        failed.append(f'{name}: {type(exc).__name__}: {exc}')\n"
        "print('\\n'.join(failed))\n"
        "sys.exit(1 if failed else 0)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
