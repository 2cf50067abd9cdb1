"""IdentityRegistry: global ids across streams and re-entries (deepsort_edge.streams.identities)."""

from __future__ import annotations

import numpy as np
import pytest
import supervision as sv
from scipy.optimize import linear_sum_assignment

from deepsort_edge import DeepSORTTracker, MultiStreamTracker
from deepsort_edge.streams.identities import IdentityRegistry
from deepsort_edge.tracking.settings import IdentitySettings

E = np.eye(8)


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def feed(reg: IdentityRegistry, stream: str, track: int, emb: np.ndarray, times: np.ndarray) -> list[int]:
    """One track seen alone at ``times``; its global id per frame."""
    return [int(reg.observe(stream, [track], [emb], time=float(t))[0]) for t in times]


def test_reentry_in_one_stream_keeps_the_global_id_and_a_stranger_gets_a_new_one() -> None:
    reg = IdentityRegistry(min_frames=3)
    first = feed(reg, "cam", 1, E[0], np.arange(10) * 0.1)
    assert first[:2] == [-1, -1] and set(first[2:]) == {1}  # undecided until min_frames
    back = feed(reg, "cam", 2, unit(E[0] + 0.05 * E[1]), 5 + np.arange(10) * 0.1)  # new local id, same look
    assert set(back[2:]) == {1}
    other = feed(reg, "cam", 3, E[2], 9 + np.arange(10) * 0.1)
    assert set(other[2:]) == {2}
    assert len(reg) == 2


def test_one_person_is_not_in_two_streams_at_once_unless_their_views_overlap() -> None:
    for overlaps, same in (((), False), ((("cam1", "cam0"),), True)):
        reg = IdentityRegistry(min_frames=2, overlaps=overlaps)
        ids = {}
        for t in np.arange(5) * 0.1:
            ids["cam0"] = reg.observe("cam0", [1], [E[0]], time=t)[0]
            ids["cam1"] = reg.observe("cam1", [1], [E[0]], time=t)[0]
        assert bool(ids["cam0"] == ids["cam1"]) is same


def test_topology_limits_where_and_when_a_person_reappears() -> None:
    def reappear(stream: str, after: float) -> int:
        reg = IdentityRegistry(min_frames=2, topology={("a", "b"): (5.0, 20.0)})
        feed(reg, "a", 1, E[0], np.arange(4) * 0.1)
        return feed(reg, stream, 1, E[0], 0.3 + after + np.arange(4) * 0.1)[-1]

    assert reappear("b", 10.0) == 1  # within the travel-time window
    assert reappear("b", 2.0) == 2  # too soon to have walked there
    assert reappear("b", 30.0) == 2  # too late
    assert reappear("c", 10.0) == 2  # not connected
    assert reappear("a", 100.0) == 1  # re-entry in the same stream needs no edge


def test_identities_expire_and_memory_stays_bounded() -> None:
    reg = IdentityRegistry(min_frames=1, expire_after=10.0)
    feed(reg, "cam", 1, E[0], [0.0])
    assert feed(reg, "cam", 2, E[0], [5.0]) == [1]
    assert feed(reg, "cam", 3, E[0], [16.0]) == [2]  # unseen for 11 s: forgotten
    assert len(reg) == 1 and len(reg.links()) == 1
    capped = IdentityRegistry(min_frames=1, max_identities=3)
    for track in range(6):
        feed(capped, "cam", track, E[track], [float(track)])
    assert len(capped) == 3
    assert sorted(link["global_id"] for link in capped.links()) == [4, 5, 6]  # the longest unseen went first


def test_an_early_wrong_link_is_corrected_when_the_evidence_doubles() -> None:
    """Frames 1-2 look like A, later ones like B: linked to A at frame 2, moved to B at frame 4."""
    reg = IdentityRegistry(min_frames=2, revise_frames=8, margin=0.05, link_threshold=0.3)
    for t in (0.0, 0.1):
        reg.observe("cam0", [1, 2], E[:2], time=t)  # identities 1 (A) and 2 (B)
    looks = [E[0], E[0], E[1], E[1], E[1], E[1], E[1], E[1], E[1]]
    ids = [int(reg.observe("cam1", [5], [v], time=10.0 + 0.1 * i)[0]) for i, v in enumerate(looks)]
    # Decisions at 2, 4 and 8 frames: the mean at 4 frames is equally near A and B (no change:
    # the margin), at 8 frames it is clearly B's.
    assert ids == [-1, 1, 1, 1, 1, 1, 1, 2, 2]
    (link,) = [x for x in reg.links() if x["stream"] == "cam1"]
    assert link["global_id"] == 2 and link["final"]


def test_a_linked_track_that_turns_out_unlike_its_identity_gets_a_new_id() -> None:
    reg = IdentityRegistry(min_frames=2, revise_frames=8, link_threshold=0.3, margin=0.05)
    feed(reg, "cam0", 1, E[0], [0.0, 0.1])
    looks = [E[0], E[0]] + [E[3]] * 6
    ids = [int(reg.observe("cam1", [5], [v], time=10.0 + 0.1 * i)[0]) for i, v in enumerate(looks)]
    # At 4 frames the mean is 0.29 from identity 1 (kept: 0.29 - margin < 0.3); at 8 frames 0.68: a new id.
    assert ids == [-1, 1, 1, 1, 1, 1, 1, 2]
    assert len(reg) == 2


def test_the_assignment_is_optimal_not_greedy() -> None:
    """Two tracks decided in one frame against two identities: scipy's assignment is the reference."""
    sims = np.array([[0.70, 0.65], [0.68, 0.25]])  # cosine distances 0.30 0.35 / 0.32 0.75
    rows = [np.array([s0, s1, np.sqrt(1 - s0**2 - s1**2)]) for s0, s1 in sims]
    reg = IdentityRegistry(min_frames=1, link_threshold=0.8, samples=0)
    reg.observe("cam0", [1, 2], np.eye(3)[:2], time=0.0)  # identities 1 and 2
    got = reg.observe("cam1", [7, 8], np.array(rows), time=5.0)
    r, c = linear_sum_assignment(1.0 - sims)
    assert got.tolist() == (c[np.argsort(r)] + 1).tolist() == [2, 1]


def calls(start: int, stop: int):
    """A seeded two-camera sequence: six people, each in one camera for 30 steps, then the other."""
    people = np.random.default_rng(3).normal(size=(6, 16))
    for step in range(start, stop):
        noise = np.random.default_rng(step).normal(size=(6, 16))
        for camera, stream in enumerate(("cam0", "cam1")):
            here = [p for p in range(6) if (p + step // 30 + camera) % 2]
            tracks = np.array([p * 100 + step // 30 for p in here], dtype=np.int64)
            yield stream, tracks, people[here] + 0.3 * noise[here], step / 10


def test_same_calls_same_ids_and_save_load_resumes_exactly(tmp_path) -> None:
    one = IdentityRegistry(min_frames=3, link_threshold=0.4)
    whole = [one.observe(*c).tolist() for c in calls(0, 200)]
    two = IdentityRegistry(min_frames=3, link_threshold=0.4)
    first = [two.observe(*c).tolist() for c in calls(0, 90)]
    resumed = IdentityRegistry.load(two.save(tmp_path / "ids.npz"))
    second = [resumed.observe(*c).tolist() for c in calls(90, 200)]
    assert first + second == whole
    assert resumed.settings == two.settings and resumed.links() == one.links()
    # Six people, many tracks: the registry keeps them to six identities.
    assert {i for ids in whole for i in ids} == {-1, 1, 2, 3, 4, 5, 6}


def test_load_rejects_a_tampered_state(tmp_path) -> None:
    reg = IdentityRegistry(min_frames=1)
    reg.observe("cam", [1, 2], E[:2], time=0.0)
    state = reg.state_dict()
    state["arrays"]["i_gid"] = np.array([1, 1])
    with pytest.raises(ValueError, match="i_gid"):
        IdentityRegistry().load_state_dict(state)
    state = reg.state_dict()
    state["arrays"]["t_ident"] = np.array([0, 5])
    with pytest.raises(ValueError, match="t_ident"):
        IdentityRegistry().load_state_dict(state)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError):
        IdentityRegistry.load(tmp_path / "bad.npz")


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda r: r.observe(1, [1], [[1.0]], time=0.0), TypeError, "stream_id"),
        (lambda r: r.observe("c", [[1]], [[1.0]], time=0.0), ValueError, "track_ids"),
        (lambda r: r.observe("c", [1], [[1.0], [2.0]], time=0.0), ValueError, "embeddings"),
        (lambda r: r.observe("c", [1], [[0.0]], time=0.0), ValueError, "non-zero"),
        (lambda r: r.observe("c", [1], [[1.0]], time=float("nan")), ValueError, "time"),
        (lambda r: r.observe("c", [1, 1], [[1.0], [1.0]], time=0.0), ValueError, "repeat"),
        (lambda r: IdentityRegistry(overlaps=[("a",)]), ValueError, "overlaps"),
        (lambda r: IdentityRegistry(topology={("a", "b"): (5, 1)}), ValueError, "topology"),
        (lambda r: IdentityRegistry(link_threshold=3.0), ValueError, "link_threshold"),
        (lambda r: IdentityRegistry(colour=1), ValueError, "unknown identity settings"),
    ],
)
def test_bad_input_is_a_clear_error(call, error, match) -> None:
    with pytest.raises(error, match=match):
        call(IdentityRegistry())


def test_time_must_not_go_back_in_a_stream() -> None:
    reg = IdentityRegistry()
    reg.observe("c", [1], [[1.0, 0.0]], time=5.0)
    with pytest.raises(ValueError, match="earlier"):
        reg.observe("c", [1], [[1.0, 0.0]], time=4.0)


def scene(frames: int = 12):
    """Two cameras: one person walks in cam0 first and in cam1 later; its embedding is fixed."""
    look = np.array([[1.0, 0.2, 0.0, 0.1]])
    for f in range(frames):
        box = np.array([[10.0 + 3 * f, 20.0, 50.0 + 3 * f, 120.0]])
        dets = sv.Detections(xyxy=box, confidence=np.array([0.9]), data={"embeddings": look})
        yield f, {("cam0" if f < frames // 2 else "cam1"): dets}


def test_multistream_global_ids_false_changes_nothing_and_true_adds_them() -> None:
    plain, linked = MultiStreamTracker(minimum_consecutive_frames=1), MultiStreamTracker(
        minimum_consecutive_frames=1, global_ids=IdentityRegistry(min_frames=2))
    seen = []
    for f, dets in scene():
        a, b = plain.update(dets), linked.update(dets, timestamps={s: f / 10 for s in dets})
        for sid in dets:
            assert "global_id" not in a[sid].data
            np.testing.assert_array_equal(a[sid].tracker_id, b[sid].tracker_id)
            assert b[sid].data["global_id"].dtype == np.int64
            seen.append((sid, int(b[sid].tracker_id[0]), int(b[sid].data["global_id"][0])))
    assert seen[0] == ("cam0", 1, -1) and seen[1] == ("cam0", 1, 1)
    assert {g for sid, _, g in seen[7:] if sid == "cam1"} == {1}  # the same person in the other camera
    assert MultiStreamTracker(global_ids=True).identities.settings == IdentitySettings()
    with pytest.raises(TypeError, match="global_ids"):
        MultiStreamTracker(global_ids="yes")


def test_deepsort_tracker_route_matches_multistream() -> None:
    """registry.update(stream, tracker, result) gives a DeepSORTTracker user the same ids."""
    multi = MultiStreamTracker(minimum_consecutive_frames=1, global_ids=IdentityRegistry(min_frames=2))
    trackers = {s: DeepSORTTracker(minimum_consecutive_frames=1) for s in ("cam0", "cam1")}
    registry = IdentityRegistry(min_frames=2)
    for _, dets in scene():
        want = multi.update(dets)
        for sid, d in dets.items():
            got = registry.update(sid, trackers[sid], trackers[sid].update(d))
            np.testing.assert_array_equal(got.data["global_id"], want[sid].data["global_id"])
    assert registry.links() == multi.identities.links()


def test_tracker_embeddings_feed_the_registry_when_the_input_has_none() -> None:
    """Without data["embeddings"] the tracker's own smoothed embedding is used (EMA and gallery mode)."""
    for mode in ("ema", "gallery"):
        tracker = DeepSORTTracker(minimum_consecutive_frames=1, appearance_mode=mode)
        reg = IdentityRegistry(min_frames=1)
        for f in range(3):
            dets = sv.Detections(xyxy=np.array([[10.0 + f, 20.0, 50.0 + f, 120.0]]), confidence=np.array([0.9]),
                                 data={"embeddings": np.array([[3.0, 4.0]])})
            result = tracker.update(dets)
            del result.data["embeddings"]
            assert reg.update("cam", tracker, result).data["global_id"].tolist() == [1]
        np.testing.assert_allclose(tracker.track_embeddings([1]), [[0.6, 0.8]], rtol=1e-6)
    motion = DeepSORTTracker(minimum_consecutive_frames=1)
    result = motion.update(sv.Detections(xyxy=np.array([[10.0, 20.0, 50.0, 120.0]]), confidence=np.array([0.9])))
    assert IdentityRegistry(min_frames=1).update("cam", motion, result).data["global_id"].tolist() == [-1]


def test_a_hidden_track_that_comes_back_takes_its_identity_back() -> None:
    """A link made while the first track was hidden is undone when both are seen at once."""
    same = IdentityRegistry(min_frames=2)
    feed(same, "cam", 1, E[0], [0.0, 0.1])
    assert feed(same, "cam", 2, E[0], [1.0, 1.1]) == [-1, 1]  # track 1 hidden: track 2 may be its person
    assert same.observe("cam", [1, 2], [E[0], E[0]], time=1.2).tolist() == [1, 2]  # both seen: the later leaves
    cross = IdentityRegistry(min_frames=2)
    feed(cross, "cam0", 1, E[0], [0.0, 0.1])
    assert feed(cross, "cam1", 2, E[0], [1.0, 1.1]) == [-1, 1]
    assert feed(cross, "cam0", 1, E[0], [1.2]) == [1]  # seen again in cam0: it cannot be in cam1 too
    assert feed(cross, "cam1", 2, E[0], [1.3]) == [2]


def _camera_folder(root, name: str, frames: range, total: int = 8) -> None:
    """A MOT sequence folder: a grey street, one striped person in ``frames`` (det.txt matches)."""
    import cv2

    (root / name / "img1").mkdir(parents=True)
    (root / name / "det").mkdir()
    (root / name / "seqinfo.ini").write_text(
        f"[Sequence]\nname={name}\nimDir=img1\nframeRate=10\nseqLength={total}\nimWidth=320\nimHeight=240\n"
        "imExt=.jpg\n")
    rows = []
    for f in range(1, total + 1):
        image = np.full((240, 320, 3), 90, np.uint8)
        if f in frames:
            x = 40 + 10 * f
            image[60:180, x:x + 50] = (40, 40, 200)
            image[60:180:12, x:x + 50] = (230, 230, 230)
            rows.append(f"{f},-1,{x},60,50,120,0.9,-1,-1,-1\n")
        cv2.imwrite(str(root / name / "img1" / f"{f:06d}.jpg"), image)
    (root / name / "det" / "det.txt").write_text("".join(rows))


def test_cli_global_ids_writes_global_mot_files_and_the_links_table(tmp_path) -> None:
    """The person leaves camera A and appears in camera B: one global id in both files."""
    import csv

    from deepsort_edge.cli.__main__ import main
    from deepsort_edge.io.mot import read_mot

    _camera_folder(tmp_path / "in", "camA", range(1, 5))
    _camera_folder(tmp_path / "in", "camB", range(5, 9))
    out = tmp_path / "out"
    assert main(["track", str(tmp_path / "in"), "-o", str(out), "--global-ids", "--no-progress", "-q",
                 "--minimum-consecutive-frames", "1"]) == 0
    a, b = read_mot(out / "camA.txt"), read_mot(out / "camB.txt")
    assert a.frames.tolist() == [1, 2, 3, 4] and b.frames.tolist() == [5, 6, 7, 8]
    assert set(a.ids.tolist()) == set(b.ids.tolist()) == {1}
    with (out / "links.csv").open(newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [(r["stream"], r["track_id"], r["global_id"], r["first_frame"], r["last_frame"]) for r in table] == [
        ("camA", "1", "1", "1", "4"), ("camB", "1", "1", "5", "8")]


def test_distances_are_the_nearest_of_prototype_and_samples() -> None:
    """The compiled bank scan against plain numpy on the saved banks (prototype + samples per identity)."""
    reg = IdentityRegistry(min_frames=1, samples=3, link_threshold=0.0)
    for _, tracks, emb, t in calls(0, 120):
        reg.observe("all", tracks, emb, time=t)
    query = np.random.default_rng(5).normal(size=(7, 16))
    query /= np.linalg.norm(query, axis=1, keepdims=True)
    gids, got = reg.distances(query)
    arrays = reg.state_dict()["arrays"]
    assert gids.tolist() == arrays["i_gid"].tolist() and len(gids) > 3
    dots = np.einsum("rd,gsd->rgs", query, arrays["i_bank"].astype(np.float64))
    want = 1.0 - np.where(arrays["i_valid"][None], dots, -np.inf).max(axis=2)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert (arrays["i_valid"].sum(axis=1) > 1).any()  # samples were compared, not only prototypes


def test_load_rejects_malformed_meta() -> None:
    state = IdentityRegistry().state_dict()
    for key, value in (("topology", [["a"]]), ("streams", "cam"), ("settings", {"min_frames": "3"})):
        bad = {"meta": {**state["meta"], key: value}, "arrays": state["arrays"]}
        with pytest.raises(ValueError):
            IdentityRegistry().load_state_dict(bad)


def test_cli_global_ids_needs_frames(tmp_path, capsys) -> None:
    from deepsort_edge.cli.__main__ import main

    (tmp_path / "det.txt").write_text("1,-1,10,10,20,40,0.9,-1,-1,-1\n")
    assert main(["track", str(tmp_path / "det.txt"), "-o", str(tmp_path / "out"), "--global-ids", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("deepsort-edge track: error:") and "--global-ids needs frames" in err[0]


def _fail_on_call(monkeypatch, n: int) -> None:
    """``DeepSORTTracker.update_arrays`` raises on its ``n``-th call: a run that breaks part-way."""
    original, calls = DeepSORTTracker.update_arrays, []

    def breaking(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise RuntimeError("the input broke mid-run")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DeepSORTTracker, "update_arrays", breaking)


def test_cli_global_ids_leaves_no_partial_results_when_a_run_fails(tmp_path, capsys, monkeypatch) -> None:
    """A failure after some rows were written: no MOT file, no temporary file, no links table."""
    from deepsort_edge.cli.__main__ import main

    _camera_folder(tmp_path / "in", "camA", range(1, 5))
    _camera_folder(tmp_path / "in", "camB", range(5, 9))
    out = tmp_path / "out"
    _fail_on_call(monkeypatch, 9)  # two cameras stepped together: frame 5 of camA
    assert main(["track", str(tmp_path / "in"), "-o", str(out), "--global-ids", "--no-progress", "-q",
                 "--minimum-consecutive-frames", "1"]) == 1
    assert "the input broke mid-run" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == []


def test_one_frame_of_new_tracks_is_decided_as_the_brute_force_optimum() -> None:
    """Random small cases: the tracks a frame brings are linked as the best partial assignment found by
    enumerating every one (a link costs its distance, leaving a track or an identity out costs half
    the bound each), and the tracks left out get new ids in row order."""
    import itertools

    rng = np.random.default_rng(11)
    limit = 0.5
    decided = linked = 0
    for _ in range(60):
        n_ids, n_new = int(rng.integers(1, 5)), int(rng.integers(1, 4))
        looks = rng.normal(size=(n_ids, 6))
        reg = IdentityRegistry(min_frames=1, samples=0, link_threshold=limit)
        reg.observe("cam0", np.arange(1, n_ids + 1), looks, time=0.0)  # identities 1..n_ids
        new = looks[rng.integers(0, n_ids, n_new)] + rng.normal(scale=0.6, size=(n_new, 6))
        got = reg.observe("cam1", np.arange(1, n_new + 1), new, time=5.0).tolist()
        unit_new = new / np.linalg.norm(new, axis=1, keepdims=True)
        unit_old = looks / np.linalg.norm(looks, axis=1, keepdims=True)
        cost = 1.0 - unit_new @ unit_old.T
        best, best_pairs = (n_new + n_ids) * limit / 2, ()
        for k in range(1, min(n_new, n_ids) + 1):
            for rows in itertools.combinations(range(n_new), k):
                for cols in itertools.permutations(range(n_ids), k):
                    pairs = cost[list(rows), list(cols)]
                    total = pairs.sum() + (n_new + n_ids - 2 * k) * limit / 2
                    if (pairs <= limit).all() and total < best - 1e-9:
                        best, best_pairs = total, tuple(zip(rows, cols))
        want, fresh = [0] * n_new, n_ids + 1
        for r, c in best_pairs:
            want[r] = c + 1
        for r in range(n_new):
            if not want[r]:
                want[r], fresh = fresh, fresh + 1
        assert got == want
        decided += n_new
        linked += len(best_pairs)
    assert 0 < linked < decided  # both outcomes were exercised
