"""Tiny ONNX detectors built in the tests: known raw outputs in each layout, no downloads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def constant_detector(
    path: Path,
    outputs: Sequence[np.ndarray],
    input_size: tuple[int, int] = (64, 64),
    metadata: Mapping[str, str] | None = None,
    output_names: Sequence[str] | None = None,
    dynamic: bool = False,
) -> Path:
    """An ONNX model with one ``[1, 3, H, W]`` input whose outputs are ``outputs`` whatever the image.

    Each output is ``constant + 0 * mean(image)``, so the graph reads its input as a
    real detector does. ``dynamic`` declares the output shapes symbolic, as many
    exports do, so the detector must run the model to see them.
    """
    from onnx import TensorProto, helper, numpy_helper

    height, width = input_size
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], axes=[0, 1, 2, 3], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
    ]
    initializers = [numpy_helper.from_array(np.zeros((), np.float32), "zero")]
    names = list(output_names or [f"output{i}" for i in range(len(outputs))])
    graph_outputs = []
    for index, (name, value) in enumerate(zip(names, outputs)):
        value = np.asarray(value, dtype=np.float32)
        initializers.append(numpy_helper.from_array(value, f"raw{index}"))
        nodes.append(helper.make_node("Add", [f"raw{index}", "nothing"], [name]))
        shape = [f"d{index}_{axis}" for axis in range(value.ndim)] if dynamic else list(value.shape)
        graph_outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
    graph = helper.make_graph(
        nodes, "constant_detector",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, height, width])],
        graph_outputs, initializers,
    )
    return _save(graph, path, metadata)


def _save(graph, path: Path, metadata: Mapping[str, str] | None) -> Path:
    """The graph as an opset-13 model with ``metadata`` in its metadata_props, checked and saved."""
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def yolov8_raw(rng: np.random.Generator, candidates: int, classes: int, input_size: tuple[int, int]) -> np.ndarray:
    """A ``[1, 4 + C, N]`` raw YOLOv8 output: random centre boxes inside the input, class scores in [0, 1]."""
    height, width = input_size
    cx = rng.uniform(0, width, candidates)
    cy = rng.uniform(0, height, candidates)
    w = rng.uniform(2, width / 2, candidates)
    h = rng.uniform(2, height / 2, candidates)
    scores = rng.uniform(0, 1, (classes, candidates))
    return np.concatenate([np.stack([cx, cy, w, h]), scores])[None]


def conv_detector(path: Path, seed: int = 0, metadata: Mapping[str, str] | None = None) -> Path:
    """A small real detector graph (random weights): 8x8 stride-8 convolution -> ``[1, 6, 64]`` yolov8 layout.

    Input ``[1, 3, 64, 64]``; per output cell: sigmoid of the convolution, the
    first four channels scaled to pixels (cx, cy, w, h), the last two class scores.
    """
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weights = rng.normal(0, 0.05, (6, 3, 8, 8)).astype(np.float32)
    bias = rng.normal(0, 0.5, 6).astype(np.float32)
    scale = np.array([64, 64, 32, 32, 1, 1], np.float32).reshape(1, 6, 1, 1)
    nodes = [
        helper.make_node("Conv", ["images", "w", "b"], ["conv"], kernel_shape=[8, 8], strides=[8, 8]),
        helper.make_node("Sigmoid", ["conv"], ["squashed"]),
        helper.make_node("Mul", ["squashed", "scale"], ["scaled"]),
        helper.make_node("Reshape", ["scaled", "shape"], ["output0"]),
    ]
    initializers = [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(bias, "b"),
                    numpy_helper.from_array(scale, "scale"),
                    numpy_helper.from_array(np.array([1, 6, 64], np.int64), "shape")]
    graph = helper.make_graph(
        nodes, "conv_detector",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 6, 64])], initializers,
    )
    return _save(graph, path, metadata)
