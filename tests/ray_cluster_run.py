"""A real two-node Ray cluster on loopback, one node killed mid-run (run by tests/test_ray_cluster.py).

Run inside a loopback-only network namespace (``unshare --net``): it starts
a head and a worker node with ``ray start --block`` (each in its own process
group), tracks several streams with :class:`RayMultiStreamTracker`, kills the
worker node's process group by id while frames flow, goes on, and prints one
JSON line with what happened. Every process it started is stopped by its
process group id at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.test_multistream import SETTINGS, embedding_stream  # noqa: E402

FRAMES = 30
KILL_AT = 12
STREAMS = [f"cam{i}" for i in range(6)]
PORT = 6391


def listening() -> list[str]:
    """Local addresses of every listening TCP socket in this namespace."""
    out = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, check=True).stdout
    return [line.split()[3] for line in out.splitlines() if line.strip()]


def start_node(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(["ray", "start", "--block", *args], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def descendants(pid: int) -> list[int]:
    """``pid``'s children, their children, ... (from /proc), found before any of them is killed."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def stop(node: subprocess.Popen) -> list[int]:
    """Kill a node: its `ray start` process and everything it started (raylet, object store, workers)."""
    if node.returncode is not None:
        return []  # stopped and reaped already: its pid may belong to someone else by now
    tree = [node.pid, *descendants(node.pid)]
    for pid in tree:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    node.wait()
    return tree


def long_sequence(root: Path, name: str, frames: int, seed: int) -> None:
    """A detections-only sequence: a few boxes walking, long enough to be running when a node dies."""
    from deepsort_edge.io.mot import MOTData, write_mot

    rng = np.random.default_rng(seed)
    frame = np.repeat(np.arange(1, frames + 1), 3)
    x = 10.0 + (frame % 400) + np.tile([0.0, 150.0, 300.0], frames) + rng.normal(0, 1, frame.size)
    xyxy = np.stack([x, np.full_like(x, 20.0), x + 40.0, np.full_like(x, 120.0)], axis=1)
    (root / name / "det").mkdir(parents=True)
    write_mot(root / name / "det" / "det.txt", MOTData.from_arrays(frame, np.full(frame.size, -1), xyxy))


def batch_run(env: dict[str, str], common: list[str], temp: str) -> dict:
    """``track DIR --ray ADDRESS`` on the cluster, a new worker node killed while its task runs."""
    root = Path(temp) / "batch"
    names = [f"SEQ-{i}" for i in range(4)]
    for i, name in enumerate(names):
        long_sequence(root / "in", name, 40_000, i)
    options = ["--no-progress", "-q", "--minimum-consecutive-frames", "2"]
    cli = [sys.executable, "-m", "deepsort_edge.cli", "track"]
    for name in names:  # the reference: each input alone, no Ray
        subprocess.run([*cli, str(root / "in" / name), "-o", str(root / "ref" / f"{name}.txt"), *options],
                       env=env, check=True)
    node = start_node([f"--address=127.0.0.1:{PORT}", *common], env)
    result: dict = {}
    try:
        time.sleep(10)  # the new node registers
        run = subprocess.Popen([*cli, str(root / "in"), "-o", str(root / "out"), "--ray", f"127.0.0.1:{PORT}",
                                "--workers", "2", "--summary", str(root / "summary.json"), *options],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while run.poll() is None and "killed" not in result:
            if len(list((root / "out").glob(".*.tmp"))) >= 2:  # two tasks running: one per node
                result["killed"] = len(stop(node))
            time.sleep(0.05)
        _, stderr = run.communicate(timeout=600)
        result["exit"] = run.returncode
        result["stderr"] = stderr[-2000:]
        result["identical"] = {n: (root / "out" / f"{n}.txt").is_file() and
                               (root / "out" / f"{n}.txt").read_bytes() == (root / "ref" / f"{n}.txt").read_bytes()
                               for n in names}
        result["out_files"] = sorted(p.name for p in (root / "out").iterdir())
    finally:
        stop(node)
    return result


def main() -> None:
    import ray

    from deepsort_edge import MultiStreamTracker
    from deepsort_edge.streams.distributed import RayMultiStreamTracker

    temp = tempfile.mkdtemp(prefix="dse-ray-", dir="/tmp")  # short: Ray's socket paths have a length limit
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
           "PYTHONPATH": str(REPO), "RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "5"}
    os.environ.update({k: env[k] for k in ("RAY_AUTH_MODE", "RAY_USAGE_STATS_ENABLED")})
    common = ["--node-ip-address=127.0.0.1", f"--temp-dir={temp}", "--disable-usage-stats", "--num-cpus=1"]
    head = start_node(["--head", f"--port={PORT}", "--include-dashboard=false", *common], env)
    worker = None
    report: dict = {}
    try:
        for _ in range(120):  # the head's GCS answers
            if any(a.endswith(f":{PORT}") for a in listening()):
                break
            time.sleep(0.5)
        # The driver joins before the worker node exists: both nodes are 127.0.0.1, and a driver
        # attached to the worker node's raylet would die with it.
        ray.init(address=f"127.0.0.1:{PORT}", log_to_driver=False)
        worker = start_node([f"--address=127.0.0.1:{PORT}", *common], env)
        for _ in range(240):
            if sum(1 for n in ray.nodes() if n["Alive"]) == 2:
                break
            time.sleep(0.5)
        report["nodes"] = sum(1 for n in ray.nodes() if n["Alive"])
        head_id = ray.get_runtime_context().get_node_id()

        streams = {sid: embedding_stream(100 + i, FRAMES) for i, sid in enumerate(STREAMS)}
        local = MultiStreamTracker(**SETTINGS)
        expected = [{s: local.update({s: streams[s][t]})[s].tracker_id.tolist() for s in STREAMS}
                    for t in range(FRAMES)]
        multi = RayMultiStreamTracker(num_workers=2, snapshot_every=5, timeout_s=300, **SETTINGS)
        nodes = ray.get([w.node.remote() for w in multi.workers])
        report["actors_on_worker_node"] = sum(1 for n in nodes if n != head_id)
        got, seconds = [], []
        for t in range(FRAMES):
            if t == KILL_AT:
                report["killed_pids"] = len(stop(worker))  # the whole node: raylet, object store, actors
            start = time.monotonic()
            out = multi.update({s: streams[s][t] for s in STREAMS})
            seconds.append(time.monotonic() - start)
            got.append({s: out[s].tracker_id.tolist() for s in STREAMS})
        report["ids_identical"] = got == expected
        report["frame_counts"] = {s: multi.state_dict(s)["frame_count"] for s in STREAMS}
        report["restarts"] = multi.restarts
        report["slowest_update_s"] = max(seconds)
        report["recovery_update_s"] = seconds[KILL_AT]
        report["actors_after"] = sorted(set(ray.get([w.node.remote() for w in multi.workers])) - {head_id})
        report["listening"] = listening()
        multi.close()
        ray.shutdown()
        report["batch"] = batch_run(env, common, temp)
    except Exception:  # noqa: BLE001  (reported, then the cluster is stopped)
        report["error"] = traceback.format_exc()
    finally:
        # Everything the head started too: GCS, raylet, workers (some outlive their parent).
        for node in (worker, head):
            if node is not None:
                stop(node)
        shutil.rmtree(temp, ignore_errors=True)
    print("REPORT " + json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
