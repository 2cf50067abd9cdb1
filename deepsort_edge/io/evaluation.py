"""Tracking metrics (HOTA, CLEAR-MOT, identity) through TrackEval's metric classes.

The data TrackEval's metrics need (per-frame ids and IoU similarities) is built
here from :class:`~deepsort_edge.io.mot.MOTData`, following TrackEval's
``MotChallenge2DBox`` preprocessing, so that no temporary folder layout or
seqmap file is needed. Two ground-truth conventions exist:

- ``"mot17"`` (MOT16/17/20): every tracker box is first matched to *all*
  ground-truth boxes (Hungarian on IoU, IoU >= 0.5); tracker boxes matched to a
  distractor (classes 2 person on vehicle, 7 static person, 8 distractor,
  12 reflection; MOT20 adds 6 non-MOT vehicle) are removed. Then only
  ground truth with class 1 (pedestrian) and "consider" flag (column 7) != 0
  is kept.
- ``"mot15"``: no classes; ground truth with flag 0 is dropped, nothing else.

``preprocess="auto"`` picks ``"mot17"`` when the ground truth carries valid
MOTChallenge classes (1-13) in column 8, else ``"mot15"``.
Detections are matched at IoU >= 0.5 (CLEAR and identity metrics); HOTA
averages over IoU thresholds 0.05..0.95.

TrackEval is the optional ``eval`` extra: ``pip install ".[cpu,eval]"`` in a clone.

Example:
    >>> from deepsort_edge.io.mot import read_mot
    >>> from deepsort_edge.io.evaluation import evaluate_sequence
    >>> gt = read_mot("MOT15/train/PETS09-S2L1/gt/gt.txt")  # doctest: +SKIP
    >>> res = read_mot("results/PETS09-S2L1.txt")  # doctest: +SKIP
    >>> m = evaluate_sequence(gt, res, num_frames=795)  # doctest: +SKIP
    >>> round(m["MOTA"], 3), m["IDSW"]  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepsort_edge.tracking.boxes import iou_matrix, tlwh_to_xyxy
from deepsort_edge.io.mot import MOTData

__all__ = [
    "COMBINED",
    "require_trackeval",
    "METRIC_COLUMNS",
    "SequenceData",
    "EvaluationError",
    "evaluate",
    "evaluate_sequence",
    "format_table",
    "write_csv",
    "write_json",
]

COMBINED = "COMBINED"

# Reported metrics, in table order. Fractions are in [0, 1] (tables show %).
METRIC_COLUMNS: tuple[str, ...] = (
    "HOTA", "DetA", "AssA", "MOTA", "MOTP", "IDF1", "IDP", "IDR",
    "IDSW", "Frag", "MT", "PT", "ML", "FP", "FN", "TP", "GT_Dets", "GT_IDs", "IDs", "Frames",
)
_FRACTIONS = {"HOTA", "DetA", "AssA", "MOTA", "MOTP", "IDF1", "IDP", "IDR"}

_CLASS_IDS = {
    "pedestrian": 1, "person_on_vehicle": 2, "car": 3, "bicycle": 4, "motorbike": 5,
    "non_mot_vehicle": 6, "static_person": 7, "distractor": 8, "occluder": 9,
    "occluder_on_ground": 10, "occluder_full": 11, "reflection": 12, "crowd": 13,
}
_DISTRACTORS = (2, 7, 8, 12)
_EPS = np.finfo(float).eps


class EvaluationError(ValueError):
    """Inputs that TrackEval would reject (duplicate ids, frames out of range...)."""


@dataclass(frozen=True)
class SequenceData:
    """One sequence to evaluate.

    Attributes:
        gt: Ground-truth rows.
        results: Tracker rows (ids >= 1; columns 8-10 ignored).
        num_frames: Sequence length; None = the last frame in either file.
    """

    gt: MOTData
    results: MOTData
    num_frames: int | None = None


def require_trackeval() -> Any:
    """Import TrackEval (the ``eval`` extra), or raise ImportError saying how to install it."""
    try:
        import trackeval  # noqa: PLC0415  (optional extra, heavy)
    except ImportError as exc:
        raise ImportError(
            "evaluation needs TrackEval: pip install '.[cpu,eval]' in a clone "
            "(or pip install trackeval)"
        ) from exc
    return trackeval


def _iou_tlwh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of ``(N, 4)`` and ``(M, 4)`` tlwh boxes, as TrackEval computes it."""
    a, b = tlwh_to_xyxy(a), tlwh_to_xyxy(b)
    iou = iou_matrix(a, b)
    # A box of (next to) no area overlaps nothing, as in TrackEval (which the metrics are defined by).
    iou[(a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) <= _EPS, :] = 0.0
    iou[:, (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) <= _EPS] = 0.0
    return iou


def _resolve_preprocess(gt: MOTData, preprocess: str) -> str:
    if preprocess not in ("auto", "mot15", "mot17", "mot20"):
        raise ValueError(
            f"preprocess must be 'auto', 'mot15', 'mot17' or 'mot20', got {preprocess!r}"
        )
    if preprocess != "auto":
        return preprocess
    classes = gt.classes
    valid = len(gt) > 0 and bool(np.all((classes >= 1) & (classes <= len(_CLASS_IDS))))
    return "mot17" if valid else "mot15"


def _check_unique(ids: np.ndarray, frame: int, what: str, name: str) -> None:
    if ids.size and np.unique(ids).size != ids.size:
        values, counts = np.unique(ids, return_counts=True)
        raise EvaluationError(
            f"{name}: {what} id {int(values[counts > 1][0])} appears twice in frame {frame}"
        )


def _prepare(seq: SequenceData, name: str, preprocess: str) -> tuple[dict[str, Any], str]:
    """Build TrackEval's per-sequence data dict (after MOTChallenge preprocessing)."""
    from scipy.optimize import linear_sum_assignment  # noqa: PLC0415

    gt, res = seq.gt, seq.results
    mode = _resolve_preprocess(gt, preprocess)
    last = max(gt.last_frame, res.last_frame)
    num_frames = last if seq.num_frames is None else int(seq.num_frames)
    if last > num_frames:
        raise EvaluationError(
            f"{name}: files reach frame {last} but the sequence has {num_frames} frames"
        )
    if mode != "mot15" and len(gt):
        bad = np.setdiff1d(np.unique(gt.classes), list(_CLASS_IDS.values()))
        if bad.size:
            raise EvaluationError(
                f"{name}: ground-truth classes {bad.tolist()} are not MOTChallenge classes "
                "1-13; use preprocess='mot15' for files without classes"
            )
    distractors = list(_DISTRACTORS) + ([6] if mode == "mot20" else [])

    gt_index, res_index = gt.frame_index(), res.frame_index()
    gt_ids_all, gt_tlwh_all = gt.ids, gt.table[:, 2:6]
    gt_cls_all, gt_flag_all = gt.classes, gt.table[:, 6]
    res_ids_all, res_tlwh_all = res.ids, res.table[:, 2:6]
    empty = slice(0, 0)

    data: dict[str, Any] = {k: [] for k in ("gt_ids", "tracker_ids", "similarity_scores")}
    for frame in range(1, num_frames + 1):
        g, r = gt_index.get(frame, empty), res_index.get(frame, empty)
        gt_ids, gt_box = gt_ids_all[g], gt_tlwh_all[g]
        tr_ids, tr_box = res_ids_all[r], res_tlwh_all[r]
        _check_unique(gt_ids, frame, "ground-truth", name)
        _check_unique(tr_ids, frame, "tracker", name)
        sim = _iou_tlwh(gt_box, tr_box)
        if mode != "mot15" and gt_ids.size and tr_ids.size:
            scores = sim.copy()
            scores[scores < 0.5 - _EPS] = 0
            rows, cols = linear_sum_assignment(-scores)
            matched = scores[rows, cols] > _EPS
            rows, cols = rows[matched], cols[matched]
            drop = cols[np.isin(gt_cls_all[g][rows], distractors)]
            tr_ids = np.delete(tr_ids, drop)
            sim = np.delete(sim, drop, axis=1)
        keep = gt_flag_all[g].astype(int) != 0  # TrackEval truncates the flag to int
        if mode != "mot15":
            keep &= gt_cls_all[g] == _CLASS_IDS["pedestrian"]
        data["gt_ids"].append(gt_ids[keep])
        data["tracker_ids"].append(tr_ids)
        data["similarity_scores"].append(sim[keep])

    # TrackEval relabels ids to 0..K-1 so that its metrics can index arrays by id.
    for key, count in (("gt_ids", "num_gt_ids"), ("tracker_ids", "num_tracker_ids")):
        per_frame = data[key]
        unique = np.unique(np.concatenate(per_frame)) if per_frame else np.empty(0, np.int64)
        data[key] = [np.searchsorted(unique, ids).astype(int) for ids in per_frame]
        data[count] = int(unique.size)
    data["num_gt_dets"] = int(sum(ids.size for ids in data["gt_ids"]))
    data["num_tracker_dets"] = int(sum(ids.size for ids in data["tracker_ids"]))
    data["num_timesteps"] = num_frames
    data["seq"] = name
    return data, mode


def _metrics() -> tuple[Any, Any, Any]:
    trackeval = require_trackeval()
    quiet = {"PRINT_CONFIG": False, "THRESHOLD": 0.5}
    return (
        trackeval.metrics.HOTA(),
        trackeval.metrics.CLEAR(dict(quiet)),
        trackeval.metrics.Identity(dict(quiet)),
    )


def _summary(hota: dict, clear: dict, ident: dict, data_counts: dict[str, int]) -> dict[str, float]:
    return {
        "HOTA": float(np.mean(hota["HOTA"])),
        "DetA": float(np.mean(hota["DetA"])),
        "AssA": float(np.mean(hota["AssA"])),
        "MOTA": float(clear["MOTA"]),
        "MOTP": float(clear["MOTP"]),
        "IDF1": float(ident["IDF1"]),
        "IDP": float(ident["IDP"]),
        "IDR": float(ident["IDR"]),
        "IDSW": int(clear["IDSW"]),
        "Frag": int(clear["Frag"]),
        "MT": int(clear["MT"]),
        "PT": int(clear["PT"]),
        "ML": int(clear["ML"]),
        "FP": int(clear["CLR_FP"]),
        "FN": int(clear["CLR_FN"]),
        "TP": int(clear["CLR_TP"]),
        "GT_Dets": int(data_counts["num_gt_dets"]),
        "GT_IDs": int(data_counts["num_gt_ids"]),
        "IDs": int(data_counts["num_tracker_ids"]),
        "Frames": int(clear["CLR_Frames"]),
    }


def evaluate(
    sequences: Mapping[str, SequenceData],
    preprocess: str = "auto",
) -> dict[str, dict[str, float]]:
    """Evaluate several sequences and their combination.

    Args:
        sequences: Name -> :class:`SequenceData`.
        preprocess: Ground-truth convention: ``"auto"``, ``"mot15"``,
            ``"mot17"`` or ``"mot20"`` (see the module docstring).

    Returns:
        Name -> metrics (keys :data:`METRIC_COLUMNS`), plus :data:`COMBINED`
        when more than one sequence is given (TrackEval's sequence
        combination: counts summed, HOTA from summed TP/FN/FP and
        association scores weighted by detections).

    Raises:
        ImportError: TrackEval is not installed.
        EvaluationError: An id occurs twice in a frame, or a file reaches
            past ``num_frames``.

    Example:
        >>> out = evaluate({"seq": SequenceData(gt, results, 795)})  # doctest: +SKIP
        >>> out["seq"]["HOTA"]  # doctest: +SKIP
    """
    if not sequences:
        raise ValueError("sequences must hold at least one sequence, got none")
    hota_m, clear_m, ident_m = _metrics()
    raw: dict[str, tuple[dict, dict, dict]] = {}
    counts: dict[str, dict[str, int]] = {}
    out: dict[str, dict[str, float]] = {}
    for name, seq in sequences.items():
        data, _ = _prepare(seq, name, preprocess)
        raw[name] = (
            hota_m.eval_sequence(data),
            clear_m.eval_sequence(data),
            ident_m.eval_sequence(data),
        )
        counts[name] = {k: data[k] for k in ("num_gt_dets", "num_gt_ids", "num_tracker_ids")}
        out[name] = _summary(*raw[name], counts[name])
    if len(sequences) > 1:
        combined = (
            hota_m.combine_sequences({k: v[0] for k, v in raw.items()}),
            clear_m.combine_sequences({k: v[1] for k, v in raw.items()}),
            ident_m.combine_sequences({k: v[2] for k, v in raw.items()}),
        )
        total = {k: sum(c[k] for c in counts.values()) for k in next(iter(counts.values()))}
        out[COMBINED] = _summary(*combined, total)
    return out


def evaluate_sequence(
    gt: MOTData,
    results: MOTData,
    num_frames: int | None = None,
    preprocess: str = "auto",
) -> dict[str, float]:
    """Evaluate one sequence; see :func:`evaluate`.

    Example:
        >>> m = evaluate_sequence(gt, gt_as_results)  # doctest: +SKIP
        >>> m["MOTA"], m["IDF1"], m["HOTA"]  # doctest: +SKIP
        (1.0, 1.0, 1.0)
    """
    return evaluate({"sequence": SequenceData(gt, results, num_frames)}, preprocess)["sequence"]


def _cell(key: str, value: float) -> str:
    if key in _FRACTIONS:
        return f"{100.0 * value:.1f}"
    return str(int(value))


def format_table(
    results: Mapping[str, Mapping[str, float]],
    columns: Sequence[str] = ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "Frag",
                              "MT", "ML", "FP", "FN", "IDs", "GT_IDs"),
) -> str:
    """A fixed-width text table: one row per sequence, fractions as percent.

    Example:
        >>> print(format_table({"seq": metrics}))  # doctest: +SKIP
    """
    header = ["Sequence", *columns]
    rows = [[name, *(_cell(c, m[c]) for c in columns)] for name, m in results.items()]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        # Names left-aligned, numbers right-aligned.
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    lines = [line(header), "  ".join("-" * w for w in widths)]
    lines += [line(row) for row in rows]
    return "\n".join(lines)


def write_csv(path: str | Path, results: Mapping[str, Mapping[str, float]]) -> None:
    """Write one CSV row per sequence with all :data:`METRIC_COLUMNS` (fractions in [0, 1])."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["sequence", *METRIC_COLUMNS])
        for name, metrics in results.items():
            writer.writerow([name, *(metrics[c] for c in METRIC_COLUMNS)])


def write_json(path: str | Path, results: Mapping[str, Mapping[str, float]], **extra: Any) -> None:
    """Write ``{"sequences": {name: metrics}, **extra}`` as indented JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"sequences": {k: dict(v) for k, v in results.items()}, **extra}
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
