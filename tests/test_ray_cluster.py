"""RayMultiStreamTracker on a real two-node cluster, one node killed mid-run.

Then ``track DIR --ray ADDRESS`` runs on the same cluster and a worker
node is killed while one of its tasks runs. The cluster (two ``ray start`` processes on this machine) lives in a
loopback-only network namespace (``unshare --net``, then ``ip link set lo
up``): Ray advertises the host's routable address even when told
127.0.0.1, so only a namespace keeps it off the network. The run itself is
``tests/ray_cluster_run.py``; this test checks what it reports.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import subprocess_env

pytest.importorskip("ray", reason='the ray extra is not installed (pip install ".[cpu,ray]")')

pytestmark = pytest.mark.slow  # two Ray nodes, a node death noticed by health checks: minutes on 2 cores

SCRIPT = Path(__file__).with_name("ray_cluster_run.py")
LOOPBACK = ("127.0.0.1:", "[::ffff:127.0.0.1]:", "[::1]:")


def _namespace_works() -> str | None:
    """None when this process may make a loopback-only network namespace, else why not."""
    if shutil.which("unshare") is None or shutil.which("ip") is None or shutil.which("ss") is None:
        return "needs unshare, ip and ss (util-linux, iproute2)"
    probe = subprocess.run(["unshare", "--net", "sh", "-c", "ip link set lo up"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot make a network namespace here (unshare --net needs root): {probe.stderr.strip()}"
    return None


def test_a_killed_node_loses_no_frame_and_applies_none_twice():
    why = _namespace_works()
    if why is not None:
        pytest.skip(why)
    run = subprocess.run(
        ["unshare", "--net", "sh", "-c", f'ip link set lo up && exec "{sys.executable}" "{SCRIPT}"'],
        capture_output=True, text=True, env=subprocess_env(), timeout=900,
    )
    lines = [line for line in run.stdout.splitlines() if line.startswith("REPORT ")]
    assert run.returncode == 0 and lines, run.stderr[-4000:]
    report = json.loads(lines[-1][len("REPORT "):])
    assert "error" not in report, report.get("error")
    assert report["nodes"] == 2
    assert report["actors_on_worker_node"] >= 1, report  # SPREAD placed an actor where the kill lands
    assert report["ids_identical"], report  # every frame's ids equal an undisturbed in-process run
    assert set(report["frame_counts"].values()) == {30}, report  # none lost, none applied twice
    assert report["restarts"] >= 1 and report["actors_after"] == [], report  # restored on the live node
    assert report["recovery_update_s"] < 60, report
    assert all(address.startswith(LOOPBACK) for address in report["listening"]), report["listening"]
    # track DIR --ray on the same cluster, a node killed while one of its tasks runs: the task is
    # retried elsewhere and every results file is complete (byte-identical to a run without Ray).
    batch = report["batch"]
    assert batch["killed"] and batch["exit"] == 0, batch
    assert all(batch["identical"].values()), batch
    assert batch["out_files"] == [f"SEQ-{i}.txt" for i in range(4)], batch  # no partial or temporary file
