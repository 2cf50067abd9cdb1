"""Old module paths (before the subpackages) import as the new modules, with a warning.

``deepsort_edge/_moved.py`` maps each old dotted name to its new module; the
checks here are against the import system itself (``sys.modules``, the files
on disk at the new paths) and the source text of the repository.
"""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from deepsort_edge._moved import MOVED
from tests.conftest import subprocess_env

REPO = Path(__file__).resolve().parents[1]


def _forget(name: str) -> None:
    """Drop the alias ``name`` (and its aliased submodules) from ``sys.modules`` so it imports again."""
    for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        if loaded in MOVED:
            del sys.modules[loaded]


def test_every_new_path_is_a_file_and_no_old_file_is_left():
    for old, new in MOVED.items():
        new_file = REPO.joinpath(*new.split("."))
        assert new_file.with_suffix(".py").is_file() or (new_file / "__init__.py").is_file(), new
        old_file = REPO.joinpath(*old.split("."))
        assert not old_file.with_suffix(".py").exists() and not old_file.exists(), old


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_name_imports_as_the_same_module_object_with_a_warning(old):
    new = MOVED[old]
    try:
        new_module = importlib.import_module(new)
    except ModuleNotFoundError as exc:  # modules of the export extra need torch
        if exc.name not in {"torch", "torchvision", "timm", "onnx"}:
            raise
        pytest.skip(f"{new} needs {exc.name}")
    _forget(old)
    with pytest.warns(DeprecationWarning, match=re.escape(f"{old} moved to {new}")) as caught:
        module = importlib.import_module(old)
    assert module is new_module is sys.modules[old]
    assert module.__name__ == new and module.__spec__.name == new  # the module keeps its own identity
    assert not any(Path(w.filename).name == "_moved.py" for w in caught)


def test_warning_points_at_the_importing_line():
    _forget("deepsort_edge.tracker")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import deepsort_edge.tracker as old  # the line the warning must name
    assert [Path(w.filename).name for w in caught] == [Path(__file__).name]
    import deepsort_edge.tracking.tracker as new

    assert old is new


def test_from_imports_of_names_and_of_submodules():
    for name in ("deepsort_edge.distributed", "deepsort_edge.export", "deepsort_edge.export.quantize"):
        _forget(name)
    with pytest.warns(DeprecationWarning, match="deepsort_edge.streams.distributed"):
        from deepsort_edge.distributed import RayMultiStreamTracker
    from deepsort_edge.streams.distributed import RayMultiStreamTracker as new_class

    assert RayMultiStreamTracker is new_class
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import deepsort_edge.export.quantize as old_quantize
    assert [str(w.message).split(" moved to ")[1] for w in caught] == [
        "deepsort_edge.appearance.export; import it from there",
        "deepsort_edge.appearance.export.quantize; import it from there",
    ]
    assert old_quantize is importlib.import_module("deepsort_edge.appearance.export.quantize")


def test_old_submodule_as_package_attribute():
    import deepsort_edge

    _forget("deepsort_edge.demo_scene")
    vars(deepsort_edge).pop("demo_scene", None)
    with pytest.warns(DeprecationWarning, match="deepsort_edge.demo.scene"):
        scene = deepsort_edge.demo_scene
    assert scene is importlib.import_module("deepsort_edge.demo.scene")
    with pytest.raises(AttributeError, match="no_such_module"):
        deepsort_edge.no_such_module  # noqa: B018


def test_fresh_interpreter_gets_one_copy():
    """In a new process, old-first then new: one module object, one set of globals."""
    code = (
        "import warnings; warnings.simplefilter('ignore')\n"
        "import deepsort_edge.settings as old, deepsort_edge.tracking.settings as new, sys\n"
        "assert old is new, (old, new)\n"
        "assert [m for m in sys.modules if m.endswith('settings')].count('deepsort_edge.tracking.settings') == 1\n"
        "print(old.__file__)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=subprocess_env(),
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(str(Path("deepsort_edge", "tracking", "settings.py")))


# ---- nothing of our own still uses an old path -------------------------------------------------

_OLD_NAMES = sorted(MOVED, key=len, reverse=True)
_OLD_DOTTED = re.compile(r"\b(" + "|".join(re.escape(n) for n in _OLD_NAMES) + r")\b(?![\w])")
_OLD_FILES = re.compile(r"\bdeepsort_edge/(" + "|".join(
    re.escape(n.split(".", 1)[1].replace(".", "/")) for n in _OLD_NAMES) + r")(\.py\b|/)")
_OWN = {REPO / "deepsort_edge" / "_moved.py", Path(__file__).resolve()}


def _sources() -> list[Path]:
    files = [*sorted((REPO / "deepsort_edge").rglob("*.py")), *sorted((REPO / "tests").rglob("*.py")),
             *sorted((REPO / "tools").rglob("*.py")), REPO / "hatch_build.py"]
    return [f for f in files if f.resolve() not in _OWN]


def _imported(path: Path, text: str | None = None) -> list[str]:
    """Every module an import statement of ``path`` (or ``text`` as if it were there) names, relative ones resolved."""
    package_parts = list(path.relative_to(REPO).with_suffix("").parts)
    package_parts.pop()  # a module's package (an __init__'s own package is its folder)
    names = []
    source = path.read_text() if text is None else text
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package_parts[: len(package_parts) - (node.level - 1)] if node.level else []
            root = ".".join([*base, node.module] if node.module else base)
            names += [root, *(f"{root}.{alias.name}" for alias in node.names)]
    return names


def test_scan_finds_planted_old_paths():
    as_if = REPO / "deepsort_edge" / "tracking" / "planted.py"
    assert "deepsort_edge.tracker" in _imported(as_if, "from .. import tracker\n")
    assert "deepsort_edge.export.osnet" in _imported(as_if, "from ..export.osnet import OSNet\n")
    assert "deepsort_edge.settings" not in _imported(as_if, "from . import settings\n")
    assert _OLD_DOTTED.search("python -m deepsort_edge.settings")
    assert not _OLD_DOTTED.search("python -m deepsort_edge.tracking.settings")
    assert _OLD_FILES.search("see deepsort_edge/export/osnet.py")
    assert not _OLD_FILES.search("deepsort_edge/kernels/aot.py")


def test_no_own_module_test_or_tool_imports_an_old_path():
    found = [f"{p.relative_to(REPO)}: import {n}" for p in _sources() for n in _imported(p) if n in MOVED]
    assert not found, "\n".join(found)


def test_no_old_path_in_code_strings_or_docs():
    texts = [*_sources(), REPO / "README.md", REPO / "pyproject.toml", *sorted((REPO / "docs").glob("*.md"))]
    found = []
    for path in texts:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for match in (*_OLD_DOTTED.finditer(line), *_OLD_FILES.finditer(line)):
                found.append(f"{path.relative_to(REPO)}:{number}: {match.group(0)}")
    assert not found, "\n".join(found)


def test_python_dash_m_with_an_old_name_runs_the_new_module():
    def run(name: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-W", "always::DeprecationWarning", "-m", name], cwd=REPO,
                              env=subprocess_env(), capture_output=True, text=True, timeout=120, check=False)

    old, new = run("deepsort_edge.settings"), run("deepsort_edge.tracking.settings")
    assert old.returncode == new.returncode == 0, old.stderr + new.stderr
    assert old.stdout == new.stdout and "| setting | default |" in new.stdout
    assert "deepsort_edge.settings moved to deepsort_edge.tracking.settings" in old.stderr
    assert "moved to" not in new.stderr
