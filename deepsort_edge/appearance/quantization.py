"""Static int8 of any ONNX re-identification model, checked against its float32 self.

``deepsort-edge quantize`` runs :func:`quantize_model`: ONNX Runtime's static
QDQ quantiser (through :func:`deepsort_edge.appearance.export.quantize.quantize_int8`)
calibrated on person crops, the model's preprocessing written into the int8
file, and the cosine between the two models' embeddings on held-out crops.
Needs ``onnx`` (the export extra; torch is not needed).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .export.quantize import quantize_int8

__all__ = ["DetectorQuantizeReport", "QuantizeReport", "quantize_detector", "quantize_model"]

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


def _timed(run: Callable[[Any], Any], warm: Any, items: Any, count: int) -> tuple[Any, float]:
    """``run(items)`` after a warm-up ``run(warm)`` (the first run allocates): its result and ``count`` per second."""
    run(warm)
    start = time.perf_counter()
    result = run(items)
    return result, count / max(time.perf_counter() - start, 1e-9)


def _quantize_file(
    model_path: Path,
    out_path: Path,
    calibration: np.ndarray,
    input_name: str,
    keep_float: int,
    metadata: dict[str, str],
    batch_size: int = 16,
) -> None:
    """QDQ int8 of ``model_path`` (converted to opset 13 first if older) into ``out_path``, with ``metadata``."""
    import tempfile

    import onnx

    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as workdir:
        source = model_path
        opset = next((o.version for o in onnx.load(str(model_path)).opset_import if o.domain in ("", "ai.onnx")), 0)
        if opset < 13:  # per-channel QDQ (DequantizeLinear's axis) needs opset 13
            from onnx import version_converter

            source = Path(workdir) / "opset13.onnx"
            onnx.save(version_converter.convert_version(onnx.load(str(model_path)), 13), str(source))
        quantize_int8(source, out_path, calibration, Path(workdir), keep_float, input_name, batch_size)
    proto = onnx.load(str(out_path))
    existing = {p.key: p for p in proto.metadata_props}
    for key, value in metadata.items():  # the quantiser may drop metadata_props
        entry = existing[key] if key in existing else proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(out_path))


def _checked_paths(
    model_path: str | Path,
    out_path: str | Path,
    calibration: Sequence[np.ndarray],
    verification: Sequence[np.ndarray],
    keep_float: int,
    inputs: str,
) -> tuple[Path, Path]:
    """The arguments both quantisers share, checked; ``inputs`` names what the images are."""
    if not calibration or not verification:
        raise ValueError(f"quantisation needs calibration and verification {inputs}, got none")
    if isinstance(keep_float, bool) or not isinstance(keep_float, int) or keep_float < 0:
        raise ValueError(f"keep_float must be an int >= 0, got {keep_float!r}")
    model_path, out_path = Path(model_path), Path(out_path)
    if out_path.resolve() == model_path.resolve() or (out_path.exists() and out_path.samefile(model_path)):
        raise ValueError(f"out_path {out_path} is the float32 model itself; it would be overwritten")
    return model_path, out_path


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
    from deepsort_edge.appearance.embedder import DeepSORTFeatureExtractor
    from deepsort_edge.appearance.model_metadata import encode_metadata
    from deepsort_edge.appearance.preprocess import preprocess_images

    model_path, out_path = _checked_paths(model_path, out_path, calibration, verification, keep_float, "crops")
    fp32 = DeepSORTFeatureExtractor.from_onnx(model_path, providers="cpu", **preprocessing)

    def batch(crops: Sequence[np.ndarray]) -> np.ndarray:
        return preprocess_images(list(crops), fp32.input_size, fp32.mean, fp32.std, fp32.color_order)

    metadata = encode_metadata(fp32.input_size, fp32.mean, fp32.std, fp32.color_order, fp32.feature_dim,
                               model_path.name, "int8")
    _quantize_file(model_path, out_path, batch(calibration), fp32.session.get_inputs()[0].name, keep_float,
                   metadata)

    int8 = DeepSORTFeatureExtractor.from_onnx(out_path, providers="cpu")
    held_out = batch(verification)
    features, speeds = zip(*(_timed(e.embed_batch, held_out[:1], held_out, len(held_out)) for e in (fp32, int8)))
    cosine = np.einsum("ij,ij->i", features[0], features[1])  # both L2-normalised
    return QuantizeReport(out_path, len(calibration), len(verification), float(cosine.mean()),
                          float(cosine.min()), speeds[0], speeds[1])


@dataclass(frozen=True)
class DetectorQuantizeReport:
    """What :func:`quantize_detector` wrote and how well int8 finds what float32 finds."""

    output: Path
    calibration_frames: int
    verification_frames: int
    float_detections: int
    recall: float  # share of float32 detections that int8 also finds (same class, IoU >= 0.5)
    precision: float  # share of int8 detections that float32 also finds
    fp32_frames_per_s: float
    int8_frames_per_s: float

    def summary(self) -> str:
        agreement = (
            f"int8 finds {self.recall:.1%} of the {self.float_detections} float32 detections (IoU >= 0.5, same "
            f"class) and {self.precision:.1%} of its own are float32's"
            if self.float_detections
            else "float32 finds nothing there, so agreement is not measured (use frames with objects)"
        )
        return (
            f"wrote {self.output}: on {self.verification_frames} held-out frames {agreement}; "
            f"CPU speed {self.int8_frames_per_s:,.1f} vs "
            f"{self.fp32_frames_per_s:,.1f} frames/s ({self.int8_frames_per_s / self.fp32_frames_per_s:.2f}x), "
            f"calibrated on {self.calibration_frames} frames"
            + (_SLOWER if self.int8_frames_per_s < self.fp32_frames_per_s else "")
        )


def _matched(a: tuple[np.ndarray, np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray, np.ndarray]) -> int:
    """How many detections of ``a`` have a detection of ``b`` of the same class at IoU >= 0.5 (greedy)."""
    from ..tracking.boxes import iou_matrix

    if not len(a[0]) or not len(b[0]):
        return 0
    iou = iou_matrix(a[0], b[0])
    iou[a[2][:, None] != b[2][None, :]] = 0.0
    used = np.zeros(len(b[0]), bool)
    found = 0
    for row in iou:
        row = np.where(used, 0.0, row)
        best = int(row.argmax())
        if row[best] >= 0.5:
            used[best] = True
            found += 1
    return found


def quantize_detector(
    model_path: str | Path,
    out_path: str | Path,
    calibration: Sequence[np.ndarray],
    verification: Sequence[np.ndarray],
    *,
    keep_float: int = 0,
    **detector_options: Any,
) -> DetectorQuantizeReport:
    """Static QDQ int8 of an ONNX detector, calibrated on whole frames, checked against float32.

    Args:
        model_path: the float32 detector (any layout :class:`~deepsort_edge.detection.ONNXDetector` reads).
        out_path: the int8 model; it keeps the float32 file's metadata (class names, image size).
        calibration: BGR uint8 frames, preprocessed as the detector does, for min-max calibration.
        verification: other frames: float32 and int8 detections are matched on them.
        keep_float: leading convolutions left in float32.
        **detector_options: as for ``ONNXDetector`` (``layout``, ``input_size``, ...).

    Raises:
        ValueError: no frames, a bad ``keep_float`` or detector option, or
            ``out_path`` is ``model_path``.
    """
    import onnx

    from deepsort_edge.detection import ONNXDetector

    model_path, out_path = _checked_paths(model_path, out_path, calibration, verification, keep_float, "frames")
    fp32 = ONNXDetector(model_path, providers="cpu", **detector_options)
    blobs = np.concatenate([fp32.preprocess(frame)[0] for frame in calibration])
    metadata = {p.key: p.value for p in onnx.load(str(model_path), load_external_data=False).metadata_props}
    metadata["precision"] = "int8"
    _quantize_file(model_path, out_path, blobs, fp32.session.get_inputs()[0].name, keep_float, metadata,
                   batch_size=1)
    options = {"layout": fp32.layout, "input_size": fp32.input_size, **detector_options}
    int8 = ONNXDetector(out_path, providers="cpu", **options)
    results, speeds = zip(*(
        _timed(lambda frames, d=d: [d.detect_arrays(f) for f in frames], verification[:1], verification,
               len(verification))
        for d in (fp32, int8)
    ))
    found_fp32 = sum(len(r[0]) for r in results[0])
    found_int8 = sum(len(r[0]) for r in results[1])
    recall = sum(_matched(a, b) for a, b in zip(*results)) / found_fp32 if found_fp32 else 1.0
    precision = sum(_matched(b, a) for a, b in zip(*results)) / found_int8 if found_int8 else 1.0
    return DetectorQuantizeReport(out_path, len(calibration), len(verification), found_fp32, recall, precision,
                                  speeds[0], speeds[1])
