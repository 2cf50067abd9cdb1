"""DeepSORTFeatureExtractor on ONNX Runtime: preprocessing, batching, errors, ReID sanity.

References are written out plainly here (crop, cv2.resize, cvtColor, normalise)
and tiny ONNX graphs whose output is known in closed form (per-channel mean).
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
import supervision as sv

from deepsort_edge.appearance.embedder import DeepSORTFeatureExtractor, default_cache_dir, default_model_path
from deepsort_edge.appearance.preprocess import IMAGENET_MEAN, IMAGENET_STD, clip_boxes, preprocess_crops
from deepsort_edge.appearance.providers import resolve_providers

from .common import save_onnx
from .conftest import subprocess_env

PETS = Path("MOT15/train/PETS09-S2L1")
OSNET = Path("models/osnet_x0_25_msmt17.onnx")


# ----------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def default_fx() -> DeepSORTFeatureExtractor:
    return DeepSORTFeatureExtractor.default(providers="cpu")


def _frame(seed: int = 0, shape: tuple[int, int] = (240, 320)) -> np.ndarray:
    """Textured BGR frame: smooth colour blobs plus noise, so crops differ."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(12, 16, 3), dtype=np.uint8)
    frame = cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    return np.clip(frame + rng.normal(0, 10, frame.shape), 0, 255).astype(np.uint8)


def _reference_batch(frame, windows, size, mean, std):
    """Plain per-crop preprocessing: crop, resize, BGR->RGB, /255, normalise, HWC->CHW."""
    out = []
    for x1, y1, x2, y2 in windows:
        crop = cv2.resize(frame[y1:y2, x1:x2], (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
        rgb = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float64) / 255.0
        out.append(((rgb - np.array(mean)) / np.array(std)).transpose(2, 0, 1))
    return np.stack(out)


def _tiny_model(
    path: Path,
    input_shape: list,
    *,
    fixed_batch: int | None = None,
    zero: bool = False,
    metadata: dict[str, str] | None = None,
) -> Path:
    """ONNX graph: GlobalAveragePool -> [N, 3, 1, 1] (per-channel mean of the input)."""
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("GlobalAveragePool", ["images"], ["pooled"])]
    inits = []
    if zero:
        inits.append(numpy_helper.from_array(np.zeros((), np.float32), "zero"))
        nodes.append(helper.make_node("Mul", ["pooled", "zero"], ["out"]))
    else:
        nodes.append(helper.make_node("Identity", ["pooled"], ["out"]))
    batch = fixed_batch if fixed_batch is not None else "batch"
    out_shape = [batch, 3, 1, 1] if len(input_shape) == 4 else None
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, *input_shape[1:]])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, out_shape)],
        inits,
    )
    return save_onnx(graph, path, 17, metadata)


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Mann-Whitney AUC from ranks (ties get their average rank)."""
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    ranks[order] = np.arange(1, len(scores) + 1)
    sorted_scores = scores[order]
    _, start, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    for s, c in zip(start[counts > 1], counts[counts > 1], strict=True):
        ranks[order[s : s + c]] = s + (c + 1) / 2.0
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _pets_crops(root: Path, count: int, seed: int = 0):
    """Ground-truth boxes of PETS09-S2L1 frames: (frames by number, boxes per frame, ids)."""
    gt = np.loadtxt(root / PETS / "gt" / "gt.txt", delimiter=",", ndmin=2)
    gt = gt[(gt[:, 5] >= 40) & (gt[:, 0] % 7 == 0)]  # tall enough to show a person; spread in time
    rng = np.random.default_rng(seed)
    gt = gt[np.sort(rng.choice(len(gt), min(count, len(gt)), replace=False))]
    return gt


def _features_for_gt(fx: DeepSORTFeatureExtractor, root: Path, gt: np.ndarray):
    feats, ids = [], []
    for frame_no in np.unique(gt[:, 0]).astype(int):
        frame = cv2.imread(str(root / PETS / "img1" / f"{frame_no:06d}.jpg"))
        rows = gt[gt[:, 0] == frame_no]
        xyxy = np.concatenate([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]], axis=1)
        feats.append(fx.extract_features(frame, xyxy))
        ids.append(rows[:, 1].astype(int))
    return np.concatenate(feats), np.concatenate(ids)


def _pair_auc(feats: np.ndarray, ids: np.ndarray) -> float:
    iu = np.triu_indices(len(ids), 1)
    sims = (feats @ feats.T)[iu]
    same = (ids[:, None] == ids[None, :])[iu]
    return roc_auc(sims, same)


# ----------------------------------------------------------------------- default model


def test_default_model_loads_without_torch(tmp_path):
    code = textwrap.dedent(
        """
        import sys
        import numpy as np
        try:
            from deepsort_edge import DeepSORTFeatureExtractor
        except ImportError:
            from deepsort_edge.appearance.embedder import DeepSORTFeatureExtractor
        fx = DeepSORTFeatureExtractor.default()
        feats = fx.extract_features(np.full((64, 64, 3), 127, np.uint8), np.array([[0, 0, 20, 50]]))
        assert feats.shape == (1, fx.feature_dim), feats.shape
        heavy = sorted(m for m in ("torch", "timm", "onnx", "torchvision") if m in sys.modules)
        print("HEAVY", heavy)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # not the repo: the child imports the same copy as this run
        env=subprocess_env(),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout, result.stdout


def test_cache_dir_env_override_and_platform_default(monkeypatch, tmp_path):
    monkeypatch.setenv("DEEPSORT_EDGE_CACHE", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("DEEPSORT_EDGE_CACHE")
    if sys.platform.startswith("linux"):  # the XDG base directory rule
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert default_cache_dir() == tmp_path / "xdg" / "deepsort-edge"
        monkeypatch.delenv("XDG_CACHE_HOME")
        assert default_cache_dir() == Path.home() / ".cache" / "deepsort-edge"
    else:
        assert default_cache_dir().is_absolute() and "deepsort-edge" in default_cache_dir().parts


def test_default_model_is_self_describing(default_fx):
    assert default_model_path().parent.name == "models"
    assert default_fx.input_size == (128, 64)
    assert default_fx.mean == (0.5, 0.5, 0.5) and default_fx.std == (0.5, 0.5, 0.5)
    assert default_fx.color_order == "RGB"
    assert default_fx.feature_dim == 1280
    assert default_fx.source_model == "tf_efficientnet_lite0"
    text = repr(default_fx)
    for part in ("tf_efficientnet_lite0", "CPUExecutionProvider", "(128, 64)", "1280"):
        assert part in text


def test_output_shape_dtype_and_unit_norm(default_fx):
    frame = _frame(1)
    boxes = np.array([[10, 20, 60, 140], [100, 50, 150, 200], [200, 10, 310, 230]], float)
    feats = default_fx.extract_features(frame, boxes)
    assert feats.shape == (3, 1280) and feats.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)
    # Different content gives different features.
    assert feats[0] @ feats[1] < 0.999


def test_empty_detections(default_fx):
    feats = default_fx.extract_features(_frame(), np.empty((0, 4)))
    assert feats.shape == (0, 1280) and feats.dtype == np.float32
    assert default_fx.extract_features(_frame(), sv.Detections.empty()).shape == (0, 1280)


def test_features_match_plain_reference(default_fx):
    """Preprocessing equals a plain per-crop reference; features are its normalised model output."""
    frame = _frame(2)
    boxes = np.array([[10.4, 20.6, 60.2, 140.9], [0, 0, 320, 240], [150, 30, 170, 90]])
    windows = clip_boxes(boxes, *frame.shape[:2])
    reference = _reference_batch(frame, windows, (128, 64), (0.5,) * 3, (0.5,) * 3)
    batch = preprocess_crops(frame, boxes, (128, 64), (0.5,) * 3, (0.5,) * 3)
    assert batch.dtype == np.float32 and batch.flags.c_contiguous
    np.testing.assert_allclose(batch, reference, atol=1e-5)
    raw = default_fx.session.run(None, {"images": batch})[0]
    expected = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    np.testing.assert_allclose(default_fx.extract_features(frame, boxes), expected, atol=1e-6)
    # The int8 model moves a little when its input moves by float rounding; not more.
    raw_ref = default_fx.session.run(None, {"images": reference.astype(np.float32)})[0]
    cos = np.sum(expected * raw_ref / np.linalg.norm(raw_ref, axis=1, keepdims=True), axis=1)
    assert cos.min() > 0.98, cos


@pytest.mark.parametrize(
    ("box", "window"),
    [
        ([10.2, 20.7, 30.1, 40.0], [10, 20, 31, 40]),  # floor left/top, ceil right/bottom
        ([-15, -5, 30, 40], [0, 0, 30, 40]),  # over the top-left corner
        ([300, 200, 400, 300], [300, 200, 320, 240]),  # over the bottom-right corner
        ([500, 500, 600, 600], [319, 239, 320, 240]),  # wholly outside: nearest pixel
        ([-50, -50, -10, -10], [0, 0, 1, 1]),
        ([50, 60, 50, 60], [50, 60, 51, 61]),  # zero size
        ([60, 70, 50, 60], [50, 60, 60, 70]),  # swapped corners
    ],
)
def test_clip_boxes(box, window):
    assert clip_boxes(np.array([box], float), 240, 320).tolist() == [window]


def test_border_and_degenerate_boxes_give_finite_unit_vectors(default_fx):
    frame = _frame(3)
    boxes = np.array(
        [
            [-20, -20, 40, 90],  # partly outside
            [290, 180, 400, 300],  # partly outside
            [1000, 1000, 1100, 1100],  # wholly outside
            [-100, 50, -10, 80],  # wholly outside, left
            [50, 50, 50, 50],  # zero size
            [80, 80, 80.4, 120],  # thinner than a pixel
            [0, 0, 320, 240],  # the whole frame
        ],
        float,
    )
    feats = default_fx.extract_features(frame, boxes)
    assert np.isfinite(feats).all()
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)
    # A box over the border embeds exactly like its in-frame part.
    inside = default_fx.extract_features(frame, np.array([[0, 0, 40, 90]], float))
    np.testing.assert_allclose(feats[0], inside[0], atol=1e-6)


def test_chunked_batches_match_one_batch():
    path = default_model_path()
    frame = _frame(4)
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 250, size=(23, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(10, 80, size=(23, 2))], axis=1)
    one = DeepSORTFeatureExtractor(path, "cpu", batch_size=64).extract_features(frame, boxes)
    chunked = DeepSORTFeatureExtractor(path, "cpu", batch_size=4).extract_features(frame, boxes)
    single = DeepSORTFeatureExtractor(path, "cpu", batch_size=1).extract_features(frame, boxes)
    np.testing.assert_allclose(chunked, one, atol=1e-5)
    np.testing.assert_allclose(single, one, atol=1e-5)


def test_detections_and_array_inputs_are_equivalent(default_fx):
    frame = _frame(5)
    xyxy = np.array([[10, 20, 60, 140], [100, 50, 150, 200]], float)
    detections = sv.Detections(
        xyxy=xyxy, confidence=np.array([0.9, 0.8]), class_id=np.array([0, 0])
    )
    np.testing.assert_array_equal(
        default_fx.extract_features(frame, detections), default_fx.extract_features(frame, xyxy)
    )
    np.testing.assert_array_equal(default_fx(frame, xyxy), default_fx.extract_features(frame, xyxy))


def test_caller_inputs_are_not_mutated(default_fx):
    frame = _frame(6)
    boxes = np.array([[-10.5, 5.2, 400.0, 90.0]])
    frame_copy, boxes_copy = frame.copy(), boxes.copy()
    default_fx.extract_features(frame, boxes)
    np.testing.assert_array_equal(frame, frame_copy)
    np.testing.assert_array_equal(boxes, boxes_copy)


# --------------------------------------------------------- closed-form tiny models


def test_mean_pool_model_gives_normalised_channel_means(tmp_path):
    """Fixed batch of 2, [N, D, 1, 1] output, BGR order, explicit statistics."""
    path = _tiny_model(tmp_path / "pool.onnx", [2, 3, 16, 8], fixed_batch=2)
    mean, std = (0.2, 0.4, 0.6), (0.5, 0.25, 0.1)
    fx = DeepSORTFeatureExtractor(path, "cpu", mean=mean, std=std, color_order="BGR")
    assert fx.input_size == (16, 8) and fx.feature_dim == 3
    frame = _frame(7)
    boxes = np.array([[0, 0, 30, 60], [40, 40, 90, 140], [100, 0, 140, 80]], float)
    feats = fx.extract_features(frame, boxes)  # 3 crops through a batch-2 model: padded chunk
    expected = []
    for x1, y1, x2, y2 in clip_boxes(boxes, *frame.shape[:2]):
        crop = cv2.resize(frame[y1:y2, x1:x2], (8, 16), interpolation=cv2.INTER_LINEAR) / 255.0
        v = (crop.reshape(-1, 3).mean(axis=0) - np.array(mean)) / np.array(std)  # BGR order
        expected.append(v / np.linalg.norm(v))
    np.testing.assert_allclose(feats, np.array(expected), atol=1e-5)


def test_zero_output_gets_constant_unit_vector(tmp_path):
    path = _tiny_model(tmp_path / "zero.onnx", ["batch", 3, 8, 8], zero=True)
    fx = DeepSORTFeatureExtractor(path, "cpu", mean=IMAGENET_MEAN, std=IMAGENET_STD)
    feats = fx.extract_features(_frame(), np.array([[0, 0, 10, 10]], float))
    np.testing.assert_allclose(feats, np.full((1, 3), 1 / math.sqrt(3), np.float32), atol=1e-7)


def test_metadata_is_read_back(tmp_path):
    meta = {
        "input_size": "[24, 12]",
        "mean": "[0.1, 0.2, 0.3]",
        "std": "[0.3, 0.2, 0.1]",
        "color_order": "BGR",
        "feature_dim": "3",
        "source_model": "tiny-pool",
    }
    path = _tiny_model(tmp_path / "meta.onnx", ["batch", 3, "h", "w"], metadata=meta)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # complete metadata: no ImageNet warning
        fx = DeepSORTFeatureExtractor(path, "cpu")
    assert fx.input_size == (24, 12)
    assert fx.mean == (0.1, 0.2, 0.3) and fx.std == (0.3, 0.2, 0.1)
    assert fx.color_order == "BGR" and fx.source_model == "tiny-pool" and fx.feature_dim == 3
    # Explicit arguments win over metadata.
    assert DeepSORTFeatureExtractor(path, "cpu", input_size=(32, 16)).input_size == (32, 16)


def test_dynamic_size_model_without_metadata_needs_input_size(tmp_path):
    path = _tiny_model(tmp_path / "dyn.onnx", ["batch", 3, "h", "w"])
    with pytest.raises(ValueError, match="input_size"):
        DeepSORTFeatureExtractor(path, "cpu", mean=IMAGENET_MEAN, std=IMAGENET_STD)
    with pytest.warns(UserWarning, match="ImageNet"):
        fx = DeepSORTFeatureExtractor(path, "cpu", input_size=(32, 16))
    assert fx.mean == IMAGENET_MEAN


# ------------------------------------------------------------------------------ errors


def test_output_with_another_batch_size_is_an_error(tmp_path):
    """A model whose output batch differs from its input's must not be reshaped into features."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    # Channel means of all crops in one row: [N, 3, H, W] -> [1, 3N]. Reshaped to N rows,
    # 2 crops would get 3-vectors of mixed crops without any error.
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
            helper.make_node("Reshape", ["pooled", "one_row"], ["out"]),
        ],
        "batch-mixer",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, "d"])],
        [numpy_helper.from_array(np.array([1, -1], np.int64), "one_row")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "mixer.onnx"
    onnx.save(model, str(path))
    fx = DeepSORTFeatureExtractor(path, "cpu", mean=IMAGENET_MEAN, std=IMAGENET_STD)
    frame = _frame(9)
    assert fx.extract_features(frame, np.array([[0, 0, 10, 10]], float)).shape == (1, 3)
    with pytest.raises(ValueError, match=r"shape \(1, 6\) for 2 crops"):
        fx.extract_features(frame, np.array([[0, 0, 10, 10], [5, 5, 30, 40]], float))



def test_missing_file():
    with pytest.raises(FileNotFoundError, match="not found"):
        DeepSORTFeatureExtractor("/nonexistent/model.onnx")


def test_corrupt_file(tmp_path):
    path = tmp_path / "garbage.onnx"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match="not a valid ONNX model"):
        DeepSORTFeatureExtractor(path, "cpu")


def test_truncated_file(tmp_path):
    data = default_model_path().read_bytes()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated"):
        DeepSORTFeatureExtractor(path, "cpu")


def test_wrong_input_rank(tmp_path):
    path = _tiny_model(tmp_path / "rank3.onnx", ["batch", 3, 16])
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        DeepSORTFeatureExtractor(path, "cpu", input_size=(16, 8))


def test_unknown_provider_lists_available():
    with pytest.raises(ValueError, match="CPUExecutionProvider") as info:
        DeepSORTFeatureExtractor.default(providers="NoSuchExecutionProvider")
    assert "NoSuchExecutionProvider" in str(info.value)


def test_url_is_refused_with_advice():
    with pytest.raises(ValueError, match="URL.*download the file"):
        DeepSORTFeatureExtractor("https://example.com/reid.pth")


def test_non_path_model_is_a_type_error():
    with pytest.raises(TypeError, match="model_or_checkpoint_path.*torch.nn.Module"):
        DeepSORTFeatureExtractor(object())


# ------------------------------------------------------ roboflow trackers 2.0.1's surface


def test_positional_and_keyword_forms_of_2_0_1(tmp_path):
    """(model_or_checkpoint_path, device, input_size), positionally and by name."""
    path = _tiny_model(tmp_path / "pool.onnx", ["batch", 3, "h", "w"])
    stats = dict(mean=IMAGENET_MEAN, std=IMAGENET_STD)
    positional = DeepSORTFeatureExtractor(str(path), "cpu", (32, 16), **stats)
    named = DeepSORTFeatureExtractor(
        model_or_checkpoint_path=path, device="cpu", input_size=(32, 16), **stats
    )
    frame, boxes = _frame(11), np.array([[5, 5, 60, 120], [100, 40, 180, 200]], float)
    for fx in (positional, named):
        assert fx.input_size == (32, 16) and fx.providers == ["CPUExecutionProvider"]
    np.testing.assert_array_equal(
        positional.extract_features(frame, boxes), named.extract_features(frame, boxes)
    )


def test_device_model_and_transform(default_fx):
    assert default_fx.device == "cpu"
    assert isinstance(default_fx.model, ort.InferenceSession)
    assert default_fx.model is default_fx.session
    frame = _frame(12)
    x1, y1, x2, y2 = 30, 10, 90, 170
    expected = _reference_batch(
        frame, [(x1, y1, x2, y2)], default_fx.input_size, default_fx.mean, default_fx.std
    )[0]
    single = default_fx.transform(np.ascontiguousarray(frame[y1:y2, x1:x2]))
    assert single.shape == (3, *default_fx.input_size) and single.dtype == np.float32
    np.testing.assert_allclose(single, expected, atol=1e-5)
    # The same input extract_features builds for that detection.
    np.testing.assert_array_equal(single, default_fx.preprocess(frame, np.array([[x1, y1, x2, y2]]))[0])
    with pytest.raises(TypeError, match="crop"):
        default_fx.transform(np.zeros((10, 10, 3), np.float32))


def test_device_strings_map_to_providers():
    assert DeepSORTFeatureExtractor(default_model_path(), ["cpu"]).providers == ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        assert DeepSORTFeatureExtractor(default_model_path(), None).device == "cpu"  # auto
        with pytest.raises(ValueError, match="CUDAExecutionProvider"):
            DeepSORTFeatureExtractor(default_model_path(), "cuda:1")
    # providers= wins over device, as in from_timm.
    assert DeepSORTFeatureExtractor(default_model_path(), "cuda", providers="cpu").device == "cpu"


@pytest.mark.parametrize(
    ("frame", "error", "pattern"),
    [
        (np.zeros((32, 32, 3), np.float32), TypeError, "uint8"),
        (np.zeros((32, 32), np.uint8), ValueError, r"\(H, W, 3\)"),
        (np.zeros((32, 32, 4), np.uint8), ValueError, r"\(H, W, 3\)"),
        (np.zeros((0, 32, 3), np.uint8), ValueError, r"\(H, W, 3\)"),
        ([[0, 0, 0]], TypeError, "numpy array"),
    ],
)
def test_bad_frame(default_fx, frame, error, pattern):
    with pytest.raises(error, match=pattern) as info:
        default_fx.extract_features(frame, np.array([[0, 0, 5, 5]], float))
    assert "frame" in str(info.value)


@pytest.mark.parametrize(
    "boxes",
    [np.array([[0, 0, np.nan, 5]]), np.array([[0, 0, 5, np.inf]]), np.zeros((2, 5)), np.zeros(3)],
)
def test_bad_boxes(default_fx, boxes):
    with pytest.raises(ValueError, match="detections"):
        default_fx.extract_features(_frame(), boxes)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True])
def test_bad_batch_size(batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        DeepSORTFeatureExtractor(default_model_path(), "cpu", batch_size=batch_size)


# --------------------------------------------------------------- providers and options


def test_auto_provider_resolution():
    resolved = resolve_providers("auto")
    assert resolved[-1] == "CPUExecutionProvider"
    accelerated = [p for p in ort.get_available_providers() if p.endswith("ExecutionProvider")]
    if not {"CUDAExecutionProvider", "TensorrtExecutionProvider"} & set(accelerated):
        if not {
            "ROCMExecutionProvider",
            "MIGraphXExecutionProvider",
            "OpenVINOExecutionProvider",
            "CoreMLExecutionProvider",
            "DmlExecutionProvider",
        } & set(accelerated):
            assert resolved == ["CPUExecutionProvider"]
            assert DeepSORTFeatureExtractor.default().providers == ["CPUExecutionProvider"]
    assert resolve_providers("cpu") == ["CPUExecutionProvider"]
    assert resolve_providers([("CPUExecutionProvider", {})]) == [("CPUExecutionProvider", {})]


@pytest.mark.filterwarnings("ignore:Specified provider:UserWarning")
def test_provider_that_fails_to_load_falls_back_with_warning(monkeypatch):
    """Pretend this build lists CUDA; the session then starts on CPU only and we warn."""
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("CUDA really is available here")
    real = ort.get_available_providers
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", *real()])
    with pytest.warns(RuntimeWarning, match="CUDAExecutionProvider"):
        fx = DeepSORTFeatureExtractor.default(providers="cuda")
    assert fx.providers == ["CPUExecutionProvider"]


def test_session_options_are_applied():
    fx = DeepSORTFeatureExtractor.default(
        providers="cpu", intra_op_num_threads=1, graph_optimization_level="basic"
    )
    options = fx.session.get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    with pytest.raises(ValueError, match="graph_optimization_level"):
        DeepSORTFeatureExtractor.default(providers="cpu", graph_optimization_level="max")


@pytest.mark.skipif(
    "CUDAExecutionProvider" not in ort.get_available_providers(),
    reason="CUDAExecutionProvider not available (needs onnxruntime-gpu and a GPU)",
)
def test_cuda_matches_cpu():
    frame = _frame(8)
    boxes = np.array([[10, 20, 60, 140], [100, 50, 150, 200]], float)
    cpu = DeepSORTFeatureExtractor.default(providers="cpu").extract_features(frame, boxes)
    gpu_fx = DeepSORTFeatureExtractor.default(providers="cuda")
    assert gpu_fx.providers[0] == "CUDAExecutionProvider"
    gpu = gpu_fx.extract_features(frame, boxes)
    assert np.min(np.sum(cpu * gpu, axis=1)) > 0.99


# ---------------------------------------------------------------------- ReID sanity


@pytest.mark.slow
def test_osnet_separates_identities_on_pets(shared_data):
    model = shared_data / OSNET
    if not model.is_file():
        pytest.skip(f"{model} not present")
    fx = DeepSORTFeatureExtractor.from_onnx(
        model, "cpu", input_size=(256, 128), mean=IMAGENET_MEAN, std=IMAGENET_STD
    )
    assert fx.feature_dim == 512
    gt = _pets_crops(shared_data, 240)
    feats, ids = _features_for_gt(fx, shared_data, gt)
    assert len(np.unique(ids)) >= 5
    iu = np.triu_indices(len(ids), 1)
    sims = (feats @ feats.T)[iu]
    same = (ids[:, None] == ids[None, :])[iu]
    assert sims[same].mean() > sims[~same].mean()
    auc = roc_auc(sims, same)
    print(f"OSNet pair AUC on PETS09-S2L1: {auc:.3f}")
    assert auc >= 0.9, auc


def test_default_model_beats_chance_on_pets(shared_data, default_fx):
    gt = _pets_crops(shared_data, 240)
    feats, ids = _features_for_gt(default_fx, shared_data, gt)
    auc = _pair_auc(feats, ids)
    print(f"default model pair AUC on PETS09-S2L1: {auc:.3f}")
    assert auc > 0.5, auc


def test_roc_auc_reference():
    # Perfect, inverted and tied rankings.
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([False, False, True, True])) == 1.0
    assert roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), np.array([False, False, True, True])) == 0.0
    assert roc_auc(np.array([0.5, 0.5, 0.5, 0.5]), np.array([False, True, False, True])) == 0.5
