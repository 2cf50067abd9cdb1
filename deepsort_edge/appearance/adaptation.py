"""Appearance that adapts to the scene: a gate and a projection learned from the tracker's own evidence.

A fixed appearance threshold on raw features wastes what a generic model
(an ImageNet classifier) knows about identity: its distances between
different people of one scene are small and scene-dependent. This module
collects, while tracking, pairs of features that are surely of one person
and pairs surely of two, and learns from them:

* **Evidence** (:meth:`SceneAdapter.after_frame`). Same person: the raw
  feature of a detection that continued a confirmed track, when it overlaps
  no other detection (IoU below :data:`ISOLATION_IOU`: the match was
  unambiguous), against that track's running average of raw features as it
  was :data:`EVIDENCE_LAG` to ``2 * EVIDENCE_LAG - 1`` frames before (pairs
  across the changes an occlusion brings, not consecutive near-copies).
  Different people: that detection against the running average of the
  other confirmed track matched in the same frame (two tracks seen at once
  are two people) that looks most alike among the
  :data:`NEGATIVE_NEIGHBOURS` nearest in the image: the confusions the
  cascade has to decide. Both kinds go to ring buffers of
  :data:`~deepsort_edge.appearance.evidence_pairs.PAIR_CAPACITY` pairs (bounded memory and
  cost); the parity of a pair's track id splits the evidence into a fitting half and a held-back
  half of other people.
* **Projection** (``appearance_adaptation="projection"``). The first refit
  with enough evidence fixes a principal basis (:data:`PCA_DIMS`) of the
  fitting half; from then on each fitting pair is added, as it arrives, to
  a :class:`~.evidence_pairs.RunningScatter` (same- and different-person
  scatter in that basis, older pairs forgotten gradually). Every
  ``adaptation_interval`` frames the regularised LDA of that scatter gives
  ``W`` (:data:`PROJECTION_DIMS` columns): a small eigenproblem, and a
  projection that changes slowly. A feature ``x`` becomes
  ``unit((x - mean) @ W)``, written into the first columns of a zero row of
  the original width, so the tracker's stored embeddings keep their shape.
  It is used only when all raw evidence separates at ROC AUC below
  :data:`REID_AUC` (the ReID rule: a ReID model is left alone) and the
  projection separates the held-back half better than the raw features (by
  :data:`SELF_CHECK_MARGIN`).
* **Gate** (``"gate"``, and ``"projection"`` while the projection is in
  use). The appearance threshold is the distance that minimises ``missed
  same-person pairs + FALSE_MATCH_COST x accepted different-person pairs``
  on the held-back half (in the space in use), clipped to a safe range; the
  fixed ``appearance_threshold`` holds until :data:`MIN_PAIRS` pairs of each
  kind are in, and in ``"projection"`` mode on raw features (a raw-space
  calibration measured worse for OSNet, docs/how-it-works.md).

When the projection changes, the stored embeddings of confirmed tracks are
rebuilt from their raw running averages (kept here), so detections and
tracks are always compared in one space; tentative tracks' (matched by IoU
alone) are mapped back through ``W``'s pseudo-inverse. Off by default:
docs/how-it-works.md has the measurements (no better than off on average for
the shipped model, and several times the cost of a default update).

Example:
    >>> import numpy as np
    >>> same = np.array([0.05, 0.1, 0.12, 0.2]); different = np.array([0.3, 0.4, 0.45, 0.6])
    >>> round(calibrated_threshold(same, different, 0.0, 2.0), 3)
    0.25
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..kernels.arguments import FrameSettings
from ..tracking.boxes import iou_matrix
from ..tracking.settings import ADAPTATION_MODES
from .adaptation_state import SCATTER_WEIGHTS
from .evidence_pairs import (
    FALSE_MATCH_COST,
    PCA_DIMS,
    PROJECTION_DIMS,
    RIDGE,
    PairBuffer,
    RunningScatter,
    calibrated_threshold,
    cosine_distances,
    fit_projection,
    roc_auc,
)

__all__ = [
    "ADAPTATION_MODES", "PairBuffer", "SceneAdapter", "calibrated_threshold", "cosine_distances", "fit_projection",
    "roc_auc",
]

MIN_PAIRS = 200  # pairs of each kind before anything changes
ISOLATION_IOU = 0.3  # a same-person pair needs a detection overlapping no other one more than this
SELF_CHECK_MARGIN = 0.01
REID_AUC = 0.9  # raw features separating all the evidence this well come from a ReID model: left alone
EVIDENCE_LAG = 8  # same-person pairs: a detection against its track's average 8-15 frames before (>= 1)
NEGATIVE_NEIGHBOURS = 3  # different-person pairs: of this many spatially nearest tracks, the nearest in looks
SCATTER_MEMORY = 2048  # fitting pairs of each kind the running scatter remembers (it forgets older ones gradually)
EVIDENCE_EVERY = 1  # take evidence every this many frames (3: a third of its cost, quality unchanged within noise)
RAW_THRESHOLD_RANGE = (0.1, 0.5)
PROJECTED_THRESHOLD_RANGE = (0.1, 1.0)


class SceneAdapter:
    """Evidence, calibrated gate and projection of one tracker (see the module docstring).

    Args:
        mode: ``"gate"`` (calibrate the threshold on raw features) or
            ``"projection"`` (also learn the projection, used when it passes the self-check).
        interval: frames between refits.
        momentum: weight of the old value in a track's running average of raw features.
    """

    def __init__(self, mode: str, interval: int, momentum: float) -> None:
        if mode not in ADAPTATION_MODES[1:]:
            raise ValueError(f"mode must be one of {ADAPTATION_MODES[1:]}, got {mode!r}")
        self.mode = mode
        self.interval = interval
        self.momentum = momentum
        self.same = PairBuffer()
        self.different = PairBuffer()
        # Running averages of raw unit features, by track id (ascending: ids only grow).
        self.average_ids = np.zeros(0, dtype=np.int64)
        self.averages = np.zeros((0, 0), dtype=np.float32)
        # Each track's running average as it was at snapshot_frames (same-person pairs across a lag).
        self.snapshots = np.zeros((0, 0), dtype=np.float32)
        self.snapshot_frames = np.zeros(0, dtype=np.int64)
        self.mean: np.ndarray | None = None  # projection in use (None: raw features)
        self.weights: np.ndarray | None = None
        self.threshold: float | None = None  # calibrated threshold (None: the fixed one)
        self.frames = 0
        self.separation: tuple[float, float] | None = None  # the last self-check: held-back ROC AUC raw, projected
        self.evidence_auc: float | None = None  # the last refit's ROC AUC of all raw evidence (REID_AUC)
        self.scatter: RunningScatter | None = None  # "projection": the fitting half's scatter, from the first refit
        self._offset: np.ndarray | None = None

    def _use(self, mean: np.ndarray | None, weights: np.ndarray | None) -> None:
        """Project with ``(mean, weights)`` from now on (None: raw features)."""
        self.mean = None if weights is None else np.asarray(mean, dtype=np.float32)
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float32)
        self._offset = None if weights is None else self.mean @ self.weights

    # ------------------------------------------------------------------ per frame
    def project(self, unit: np.ndarray) -> np.ndarray:
        """``(N, D)`` unit raw features in the space in use (the input itself while that is raw)."""
        if self.weights is None:
            return unit
        z = unit @ self.weights - self._offset  # (x - mean) W without an (N, D) temporary
        norms = np.linalg.norm(z, axis=1, keepdims=True)
        out = np.zeros(unit.shape, dtype=np.float32)
        out[:, : z.shape[1]] = z / np.maximum(norms, 1e-12)
        out[norms[:, 0] <= 1e-12, 0] = 1.0  # a feature at the scene mean: any unit vector
        return out

    def before_frame(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(raw unit rows, rows for the kernel)``; rows that are not finite and non-zero pass as given."""
        raw = np.asarray(embeddings, dtype=np.float32)
        norms = np.linalg.norm(raw, axis=1)
        good = np.isfinite(norms) & (norms > 0)
        unit = raw.copy()
        unit[good] /= norms[good, None]
        if self.weights is None:
            return unit, unit
        out = unit.copy()
        out[good] = self.project(unit[good])
        return unit, out

    def frame_settings(self, settings: tuple) -> tuple:
        """The frame kernel's settings with the calibrated threshold (unchanged before calibration)."""
        if self.threshold is None:
            return settings
        out = list(settings)
        out[_THRESHOLD_FIELD] = self.threshold
        return tuple(out)

    def after_frame(self, ids: np.ndarray, xyxy: np.ndarray, unit: np.ndarray, store: Any) -> None:
        """Take this frame's evidence (``ids`` from the kernel, the rows' boxes and raw unit features).

        Evidence is taken every :data:`EVIDENCE_EVERY` frames (a sample of the
        video is as good and costs that many times less); refits every ``interval``.
        """
        self.frames += 1
        if self.frames % EVIDENCE_EVERY == 0:
            rows = np.flatnonzero(ids > 0)
            if rows.size:
                self._evidence(ids[rows], xyxy, rows, unit[rows])
        if self.frames % self.interval == 0:
            self.refit(store)

    def _slots(self, track_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows of ``track_ids`` in the running averages, and which ids have one."""
        at = np.searchsorted(self.average_ids, track_ids)
        if not self.average_ids.size:
            return at, np.zeros(track_ids.size, dtype=bool)
        at = np.minimum(at, self.average_ids.size - 1)
        return at, self.average_ids[at] == track_ids

    def _evidence(self, track_ids: np.ndarray, xyxy: np.ndarray, rows: np.ndarray, features: np.ndarray) -> None:
        at, known = self._slots(track_ids)
        if known.any():
            width_ok = self.averages.shape[1] == features.shape[1]
            previous = self.averages[at] if width_ok else features
            reference = self.snapshots[at] if width_ok else features
            age = self.frames - self.snapshot_frames[at] if width_ok else np.zeros(at.size, dtype=np.int64)
            overlap = iou_matrix(xyxy[rows], xyxy)
            overlap[np.arange(rows.size), rows] = 0.0
            same = known & (age >= EVIDENCE_LAG) & (overlap.max(axis=1) < ISOLATION_IOU)
            self.same.push(features[same], reference[same], track_ids[same])
            fit = track_ids % 2 == 0  # the fitting half (PairBuffer.halves)
            if self.scatter is not None:
                self.scatter.add(features[same & fit], reference[same & fit], same=True)
            if known.sum() >= 2:
                centres = 0.5 * (xyxy[rows, :2] + xyxy[rows, 2:])
                gaps = ((centres[:, None] - centres[None]) ** 2).sum(axis=2)
                gaps[:, ~known] = np.inf
                np.fill_diagonal(gaps, np.inf)
                # Of the few spatially nearest tracks, the one that looks most alike: the pairs the cascade decides.
                near = np.argsort(gaps, axis=1, kind="stable")[:, : min(NEGATIVE_NEIGHBOURS, rows.size - 1)]
                looks = 1.0 - np.einsum("id,ikd->ik", features, previous[near])
                looks[~np.isfinite(np.take_along_axis(gaps, near, axis=1))] = np.inf
                nearest = near[np.arange(rows.size), looks.argmin(axis=1)]
                valid = known & np.isfinite(gaps[np.arange(rows.size), nearest])
                self.different.push(features[valid], previous[nearest[valid]], track_ids[valid])
                if self.scatter is not None:
                    self.scatter.add(features[valid & fit], previous[nearest[valid & fit]], same=False)
            m = self.momentum
            slots = at[known]
            blend = m * self.averages[slots] + (1.0 - m) * features[known]
            self.averages[slots] = blend / np.maximum(np.linalg.norm(blend, axis=1, keepdims=True), 1e-12)
            # A new snapshot every 2 lags: same-person references are [lag, 2 lag) frames old.
            stale = slots[self.frames - self.snapshot_frames[slots] >= 2 * EVIDENCE_LAG]
            self.snapshots[stale] = self.averages[stale]
            self.snapshot_frames[stale] = self.frames
        if not known.all():
            fresh = ~known
            ids = np.concatenate([self.average_ids, track_ids[fresh]])
            width = features.shape[1]
            keep = self.averages.shape[1] == width
            old = self.averages if keep else np.zeros((0, width), dtype=np.float32)
            stacked = np.concatenate([old, features[fresh]])
            snapshots = np.concatenate([self.snapshots if keep else old, features[fresh]])
            frames = np.concatenate([self.snapshot_frames if keep else np.zeros(0, np.int64),
                                     np.full(int(fresh.sum()), self.frames, dtype=np.int64)])
            order = np.argsort(ids, kind="stable")
            self.average_ids, self.averages = ids[order], stacked[order]
            self.snapshots, self.snapshot_frames = snapshots[order], frames[order]

    def _average(self, track_id: int) -> np.ndarray | None:
        at, known = self._slots(np.array([track_id], dtype=np.int64))
        return self.averages[at[0]] if known[0] else None

    # ------------------------------------------------------------------ refits
    def refit(self, store: Any) -> None:
        """Recalibrate from the evidence so far (and re-express stored embeddings if the space changed)."""
        alive = np.isin(self.average_ids, store.track_id[store.order])
        self.average_ids, self.averages = self.average_ids[alive], self.averages[alive]
        if self.snapshots.shape[0] == alive.size:
            self.snapshots, self.snapshot_frames = self.snapshots[alive], self.snapshot_frames[alive]
        if len(self.same) < MIN_PAIRS or len(self.different) < MIN_PAIRS:
            return
        (same_fit, same_held), (different_fit, different_held) = self.same.halves(), self.different.halves()
        if min(len(same_fit[0]), len(same_held[0]), len(different_fit[0]), len(different_held[0])) < MIN_PAIRS // 4:
            return  # one half holds too few people's pairs yet
        same_d = cosine_distances(*same_held)
        different_d = cosine_distances(*different_held)
        mean = weights = None
        width = same_fit[0].shape[1]
        if self.mode == "projection" and width > PROJECTION_DIMS:
            raw_auc = roc_auc(same_d, different_d)
            n_same, n_different = len(self.same), len(self.different)
            self.evidence_auc = roc_auc(cosine_distances(self.same.a[:n_same], self.same.b[:n_same]),
                                        cosine_distances(self.different.a[:n_different],
                                                         self.different.b[:n_different]))
            if self.scatter is None:  # the principal basis from the evidence so far, then every later pair
                self.scatter = RunningScatter.from_rows(np.concatenate([*same_fit, *different_fit]), PCA_DIMS,
                                                        SCATTER_MEMORY)
                self.scatter.add(*same_fit, same=True)
                self.scatter.add(*different_fit, same=False)
            mean, weights = self.scatter.projection(PROJECTION_DIMS, RIDGE)
            candidate = _Projected(mean, weights)
            same_p = cosine_distances(candidate(same_held[0]), candidate(same_held[1]))
            different_p = cosine_distances(candidate(different_held[0]), candidate(different_held[1]))
            self.separation = (raw_auc, roc_auc(same_p, different_p))
            if self.evidence_auc < REID_AUC and self.separation[1] > raw_auc + SELF_CHECK_MARGIN:
                same_d, different_d = same_p, different_p
            else:
                mean = weights = None
        if weights is not None:
            self.threshold = calibrated_threshold(same_d, different_d, *PROJECTED_THRESHOLD_RANGE, FALSE_MATCH_COST)
        elif self.mode == "gate":
            self.threshold = calibrated_threshold(same_d, different_d, *RAW_THRESHOLD_RANGE, FALSE_MATCH_COST)
        else:  # projection mode on raw features: the fixed threshold (raw calibration did not help)
            self.threshold = None
        if weights is not None or self.weights is not None:
            self._reexpress(store, mean, weights)

    def _reexpress(self, store: Any, mean: np.ndarray | None, weights: np.ndarray | None) -> None:
        """Move stored embeddings from the old space to the new one."""
        old = _Projected(self.mean, self.weights) if self.weights is not None else None
        self._use(mean, weights)
        order = store.order
        if not order.size or not store.embedding_dim:
            return
        gallery = store.gallery_float32(order)  # (n, size, D)
        shape = gallery.shape
        flat = gallery.reshape(-1, shape[2])
        filled = np.linalg.norm(flat, axis=1) > 0
        raw = flat.copy()
        if old is not None:
            raw[filled] = old.inverse(flat[filled])
        raw = _unit_rows(raw)
        new = np.zeros_like(flat)
        new[filled] = self.project(raw[filled])
        new = new.reshape(shape)
        # Confirmed tracks: their newest stored row from the exact raw running average.
        newest = (store.gallery_head[order] - 1) % shape[1]
        for i, t in enumerate(store.track_id[order].tolist()):
            average = self._average(t)
            if average is not None and store.gallery_count[order[i]] > 0:
                new[i, newest[i]] = self.project(average[None])[0]
        if store.gallery_storage == np.uint16:
            store.gallery[order] = new.astype(np.float16).view(np.uint16)
        else:
            store.gallery[order] = new

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: ``numbers`` (plain ints and floats) and ``arrays``.

        Their layout: :data:`~deepsort_edge.appearance.adaptation_state.STATE_ARRAYS`.
        """
        ids = self.average_ids
        width = max(self.same.a.shape[1], self.different.a.shape[1], self.averages.shape[1])
        for buffer in (self.same, self.different):
            if buffer.a.shape[1] != width:  # still empty while the other kind filled: give it the width
                buffer.a = np.zeros((buffer.capacity, width), dtype=np.float32)
                buffer.b = np.zeros_like(buffer.a)
        weights = np.zeros((width, 0), dtype=np.float32) if self.weights is None else self.weights
        scatter = self.scatter
        size = 0 if scatter is None else scatter.basis.shape[1]
        scatter_weights = np.zeros(3) if scatter is None else scatter.weights
        numbers = {
            "frames": self.frames, "threshold": -1.0 if self.threshold is None else self.threshold,
            "same_total": self.same.total, "different_total": self.different.total,
            "width": width, "dims": int(weights.shape[1]), "basis_dims": size,
            **{name: float(w) for name, w in zip(SCATTER_WEIGHTS, scatter_weights)},
        }
        arrays = {
            "same_a": self.same.a, "same_b": self.same.b, "different_a": self.different.a,
            "different_b": self.different.b, "same_keys": self.same.keys, "different_keys": self.different.keys,
            "average_ids": ids,
            "averages": self.averages if ids.size else np.zeros((0, width), dtype=np.float32),
            "snapshots": self.snapshots if ids.size else np.zeros((0, width), dtype=np.float32),
            "snapshot_frames": self.snapshot_frames if ids.size else np.zeros(0, dtype=np.int64),
            "mean": np.zeros(width, dtype=np.float32) if self.mean is None else self.mean,
            "weights": weights,
            "basis": np.zeros((width, 0)) if scatter is None else scatter.basis,
            "scatter_mean": np.zeros(width) if scatter is None else scatter.mean,
            "within": np.zeros((0, 0)) if scatter is None else scatter.within,
            "between": np.zeros((0, 0)) if scatter is None else scatter.between,
        }
        return {"numbers": numbers, "arrays": {k: np.array(v, copy=True) for k, v in arrays.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` that passed :func:`check_adaptation_state`."""
        numbers, arrays = state["numbers"], state["arrays"]
        self.frames = int(numbers["frames"])
        self.threshold = None if numbers["threshold"] < 0 else float(numbers["threshold"])
        for buffer, name in ((self.same, "same"), (self.different, "different")):
            buffer.a = np.array(arrays[f"{name}_a"], dtype=np.float32)
            buffer.b = np.array(arrays[f"{name}_b"], dtype=np.float32)
            buffer.keys = np.array(arrays[f"{name}_keys"], dtype=np.int64)
            buffer.total = int(numbers[f"{name}_total"])
        self.average_ids = np.array(arrays["average_ids"], dtype=np.int64)
        self.averages = np.array(arrays["averages"], dtype=np.float32)
        self.snapshots = np.array(arrays["snapshots"], dtype=np.float32)
        self.snapshot_frames = np.array(arrays["snapshot_frames"], dtype=np.int64)
        self.scatter = None
        if numbers["basis_dims"]:
            self.scatter = RunningScatter(arrays["basis"], arrays["scatter_mean"], SCATTER_MEMORY)
            self.scatter.within = np.array(arrays["within"], dtype=np.float64)
            self.scatter.between = np.array(arrays["between"], dtype=np.float64)
            self.scatter.weights = np.array([numbers[name] for name in SCATTER_WEIGHTS], dtype=np.float64)
        weights = np.array(arrays["weights"], dtype=np.float32)
        self._use(np.array(arrays["mean"], dtype=np.float32), weights if weights.size else None)


class _Projected:
    """``x -> unit((x - mean) @ W)`` (k columns) and its least-squares way back."""

    def __init__(self, mean: np.ndarray, weights: np.ndarray) -> None:
        self.mean = np.asarray(mean, dtype=np.float64)
        self.weights = np.asarray(weights, dtype=np.float64)
        self._back: np.ndarray | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return _unit_rows((np.asarray(x, np.float64) - self.mean) @ self.weights)

    def inverse(self, rows: np.ndarray) -> np.ndarray:
        """Raw features (up to scale along the projection) of padded projected rows."""
        if self._back is None:  # the pseudo-inverse of the thin W: (W'W)^-1 W'
            self._back = np.linalg.solve(self.weights.T @ self.weights, self.weights.T)
        k = self.weights.shape[1]
        # Unit rows, while (x - mean) @ W has norm about sqrt(k) (W whitens same-person scatter).
        return np.sqrt(k) * rows[:, :k].astype(np.float64) @ self._back + self.mean


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


_THRESHOLD_FIELD = FrameSettings._fields.index("appearance_threshold")
