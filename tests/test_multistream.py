"""MultiStreamTracker: per-stream ids equal separate trackers', one batched embedder call per update."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest
import supervision as sv

import deepsort_edge
from deepsort_edge import DeepSORTTracker, MultiStreamTracker, StreamError
from deepsort_edge.demo.scene import SceneRenderer
from deepsort_edge.demo.synthetic import SceneConfig, generate_scene


class GridExtractor:
    """A cheap, deterministic appearance model: each crop's mean colours on a 2x2 grid (12-d).

    Row ``i`` of the features depends only on crop ``i``, so a batch over
    several streams gives each stream the rows it would get alone.
    """

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []

    def preprocess(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        out = np.empty((len(boxes), 12), dtype=np.float32)
        for i, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, dtype=np.float64).reshape(-1, 4)):
            left, top = int(np.clip(np.floor(x1), 0, w - 1)), int(np.clip(np.floor(y1), 0, h - 1))
            right = max(left + 1, int(np.clip(np.ceil(x2), 0, w)))
            bottom = max(top + 1, int(np.clip(np.ceil(y2), 0, h)))
            crop = frame[top:bottom, left:right]
            out[i] = cv2.resize(crop, (2, 2), interpolation=cv2.INTER_AREA).reshape(-1)
        return out

    def embed_batch(self, batch: np.ndarray) -> np.ndarray:
        self.batch_sizes.append(len(batch))
        return batch / 255.0 - 0.45

    def extract_features(self, frame: np.ndarray, detections: Any) -> np.ndarray:
        # As a roboflow trackers 2.0.1 extractor: sv.Detections from update(), boxes from update_arrays().
        boxes = detections.xyxy if isinstance(detections, sv.Detections) else detections
        return self.embed_batch(self.preprocess(frame, boxes))


class OnlyExtractFeatures:
    """An extractor without preprocess/embed_batch: called once per stream."""

    def __init__(self) -> None:
        self.inner = GridExtractor()
        self.calls = 0

    def extract_features(self, frame: np.ndarray, detections: Any) -> np.ndarray:
        self.calls += 1
        return self.inner.extract_features(frame, detections)


def rendered_stream(seed: int, frames: int, width: int = 192, height: int = 144):
    """``(sv.Detections, frame)`` pairs of a seeded synthetic scene drawn with the demo renderer."""
    cfg = SceneConfig(num_objects=4, width=width, height=height, seed=seed, miss_rate=0.1,
                      false_positive_rate=0.1, turnover=0.02)
    renderer = SceneRenderer(width, height, seed=seed)
    out = []
    for f in generate_scene(cfg, frames):
        image = renderer.render(f.index, f.gt_ids, f.gt_xyxy)
        out.append((sv.Detections(xyxy=f.xyxy, confidence=f.scores.astype(np.float64)), image))
    return out


def embedding_stream(seed: int, frames: int):
    """Detections carrying their own embeddings (no frames)."""
    cfg = SceneConfig(num_objects=5, width=320, height=240, seed=seed, embedding_dim=8, miss_rate=0.1)
    return [
        sv.Detections(xyxy=f.xyxy, confidence=f.scores.astype(np.float64), data={"embeddings": f.embeddings})
        for f in generate_scene(cfg, frames)
    ]


SETTINGS = dict(minimum_consecutive_frames=2, appearance_weight=1.0, appearance_threshold=0.2)


def test_top_level_export() -> None:
    from deepsort_edge.streams import multistream

    assert deepsort_edge.MultiStreamTracker is multistream.MultiStreamTracker
    assert "MultiStreamTracker" in deepsort_edge.__all__


def test_ids_equal_separate_trackers_with_one_batched_call_per_update() -> None:
    frames = 30
    cams = {"cam0": rendered_stream(0, frames), "cam1": rendered_stream(1, frames)}
    given = embedding_stream(2, frames)
    multi_fx, solo_fx = GridExtractor(), GridExtractor()
    multi = MultiStreamTracker(multi_fx, **SETTINGS)
    solo = {sid: DeepSORTTracker(feature_extractor=solo_fx, **SETTINGS) for sid in [*cams, "given"]}
    confirmed = 0
    for t in range(frames):
        dets = {sid: cams[sid][t][0] for sid in cams}
        images = {sid: cams[sid][t][1] for sid in cams}
        if t % 7 == 3:  # a camera that skips a frame is not advanced
            del dets["cam1"], images["cam1"]
        dets["given"] = given[t]
        before = len(multi_fx.batch_sizes)
        out = multi.update(dets, images)
        assert list(out) == list(dets)
        expected_crops = sum(len(dets[sid]) for sid in images)
        assert multi_fx.batch_sizes[before:] == ([expected_crops] if expected_crops else [])
        for sid, d in dets.items():
            ref = solo[sid].update(d, images.get(sid))
            np.testing.assert_array_equal(out[sid].tracker_id, ref.tracker_id, err_msg=f"{sid} frame {t}")
            np.testing.assert_array_equal(out[sid].xyxy, ref.xyxy)  # the same output boxes
            assert d.tracker_id is None  # the input is not modified
            confirmed += int((ref.tracker_id > 0).sum())
    assert confirmed > 3 * frames  # the comparison is about real tracks
    assert multi.streams == ("cam0", "cam1", "given")
    assert multi.frame_count("cam1") == frames - len([t for t in range(frames) if t % 7 == 3])


def test_extractor_without_embed_batch_is_called_per_stream() -> None:
    cams = {"a": rendered_stream(3, 8), "b": rendered_stream(4, 8)}
    fx = OnlyExtractFeatures()
    multi = MultiStreamTracker(fx, **SETTINGS)
    solo = {sid: DeepSORTTracker(feature_extractor=GridExtractor(), **SETTINGS) for sid in cams}
    for t in range(8):
        out = multi.update({s: cams[s][t][0] for s in cams}, {s: cams[s][t][1] for s in cams})
        for sid in cams:
            ref = solo[sid].update(cams[sid][t][0], cams[sid][t][1])
            np.testing.assert_array_equal(out[sid].tracker_id, ref.tracker_id)
    assert fx.calls == 16


def _same_state(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for key in a:
        if isinstance(a[key], dict):
            if not _same_state(a[key], b[key]):
                return False
        elif isinstance(a[key], np.ndarray):
            if not np.array_equal(a[key], b[key]):
                return False
        elif a[key] != b[key]:
            return False
    return True


def test_bad_input_is_rejected_for_that_stream_only() -> None:
    cams = {"cam0": rendered_stream(5, 12), "cam1": rendered_stream(6, 12)}
    multi = MultiStreamTracker(GridExtractor(), **SETTINGS)
    solo = {sid: DeepSORTTracker(feature_extractor=GridExtractor(), **SETTINGS) for sid in cams}

    def good(t: int, sid: str):
        return cams[sid][t]

    for t in range(6):
        multi.update({s: good(t, s)[0] for s in cams}, {s: good(t, s)[1] for s in cams})
        for s in cams:
            solo[s].update(*good(t, s))
    bad_inputs = [
        ({"cam1": sv.Detections(xyxy=np.zeros((0, 4)))}, {"cam1": good(6, "cam1")[1].astype(np.float32)},
         TypeError, "dtype"),
        ({"cam1": "not detections"}, {}, TypeError, "supervision.Detections"),
        ({"cam1": good(6, "cam1")[0]}, {}, ValueError, "frame is required"),
    ]
    t = 6
    for dets, images, kind, words in bad_inputs:
        before = multi.state_dict("cam1")
        dets = {"cam0": good(t, "cam0")[0], **dets}
        images = {"cam0": good(t, "cam0")[1], **images}
        with pytest.raises(StreamError) as info:
            multi.update(dets, images)
        err = info.value
        assert "'cam1'" in str(err) and words in str(err)
        assert set(err.errors) == {"cam1"} and isinstance(err.errors["cam1"], kind)
        ref = solo["cam0"].update(*good(t, "cam0"))
        np.testing.assert_array_equal(err.results["cam0"].tracker_id, ref.tracker_id)
        assert _same_state(multi.state_dict("cam1"), before)
        t += 1
    # cam1 never saw the bad frames: it continues exactly like its reference.
    out = multi.update({"cam1": good(6, "cam1")[0]}, {"cam1": good(6, "cam1")[1]})
    np.testing.assert_array_equal(out["cam1"].tracker_id, solo["cam1"].update(*good(6, "cam1")).tracker_id)
    # A stream whose first frame is rejected is not created.
    with pytest.raises(StreamError, match="'new'"):
        multi.update({"new": sv.Detections(xyxy=np.array([[0.0, 0.0, 5.0, 5.0]]))})
    assert "new" not in multi.streams
    with pytest.raises(TypeError, match="stream ids must be str"):
        multi.update({3: good(0, "cam0")[0]})


def test_invalid_rows_warn_once_with_the_stream_id() -> None:
    multi = MultiStreamTracker(GridExtractor(), **SETTINGS)
    dets, image = rendered_stream(7, 1)[0]
    broken = sv.Detections(xyxy=np.vstack([dets.xyxy, [[40.0, 40.0, 30.0, 50.0]]]),
                           confidence=np.append(dets.confidence, 0.9))
    with pytest.warns(UserWarning) as record:
        out = multi.update({"cam7": broken}, {"cam7": image})
    messages = [str(w.message) for w in record if "dropped" in str(w.message)]
    assert len(messages) == 1 and messages[0].startswith("stream 'cam7'")
    assert out["cam7"].tracker_id[-1] == -1


def test_streams_state_remove_and_reset() -> None:
    cam = rendered_stream(8, 20)
    multi = MultiStreamTracker(GridExtractor(), **SETTINGS)
    for t in range(10):
        multi.update({"a": cam[t][0], "b": cam[t][0]}, {"a": cam[t][1], "b": cam[t][1]})
    # a stream moves to another MultiStreamTracker through its state, under another id
    other = MultiStreamTracker(GridExtractor(), **SETTINGS)
    other.load_state_dict("moved", multi.state_dict("a"))
    assert other.streams == ("moved",)
    for t in range(10, 20):
        here = multi.update({"a": cam[t][0]}, {"a": cam[t][1]})["a"]
        there = other.update({"moved": cam[t][0]}, {"moved": cam[t][1]})["moved"]
        np.testing.assert_array_equal(here.tracker_id, there.tracker_id)
    with pytest.raises(ValueError):
        other.load_state_dict("broken", {"format": "nope"})
    assert "broken" not in other
    # reset one stream: it behaves like a fresh tracker; the other stream is untouched
    b_state = multi.state_dict("b")
    multi.reset("a")
    assert multi.tracks("a") == [] and _same_state(multi.state_dict("b"), b_state)
    fresh = DeepSORTTracker(feature_extractor=GridExtractor(), **SETTINGS)
    for t in range(5):
        got = multi.update({"a": cam[t][0]}, {"a": cam[t][1]})["a"]
        np.testing.assert_array_equal(got.tracker_id, fresh.update(*cam[t]).tracker_id)
    multi.remove("b")
    assert multi.streams == ("a",) and len(multi) == 1
    with pytest.raises(KeyError, match="'b'"):
        multi.state_dict("b")
    multi.reset()
    assert multi.frame_count("a") == 0


def test_memory_per_stream_is_the_gallery() -> None:
    """The documented memory figure: 64 slots x nn_budget x D float32 per stream (gallery mode)."""
    cam = rendered_stream(9, 2)
    for mode, per_track in (("gallery", 100), ("ema", 1)):
        multi = MultiStreamTracker(GridExtractor(), appearance_mode=mode)
        multi.update({"a": cam[0][0], "b": cam[0][0]}, {"a": cam[0][1], "b": cam[0][1]})
        gallery = 64 * per_track * 12 * 4
        assert gallery <= multi.nbytes("a") < gallery + 64 * 1024
        assert multi.nbytes() == multi.nbytes("a") + multi.nbytes("b")


def test_shipped_model_batched_equals_separate() -> None:
    from deepsort_edge.appearance.embedder import DeepSORTFeatureExtractor

    fx = DeepSORTFeatureExtractor.default(providers="cpu")
    cams = {f"cam{i}": rendered_stream(10 + i, 10) for i in range(3)}
    settings = dict(minimum_consecutive_frames=2, appearance_weight=1.0, appearance_threshold=0.3)
    multi = MultiStreamTracker(fx, **settings)
    solo = {sid: DeepSORTTracker(feature_extractor=fx, **settings) for sid in cams}
    for t in range(10):
        out = multi.update({s: cams[s][t][0] for s in cams}, {s: cams[s][t][1] for s in cams})
        for sid in cams:
            np.testing.assert_array_equal(out[sid].tracker_id, solo[sid].update(*cams[sid][t]).tracker_id)
    assert all(len(multi.tracks(s)) for s in cams)


@pytest.mark.parametrize("module", ["deepsort_edge.streams.multistream", "deepsort_edge.streams.distributed"])
def test_docstring_examples(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.slow
def test_bench_streams_smoke(tmp_path) -> None:
    """``tools/bench.py streams`` runs end to end and finds the same ids in every mode (no timings asserted)."""
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT, subprocess_env

    env = subprocess_env()
    out = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tools" / "bench.py"), "streams", "--frames", "4", "--repeat", "1", "--no-ray"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [line for line in out.stdout.splitlines() if line.startswith("| ") and "x |" in line]
    assert len(rows) == 2 and all(line.endswith("| yes |") for line in rows), out.stdout
    assert "gain from cross-stream batching" in out.stdout
