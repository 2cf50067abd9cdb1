"""Detect -> embed -> track: bounded buffers, dropped frames, live MJPEG streams, the CLI.

The live test serves an MJPEG stream over HTTP on 127.0.0.1 inside the test
and reads it with ``deepsort-edge track URL --detector``; the detector is made
slow deterministically (its first call waits until the stream has been read to
the end), so exactly the frames the buffers could not hold are dropped.
"""

from __future__ import annotations

import http.server
import json
import socketserver
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from tests.detector_models import constant_detector

pytest.importorskip("onnx")

SIZE = (120, 160)  # (height, width) of the test frames


class OneBox:
    """Finds the same box in every frame."""

    def detect_arrays(self, image):
        return np.array([[20, 20, 60, 100]], np.float32), np.ones(1, np.float32), np.zeros(1, np.int64)


def _tracker():
    from deepsort_edge import DeepSORTTracker

    return DeepSORTTracker(use_appearance=False)


# --------------------------------------------------------------------------- buffers
def test_frame_buffer_drops_the_oldest_and_counts():
    from deepsort_edge.io.video import FrameBuffer

    buffer = FrameBuffer(3, drop_oldest=True)
    for i in range(10):
        assert buffer.put(i)
    buffer.finish()
    assert [buffer.get() for _ in range(4)] == [7, 8, 9, FrameBuffer.END]
    assert buffer.dropped == 7 and buffer.peak == 3
    with pytest.raises(ValueError, match="capacity"):
        FrameBuffer(0)


def test_file_sources_lose_no_frame_behind_a_slow_detector():
    from deepsort_edge.streams.detect_track import detect_and_track

    seen = []

    class Slow(OneBox):
        def detect_arrays(self, image):
            threading.Event().wait(0.002)
            return super().detect_arrays(image)

    frames = ((i, np.zeros((*SIZE, 3), np.uint8)) for i in range(1, 41))
    stats = detect_and_track(frames, Slow(), _tracker(), on_frame=lambda f, *rest: seen.append(f), buffer_size=2)
    assert seen == list(range(1, 41)) and stats.dropped == 0 and stats.frames_tracked == 40


def test_live_source_memory_stays_bounded_over_10000_frames():
    """A live source faster than the detector: frames are dropped, memory never grows with the stream."""
    from deepsort_edge.streams.detect_track import detect_and_track

    ended = threading.Event()
    shape = (100, 333, 3)
    frame_bytes = int(np.prod(shape))

    def stream():
        for i in range(1, 10_001):
            yield i, np.full(shape, i % 251, np.uint8)
        ended.set()

    class WaitsForTheEnd(OneBox):
        def detect_arrays(self, image):
            ended.wait(120)  # slower than any reader: busy until the stream is over
            return super().detect_arrays(image)

    tracemalloc.start()
    try:
        stats = detect_and_track(stream(), WaitsForTheEnd(), _tracker(), live=True, buffer_size=4)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stats.frames_read == 10_000
    # The detector held one frame until the end; the buffer kept the newest four.
    assert stats.frames_tracked == 5 and stats.dropped == 10_000 - 5
    assert stats.peak_buffered <= 2 * 4 + 1
    assert peak < 50 * frame_bytes  # 10,000 frames kept would be 1 GB


def test_errors_in_a_stage_reach_the_caller_and_ctrl_c_keeps_the_results():
    from deepsort_edge.streams.detect_track import detect_and_track

    class Broken(OneBox):
        def detect_arrays(self, image):
            raise RuntimeError("detector broke")

    frames = [(i, np.zeros((*SIZE, 3), np.uint8)) for i in range(1, 6)]
    with pytest.raises(RuntimeError, match="detector broke"):
        detect_and_track(frames, Broken(), _tracker())
    seen = []

    def stop_at_3(frame, *rest):
        seen.append(frame)
        if frame == 3:
            raise KeyboardInterrupt

    stats = detect_and_track(frames, OneBox(), _tracker(), on_frame=stop_at_3)
    assert stats.interrupted and seen == [1, 2, 3] and stats.frames_tracked == 3


# --------------------------------------------------------------------------- the CLI
def _model(tmp_path: Path) -> Path:
    """Two people and a car, always at the same place (yolov8 layout on a 64 x 64 input)."""
    raw = np.zeros((1, 4 + 2, 84))  # one column per cell of strides 8, 16, 32; all but three score 0
    raw[0, :4, :3] = np.array([[16, 40, 48], [32, 32, 32], [10, 10, 10], [20, 20, 12]])  # cx, cy, w, h
    raw[0, 4, :3] = [0.9, 0.8, 0.0]  # person
    raw[0, 5, :3] = [0.0, 0.0, 0.7]  # car
    return constant_detector(tmp_path / "tiny.onnx", [raw], (64, 64), {"names": "{0: 'person', 1: 'car'}"})


def _video(path: Path, frames: int = 12) -> Path:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (SIZE[1], SIZE[0]))
    for i in range(frames):
        writer.write(np.full((*SIZE, 3), 40 + 10 * i, np.uint8))
    writer.release()
    return path


def test_track_video_with_an_onnx_detector(tmp_path, capsys):
    from deepsort_edge.cli.__main__ import main
    from deepsort_edge.detection import ONNXDetector
    from deepsort_edge.io.mot import read_mot

    model, video = _model(tmp_path), _video(tmp_path / "clip.avi")
    out, dets = tmp_path / "r.txt", tmp_path / "det.txt"
    rc = main(["track", str(video), "--detector", str(model), "--classes", "person", "-o", str(out),
               "--save-detections", str(dets), "--summary", str(tmp_path / "s.json"), "--no-progress",
               "--video-out", str(tmp_path / "o.avi")])
    assert rc == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["frames"] == 12 and summary["dropped_frames"] == 0 and summary["tracks"] == 2
    # The saved detections are the detector's own output, frame by frame (MOT: 2 decimals).
    expected, _, _ = ONNXDetector(model, providers="cpu", classes=["person"]).detect_arrays(
        np.zeros((*SIZE, 3), np.uint8))
    saved = read_mot(dets)
    assert len(saved) == 12 * len(expected) == summary["detections"]
    np.testing.assert_allclose(saved.xyxy[saved.frames == 5], expected, atol=0.006)
    assert set(read_mot(out).ids.tolist()) == {1, 2} and (tmp_path / "o.avi").stat().st_size > 0
    # Tracking can be rerun from the saved detections alone.
    assert main(["track", str(video), "--detections", str(dets), "-o", str(tmp_path / "r2.txt"), "-q",
                 "--no-progress"]) == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--classes", "dog"], "unknown class name 'dog'"),
        (["--detector-threshold", "3"], "--detector-threshold must be in [0, 1]"),
        (["--detections", "x.txt"], "give --detector or --detections, not both"),
    ],
)
def test_detector_user_errors_are_one_line(tmp_path, capsys, extra, message):
    from deepsort_edge.cli.__main__ import main

    rc = main(["track", str(_video(tmp_path / "v.avi", 2)), "--detector", str(_model(tmp_path)), *extra, "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and err.count("\n") == 1


def test_show_without_a_display_is_one_line(tmp_path, capsys, monkeypatch):
    from deepsort_edge.cli.__main__ import main

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    rc = main(["track", str(_video(tmp_path / "v.avi", 2)), "--detector", str(_model(tmp_path)), "--show"])
    err = capsys.readouterr().err
    assert rc == 2 and "--show needs a display" in err and err.count("\n") == 1
    assert main(["track", "rtsp://127.0.0.1:1/none", "-q"]) == 2
    assert "give --detector" in capsys.readouterr().err


class _MJPEGHandler(http.server.BaseHTTPRequestHandler):
    frames = 100

    def do_GET(self):  # noqa: N802  (http.server's name)
        import cv2

        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        for i in range(self.frames):
            ok, jpeg = cv2.imencode(".jpg", np.full((*SIZE, 3), (i * 2) % 256, np.uint8))
            data = jpeg.tobytes()
            self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(data))
            self.wfile.write(data + b"\r\n")
        self.wfile.write(b"--frame--\r\n")

    def log_message(self, *args):
        pass


@pytest.fixture
def mjpeg_url():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _MJPEGHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/stream.mjpg"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_mjpeg_stream_with_a_slow_detector_drops_and_counts_frames(tmp_path, capsys, monkeypatch, mjpeg_url):
    from deepsort_edge import detection
    from deepsort_edge.cli.__main__ import main
    from deepsort_edge.io.mot import read_mot
    from deepsort_edge.io.video import StreamSource

    read_all = threading.Event()
    reading = StreamSource.__iter__

    def iterate(self):
        yield from reading(self)
        read_all.set()

    class Slow:
        def __init__(self, inner):
            self.inner = inner

        def detect_arrays(self, image):
            read_all.wait(60)  # artificially slow: busy until the whole stream has been read
            return self.inner.detect_arrays(image)

    load = detection.load_detector
    monkeypatch.setattr(StreamSource, "__iter__", iterate)
    monkeypatch.setattr(detection, "load_detector", lambda spec, **kw: Slow(load(spec, **kw)))
    out = tmp_path / "live.txt"
    rc = main(["track", mjpeg_url, "--detector", str(_model(tmp_path)), "-o", str(out), "--no-appearance",
               "--summary", str(tmp_path / "s.json"), "--no-progress", "-q", "--minimum-consecutive-frames", "1"])
    assert rc == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["mode"] == "live" and summary["frames_read"] == _MJPEGHandler.frames
    # One frame was in the detector while the stream was read; the buffer kept the newest four.
    assert summary["frames"] == 5 and summary["dropped_frames"] == _MJPEGHandler.frames - 5
    frames = sorted(set(read_mot(out).frames.tolist()))
    assert frames[-4:] == list(range(_MJPEGHandler.frames - 3, _MJPEGHandler.frames + 1))


def test_image_folder_and_sequence_sources(tmp_path, capsys):
    """A plain folder of images (name order) and a MOT sequence's img1/ (its det.txt unused)."""
    import cv2

    from deepsort_edge.cli.__main__ import main
    from deepsort_edge.io.mot import read_mot

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(6):
        cv2.imwrite(str(folder / f"f{i:03d}.png"), np.full((*SIZE, 3), 30 * i, np.uint8))
    (folder / "notes.txt").write_text("not an image")
    seq = tmp_path / "SEQ"
    (seq / "img1").mkdir(parents=True)
    (seq / "det").mkdir()
    (seq / "det" / "det.txt").write_text("1,-1,0,0,5,5,1,-1,-1,-1\n")  # would be one tiny box: not used
    (seq / "seqinfo.ini").write_text("[Sequence]\nname=SEQ\nimDir=img1\nframeRate=5\nseqLength=4\n"
                                     "imWidth=160\nimHeight=120\nimExt=.jpg\n")
    for i in range(1, 5):
        cv2.imwrite(str(seq / "img1" / f"{i:06d}.jpg"), np.full((*SIZE, 3), 50, np.uint8))
    model = _model(tmp_path)
    for source, frames, rate in ((folder, 6, 30.0), (seq, 4, 5.0)):
        summary_path = tmp_path / f"{source.name}.json"
        rc = main(["track", str(source), "--detector", str(model), "-o", str(tmp_path / f"{source.name}.txt"),
                   "--summary", str(summary_path), "--no-progress", "-q", "--minimum-consecutive-frames", "1"])
        assert rc == 0, capsys.readouterr().err
        summary = json.loads(summary_path.read_text())
        assert summary["mode"] == "images" and summary["frames"] == frames and summary["frame_rate"] == rate
        assert summary["detections"] == 3 * frames  # the model's boxes, not det.txt's
        assert read_mot(tmp_path / f"{source.name}.txt").frames.max() == frames


def test_track_with_a_detector_leaves_no_partial_results_when_a_run_fails(tmp_path, capsys, monkeypatch):
    """A failure part-way: neither the results nor the saved detections are left behind, complete or not."""
    from deepsort_edge import DeepSORTTracker
    from deepsort_edge.cli.__main__ import main

    model, video = _model(tmp_path), _video(tmp_path / "clip.avi")
    original, calls = DeepSORTTracker.update_arrays, []

    def breaking(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 6:  # warmup's call first, then frame 5
            raise RuntimeError("the input broke mid-run")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DeepSORTTracker, "update_arrays", breaking)
    (tmp_path / "r.txt").write_text("an earlier run's results\n")
    rc = main(["track", str(video), "--detector", str(model), "--classes", "person", "-o", str(tmp_path / "r.txt"),
               "--save-detections", str(tmp_path / "det.txt"), "--no-progress", "-q"])
    assert rc == 1 and "the input broke mid-run" in capsys.readouterr().err
    assert len(calls) == 6  # it did fail part-way, after rows were written
    assert (tmp_path / "r.txt").read_text() == "an earlier run's results\n"  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.avi", "r.txt", "tiny.onnx"]


def test_a_detector_runs_summary_records_every_setting_that_ran(tmp_path, capsys):
    """As a detections-file run's does: the preset, the options over it, and every default."""
    from deepsort_edge import DeepSORTTracker
    from deepsort_edge.cli.__main__ import main

    rc = main(["track", str(_video(tmp_path / "clip.avi")), "--detector", str(_model(tmp_path)), "--no-appearance",
               "--preset", "paper", "--nn-budget", "7", "-o", str(tmp_path / "r.txt"), "--summary",
               str(tmp_path / "s.json"), "--no-progress", "-q"])
    assert rc == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "s.json").read_text())
    expected = DeepSORTTracker(preset="paper", nn_budget=7, frame_rate=summary["frame_rate"], use_appearance=False)
    assert summary["tracker"] == {"preset": "paper", **expected.settings.to_dict()}
