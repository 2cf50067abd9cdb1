"""Static int8 of any ONNX re-identification model, checked against its float32 self.

``deepsort-edge quantize`` runs :func:`quantize_model`: ONNX Runtime's static
QDQ quantiser (through :func:`deepsort_edge.export.quantize.quantize_int8`)
calibrated on person crops, the model's preprocessing written into the int8
file, and the cosine between the two models' embeddings on held-out crops.
Needs ``onnx`` (the export extra; torch is not needed).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .export.quantize import quantize_int8

__all__ = ["QuantizeReport", "quantize_model"]

# Seen on an AVX-512 AMD EPYC, where ONNX Runtime's float32 convolutions beat its int8 ones.
_SLOWER = (
    "\nnote: on this CPU the int8 model is slower than the float32 one: for speed, keep the float32 "
    "model here (int8 may still pay off on other machines; measure there)"
)


@dataclass(frozen=True)
class QuantizeReport:
    """What :func:`quantize_model` wrote and how close int8 stays to float32."""

    output: Path
    calibration_crops: int
    verification_crops: int
    mean_cosine: float
    min_cosine: float
    fp32_crops_per_s: float
    int8_crops_per_s: float

    def summary(self) -> str:
        return (
            f"wrote {self.output}: int8 vs float32 cosine on {self.verification_crops} held-out crops "
            f"mean {self.mean_cosine:.4f}, min {self.min_cosine:.4f}; CPU speed "
            f"{self.int8_crops_per_s:,.0f} vs {self.fp32_crops_per_s:,.0f} crops/s "
            f"({self.int8_crops_per_s / self.fp32_crops_per_s:.2f}x), calibrated on {self.calibration_crops} crops"
            + (_SLOWER if self.int8_crops_per_s < self.fp32_crops_per_s else "")
        )


def quantize_model(
    model_path: str | Path,
    out_path: str | Path,
    calibration: Sequence[np.ndarray],
    verification: Sequence[np.ndarray],
    *,
    keep_float: int = 0,
    **preprocessing: Any,
) -> QuantizeReport:
    """Static QDQ int8 of any ONNX appearance model, checked by cosine against the float32 one.

    Args:
        model_path: the float32 model (one ``[N, 3, H, W]`` input, ``[N, D]`` output).
        out_path: where the int8 model goes; it carries the float32 model's
            preprocessing in its metadata, so ``from_onnx(out_path)`` needs no options.
        calibration: BGR uint8 person crops for min-max calibration.
        verification: other crops, for the cosine check and the speed numbers.
        keep_float: leading convolutions left in float32.
        **preprocessing: ``input_size``, ``mean``, ``std``, ``color_order``
            as for ``DeepSORTFeatureExtractor.from_onnx`` (default: the model's metadata).

    Raises:
        ValueError: no calibration or verification crops, a bad ``keep_float``,
            or ``out_path`` is ``model_path`` (the float32 model is never overwritten).
    """
    import tempfile

    import onnx

    from deepsort_edge.embedder import DeepSORTFeatureExtractor
    from deepsort_edge.model_metadata import encode_metadata
    from deepsort_edge.preprocess import preprocess_images

    if not calibration or not verification:
        raise ValueError("quantisation needs calibration and verification crops, got none")
    if isinstance(keep_float, bool) or not isinstance(keep_float, int) or keep_float < 0:
        raise ValueError(f"keep_float must be an int >= 0, got {keep_float!r}")
    model_path, out_path = Path(model_path), Path(out_path)
    if out_path.resolve() == model_path.resolve() or (out_path.exists() and out_path.samefile(model_path)):
        raise ValueError(f"out_path {out_path} is the float32 model itself; it would be overwritten")
    fp32 = DeepSORTFeatureExtractor.from_onnx(model_path, providers="cpu", **preprocessing)

    def batch(crops: Sequence[np.ndarray]) -> np.ndarray:
        return preprocess_images(list(crops), fp32.input_size, fp32.mean, fp32.std, fp32.color_order)

    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as workdir:
        source = model_path
        opset = next((o.version for o in onnx.load(str(model_path)).opset_import if o.domain in ("", "ai.onnx")), 0)
        if opset < 13:  # per-channel QDQ (DequantizeLinear's axis) needs opset 13
            from onnx import version_converter

            source = Path(workdir) / "opset13.onnx"
            onnx.save(version_converter.convert_version(onnx.load(str(model_path)), 13), str(source))
        quantize_int8(source, out_path, batch(calibration), Path(workdir), keep_float,
                      fp32.session.get_inputs()[0].name)
    proto = onnx.load(str(out_path))
    metadata = encode_metadata(fp32.input_size, fp32.mean, fp32.std, fp32.color_order, fp32.feature_dim,
                               model_path.name, "int8")
    existing = {p.key: p for p in proto.metadata_props}
    for key, value in metadata.items():  # the quantiser may drop metadata_props
        entry = existing[key] if key in existing else proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(out_path))

    int8 = DeepSORTFeatureExtractor.from_onnx(out_path, providers="cpu")
    held_out = batch(verification)
    speeds, features = [], []
    for extractor in (fp32, int8):
        extractor.embed_batch(held_out[:1])  # first run allocates
        start = time.perf_counter()
        features.append(extractor.embed_batch(held_out))
        speeds.append(len(held_out) / max(time.perf_counter() - start, 1e-9))
    cosine = np.einsum("ij,ij->i", features[0], features[1])  # both L2-normalised
    return QuantizeReport(out_path, len(calibration), len(verification), float(cosine.mean()),
                          float(cosine.min()), speeds[0], speeds[1])
