"""Torch appearance models (a module or a checkpoint file) as cached ONNX files.

roboflow trackers 2.0.1 ran a user's ``torch.nn.Module`` (or a ``.pt``/``.pth``
file holding one) on torch. deepsort-edge runs ONNX Runtime only, so
:func:`onnx_for_torch_model` exports such a model once and keeps the file in a
cache folder named by content: the weights and architecture of a module (or
the bytes of a checkpoint file), the input size and the preprocessing. A
second request for the same content finds the file and exports nothing; for a
checkpoint path it does not even import torch.

The export reuses :mod:`deepsort_edge.appearance.export.exporter`'s steps (TorchScript
export with a dynamic batch axis, constant folding, ``onnx.checker``, the
deepsort-edge metadata) and checks ONNX Runtime against torch on synthetic
crops before the file enters the cache.

Needs torch and onnx (the export extra) whenever something must be exported.

Example:
    >>> import torch  # doctest: +SKIP
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.AdaptiveAvgPool2d(1))  # doctest: +SKIP
    >>> path = onnx_for_torch_model(net, "~/.cache/deepsort-edge/torch", (128, 128),
    ...                             (0.0,) * 3, (1.0,) * 3, "BGR")  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deepsort_edge.appearance.export.calibration import synthetic_crops
from deepsort_edge.appearance.export.exporter import require_export_extra
from deepsort_edge.appearance.export.onnx_graph import set_metadata, traced_graph
from deepsort_edge.appearance.export.report import cosines, file_sha256
from deepsort_edge.appearance.model_metadata import encode_metadata
from deepsort_edge.appearance.preprocess import preprocess_images

if TYPE_CHECKING:
    import torch

__all__ = [
    "MIN_COSINE",
    "TORCH_EXTRA_HINT",
    "TORCH_SUFFIXES",
    "is_torch_checkpoint",
    "is_torch_module",
    "load_torch_checkpoint",
    "onnx_for_torch_model",
    "torch_model_digest",
]

#: File suffixes read as torch files (a pickled ``torch.nn.Module``).
TORCH_SUFFIXES = (".pt", ".pth")
#: How to get torch and onnx when a torch model must be exported.
TORCH_EXTRA_HINT = 'pip install "deepsort-edge[export]"'
#: Smallest cosine between ONNX Runtime's and torch's features accepted for the cache.
MIN_COSINE = 0.999
# Bumped when the export or the digest changes, so stale cache entries are never read.
_FORMAT = 1


def is_torch_module(obj: object) -> bool:
    """Whether ``obj`` is a ``torch.nn.Module``, without importing torch.

    A module can only exist once its caller has imported torch, so a missing
    ``torch`` in ``sys.modules`` means no.
    """
    torch_module = sys.modules.get("torch")
    return torch_module is not None and isinstance(obj, torch_module.nn.Module)


def is_torch_checkpoint(path: str | os.PathLike[str]) -> bool:
    """Whether a path names a torch file rather than an ONNX model.

    ``.pt`` and ``.pth`` are torch files; any other existing file is one when
    it starts as ``torch.save`` writes (a zip archive, or a pickle from
    torch < 1.6), since roboflow trackers 2.0.1 read every path with
    ``torch.load`` (``.bin``, ``.ckpt``...). An ONNX file starts with a
    protobuf field tag instead.
    """
    path = Path(path).expanduser()
    if path.suffix.lower() in TORCH_SUFFIXES:
        return True
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError:
        return False
    return head == b"PK\x03\x04" or head[:1] == b"\x80"


def _require_torch_and_onnx(what: str) -> None:
    try:
        require_export_extra(("torch", "onnx"))
    except ImportError as exc:
        raise ImportError(f"{what} must be exported to ONNX once: {exc}; or: {TORCH_EXTRA_HINT}") from exc


def load_torch_checkpoint(path: str | os.PathLike[str]) -> torch.nn.Module:
    """Load the ``torch.nn.Module`` stored in a ``.pt``/``.pth`` file.

    Read with ``torch.load(weights_only=False)``, as roboflow trackers 2.0.1
    did. That unpickles arbitrary objects, so load only files you trust.

    Args:
        path: the file.

    Returns:
        The module, on the CPU.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if the file holds a state dict or anything but a module.
    """
    import torch

    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"model_or_checkpoint_path: torch checkpoint not found: {path}")
    try:
        loaded = torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises pickle, zip and runtime errors for unreadable files
        raise ValueError(
            f"model_or_checkpoint_path: torch.load cannot read {path} (corrupt, or not a torch file): {exc}"
        ) from exc
    if isinstance(loaded, torch.nn.Module):
        return loaded
    hint = ""
    if isinstance(loaded, dict):
        hint = (
            "; it holds a state dict (weights without the architecture): build the model, load "
            "the weights and pass the module, or use DeepSORTFeatureExtractor.from_timm(name, "
            "checkpoint=path) for a timm architecture"
        )
    raise ValueError(
        f"model_or_checkpoint_path: {path} holds a {type(loaded).__name__}, not a "
        f"torch.nn.Module{hint}"
    )


def _refuse_torchscript(module: torch.nn.Module) -> None:
    import torch

    if isinstance(module, torch.jit.ScriptModule):
        # The exporter wraps the module to flatten its output, which a TorchScript module refuses.
        raise ValueError(
            f"model_or_checkpoint_path: {type(module).__name__} is a TorchScript module; pass the "
            "torch.nn.Module it was made from, or export it to ONNX yourself and pass the .onnx file"
        )


def _code_fingerprint(module: torch.nn.Module) -> str:
    """What the architecture computes: class names, layer settings and forward code."""
    parts = [repr(module)]
    seen: set[type] = set()
    for sub in module.modules():
        cls = type(sub)
        if cls in seen:
            continue
        seen.add(cls)
        parts.append(f"{cls.__module__}.{cls.__qualname__}")
        forward = getattr(cls.forward, "__code__", None)
        if forward is not None:
            parts.append(forward.co_code.hex())
            parts.append(repr(forward.co_consts))
            parts.append(repr(forward.co_names))
    return "\n".join(parts)


def torch_model_digest(model: torch.nn.Module | str | os.PathLike[str]) -> str:
    """SHA-256 hex digest naming a module's content, or a checkpoint file's bytes.

    For a module it covers every parameter and buffer (name, dtype, shape,
    bytes) and its architecture (layer reprs, class names, forward bytecode),
    so two modules with equal weights but different code differ. Changing a
    weight in place changes the digest.

    Example:
        >>> torch_model_digest("reid.pt")[:12]  # doctest: +SKIP
        '3f9a0c1b2d4e'
    """
    if not is_torch_module(model):
        return file_sha256(Path(model).expanduser())
    import torch

    digest = hashlib.sha256(_code_fingerprint(model).encode())  # type: ignore[arg-type]
    for name, tensor in model.state_dict().items():  # type: ignore[union-attr]
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(flat.view(dtype=torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def onnx_for_torch_model(
    model: torch.nn.Module | str | os.PathLike[str],
    cache_dir: str | os.PathLike[str],
    input_size: tuple[int, int],
    mean: Sequence[float],
    std: Sequence[float],
    color_order: str,
    opset: int = 17,
) -> Path:
    """The cached ONNX export of a torch module or ``.pt``/``.pth`` file; exported on a miss.

    The file name carries a digest of the content (:func:`torch_model_digest`),
    the input size, the preprocessing and the opset, so any change exports a
    new file; concurrent callers never see half a file (written aside, then
    renamed).

    Args:
        model: a ``torch.nn.Module`` (exported in eval mode; its training
            flag is restored afterwards) or the path of a file that
            :func:`load_torch_checkpoint` reads.
        cache_dir: folder of the cached files; created when missing.
        input_size: crop ``(height, width)``.
        mean: per-channel mean in ``color_order``, written into the metadata.
        std: per-channel standard deviation, the same.
        color_order: ``"RGB"`` or ``"BGR"``, the channel order the model takes.
        opset: ONNX opset.

    Returns:
        Path of the ONNX file.

    Raises:
        ImportError: on a cache miss without torch or onnx (names the extra).
        ValueError: if ONNX Runtime's features differ from torch's (cosine
            below :data:`MIN_COSINE`), e.g. a forward with data-dependent
            control flow that tracing cannot capture.
    """
    is_module = is_torch_module(model)
    what = f"the torch module {type(model).__name__}" if is_module else f"the torch file {model}"
    if is_module:
        _refuse_torchscript(model)  # type: ignore[arg-type]
    elif not Path(model).expanduser().is_file():  # type: ignore[arg-type]
        raise FileNotFoundError(f"model_or_checkpoint_path: torch checkpoint not found: {model}")
    settings = {
        "format": _FORMAT,
        "content": torch_model_digest(model),
        "input_size": [int(v) for v in input_size],
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "color_order": color_order,
        "opset": int(opset),
    }
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:20]
    name = type(model).__name__ if is_module else Path(model).stem  # type: ignore[arg-type]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name)
    folder = Path(cache_dir).expanduser()
    path = folder / f"{name}_{input_size[0]}x{input_size[1]}_{key}.onnx"
    if path.is_file():
        return path
    _require_torch_and_onnx(what)
    module = model if is_module else load_torch_checkpoint(model)  # type: ignore[arg-type]
    _refuse_torchscript(module)  # type: ignore[arg-type]
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        _export(module, tmp, name, (int(input_size[0]), int(input_size[1])), mean, std, color_order, opset)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _export(
    module: torch.nn.Module,
    output: Path,
    name: str,
    input_size: tuple[int, int],
    mean: Sequence[float],
    std: Sequence[float],
    color_order: str,
    opset: int,
) -> None:
    """Export in eval mode (on the CPU), verify ONNX Runtime against torch, write ``output``."""
    import onnx
    import torch

    from deepsort_edge.appearance.runtime import import_onnxruntime

    ort = import_onnxruntime()
    if any(t.device.type != "cpu" for t in (*module.parameters(), *module.buffers())):
        module = copy.deepcopy(module).cpu()  # the exporter traces on the CPU; the caller's copy stays put
    batch = preprocess_images(synthetic_crops(8), input_size, mean, std, color_order)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            reference = module(torch.from_numpy(batch)).reshape(len(batch), -1).float().numpy()
        with tempfile.TemporaryDirectory(prefix="deepsort-edge-torch-") as tmp:
            proto = traced_graph(module, input_size, opset, Path(tmp), f"{name} appearance features (exported from torch)")
    finally:
        module.train(was_training)
    feature_dim = int(reference.shape[1])
    set_metadata(proto, encode_metadata(input_size, mean, std, color_order, feature_dim, name, "fp32"))
    onnx.save(proto, str(output))
    session = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    features = session.run(None, {session.get_inputs()[0].name: batch})[0].reshape(len(batch), -1)
    worst = float(cosines(features.astype(np.float64), reference.astype(np.float64)).min())
    if not worst >= MIN_COSINE:
        raise ValueError(
            f"model_or_checkpoint_path: the ONNX export of {name} does not reproduce torch "
            f"(min cosine {worst:.6f} < {MIN_COSINE} on synthetic crops); a forward with "
            "data-dependent control flow cannot be traced. Export it yourself and pass the .onnx file"
        )
