"""A seeded synthetic person-ReID model whose distances follow OSNet-x0.25's.

MOT17 has no frames here, so appearance on MOT17 is simulated: every
ground-truth identity gets a prototype, and every detection matched to it
(IoU >= 0.5) an embedding near that prototype; detections matching no one are
embedded as strangers. The noise is fitted so that the cosine distances have
the statistics OSNet-x0.25 (MSMT17) shows on PETS09-S2L1 detections matched to
the ground truth, pairs at most 30 frames apart (measured with
``distance_statistics`` below on both detection sets):

================  =====================  ===============================
pairs             OSNet on PETS09         this model (fit)
================  =====================  ===============================
same person       p10 0.075, median 0.15, p90 0.28   0.07 / 0.16 / 0.28
different people  p1 0.28, p5 0.37, median 0.55      0.29 / 0.36 / 0.55
================  =====================  ===============================

Construction, with a shared unit vector ``g`` and independent random unit
vectors ``r`` and ``n`` (nearly orthogonal in 512 dimensions):

- prototype ``p_i = u_i g + sqrt(1 - u_i^2) r_i``, so two people look alike
  with cosine ``u_i u_j`` (``u`` logit-normal: some pairs are look-alikes);
- observation ``e = sqrt(q) p_i + sqrt(1 - q) n``, with ``1 - q``
  logit-normal per detection (pose, blur, partial occlusion).

Then same-person cosine is about ``sqrt(q1 q2)`` and different-person cosine
about ``sqrt(q1 q2) u_i u_j``; the four logit-normal parameters were fitted
to the quantiles above.
"""

from __future__ import annotations

import numpy as np

from deepsort_edge.io.mot import MOTData
from deepsort_edge.tracking.boxes import iou_matrix, tlwh_to_xyxy

DIM = 512
# Fitted (see the module docstring): noise logit mean/std, look-alike logit mean/std.
NOISE_MU, NOISE_SIGMA = -1.7969, 0.7401
LOOKALIKE_MU, LOOKALIKE_SIGMA = 1.0973, 0.6495


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def match_to_ground_truth(detections: MOTData, gt: MOTData, min_iou: float = 0.5) -> np.ndarray:
    """Ground-truth identity of each detection row (Hungarian on IoU per frame), -1 for none.

    Ground truth with flag 0 (MOT17's "do not consider") is ignored.
    """
    from scipy.optimize import linear_sum_assignment  # benchmark-only dependency

    ids = np.full(len(detections), -1, dtype=np.int64)
    gt_index = gt.frame_index()
    for frame, rows in detections.frame_index().items():
        g = gt_index.get(frame)
        if g is None:
            continue
        truth = gt.table[g]
        truth = truth[truth[:, 6] != 0]
        if len(truth) == 0:
            continue
        iou = iou_matrix(tlwh_to_xyxy(detections.table[rows, 2:6]), tlwh_to_xyxy(truth[:, 2:6]))
        r, c = linear_sum_assignment(-iou)
        good = iou[r, c] >= min_iou
        ids[np.arange(rows.start, rows.stop)[r[good]]] = truth[c[good], 1].astype(np.int64)
    return ids


def synthetic_embeddings(identities: np.ndarray, seed: int = 0, dim: int = DIM) -> np.ndarray:
    """Unit float32 embeddings ``(N, dim)``: one per detection, -1 meaning a stranger each."""
    rng = np.random.default_rng(seed)
    identities = np.asarray(identities, dtype=np.int64)
    n = identities.shape[0]
    # Strangers (false positives) each get an identity of their own.
    labels = identities.copy()
    strangers = labels < 0
    labels[strangers] = labels.max(initial=0) + 1 + np.arange(int(strangers.sum()))
    people, person_of = np.unique(labels, return_inverse=True)
    shared = _unit(rng.normal(size=dim))
    lookalike = _sigmoid(LOOKALIKE_MU + LOOKALIKE_SIGMA * rng.normal(size=people.size))[:, None]
    prototypes = lookalike * shared + np.sqrt(1 - lookalike**2) * _unit(rng.normal(size=(people.size, dim)))
    keep = 1.0 - _sigmoid(NOISE_MU + NOISE_SIGMA * rng.normal(size=n))[:, None]
    noise = _unit(rng.normal(size=(n, dim)))
    return _unit(np.sqrt(keep) * prototypes[person_of] + np.sqrt(1 - keep) * noise).astype(np.float32)


def distance_statistics(frames: np.ndarray, identities: np.ndarray, embeddings: np.ndarray,
                        max_gap: int = 30, pairs: int = 200_000, seed: int = 0) -> dict[str, float]:
    """Cosine-distance quantiles of same- and different-person pairs at most ``max_gap`` frames apart."""
    rng = np.random.default_rng(seed)
    known = identities >= 0
    frames, identities, embeddings = frames[known], identities[known], embeddings[known]
    i, j = rng.integers(0, identities.size, (2, pairs))
    near = (np.abs(frames[i] - frames[j]) <= max_gap) & (i != j)
    i, j = i[near], j[near]
    d = 1.0 - np.einsum("ij,ij->i", embeddings[i], embeddings[j])
    same = identities[i] == identities[j]
    return {
        "same_p10": float(np.percentile(d[same], 10)), "same_median": float(np.median(d[same])),
        "same_p90": float(np.percentile(d[same], 90)), "different_p1": float(np.percentile(d[~same], 1)),
        "different_p5": float(np.percentile(d[~same], 5)), "different_median": float(np.median(d[~same])),
    }
