"""Torch models as appearance extractors: exported to ONNX once, cached by content.

The reference is torch itself: the module run on the crops built here with
plain numpy/OpenCV (roboflow trackers 2.0.1's feed: BGR channels in order,
pixels / 255, no mean or std). The cache is checked by making a second
export impossible. Tests needing torch and onnx skip without them; the
missing-extra message is tested by hiding those modules.
"""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest
import supervision as sv

import deepsort_edge.appearance.export.torch_module as torch_module
from deepsort_edge import DeepSORTTracker
from deepsort_edge.appearance.embedder import DeepSORTFeatureExtractor

from .common import hide_modules

SIZE = (64, 32)


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch", reason="export extra (torch) not installed")
    pytest.importorskip("onnx", reason="export extra (onnx) not installed")
    return torch


def _tiny_net(torch, seed: int = 0):
    """Conv + BatchNorm (non-trivial running statistics) + pooling: an [N, 12] feature."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=2, padding=1),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 12, 3, padding=1),
        torch.nn.AdaptiveAvgPool2d(1),
    )
    with torch.no_grad():
        net[1].running_mean.uniform_(-0.2, 0.2)
        net[1].running_var.uniform_(0.5, 2.0)
    return net


def _scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(12, 16, 3), dtype=np.uint8)
    frame = cv2.resize(coarse, (320, 240), interpolation=cv2.INTER_CUBIC)
    boxes = np.array([[10, 20, 60, 140], [100, 30, 170, 200], [200, 100, 300, 230]], dtype=np.float64)
    return frame, boxes


def _torch_features(torch, net, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """2.0.1's feed by hand: BGR crop, bilinear resize, [0, 1], CHW; then the module in eval mode."""
    crops = []
    for x1, y1, x2, y2 in boxes.astype(int):
        crop = cv2.resize(frame[y1:y2, x1:x2], (SIZE[1], SIZE[0]), interpolation=cv2.INTER_LINEAR)
        crops.append(crop.astype(np.float32).transpose(2, 0, 1) / 255.0)
    was_training = net.training
    net.eval()
    with torch.no_grad():
        out = net(torch.from_numpy(np.stack(crops))).reshape(len(crops), -1).numpy()
    net.train(was_training)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def _forbid_export(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_export(*args, **kwargs):
        raise AssertionError("exported again; expected the cached file")

    monkeypatch.setattr(torch_module, "_export", no_export)


def test_module_features_match_torch_and_hit_the_cache(torch, tmp_path, monkeypatch):
    net = _tiny_net(torch).train()  # export must use eval mode and leave the flag as it was
    frame, boxes = _scene()
    fx = DeepSORTFeatureExtractor(net, "cpu", SIZE, cache_dir=tmp_path)
    assert net.training
    assert fx.input_size == SIZE and fx.feature_dim == 12 and fx.color_order == "BGR"
    assert fx.mean == (0.0, 0.0, 0.0) and fx.std == (1.0, 1.0, 1.0)
    ours = fx.extract_features(frame, boxes)
    cosine = np.sum(ours * _torch_features(torch, net, frame, boxes), axis=1)
    assert cosine.min() >= 0.9999, cosine
    cached = sorted((tmp_path / "torch").glob("*.onnx"))
    assert cached == [fx.model_path]

    _forbid_export(monkeypatch)
    again = DeepSORTFeatureExtractor(net, "cpu", SIZE, cache_dir=tmp_path)
    assert again.model_path == fx.model_path
    np.testing.assert_array_equal(again.extract_features(frame, boxes), ours)


def test_cache_key_follows_weights_size_and_preprocessing(torch, tmp_path):
    net = _tiny_net(torch)
    first = DeepSORTFeatureExtractor(net, "cpu", SIZE, cache_dir=tmp_path).model_path
    with torch.no_grad():
        net[0].weight[0, 0, 0, 0] += 0.5  # an in-place edit of one weight
    edited = DeepSORTFeatureExtractor(net, "cpu", SIZE, cache_dir=tmp_path).model_path
    resized = DeepSORTFeatureExtractor(net, "cpu", (32, 32), cache_dir=tmp_path).model_path
    rgb = DeepSORTFeatureExtractor(net, "cpu", SIZE, color_order="RGB", cache_dir=tmp_path).model_path
    assert len({first, edited, resized, rgb}) == 4
    assert len(list((tmp_path / "torch").glob("*.onnx"))) == 4
    assert not list((tmp_path / "torch").glob(".*.tmp"))  # no half-written files left behind


def test_same_weights_other_code_is_another_model(torch, tmp_path):
    class Doubled(torch.nn.Sequential):
        def forward(self, x):
            return 2.0 * super().forward(x) + 1.0

    net = _tiny_net(torch)
    other = Doubled(*net)
    paths = {
        DeepSORTFeatureExtractor(m, "cpu", SIZE, cache_dir=tmp_path).model_path for m in (net, other)
    }
    assert len(paths) == 2


@pytest.mark.parametrize("suffix", [".pt", ".pth"])
def test_checkpoint_file_loads_then_caches_without_torch(torch, tmp_path, monkeypatch, suffix):
    net = _tiny_net(torch, seed=1).eval()
    path = tmp_path / f"reid{suffix}"
    torch.save(net, path)
    frame, boxes = _scene(1)
    fx = DeepSORTFeatureExtractor(str(path), "cpu", SIZE, cache_dir=tmp_path / "cache")
    cosine = np.sum(fx.extract_features(frame, boxes) * _torch_features(torch, net, frame, boxes), axis=1)
    assert cosine.min() >= 0.9999, cosine

    # The key of a file is its bytes: the second construction needs neither torch nor an export.
    _forbid_export(monkeypatch)
    hide_modules(monkeypatch, "torch", "onnx")
    again = DeepSORTFeatureExtractor(path, "cpu", SIZE, cache_dir=tmp_path / "cache")
    assert again.model_path == fx.model_path


def test_torchscript_is_refused_clearly(torch, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation warnings
        scripted = torch.jit.script(_tiny_net(torch).eval())
        with pytest.raises(ValueError, match="TorchScript"):
            DeepSORTFeatureExtractor(scripted, "cpu", SIZE, cache_dir=tmp_path)


def test_state_dict_checkpoint_says_what_to_do(torch, tmp_path):
    path = tmp_path / "weights.pth"
    torch.save(_tiny_net(torch).state_dict(), path)
    with pytest.raises(ValueError, match="state dict.*from_timm"):
        DeepSORTFeatureExtractor(path, "cpu", SIZE, cache_dir=tmp_path)


def test_missing_checkpoint_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="model_or_checkpoint_path"):
        DeepSORTFeatureExtractor(tmp_path / "absent.pt", cache_dir=tmp_path)


def test_without_the_export_extra_a_clear_import_error(tmp_path, monkeypatch):
    path = tmp_path / "reid.pt"
    path.write_bytes(b"not read: the import fails first")
    hide_modules(monkeypatch, "torch", "onnx")
    with pytest.raises(ImportError, match=r'pip install "deepsort-edge\[export\]"') as info:
        DeepSORTFeatureExtractor(path, "cpu", SIZE, cache_dir=tmp_path / "cache")
    assert "torch" in str(info.value) and "reid.pt" in str(info.value)


def test_module_without_onnx_is_a_clear_import_error(torch, tmp_path, monkeypatch):
    net = _tiny_net(torch)
    hide_modules(monkeypatch, "onnx")
    with pytest.raises(ImportError, match=r"onnx.*deepsort-edge\[export\]"):
        DeepSORTFeatureExtractor(net, "cpu", SIZE, cache_dir=tmp_path)


def test_untraceable_forward_is_refused(torch, tmp_path):
    class DataDependent(torch.nn.Module):
        def forward(self, x):
            pooled = x.mean(dim=(2, 3))
            if float(pooled.sum()) > 0:  # a Python branch: tracing freezes one side
                return pooled
            return -pooled

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's own warning about the branch
        # The tracer's dummy input is zeros (the negative branch); crops in [0, 1] take the other.
        with pytest.raises(ValueError, match="does not reproduce torch"):
            DeepSORTFeatureExtractor(DataDependent(), "cpu", SIZE, cache_dir=tmp_path)
    assert not list((tmp_path / "torch").glob("*.onnx"))


def test_tracker_takes_a_module_or_a_checkpoint(torch, tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPSORT_EDGE_CACHE", str(tmp_path / "cache"))
    net = _tiny_net(torch, seed=2)
    path = tmp_path / "reid.pt"
    torch.save(net, path)
    frame, boxes = _scene(2)
    detections = sv.Detections(xyxy=boxes, confidence=np.full(len(boxes), 0.9))
    for given in (net, str(path)):
        tracker = DeepSORTTracker(feature_extractor=given, device="cpu")
        assert isinstance(tracker.feature_extractor, DeepSORTFeatureExtractor)
        assert tracker.feature_extractor.device == "cpu"
        assert tracker.feature_extractor.input_size == (128, 128)  # 2.0.1's default
        for _ in range(5):
            out = tracker.update(detections, frame)
        assert len(out) == len(boxes) and (out.tracker_id >= 0).all()
    # One export per content: the module and its pickle are two keys, nothing more.
    assert len(list((tmp_path / "cache" / "torch").glob("*.onnx"))) == 2


def test_pickled_extractor_reloads_the_cached_export(torch, tmp_path, monkeypatch):
    import pickle

    net = _tiny_net(torch, seed=3)
    fx = DeepSORTFeatureExtractor(net, "cpu", SIZE, cache_dir=tmp_path)
    frame, boxes = _scene(3)
    _forbid_export(monkeypatch)
    copy = pickle.loads(pickle.dumps(fx))  # rebuilt from the cached ONNX file, not the module
    assert copy.model_path == fx.model_path and copy.color_order == "BGR" and copy.input_size == SIZE
    np.testing.assert_array_equal(copy.extract_features(frame, boxes), fx.extract_features(frame, boxes))


def test_torch_file_of_any_name_is_recognised(torch, tmp_path):
    """2.0.1 read every path with torch.load; a torch.save file named .bin is a torch file here too."""
    from deepsort_edge.appearance.embedder import default_model_path
    from deepsort_edge.appearance.export.torch_module import is_torch_checkpoint

    path = tmp_path / "reid.bin"
    torch.save(_tiny_net(torch, seed=4), path)
    assert is_torch_checkpoint(path) and not is_torch_checkpoint(default_model_path())
    assert not is_torch_checkpoint(tmp_path / "absent.onnx")
    fx = DeepSORTFeatureExtractor(path, "cpu", SIZE, cache_dir=tmp_path / "cache")
    assert fx.feature_dim == 12 and fx.model_path.parent == tmp_path / "cache" / "torch"


def test_unreadable_torch_file(torch, tmp_path):
    path = tmp_path / "broken.pt"
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match="torch.load cannot read"):
        DeepSORTFeatureExtractor(path, "cpu", SIZE, cache_dir=tmp_path)
