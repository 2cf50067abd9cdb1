"""What an export wrote and how well ONNX Runtime's features match torch's.

:class:`ExportReport` is what :func:`~deepsort_edge.appearance.export.exporter.export_timm`,
``export_osnet`` and ``export_module`` return: the file (size, SHA-256), the
model and its preprocessing metadata, and the agreement of ONNX Runtime with
torch on the same crops (:func:`compare_with_torch`).

Example:
    >>> import numpy as np
    >>> cosines(np.array([[1.0, 0.0], [0.0, 2.0]]), np.array([[1.0, 1.0], [0.0, 1.0]])).round(4)
    array([0.7071, 1.    ])
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deepsort_edge.appearance.export.onnx_graph import INPUT_NAME, OUTPUT_NAME
from deepsort_edge.appearance.preprocess import preprocess_images

if TYPE_CHECKING:
    import torch

__all__ = ["ExportReport", "compare_with_torch", "cosines", "file_sha256"]

#: Crops per inference call while comparing.
_CHUNK = 64


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_timm` wrote and how well it matches torch.

    Attributes:
        output: path of the ONNX file.
        model_name: timm model name (or OSNet width, or the name given to
            :func:`export_module`).
        precision: ``"fp32"``, ``"fp16"`` or ``"int8"``.
        input_size: model input ``(height, width)``.
        opset: ONNX opset.
        feature_dim: length of the feature vector.
        file_size: bytes of the ONNX file.
        sha256: hex digest of the ONNX file.
        checkpoint: checkpoint path, or None for timm's pretrained/random weights.
        checkpoint_sha256: hex digest of the checkpoint file, or None.
        ignored_keys: checkpoint keys not loaded (the classifier head).
        metadata: the metadata written into the file.
        num_verify_crops: crops used for verification (0 when skipped).
        verify_source: where the verification crops came from.
        max_abs_error: largest absolute difference between ONNX Runtime and
            torch (fp32) raw features, or None when verification was skipped.
        min_cosine: smallest cosine similarity between ONNX Runtime and torch
            features over the verification crops.
        mean_cosine: mean of the same.
    """

    output: Path
    model_name: str
    precision: str
    input_size: tuple[int, int]
    opset: int
    feature_dim: int
    file_size: int
    sha256: str
    checkpoint: str | None = None
    checkpoint_sha256: str | None = None
    ignored_keys: tuple[str, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    num_verify_crops: int = 0
    verify_source: str = ""
    max_abs_error: float | None = None
    min_cosine: float | None = None
    mean_cosine: float | None = None

    def summary(self) -> str:
        """Human-readable multi-line summary."""
        lines = [
            f"wrote {self.output} ({self.file_size / 1e6:.2f} MB, sha256 {self.sha256})",
            f"  model {self.model_name}, {self.precision}, input {self.input_size[0]}x"
            f"{self.input_size[1]}, opset {self.opset}, feature dim {self.feature_dim}",
        ]
        if self.checkpoint:
            lines.append(f"  checkpoint {self.checkpoint} (sha256 {self.checkpoint_sha256})")
        if self.max_abs_error is not None:
            lines.append(
                f"  ONNX Runtime vs torch fp32 on {self.num_verify_crops} {self.verify_source} crops: "
                f"max abs error {self.max_abs_error:.3g}, min cosine {self.min_cosine:.6f}, "
                f"mean cosine {self.mean_cosine:.6f}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict of all fields."""
        data = asdict(self)
        data["output"] = str(self.output)
        data["input_size"] = list(self.input_size)
        data["ignored_keys"] = list(self.ignored_keys)
        return data


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two ``(N, D)`` arrays (zero rows count as unit length)."""
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return np.sum(a * b, axis=1)


def compare_with_torch(
    model: torch.nn.Module,
    path: Path,
    crops: Sequence[np.ndarray],
    input_size: tuple[int, int],
    mean: Sequence[float],
    std: Sequence[float],
) -> dict[str, Any]:
    """Features of the same crops from torch (``model``) and from ONNX Runtime (the file at ``path``).

    Args:
        model: the torch module that was exported, in eval mode.
        path: the exported ONNX file (input :data:`INPUT_NAME`, output :data:`OUTPUT_NAME`).
        crops: BGR uint8 crops.
        input_size, mean, std: the preprocessing the model takes (RGB order).

    Returns:
        The report fields ``num_verify_crops``, ``max_abs_error`` (raw
        features), ``min_cosine`` and ``mean_cosine``.
    """
    import torch

    from deepsort_edge.appearance.runtime import import_onnxruntime

    ort = import_onnxruntime()
    batch = preprocess_images(list(crops), input_size, mean, std)
    chunks = [batch[i : i + _CHUNK] for i in range(0, len(batch), _CHUNK)]
    with torch.no_grad():
        reference = np.concatenate([model(torch.from_numpy(c)).reshape(len(c), -1).numpy() for c in chunks])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    raw = np.concatenate([session.run([OUTPUT_NAME], {INPUT_NAME: c})[0].reshape(len(c), -1) for c in chunks])
    cos = cosines(raw.astype(np.float64), reference.astype(np.float64))
    return {
        "num_verify_crops": len(batch),
        "max_abs_error": float(np.max(np.abs(raw - reference))),
        "min_cosine": float(cos.min()),
        "mean_cosine": float(cos.mean()),
    }
