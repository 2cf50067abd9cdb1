"""The kernels compiled ahead of time (``aot.py``, built into the wheel by ``hatch_build.py``).

The reference is the JIT: the same Python source compiled by Numba's JIT
(the dispatchers) must give the same ids, boxes and final track states as
the compiled extension on recorded sequences, float32 and float16 galleries.
Tests that need the extension skip in a source checkout (``python -m
pytest``); ``DEEPSORT_EDGE_EXPECT_AOT=1`` (CI, on the installed wheel) makes
a missing or stale extension an error instead.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

import deepsort_edge.tracking.tracker as tracker_module
import deepsort_edge.tracking.validation as validation
from deepsort_edge import DeepSORTTracker
from deepsort_edge.kernels import aot
from deepsort_edge.kernels.frame import track_frame
from deepsort_edge.kernels.rows import row_problems, unit_rows
from deepsort_edge.tracking.validation import InvalidDetectionWarning

from .test_recorded import CASES, SINCE_RECORDING, _frame_inputs


def _compiled_or_skip() -> object:
    module = aot.compiled_module()
    if module is None:
        if os.environ.get("DEEPSORT_EDGE_EXPECT_AOT") == "1":
            pytest.fail("DEEPSORT_EDGE_EXPECT_AOT=1 but the package has no current _frame_aot extension")
        pytest.skip("no current ahead-of-time kernel in this package (`pip install .` builds one)")
    return module


def test_expected_extension_is_there_and_used():
    module = _compiled_or_skip()
    if os.environ.get(aot.ENV, "auto") == "jit":
        pytest.skip(f"{aot.ENV}=jit")
    assert tracker_module.track_frame is module.track_frame_float32
    assert tracker_module.track_frame_float16 is module.track_frame_float16
    assert (validation.row_problems, validation.unit_rows) == (module.row_problems, module.unit_rows)
    assert aot.kernel_kind(tracker_module.track_frame) == "ahead-of-time"


def _run(case: dict, kernels: dict[str, object], monkeypatch: pytest.MonkeyPatch, **overrides: object) -> tuple:
    """Replay ``case`` with the tracker's and validation's kernels set to ``kernels``; all outputs."""
    for (module, name), kernel in kernels.items():
        monkeypatch.setattr(module, name, kernel)
    tracker = DeepSORTTracker(**{**SINCE_RECORDING, **case["meta"]["constructor"], **overrides})
    ids, boxes = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InvalidDetectionWarning)
        for f in range(case["offsets"].size - 1):
            xyxy, scores, embeddings, classes = _frame_inputs(case, f)
            i, b = tracker.update_arrays(xyxy, scores, embeddings, class_id=classes, return_boxes=True)
            ids.append(i)
            boxes.append(b)
    monkeypatch.undo()
    return np.concatenate(ids), np.concatenate(boxes), tracker.state_dict()["tracks"]


def _jit() -> dict:
    return {(tracker_module, "track_frame"): track_frame, (tracker_module, "track_frame_float16"): track_frame,
            (validation, "row_problems"): row_problems, (validation, "unit_rows"): unit_rows}


def _compiled(module: object) -> dict:
    return {(tracker_module, "track_frame"): module.track_frame_float32,
            (tracker_module, "track_frame_float16"): module.track_frame_float16,
            (validation, "row_problems"): module.row_problems, (validation, "unit_rows"): module.unit_rows}


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("crowded_gallery", {}),
        ("crowded_gallery", {"gallery_dtype": "float16"}),
        ("gallery_budget8", {"gallery_dtype": "float16"}),
        ("invalid_rows_no_scores", {}),
        ("default_ema", {}),
        ("preset_paper", {}),
        ("motion_only", {}),
    ],
)
def test_compiled_and_jit_kernels_track_identically(name, overrides, monkeypatch):
    module = _compiled_or_skip()
    if name not in CASES:
        pytest.fail(f"recorded case {name} is gone; pick another")
    jit_ids, jit_boxes, jit_tracks = _run(CASES[name], _jit(), monkeypatch, **overrides)
    aot_ids, aot_boxes, aot_tracks = _run(CASES[name], _compiled(module), monkeypatch, **overrides)
    assert (jit_ids >= 1).any()
    np.testing.assert_array_equal(aot_ids, jit_ids)
    np.testing.assert_allclose(aot_boxes, jit_boxes, rtol=1e-9, atol=1e-9)
    assert sorted(aot_tracks) == sorted(jit_tracks)
    for key, value in jit_tracks.items():
        if value.dtype.kind == "f":  # float32 EMA galleries: summed in another vector width
            np.testing.assert_allclose(aot_tracks[key], value, rtol=1e-5, atol=1e-6, err_msg=key)
        else:
            np.testing.assert_array_equal(aot_tracks[key], value, err_msg=key)


def test_compiled_row_checks_match_the_jit():
    module = _compiled_or_skip()
    rng = np.random.default_rng(3)
    xyxy = rng.uniform(-50, 700, size=(40, 4))
    xyxy[::7, 2] = xyxy[::7, 0]  # empty boxes
    xyxy[3, 1] = np.nan
    scores = rng.uniform(0, 1, 40)
    scores[5] = np.inf
    embeddings = rng.normal(size=(40, 16)).astype(np.float32)
    embeddings[9] = 0.0
    results = []
    for check, unit in ((row_problems, unit_rows), (module.row_problems, module.unit_rows)):
        problems = np.empty(40, np.uint8)
        out = np.empty_like(embeddings)
        clean = check(xyxy, scores, 640.0, 480.0, 1e6, problems)
        clean = unit(embeddings, out, problems) and clean
        results.append((clean, problems.copy(), out))
    assert results[0][0] is results[1][0] is False
    np.testing.assert_array_equal(results[1][1], results[0][1])
    assert results[0][1].any()
    ok = results[0][1] == 0
    np.testing.assert_allclose(results[1][2][ok], results[0][2][ok], rtol=1e-6, atol=1e-7)


def test_stale_or_missing_extension_falls_back_to_the_jit(monkeypatch, tmp_path):
    monkeypatch.setattr(aot, "source_digest", lambda: "sources edited since the build")
    assert aot.compiled_module() is None
    assert aot.frame_kernel("float16") is track_frame
    assert aot.row_kernels() == (row_problems, unit_rows)
    monkeypatch.undo()
    monkeypatch.setattr(aot, "_HERE", tmp_path)  # no stamp, no binary
    assert aot.compiled_module() is None and aot.frame_kernel() is track_frame


def test_jit_can_be_chosen_and_bad_choices_are_errors(monkeypatch):
    monkeypatch.setenv(aot.ENV, "jit")
    assert aot.frame_kernel("float32") is track_frame and aot.kernel_kind(aot.frame_kernel()) == "jit"
    monkeypatch.setenv(aot.ENV, "fast")
    with pytest.raises(ValueError, match="DEEPSORT_EDGE_KERNELS must be 'auto' or 'jit', got 'fast'"):
        aot.frame_kernel()
    monkeypatch.delenv(aot.ENV)
    with pytest.raises(ValueError, match="gallery_dtype must be one of"):
        aot.frame_kernel("float64")


def test_export_signatures_are_the_types_the_tracker_passes():
    from numba.core import types

    from deepsort_edge.kernels.build_aot import signatures

    sigs = signatures()
    assert set(sigs) == {*aot.FRAME_EXPORTS.values(), "row_problems", "unit_rows"}
    f32, f16 = sigs["track_frame_float32"][1], sigs["track_frame_float16"][1]
    assert len(f32) == len(f16) == track_frame.py_func.__code__.co_argcount
    f32, f16 = _items(f32), _items(f16)  # the kernel takes tuples of arrays: check every item
    differ = [k for k in range(len(f32)) if f32[k] != f16[k]]
    assert len(differ) == 1 and f32[differ[0]].dtype == types.float32 and f16[differ[0]].dtype == types.uint16
    assert all(getattr(t, "layout", "C") == "C" for t in f32)  # pycc unboxes by item size only


def _items(argument_types: tuple) -> list:
    """Numba argument types with every tuple type replaced by its items, recursively."""
    from numba.core import types

    out = []
    for t in argument_types:
        out.extend(_items(t.types) if isinstance(t, types.BaseTuple) else [t])
    return out
