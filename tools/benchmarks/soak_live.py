"""Memory of a live run that cannot keep up: RSS of ``deepsort-edge track URL --detector`` over a long stream.

Serves an MJPEG stream over HTTP on 127.0.0.1 (frames of the PETS09 video,
JPEG-encoded once and cycled, at ``--rate`` frames per second), runs
``deepsort-edge track http://... --detector MODEL`` on it in a child process
and samples the child's resident memory (``VmRSS``) every second. A detector
slower than the stream makes the pipeline drop frames; memory must stay flat:
the target is an RSS growth of at most ``--max-growth-mb`` from the end of the
first quarter of the run to its end.

Example:
    python tools/bench.py soak-live --detector yolo11n.onnx --frames 10000 --rate 200 --json soak-live.json
"""

from __future__ import annotations

import argparse
import http.server
import json
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .common import PETS09_VIDEO, UsageError, package_env, require_shared_file


def serve(jpegs: list[bytes], frames: int, rate: float) -> tuple[socketserver.TCPServer, str]:
    """An MJPEG server on 127.0.0.1 sending ``frames`` frames at ``rate`` per second; returns it and its URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802  (http.server's name)
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            start = time.perf_counter()
            try:
                for i in range(frames):
                    data = jpegs[i % len(jpegs)]
                    self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(data))
                    self.wfile.write(data + b"\r\n")
                    delay = start + (i + 1) / rate - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                self.wfile.write(b"--frame--\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/live.mjpg"


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        return None
    return None


def main(argv: list[str] | None = None) -> int:
    import cv2

    parser = argparse.ArgumentParser(prog="bench.py soak-live", description=__doc__.split("\n\n")[0])
    parser.add_argument("--detector", required=True, help="hog or an ONNX detector")
    parser.add_argument("--frames", type=int, default=10_000, help="frames the stream sends (default 10,000)")
    parser.add_argument("--rate", type=float, default=200.0, help="frames per second it sends them at (default 200)")
    parser.add_argument("--max-growth-mb", type=float, default=20.0, help="target (default 20 MB)")
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    args = parser.parse_args(argv)
    if not Path("/proc/self/status").is_file():
        raise UsageError("needs Linux (/proc) to read the child's memory")
    video = require_shared_file(PETS09_VIDEO)
    capture = cv2.VideoCapture(str(video))
    jpegs = []
    while len(jpegs) < 50:
        ok, image = capture.read()
        if not ok:
            break
        jpegs.append(cv2.imencode(".jpg", image)[1].tobytes())
    capture.release()
    if not jpegs:
        raise UsageError(f"OpenCV cannot read {video}")
    server, url = serve(jpegs, args.frames, args.rate)
    env = package_env()
    with tempfile.TemporaryDirectory() as tmp:
        summary_path = Path(tmp) / "summary.json"
        child = subprocess.Popen(
            [sys.executable, "-m", "deepsort_edge.cli", "track", url, "--detector", args.detector,
             "-o", str(Path(tmp) / "results.txt"), "--summary", str(summary_path), "--no-progress", "-q"],
            env=env, stderr=subprocess.PIPE, text=True,
        )
        samples = []
        while child.poll() is None:
            value = rss_mb(child.pid)
            if value is not None:
                samples.append(value)
            time.sleep(1.0)
        stderr = child.stderr.read() if child.stderr else ""
        server.shutdown()
        if child.returncode != 0 or not summary_path.is_file():
            print(f"soak_live: the run failed ({child.returncode}): {stderr.strip()[-500:]}", file=sys.stderr)
            return 2
        summary = json.loads(summary_path.read_text())
    quarter = max(1, len(samples) // 4)
    growth = max(samples[-quarter:]) - max(samples[:quarter]) if len(samples) >= 4 else 0.0
    report = {
        "frames_sent": args.frames,
        "rate": args.rate,
        "frames_read": summary["frames_read"],
        "frames_tracked": summary["frames"],
        "dropped_frames": summary["dropped_frames"],
        "peak_buffered_frames": summary["peak_buffered_frames"],
        "rss_samples": len(samples),
        "rss_first_quarter_max_mb": round(max(samples[:quarter]), 1) if samples else None,
        "rss_last_quarter_max_mb": round(max(samples[-quarter:]), 1) if samples else None,
        "rss_growth_mb": round(growth, 1),
        "target": f"RSS growth after the first quarter <= {args.max_growth_mb:g} MB",
        "passed": growth <= args.max_growth_mb,
    }
    print(json.dumps(report, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0 if report["passed"] else 1

