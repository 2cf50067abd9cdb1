"""``deepsort-edge quantize`` / ``quantize_model`` on a small ONNX model built here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="quantize needs onnx (the export extra)")

from deepsort_edge.cli.__main__ import main  # noqa: E402


def _conv_model(path: Path, opset: int = 11) -> Path:
    """Conv(3->16, 3x3) -> Relu -> Conv(16->32) -> Relu -> GlobalAveragePool -> Flatten: [N, 32]."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.normal(0, 0.3, (16, 3, 3, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.normal(0, 0.2, (32, 16, 3, 3)).astype(np.float32), "w2")
    nodes = [
        helper.make_node("Conv", ["images", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["p"]),
        helper.make_node("Flatten", ["p"], ["features"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 32, 16])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 32])],
        initializer=[w1, w2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7
    onnx.save(model, str(path))
    return path


def _crops(folder: Path, count: int = 40) -> Path:
    import cv2

    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(count):
        crop = np.clip(rng.normal(120, 40, (64, 32, 3)) + np.linspace(0, 60, 32)[None, :, None], 0, 255)
        cv2.imwrite(str(folder / f"{i:03d}.png"), crop.astype(np.uint8))
    return folder


@pytest.mark.parametrize("opset", [11, 17])  # 11: upgraded to 13 for per-channel QDQ
def test_quantized_model_stays_close_and_describes_itself(tmp_path, opset):
    from deepsort_edge.appearance.embedder import DeepSORTFeatureExtractor
    from deepsort_edge.appearance.quantization import quantize_model

    import cv2

    model = _conv_model(tmp_path / "tiny.onnx", opset)
    folder = _crops(tmp_path / "crops")
    crops = [cv2.imread(str(p)) for p in sorted(folder.iterdir())]
    report = quantize_model(model, tmp_path / "tiny-int8.onnx", crops[0::2], crops[1::2],
                            input_size=(32, 16), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), color_order="bgr")
    assert report.verification_crops == 20 and report.mean_cosine > 0.98 and report.min_cosine > 0.9
    int8 = DeepSORTFeatureExtractor.from_onnx(report.output, providers="cpu")  # no options: from metadata
    assert int8.input_size == (32, 16) and int8.color_order == "BGR"
    assert any(node.op_type == "QuantizeLinear" for node in onnx.load(str(report.output)).graph.node)
    # The report's cosine is the one a user would see.
    fp32 = DeepSORTFeatureExtractor.from_onnx(model, providers="cpu", input_size=(32, 16), mean=(0.5,) * 3,
                                              std=(0.25,) * 3, color_order="bgr")
    from deepsort_edge.appearance.preprocess import preprocess_images

    held = preprocess_images(crops[1::2], (32, 16), (0.5,) * 3, (0.25,) * 3, "BGR")
    cosine = np.einsum("ij,ij->i", fp32.embed_batch(held), int8.embed_batch(held))
    assert cosine.mean() == pytest.approx(report.mean_cosine, abs=1e-6)


def test_cli_quantize_and_its_errors(tmp_path, capsys):
    model = _conv_model(tmp_path / "tiny.onnx")
    folder = _crops(tmp_path / "crops")
    args = ["quantize", str(model), "-o", str(tmp_path / "q.onnx"), "--calibration-data", str(folder),
            "--input-size", "32", "16"]
    assert main(args) == 0
    assert "int8 vs float32 cosine on 20 held-out crops" in capsys.readouterr().out
    assert main([*args[:1], str(tmp_path / "missing.onnx"), *args[2:]]) == 2
    assert "model not found" in capsys.readouterr().err
    assert main([*args[:4], "--calibration-data", str(tmp_path / "nowhere"), *args[6:]]) == 2
    assert "--calibration-data" in capsys.readouterr().err
    assert main([*args, "--keep-float", "-1"]) == 2
    assert "--keep-float must be >= 0" in capsys.readouterr().err
    # No data at all: the built-in scene's people and textures (seed 0 calibrates, seed 1 verifies).
    assert main([*args[:4], "--calibration-data", "builtin", *args[6:], "--calibration-count", "12",
                 "--verify-count", "8"]) == 0
    assert "int8 vs float32 cosine on 8 held-out crops" in capsys.readouterr().out
    # A detector needs frames: builtin holds none.
    assert main([*args[:4], "--calibration-data", "builtin", "--detector"]) == 2
    assert "--calibration-data builtin" in capsys.readouterr().err


def test_summary_says_when_int8_is_the_slower_model():
    from deepsort_edge.appearance.quantization import QuantizeReport

    def report(int8: float, fp32: float) -> str:
        return QuantizeReport(Path("m-int8.onnx"), 8, 8, 0.99, 0.95, fp32, int8).summary()

    assert "slower" not in report(int8=200.0, fp32=70.0)
    slower = report(int8=318.0, fp32=510.0)
    assert "(0.62x)" in slower
    assert "int8 model is slower than the float32 one" in slower.splitlines()[-1]


def test_quantize_detector_never_overwrites_the_float_model(tmp_path):
    """Both quantisers refuse an out_path that is the float32 model (the detector's once did not)."""
    from deepsort_edge.appearance.quantization import quantize_detector, quantize_model
    from tests.detector_models import constant_detector

    model = constant_detector(tmp_path / "det.onnx", [np.zeros((1, 6, 4), np.float32)])
    before = model.read_bytes()
    frames = [np.zeros((64, 64, 3), np.uint8)] * 2
    for quantize, options in ((quantize_detector, {"layout": "yolov8"}), (quantize_model, {})):
        with pytest.raises(ValueError, match="is the float32 model itself; it would be overwritten"):
            quantize(model, tmp_path / "." / "det.onnx", frames, frames, **options)
    assert model.read_bytes() == before
