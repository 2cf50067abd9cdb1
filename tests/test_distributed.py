"""RayMultiStreamTracker on a local Ray (num_cpus=2): same ids as MultiStreamTracker, survives actor deaths."""

from __future__ import annotations

import time

import numpy as np
import pytest
import supervision as sv

from deepsort_edge import MultiStreamTracker, StreamError
from tests.conftest import REPO_ROOT, require_loopback_only_network
from tests.test_multistream import SETTINGS, GridExtractor, embedding_stream, rendered_stream

ray = pytest.importorskip("ray", reason='the ray extra is not installed (pip install ".[cpu,ray]")')

from deepsort_edge.streams.distributed import RayMultiStreamTracker, stable_worker_index  # noqa: E402

pytestmark = pytest.mark.slow  # starting Ray and its actors takes seconds on 2 cores

FRAMES = 14


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray for this module; workers import this checkout (and tests.*)."""
    require_loopback_only_network()
    if ray.is_initialized():
        ray.shutdown()
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(REPO_ROOT)}},
    )
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def tracker(local_ray):
    """Two tracker actors and one embedder actor, shared by the tests below (each uses its own streams)."""
    multi = RayMultiStreamTracker(GridExtractor(), num_workers=2, snapshot_every=3, num_cpus=0.5, **SETTINGS)
    yield multi
    multi.close()
    assert ray.is_initialized()  # it joined the module's Ray, so it leaves it running


def _streams(prefix: str, seeds: list[int]) -> dict[str, list]:
    return {f"{prefix}{i}": rendered_stream(seed, FRAMES) for i, seed in enumerate(seeds)}


def _frame(cams: dict[str, list], t: int) -> tuple[dict, dict]:
    return {s: cams[s][t][0] for s in cams}, {s: cams[s][t][1] for s in cams}


def _kill(actor) -> None:
    """Kill ``actor`` and return once it is dead: ``ray.kill`` only sends the request, and on a busy
    machine a call made right after it may still run on the living actor."""
    ray.kill(actor)
    for _ in range(600):
        try:
            ray.get(actor.ready.remote(), timeout=30)
        except ray.exceptions.RayActorError:
            return
        time.sleep(0.1)
    raise AssertionError("the actor outlived ray.kill by a minute")


def _assert_same(got: dict, want: dict, where: str) -> None:
    assert list(got) == list(want), where
    for sid in want:
        np.testing.assert_array_equal(got[sid].tracker_id, want[sid].tracker_id, err_msg=f"{sid} {where}")


def test_stable_placement() -> None:
    assert [stable_worker_index(f"cam{i}", 2) for i in range(8)] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert stable_worker_index("cam5", 4) == 3  # CRC-32, the same in every process and run


def test_ids_equal_multistream_and_one_embedder_batch(tracker: RayMultiStreamTracker) -> None:
    cams = _streams("cam", [20, 21, 22, 23, 24, 25])  # cam0-3 on worker 0, cam4-5 on worker 1
    given = embedding_stream(26, FRAMES)
    local = MultiStreamTracker(GridExtractor(), **SETTINGS)
    crops_before = sum(tracker.stats()["embedder_crops"])
    crops = 0
    for t in range(FRAMES):
        dets, images = _frame(cams, t)
        dets["given"] = given[t]
        crops += sum(len(dets[s]) for s in images)
        _assert_same(tracker.update(dets, images), local.update(dets, images), f"frame {t}")
    assert sorted(set(tracker.stats()["streams_per_worker"])) != [0]
    assert {tracker.worker_of(s) for s in cams} == {0, 1}
    assert sum(tracker.stats()["embedder_crops"]) - crops_before == crops
    for sid in [*cams, "given"]:
        assert tracker.state_dict(sid)["frame_count"] == FRAMES


def test_killed_tracker_actor_is_restored_without_losing_frames(tracker: RayMultiStreamTracker) -> None:
    cams = _streams("kill", [30, 31, 32])
    local = MultiStreamTracker(GridExtractor(), **SETTINGS)
    victim = tracker.worker_of("kill1")
    restarts = tracker.restarts
    for t in range(FRAMES):
        if t in (5, 11):  # 5: two frames after a snapshot (snapshot_every=3); 11: again
            _kill(tracker.workers[victim])
        dets, images = _frame(cams, t)
        _assert_same(tracker.update(dets, images), local.update(dets, images), f"frame {t}")
    assert tracker.restarts == restarts + 2
    assert tracker.state_dict("kill1")["frame_count"] == FRAMES


def test_killed_embedder_is_replaced(tracker: RayMultiStreamTracker) -> None:
    cams = _streams("emb", [40, 41])
    local = MultiStreamTracker(GridExtractor(), **SETTINGS)
    for t in range(6):
        if t == 3:
            _kill(tracker.embedders[0])
        dets, images = _frame(cams, t)
        _assert_same(tracker.update(dets, images), local.update(dets, images), f"frame {t}")


def test_stream_moves_between_actors_through_its_state(tracker: RayMultiStreamTracker) -> None:
    cams = _streams("move", [50])
    local = MultiStreamTracker(GridExtractor(), **SETTINGS)
    for t in range(FRAMES):
        if t == 6:
            home = tracker.worker_of("move0")
            tracker.move("move0", 1 - home)
            assert tracker.worker_of("move0") == 1 - home
        dets, images = _frame(cams, t)
        _assert_same(tracker.update(dets, images), local.update(dets, images), f"frame {t}")
    with pytest.raises(ValueError, match="worker"):
        tracker.move("move0", 5)


def test_bad_input_is_rejected_for_that_stream_only(tracker: RayMultiStreamTracker) -> None:
    cams = _streams("bad", [60, 61])
    local = MultiStreamTracker(GridExtractor(), **SETTINGS)
    for t in range(4):
        dets, images = _frame(cams, t)
        _assert_same(tracker.update(dets, images), local.update(dets, images), f"frame {t}")
    before = tracker.state_dict("bad1")
    dets, images = _frame(cams, 4)
    images["bad1"] = images["bad1"][:, :, :2]  # not (H, W, 3)
    with pytest.raises(StreamError) as info:
        tracker.update(dets, images)
    assert set(info.value.errors) == {"bad1"} and "'bad1'" in str(info.value) and "(H, W, 3)" in str(info.value)
    ref = local.update({"bad0": dets["bad0"]}, {"bad0": images["bad0"]})
    _assert_same(info.value.results, ref, "rejected frame")
    after = tracker.state_dict("bad1")
    assert after["frame_count"] == before["frame_count"] == 4
    np.testing.assert_array_equal(after["tracks"]["mean"], before["tracks"]["mean"])
    with pytest.raises(StreamError, match="'fresh'"):  # a rejected first frame creates no stream
        tracker.update({"fresh": sv.Detections(xyxy=np.array([[0.0, 0.0, 9.0, 9.0]]))})
    assert "fresh" not in tracker.streams


def test_state_reset_and_remove(tracker: RayMultiStreamTracker) -> None:
    cams = _streams("st", [70])
    local = MultiStreamTracker(GridExtractor(), **SETTINGS)
    for t in range(8):
        dets, images = _frame(cams, t)
        tracker.update(dets, images)
        local.update(dets, images)
    tracker.load_state_dict("st-copy", local.state_dict("st0"))  # a state from elsewhere
    for t in range(8, FRAMES):
        dets, images = _frame(cams, t)
        got = tracker.update({"st-copy": dets["st0"]}, {"st-copy": images["st0"]})
        np.testing.assert_array_equal(got["st-copy"].tracker_id, local.update(dets, images)["st0"].tracker_id)
    tracker.reset("st0")
    assert tracker.state_dict("st0")["frame_count"] == 0
    tracker.remove("st0")
    assert "st0" not in tracker.streams and "st-copy" in tracker.streams
    with pytest.raises(KeyError, match="'st0'"):
        tracker.state_dict("st0")


def test_motion_only_without_embedders(local_ray) -> None:
    with RayMultiStreamTracker(num_workers=1, num_cpus=0.5, minimum_consecutive_frames=1) as multi:
        local = MultiStreamTracker(minimum_consecutive_frames=1)
        given = {"g0": embedding_stream(80, 6), "g1": embedding_stream(81, 6)}
        for t in range(6):
            dets = {s: given[s][t] for s in given}
            _assert_same(multi.update(dets), local.update(dets), f"frame {t}")
        assert multi.embedders == () and multi.stats()["embedder_busy_s"] == []
        assert repr(multi).startswith("RayMultiStreamTracker(streams=2, workers=1, embedders=0")


HOST = """
import sys, numpy as np, ray, supervision as sv
from deepsort_edge.streams.distributed import RayMultiStreamTracker
multi = RayMultiStreamTracker(num_workers=1, num_cpus=0.25, minimum_consecutive_frames=1)
assert multi._owns_ray, "no Ray was running, so it must start one"
dets = sv.Detections(xyxy=np.array([[10.0, 20.0, 50.0, 120.0]]), confidence=np.array([0.9]))
print("ids", multi.update({"a": dets})["a"].tracker_id.tolist(), flush=True)
print("address", ray.get_runtime_context().gcs_address, flush=True)
sys.stdin.readline()
multi.close()
print("closed", ray.is_initialized(), flush=True)
"""

GUEST = """
import sys, numpy as np, ray, supervision as sv
from deepsort_edge.streams.distributed import RayMultiStreamTracker
with RayMultiStreamTracker(address=sys.argv[1], num_workers=1, num_cpus=0.25, minimum_consecutive_frames=1) as multi:
    dets = sv.Detections(xyxy=np.array([[10.0, 20.0, 50.0, 120.0]]), confidence=np.array([0.9]))
    ids = [multi.update({"b": dets})["b"].tracker_id.tolist() for _ in range(2)]
    nodes = len(ray.nodes())
print("guest", ids, nodes, ray.is_initialized(), flush=True)
"""


def test_starts_local_ray_or_joins_a_cluster_by_address(tmp_path) -> None:
    """One process starts its own Ray (no address); a second joins that cluster with address=."""
    require_loopback_only_network()
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    host = subprocess.Popen([sys.executable, "-c", HOST], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        assert host.stdout.readline().split() == ["ids", "[1]"]
        address = host.stdout.readline().split()[1]
        guest = subprocess.run([sys.executable, "-c", GUEST, address], capture_output=True, text=True,
                               env=env, timeout=120)
        assert guest.stdout.strip() == "guest [[1], [1]] 1 False", guest.stderr[-2000:]
        host.stdin.write("\n")
        host.stdin.flush()
        assert host.stdout.readline().split() == ["closed", "False"]  # it stopped the Ray it started
    finally:
        host.kill()
        host.wait()


def test_default_placement_fits_every_actor_on_one_node() -> None:
    from deepsort_edge.streams.distributed import default_num_cpus

    assert default_num_cpus([1.0, 1.0], 3) == 0.3333  # two 1-CPU nodes: any one hosts all three
    assert default_num_cpus([0.0, 8.0, 16.0], 4) == 1.0  # a CPU-less head does not count
    assert default_num_cpus([2.0], 3) * 3 <= 2.0


def test_nothing_placeable_is_a_timeout_not_a_hang(local_ray) -> None:
    with pytest.raises(TimeoutError, match=r"waited 5 s \(timeout_s\) for 1 actors of 64 CPU each"):
        RayMultiStreamTracker(num_workers=1, num_cpus=64, timeout_s=5, minimum_consecutive_frames=1)


def test_a_retry_after_a_partial_update_applies_no_frame_twice(local_ray) -> None:
    """Worker 0 dies and cannot be placed again: update times out after streams on worker 1 applied the frame.

    Calling update again with the same frame (once a node has room) completes it: the streams that
    applied it return their result without applying it again; the others apply it once.
    """
    given = {f"cam{i}": embedding_stream(90 + i, 8) for i in range(8)}  # cam0-3 on worker 0, cam4-7 on 1
    local = MultiStreamTracker(**SETTINGS)
    with RayMultiStreamTracker(num_workers=2, num_cpus=0.1, snapshot_every=3, timeout_s=120, **SETTINGS) as multi:
        for t in range(8):
            dets = {s: given[s][t] for s in given}
            want = local.update(dets)
            if t == 5:
                _kill(multi.workers[0])
                multi._worker_options = {**multi._worker_options, "num_cpus": 64}  # no node has room now
                multi.timeout_s = 5
                with pytest.raises(TimeoutError, match="tracker actor 0 to be restored"):
                    multi.update(dets)
                multi._worker_options = {**multi._worker_options, "num_cpus": 0.1}
                multi.timeout_s = 120
            _assert_same(multi.update(dets), want, f"frame {t}")
        assert {multi.state_dict(s)["frame_count"] for s in given} == {8}
        state = multi.state_dict("cam4")
        multi.load_state_dict("copy", state)
        state["frame_count"] = -1  # the caller's dict, changed afterwards
        _kill(multi.workers[multi.worker_of("copy")])
        assert multi.state_dict("copy")["frame_count"] == 8  # a dead actor is restored from a copy
    with pytest.raises(RuntimeError, match="closed"):
        multi.update({s: given[s][0] for s in given})
    with pytest.raises(RuntimeError, match="closed"):
        multi.state_dict("cam0")


def test_global_ids_on_ray_match_in_process(local_ray) -> None:
    """The registry as its own actor gives the ids MultiStreamTracker gives in-process."""
    from deepsort_edge.streams.identities import IdentityRegistry
    from tests.test_identities import scene

    local = MultiStreamTracker(minimum_consecutive_frames=1, global_ids=IdentityRegistry(min_frames=2))
    with RayMultiStreamTracker(num_workers=2, num_cpus=0.1, minimum_consecutive_frames=1,
                               global_ids=IdentityRegistry(min_frames=2)) as remote:
        for f, dets in scene():
            clock = {s: f / 10 for s in dets}
            want, got = local.update(dets, timestamps=clock), remote.update(dets, timestamps=clock)
            for sid in dets:
                np.testing.assert_array_equal(got[sid].tracker_id, want[sid].tracker_id)
                np.testing.assert_array_equal(got[sid].data["global_id"], want[sid].data["global_id"])
        state = remote.identity_state_dict()
    resumed = IdentityRegistry()
    resumed.load_state_dict(state)
    assert resumed.links() == local.identities.links()
    assert [x["global_id"] for x in resumed.links()] == [1, 1]  # one person, two cameras


def _people_scene(frames: int = 24):
    """Three people with fixed looks, seen by two cameras in turn (6 frames each); person 2 is away for
    frames 6-17 and comes back in cam1."""
    looks = np.eye(6)[:3] + 0.1
    for f in range(frames):
        cam = "cam0" if (f // 6) % 2 == 0 else "cam1"
        here = [p for p in range(3) if not (p == 2 and 6 <= f < 18)]
        boxes = np.array([[10.0 + 60 * p + 2 * (f % 6), 20.0, 50.0 + 60 * p + 2 * (f % 6), 120.0] for p in here])
        yield f, {cam: sv.Detections(xyxy=boxes, confidence=np.full(len(here), 0.9),
                                     data={"embeddings": looks[here]})}


def test_a_killed_registry_actor_is_restored_with_the_same_global_ids(local_ray) -> None:
    """Snapshot + replay: killed two frames after a snapshot and again later, the ids are those of an
    in-process registry that never died; so is the state it hands back."""
    from deepsort_edge.streams.identities import IdentityRegistry

    local = MultiStreamTracker(minimum_consecutive_frames=1, global_ids=IdentityRegistry(min_frames=2))
    with RayMultiStreamTracker(num_workers=1, num_cpus=0.1, snapshot_every=3, minimum_consecutive_frames=1,
                               global_ids=IdentityRegistry(min_frames=2)) as remote:
        for f, dets in _people_scene():
            if f in (5, 16):  # 5: two batches after the snapshot at 3; 16: after 15
                _kill(remote._identities.handle)
            clock = {s: f / 10 for s in dets}
            want, got = local.update(dets, timestamps=clock), remote.update(dets, timestamps=clock)
            for sid in dets:
                np.testing.assert_array_equal(got[sid].data["global_id"], want[sid].data["global_id"],
                                              err_msg=f"frame {f}")
        assert remote.stats()["identity_restarts"] == 2
        state = remote.identity_state_dict()
    resumed = IdentityRegistry()
    resumed.load_state_dict(state)
    assert resumed.links() == local.identities.links()
    # Person 2 comes back in cam1 with its id; cam1's tracks 1 and 2, alive through the frames cam0 saw
    # those people, were taken out of their identities then (re-assigned: new ids 4 and 5).
    assert [(x["stream"], x["track_id"], x["global_id"]) for x in resumed.links()] == [
        ("cam0", 1, 1), ("cam0", 2, 2), ("cam0", 3, 3), ("cam1", 1, 4), ("cam1", 2, 5), ("cam1", 3, 3)]
