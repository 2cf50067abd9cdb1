"""Helpers shared by the test modules (not a reference: see reference.py for those)."""

from __future__ import annotations

import numpy as np


def run(tracker, frames) -> list[list[int]]:
    """Ids per frame of ``tracker`` fed ``frames`` (``SceneFrame``-like: xyxy, scores, embeddings)."""
    return [tracker.update_arrays(f.xyxy, f.scores, f.embeddings).tolist() for f in frames]


def assert_same_state(a: dict, b: dict) -> None:
    """Two ``state_dict()`` results are equal, array by array."""
    assert a.keys() == b.keys()
    for key in a:
        if key == "tracks":
            assert a[key].keys() == b[key].keys()
            for name in a[key]:
                np.testing.assert_array_equal(a[key][name], b[key][name], err_msg=name)
        else:
            assert a[key] == b[key], key
