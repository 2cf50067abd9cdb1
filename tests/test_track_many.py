"""``deepsort-edge track DIR -o OUT_DIR``: every results file is byte-identical to a one-by-one run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from deepsort_edge.cli.__main__ import main
from deepsort_edge.cli.progress import BarProgress, apply_progress
from deepsort_edge.demo.scene import SceneRenderer
from deepsort_edge.io.mot import MOTData, read_mot, write_mot
from deepsort_edge.demo.synthetic import SceneConfig, generate_scene
from tests.conftest import REPO_ROOT, require_loopback_only_network


def _scene(seed: int, frames: int, width: int = 192, height: int = 144):
    cfg = SceneConfig(num_objects=4, width=width, height=height, seed=seed, miss_rate=0.1, turnover=0.02)
    scene = generate_scene(cfg, frames)
    frame_col = np.concatenate([np.full(len(f.xyxy), f.index) for f in scene])
    det = MOTData.from_arrays(frame_col, np.full(frame_col.size, -1), np.concatenate([f.xyxy for f in scene]),
                              scores=np.concatenate([f.scores for f in scene]))
    images = SceneRenderer(width, height, seed=seed)
    return det, [images.render(f.index, f.gt_ids, f.gt_xyxy) for f in scene]


def _sequence(root: Path, name: str, seed: int, frames: int, with_images: bool) -> None:
    det, images = _scene(seed, frames)
    (root / name / "det").mkdir(parents=True)
    write_mot(root / name / "det" / "det.txt", det)
    (root / name / "seqinfo.ini").write_text(
        f"[Sequence]\nname={name}\nimDir=img1\nframeRate=10\nseqLength={frames}\nimWidth=192\n"
        "imHeight=144\nimExt=.jpg\n")
    if with_images:
        (root / name / "img1").mkdir()
        for i, image in enumerate(images, 1):
            cv2.imwrite(str(root / name / "img1" / f"{i:06d}.jpg"), image)


def _video(root: Path, name: str, seed: int, frames: int) -> None:
    det, images = _scene(seed, frames)
    writer = cv2.VideoWriter(str(root / f"{name}.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (192, 144))
    assert writer.isOpened()
    for image in images:
        writer.write(image)
    writer.release()
    write_mot(root / f"{name}.txt", det)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of four inputs: two image sequences, one detections-only sequence, one video."""
    root = tmp_path_factory.mktemp("many")
    _sequence(root, "SEQ-A", 1, 24, with_images=True)
    _sequence(root, "SEQ-B", 2, 30, with_images=True)
    _sequence(root, "DETS-ONLY", 3, 40, with_images=False)
    _video(root, "clip", 4, 20)
    (root / "notes").mkdir()  # not an input: skipped
    return root


OPTIONS = ["--no-progress", "-q", "--minimum-consecutive-frames", "2"]
NAMES = ["DETS-ONLY", "SEQ-A", "SEQ-B", "clip"]


@pytest.fixture(scope="module")
def one_by_one(inputs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("single")
    for name in NAMES[:3]:
        assert main(["track", str(inputs / name), "-o", str(out / f"{name}.txt"), *OPTIONS]) == 0
    assert main(["track", str(inputs / "clip.avi"), "-d", str(inputs / "clip.txt"),
                 "-o", str(out / "clip.txt"), *OPTIONS]) == 0
    for name in NAMES:
        assert len(read_mot(out / f"{name}.txt")) > 20  # real results, not empty files
    return out


def _assert_identical(out: Path, reference: Path) -> None:
    assert sorted(p.name for p in out.glob("*.txt")) == [f"{n}.txt" for n in NAMES]
    for name in NAMES:
        assert (out / f"{name}.txt").read_bytes() == (reference / f"{name}.txt").read_bytes(), name


@pytest.mark.slow
def test_processes_give_byte_identical_results(inputs: Path, one_by_one: Path, tmp_path: Path, capsys) -> None:
    rc = main(["track", str(inputs), "-o", str(tmp_path / "out"), "--workers", "2", "--no-progress",
               "--minimum-consecutive-frames", "2", "--summary", str(tmp_path / "all.json")])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    _assert_identical(tmp_path / "out", one_by_one)
    assert captured.out.startswith("Tracked 4 inputs with 2 processes")
    report = json.loads((tmp_path / "all.json").read_text())
    assert [r["name"] for r in report["inputs"]] == NAMES
    assert [r["frames"] for r in report["inputs"]] == [40, 24, 30, 20]


def test_one_process_gives_byte_identical_results(inputs: Path, one_by_one: Path, tmp_path: Path) -> None:
    assert main(["track", str(inputs), "-o", str(tmp_path / "out"), *OPTIONS]) == 0
    _assert_identical(tmp_path / "out", one_by_one)


@pytest.mark.slow
def test_ray_tasks_give_byte_identical_results(
    inputs: Path, one_by_one: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ray = pytest.importorskip("ray", reason='the ray extra is not installed (pip install ".[cpu,ray]")')
    require_loopback_only_network()
    if ray.is_initialized():
        ray.shutdown()
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))  # Ray's workers import this checkout
    # Relative paths, as typed by hand: Ray's workers run in another directory.
    monkeypatch.chdir(tmp_path)
    relative = os.path.relpath(inputs, tmp_path)
    assert main(["track", relative, "-o", "out", "--ray", "--workers", "2", *OPTIONS]) == 0
    _assert_identical(tmp_path / "out", one_by_one)
    assert not ray.is_initialized()  # the local Ray it started is shut down


def test_a_failing_input_does_not_stop_the_others(inputs: Path, tmp_path: Path, capsys) -> None:
    root = tmp_path / "in"
    root.mkdir()
    for name in ("DETS-ONLY", "clip.avi", "clip.txt"):
        (root / name).symlink_to(inputs / name)
    (root / "BROKEN" / "det").mkdir(parents=True)
    (root / "BROKEN" / "det" / "det.txt").write_text("1,-1,oops\n")
    (root / "lonely.avi").write_bytes(b"not a video")
    (root / "BAD-INI" / "det").mkdir(parents=True)
    (root / "BAD-INI" / "seqinfo.ini").write_text("[Sequence]\nframeRate=ten\n")
    rc = main(["track", str(root), "-o", str(tmp_path / "out"), "--no-progress"])
    captured = capsys.readouterr()
    assert rc == 2
    assert "error: BROKEN: " in captured.err and "expected at least 6" in captured.err
    assert "error: lonely: " in captured.err
    assert "error: BAD-INI: " in captured.err and "seqinfo.ini" in captured.err
    assert "BROKEN: FAILED" in captured.out and "Tracked 5 inputs" in captured.out
    assert (tmp_path / "out" / "DETS-ONLY.txt").is_file() and (tmp_path / "out" / "clip.txt").is_file()


def test_folder_options_are_checked(inputs: Path, tmp_path: Path, capsys) -> None:
    rc = main(["track", str(inputs), "-o", str(tmp_path / "o"), "--video-out", str(tmp_path / "v.mp4")])
    assert rc == 2 and "--video-out takes one input" in capsys.readouterr().err
    (tmp_path / "file.txt").write_text("")
    rc = main(["track", str(inputs), "-o", str(tmp_path / "file.txt")])
    assert rc == 2 and "needs an output folder" in capsys.readouterr().err
    rc = main(["track", str(inputs), "--workers", "0", "-o", str(tmp_path / "o")])
    assert rc == 2 and "--workers must be >= 1" in capsys.readouterr().err


def test_one_progress_bar_counts_every_input() -> None:
    class Bar:
        total = 0
        n = 0

        def update(self, k: int) -> None:
            self.n += k

        def refresh(self) -> None:
            pass

    bar = Bar()
    progress = BarProgress(bar)
    first, second = progress(10, "a"), progress(5, "b")
    for _ in range(10):
        first.update(1)
    second.update(5)
    first.close()
    second.close()
    assert (bar.total, bar.n) == (15, 15)
    apply_progress(bar, ("frames", 2))
    assert bar.n == 17


@pytest.mark.slow
def test_pets09_folder_matches_single_runs(shared_data: Path, tmp_path: Path) -> None:
    root = tmp_path / "in"
    root.mkdir()
    (root / "PETS09-S2L1").symlink_to(shared_data / "MOT15" / "train" / "PETS09-S2L1")
    for name in ("TUD-Campus", "TUD-Stadtmitte"):  # SORT detections, no frames: motion only
        (root / name / "det").mkdir(parents=True)
        (root / name / "det" / "det.txt").symlink_to(shared_data / "MOT15" / "train-sort-frcnn-det" / name / "det.txt")
        (root / name / "seqinfo.ini").symlink_to(shared_data / "MOT15" / "train" / name / "seqinfo.ini")
    options = ["--max-frames", "40", "--no-progress", "-q"]
    assert main(["track", str(root), "-o", str(tmp_path / "out"), "--workers", "2", *options]) == 0
    for name in ("PETS09-S2L1", "TUD-Campus", "TUD-Stadtmitte"):
        single = tmp_path / f"{name}.txt"
        assert main(["track", str(root / name), "-o", str(single), *options]) == 0
        assert (tmp_path / "out" / f"{name}.txt").read_bytes() == single.read_bytes(), name
        assert single.stat().st_size > 0


# ----------------------------------------------------------------------------- every input accounted for
def _long_detections(root: Path, name: str, frames: int) -> None:
    """A detections-only sequence long enough to be killed mid-run: three boxes walking right."""
    frame = np.repeat(np.arange(1, frames + 1), 3)
    x = 10.0 + (frame % 500) + np.tile([0.0, 200.0, 400.0], frames)
    xyxy = np.stack([x, np.full_like(x, 20.0), x + 40.0, np.full_like(x, 120.0)], axis=1)
    (root / name / "det").mkdir(parents=True)
    write_mot(root / name / "det" / "det.txt", MOTData.from_arrays(frame, np.full(frame.size, -1), xyxy))


def test_a_killed_worker_fails_only_its_input(inputs: Path, one_by_one: Path, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import subprocess_env

    root = tmp_path / "in"
    root.mkdir()
    for name in ("DETS-ONLY", "SEQ-A", "SEQ-B", "clip.avi", "clip.txt"):
        (root / name).symlink_to(inputs / name)
    _long_detections(root, "AAA-LONG", 200_000)  # first in name order: it starts first
    out = tmp_path / "out"
    command = [sys.executable, "-m", "deepsort_edge.cli", "track", str(root), "-o", str(out), "--workers", "2",
               *OPTIONS[:1], "--minimum-consecutive-frames", "2", "--summary", str(tmp_path / "all.json")]
    run = subprocess.Popen(command, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = None
    deadline = time.monotonic() + 600
    while killed is None and run.poll() is None and time.monotonic() < deadline:
        # The worker writing AAA-LONG's results names its temporary file after its pid.
        for partial in out.glob(".AAA-LONG.txt.*.tmp") if out.is_dir() else ():
            killed = int(partial.name.split(".")[3])
            os.kill(killed, signal.SIGKILL)
            break
        time.sleep(0.02)
    stdout, stderr = run.communicate(timeout=600)
    assert killed is not None, f"AAA-LONG finished before it could be killed: {stderr[-2000:]}"
    assert run.returncode == 2, stderr[-2000:]
    assert "error: AAA-LONG: its worker was killed by SIGKILL; no results were written" in stderr
    report = {r["name"]: r for r in json.loads((tmp_path / "all.json").read_text())["inputs"]}
    assert report["AAA-LONG"]["status"] == "failed"
    assert [report[n]["status"] for n in NAMES] == ["done"] * 4  # every other input ran, to the end
    _assert_identical(out, one_by_one)  # and no partial AAA-LONG.txt, nor any temporary file
    assert not list(out.glob(".*"))


def test_broken_sequences_and_escaping_names_are_reported(inputs: Path, tmp_path: Path, capsys) -> None:
    root = tmp_path / "in"
    root.mkdir()
    (root / "DETS-ONLY").symlink_to(inputs / "DETS-ONLY")
    (root / "NO-DET" / "img1").mkdir(parents=True)  # a sequence without detections: skipped
    (root / "DET-DIR" / "det" / "det.txt").mkdir(parents=True)
    (root / "DANGLING" / "det").mkdir(parents=True)
    (root / "DANGLING" / "det" / "det.txt").symlink_to(tmp_path / "gone.txt")
    (root / "ESCAPE").mkdir()
    (root / "ESCAPE" / "det").symlink_to(inputs / "DETS-ONLY" / "det")
    (root / "ESCAPE" / "seqinfo.ini").write_text((inputs / "DETS-ONLY" / "seqinfo.ini").read_text().replace(
        "name=DETS-ONLY", "name=../ESCAPED"))
    out = tmp_path / "out"
    rc = main(["track", str(root), "-o", str(out), "--no-progress", "--summary", str(tmp_path / "all.json")])
    captured = capsys.readouterr()
    assert rc == 2
    report = {r["name"]: r for r in json.loads((tmp_path / "all.json").read_text())["inputs"]}
    assert {n: r["status"] for n, r in report.items()} == {
        "DANGLING": "failed", "DET-DIR": "failed", "DETS-ONLY": "done", "../ESCAPED": "failed", "NO-DET": "skipped"}
    assert "dangling link" in report["DANGLING"]["error"] and "is not a file" in report["DET-DIR"]["error"]
    assert "would leave the output folder" in report["../ESCAPED"]["error"]
    assert "no " in report["NO-DET"]["reason"] and "NO-DET: skipped" in captured.out
    assert "(1 done, 3 failed, 1 skipped)" in captured.out
    assert not (tmp_path / "ESCAPED.txt").exists() and sorted(p.name for p in out.iterdir()) == ["DETS-ONLY.txt"]


def test_jobs_carry_absolute_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What travels to a process or a Ray node means the same whatever its working directory."""
    import argparse

    from deepsort_edge.cli.track_many import Input, _item_args

    monkeypatch.chdir(tmp_path)
    args = argparse.Namespace(source=Path("in"), detections=None, output=Path("out"), summary=None, quiet=False,
                              workers=2, ray="local", model=Path("models/m.onnx"), video_out=None)
    job = _item_args(args, Input("clip", Path("in/clip.avi"), Path("in/clip.txt")), Path("out"))
    assert job.source == tmp_path / "in" / "clip.avi" and job.detections == tmp_path / "in" / "clip.txt"
    assert job.output == tmp_path / "out" / "clip.txt" and job.model == tmp_path / "models" / "m.onnx"


def test_results_are_complete_or_untouched(tmp_path: Path) -> None:
    from deepsort_edge.io.mot import MOTResultWriter

    path = tmp_path / "r.txt"
    path.write_text("old\n")
    with pytest.raises(RuntimeError), MOTResultWriter(path) as writer:
        writer.write(1, np.array([1]), np.array([[0.0, 0.0, 10.0, 10.0]]))
        assert path.read_text() == "old\n"  # nothing visible until it is complete
        raise RuntimeError("killed mid-run")
    assert path.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["r.txt"]
    with MOTResultWriter(path) as writer:
        writer.write(1, np.array([1]), np.array([[0.0, 0.0, 10.0, 10.0]]))
    assert path.read_text().startswith("1,1,0.00,0.00,10.00,10.00") and len(list(tmp_path.iterdir())) == 1


def test_a_lost_progress_queue_does_not_fail_the_input() -> None:
    """On Ray the progress queue is an actor; if its node is lost, the inputs still finish."""
    from deepsort_edge.cli.progress import QueueProgress

    class LostQueue:
        def put(self, message: tuple) -> None:
            raise ConnectionError("the queue's node is gone")

    bar = QueueProgress(LostQueue())(10, "a")
    for _ in range(10):
        bar.update(1)
    bar.close()


def test_results_to_a_device_or_a_symlink_keep_them(tmp_path: Path) -> None:
    """No temporary file where the output is no regular file: a device stays a device, a link a link."""
    import stat

    from deepsort_edge.io.mot import MOTResultWriter

    with MOTResultWriter("/dev/null") as writer:
        writer.write(1, np.array([1]), np.array([[0.0, 0.0, 10.0, 10.0]]))
    assert stat.S_ISCHR(Path("/dev/null").stat().st_mode)
    target = tmp_path / "real.txt"
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    with MOTResultWriter(link) as writer:
        writer.write(1, np.array([1]), np.array([[0.0, 0.0, 10.0, 10.0]]))
    assert link.is_symlink() and target.read_text().startswith("1,1,")
