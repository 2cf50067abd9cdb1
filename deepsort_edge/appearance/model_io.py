"""What an appearance model takes and gives: its input, preprocessing and feature output.

:func:`read_model_io` reads a session's contract (the arguments, else the
model's deepsort-edge metadata, else its static shapes) into a
:class:`ModelIO`; :func:`run_model` runs one batch and checks that it gave one
feature row per crop; :func:`l2_normalise` makes the rows comparable. The
``check_*`` functions validate preprocessing arguments with errors naming them.

Example:
    >>> import numpy as np
    >>> l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    array([[0.6       , 0.8       ],
           [0.70710677, 0.70710677]], dtype=float32)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deepsort_edge.appearance.model_metadata import decode_metadata
from deepsort_edge.appearance.preprocess import IMAGENET_MEAN, IMAGENET_STD

if TYPE_CHECKING:
    import onnxruntime as ort

__all__ = [
    "MAX_INPUT_SIDE",
    "ModelError",
    "ModelIO",
    "check_color_order",
    "check_output_shape",
    "check_size",
    "check_triple",
    "l2_normalise",
    "read_model_io",
    "run_model",
]


#: Largest model input side: re-id inputs are a few hundred pixels; a batch of
#: larger crops would need gigabytes.
MAX_INPUT_SIDE = 1024


class ModelError(ValueError):
    """The appearance model gave output that cannot be features: one row of ``D >= 1`` values per crop."""


def l2_normalise(features: np.ndarray) -> np.ndarray:
    """Row-normalise; rows with zero or non-finite norm get the constant unit vector.

    ReLU-capped backbones can output all zeros for a flat crop (a 1-pixel or
    uniform window); the constant vector ``1/sqrt(D)`` keeps such rows finite
    and unit-norm, close to other featureless crops and far from textured ones.
    """
    features = features.astype(np.float32, copy=False)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    bad = ~np.isfinite(norms[:, 0]) | (norms[:, 0] < 1e-12)
    safe = np.where(bad[:, None], 1.0, norms)
    out = features / safe
    if bad.any():
        if not np.isfinite(features[bad]).all():
            warnings.warn(
                f"the appearance model returned non-finite values for {int(bad.sum())} crop(s); "
                "using the constant unit vector for them",
                RuntimeWarning,
                stacklevel=3,
            )
        out[bad] = np.float32(1.0 / math.sqrt(features.shape[1]))
    return out


def check_triple(value: Sequence[float], name: str) -> tuple[float, float, float]:
    """``value`` as 3 finite floats (``name`` "std": also positive); TypeError/ValueError naming ``name``."""
    try:
        triple = tuple(float(v) for v in value)
    except TypeError as exc:
        raise TypeError(f"{name} must be a sequence of 3 numbers, got {value!r}") from exc
    if len(triple) != 3 or not all(math.isfinite(v) for v in triple):
        raise ValueError(f"{name} must be 3 finite numbers, got {value!r}")
    if name == "std" and any(v <= 0 for v in triple):
        raise ValueError(f"std must be positive, got {value!r}")
    return triple  # type: ignore[return-value]


def check_color_order(value: object) -> str:
    """``"RGB"`` or ``"BGR"`` (any case), upper-cased; else a ValueError."""
    if not isinstance(value, str) or value.upper() not in ("RGB", "BGR"):
        raise ValueError(f"color_order must be 'RGB' or 'BGR', got {value!r}")
    return value.upper()


def check_size(value: Sequence[int], name: str) -> tuple[int, int]:
    """``value`` as ``(height, width)`` ints with sides in ``[1, MAX_INPUT_SIDE]``; else TypeError/ValueError naming ``name``."""
    try:
        size = tuple(int(v) for v in value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise TypeError(f"{name} must be (height, width), got {value!r}") from exc
    if len(size) != 2 or min(size) < 1 or max(size) > MAX_INPUT_SIDE:
        raise ValueError(f"{name} must be (height, width) with sides in [1, {MAX_INPUT_SIDE}], got {value!r}")
    return size  # type: ignore[return-value]


def check_output_shape(shape: list, model: str) -> None:
    """Features are ``[N, D]`` or ``[N, D, 1, 1]``; a map such as ``[N, 8, 8]`` is no feature vector."""
    if len(shape) > 2 and any(d != 1 for d in shape[2:] if isinstance(d, int)):
        raise ModelError(
            f"{model}: the model's output has shape {shape}; expected [N, D] or [N, D, 1, 1] "
            "(a feature map needs pooling before it can be compared)"
        )


@dataclass(frozen=True)
class ModelIO:
    """A model's contract, as :func:`read_model_io` found it.

    Attributes:
        input_name: the input tensor's name.
        input_dtype: ``np.float32`` or ``np.float16``.
        output_name: the feature output's name.
        input_size: crop ``(height, width)``.
        mean: per-channel mean of ``[0, 1]`` pixels, in ``color_order``.
        std: per-channel standard deviation.
        color_order: ``"RGB"`` or ``"BGR"``.
        fixed_batch: the batch size a model with a fixed batch axis takes, else None.
        feature_dim: features per crop.
        source_model: the model's name (metadata ``source_model``, else the file name).
        metadata: the decoded deepsort-edge metadata (empty for third-party files).
    """

    input_name: str
    input_dtype: type
    output_name: str
    input_size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    color_order: str
    fixed_batch: int | None
    feature_dim: int
    source_model: str
    metadata: dict[str, Any] = field(default_factory=dict)


def run_model(
    session: ort.InferenceSession, input_name: str, output_name: str, batch: np.ndarray, model_name: str
) -> np.ndarray:
    """One inference call: ``(N, 3, H, W)`` input -> ``(N, D)`` raw features.

    Raises:
        ModelError: the output is not one row per crop (``[N, D]`` or ``[N, D, 1, 1]``).
    """
    out = np.asarray(session.run([output_name], {input_name: batch})[0])
    # Reshaping a wrong batch would silently give crops each other's features.
    check_output_shape(list(out.shape), model_name)
    if out.ndim == 0 or out.shape[0] != len(batch):
        raise ModelError(
            f"{model_name}: the model returned output of shape {out.shape} for "
            f"{len(batch)} crops; expected one row per crop ([{len(batch)}, D] or "
            f"[{len(batch)}, D, 1, 1])"
        )
    return out.reshape(len(batch), -1)


def read_model_io(
    session: ort.InferenceSession,
    model_path: Path,
    input_size: tuple[int, int] | None,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    color_order: str | None,
) -> ModelIO:
    """What a model session takes and gives, from the arguments, else its metadata, else its shapes.

    Args:
        session: the model's ONNX Runtime session.
        model_path: its file (named in errors and warnings).
        input_size, mean, std, color_order: the caller's values, or None to
            read them from the model's deepsort-edge metadata (mean/std:
            else ImageNet's, with a warning; colour order: else RGB).

    Raises:
        ValueError: the model's input is not one ``[N, 3, H, W]`` float
            tensor, or ``input_size`` is missing or contradicts its shape.
        ModelError: the output is no ``[N, D]`` (or ``[N, D, 1, 1]``) feature.
    """
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        raise ValueError(
            f"model_path: expected a model with one input [N, 3, H, W], got {len(inputs)} inputs "
            f"{[i.name for i in inputs]}"
        )
    spec = inputs[0]
    shape = list(spec.shape)
    if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3):
        raise ValueError(
            f"model_path: expected the input {spec.name!r} to be [N, 3, H, W], got shape {shape}"
        )
    if spec.type not in ("tensor(float)", "tensor(float16)"):
        raise ValueError(
            f"model_path: expected a float input, got {spec.type} for {spec.name!r}"
        )
    meta = decode_metadata(session.get_modelmeta().custom_metadata_map)
    if input_size is None:
        if "input_size" in meta:
            input_size = meta["input_size"]
        elif isinstance(shape[2], int) and isinstance(shape[3], int):
            input_size = (shape[2], shape[3])
        else:
            raise ValueError(
                "input_size: the model has dynamic H, W and no deepsort-edge metadata; "
                "pass input_size=(height, width)"
            )
    input_size = check_size(input_size, "input_size")
    for axis, side in ((2, input_size[0]), (3, input_size[1])):
        if isinstance(shape[axis], int) and shape[axis] != side:
            raise ValueError(
                f"input_size {input_size} does not match the model input shape {shape}"
            )
    if mean is None or std is None:
        if ("mean" not in meta or "std" not in meta) and (mean is None and std is None):
            warnings.warn(
                f"{model_path.name} has no mean/std metadata; assuming ImageNet statistics "
                "(pass mean= and std= to silence this)",
                UserWarning,
                stacklevel=3,
            )
    mean = check_triple(mean if mean is not None else meta.get("mean", IMAGENET_MEAN), "mean")
    std = check_triple(std if std is not None else meta.get("std", IMAGENET_STD), "std")
    color_order = check_color_order(
        color_order if color_order is not None else meta.get("color_order", "RGB")
    )
    input_dtype = np.float16 if spec.type == "tensor(float16)" else np.float32
    # A model exported with a fixed batch dimension can only take that many crops a call.
    fixed_batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
    out_shape = list(outputs[0].shape)
    check_output_shape(out_shape, model_path.name)
    dim = None
    if len(out_shape) >= 2 and all(isinstance(d, int) for d in out_shape[1:]):
        dim = int(np.prod(out_shape[1:]))
    elif "feature_dim" in meta:
        dim = int(meta["feature_dim"])
    if dim is None:
        probe = np.zeros((1, 3, *input_size), dtype=input_dtype)
        dim = run_model(session, spec.name, outputs[0].name, probe, model_path.name).shape[1]
    if dim < 1:
        raise ModelError(f"{model_path.name}: the model gives {dim} features per crop; expected >= 1")
    return ModelIO(
        input_name=spec.name,
        input_dtype=input_dtype,
        output_name=outputs[0].name,
        input_size=input_size,
        mean=mean,
        std=std,
        color_order=color_order,
        fixed_batch=fixed_batch,
        feature_dim=dim,
        source_model=str(meta.get("source_model", model_path.name)),
        metadata=meta,
    )
