"""Plain, slow numpy references for the kernels (written independently of them)."""

from __future__ import annotations

import numpy as np

WP, WV = 1.0 / 20.0, 1.0 / 160.0


def kf_initiate(z: np.ndarray, aspect: float = 1e-2, aspect_velocity: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """``aspect``, ``aspect_velocity``: the aspect ratio's process noise (DeepSORT's by default)."""
    h = z[3]
    mean = np.r_[z, np.zeros(4)]
    std = np.array([2 * WP * h, 2 * WP * h, aspect, 2 * WP * h, 10 * WV * h, 10 * WV * h, aspect_velocity, 10 * WV * h])
    return mean, np.diag(std**2)


def kf_matrices() -> tuple[np.ndarray, np.ndarray]:
    F = np.eye(8)
    F[:4, 4:] = np.eye(4)
    H = np.eye(4, 8)
    return F, H


def kf_predict(
    mean: np.ndarray, cov: np.ndarray, aspect: float = 1e-2, aspect_velocity: float = 1e-5
) -> tuple[np.ndarray, np.ndarray]:
    F, _ = kf_matrices()
    h = mean[3]
    std = np.array([WP * h, WP * h, aspect, WP * h, WV * h, WV * h, aspect_velocity, WV * h])
    return F @ mean, F @ cov @ F.T + np.diag(std**2)


def kf_project(mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    _, H = kf_matrices()
    h = mean[3]
    R = np.diag(np.array([WP * h, WP * h, 1e-1, WP * h]) ** 2)
    return H @ mean, H @ cov @ H.T + R


def kf_update(mean: np.ndarray, cov: np.ndarray, z: np.ndarray, noise_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    _, H = kf_matrices()
    h = mean[3]
    projected = H @ mean
    S = H @ cov @ H.T + noise_scale * np.diag(np.array([WP * h, WP * h, 1e-1, WP * h]) ** 2)
    K = cov @ H.T @ np.linalg.inv(S)
    return mean + K @ (z - projected), cov - K @ S @ K.T


def squared_mahalanobis(mean: np.ndarray, cov: np.ndarray, z: np.ndarray, dims: int = 4) -> np.ndarray:
    projected, S = kf_project(mean, cov)
    d = z[:, :dims] - projected[:dims]
    return np.einsum("ni,ij,nj->n", d, np.linalg.inv(S[:dims, :dims]), d)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.zeros((len(a), len(b)))
    for i, p in enumerate(a):
        for j, q in enumerate(b):
            w = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
            h = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
            inter = w * h
            union = (p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - inter
            out[i, j] = inter / union if union > 0 else 0.0
    return out


def warp_state(mean: np.ndarray, cov: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Camera motion on an xyah state: centre and its velocity by the linear part, height by sqrt|det|."""
    A = affine[:, :2]
    scale = np.sqrt(abs(np.linalg.det(A)))
    block = np.eye(4)
    block[:2, :2] = A
    block[3, 3] = scale
    J = np.kron(np.eye(2), block)
    out = J @ mean
    out[:2] += affine[:, 2]
    return out, J @ cov @ J.T


# --------------------------------------------------------------------------- association, dense
def max_cardinality_min_cost(cost: np.ndarray) -> list[tuple[int, int]]:
    """Pairs of the largest matching over finite entries of ``cost`` (inf: forbidden), of least total cost.

    scipy's ``linear_sum_assignment`` on a cost where every allowed pair
    earns a bonus larger than any sum of costs, so more pairs always win.
    """
    if cost.size == 0:
        return []
    from scipy.optimize import linear_sum_assignment

    allowed = np.isfinite(cost)
    bonus = 1e3 * (1.0 + min(cost.shape))
    rows, cols = linear_sum_assignment(np.where(allowed, cost - bonus, 0.0))
    return [(int(r), int(c)) for r, c in zip(rows, cols) if allowed[r, c]]


def _xyah_box(mean: np.ndarray) -> np.ndarray:
    w = mean[2] * mean[3]
    return np.array([mean[0] - w / 2, mean[1] - mean[3] / 2, mean[0] + w / 2, mean[1] + mean[3] / 2])


def _xyah(boxes: np.ndarray) -> np.ndarray:
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return np.stack([boxes[:, 0] + w / 2, boxes[:, 1] + h / 2, w / h, h], axis=1)


def association_costs(
    state: dict, boxes: np.ndarray, scores: np.ndarray, embeddings: np.ndarray | None, classes: np.ndarray,
) -> dict[str, np.ndarray]:
    """Dense ``(tracks, detections)`` costs of one frame (inf: forbidden), from the state before it.

    Returns ``cascade`` and ``iou`` cost matrices and, per track, ``since``
    (frames since update after the predict), ``confirmed`` and ``checked``
    (appearance checks its pairs: embeddings and a non-empty gallery), and per
    detection ``high`` (may start a track / enters the first stages).
    Written from the documented rules (README, ``TrackerSettings``): Kalman
    predict; the cascade cost ``w * appearance + (1 - w) * motion`` under the
    chi-square 0.95 Mahalanobis gate (times ``appearance_gate_scale`` where
    appearance also checks the pair), the appearance threshold (half of it
    for a lost track with no overlap under ``lost_track_rule="overlap"``, and
    under ``"far"`` where the pair also lies beyond the motion-only gate; for
    a track matched the frame before, the latter under ``recent_track_rule="far"``)
    and, without appearance, SORT's IoU rule for lost tracks; ``1 - IoU``
    where ``IoU >= minimum_iou_threshold`` for the IoU stages; classes agree
    when ``class_aware``. Embeddings are unit rows.
    """
    from scipy.stats import chi2

    s = state["settings"]
    tracks = state["tracks"]
    n_tracks, n_dets = len(tracks["track_id"]), len(boxes)
    noise = (s["aspect_noise"], s["aspect_velocity_noise"])
    predicted = [kf_predict(mean, cov, *noise) for mean, cov in zip(tracks["mean"], tracks["covariance"])]
    since = tracks["time_since_update"] + 1
    high = scores >= s["track_activation_threshold"] if s["low_score_matching"] else np.ones(n_dets, bool)
    z = _xyah(boxes)
    dims = 2 if s["gating"] == "position" else 4
    gate = chi2.ppf(0.95, dims)
    w, threshold = s["appearance_weight"], s["appearance_threshold"]
    # README: minimum_iou_threshold None is 0.3 in a frame with embeddings, 0.2 in a frame without.
    minimum_iou = s["minimum_iou_threshold"]
    if minimum_iou is None:
        minimum_iou = 0.3 if embeddings is not None else 0.2
    cascade = np.full((n_tracks, n_dets), np.inf)
    overlap = np.full((n_tracks, n_dets), np.inf)
    checked = np.zeros(n_tracks, bool)
    for t, (mean, cov) in enumerate(predicted):
        ious = iou_matrix(_xyah_box(mean)[None], boxes)[0]
        distances = squared_mahalanobis(mean, cov, z, dims)
        count = tracks["gallery_count"][t] if embeddings is not None else 0
        checked[t] = count > 0
        if count:
            dots = embeddings.astype(np.float64) @ tracks["gallery"][t, :count].astype(np.float64).T
            nearest = dots.max(axis=1)
            looks = 1.0 - nearest if s["distance_metric"] == "cosine" else np.sqrt(np.maximum(0.0, 2 - 2 * nearest))
        limit = gate * s["appearance_gate_scale"] if count else gate
        lost = since[t] > 1
        for d in range(n_dets):
            if s["class_aware"] and tracks["class_id"][t] != classes[d]:
                continue
            iou = ious[d]
            if iou >= minimum_iou and iou > 0:
                overlap[t, d] = 1.0 - iou
            if not distances[d] <= limit:
                continue
            motion = 1.0 - iou if s["motion_cost"] == "iou" else distances[d] / limit
            if not count:
                if not (s["motion_cost"] == "iou" and lost and (iou < minimum_iou or iou <= 0)):
                    cascade[t, d] = motion
                continue
            if lost:
                rule = s["lost_track_rule"] == "overlap" or (s["lost_track_rule"] == "far" and distances[d] > gate)
            else:
                rule = s["recent_track_rule"] == "far" and distances[d] > gate
            bound = 0.5 * threshold if rule and iou <= 0 else threshold
            if looks[d] <= bound:
                cascade[t, d] = w * looks[d] + (1.0 - w) * motion
    return {"cascade": cascade, "iou": overlap, "since": since, "confirmed": tracks["state"] == 1, "high": high,
            "checked": checked}


def associate_dense(
    state: dict, boxes: np.ndarray, scores: np.ndarray, embeddings: np.ndarray | None, classes: np.ndarray,
) -> list[tuple[str, int, int]]:
    """One frame of DeepSORT's association, densely: ``(stage, track, detection)`` matches.

    ``state`` is ``DeepSORTTracker.state_dict()`` before the frame (tracks in
    birth order; ``track`` indexes them); the stages are ``"cascade"``,
    ``"iou"`` and ``"low"``, over :func:`association_costs`: the cascade
    over confirmed tracks and high-score detections by frames since update
    (levels 1 to ``max_age + 1``; one level for ``matching="global"``), each
    level a max-cardinality min-cost assignment; IoU for tentative tracks,
    tracks seen last frame and those appearance checked missed for at most
    ``iou_recovery_frames``; the low-score stage for those still unmatched.
    """
    s = state["settings"]
    costs = association_costs(state, boxes, scores, embeddings, classes)
    since, confirmed, high = costs["since"], costs["confirmed"], costs["high"]
    n_tracks, n_dets = len(since), len(boxes)
    max_age = s["max_age"] if s["max_age"] is not None else int(s["frame_rate"] / 30.0 * s["lost_track_buffer"])
    matches: list[tuple[str, int, int]] = []
    taken = np.zeros(n_dets, bool)
    matched = np.zeros(n_tracks, bool)

    def assign(stage: str, rows: list[int], cost: np.ndarray, high_columns: bool) -> None:
        cols = [d for d in range(n_dets) if not taken[d] and high[d] == high_columns]
        for r, c in max_cardinality_min_cost(cost[np.ix_(rows, cols)]):
            matches.append((stage, rows[r], cols[c]))
            taken[cols[c]] = True
            matched[rows[r]] = True

    cascade = [t for t in range(n_tracks) if confirmed[t]]
    for level in range(1, max_age + 2):
        if s["matching"] == "cascade":
            rows = [t for t in cascade if since[t] == level]
        else:  # one assignment over every track young enough
            rows = [t for t in cascade if since[t] <= max_age + 1] if level == 1 else []
        if rows:
            assign("cascade", rows, costs["cascade"], True)
    recovery = s.get("iou_recovery_frames", 1)
    recent = [t for t in cascade
              if not matched[t] and (since[t] == 1 or (costs["checked"][t] and since[t] <= recovery))]
    assign("iou", [t for t in range(n_tracks) if not confirmed[t]] + recent, costs["iou"], True)
    if s["low_score_matching"]:
        assign("low", [t for t in recent if not matched[t]], costs["iou"], False)
    return matches
