"""Association costs as sparse rows: the cascade's gated appearance + motion cost, and the IoU cost.

Each track gets one CSR row listing only its feasible detections (columns
ascending), found through detections sorted by centre x: a pair can only be
inside the Mahalanobis gate if its x offset is within ``sqrt(gate)`` standard
deviations, and it can only overlap if the centres are closer than the half
widths allow. So a crowded frame costs about one distance per nearby pair,
not one per track x detection, and no dense matrix is ever built.

Appearance embeddings are L2-normalised float32, so cosine distance is
``1 - dot`` and Euclidean distance is ``sqrt(2 - 2 dot)``; both are monotone
in the dot product. Appearance is only computed for pairs inside the motion
gate, which is where the speed comes from.
"""

from __future__ import annotations

import numpy as np

from .arguments import Detections, FrameSettings, TrackArrays
from .boxes import iou as box_iou
from .gallery import distance, first_within, max_dots
from .gating import gate_factor, squared_distance
from .jit import kernel
from .kalman import cholesky4, innovation_covariance

# Cost of a pair that must never be matched. Finite so that sums and
# comparisons stay well defined; far above any feasible cost (those are <= 1).
INFEASIBLE = 1e5
# Above every feasible cost (<= 1) and below INFEASIBLE: an assignment then
# matches as many feasible pairs as it can, at minimum total cost, and never
# an infeasible one.
ASSIGNMENT_LIMIT = INFEASIBLE / 2.0


# Relative slack on the search windows: they may only ever hold more
# candidates than needed, never fewer (each candidate is then checked exactly).
_SLACK = 1e-6


@kernel
def sort_by_x(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row order of ``values[:, 0]`` ascending, and the sorted values (for :func:`window`).

    A bottom-up merge sort in plain loops: it compiles in a fraction of the
    time ``np.argsort`` takes, and a frame holds at most a few thousand rows.
    """
    n = values.shape[0]
    by_x = np.empty(n, np.intp)
    xs = np.empty(n)
    for i in range(n):
        by_x[i] = i
        xs[i] = values[i, 0]
    spare_i = np.empty(n, np.intp)
    spare_x = np.empty(n)
    width = 1
    while width < n:
        for lo in range(0, n, 2 * width):
            mid = min(lo + width, n)
            hi = min(lo + 2 * width, n)
            a, b, k = lo, mid, lo
            while a < mid and b < hi:
                if xs[b] < xs[a]:
                    spare_x[k] = xs[b]
                    spare_i[k] = by_x[b]
                    b += 1
                else:
                    spare_x[k] = xs[a]
                    spare_i[k] = by_x[a]
                    a += 1
                k += 1
            while a < mid:
                spare_x[k] = xs[a]
                spare_i[k] = by_x[a]
                a += 1
                k += 1
            while b < hi:
                spare_x[k] = xs[b]
                spare_i[k] = by_x[b]
                b += 1
                k += 1
        xs, spare_x = spare_x, xs
        by_x, spare_i = spare_i, by_x
        width *= 2
    return by_x, xs


@kernel
def _first_at_least(xs: np.ndarray, value: float) -> int:
    """Position of the first ``xs`` entry >= ``value`` (binary search)."""
    lo, hi = 0, xs.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        if xs[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


@kernel
def _first_above(xs: np.ndarray, value: float) -> int:
    """Position of the first ``xs`` entry > ``value`` (binary search)."""
    lo, hi = 0, xs.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        if xs[mid] <= value:
            lo = mid + 1
        else:
            hi = mid
    return lo


@kernel
def window(xs: np.ndarray, lo: float, hi: float) -> tuple[int, int]:
    """Positions ``[start, stop)`` of the sorted ``xs`` that lie in ``[lo, hi]``, with a little slack."""
    pad = _SLACK * (abs(lo) + abs(hi) + 1.0)
    return _first_at_least(xs, lo - pad), _first_above(xs, hi + pad)


@kernel
def track_box(mean: np.ndarray) -> tuple[float, float, float, float]:
    """xyxy box of one xyah state row, as a tuple (what :func:`boxes.iou` takes)."""
    h = mean[3]
    w = mean[2] * h
    x1 = mean[0] - 0.5 * w
    y1 = mean[1] - 0.5 * h
    return x1, y1, x1 + w, y1 + h


@kernel
def _reserve(indices: np.ndarray, values: np.ndarray, need: int) -> tuple[np.ndarray, np.ndarray]:
    """The CSR entry buffers, doubled until they hold ``need`` entries."""
    if need <= indices.shape[0]:
        return indices, values
    size = max(need, 2 * indices.shape[0])
    grown_i = np.empty(size, np.intp)
    grown_v = np.empty(size)
    for k in range(indices.shape[0]):
        grown_i[k] = indices[k]
        grown_v[k] = values[k]
    return grown_i, grown_v


@kernel
def _sort_columns(cols: np.ndarray, extra: np.ndarray, count: int) -> None:
    """Insertion sort of ``cols[:count]`` ascending, carrying ``extra`` along (candidate lists are short)."""
    for a in range(1, count):
        c = cols[a]
        e = extra[a]
        b = a - 1
        while b >= 0 and cols[b] > c:
            cols[b + 1] = cols[b]
            extra[b + 1] = extra[b]
            b -= 1
        cols[b + 1] = c
        extra[b + 1] = e


@kernel
def column_positions(columns: np.ndarray, n_dets: int) -> np.ndarray:
    """``(n_dets,)`` position of each detection in ``columns``, -1 where it is not a column."""
    position = np.empty(n_dets, np.intp)
    for n in range(n_dets):
        position[n] = -1
    for c in range(columns.shape[0]):
        position[columns[c]] = c
    return position


@kernel
def cascade_costs(
    tracks: TrackArrays, slots: np.ndarray, dets: Detections, columns: np.ndarray, cfg: FrameSettings
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Matching-cascade cost of the tracks at ``slots`` as CSR ``(indptr, indices, values)``.

    Columns are positions in ``columns`` (detection rows of ``dets``,
    ascending). Only feasible pairs are stored. A pair is feasible when it
    lies inside the Mahalanobis gate (squared distance <= ``gate``, over x,
    y or all of xyah with ``position_only`` False; <= ``appearance_gate``
    for a pair that appearance also checks: a track with a gallery, in a
    frame with embeddings) and, with ``class_aware``, shares its class. Its
    motion term is ``1 - IoU`` of the predicted and detected xyxy boxes
    (``motion_from_iou``) or the squared distance over its gate (the paper's
    d1). With appearance, a pair must also have its nearest-gallery
    distance within ``appearance_threshold`` (the paper's second gate) and
    costs ``w * appearance + (1 - w) * motion``. Without appearance (none this
    frame, or an empty gallery) the cost is the motion term alone, and with
    IoU motion a track lost for more than one frame also needs
    ``IoU >= minimum_iou``, as in SORT: its gate has widened, and with no
    appearance to confirm it a far-off match is more often a swap than a
    recovery. ``lost_overlap_beyond`` applies the same caution with
    appearance: a track lost for more than one frame whose predicted box does
    not overlap the detection needs an appearance distance within half the
    threshold, where the pair's squared gate distance exceeds that value
    (-1: every such pair; ``gate``: only those that appearance alone lets
    in, beyond the motion-only gate; inf: none); ``recent_overlap_beyond``
    is that value for a track matched in the previous frame.

    Two passes, written out here rather than as helpers because each
    compiled (or Numba-inlined) level adds compile time: the gate, then
    appearance and motion on the gated pairs only.
    """
    position = column_positions(columns, dets.measurements.shape[0])
    # Pass 1, the gate: track t's candidates are cand[ptr[t]:ptr[t + 1]] (detection rows, ascending)
    # with their squared distances in squared; degree counts the tracks that gate each detection.
    n_tracks = slots.shape[0]
    dims = 2 if cfg.position_only else 4
    ptr = np.zeros(n_tracks + 1, np.intp)
    cand = np.empty(4 * n_tracks + 16, np.intp)
    squared = np.empty(4 * n_tracks + 16)
    degree = np.zeros(dets.measurements.shape[0], np.intp)
    S = np.empty((4, 4))
    L = np.empty((4, 4))
    inverse_diagonal = np.empty(4)
    k = 0
    for t in range(n_tracks):
        s = slots[t]
        mean = tracks.means[s]
        # Appearance is a second gate, so a pair it checks may lie further out.
        limit = cfg.appearance_gate if dets.use_embeddings and tracks.gallery_counts[s] > 0 else cfg.gate
        innovation_covariance(mean, tracks.covariances[s], S, 1.0)
        cholesky4(S, L)
        for i in range(4):
            inverse_diagonal[i] = 1.0 / L[i, i]
        factor = gate_factor(L, inverse_diagonal, mean)
        # |dx| / L00 is the first term of the distance: beyond sqrt(limit) it alone leaves the gate.
        radius = np.sqrt(limit) * L[0, 0]
        start, stop = window(dets.xs, mean[0] - radius, mean[0] + radius)
        cand, squared = _reserve(cand, squared, k + stop - start)
        first = k
        for p in range(start, stop):
            n = dets.by_x[p]
            if position[n] < 0 or (cfg.class_aware and tracks.track_classes[s] != dets.classes[n]):
                continue
            z = dets.measurements  # scalars by index, not a row view: a view per pair costs reference counting
            d = squared_distance(factor, z[n, 0], z[n, 1], z[n, 2], z[n, 3], dims, limit)
            if d <= limit:  # False for NaN too
                cand[k] = n
                squared[k] = d
                degree[n] += 1
                k += 1
        _sort_columns(cand[first:], squared[first:], k - first)
        ptr[t + 1] = k

    # Pass 2, appearance and motion on the gated pairs. A pair that is the only candidate of both its
    # track and its detection is matched whenever it is feasible, whatever its cost, so its gallery is
    # scanned only until one entry is close enough (usually the newest) instead of in full.
    indptr = np.zeros(n_tracks + 1, np.intp)
    indices = np.empty(ptr[n_tracks], np.intp)
    values = np.empty(ptr[n_tracks])
    dots = np.empty(dets.measurements.shape[0])
    e = 0
    for t in range(n_tracks):
        s = slots[t]
        first, stop = ptr[t], ptr[t + 1]
        n_cand = stop - first
        count = tracks.gallery_counts[s] if dets.use_embeddings else 0
        limit = cfg.appearance_gate if count > 0 else cfg.gate
        lost = tracks.time_since_update[s] > 1
        beyond = cfg.lost_overlap_beyond if lost else cfg.recent_overlap_beyond
        a = track_box(tracks.means[s])
        alone = n_cand == 1 and degree[cand[first]] == 1
        if count and not alone:
            max_dots(tracks.galleries[s], count, dets.embeddings, cand, first, n_cand, dots)
        for c in range(n_cand):
            n = cand[first + c]
            b = dets.boxes
            iou = box_iou(a, (b[n, 0], b[n, 1], b[n, 2], b[n, 3]))
            motion = 1.0 - iou if cfg.motion_from_iou else squared[first + c] / limit
            if count == 0:
                if cfg.motion_from_iou and lost and (iou < cfg.minimum_iou or iou <= 0.0):
                    continue
                cost = motion
            else:
                bound = cfg.appearance_threshold
                if iou <= 0.0 and squared[first + c] > beyond:
                    bound = 0.5 * cfg.appearance_threshold
                if alone:
                    appearance = first_within(tracks.galleries[s], count, tracks.gallery_heads[s], dets.embeddings,
                                              n, cfg.metric, bound)
                else:
                    appearance = distance(dots[c], cfg.metric)
                if not appearance <= bound:
                    continue
                cost = cfg.appearance_weight * appearance + (1.0 - cfg.appearance_weight) * motion
            indices[e] = position[n]
            values[e] = cost
            e += 1
        indptr[t + 1] = e
    return indptr, indices, values


@kernel
def iou_costs(
    tracks: TrackArrays, slots: np.ndarray, dets: Detections, columns: np.ndarray, cfg: FrameSettings
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``1 - IoU`` of the tracks' predicted boxes and the detections in ``columns``, as CSR (as above).

    A pair is feasible when ``IoU >= minimum_iou``, ``IoU > 0`` and, with
    ``class_aware``, the classes agree. Every overlapping detection has its
    centre within the track box widened by ``dets.half_width``, so only
    those are visited (through ``dets.by_x``).
    """
    n_tracks = slots.shape[0]
    n_dets = dets.boxes.shape[0]
    position = column_positions(columns, n_dets)
    indptr = np.zeros(n_tracks + 1, np.intp)
    indices = np.empty(2 * n_tracks + 16, np.intp)
    values = np.empty(2 * n_tracks + 16)
    cand = np.empty(n_dets, np.intp)
    cand_cost = np.empty(n_dets)
    k = 0
    for t in range(n_tracks):
        s = slots[t]
        a = track_box(tracks.means[s])
        start, stop = window(dets.xs, a[0] - dets.half_width, a[2] + dets.half_width)
        n_cand = 0
        for p in range(start, stop):
            n = dets.by_x[p]
            if position[n] < 0 or (cfg.class_aware and tracks.track_classes[s] != dets.classes[n]):
                continue
            b = dets.boxes
            iou = box_iou(a, (b[n, 0], b[n, 1], b[n, 2], b[n, 3]))
            if iou >= cfg.minimum_iou and iou > 0.0:
                cand[n_cand] = position[n]
                cand_cost[n_cand] = 1.0 - iou
                n_cand += 1
        # np.intp: a count Numba still types as the literal 0 here would compile _sort_columns twice.
        _sort_columns(cand, cand_cost, np.intp(n_cand))
        indices, values = _reserve(indices, values, k + n_cand)
        for c in range(n_cand):
            indices[k] = cand[c]
            values[k] = cand_cost[c]
            k += 1
        indptr[t + 1] = k
    return indptr, indices, values
