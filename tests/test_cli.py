"""The deepsort-edge command line: track, eval, demo, and how it fails."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from deepsort_edge.cli.__main__ import main
from deepsort_edge.cli.track_one import tracker_kwargs
from deepsort_edge.io.mot import MOTData, read_mot, write_mot
from tests.common import reference_tracking, scene_detections

OSNET_ARGS = ["--input-size", "256", "128", "--mean", "0.485", "0.456", "0.406",
              "--std", "0.229", "0.224", "0.225"]


# --------------------------------------------------------------------------- helpers
def _write_video(path: Path, frames: int, size: tuple[int, int] = (160, 120)) -> None:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    assert writer.isOpened()
    for i in range(frames):
        image = np.full((size[1], size[0], 3), 90, np.uint8)
        cv2.rectangle(image, (10 + 3 * i, 20), (40 + 3 * i, 90), (30, 30, 220), -1)
        cv2.rectangle(image, (120 - 2 * i, 30), (145 - 2 * i, 100), (220, 160, 20), -1)
        writer.write(image)
    writer.release()


def _video_detections(frames: int) -> MOTData:
    f = np.arange(1, frames + 1)
    a = np.stack([10 + 3 * f - 3, np.full(frames, 20), 40 + 3 * f - 3, np.full(frames, 90)], 1)
    b = np.stack([120 - 2 * f + 2, np.full(frames, 30), 145 - 2 * f + 2, np.full(frames, 100)], 1)
    return MOTData.from_arrays(np.r_[f, f], np.full(2 * frames, -1), np.r_[a, b],
                               scores=np.full(2 * frames, 0.9))


def _count_video_frames(path: Path) -> int:
    import cv2

    capture = cv2.VideoCapture(str(path))
    n = 0
    while capture.read()[0]:
        n += 1
    capture.release()
    return n


# --------------------------------------------------------------------------- top level
def test_top_level_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().err
    assert main(["--version"]) == 0
    assert main(["frobnicate"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert main(["track", "--help"]) == 0
    help_text = capsys.readouterr().out
    for flag in ("--minimum-score", "--score-norm", "--video-out", "--summary", "--no-appearance",
                 "--nn-budget", "--gating", "--matching", "--model", "--provider", "--input-size"):
        assert flag in help_text


def test_every_setting_is_an_option_and_reaches_the_tracker(capsys: pytest.CaptureFixture[str]) -> None:
    from deepsort_edge.tracking import settings
    from deepsort_edge.cli.__main__ import build_parser

    parser, _ = build_parser(["track"])
    with pytest.raises(SystemExit):
        parser.parse_args(["track", "--help"])
    help_text = capsys.readouterr().out
    for name in settings.names():
        flag = "--no-appearance" if name == "use_appearance" else "--" + name.replace("_", "-")
        assert flag in help_text, flag
    assert "--preset" in help_text
    args = parser.parse_args(["track", "x.txt", "--preset", "paper", "--max-age", "12", "--no-class-aware",
                              "--minimum-score", "none", "--appearance-mode", "gallery"])
    assert tracker_kwargs(args) == {"preset": "paper", "max_age": 12, "class_aware": False,
                                    "minimum_score": None, "appearance_mode": "gallery"}
    assert tracker_kwargs(parser.parse_args(["track", "x.txt"])) == {}


# --------------------------------------------------------------------------- track: detections only
def test_summary_records_the_settings_that_ran_with_a_preset(tmp_path: Path) -> None:
    """The review's trap: --preset paper --appearance-mode ema runs (and reports) ema mode."""
    from deepsort_edge import DeepSORTTracker

    _, det = scene_detections()
    write_mot(tmp_path / "SYN" / "det.txt", det)
    rc = main(["track", str(tmp_path / "SYN" / "det.txt"), "-o", str(tmp_path / "r.txt"), "--preset", "paper",
               "--appearance-mode", "ema", "--summary", str(tmp_path / "s.json"), "--no-progress",
               "--frame-rate", "25"])
    assert rc == 0
    recorded = json.loads((tmp_path / "s.json").read_text())["tracker"]
    assert recorded.pop("preset") == "paper"
    expected = DeepSORTTracker(preset="paper", appearance_mode="ema", frame_rate=25.0, use_appearance=False)
    assert recorded == expected.settings.to_dict()
    assert recorded["appearance_mode"] == "ema" and recorded["max_age"] == 30  # ema asked for, the rest paper's


def test_detections_only_matches_library(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, det = scene_detections()
    write_mot(tmp_path / "SYN" / "det.txt", det)
    out = tmp_path / "res.txt"
    rc = main(["track", str(tmp_path / "SYN" / "det.txt"), "-o", str(out),
               "--summary", str(tmp_path / "s.json"), "--no-progress", "--frame-rate", "30"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "Tracked SYN (detections only, motion only): 40 frames" in printed
    ours = read_mot(out)
    ref = reference_tracking(read_mot(tmp_path / "SYN" / "det.txt"), 40)
    assert len(ours) > 100
    np.testing.assert_array_equal(ours.table[:, :2], ref.table[:, :2])
    np.testing.assert_allclose(ours.table[:, 2:6], ref.table[:, 2:6], atol=0.011)
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["mode"] == "detections" and summary["appearance"] is False
    assert summary["frames"] == 40 and summary["detections"] == len(det)
    assert set(summary["time_s"]) >= {"decode", "embed", "track"}
    assert summary["tracks"] == np.unique(ours.ids).size


def test_model_without_frames_is_reported_not_silently_ignored(tmp_path: Path, capsys) -> None:
    _, det = scene_detections()
    write_mot(tmp_path / "det.txt", det)
    rc = main(["track", str(tmp_path / "det.txt"), "-o", str(tmp_path / "r.txt"), "-q", "--no-progress",
               "--model", str(tmp_path / "reid.onnx")])
    assert rc == 0
    err = capsys.readouterr().err
    assert "--model" in err and "no frames to embed" in err


def test_tracker_options_are_passed_through(tmp_path: Path) -> None:
    _, det = scene_detections(seed=3)
    write_mot(tmp_path / "det.txt", det)
    main(["track", str(tmp_path / "det.txt"), "-o", str(tmp_path / "a.txt"), "-q", "--no-progress",
          "--minimum-consecutive-frames", "1", "--lost-track-buffer", "5", "--gating", "position"])
    ref = reference_tracking(det, 40, minimum_consecutive_frames=1, lost_track_buffer=5,
                              gating="position")
    ours = read_mot(tmp_path / "a.txt")
    assert ours.frames.min() == 1  # confirmed at once
    np.testing.assert_array_equal(ours.table[:, :2], ref.table[:, :2])


def test_min_score_and_acf_scores(tmp_path: Path) -> None:
    _, det = scene_detections(seed=4)
    raw = det.with_scores(det.scores * 140.0 - 0.5)  # MOT15 ACF-like range
    write_mot(tmp_path / "det.txt", raw)
    summary = tmp_path / "s.json"
    assert main(["track", str(tmp_path / "det.txt"), "-o", str(tmp_path / "r.txt"), "-q",
                 "--no-progress", "--summary", str(summary), "--min-score", "0.6", "--score-norm", "auto"]) == 0
    s = json.loads(summary.read_text())
    assert "min-max normalised" in s["score_note"]
    lo, hi = raw.scores.min(), raw.scores.max()
    expected = int(((raw.scores - lo) / (hi - lo) >= 0.6 - 1e-6).sum())
    assert abs(s["detections"] - expected) <= 1  # float32 rounding at the threshold
    assert s["detections"] < len(raw)


# --------------------------------------------------------------------------- track: faults
@pytest.mark.parametrize(
    ("make", "extra", "message"),
    [
        (lambda p: p / "missing", [], "input not found"),
        (lambda p: p, ["--detections", "nope.txt"], "detections file not found"),
        (lambda p: (p / "seq").mkdir() or p / "seq", [], "no det/det.txt"),
    ],
)
def test_missing_inputs(tmp_path: Path, capsys, make, extra, message) -> None:
    source = make(tmp_path)
    extra = [str(tmp_path / e) if e.endswith(".txt") else e for e in extra]
    assert main(["track", str(source), *extra, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deepsort-edge track: error:") and message in err


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        ("1,-1,10,10,20,40,high\n", [], "non-numeric"),
        ("1,-1,10,10,20,40,nan\n", [], "NaN"),
        ("1,-1,10,10,20\n", [], "at least 6"),
        ("1,-1,10,10,20,40,5.5\n1,-1,50,10,20,40,0.5\n", ["--score-calibration", "none"], "must lie in [0, 1]"),
        ("1,-1,10,10,20,40,0.5\n", ["--min-score", "2"], "--minimum-score must be in [0, 1]"),
    ],
)
def test_bad_detection_files(tmp_path: Path, capsys, content, extra, message) -> None:
    (tmp_path / "det.txt").write_text(content)
    assert main(["track", str(tmp_path / "det.txt"), "-o", str(tmp_path / "r.txt"),
                 "--no-progress", *extra]) == 2
    err = capsys.readouterr().err
    assert "error" in err and message in err


def test_unreadable_video(tmp_path: Path, capsys) -> None:
    (tmp_path / "clip.mp4").write_bytes(b"\x00not a video at all" * 50)
    (tmp_path / "det.txt").write_text("1,-1,10,10,20,40,0.9\n")
    assert main(["track", str(tmp_path / "clip.mp4"), "-d", str(tmp_path / "det.txt"),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "cannot open video" in err or "could not read any frame" in err
    assert main(["track", str(tmp_path / "clip.mp4"), "--no-progress"]) == 2
    assert "needs --detections" in capsys.readouterr().err


def test_video_out_needs_frames(tmp_path: Path, capsys) -> None:
    (tmp_path / "det.txt").write_text("1,-1,10,10,20,40,0.9\n")
    assert main(["track", str(tmp_path / "det.txt"), "--video-out", str(tmp_path / "v.mp4"),
                 "--no-progress"]) == 2
    assert "--video-out needs frames" in capsys.readouterr().err


def test_bad_tracker_setting_is_reported(tmp_path: Path, capsys) -> None:
    (tmp_path / "det.txt").write_text("1,-1,10,10,20,40,0.9\n")
    assert main(["track", str(tmp_path / "det.txt"), "-o", str(tmp_path / "r.txt"), "--no-progress",
                 "--appearance-weight", "3"]) == 2
    assert "appearance_weight" in capsys.readouterr().err


# --------------------------------------------------------------------------- track: video
def test_video_with_detections_and_annotated_output(tmp_path: Path, capsys) -> None:
    _write_video(tmp_path / "clip.avi", 30)
    write_mot(tmp_path / "det.txt", _video_detections(30))
    rc = main(["track", str(tmp_path / "clip.avi"), "-d", str(tmp_path / "det.txt"),
               "-o", str(tmp_path / "r.txt"), "--video-out", str(tmp_path / "out.mp4"),
               "--summary", str(tmp_path / "s.json"), "--no-progress", "--no-appearance"])
    assert rc == 0, capsys.readouterr().err
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["mode"] == "video" and s["frames"] == 30 and not s["stopped_early"]
    assert s["frame_rate"] == pytest.approx(10.0)  # from the video
    res = read_mot(tmp_path / "r.txt")
    assert np.unique(res.ids).tolist() == [1, 2]
    assert _count_video_frames(Path(s["outputs"]["video"])) == 30


def test_video_that_ends_early(tmp_path: Path, capsys) -> None:
    _write_video(tmp_path / "clip.avi", 12)
    write_mot(tmp_path / "det.txt", _video_detections(25))
    rc = main(["track", str(tmp_path / "clip.avi"), "-d", str(tmp_path / "det.txt"),
               "-o", str(tmp_path / "r.txt"), "--summary", str(tmp_path / "s.json"),
               "--no-progress", "--no-appearance"])
    assert rc == 0
    captured = capsys.readouterr()
    assert "video ended after 12 frames" in captured.err and "13-25 were not tracked" in captured.err
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["stopped_early"] is True and s["frames"] == 12
    assert read_mot(tmp_path / "r.txt").last_frame <= 12


def test_undecodable_image_is_tracked_as_empty_frame(tmp_path: Path, capsys) -> None:
    import cv2

    seq = tmp_path / "SEQ"
    (seq / "img1").mkdir(parents=True)
    (seq / "det").mkdir()
    (seq / "seqinfo.ini").write_text(
        "[Sequence]\nname=SEQ\nimDir=img1\nframeRate=10\nseqLength=6\nimWidth=160\n"
        "imHeight=120\nimExt=.jpg\n")
    for i in range(1, 7):
        cv2.imwrite(str(seq / "img1" / f"{i:06d}.jpg"), np.full((120, 160, 3), 40 * i, np.uint8))
    (seq / "img1" / "000004.jpg").write_bytes(b"broken")
    write_mot(seq / "det" / "det.txt", _video_detections(6))
    rc = main(["track", str(seq), "-o", str(tmp_path / "r.txt"), "--summary", str(tmp_path / "s.json"),
               "--no-progress", "--model", str(_tiny_model(tmp_path))])
    assert rc == 0, capsys.readouterr().err
    assert "1 frame(s) could not be decoded" in capsys.readouterr().err
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["unreadable_frames"] == [4] and s["frames"] == 6 and s["appearance"] is True
    assert 4 not in read_mot(tmp_path / "r.txt").frames


def _tiny_model(tmp_path: Path) -> Path:
    """The shipped default model (the embedder's own tests cover it)."""
    from deepsort_edge.appearance.embedder import default_model_path

    try:
        return default_model_path()
    except FileNotFoundError:
        pytest.skip("the shipped default model is not in models/ yet")


# --------------------------------------------------------------------------- track: shared data
def test_pets09_sequence_prefix_with_osnet(tmp_path: Path, shared_data: Path, capsys) -> None:
    seq = shared_data / "MOT15" / "train" / "PETS09-S2L1"
    rc = main(["track", str(seq), "--max-frames", "15", "-o", str(tmp_path / "r.txt"),
               "--summary", str(tmp_path / "s.json"), "--no-progress",
               "--model", str(shared_data / "models" / "osnet_x0_25_msmt17.onnx"), *OSNET_ARGS,
               "--provider", "cpu"])
    assert rc == 0, capsys.readouterr().err
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["frames"] == 15 and s["mode"] == "images" and s["appearance"] is True
    # ACF scores (-0.5 to 139) go to the tracker as given; its score_calibration maps them.
    assert s["frame_rate"] == 7.0 and "as given" in s["score_note"]
    assert s["time_s"]["embed"] > 0 and s["time_s"]["decode"] > 0
    res = read_mot(tmp_path / "r.txt")
    assert len(res) > 30 and res.last_frame <= 15
    # Evaluated on the prefix, most boxes should be correct.
    from deepsort_edge.io.evaluation import evaluate_sequence

    gt = read_mot(seq / "gt" / "gt.txt")
    m = evaluate_sequence(gt.select(gt.frames <= 15), res, num_frames=15)
    assert m["MOTA"] > 0.5


def test_pets09_video_with_scaled_detections(tmp_path: Path, shared_data: Path, capsys) -> None:
    det = read_mot(shared_data / "MOT15" / "train-sort-frcnn-det" / "PETS09-S2L1" / "det.txt")
    det = det.select(det.frames <= 12)
    table = det.table.copy()
    table[:, 2:6] *= 0.625  # the video is 480x360, the frames 768x576
    write_mot(tmp_path / "det.txt", MOTData(table))
    rc = main(["track", str(shared_data / "video" / "pets09-s2l1-480x360.avi"),
               "-d", str(tmp_path / "det.txt"), "--max-frames", "12", "-o", str(tmp_path / "r.txt"),
               "--summary", str(tmp_path / "s.json"), "--no-progress", "--video-out",
               str(tmp_path / "v.mp4"), "--model", str(shared_data / "models" / "osnet_x0_25_msmt17.onnx"),
               *OSNET_ARGS])
    assert rc == 0, capsys.readouterr().err
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["frames"] == 12 and s["mode"] == "video" and not s["stopped_early"]
    assert not s["warnings"]
    assert _count_video_frames(Path(s["outputs"]["video"])) == 12
    assert len(read_mot(tmp_path / "r.txt")) > 20


# --------------------------------------------------------------------------- eval
def test_eval_command(tmp_path: Path, capsys) -> None:
    pytest.importorskip("trackeval")
    _, det = scene_detections(seed=5)
    for name in ("A", "B"):
        (tmp_path / "gt" / name).mkdir(parents=True)
        (tmp_path / "gt" / name / "seqinfo.ini").write_text(
            f"[Sequence]\nname={name}\nframeRate=30\nseqLength=40\n")
    # Ground truth: the reference tracker's output; results: the same for A, ids shuffled for B.
    ref = reference_tracking(det, 40, minimum_consecutive_frames=1)
    write_mot(tmp_path / "gt" / "A" / "gt" / "gt.txt", ref)
    write_mot(tmp_path / "gt" / "B" / "gt" / "gt.txt", ref)
    write_mot(tmp_path / "res" / "A.txt", ref)
    swapped = ref.table.copy()
    late = swapped[:, 0] > 20
    swapped[late, 1] = swapped[late, 1] + 100
    write_mot(tmp_path / "res" / "B.txt", MOTData(swapped))
    rc = main(["eval", str(tmp_path / "gt"), str(tmp_path / "res"), "--csv", str(tmp_path / "m.csv"),
               "--json", str(tmp_path / "m.json")])
    assert rc == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert lines["A"][1:6] == ["100.0"] * 5  # HOTA DetA AssA MOTA IDF1
    frames_of = ref.table[:, 0]
    n_ids = np.intersect1d(ref.ids[frames_of <= 20], ref.ids[frames_of > 20]).size
    assert n_ids > 0
    assert int(lines["B"][6]) == n_ids  # every track alive across frame 20 switches id once
    assert "COMBINED" in lines
    payload = json.loads((tmp_path / "m.json").read_text())
    assert payload["sequences"]["B"]["IDSW"] == n_ids
    assert (tmp_path / "m.csv").read_text().count("\n") == 4
    # One gt file and one results file work too.
    assert main(["eval", str(tmp_path / "gt" / "A" / "gt" / "gt.txt"), str(tmp_path / "res" / "A.txt")]) == 0


def test_eval_errors(tmp_path: Path, capsys, monkeypatch) -> None:
    assert main(["eval", str(tmp_path / "nope"), str(tmp_path)]) == 2
    assert "ground truth not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["eval", str(tmp_path / "empty"), str(tmp_path)]) == 2
    assert "no ground truth" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "trackeval", None)  # as if the extra were not installed
    assert main(["eval", str(tmp_path), str(tmp_path)]) == 3
    assert "pip install" in capsys.readouterr().err


# --------------------------------------------------------------------------- demo
@pytest.mark.slow
def test_demo_writes_files_and_prints_metrics(tmp_path: Path, capsys) -> None:
    _tiny_model(tmp_path)
    out = tmp_path / "demo"
    rc = main(["demo", "--frames", "24", "--output-dir", str(out), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "HOTA" in printed and "IDF1" in printed and "appearance from the shipped model" in printed
    assert "demo, appearance" in printed and "demo, motion only" in printed
    summary = json.loads((out / "summary.json").read_text())
    video = Path(summary["outputs"]["video"])
    assert video.is_file() and _count_video_frames(video) == 24
    assert (out / "demo.png").is_file()
    m = summary["metrics"]
    assert 0.0 <= m["HOTA"] <= 1.0 and m["GT_IDs"] >= 9
    # The printed metrics are what `eval` computes from the written files.
    assert main(["eval", str(out), str(out / "results.txt"), "--json", str(tmp_path / "m.json")]) == 0
    again = json.loads((tmp_path / "m.json").read_text())["sequences"]["demo"]
    assert summary["motion_only_metrics"]["GT_IDs"] == m["GT_IDs"]
    assert again["IDSW"] == m["IDSW"] and again["HOTA"] == pytest.approx(m["HOTA"], abs=1e-3)


def test_demo_without_video_or_appearance(tmp_path: Path, capsys) -> None:
    out = tmp_path / "d"
    assert main(["demo", "--frames", "10", "--output-dir", str(out), "--no-video", "--no-appearance",
                 "--no-progress"]) == 0
    assert "motion only" in capsys.readouterr().out
    assert not list(out.glob("demo.mp4")) and (out / "demo.png").is_file()
    assert main(["demo", "--frames", "1"]) == 2


def test_prefetch_keeps_order_errors_and_stops_its_reader() -> None:
    import threading

    from deepsort_edge.io.video import prefetch

    frames = [(i, np.full((2, 2, 3), i, np.uint8)) for i in range(1, 50)]
    got = list(prefetch(iter(frames), depth=3))
    assert [f for f, _ in got] == list(range(1, 50)) and all((img == f).all() for f, img in got)

    def broken():
        yield 1, None
        raise OSError("disk gone")

    stream = prefetch(broken())
    assert next(stream) == (1, None)
    with pytest.raises(OSError, match="disk gone"):
        next(stream)

    def endless():
        i = 0
        while True:
            i += 1
            yield i, None

    stream = prefetch(endless(), depth=2)
    assert [next(stream) for _ in range(5)] == [(i, None) for i in range(1, 6)]
    stream.close()  # the consumer stops: the reader thread ends too
    assert not any(t.name == "deepsort-edge-frame-reader" and t.is_alive() for t in threading.enumerate())
    with pytest.raises(ValueError, match="depth"):
        list(prefetch(iter(frames), depth=0))
