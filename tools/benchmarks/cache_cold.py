"""Speed section ``cache-cold``: tracker updates with an embedder inference between them.

The first ``--cold-frames`` frames of MOT17-04 with one ONNX Runtime inference
(one thread) on a batch of ``--crops`` person crops between consecutive
updates, as in a real pipeline where the embedder runs between tracker calls;
only the update is timed, and compared with the warm loop over the same
frames. The model is OSNet-x0.25 from the shared data, else a small two-layer
conv net built in-process with ``onnx``. The kernel's own time is clocked
apart from the Python glue around it (:class:`timing.KernelClock`).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from .common import OSNET, shared_data_dir
from .inputs import CompareSettings, Frame, make_ours
from .report import Report
from .timing import KernelClock, Loop, time_updates

TARGET_RATIO = 1.5
TARGETS = {mode: (f"MOT17-04 {mode}, ONNX inference between updates: cold / warm", TARGET_RATIO, "lower")
           for mode in ("gallery", "ema")}


def inference_session(crops: int, seed: int) -> tuple[Callable[[], object], str] | None:
    """One-thread ONNX Runtime inference on ``crops`` person crops, and what model it is."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    model = shared_data_dir() / OSNET
    if model.is_file():
        source: str | bytes = str(model)
        name, shape = f"OSNet-x0.25 (shared data), {crops} crops 256x128", (crops, 3, 256, 128)
    else:
        try:
            source = small_conv_model()
        except ImportError:
            return None
        name = f"in-process 2-layer conv net (no OSNet in the shared data), {crops} crops 128x64"
        shape = (crops, 3, 128, 64)
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: np.random.default_rng(seed).random(shape, dtype=np.float32)}
    return (lambda: session.run(None, feed)), name


def small_conv_model() -> bytes:
    """Conv 3->16, ReLU, conv 16->32 (3x3), global average pool: a stand-in embedder."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((16, 3, 3, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((32, 16, 3, 3)).astype(np.float32), "w2")
    nodes = [
        helper.make_node("Conv", ["images", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["c2"], ["features"]),
    ]
    graph = helper.make_graph(
        nodes, "stand_in_embedder",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 128, 64])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 32, 1, 1])],
        initializer=[w1, w2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def section_cache_cold(report: Report, args: argparse.Namespace, frames: list[Frame] | None) -> None:
    emit = report.emit
    inference = inference_session(args.crops, args.seed) if frames is not None else None
    if inference is None:
        why = "it replays MOT17-04 and the shared data is not there" if frames is None else \
            "no OSNet model in the shared data and no `onnx` to build one"
        emit(f"## Cache-cold loop: skipped, {why}")
        emit()
        for name, threshold, better in TARGETS.values():
            report.target(name, None, threshold, better)
        return
    infer, model_name = inference
    subset = frames[: args.cold_frames]
    n = len(subset)
    settings = CompareSettings()
    loops = {(mode, kind): Loop(f"{mode} {kind}") for mode in ("gallery", "ema") for kind in ("warm", "cold")}
    kernels = {key: Loop(f"{loop.label} kernel") for key, loop in loops.items()}
    infer_ms = []
    for rep in range(args.repeats):
        for (mode, kind), loop in loops.items():
            tracker = make_ours(mode, settings).warmup()
            with KernelClock() as kernel:
                loop.add(time_updates(lambda f: tracker.update_arrays(f.xyxy, f.scores, f.embeddings), subset,
                                      total=n, before=infer if kind == "cold" else None,
                                      desc=f"{mode} {kind} {rep + 1}/{args.repeats}", progress=args.progress))
            kernels[mode, kind].add(np.array(kernel.times_ms))
        t0 = time.thread_time_ns()
        infer()
        infer_ms.append((time.thread_time_ns() - t0) / 1e6)
    report.results["cache_cold"] = {
        "model": model_name, "frames": n, "inference_ms": float(np.median(infer_ms)),
        **{f"{mode}_{kind}": loop.summary() for (mode, kind), loop in loops.items()},
        **{f"{mode}_{kind}_kernel": loop.summary() for (mode, kind), loop in kernels.items()},
    }
    emit(f"## Cache-cold loop: MOT17-04, first {n} frames, one ONNX Runtime inference between updates "
         f"({model_name}, {np.median(infer_ms):.1f} ms CPU each), CPU ms per update")
    emit()
    emit("Kernel: the time inside the one compiled call; glue: the rest of `update_arrays` (Python, "
         "numpy and Numba's dispatch).")
    emit()
    rows = []
    for mode in ("gallery", "ema"):
        warm, cold = loops[mode, "warm"], loops[mode, "cold"]
        k_warm, k_cold = kernels[mode, "warm"].median(), kernels[mode, "cold"].median()
        ratio = cold.median() / warm.median()
        rows.append([mode, f"{warm.median():.4f}", f"{cold.median():.4f}", f"{ratio:.2f}", f"{cold.p95():.4f}",
                     f"{k_warm:.4f} / {k_cold:.4f}", f"{warm.median() - k_warm:.4f} / {cold.median() - k_cold:.4f}"])
        report.target(TARGETS[mode][0], ratio, TARGET_RATIO, "lower")
    report.table(["mode", "warm median ms", "cold median ms", "cold / warm", "cold p95 ms", "kernel warm / cold ms",
                  "glue warm / cold ms"], rows)
