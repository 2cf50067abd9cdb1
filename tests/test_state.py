"""Saved tracker states: the file format, and states that were tampered with."""

from __future__ import annotations

import copy
import io
import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepsort_edge import DeepSORTTracker
from deepsort_edge.tracking.state import check_state
from deepsort_edge.demo.synthetic import SceneConfig, generate_scene
from deepsort_edge.tracking.tracks import TRACK_FIELDS
from tests.common import assert_same_state, run
from tests.conftest import subprocess_env

REPO = Path(__file__).resolve().parents[1]
BUDGET = 4


def scene(num_frames: int, seed: int = 0, dim: int = 8):
    cfg = SceneConfig(num_objects=8, width=640, height=480, seed=seed, turnover=0.02, miss_rate=0.15,
                      box_noise=2.0, false_positive_rate=0.05, embedding_dim=dim)
    return generate_scene(cfg, num_frames)


FRAMES = scene(40)
SPLIT = 20


def base_tracker(**kwargs) -> DeepSORTTracker:
    """A tracker part-way through a scene: confirmed and tentative tracks, full and partial galleries."""
    tracker = DeepSORTTracker(nn_budget=BUDGET, minimum_consecutive_frames=2, lost_track_buffer=60,
                              appearance_mode="gallery", **kwargs)
    run(tracker, FRAMES[:SPLIT])
    return tracker


BASE = base_tracker().state_dict()


def test_base_state_has_what_the_tamper_tests_need():
    tracks = BASE["tracks"]
    assert (tracks["state"] == 1).sum() >= 3 and (tracks["state"] == 0).any()
    assert (tracks["gallery_count"] == BUDGET).any() and (tracks["gallery_count"] < BUDGET).any()
    assert (tracks["time_since_update"] > 0).any()


# --------------------------------------------------------------------------- files
@pytest.mark.parametrize("mode", ["gallery", "ema"])
def test_save_load_resumes_exactly(tmp_path, mode):
    whole = DeepSORTTracker(appearance_mode=mode, nn_budget=BUDGET)
    expected = run(whole, FRAMES)
    first = DeepSORTTracker(appearance_mode=mode, nn_budget=BUDGET)
    got = run(first, FRAMES[:SPLIT])
    path = first.save(tmp_path / "state.npz")
    resumed = DeepSORTTracker.load(path)
    assert repr(resumed) == repr(first)
    got += run(resumed, FRAMES[SPLIT:])
    assert got == expected
    assert_same_state(whole.state_dict(), resumed.state_dict())


def test_state_file_is_plain_npz_with_json_meta(tmp_path):
    tracker = base_tracker()
    path = tracker.save(tmp_path / "state.bin")  # the name is used as given
    assert path == tmp_path / "state.bin" and path.is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["state.bin"]  # no temporary file left behind
    with np.load(path, allow_pickle=False) as npz:
        assert set(npz.files) == {"meta", *TRACK_FIELDS, "gallery"}
        meta = json.loads(str(npz["meta"]))
        np.testing.assert_array_equal(npz["gallery_head"], BASE["tracks"]["gallery_head"])
    assert meta["format"] == "deepsort-edge.tracker-state" and meta["version"] == 2
    assert meta["settings"]["nn_budget"] == BUDGET and meta["next_id"] == BASE["next_id"]
    assert meta["written_by"].startswith("deepsort-edge ")


class _Trap:
    """Unpickling this would create a file: proof that a loader ran code."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.touch, (Path(self.target),))


def _rewrite(path: Path, out: Path, change) -> Path:
    """Copy the .npz at ``path`` to ``out`` with ``change(members)`` applied to its arrays."""
    with np.load(path, allow_pickle=False) as npz:
        members = {k: npz[k] for k in npz.files}
    change(members)
    with out.open("wb") as fh:
        np.savez(fh, **members)
    return out


def test_load_never_unpickles(tmp_path):
    path = base_tracker().save(tmp_path / "good.npz")
    trap = tmp_path / "pwned"
    evil = _rewrite(path, tmp_path / "evil.npz",
                    lambda m: m.__setitem__("gallery", np.array([_Trap(str(trap))], dtype=object)))
    with pytest.raises(ValueError, match="member 'gallery.npy' is not a valid array.*object"):
        DeepSORTTracker.load(evil)
    assert not trap.exists()
    # A pickled tracker is no state file either.
    pickled = tmp_path / "tracker.pkl"
    pickled.write_bytes(pickle.dumps(_Trap(str(trap))))
    with pytest.raises(ValueError, match="not an .npz archive"):
        DeepSORTTracker.load(pickled)
    assert not trap.exists()


def _bad_header(path: Path) -> None:
    """Replace the gallery member by a header claiming 40 GB, followed by 64 bytes."""
    with zipfile.ZipFile(path) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<f4", "fortran_order": False, "shape": (10**5, 10**5, 1)}
    )
    members["gallery.npy"] = buf.getvalue() + bytes(64)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


FILE_FAULTS = [
    ("not a zip", lambda p: p.write_bytes(b"hello"), "not an .npz archive"),
    ("extra member", lambda p: _rewrite(p, p, lambda m: m.__setitem__("extra", np.zeros(3))), "unexpected member 'extra.npy'"),
    ("missing member", lambda p: _rewrite(p, p, lambda m: m.pop("hits")), r"lacks \['hits'\]"),
    ("meta not JSON", lambda p: _rewrite(p, p, lambda m: m.__setitem__("meta", np.array("{oops"))), "not valid JSON"),
    ("meta NaN", lambda p: _rewrite(p, p, lambda m: m.__setitem__("meta", np.array('{"next_id": NaN}'))), "NaN is not allowed"),
    ("meta bytes", lambda p: _rewrite(p, p, lambda m: m.__setitem__("meta", np.zeros(3, np.uint8))), "must be a JSON string"),
    ("huge header", _bad_header, r"has shape \(100000, 100000, 1\), expected \(9, 4, 8\)"),
]


@pytest.mark.parametrize("name, fault, message", FILE_FAULTS, ids=[f[0] for f in FILE_FAULTS])
def test_malformed_files_are_refused_with_a_reason(tmp_path, name, fault, message):
    path = base_tracker().save(tmp_path / "state.npz")
    fault(path)
    with pytest.raises(ValueError, match=message):
        DeepSORTTracker.load(path)


def test_file_size_limit_and_missing_file(tmp_path):
    path = base_tracker().save(tmp_path / "state.npz")
    with pytest.raises(ValueError, match="more than max_bytes=1000"):
        DeepSORTTracker.load(path, max_bytes=1000)
    with pytest.raises(FileNotFoundError, match="state file not found"):
        DeepSORTTracker.load(tmp_path / "nope.npz")


# --------------------------------------------------------------------------- checks, field by field
def tampered(change) -> dict:
    state = copy.deepcopy(BASE)
    change(state)
    return state


def _set(field: str, row: int, value, index: tuple = ()):
    def change(state):
        state["tracks"][field][(row, *index)] = value
    return change


def _first(condition) -> int:
    return int(np.flatnonzero(condition(BASE["tracks"]))[0])


FULL = _first(lambda t: t["gallery_count"] == BUDGET)
PARTIAL = _first(lambda t: (t["gallery_count"] < BUDGET) & (t["gallery_count"] > 0))
CONF = _first(lambda t: t["state"] == 1)
TENT = _first(lambda t: t["state"] == 0)
OTHER_CONF = int(np.flatnonzero(BASE["tracks"]["state"] == 1)[1])


def _cast(field: str, dtype: type):
    def change(state):
        state["tracks"][field] = state["tracks"][field].astype(dtype)
    return change


def _shrink_budget(state):
    # Shrinking nn_budget by hand: slice every gallery and lower the setting.
    state["settings"]["nn_budget"] = 2
    state["tracks"]["gallery"] = state["tracks"]["gallery"][:, :2]


def _nan_asymmetric(state):
    state["tracks"]["covariance"][CONF, 0, 1] += 1.0


def _not_pd(state):
    state["tracks"]["covariance"][CONF, 0, 4] = state["tracks"]["covariance"][CONF, 4, 0] = 1e9


TAMPERS = [
    ("head == budget", _set("gallery_head", FULL, BUDGET), "tracks.gallery_head"),
    ("head negative", _set("gallery_head", FULL, -1), "tracks.gallery_head"),
    ("head huge", _set("gallery_head", FULL, 2**31 - 1), "tracks.gallery_head"),
    ("head != count in partial gallery", _set("gallery_head", PARTIAL, 0), "equal gallery_count"),
    ("count > budget", _set("gallery_count", FULL, BUDGET + 1), "tracks.gallery_count"),
    ("count negative", _set("gallery_count", PARTIAL, -3), "tracks.gallery_count"),
    ("budget shrunk by slicing", _shrink_budget, "tracks.gallery_count"),
    ("duplicate id", _set("track_id", OTHER_CONF, int(BASE["tracks"]["track_id"][CONF])), "repeats id"),
    ("id at next_id", _set("track_id", CONF, BASE["next_id"]), r"\[1, next_id="),
    ("tentative with an id", _set("track_id", TENT, 7), "tentative track has id 0"),
    ("id negative", _set("track_id", CONF, -1), "tracks.track_id"),
    ("next_id below ids", lambda s: s.__setitem__("next_id", int(s["tracks"]["track_id"].max())), r"\[1, next_id="),
    ("next_id -1", lambda s: s.__setitem__("next_id", -1), "'next_id' must be in"),
    ("next_id int64 max", lambda s: s.__setitem__("next_id", 2**63 - 1), "'next_id' must be in"),
    ("next_id float", lambda s: s.__setitem__("next_id", 12.0), "'next_id' must be an integer"),
    ("frame_count bool", lambda s: s.__setitem__("frame_count", True), "'frame_count' must be an integer"),
    ("frame_count negative", lambda s: s.__setitem__("frame_count", -5), "'frame_count' must be in"),
    ("state code 2", _set("state", CONF, 2), "unknown state code"),
    ("hits negative", _set("hits", CONF, -1), "tracks.hits"),
    ("hits above age", _set("hits", CONF, 10**6), "hits must not exceed age"),
    ("age negative", _set("age", CONF, -1), "tracks.age"),
    ("age beyond frame_count", _set("age", CONF, SPLIT + 1), "tracks.age"),
    ("time_since_update negative", _set("time_since_update", CONF, -1), "tracks.time_since_update"),
    ("mean NaN", _set("mean", CONF, np.nan, (2,)), "tracks.mean.*not finite"),
    ("mean inf", _set("mean", CONF, np.inf, (0,)), "tracks.mean.*not finite"),
    ("mean huge", _set("mean", CONF, 1e300, (3,)), "tracks.mean.*magnitude beyond 1e"),
    ("covariance huge", _set("covariance", CONF, 1e200, (0, 0)), "tracks.covariance.*magnitude beyond"),
    ("covariance NaN", _set("covariance", CONF, np.nan, (3, 3)), "tracks.covariance.*not finite"),
    ("covariance asymmetric", _nan_asymmetric, "not symmetric"),
    ("covariance not PD", _not_pd, "not positive definite"),
    ("covariance zero diagonal", _set("covariance", CONF, 0.0, (5, 5)), "not positive definite"),
    ("gallery not unit", _set("gallery", FULL, 3.0, (0, 0)), "unit norm"),
    ("gallery NaN", _set("gallery", FULL, np.nan, (1, 2)), "tracks.gallery.*not finite"),
    ("mean complex", _cast("mean", np.complex128), "tracks.mean' must hold real numbers"),
    ("hits float", _cast("hits", np.float64), "tracks.hits' must hold integers"),
    ("ids as strings", _cast("track_id", str), "tracks.track_id' must hold integers"),
    ("gallery bool", _cast("gallery", bool), "tracks.gallery' must hold real numbers"),
    ("ragged", lambda s: s["tracks"].__setitem__("mean", [[1.0] * 8, [1.0] * 3]), "not a rectangular array"),
    ("tracks a list", lambda s: s.__setitem__("tracks", [1, 2]), "'tracks' must be a mapping"),
    ("tracks field missing", lambda s: s["tracks"].pop("age"), r"'tracks' lacks \['age'\]"),
    ("tracks field unknown", lambda s: s["tracks"].__setitem__("colour", np.zeros(3)), r"unknown field\(s\) \['colour'\]"),
    ("top-level unknown", lambda s: s.__setitem__("extra", 1), r"unknown field\(s\) \['extra'\]"),
    ("setting unknown", lambda s: s["settings"].__setitem__("turbo", True), r"unknown setting\(s\) \['turbo'\]"),
    ("setting out of range", lambda s: s["settings"].__setitem__("nn_budget", 0), "settings.*nn_budget"),
    ("setting wrong type", lambda s: s["settings"].__setitem__("gating", 3), "settings.*gating"),
    ("settings a list", lambda s: s.__setitem__("settings", [1]), "'settings' must be a mapping"),
    ("embedding_dim mismatch", lambda s: s.__setitem__("embedding_dim", 9), "tracks.gallery' has shape"),
    ("gallery too large", lambda s: (s.__setitem__("embedding_dim", 60000), s["settings"].__setitem__("nn_budget", 1000)),
     "more than the limit"),
]


@pytest.mark.parametrize("name, change, message", TAMPERS, ids=[t[0] for t in TAMPERS])
def test_tampered_field_is_refused_naming_it_and_tracker_unchanged(name, change, message):
    state = tampered(change)
    tracker = base_tracker()
    before = tracker.state_dict()
    with pytest.raises(ValueError, match=message):
        tracker.load_state_dict(state)
    assert_same_state(before, tracker.state_dict())
    assert tracker.update_arrays(FRAMES[SPLIT].xyxy, FRAMES[SPLIT].scores, FRAMES[SPLIT].embeddings) is not None


def test_state_from_json_lists_loads_and_behaves_the_same():
    as_json = json.loads(json.dumps({**BASE, "tracks": {k: v.tolist() for k, v in BASE["tracks"].items()}}))
    tracker = DeepSORTTracker()
    tracker.load_state_dict(as_json)
    assert_same_state(BASE, tracker.state_dict())
    assert run(tracker, FRAMES[SPLIT:]) == run(base_tracker(), FRAMES[SPLIT:])
    empty = json.loads(json.dumps({**DeepSORTTracker().state_dict(), "tracks": {k: [] for k in BASE["tracks"]}}))
    DeepSORTTracker().load_state_dict(empty)


def test_missing_settings_take_defaults_and_unused_gallery_rows_are_ignored():
    older = tampered(lambda s: s["settings"].pop("motion_cost"))
    tracker = DeepSORTTracker(motion_cost="mahalanobis")
    tracker.load_state_dict(older)
    assert tracker.motion_cost == "iou"
    # Rows past gallery_count are never read: whatever they hold changes nothing.
    noisy = tampered(_set("gallery", PARTIAL, 123.0, (BUDGET - 1,)))
    tracker.load_state_dict(noisy)
    assert_same_state(BASE, tracker.state_dict())


def test_tracker_never_writes_into_another_tracks_gallery():
    """Each matched track's gallery changes in its own head row only; the others not at all."""
    tracker = base_tracker(use_appearance=True)
    before = tracker.state_dict()["tracks"]
    live = (before["state"] == 1) & (before["time_since_update"] == 0)
    assert live.sum() >= 2 and (~live & (before["state"] == 1)).any()
    # Detections exactly on the predicted boxes, with each track's newest embedding.
    boxes = np.array([v.xyxy for v in tracker.tracks])
    newest = before["gallery"][np.arange(len(boxes)), (before["gallery_head"] - 1) % BUDGET]
    tracker.update_arrays(boxes[live], np.ones(live.sum()), newest[live])
    after = tracker.state_dict()["tracks"]
    survivors = np.flatnonzero(before["state"] == 1)  # tentative tracks die unmatched; nothing new starts
    assert len(after["mean"]) == survivors.size
    for k, i in enumerate(survivors):
        changed = np.flatnonzero((after["gallery"][k] != before["gallery"][i]).any(axis=1)).tolist()
        if live[i]:
            assert after["time_since_update"][k] == 0
            assert changed in ([], [before["gallery_head"][i]])
            np.testing.assert_array_equal(after["gallery"][k, before["gallery_head"][i]], newest[i])
        else:
            assert changed == [] and after["gallery_count"][k] == before["gallery_count"][i]


# --------------------------------------------------------------------------- property: tamper anything
INT_VALUES = st.one_of(
    st.sampled_from([-(2**63), -(2**31) - 1, -1, 0, 1, 2, BUDGET - 1, BUDGET, BUDGET + 1, 2**31 - 1, 2**31, 2**62, 2**63 - 1]),
    st.integers(-100, 100),
)
FLOAT_VALUES = st.one_of(
    st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e300, -1e300, 1e-300, 1.0, -1.0]),
    st.floats(-1e4, 1e4),
)
INT_FIELDS = [n for n, (dtype, _) in TRACK_FIELDS.items() if np.issubdtype(dtype, np.integer)]
FLOAT_FIELDS = ["mean", "covariance", "gallery"]


@st.composite
def tampering(draw):
    n = len(BASE["tracks"]["mean"])
    kind = draw(st.sampled_from(["int", "float", "scalar"]))
    if kind == "scalar":
        return draw(st.sampled_from(["frame_count", "next_id", "embedding_dim"])), None, None, draw(INT_VALUES)
    field = draw(st.sampled_from(INT_FIELDS if kind == "int" else FLOAT_FIELDS))
    row = draw(st.integers(0, n - 1))
    shape = BASE["tracks"][field].shape[1:]
    index = tuple(draw(st.integers(0, s - 1)) for s in shape)
    return field, row, index, draw(INT_VALUES if kind == "int" else FLOAT_VALUES)


def _apply(state: dict, field: str, row, index, value) -> dict:
    state = copy.deepcopy(state)
    if row is None:
        state[field] = value
        return state
    array = state["tracks"][field]
    # Widen first: room for out-of-range values (the check sees them as given).
    array = state["tracks"][field] = array.astype(np.int64 if np.issubdtype(array.dtype, np.integer) else np.float64)
    array[(row, *index)] = value
    return state


def _assert_other_tracks_step_alike(tracker: DeepSORTTracker, tampered_row: int | None) -> None:
    reference = DeepSORTTracker()
    reference.load_state_dict(BASE)
    ours = copy.deepcopy(tracker)
    max_age = ours.maximum_frames_without_update
    befores = [t.state_dict()["tracks"] for t in (reference, ours)]
    for t in (reference, ours):
        t.update_arrays(np.zeros((0, 4)))
    afters = [t.state_dict()["tracks"] for t in (reference, ours)]
    # Survivors of an empty frame: confirmed tracks not yet past max_age, in birth order.
    kept = [np.flatnonzero((b["state"] == 1) & (b["time_since_update"] + 1 <= max_age)) for b in befores]
    for k, after in zip(kept, afters, strict=True):
        assert len(after["mean"]) == k.size
    for row in np.intersect1d(*kept):
        if row == tampered_row:
            continue
        i, j = (int(np.searchsorted(k, row)) for k in kept)
        for name in afters[0]:
            np.testing.assert_array_equal(afters[1][name][j], afters[0][name][i], err_msg=f"{name} of row {row}")


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tampering())
def test_any_tampered_value_is_refused_or_tracked_without_corruption(change):
    field, row, index, value = change
    state = _apply(BASE, field, row, index, value)
    tracker = DeepSORTTracker()
    before = tracker.state_dict()
    try:
        tracker.load_state_dict(state)
    except ValueError as exc:
        assert field in str(exc) or "gallery" in str(exc) or "track" in str(exc), str(exc)
        assert_same_state(before, tracker.state_dict())
        return
    # Accepted: stored exactly as given (no silent repair) ...
    loaded = tracker.state_dict()
    expected = check_state(state).tracks
    for name in TRACK_FIELDS:
        np.testing.assert_array_equal(loaded["tracks"][name], expected[name], err_msg=name)
        np.testing.assert_array_equal(loaded["tracks"][name], np.asarray(state["tracks"][name]), err_msg=name)
    # ... no other track is touched: with no detections every track moves on
    # its own, so all rows but the tampered one step exactly as untampered ...
    _assert_other_tracks_step_alike(tracker, row)
    # ... and tracking goes on keeping every invariant the checks demand (a
    # filter started near the magnitude limits may grow past them, finitely).
    for f in FRAMES[SPLIT:SPLIT + 8]:
        ids = tracker.update_arrays(f.xyxy, f.scores, f.embeddings)
        live = ids[ids > 0]
        assert np.unique(live).size == live.size
        try:
            check_state(tracker.state_dict())
        except ValueError as exc:
            assert "magnitude beyond" in str(exc), str(exc)


# --------------------------------------------------------------------------- bounds-checked kernels
@pytest.mark.skipif(os.environ.get("NUMBA_BOUNDSCHECK") != "1", reason="runs only under NUMBA_BOUNDSCHECK=1")
def test_bounds_checks_are_on_in_this_run():
    """Inside the bounds-checked slice: an out-of-range head raises instead of writing memory."""
    from deepsort_edge.kernels.gallery import gallery_append

    galleries = np.zeros((2, BUDGET, 3), np.float32)
    with pytest.raises(IndexError):
        gallery_append(galleries, np.zeros(2, np.int32), np.array([BUDGET, 0], np.int32),
                       np.array([0], np.intp), np.ones((1, 3), np.float32), np.array([0], np.intp))


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("NUMBA_BOUNDSCHECK") == "1", reason="already inside the bounds-checked run")
@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="needs compiled kernels")
def test_state_tests_pass_with_numba_bounds_checks(tmp_path):
    """This module and the recorded sequences again, every kernel compiled with bounds checks (own cache)."""
    # The same deepsort_edge as this run (installed or source); PYTHONSAFEPATH keeps
    # `python -m` from putting the checkout first on sys.path.
    env = subprocess_env(NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"), PYTHONSAFEPATH="1")
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", str(Path(__file__)),
         str(Path(__file__).with_name("test_recorded.py")), "-k", "not test_state_tests_pass_with_numba_bounds_checks"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "1 skipped" not in out.stdout.splitlines()[-1]  # the bounds-check probe ran
