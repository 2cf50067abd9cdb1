"""Install routes: one ONNX Runtime build per extra, clear errors without one, ``--version``."""

from __future__ import annotations

import doctest
import os
import re
import subprocess
import sys
import types
from importlib import metadata
from pathlib import Path

import pytest

from deepsort_edge.appearance import runtime as _runtime
from deepsort_edge._version import __version__
from deepsort_edge.cli.__main__ import main

from .conftest import REPO_ROOT, imported_from_source_tree


def _requirement_name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9._-]+", requirement).group(0).lower().replace("_", "-")


def _owners_of_the_onnxruntime_module() -> list[str]:
    """Independent reference: distributions whose file list holds ``onnxruntime/__init__.py``."""
    owners = set()
    for dist in metadata.distributions():
        if not dist.metadata["Name"].lower().startswith("onnxruntime"):
            continue  # every build is named onnxruntime*; skipping the rest keeps this fast
        if any(str(f).replace("\\", "/") == "onnxruntime/__init__.py" for f in dist.files or ()):
            owners.add(dist.metadata["Name"].lower())
    return sorted(owners)


def test_installed_runtimes_matches_the_distributions_that_own_the_module():
    assert _runtime.installed_runtimes() == _owners_of_the_onnxruntime_module()


def test_each_runtime_extra_adds_exactly_one_build_and_no_other_extra_adds_any():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    base = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [r for r in base if _requirement_name(r).startswith("onnxruntime")]
    for extra, requirements in extras.items():
        runtimes = [_requirement_name(r) for r in requirements if _requirement_name(r).startswith("onnxruntime")]
        assert runtimes == ([_runtime.RUNTIME_EXTRAS[extra]] if extra in _runtime.RUNTIME_EXTRAS else []), extra


def test_missing_runtime_names_every_route(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    monkeypatch.setattr(_runtime, "installed_runtimes", lambda: [])
    with pytest.raises(ImportError) as info:
        _runtime.import_onnxruntime()
    for extra, dist in _runtime.RUNTIME_EXTRAS.items():
        assert dist in str(info.value) and repr(extra) in str(info.value)
    assert "pip install onnxruntime" in str(info.value)


def test_runtime_whose_module_was_deleted_says_reinstall(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    monkeypatch.setattr(_runtime, "installed_runtimes", lambda: ["onnxruntime-gpu"])
    with pytest.raises(ImportError, match="--force-reinstall --no-deps onnxruntime-gpu"):
        _runtime.import_onnxruntime()


def test_runtime_left_as_an_empty_folder_says_reinstall(monkeypatch):
    # Uninstalling one of two builds deletes onnxruntime/__init__.py; the folder
    # that is left imports as an empty namespace package.
    monkeypatch.setitem(sys.modules, "onnxruntime", types.ModuleType("onnxruntime"))
    monkeypatch.setattr(_runtime, "installed_runtimes", lambda: ["onnxruntime"])
    with pytest.raises(ImportError, match="incomplete.*--force-reinstall --no-deps onnxruntime$"):
        _runtime.import_onnxruntime()


def test_two_runtimes_warn(monkeypatch):
    monkeypatch.setattr(_runtime, "installed_runtimes", lambda: ["onnxruntime", "onnxruntime-gpu"])
    with pytest.warns(RuntimeWarning, match="onnxruntime, onnxruntime-gpu"):
        module = _runtime.import_onnxruntime()
    assert module is sys.modules["onnxruntime"]


def test_runtime_docstring_example():
    result = doctest.testmod(_runtime)
    assert result.failed == 0 and result.attempted > 0


def test_version_flag_prints_program_and_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"deepsort-edge {__version__}\n"


@pytest.mark.skipif(imported_from_source_tree(), reason="tests the installed wheel (run `pytest` after `pip install .`)")
def test_installed_console_script_and_metadata_agree_with_the_package():
    assert metadata.version("deepsort-edge") == __version__
    script = Path(sys.executable).with_name("deepsort-edge" + (".exe" if os.name == "nt" else ""))
    out = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=120)
    assert (out.returncode, out.stdout) == (0, f"deepsort-edge {__version__}\n"), out.stderr
