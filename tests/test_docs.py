"""The examples in public docstrings run and print what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize(
    "module",
    [
        "deepsort_edge.tracking.tracker",
        "deepsort_edge.tracking.configuration",
        "deepsort_edge.tracking.tracker_state",
        "deepsort_edge.tracking.state",
        "deepsort_edge.tracking.state_file",
        "deepsort_edge.tracking.state_tracks",
        "deepsort_edge.tracking.settings",
        "deepsort_edge.streams.pipeline",
        "deepsort_edge.tracking.interpolation",
        "deepsort_edge.tracking.camera_motion",
        "deepsort_edge.io.video",
        "deepsort_edge.io.mot_rows",
        "deepsort_edge.io.mot_writer",
        "deepsort_edge.streams.multistream",
        "deepsort_edge.streams.identities",
        "deepsort_edge.streams.ray_streams",
        "deepsort_edge.streams.identity_topology",
        "deepsort_edge.appearance.embedder",
        "deepsort_edge.appearance.model_io",
        "deepsort_edge.appearance.model_files",
        "deepsort_edge.appearance.preprocess",
        "deepsort_edge.appearance.providers",
        "deepsort_edge.appearance.model_metadata",
        "deepsort_edge.appearance.evidence_pairs",
        "deepsort_edge.appearance.export.calibration",
        "deepsort_edge.appearance.export.report",
        "deepsort_edge.demo.synthetic",
        "deepsort_edge.detection.layouts",
        "deepsort_edge.detection.letterbox",
        "deepsort_edge.detection.nms",
        "deepsort_edge.detection.onnx_detector",
        "deepsort_edge.streams.detect_track",
        "deepsort_edge.cli.track_plan",
        "deepsort_edge",
    ],
)
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0
