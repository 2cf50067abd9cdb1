"""Static int8 (QDQ) quantisation of an exported appearance model.

Per-channel int8 weights, uint8 activations calibrated by min-max over real
crops fed through :class:`CropReader`; the leading convolutions can stay
float32. Uses ``onnxruntime.quantization`` (part of onnxruntime) and onnx.
:func:`deepsort_edge.appearance.quantization.quantize_model` does it for any ONNX ReID model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["CropReader", "quantize_int8"]


class CropReader:
    """Feeds preprocessed calibration crops to onnxruntime's quantiser in batches."""

    def __init__(self, batch: np.ndarray, input_name: str, step: int = 16) -> None:
        self._chunks = [batch[i : i + step] for i in range(0, len(batch), step)]
        self._input_name = input_name
        self._index = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._index >= len(self._chunks):
            return None
        chunk = self._chunks[self._index]
        self._index += 1
        return {self._input_name: chunk}

    def rewind(self) -> None:
        self._index = 0


def quantize_int8(
    fp32_path: Path,
    out_path: Path,
    calibration: np.ndarray,
    workdir: Path,
    keep_float: int,
    input_name: str,
    batch_size: int = 16,
) -> None:
    """Static QDQ int8: per-channel int8 weights, uint8 activations, min-max calibration.

    Dynamic quantisation is not used: its ConvInteger kernels make conv nets
    far slower on ONNX Runtime's CPU provider than float32. The first
    ``keep_float`` convolutions stay float32: in EfficientNet-Lite0 the stem
    and first block lose the most accuracy at int8 (each alone moved the mean
    cosine to float32 by up to 0.006 on PETS09 crops) while costing little
    time, since they see only 3 to 32 channels.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = workdir / "pre.onnx"
    quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
    weighted = [
        node.name
        for node in onnx.load(str(pre)).graph.node
        if node.op_type in ("Conv", "Gemm", "MatMul")
    ]
    quantize_static(
        str(pre),
        str(out_path),
        CropReader(calibration, input_name, step=batch_size),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        nodes_to_exclude=weighted[:keep_float],
    )
