"""The association switches beyond DeepSORT, each against the behaviour it promises."""

from __future__ import annotations

import numpy as np
import pytest
import supervision as sv

from deepsort_edge import DeepSORTTracker
from deepsort_edge.io.mot import MOTData
from tests import reference as ref


def box(cx: float, cy: float = 200.0, h: float = 100.0) -> list[float]:
    return [cx - 0.2 * h, cy - h / 2, cx + 0.2 * h, cy + h / 2]


def test_low_score_detections_continue_tracks_but_never_start_them():
    tracker = DeepSORTTracker(minimum_consecutive_frames=1, track_activation_threshold=0.5)
    assert tracker.update_arrays(np.array([box(100)]), np.array([0.9])).tolist() == [1]
    # A low-score detection on the track continues it; one elsewhere starts nothing.
    ids = tracker.update_arrays(np.array([box(103), box(400)]), np.array([0.2, 0.2]))
    assert ids.tolist() == [1, -1]
    assert len(tracker.tracks) == 1
    # Below minimum_score a detection is ignored altogether.
    strict = DeepSORTTracker(minimum_consecutive_frames=1, minimum_score=0.1)
    assert strict.update_arrays(np.array([box(100)]), np.array([0.9])).tolist() == [1]
    assert strict.update_arrays(np.array([box(103)]), np.array([0.15])).tolist() == [1]
    assert strict.update_arrays(np.array([box(106)]), np.array([0.05])).tolist() == [-1]


def test_low_score_stage_takes_only_tracks_seen_last_frame():
    tracker = DeepSORTTracker(minimum_consecutive_frames=1, track_activation_threshold=0.5, use_appearance=False)
    tracker.update_arrays(np.array([box(100)]), np.array([0.9]))
    tracker.update_arrays(np.zeros((0, 4)))  # missed one frame
    assert tracker.update_arrays(np.array([box(104)]), np.array([0.3])).tolist() == [-1]


def test_without_low_score_matching_a_low_score_detection_matches_like_any_other():
    tracker = DeepSORTTracker(minimum_consecutive_frames=1, track_activation_threshold=0.5,
                              low_score_matching=False, use_appearance=False)
    tracker.update_arrays(np.array([box(100)]), np.array([0.9]))
    tracker.update_arrays(np.zeros((0, 4)))
    assert tracker.update_arrays(np.array([box(104)]), np.array([0.3])).tolist() == [1]


@pytest.mark.parametrize("class_aware", [True, False])
def test_class_aware_association(class_aware):
    tracker = DeepSORTTracker(minimum_consecutive_frames=1, class_aware=class_aware)
    first = sv.Detections(xyxy=np.array([box(100)]), confidence=np.array([0.9]), class_id=np.array([0]))
    assert tracker.update(first).tracker_id.tolist() == [1]
    other = sv.Detections(xyxy=np.array([box(102)]), confidence=np.array([0.9]), class_id=np.array([2]))
    expected = [2] if class_aware else [1]
    assert tracker.update(other).tracker_id.tolist() == expected
    assert tracker.tracks[-1].class_id == (2 if class_aware else 0)


def test_class_id_must_match_the_rows():
    tracker = DeepSORTTracker()
    with pytest.raises(ValueError, match="class_id must have shape"):
        tracker.update_arrays(np.array([box(100)]), class_id=np.array([1, 2]))
    with pytest.raises(ValueError, match="whole numbers"):
        tracker.update_arrays(np.array([box(100)]), class_id=np.array([1.5]))


def test_output_box_is_the_corrected_kalman_box():
    boxes = [np.array([box(100 + 4 * t + (3 if t % 2 else -3))]) for t in range(6)]
    kalman = DeepSORTTracker(minimum_consecutive_frames=1, use_appearance=False)
    plain = DeepSORTTracker(minimum_consecutive_frames=1, use_appearance=False, output_box="detection")
    # The reference filter (tests/reference.py), fed the same detections.
    z = [np.r_[(b[0, 0] + b[0, 2]) / 2, (b[0, 1] + b[0, 3]) / 2, (b[0, 2] - b[0, 0]) / (b[0, 3] - b[0, 1]),
               b[0, 3] - b[0, 1]] for b in boxes]
    mean, cov = ref.kf_initiate(z[0])
    for t, b in enumerate(boxes):
        ids, out = kalman.update_arrays(b, np.array([1.0]), return_boxes=True)
        _, same = plain.update_arrays(b, np.array([1.0]), return_boxes=True)
        np.testing.assert_array_equal(same, b)
        if t:
            mean, cov = ref.kf_update(*ref.kf_predict(mean, cov), z[t])
        w, h = mean[2] * mean[3], mean[3]
        expected = [mean[0] - w / 2, mean[1] - h / 2, mean[0] + w / 2, mean[1] + h / 2]
        np.testing.assert_allclose(out[0], expected, rtol=1e-9)
    dets = sv.Detections(xyxy=boxes[0].astype(np.float32), confidence=np.array([1.0]))
    assert kalman.update(dets).xyxy.dtype == np.float32


def test_aspect_noise_lets_the_kalman_box_follow_a_widening_detection():
    # A person turning sideways: the detector's width grows 2 px a frame at a fixed height and place.
    boxes = [np.array([[100.0 - (20 + 2 * t), 150.0, 100.0 + (20 + 2 * t), 250.0]]) for t in range(25)]
    z = [np.r_[100.0, 200.0, (b[0, 2] - b[0, 0]) / 100.0, 100.0] for b in boxes]
    width_error = {}
    for noise in ((0.05, 0.00625), (0.01, 1e-5)):  # the default, DeepSORT's
        tracker = DeepSORTTracker(minimum_consecutive_frames=1, use_appearance=False, aspect_noise=noise[0],
                                  aspect_velocity_noise=noise[1])
        mean, cov = ref.kf_initiate(z[0], *noise)
        for t, b in enumerate(boxes):
            _, out = tracker.update_arrays(b, np.array([1.0]), return_boxes=True)
            if t:
                mean, cov = ref.kf_update(*ref.kf_predict(mean, cov, *noise), z[t])
            np.testing.assert_allclose(out[0, 2] - out[0, 0], mean[2] * mean[3], rtol=1e-9)  # the reference filter
        width_error[noise[0]] = abs((out[0, 2] - out[0, 0]) - (b[0, 2] - b[0, 0]))
    assert tracker.settings.aspect_noise == 0.01
    assert DeepSORTTracker().settings.aspect_noise == 0.05
    # DeepSORT's filter holds the width near its first value; the default's follows the detector.
    assert width_error[0.05] < 1.0 < 5.0 < width_error[0.01]


def test_coast_damping_slows_lost_tracks():
    def velocity_after_miss(damping):
        tracker = DeepSORTTracker(minimum_consecutive_frames=1, use_appearance=False, coast_damping=damping)
        for t in range(8):
            tracker.update_arrays(np.array([box(100 + 10 * t)]), np.array([1.0]))
        v0 = tracker.tracks[0].velocity_xyah[0]
        for _ in range(3):
            tracker.update_arrays(np.zeros((0, 4)))
        return v0, tracker.tracks[0].velocity_xyah[0]

    v0, kept = velocity_after_miss(1.0)
    assert kept == pytest.approx(v0)
    # Damped on each of the two predictions that follow a missed frame.
    _, damped = velocity_after_miss(0.5)
    assert damped == pytest.approx(0.25 * v0)


def _textured(shift: tuple[int, int], size=(240, 320)) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = (rng.random((size[0] + 40, size[1] + 40)) * 255).astype(np.uint8)
    import cv2

    base = cv2.GaussianBlur(base, (5, 5), 0)
    dy, dx = shift
    crop = base[20 - dy : 20 - dy + size[0], 20 - dx : 20 - dx + size[1]]
    return np.ascontiguousarray(np.repeat(crop[:, :, None], 3, axis=2))


def test_camera_motion_estimate_recovers_a_pan():
    from deepsort_edge.tracking.camera_motion import CameraMotionEstimator

    est = CameraMotionEstimator()
    np.testing.assert_array_equal(est.estimate(_textured((0, 0))), [[1, 0, 0], [0, 1, 0]])
    affine = est.estimate(_textured((4, 10)))  # the scene moved 10 px right, 4 px down
    np.testing.assert_allclose(affine[:, :2], np.eye(2), atol=0.02)
    np.testing.assert_allclose(affine[:, 2], [10, 4], atol=1.0)


def test_camera_motion_moves_tracks_with_the_pan():
    frames = [_textured((0, 0)), _textured((0, 12))]
    tracker = DeepSORTTracker(minimum_consecutive_frames=1, use_appearance=False, camera_motion="affine")
    still = DeepSORTTracker(minimum_consecutive_frames=1, use_appearance=False)
    for t in (tracker, still):
        t.update_arrays(np.array([box(100, 120, 80)]), np.array([1.0]), frame=frames[0])
        t.update_arrays(np.zeros((0, 4)), frame=frames[1])
    shift = tracker.tracks[0].xyxy[0] - still.tracks[0].xyxy[0]
    assert shift == pytest.approx(12, abs=1.0)


def test_confidence_aware_embedding_update_weighs_by_score():
    e0, e1 = np.eye(2, 8, dtype=np.float32)[:1], np.eye(2, 8, dtype=np.float32)[1:]
    tracker = DeepSORTTracker(minimum_consecutive_frames=1, track_activation_threshold=0.3)
    tracker.update_arrays(np.array([box(100)]), np.array([1.0]), e0)
    tracker.update_arrays(np.array([box(101)]), np.array([0.5]), e1)
    row = tracker._store.gallery[tracker._store.order[0], 0]
    blended = 0.95 * np.array([1.0, 0.0]) + 0.05 * np.array([0.0, 1.0])
    np.testing.assert_allclose(row[:2], blended / np.linalg.norm(blended), rtol=1e-6)
    # A low-score match continues the track but teaches it nothing.
    tracker.update_arrays(np.array([box(102)]), np.array([0.2]), e0)
    np.testing.assert_allclose(tracker._store.gallery[tracker._store.order[0], 0][:2], row[:2])


def test_version_1_states_keep_their_old_behaviour():
    tracker = DeepSORTTracker(preset="roboflow-2.0.1")
    for t in range(4):
        tracker.update_arrays(np.array([box(100 + 3 * t)]), np.array([0.9]))
    state = tracker.state_dict()
    old = {"lost_track_buffer", "frame_rate", "track_activation_threshold", "minimum_consecutive_frames",
           "minimum_iou_threshold", "appearance_threshold", "appearance_weight", "distance_metric", "nn_budget",
           "appearance_mode", "ema_momentum", "gating", "matching", "motion_cost", "use_appearance", "on_invalid"}
    state["version"] = 1
    state["settings"] = {k: v for k, v in state["settings"].items() if k in old}
    state["tracks"] = {k: v for k, v in state["tracks"].items() if k != "class_id"}
    resumed = DeepSORTTracker()
    resumed.load_state_dict(state)
    assert resumed.settings == tracker.settings
    step = np.array([box(112)])
    assert resumed.update_arrays(step, np.array([0.9])).tolist() == tracker.update_arrays(step, np.array([0.9])).tolist()


def test_interpolation_matches_a_plain_loop():
    from deepsort_edge.tracking.interpolation import interpolate_gaps

    rng = np.random.default_rng(3)
    rows = []
    for track in (1, 2, 5):
        frames = np.sort(rng.choice(np.arange(1, 60), size=25, replace=False))
        for f in frames:
            rows.append((f, track, *rng.uniform(0, 100, 2), *rng.uniform(10, 50, 2)))
    results = MOTData.from_arrays(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]),
                                  np.array([[r[2], r[3], r[2] + r[4], r[3] + r[5]] for r in rows]))
    filled = interpolate_gaps(results, max_gap=3)
    expected = {}
    for track in (1, 2, 5):
        own = results.table[results.ids == track]
        for a, b in zip(own[:-1], own[1:]):
            expected[(a[0], track)] = a[2:6]
            if 1 < b[0] - a[0] <= 4:
                for f in range(int(a[0]) + 1, int(b[0])):
                    t = (f - a[0]) / (b[0] - a[0])
                    expected[(f, track)] = (1 - t) * a[2:6] + t * b[2:6]
        expected[(own[-1, 0], track)] = own[-1, 2:6]
    got = {(r[0], r[1]): r[2:6] for r in filled.table}
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        np.testing.assert_allclose(got[key], value, rtol=1e-12)
    assert np.all(np.diff(filled.frames) >= 0)
    assert interpolate_gaps(results, 0) is results
    with pytest.raises(ValueError, match="max_gap"):
        interpolate_gaps(results, -1)


def test_appearance_gate_scale_lets_a_matching_embedding_past_the_motion_gate():
    from deepsort_edge.kernels.gating import CHI2_095

    look = np.array([[1.0, 0.0, 0.0, 0.0]], dtype=np.float32)
    jump = box(130)  # past the 0.95 motion gate, and too little overlap for the IoU stage
    xyah = np.array([[130.0, 200.0, 0.4, 100.0]])
    outcome = {}
    for scale in (1.0, 4.0):
        tracker = DeepSORTTracker(minimum_consecutive_frames=1, appearance_gate_scale=scale)
        for _ in range(6):
            tracker.update_arrays(np.array([box(100)]), np.array([0.9]), look)
        noise = (tracker.settings.aspect_noise, tracker.settings.aspect_velocity_noise)
        mean, covariance = ref.kf_predict(tracker._store.mean[0], tracker._store.covariance[0], *noise)
        d2 = ref.squared_mahalanobis(mean, covariance, xyah, 4)[0]
        assert CHI2_095[4] < d2 <= 4.0 * CHI2_095[4], "the jump must lie between the two gates"
        outcome[scale] = tracker.update_arrays(np.array([jump]), np.array([0.9]), look).tolist()
    assert outcome == {1.0: [2], 4.0: [1]}  # a new track with the motion gate; the same one with the wider gate
