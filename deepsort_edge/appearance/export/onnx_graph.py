"""From a torch feature model to a clean ONNX graph: export, folding, float16, metadata.

The steps every export here shares (:mod:`deepsort_edge.appearance.export.exporter`
for timm and OSNet models, :mod:`deepsort_edge.appearance.export.torch_module` for
any torch module): :func:`torch_export` writes the graph with input
:data:`INPUT_NAME` ``[N, 3, H, W]`` and output :data:`OUTPUT_NAME` ``[N, D]``;
:func:`fold_constants` and :func:`drop_unused_opsets` leave a small graph any
ONNX Runtime loads; :func:`set_metadata` writes the preprocessing keys;
:func:`convert_float16` and :func:`freeze_same_padding` prepare particular
models. torch, timm and onnx (the export extra) are imported only inside the
functions.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import onnx
    import torch

__all__ = [
    "INPUT_NAME",
    "OUTPUT_NAME",
    "convert_float16",
    "drop_unused_opsets",
    "fold_constants",
    "freeze_same_padding",
    "set_metadata",
    "torch_export",
]

INPUT_NAME = "images"
OUTPUT_NAME = "features"


def freeze_same_padding(model: torch.nn.Module, input_size: tuple[int, int]) -> int:
    """Replace TensorFlow-style dynamic 'SAME' convolutions with static padding.

    timm's ``Conv2dSame`` computes its padding from the input shape on every
    call, which the ONNX exporter turns into Shape/Ceil/Pad arithmetic. With a
    fixed input size the padding is a constant, so ONNX Runtime can fold it
    into the convolution and quantisation sees a plain Conv.

    Returns:
        How many layers were replaced.
    """
    import torch
    import torch.nn.functional as F
    from timm.layers.conv2d_same import Conv2dSame

    seen: dict[str, tuple[int, int]] = {}
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, Conv2dSame):
            hooks.append(
                module.register_forward_pre_hook(
                    lambda _m, args, name=name: seen.__setitem__(name, tuple(args[0].shape[-2:]))
                )
            )
    if not hooks:
        return 0
    with torch.no_grad():
        model(torch.zeros(1, 3, *input_size))
    for hook in hooks:
        hook.remove()

    class StaticPadConv(torch.nn.Module):
        def __init__(self, conv: torch.nn.Conv2d, pads: tuple[int, int, int, int]) -> None:
            super().__init__()
            self.conv, self.pads = conv, pads

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            c = self.conv
            x = F.pad(x, self.pads)
            return F.conv2d(x, c.weight, c.bias, c.stride, 0, c.dilation, c.groups)

    for name, (h, w) in seen.items():
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        conv = getattr(parent, child)
        pads = []
        for size, k, s, d in zip(
            (w, h), conv.kernel_size[::-1], conv.stride[::-1], conv.dilation[::-1], strict=True
        ):
            total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads += [total // 2, total - total // 2]
        setattr(parent, child, StaticPadConv(conv, tuple(pads)))
    return len(seen)


def convert_float16(model: onnx.ModelProto) -> onnx.ModelProto:
    """Convert a float32 ONNX graph to float16 compute, keeping a float32 input and output.

    Uses ONNX Runtime's converter (``onnxruntime.transformers``): it keeps
    operators without float16 kernels and size/scale inputs in float32 and
    re-infers the value types. ``keep_io_types`` puts a Cast after the graph
    input and before the output, so the model's interface (and every caller)
    stays float32.

    Args:
        model: float32 model; not modified.

    Returns:
        A new float16 model, its nodes in topological order.
    """
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    copy = onnx.ModelProto.FromString(model.SerializeToString())
    half = convert_float_to_float16(copy, keep_io_types=True)
    # The converter appends the input Casts after the nodes that read them.
    OnnxModel.graph_topological_sort(half.graph)
    return half


def set_metadata(model: onnx.ModelProto, metadata: Mapping[str, str]) -> None:
    """Write ``metadata`` into the model's ``metadata_props``, replacing entries of the same key."""
    existing = {p.key: p for p in model.metadata_props}
    for key, value in metadata.items():
        if key in existing:
            existing[key].value = value
        else:
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value


def fold_constants(path: Path, workdir: Path) -> Path:
    """Let ONNX Runtime fold constants and apply its portable (basic) fusions.

    The TorchScript exporter leaves shape arithmetic for static paddings in
    the graph; folding it here keeps the shipped file small and readable.
    Basic-level rewrites produce only standard ONNX operators.
    """
    from deepsort_edge.appearance.runtime import import_onnxruntime

    ort = import_onnxruntime()

    folded = workdir / "folded.onnx"
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(folded)
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return folded


def drop_unused_opsets(model: onnx.ModelProto) -> None:
    """Remove opset imports no node uses (ONNX Runtime adds all it knows when saving).

    Unused imports of newer domain versions would stop older runtimes loading the file.
    """
    used = {node.domain for node in model.graph.node} | {""}
    keep = [op for op in model.opset_import if op.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(keep)


def torch_export(
    model: torch.nn.Module, input_size: tuple[int, int], path: Path, opset: int
) -> None:
    """``torch.onnx.export`` of ``model`` (output flattened to ``[N, D]``) with a dynamic batch axis, to ``path``."""
    import inspect

    import torch

    class Flatten(torch.nn.Module):
        # Some backbones return [N, C, 1, 1]; the embedder expects [N, D].
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.flatten(self.inner(x), 1)

    dummy = torch.zeros(2, 3, *input_size)  # batch 2 so nothing specialises on batch 1
    kwargs: dict[str, Any] = {
        "input_names": [INPUT_NAME],
        "output_names": [OUTPUT_NAME],
        "dynamic_axes": {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        "opset_version": opset,
        "do_constant_folding": True,
    }
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        # The TorchScript exporter needs no onnxscript and handles timm conv nets well.
        kwargs["dynamo"] = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.no_grad():
            torch.onnx.export(Flatten(model).eval(), (dummy,), str(path), **kwargs)


def traced_graph(
    model: torch.nn.Module, input_size: tuple[int, int], opset: int, workdir: Path, doc_string: str
) -> onnx.ModelProto:
    """Trace ``model`` (:func:`torch_export`), fold constants, drop unused opsets and check the graph.

    The steps every torch -> ONNX route shares; the result is labelled as ours
    (``producer_name``) with ``doc_string``. Temporary files go to ``workdir``.
    """
    import onnx

    traced = workdir / "traced.onnx"
    torch_export(model, input_size, traced, opset)
    proto = onnx.load(str(fold_constants(traced, workdir)))
    drop_unused_opsets(proto)
    onnx.checker.check_model(proto)
    proto.producer_name = "deepsort-edge"
    proto.doc_string = doc_string
    return proto
