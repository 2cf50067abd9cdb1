"""Every user error of the command line: one line naming the option or file, exit status 2."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from deepsort_edge.cli.__main__ import main
from deepsort_edge.streams.pipeline import frames_to_step
from deepsort_edge.io.mot import MOTData, read_mot, write_mot
from tests.common import reference_tracking, scene_detections

DET = "1,-1,10,10,20,40,0.9\n2,-1,11,10,20,40,0.9\n"
SEQINFO = "[Sequence]\nname=SEQ\nframeRate=10\nseqLength=2\nimWidth=320\nimHeight=240\n"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def error_line(capsys: pytest.CaptureFixture[str], command: str = "track") -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1, err
    assert errors[0].startswith(f"deepsort-edge {command}: error: "), err
    return errors[0]


def seq_folder(root: Path, ini: str | None = SEQINFO, det: str = DET) -> Path:
    seq = root / "SEQ"
    (seq / "det").mkdir(parents=True)
    (seq / "det" / "det.txt").write_text(det)
    if ini is not None:
        (seq / "seqinfo.ini").write_text(ini)
    return seq


def _jpeg(path: Path) -> str:
    import cv2

    assert cv2.imwrite(str(path), np.full((8, 8, 3), 127, np.uint8))
    return str(path)


def _onnx(path: Path) -> str:
    """A small real ONNX model (its bytes happen to hold no NUL)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x, y = (helper.make_tensor_value_info(n, TensorProto.FLOAT, [1]) for n in "xy")
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])),
              str(path))
    return str(path)


def _det(tmp: Path, content: str = DET) -> str:
    (tmp / "det.txt").write_text(content)
    return str(tmp / "det.txt")


# Each case: (setup(tmp) -> argv after "track", text the error line must contain).
CASES = {
    # paths
    "input missing": (lambda t: [str(t / "nope.txt")], "input not found"),
    "output is a folder": (lambda t: [_det(t), "-o", str(t)], "is a folder; give a file name"),
    "output under a file": (lambda t: [_det(t), "-o", str(t / "det.txt" / "r.txt")], "det.txt is a file"),
    "summary is a folder": (lambda t: [_det(t), "-o", str(t / "r.txt"), "--summary", str(t)], "--summary"),
    "summary under a file": (lambda t: [_det(t), "-o", str(t / "r.txt"), "--summary", str(t / "det.txt" / "s")],
                             "--summary"),
    "output overwrites input": (lambda t: [_det(t), "-o", str(t / "det.txt")], "is an input of this run"),
    "detections path is a folder": (lambda t: [str(seq_folder(t)), "-d", str(t)], "is a folder"),
    "detections missing": (lambda t: [str(seq_folder(t)), "-d", str(t / "x.txt")], "detections file not found"),
    # formats
    "frame beyond bound": (lambda t: [_det(t, "1000000000,-1,10,10,20,40,0.9\n")], "line 1: frame 1000000000 is beyond"),
    "fractional id": (lambda t: [_det(t, "1,3.5,10,10,20,40,0.9\n")], "line 1: id must be an integer"),
    "frame zero": (lambda t: [_det(t, "0,-1,10,10,20,40,0.9\n")], "line 1: frame must be an integer >= 1"),
    "binary file": (lambda t: [(t / "det.txt").write_bytes(bytes(range(256)) * 4) and str(t / "det.txt")],
                    "det.txt is binary data, not text; expected a MOT text file"),
    "image as detections": (lambda t: [_jpeg(t / "frame.jpg")], "frame.jpg is a JPEG image, not text"),
    "model as detections": (lambda t: [str(seq_folder(t)), "-d", _onnx(t / "reid.onnx")],
                            "reid.onnx is an ONNX model, not text; expected a MOT text file"),
    "seqinfo not ini": (lambda t: [str(seq_folder(t, "just some text\n"))], "seqinfo.ini: not a valid ini file"),
    "seqinfo no section": (lambda t: [str(seq_folder(t, "[Other]\nx=1\n"))], "seqinfo.ini: expected a [Sequence]"),
    "seqinfo bad number": (lambda t: [str(seq_folder(t, SEQINFO.replace("frameRate=10", "frameRate=fast")))],
                           "seqinfo.ini: bad value"),
    "seqinfo zero rate": (lambda t: [str(seq_folder(t, SEQINFO.replace("frameRate=10", "frameRate=0")))],
                          "seqinfo.ini: frameRate must be a positive number"),
    "seqinfo negative length": (lambda t: [str(seq_folder(t, SEQINFO.replace("seqLength=2", "seqLength=-4")))],
                                "seqinfo.ini: seqLength must be in"),
    "seqinfo missing key": (lambda t: [str(seq_folder(t, "[Sequence]\nframeRate=10\n"))], "missing key 'seqLength'"),
    # values
    "frame rate zero": (lambda t: [_det(t), "--frame-rate", "0"], "--frame-rate must be a positive number, got 0"),
    "frame rate nan": (lambda t: [_det(t), "--frame-rate", "nan"], "--frame-rate must be a positive number"),
    "max frames zero": (lambda t: [_det(t), "--max-frames", "0"], "--max-frames must be >= 1"),
    "min score": (lambda t: [_det(t), "--min-score", "2"], "--minimum-score must be in [0, 1]"),
    "minimum score": (lambda t: [_det(t), "--minimum-score", "-1"], "--minimum-score must be in [0, 1]"),
    "score scale": (lambda t: [_det(t), "--score-scale", "0"], "--score-scale must be a positive number"),
    "tracker setting": (lambda t: [_det(t), "--nn-budget", "0"], "nn_budget must be >= 1"),
    "bad int": (lambda t: [_det(t), "--max-frames", "many"], "argument --max-frames: invalid int value"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_user_error_is_one_line_and_exit_status_2(tmp_path: Path, capsys, name: str) -> None:
    setup, expected = CASES[name]
    argv = setup(tmp_path)
    if "-o" not in argv and "--max-frames" not in argv[-2:]:
        argv += ["-o", str(tmp_path / "out" / "r.txt")]
    assert main(["track", *argv, "--no-progress", "-q"]) == 2
    assert expected in error_line(capsys)


# argparse's own errors: the one line alone, not after dozens of lines of usage.
USAGE_ERRORS = {
    "unknown preset": (["track", "det.txt", "--preset", "fast"], "track: error: argument --preset: invalid choice: 'fast'"),
    "unknown choice": (["track", "det.txt", "--gating", "loose"], "track: error: argument --gating: invalid choice"),
    "unknown option": (["track", "det.txt", "--frobnicate"], "track: error: unrecognized arguments: --frobnicate"),
    "bad number": (["track", "det.txt", "--nn-budget", "many"], "track: error: argument --nn-budget: invalid int"),
    "no source": (["track"], "track: error: the following arguments are required: SOURCE"),
    "eval": (["eval", "gt.txt"], "eval: error: the following arguments are required: results"),
    "unknown command": (["trak", "det.txt"], ": error: argument COMMAND: invalid choice: 'trak'"),
}


@pytest.mark.parametrize("name", list(USAGE_ERRORS))
def test_usage_errors_are_the_error_line_alone(capsys, name: str) -> None:
    argv, expected = USAGE_ERRORS[name]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("deepsort-edge"), captured.err
    assert expected in captured.err


def test_a_subcommand_that_cannot_be_imported_is_named_in_the_error_line(capsys, monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "deepsort_edge.cli.eval", None)  # as if its extra were missing
    assert main(["eval", "gt.txt", "res.txt"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("deepsort-edge eval: error: "), err


@pytest.mark.skipif(IS_ROOT, reason="root may write anywhere: permissions cannot be tested")
@pytest.mark.parametrize("what", ["output folder", "detections file"])
def test_permission_errors(tmp_path: Path, capsys, what: str) -> None:
    det = _det(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    if what == "output folder":
        locked.chmod(0o500)
        argv, expected = [det, "-o", str(locked / "r.txt")], "no permission to write in"
    else:
        Path(det).chmod(0o000)
        argv, expected = [det, "-o", str(tmp_path / "r.txt")], "Permission denied"
    try:
        assert main(["track", *argv, "--no-progress", "-q"]) == 2
        assert expected in error_line(capsys)
    finally:
        locked.chmod(0o700)
        Path(det).chmod(0o600)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_output_that_fails_when_written(tmp_path: Path, capsys) -> None:
    _, det = scene_detections()
    write_mot(tmp_path / "det.txt", det)
    assert main(["track", str(tmp_path / "det.txt"), "-o", "/dev/full", "--no-progress", "-q"]) == 2
    assert "-o/--output /dev/full: writing failed (No space left on device)" in error_line(capsys)


def test_eval_errors_are_one_line(tmp_path: Path, capsys) -> None:
    pytest.importorskip("trackeval")
    (tmp_path / "gt.txt").write_text("1,1,10,10,20,40,1,1,1\n")
    (tmp_path / "res.txt").write_text("1,3.5,10,10,20,40,1,-1,-1,-1\n")
    assert main(["eval", str(tmp_path / "gt.txt"), str(tmp_path / "res.txt")]) == 2
    assert "res.txt, line 1: id must be an integer, got '3.5'" in error_line(capsys, "eval")
    (tmp_path / "res.txt").write_text("1,1,10,10,20,40,1,-1,-1,-1\n")
    assert main(["eval", str(tmp_path / "gt.txt"), str(tmp_path / "res.txt"), "--num-frames", "0"]) == 2
    assert "--num-frames must be in [1, 10,000,000], got 0" in error_line(capsys, "eval")
    assert main(["eval", str(tmp_path / "gt.txt"), str(tmp_path / "res.txt"), "--csv", str(tmp_path)]) == 2
    assert "Is a directory" in error_line(capsys, "eval")
    assert main(["eval", str(tmp_path / "gt.txt"), _jpeg(tmp_path / "res.jpg")]) == 2
    assert "res.jpg is a JPEG image, not text; expected a MOT text file" in error_line(capsys, "eval")


def test_internal_errors_are_one_line_with_status_1(tmp_path: Path, capsys, monkeypatch) -> None:
    import deepsort_edge.cli.track as track

    def broken(args):
        raise ZeroDivisionError("oops\nsecond line")

    monkeypatch.setattr(track, "_run", broken)
    assert main(["track", _det(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "internal error: ZeroDivisionError: oops; second line" in err
    monkeypatch.setenv("DEEPSORT_EDGE_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        main(["track", _det(tmp_path)])


# --------------------------------------------------------------------------- warnings, not silent changes
def test_detections_beyond_seq_length_are_warned_about(tmp_path: Path, capsys) -> None:
    rows = "".join(f"{f},-1,{10 + f},10,20,40,0.9\n" for f in range(1, 8))
    seq = seq_folder(tmp_path, SEQINFO.replace("seqLength=2", "seqLength=5"), rows)
    out = tmp_path / "r.txt"
    assert main(["track", str(seq), "-o", str(out), "--no-progress", "-q", "--minimum-consecutive-frames", "1"]) == 0
    err = capsys.readouterr().err
    assert "detections go to frame 7 but the sequence has 5 frames (seqLength in" in err
    assert "frames 6-7 are not tracked" in err
    assert read_mot(out).frames.max() == 5


def test_long_gaps_cost_nothing_and_change_nothing(tmp_path: Path, monkeypatch) -> None:
    """Without frames, only frames where a track can live are stepped; output as if all were."""
    from deepsort_edge import DeepSORTTracker

    _, det = scene_detections(seed=5, frames=30)
    # Three bursts of the same scene, far apart: gaps longer than any track lives.
    shifted = [det.table.copy() for _ in range(3)]
    for k, table in enumerate(shifted):
        table[:, 0] += k * 500
    gappy = MOTData(np.concatenate(shifted))
    write_mot(tmp_path / "det.txt", gappy)
    calls = []
    original = DeepSORTTracker.update_arrays

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DeepSORTTracker, "update_arrays", counting)
    monkeypatch.setattr(DeepSORTTracker, "warmup", lambda self: self)  # count the run's own calls only
    out = tmp_path / "r.txt"
    summary = tmp_path / "s.json"
    assert main(["track", str(tmp_path / "det.txt"), "-o", str(out), "--summary", str(summary),
                 "--no-progress", "-q", "--lost-track-buffer", "10"]) == 0
    monkeypatch.setattr(DeepSORTTracker, "update_arrays", original)
    expected = reference_tracking(read_mot(tmp_path / "det.txt"), gappy.last_frame, lost_track_buffer=10)
    ours = read_mot(out)
    np.testing.assert_array_equal(ours.table[:, :2], expected.table[:, :2])
    steps = list(frames_to_step(gappy.frame_index(), gappy.last_frame, 11))
    assert len(calls) == len(steps) < 3 * (30 + 11)
    assert json.loads(summary.read_text())["frames"] == gappy.last_frame


def test_frames_to_step_covers_exactly_the_coasting_frames() -> None:
    assert list(frames_to_step([], 10, 3)) == []
    assert list(frames_to_step([5], 10, 3)) == [5, 6, 7, 8]
    assert list(frames_to_step([5], 6, 3)) == [5, 6]
    assert list(frames_to_step([1, 3, 20], 21, 2)) == [1, 2, 3, 4, 5, 20, 21]
    assert list(frames_to_step([2, 30], 25, 2)) == [2, 3, 4]
    # A detection at the largest frame accepted is reached in a handful of steps.
    assert len(list(frames_to_step([1, 10_000_000], 10_000_000, 31))) == 33
