"""deepsort_edge.io.evaluation against TrackEval's own dataset pipeline and hand-computed metrics."""

from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path

import numpy as np
import pytest

from deepsort_edge.io.evaluation import (
    COMBINED,
    EvaluationError,
    SequenceData,
    evaluate,
    evaluate_sequence,
    format_table,
    write_csv,
    write_json,
)
from deepsort_edge.io.mot import MOTData, read_mot, write_mot

trackeval = pytest.importorskip("trackeval", reason="TrackEval (the eval extra) is not installed")


# --------------------------------------------------------------------------- reference
def _trackeval_reference(
    tmp_path: Path,
    sequences: dict[str, tuple[MOTData, MOTData, int]],
    benchmark: str,
) -> dict[str, dict[str, float]]:
    """Run TrackEval's MotChallenge2DBox + Evaluator on a temporary folder layout."""
    gt_root = tmp_path / "gt"
    trk_root = tmp_path / "trackers"
    split = f"{benchmark}-train"
    for name, (gt, res, length) in sequences.items():
        seq_dir = gt_root / split / name
        write_mot(seq_dir / "gt" / "gt.txt", gt)
        (seq_dir / "seqinfo.ini").write_text(
            f"[Sequence]\nname={name}\nimDir=img1\nframeRate=30\nseqLength={length}\n"
            "imWidth=1920\nimHeight=1080\nimExt=.jpg\n"
        )
        write_mot(trk_root / split / "ours" / "data" / f"{name}.txt", res)
    (gt_root / "seqmaps").mkdir(parents=True)
    (gt_root / "seqmaps" / f"{split}.txt").write_text("name\n" + "\n".join(sequences) + "\n")
    eval_cfg = {
        "USE_PARALLEL": False, "PRINT_RESULTS": False, "PRINT_CONFIG": False,
        "TIME_PROGRESS": False, "OUTPUT_SUMMARY": False, "OUTPUT_DETAILED": False,
        "PLOT_CURVES": False, "LOG_ON_ERROR": None, "DISPLAY_LESS_PROGRESS": False,
    }
    ds_cfg = {
        "GT_FOLDER": str(gt_root), "TRACKERS_FOLDER": str(trk_root), "BENCHMARK": benchmark,
        "SPLIT_TO_EVAL": "train", "TRACKERS_TO_EVAL": ["ours"], "PRINT_CONFIG": False,
    }
    quiet = {"PRINT_CONFIG": False, "THRESHOLD": 0.5}
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = trackeval.Evaluator(eval_cfg)
        dataset = trackeval.datasets.MotChallenge2DBox(ds_cfg)
        metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR(quiet),
                   trackeval.metrics.Identity(quiet)]
        out, _ = evaluator.evaluate([dataset], metrics)
    res = out["MotChallenge2DBox"]["ours"]
    flat = {}
    for seq, by_class in res.items():
        m = by_class["pedestrian"]
        flat[seq] = {
            "HOTA": float(np.mean(m["HOTA"]["HOTA"])),
            "DetA": float(np.mean(m["HOTA"]["DetA"])),
            "AssA": float(np.mean(m["HOTA"]["AssA"])),
            "MOTA": m["CLEAR"]["MOTA"], "MOTP": m["CLEAR"]["MOTP"],
            "IDF1": m["Identity"]["IDF1"], "IDP": m["Identity"]["IDP"], "IDR": m["Identity"]["IDR"],
            "IDSW": m["CLEAR"]["IDSW"], "Frag": m["CLEAR"]["Frag"], "MT": m["CLEAR"]["MT"],
            "PT": m["CLEAR"]["PT"], "ML": m["CLEAR"]["ML"], "FP": m["CLEAR"]["CLR_FP"],
            "FN": m["CLEAR"]["CLR_FN"], "TP": m["CLEAR"]["CLR_TP"],
            "GT_IDs": m["Count"]["GT_IDs"], "IDs": m["Count"]["IDs"],
        }
    flat[COMBINED] = flat.pop("COMBINED_SEQ")
    return flat


def _as_written(tmp_path: Path, data: MOTData) -> MOTData:
    """The data as the reference reads it (files hold boxes with 2 decimals)."""
    path = tmp_path / "roundtrip.txt"
    write_mot(path, data)
    return read_mot(path)


def _ours(tmp_path: Path, seqs: dict[str, tuple[MOTData, MOTData, int]], mode: str) -> dict:
    return evaluate(
        {n: SequenceData(_as_written(tmp_path, g), _as_written(tmp_path, r), L)
         for n, (g, r, L) in seqs.items()},
        mode,
    )


def _assert_same(ours: dict[str, dict[str, float]], ref: dict[str, dict[str, float]]) -> None:
    assert set(ours) == set(ref)
    for seq in ref:
        for key, value in ref[seq].items():
            assert ours[seq][key] == pytest.approx(value, abs=1e-9), (seq, key)


def _perturb(gt: MOTData, rng: np.random.Generator, *, keep_classes: bool) -> MOTData:
    """A plausible tracker output: jittered boxes, misses, false positives, id swaps."""
    rows = gt.table.copy()
    if keep_classes:
        # Trackers output every object they see, pedestrians and distractors alike.
        rows = rows[np.isin(rows[:, 7], (1, 2, 7, 8, 12))]
    rows = rows[rng.random(len(rows)) > 0.1]
    rows[:, 2:4] += rng.normal(0, 4.0, (len(rows), 2))
    rows[:, 4:6] *= rng.uniform(0.85, 1.15, (len(rows), 2))
    ids = rows[:, 1].copy()
    # Swap two identities from the middle frame on, and split a third one.
    uniq = np.unique(ids)
    mid = np.median(rows[:, 0])
    if uniq.size >= 3:
        a, b, c = uniq[:3]
        later = rows[:, 0] >= mid
        ids[later & (rows[:, 1] == a)] = b
        ids[later & (rows[:, 1] == b)] = a
        ids[later & (rows[:, 1] == c)] = uniq.max() + 1
    rows[:, 1] = ids
    fps = rows[rng.random(len(rows)) < 0.05].copy()
    fps[:, 2] += rng.uniform(60, 200, len(fps))
    fps[:, 1] = uniq.max() + 2 + np.arange(len(fps)) % 7
    # One false-positive id per frame at most: keep the first of each (frame, id).
    table = np.concatenate([rows, fps])
    _, first = np.unique(table[:, [0, 1]], axis=0, return_index=True)
    table = table[np.sort(first)]
    table[:, 6] = 1.0
    table[:, 7:] = -1.0
    return MOTData(table[np.argsort(table[:, 0], kind="stable")], 10)


def _synthetic_gt(seed: int, num_frames: int = 60, classes: bool = True) -> MOTData:
    """Ground truth from a synthetic scene, with MOT17 classes and flags when asked."""
    from deepsort_edge.demo.synthetic import SceneConfig, iter_scene

    cfg = SceneConfig(num_objects=12, width=640, height=360, seed=seed, turnover=0.02)
    frames, ids, boxes = [], [], []
    for f in iter_scene(cfg, num_frames):
        frames.append(np.full(len(f.gt_ids), f.index))
        ids.append(f.gt_ids)
        boxes.append(f.gt_xyxy)
    ids_all = np.concatenate(ids)
    rng = np.random.default_rng(seed)
    cls = flag = None
    if classes:
        # Each identity gets a class; a few pedestrian rows are flagged "ignore".
        by_id = rng.choice([1, 1, 1, 2, 7, 8, 12, 3], size=ids_all.max() + 1)
        cls = by_id[ids_all]
        flag = (rng.random(ids_all.size) > 0.05).astype(float)
    return MOTData.from_arrays(np.concatenate(frames), ids_all, np.concatenate(boxes),
                               scores=flag, classes=cls,
                               visibility=np.ones(ids_all.size) if classes else None)


# --------------------------------------------------------------------------- tests
def test_matches_trackeval_dataset_pipeline_mot17_style(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    seqs = {}
    for k, seed in enumerate((1, 2)):
        gt = _synthetic_gt(seed)
        seqs[f"SYN-{k:02d}"] = (gt, _perturb(gt, rng, keep_classes=True), 60)
    ours = _ours(tmp_path, seqs, "mot17")
    _assert_same(ours, _trackeval_reference(tmp_path, seqs, "MOT17"))
    # The distractor step matters here: without it the numbers differ.
    plain = _ours(tmp_path, seqs, "mot15")
    assert plain[COMBINED]["FP"] > ours[COMBINED]["FP"]


def test_matches_trackeval_dataset_pipeline_mot15_style(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    gt = _synthetic_gt(3, classes=False)
    gt = gt.with_scores(np.where(np.arange(len(gt)) % 17 == 0, 0.0, 1.0))  # some flag-0 rows
    seqs = {"SYN-15": (gt, _perturb(gt, rng, keep_classes=False), 60)}
    ours = _ours(tmp_path, seqs, "auto")
    ref = _trackeval_reference(tmp_path, seqs, "MOT15")
    ref.pop(COMBINED)
    _assert_same(ours, ref)


@pytest.mark.slow
def test_matches_trackeval_on_real_ground_truth(tmp_path: Path, shared_data: Path) -> None:
    rng = np.random.default_rng(2)
    seqs = {}
    for name, frames in (("MOT17-09-FRCNN", 525), ("MOT17-05-FRCNN", 837)):
        gt = read_mot(shared_data / "MOT17" / "train" / name / "gt" / "gt.txt")
        seqs[name] = (gt, _perturb(gt, rng, keep_classes=True), frames)
    ours = _ours(tmp_path, seqs, "auto")
    _assert_same(ours, _trackeval_reference(tmp_path, seqs, "MOT17"))


def _two_walkers(switch: bool) -> tuple[MOTData, MOTData]:
    frames = np.repeat(np.arange(1, 11), 2)
    gt_ids = np.tile([1, 2], 10)
    x = np.where(gt_ids == 1, 0.0, 200.0) + frames * 5.0
    boxes = np.stack([x, np.full(20, 50.0), x + 40, np.full(20, 150.0)], axis=1)
    res_ids = np.where(gt_ids == 1, 7, 8)
    if switch:
        res_ids[(gt_ids == 1) & (frames >= 6)] = 9
    gt = MOTData.from_arrays(frames, gt_ids, boxes)
    return gt, MOTData.from_arrays(frames, res_ids, boxes)


def test_perfect_tracking_scores_one() -> None:
    gt, res = _two_walkers(switch=False)
    m = evaluate_sequence(gt, res)
    assert (m["HOTA"], m["MOTA"], m["IDF1"], m["IDSW"], m["Frag"]) == (1.0, 1.0, 1.0, 0, 0)
    assert (m["FP"], m["FN"], m["TP"], m["GT_IDs"], m["IDs"]) == (0, 0, 20, 2, 2)


def test_one_id_switch_hand_computed() -> None:
    gt, res = _two_walkers(switch=True)
    m = evaluate_sequence(gt, res)
    assert m["IDSW"] == 1
    assert m["MOTA"] == pytest.approx(1 - 1 / 20)
    # Walker 1 keeps its best id for 5 of 10 frames: IDTP 15, IDFN 5, IDFP 5.
    assert m["IDF1"] == pytest.approx(30 / 40)
    # Every detection matches; association 0.5 for walker 1's 10 boxes, 1 for walker 2's.
    assert m["DetA"] == pytest.approx(1.0)
    assert m["AssA"] == pytest.approx(0.75)
    assert m["HOTA"] == pytest.approx(math.sqrt(0.75))


def test_misses_and_false_positives_counted() -> None:
    gt, res = _two_walkers(switch=False)
    res = res.select(~((res.frames == 3) & (res.ids == 8)))  # one miss
    extra = MOTData.from_arrays([4], [99], [[500, 500, 540, 600]])  # one false positive
    res = MOTData(np.concatenate([res.table, extra.table])[np.argsort(
        np.concatenate([res.table[:, 0], extra.table[:, 0]]), kind="stable")])
    m = evaluate_sequence(gt, res)
    assert (m["FN"], m["FP"], m["IDSW"]) == (1, 1, 0)
    assert m["Frag"] == 1
    assert m["MOTA"] == pytest.approx(1 - 2 / 20)


def test_empty_results_and_empty_gt() -> None:
    gt, _ = _two_walkers(switch=False)
    m = evaluate_sequence(gt, MOTData.empty(), num_frames=10)
    assert (m["MOTA"], m["HOTA"], m["FN"], m["IDs"]) == (0.0, 0.0, 20, 0)
    m = evaluate_sequence(MOTData.empty(), gt, num_frames=10)
    assert m["FP"] == 20 and m["GT_IDs"] == 0


def test_duplicate_id_in_a_frame_is_an_error() -> None:
    gt, res = _two_walkers(switch=False)
    dup = res.table.copy()
    dup[1, 1] = dup[0, 1]
    with pytest.raises(EvaluationError, match="appears twice in frame 1"):
        evaluate_sequence(gt, MOTData(dup))


def test_frames_past_sequence_length_is_an_error() -> None:
    gt, res = _two_walkers(switch=False)
    with pytest.raises(EvaluationError, match="reach frame 10 but the sequence has 5"):
        evaluate_sequence(gt, res, num_frames=5)


def test_invalid_classes_rejected_in_mot17_mode() -> None:
    gt, res = _two_walkers(switch=False)
    with pytest.raises(EvaluationError, match="not MOTChallenge classes"):
        evaluate_sequence(gt, res, preprocess="mot17")  # classes are -1 here
    with pytest.raises(ValueError, match="preprocess must be"):
        evaluate_sequence(gt, res, preprocess="kitti")


def test_table_csv_json(tmp_path: Path) -> None:
    gt, res = _two_walkers(switch=True)
    out = evaluate({"a": SequenceData(gt, res), "b": SequenceData(gt, gt)})
    assert list(out) == ["a", "b", COMBINED]
    assert out[COMBINED]["IDSW"] == 1 and out[COMBINED]["GT_Dets"] == 40
    table = format_table(out)
    assert table.splitlines()[0].split()[:3] == ["Sequence", "HOTA", "DetA"]
    assert "95.0" in table.splitlines()[2]  # MOTA of "a" in percent
    write_csv(tmp_path / "m.csv", out)
    lines = (tmp_path / "m.csv").read_text().splitlines()
    assert lines[0].startswith("sequence,HOTA,") and len(lines) == 4
    write_json(tmp_path / "m.json", out, note="x")
    import json

    payload = json.loads((tmp_path / "m.json").read_text())
    assert payload["note"] == "x" and payload["sequences"]["a"]["IDSW"] == 1
