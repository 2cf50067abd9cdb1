"""The deepsort-edge metadata that makes an ONNX appearance model self-describing.

The exporter (:mod:`deepsort_edge.appearance.export`) writes these keys into the file's
``metadata_props``; the extractor (:mod:`deepsort_edge.appearance.embedder`) reads them
back, so a model file carries its own preprocessing. Values are JSON: lists
for sizes and statistics, numbers for the feature length, strings otherwise.

Example:
    >>> meta = encode_metadata((128, 64), (0.5,) * 3, (0.5,) * 3, "RGB", 1280, "lite0", "fp32")
    >>> decode_metadata(meta)["input_size"]
    [128, 64]
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["METADATA_KEYS", "decode_metadata", "encode_metadata"]

#: ONNX ``metadata_props`` keys written by the exporter and read by the extractor.
METADATA_KEYS = (
    "input_size",  # [H, W]
    "mean",  # [r, g, b] (or in color_order), on pixels scaled to [0, 1]
    "std",
    "color_order",  # "RGB" or "BGR": channel order the model expects
    "feature_dim",
    "source_model",
    "precision",
)


def encode_metadata(
    input_size: tuple[int, int],
    mean: Sequence[float],
    std: Sequence[float],
    color_order: str,
    feature_dim: int,
    source_model: str,
    precision: str,
) -> dict[str, str]:
    """The ``metadata_props`` entries describing a model, keyed by :data:`METADATA_KEYS`."""
    return {
        "input_size": json.dumps([int(v) for v in input_size]),
        "mean": json.dumps([float(v) for v in mean]),
        "std": json.dumps([float(v) for v in std]),
        "color_order": color_order,
        "feature_dim": json.dumps(int(feature_dim)),
        "source_model": source_model,
        "precision": precision,
    }


def decode_metadata(raw: Mapping[str, str]) -> dict[str, Any]:
    """The deepsort-edge entries of a model's metadata map, decoded; other keys are ignored.

    Values that are not JSON (plain strings) are kept as they are.

    Raises:
        ValueError: A value nests too deeply for Python's JSON parser.
    """
    meta: dict[str, Any] = {}
    for key in METADATA_KEYS:
        if key in raw:
            try:
                meta[key] = json.loads(raw[key])
            except json.JSONDecodeError:
                meta[key] = raw[key]
            except RecursionError:
                raise ValueError(f"model metadata {key!r} is nested too deeply to be a deepsort-edge value") from None
    return meta
