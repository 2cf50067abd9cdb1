"""Each shared fact has one home: helpers other modules use are public where they live."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "deepsort_edge"


def _private_imports() -> list[str]:
    """``module: from X import _name`` for every private name one package module takes from another."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ImportFrom):
                continue
            inside = node.level > 0 or (node.module or "").startswith("deepsort_edge")
            for alias in node.names:
                # _version and _runtime are private modules, not private names of a module.
                if inside and alias.name.startswith("_") and not alias.name.startswith("__") and alias.name not in ("_version", "_runtime", "_moved"):
                    found.append(f"{path.relative_to(PACKAGE.parent)}: from {node.module} import {alias.name}")
    return found


def test_no_module_imports_another_modules_private_name() -> None:
    assert _private_imports() == []


def test_the_scan_sees_a_private_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    planted = tmp_path / "deepsort_edge"
    planted.mkdir()
    (planted / "a.py").write_text("from .b import _hidden\nfrom deepsort_edge.c import public\n")
    monkeypatch.setattr(f"{__name__}.PACKAGE", planted)
    assert _private_imports() == ["deepsort_edge/a.py: from b import _hidden"]


BAD_FRAMES = [
    [[1, 2, 3]],  # not an array
    np.zeros((8, 8, 3), np.float32),  # not uint8
    np.zeros((8, 8), np.uint8),  # no channels
    np.zeros((8, 8, 4), np.uint8),  # four channels
    np.zeros((0, 8, 3), np.uint8),  # empty
]


@pytest.mark.parametrize("frame", BAD_FRAMES, ids=["list", "float32", "gray", "bgra", "empty"])
def test_tracker_and_embedder_reject_a_bad_frame_with_the_same_words(frame: object) -> None:
    """One check of a frame, whichever entry point is handed it."""
    from deepsort_edge import DeepSORTTracker
    from deepsort_edge.appearance.preprocess import check_bgr_image

    with pytest.raises((TypeError, ValueError)) as expected:
        check_bgr_image(frame)
    with pytest.raises(type(expected.value)) as raised:
        DeepSORTTracker(use_appearance=False).update_arrays(np.array([[1.0, 1.0, 5.0, 5.0]]), frame=frame)
    assert str(raised.value) == str(expected.value)
