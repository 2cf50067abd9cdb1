"""Broken models and out-of-range settings end as one-line user errors, never as internal errors.

Every model here is an ONNX graph built in the test; each is broken in one
way the extractor must notice (or, where the extractor can cope, handle).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="builds ONNX graphs (the export extra)")
from onnx import TensorProto, helper  # noqa: E402

from deepsort_edge import DeepSORTTracker  # noqa: E402
from deepsort_edge.cli.__main__ import main  # noqa: E402
from deepsort_edge.io.mot import MOTData, read_mot, write_mot  # noqa: E402
from deepsort_edge.tracking.settings import fields  # noqa: E402
from tests.common import save_onnx  # noqa: E402


def _model(path: Path, *, shape=("N", 3, 16, 8), dtype=TensorProto.FLOAT, output="mean", meta=None) -> Path:
    """A tiny appearance model: per-channel means ([N, 3]), or a broken variant of it."""
    x = helper.make_tensor_value_info("x", dtype, list(shape))
    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], axes=[2, 3], keepdims=0)]
    inits = []
    out_shape = [shape[0], 3]
    if output == "mean":
        nodes.append(helper.make_node("Identity", ["m"], ["y"]))
    elif output == "nan":  # 0 / 0 everywhere
        inits.append(helper.make_tensor("zero", dtype, [], [0.0]))
        nodes += [helper.make_node("Div", ["zero", "zero"], ["q"]), helper.make_node("Mul", ["m", "q"], ["y"])]
    elif output == "no columns":  # [N, 0]
        inits += [helper.make_tensor(n, TensorProto.INT64, [1], [v]) for n, v in (("s", 0), ("e", 0), ("a", 1))]
        nodes = [helper.make_node("Slice", ["x", "s", "e", "a"], ["p"]),
                 helper.make_node("ReduceMean", ["p"], ["y"], axes=[2, 3], keepdims=0)]
        out_shape = [shape[0], 0]
    elif output == "map":  # [N, H, W]: a feature map, not a vector
        nodes = [helper.make_node("ReduceMean", ["x"], ["y"], axes=[1], keepdims=0)]
        out_shape = [shape[0], shape[2], shape[3]]
    graph = helper.make_graph(nodes, "g", [x], [helper.make_tensor_value_info("y", dtype, out_shape)],
                              initializer=inits)
    return save_onnx(graph, path, 13, meta)


@pytest.fixture(scope="module")
def sequence(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("seq") / "SEQ"
    (root / "det").mkdir(parents=True)
    (root / "img1").mkdir()
    frames = np.repeat(np.arange(1, 7), 2)
    boxes = np.tile([[10.0, 10.0, 40.0, 80.0], [60.0, 20.0, 90.0, 100.0]], (6, 1)) + frames[:, None]
    write_mot(root / "det" / "det.txt", MOTData.from_arrays(frames, np.full(12, -1), boxes, scores=np.full(12, 0.9)))
    (root / "seqinfo.ini").write_text("[Sequence]\nname=SEQ\nimDir=img1\nframeRate=10\nseqLength=6\n"
                                      "imWidth=128\nimHeight=128\nimExt=.png\n")
    rng = np.random.default_rng(0)
    for i in range(1, 7):
        cv2.imwrite(str(root / "img1" / f"{i:06d}.png"), rng.integers(0, 255, (128, 128, 3), dtype=np.uint8))
    return root


WORKING = {  # models the extractor copes with: tracked, exit 0
    "fixed batch": dict(shape=(2, 3, 16, 8)),
    "float16 input": dict(dtype=TensorProto.FLOAT16),
    "NaN output": dict(output="nan"),
}
BROKEN = {  # models that cannot give features: exit 2, one line naming the problem
    "no columns": (dict(output="no columns"), "the model gives 0 features per crop"),
    "feature map": (dict(shape=("N", 3, 8, 8), output="map"), r"output has shape \['N', 8, 8\]; expected \[N, D\]"),
    "huge input size": (dict(shape=("N", 3, "H", "W"), meta={"input_size": "[100000, 100000]"}),
                        r"input_size must be \(height, width\) with sides in \[1, 1024\]"),
    "deep metadata": (dict(meta={"mean": "[" * 100_000 + "]" * 100_000}), "model metadata 'mean' is nested too deeply"),
}
NORMALISE = ["--mean", "0.5", "0.5", "0.5", "--std", "0.5", "0.5", "0.5"]


@pytest.mark.parametrize("name", WORKING)
def test_models_the_extractor_can_use_are_tracked(name, sequence, tmp_path, capsys):
    model = _model(tmp_path / "m.onnx", **WORKING[name])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the NaN model's warning is the expected outcome
        rc = main(["track", str(sequence), "--model", str(model), "-o", str(tmp_path / "r.txt"), "-q",
                   "--no-progress", "--minimum-consecutive-frames", "1", *NORMALISE])
    assert rc == 0, capsys.readouterr().err
    assert len(read_mot(tmp_path / "r.txt")) == 12


@pytest.mark.parametrize("name", BROKEN)
def test_broken_models_are_user_errors(name, sequence, tmp_path, capsys):
    kwargs, message = BROKEN[name]
    model = _model(tmp_path / "m.onnx", **kwargs)
    arguments = NORMALISE if name != "deep metadata" else NORMALISE[4:]  # the mean comes from the metadata
    rc = main(["track", str(sequence), "--model", str(model), "-o", str(tmp_path / "r.txt"), "-q", "--no-progress",
               *arguments])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("deepsort-edge track: error: ") and err.count("\n") == 1, err
    assert "internal error" not in err
    import re

    assert re.search(message, err), err
    assert not (tmp_path / "r.txt").exists()


def test_huge_integer_settings_are_user_errors(sequence, tmp_path, capsys):
    rc = main(["track", str(sequence / "det" / "det.txt"), "-o", str(tmp_path / "r.txt"), "-q",
               "--lost-track-buffer", str(10**24)])
    err = capsys.readouterr().err
    assert rc == 2 and "lost_track_buffer must be <= 2147483647, got 1000000000000000000000000" in err, err


INTEGER_SETTINGS = [f for f in fields() if f.metadata["kind"] == "int"]


@pytest.mark.parametrize("field", INTEGER_SETTINGS, ids=[f.name for f in INTEGER_SETTINGS])
def test_integer_settings_have_upper_bounds_the_kernels_can_run(field):
    high = field.metadata["high"]
    with pytest.raises(ValueError, match=f"{field.name} must be <= {high}"):
        DeepSORTTracker(**{field.name: high + 1})
    with pytest.raises(ValueError, match=f"{field.name} must be <= {high}"):
        DeepSORTTracker(**{field.name: 2**64})  # past int64: the kernels could not even be typed
    # The largest value runs (appearance on, so nn_budget's galleries are used).
    tracker = DeepSORTTracker(**{field.name: high, "appearance_mode": "gallery"})
    for step in range(3):
        box = np.array([[10.0 + step, 10.0, 40.0 + step, 80.0]])
        tracker.update_arrays(box, embeddings=np.eye(1, 4, dtype=np.float32))
    assert tracker.frame_count == 3


def test_camera_motion_on_a_one_pixel_frame_is_the_identity():
    tracker = DeepSORTTracker(camera_motion="affine", minimum_consecutive_frames=1)
    for _ in range(3):
        ids = tracker.update_arrays(np.array([[0.0, 0.0, 1.0, 1.0]]), frame=np.zeros((1, 1, 3), np.uint8))
    assert ids.tolist() == [1]


def test_quantize_refuses_to_overwrite_its_input(tmp_path):
    pytest.importorskip("onnxruntime.quantization", reason="quantisation needs onnxruntime's tools")
    from deepsort_edge.appearance.quantization import quantize_model

    model = _model(tmp_path / "m.onnx")
    before = model.read_bytes()
    crops = [np.full((32, 16, 3), 100, np.uint8)]
    for out in (model, tmp_path / "." / "m.onnx"):
        with pytest.raises(ValueError, match="is the float32 model itself"):
            quantize_model(model, out, crops, crops, mean=(0.5,) * 3, std=(0.5,) * 3)
    assert model.read_bytes() == before
