"""Turn timm backbones and OSNet checkpoints into self-describing ONNX appearance models.

The parts, one idea each:

- :mod:`~deepsort_edge.appearance.export.exporter`: :func:`export_timm` (timm -> ONNX,
  float16, metadata, verification against torch), :func:`export_osnet`
  (torchreid / boxmot OSNet checkpoints), :func:`export_module` (any built
  torch feature model) and :class:`ExportReport`;
- :mod:`~deepsort_edge.appearance.export.osnet`: the OSNet network, written from the
  paper, that loads torchreid's parameter names (imports torch; not
  re-exported here);
- :mod:`~deepsort_edge.appearance.export.checkpoints`: :func:`load_timm_checkpoint`
  (local weight files, renamed to timm's keys) and :func:`read_state_dict`;
- :mod:`~deepsort_edge.appearance.export.quantize`: static int8 (QDQ) quantisation;
- :mod:`~deepsort_edge.appearance.export.calibration`: crops to calibrate and verify with
  (:func:`load_mot_crops`, :func:`scene_crops`, :func:`synthetic_crops`).

Everything here needs the export extra (``pip install ".[cpu,export]"`` in a clone:
torch, timm, onnx) except the crop helpers; those packages are imported only
inside the functions that use them, so importing this package is cheap.

Example:
    >>> from deepsort_edge.appearance.export import export_timm
    >>> report = export_timm("resnet18.a1_in1k", "resnet18.onnx", input_size=(128, 64))  # doctest: +SKIP
"""

from __future__ import annotations

from deepsort_edge.appearance.export.calibration import load_mot_crops, scene_crops, synthetic_crops
from deepsort_edge.appearance.export.checkpoints import load_timm_checkpoint, read_state_dict
from deepsort_edge.appearance.export.exporter import (
    EXPORT_EXTRA_HINT,
    PRECISIONS,
    RANDOM_WEIGHTS_WARNING,
    ExportReport,
    export_module,
    export_osnet,
    export_timm,
    require_export_extra,
)

__all__ = [
    "EXPORT_EXTRA_HINT",
    "PRECISIONS",
    "RANDOM_WEIGHTS_WARNING",
    "ExportReport",
    "export_module",
    "export_osnet",
    "export_timm",
    "load_mot_crops",
    "load_timm_checkpoint",
    "read_state_dict",
    "require_export_extra",
    "scene_crops",
    "synthetic_crops",
]
