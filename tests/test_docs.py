"""The examples in public docstrings run and print what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize(
    "module",
    [
        "deepsort_edge.tracker",
        "deepsort_edge.state",
        "deepsort_edge.settings",
        "deepsort_edge.pipeline",
        "deepsort_edge.interpolation",
        "deepsort_edge.camera_motion",
        "deepsort_edge.video",
        "deepsort_edge.multistream",
        "deepsort_edge.identities",
        "deepsort_edge.embedder",
        "deepsort_edge.preprocess",
        "deepsort_edge.providers",
        "deepsort_edge.model_metadata",
        "deepsort_edge.export.calibration",
        "deepsort_edge.synthetic",
        "deepsort_edge.detection.layouts",
        "deepsort_edge.detection.letterbox",
        "deepsort_edge.detection.nms",
        "deepsort_edge.detection.onnx_detector",
        "deepsort_edge.detect_track",
        "deepsort_edge",
    ],
)
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0
