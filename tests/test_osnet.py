"""OSNet written from the paper loads torchreid checkpoints and exports like the real model.

The reference is a real model: the shared OSNet-x0.25 (MSMT17) ONNX file. Its
initialisers are turned back into a torchreid-style state dict (the exporter
folded batch norm into the convolutions: those load as the convolution plus an
identity batch norm), saved the way torchreid saves checkpoints, exported
through ``deepsort-edge export`` and compared with the original file on real
PETS09 crops. The unit tests build every width without any file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from deepsort_edge.cli.__main__ import main as cli_main
from deepsort_edge.appearance.embedder import DeepSORTFeatureExtractor
from deepsort_edge.appearance.export import synthetic_crops
from deepsort_edge.appearance.preprocess import IMAGENET_MEAN, IMAGENET_STD, preprocess_images

from .common import hide_modules

torch = pytest.importorskip("torch", reason="export extra (torch) not installed")
onnx = pytest.importorskip("onnx", reason="export extra (onnx) not installed")
pytest.importorskip("timm", reason="export extra (timm) not installed")

from deepsort_edge.appearance.export.osnet import (  # noqa: E402  (needs torch)
    OSNET_CHANNELS,
    build_osnet,
    load_osnet_checkpoint,
)

SHARED_MODEL = Path("models/osnet_x0_25_msmt17.onnx")
PETS = Path("MOT15/train/PETS09-S2L1")
# Parameters without the classifier, in millions, from the paper's table of widths.
PAPER_PARAMS_M = {"osnet_x1_0": 2.2, "osnet_x0_75": 1.3, "osnet_x0_5": 0.6, "osnet_x0_25": 0.2}
BN_EPS = 1e-5  # torch's default, as in the shared model's one BatchNormalization node


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)


def _save_like_torchreid(state: dict, path: Path, classes: int = 4101) -> Path:
    """A training checkpoint: wrapped in ``state_dict``, DataParallel prefixes, a classifier."""
    wrapped = {f"module.{k}": v for k, v in state.items()}
    wrapped["module.classifier.weight"] = torch.randn(classes, 512)
    wrapped["module.classifier.bias"] = torch.zeros(classes)
    torch.save({"state_dict": wrapped, "epoch": 150, "rank1": 0.5}, path)
    return path


# ------------------------------------------------------------------ every width, no files


@pytest.mark.parametrize("name", sorted(OSNET_CHANNELS))
def test_each_width_builds_with_the_papers_size(name):
    model = build_osnet(name)
    stem, c2, c3, c4 = OSNET_CHANNELS[name]
    state = model.state_dict()
    # torchreid's names and the shapes the paper's widths give.
    assert state["conv1.conv.weight"].shape == (stem, 3, 7, 7)
    assert state["conv2.0.conv1.conv.weight"].shape == (c2 // 4, stem, 1, 1)
    assert state["conv2.0.conv2d.3.conv2.weight"].shape == (c2 // 4, 1, 3, 3)
    assert state["conv2.0.gate.fc1.weight"].shape == (c2 // 64, c2 // 4, 1, 1)
    assert state["conv2.0.downsample.conv.weight"].shape == (c2, stem, 1, 1)
    assert "conv2.1.downsample.conv.weight" not in state  # same width: identity shortcut
    assert state["conv3.2.0.conv.weight"].shape == (c3, c3, 1, 1)  # transition
    assert not any(k.startswith("conv4.2") for k in state)  # no transition after stage 4
    assert state["conv5.conv.weight"].shape == (c4, c4, 1, 1)
    assert state["fc.0.weight"].shape == (512, c4) and "fc.1.running_var" in state
    params = sum(p.numel() for p in model.parameters())
    assert round(params / 1e6, 1) == PAPER_PARAMS_M[name]
    with torch.no_grad():
        out = model(torch.randn(3, 3, 256, 128))
    assert out.shape == (3, 512) and bool((out >= 0).all())  # ReLU after the fc layer


@pytest.mark.parametrize("name", sorted(OSNET_CHANNELS))
def test_state_dict_round_trips_through_a_torchreid_checkpoint(name, tmp_path):
    torch.manual_seed(0)
    source = build_osnet(name)
    for module in source.modules():  # non-trivial batch-norm statistics
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    path = _save_like_torchreid(source.state_dict(), tmp_path / "ckpt.pth.tar", classes=751)
    target = build_osnet(name)
    ignored = load_osnet_checkpoint(target, path)
    assert set(ignored) == {"classifier.weight", "classifier.bias"}
    assert source.state_dict().keys() == target.state_dict().keys()
    for key, value in source.state_dict().items():
        assert torch.equal(value, target.state_dict()[key]), key
    x = torch.randn(2, 3, 128, 64)
    with torch.no_grad():
        assert torch.equal(source(x), target(x))


def test_plain_state_dict_without_batch_counters_loads(tmp_path):
    source = build_osnet("osnet_x0_25")
    state = {k: v for k, v in source.state_dict().items() if "num_batches_tracked" not in k}
    torch.save(state, tmp_path / "plain.pth")
    assert load_osnet_checkpoint(build_osnet("osnet_x0_25"), tmp_path / "plain.pth") == ()


def test_training_checkpoint_with_numpy_metrics_loads(tmp_path):
    """torchreid stores rank1 / mAP as numpy scalars; numpy 1.x names them numpy.core.*."""
    import zipfile

    source = build_osnet("osnet_x0_25")
    metrics = {"rank1": np.float32(0.5), "mAP": np.float64(0.25), "epoch": 150}
    torch.save({"state_dict": source.state_dict(), **metrics}, tmp_path / "new.pth")
    with (
        zipfile.ZipFile(tmp_path / "new.pth") as new,
        zipfile.ZipFile(tmp_path / "old.pth", "w") as old,
    ):
        for name in new.namelist():
            data = new.read(name)
            if name.endswith("data.pkl"):  # the global as numpy 1.x pickles it
                data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
            old.writestr(name, data)
    for name in ("new.pth", "old.pth"):
        target = build_osnet("osnet_x0_25")
        assert load_osnet_checkpoint(target, tmp_path / name) == ()
        assert torch.equal(target.conv5.conv.weight, source.conv5.conv.weight)


def _one_line_error(model, path, match: str) -> str:
    with pytest.raises(ValueError, match=match) as info:
        load_osnet_checkpoint(model, path)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_checkpoint_errors_are_one_line(tmp_path):
    x05 = build_osnet("osnet_x0_5").state_dict()
    torch.save(x05, tmp_path / "x05.pth")
    message = _one_line_error(build_osnet("osnet_x0_25"), tmp_path / "x05.pth", "osnet_x0_5")
    assert "not osnet_x0_25" in message

    state = dict(build_osnet("osnet_x0_25").state_dict())
    del state["conv3.1.conv2c.2.bn.weight"]
    torch.save(state, tmp_path / "missing.pth")
    _one_line_error(
        build_osnet("osnet_x0_25"), tmp_path / "missing.pth", "conv3.1.conv2c.2.bn.weight"
    )

    state = dict(build_osnet("osnet_x0_25").state_dict())
    state["conv2.0.IN.weight"] = torch.ones(64)  # an instance-norm (osnet_ibn) variant
    torch.save(state, tmp_path / "extra.pth")
    message = _one_line_error(
        build_osnet("osnet_x0_25"), tmp_path / "extra.pth", "conv2.0.IN.weight"
    )
    assert "osnet_ain_*, osnet_ibn_*" in message

    state = dict(build_osnet("osnet_x0_25").state_dict())
    state["fc.0.weight"] = torch.zeros(256, 128)
    torch.save(state, tmp_path / "shape.pth")
    _one_line_error(build_osnet("osnet_x0_25"), tmp_path / "shape.pth", r"fc\.0\.weight")

    torch.save([1, 2, 3], tmp_path / "list.pth")
    _one_line_error(build_osnet("osnet_x0_25"), tmp_path / "list.pth", "state dict")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    _one_line_error(build_osnet("osnet_x0_25"), tmp_path / "junk.pth", "cannot be read")
    with pytest.raises(FileNotFoundError):
        load_osnet_checkpoint(build_osnet("osnet_x0_25"), tmp_path / "absent.pth")
    with pytest.raises(ValueError, match="osnet_x0_25"):
        build_osnet("osnet_x2_0")


# ----------------------------------------------- the shared OSNet-x0.25 model, rebuilt


def _module_path(node_name: str) -> str:
    """``/conv2/conv2.0/conv2b/conv2b.1/conv2/Conv`` -> ``conv2.0.conv2b.1.conv2``.

    The TorchScript exporter names each node after its module scopes; a
    sequential child's scope (``conv2.0``) extends its parent's (``conv2``).
    """
    parts: list[str] = []
    for scope in node_name.strip("/").split("/")[:-1]:
        if parts and scope.startswith(parts[-1] + "."):
            parts[-1] = scope
        else:
            parts.append(scope)
    return ".".join(parts)


def _state_dict_from_onnx(path: Path) -> dict:
    """The shared model's weights as a torchreid state dict (folded batch norm -> identity BN)."""
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    state = {name: value for name, value in weights.items() if not name.startswith(("onnx::", "/"))}
    for node in graph.node:
        if node.op_type != "Conv" or not node.input[1].startswith("onnx::"):
            continue  # unfolded convolutions kept their parameter names
        conv = _module_path(node.name)  # a convolution that had a batch norm after it
        owner, _, leaf = conv.rpartition(".")
        bn = f"{owner}.bn"  # torchreid: ConvLayer's conv + bn, LightConv3x3's conv2 + bn
        assert leaf in {"conv", "conv2"} and len(node.input) == 3, node.name
        bias = weights[node.input[2]]
        state[f"{conv}.weight"] = weights[node.input[1]]
        state[f"{bn}.weight"] = np.full_like(bias, math.sqrt(1.0 + BN_EPS))
        state[f"{bn}.bias"] = bias
        state[f"{bn}.running_mean"] = np.zeros_like(bias)
        state[f"{bn}.running_var"] = np.ones_like(bias)
    return {k: torch.from_numpy(np.array(v)) for k, v in state.items()}


@pytest.fixture(scope="module")
def shared_model(shared_data) -> Path:
    path = shared_data / SHARED_MODEL
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(scope="module")
def rebuilt_checkpoint(shared_model, tmp_path_factory) -> Path:
    state = _state_dict_from_onnx(shared_model)
    return _save_like_torchreid(state, tmp_path_factory.mktemp("osnet") / "osnet_x0_25.pth")


@pytest.fixture(scope="module")
def pets_crops(shared_data) -> list[np.ndarray]:
    from deepsort_edge.appearance.export import load_mot_crops

    crops, _ = load_mot_crops(shared_data / PETS, 64, seed=5)
    assert len(crops) == 64
    return crops


def _onnx_features(path: Path, batch: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: batch})[0]


def test_rebuilt_weights_cover_the_whole_module(rebuilt_checkpoint):
    model = build_osnet("osnet_x0_25")
    # Strict: every weight of the module comes from the shared file, nothing is left over.
    assert load_osnet_checkpoint(model, rebuilt_checkpoint) == (
        "classifier.weight",
        "classifier.bias",
    )


def test_cli_export_matches_the_shared_model(
    shared_model, rebuilt_checkpoint, pets_crops, tmp_path
):
    out = tmp_path / "osnet.onnx"
    argv = ["export", "osnet_x0_25", "--checkpoint", str(rebuilt_checkpoint), "-o", str(out), "-q"]
    assert cli_main(argv) == 0
    batch = preprocess_images(pets_crops, (256, 128), IMAGENET_MEAN, IMAGENET_STD)
    reference = _onnx_features(shared_model, batch)
    ours = _onnx_features(out, batch)
    assert ours.shape == reference.shape == (64, 512)
    assert _cosines(ours.astype(np.float64), reference.astype(np.float64)).min() >= 0.9999
    # Same input contract as every export: the file describes its own preprocessing.
    extractor = DeepSORTFeatureExtractor(out, "cpu")
    assert extractor.metadata["input_size"] == [256, 128]
    assert extractor.metadata["color_order"] == "RGB"
    assert np.allclose(extractor.metadata["mean"], IMAGENET_MEAN)
    assert np.allclose(extractor.metadata["std"], IMAGENET_STD)
    assert extractor.metadata["source_model"] == "osnet_x0_25"
    assert extractor.metadata["feature_dim"] == 512


@pytest.mark.slow
def test_int8_export_with_calibration_data(shared_data, shared_model, rebuilt_checkpoint, tmp_path):
    out, report = tmp_path / "osnet-int8.onnx", tmp_path / "report.json"
    argv = [
        "export", "osnet_x0_25", "--checkpoint", str(rebuilt_checkpoint), "-o", str(out),
        "--int8", "--calibration-data", str(shared_data / PETS), "--calibration-count", "32",
        "--verify-count", "32", "--report", str(report), "-q",
    ]  # fmt: skip
    assert cli_main(argv) == 0
    data = json.loads(report.read_text())
    assert data["precision"] == "int8" and data["input_size"] == [256, 128]
    assert data["num_verify_crops"] == 32 and data["min_cosine"] >= 0.9
    assert DeepSORTFeatureExtractor(out, "cpu").metadata["precision"] == "int8"


# ------------------------------------------------------------------ command-line errors


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith("deepsort-edge export: error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def random_x05_checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("osnet") / "x05.pth"
    torch.save({"model": build_osnet("osnet_x0_5").state_dict()}, path)
    return path


def test_cli_user_errors_exit_2_in_one_line(random_x05_checkpoint, tmp_path, capsys):
    out = str(tmp_path / "o.onnx")
    cases = [
        (["osnet_x0_25", "-o", out], "needs --checkpoint"),
        (["osnet_x0_25", "--checkpoint", str(tmp_path / "absent.pth"), "-o", out], "not found"),
        (["osnet_x0_25", "--checkpoint", str(random_x05_checkpoint), "-o", out], "osnet_x0_5"),
        (["osnet_x2_0", "--checkpoint", str(random_x05_checkpoint), "-o", out], "osnet_x0_25"),
        (["no_such_model_xyz", "--no-pretrained", "-o", out], "not a timm model"),
        (["osnet_x0_5", "--checkpoint", str(random_x05_checkpoint), "-o", out, "--int8"],
         "--calibration-data"),
        (["osnet_x0_5", "--checkpoint", str(random_x05_checkpoint), "-o", str(tmp_path)],
         "is a folder"),
    ]  # fmt: skip
    for argv, text in cases:
        assert cli_main(["export", *argv]) == 2, argv
        assert text in error_line(capsys), argv
    assert not (tmp_path / "o.onnx").exists()


def test_cli_missing_extra_exits_2(monkeypatch, capsys, random_x05_checkpoint):
    hide_modules(monkeypatch, "onnx")
    argv = ["export", "osnet_x0_5", "--checkpoint", str(random_x05_checkpoint), "-o", "x.onnx"]
    assert cli_main(argv) == 2
    assert "export extra" in error_line(capsys)


@pytest.mark.slow
def test_synthetic_crops_export_verifies_against_torch(random_x05_checkpoint, tmp_path):
    from deepsort_edge.appearance.export import export_osnet

    report = export_osnet(
        "osnet_x0_5", tmp_path / "x05.onnx", random_x05_checkpoint,
        input_size=(128, 64), verify_crops=synthetic_crops(8), progress=False,
    )  # fmt: skip
    assert report.feature_dim == 512 and report.min_cosine >= 0.9999
    assert report.input_size == (128, 64) and report.ignored_keys == ()
