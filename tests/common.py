"""Helpers shared by the test modules (not a reference: see reference.py for those)."""

from __future__ import annotations

import builtins
import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from deepsort_edge.io.mot import MOTData


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


def kalman_project(means: np.ndarray, covs: np.ndarray, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Projected means ``(T, 4)`` and Cholesky factors of S ``(T, 4, 4)``, from the kernels' own steps."""
    from deepsort_edge.kernels import kalman

    projected = np.ascontiguousarray(means[slots, :4])
    factors = np.empty((slots.size, 4, 4))
    S = np.empty((4, 4))
    for i, s in enumerate(slots):
        kalman.innovation_covariance(means[s], covs[s], S, 1.0)
        kalman.cholesky4(S, factors[i])
    return projected, factors


def squared_distances(projected, factors, dets, position_only: bool, cutoff: float) -> np.ndarray:
    """``(T, N)`` squared Mahalanobis distances through the kernel that gates every pair."""
    from deepsort_edge.kernels import gating

    out = np.empty((projected.shape[0], dets.shape[0]))
    for t in range(projected.shape[0]):
        inverse = 1.0 / np.diagonal(factors[t]).copy()
        factor = gating.gate_factor(factors[t], inverse, projected[t])
        for n in range(dets.shape[0]):
            out[t, n] = gating.squared_distance(factor, *dets[n, :4], 2 if position_only else 4, cutoff)
    return out


def kalman_update(means, covs, slots, z) -> None:
    """The paper's update (noise scale 1) through ``kalman_update_scaled``."""
    from deepsort_edge.kernels import kalman

    kalman.kalman_update_scaled(means, covs, slots, z, np.ones(slots.shape[0]))


def to_dense(indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, n_cols: int) -> np.ndarray:
    """CSR rows as a dense matrix with ``INFEASIBLE`` where no entry is (entries past indptr[-1] are spare)."""
    from deepsort_edge.kernels.costs import INFEASIBLE

    dense = np.full((indptr.shape[0] - 1, n_cols), INFEASIBLE)
    for i in range(indptr.shape[0] - 1):
        dense[i, indices[indptr[i]:indptr[i + 1]]] = values[indptr[i]:indptr[i + 1]]
    return dense


def hide_modules(monkeypatch, *names: str) -> None:
    """Make ``import torch`` (etc.) fail as if the package were not installed (undone by monkeypatch)."""
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.split(".")[0] in names:
            raise ModuleNotFoundError(f"No module named {name!r} (hidden by test)")
        return real_import(name, *args, **kwargs)

    for name in list(sys.modules):
        if name.split(".")[0] in names:
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(builtins, "__import__", fake_import)


class BlockingExtractor:
    """Holds the first ``extract_features`` call until released: a second thread arrives meanwhile."""

    def __init__(self) -> None:
        import threading

        self.entered = threading.Event()
        self.release = threading.Event()

    def extract_features(self, frame: np.ndarray, detections: object) -> np.ndarray:
        self.entered.set()
        assert self.release.wait(60)
        return np.ones((len(detections), 4), np.float32)


def save_onnx(graph, path, opset: int, metadata: dict[str, str] | None = None):
    """Save an ONNX ``graph`` built in a test as a model (IR 8, one opset), with ``metadata_props``."""
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


TOOLS = Path(__file__).resolve().parents[1] / "tools"


def tool_module(name: str):
    """Import ``name`` from ``tools/`` (a script's module or ``benchmarks.X``).

    ``tools/`` is appended to ``sys.path``, never the repository: it holds no
    ``deepsort_edge``, so the package under test stays the one already imported.
    """
    if str(TOOLS) not in sys.path:
        sys.path.append(str(TOOLS))
    return importlib.import_module(name)


def scene_detections(seed: int = 0, frames: int = 40, width: int = 320, height: int = 240):
    """A seeded synthetic scene of 5 objects and its detections as MOT rows: ``(scene, MOTData)``."""
    from deepsort_edge.demo.synthetic import SceneConfig, generate_scene
    from deepsort_edge.io.mot import MOTData

    cfg = SceneConfig(num_objects=5, width=width, height=height, seed=seed, miss_rate=0.05)
    scene = generate_scene(cfg, frames)
    frames_col = np.concatenate([np.full(len(f.xyxy), f.index) for f in scene])
    det = MOTData.from_arrays(frames_col, np.full(frames_col.size, -1),
                              np.concatenate([f.xyxy for f in scene]),
                              scores=np.concatenate([f.scores for f in scene]))
    return scene, det


def reference_tracking(det: MOTData, num_frames: int, **kwargs) -> MOTData:
    """MOT results of ``det`` tracked motion-only through the library API directly (no CLI)."""
    from deepsort_edge import DeepSORTTracker
    from deepsort_edge.io.mot import MOTData

    tracker = DeepSORTTracker(use_appearance=False, **kwargs)
    rows = []
    for frame, table in det.iter_frames(num_frames):
        xyxy = table[:, 2:6].copy()
        xyxy[:, 2:] += xyxy[:, :2]
        ids, xyxy = tracker.update_arrays(xyxy, table[:, 6].astype(np.float32), return_boxes=True)
        keep = ids >= 1
        if keep.any():
            rows.append(MOTData.from_arrays(np.full(keep.sum(), frame), ids[keep], xyxy[keep]).table)
    return MOTData(np.concatenate(rows)) if rows else MOTData.empty()
