"""Draw the tracker benchmark's synthetic-scene results as a picture.

    python tools/bench_tracker.py --json bench.json
    python tools/plot_bench.py bench.json -o docs/speed.png

Needs matplotlib (installed with the ``eval`` extra).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bench_json", type=Path, help="the --json output of tools/bench_tracker.py")
    parser.add_argument("-o", "--output", type=Path, default=Path("docs/speed.png"))
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = json.loads(args.bench_json.read_text())
    sizes = sorted(data["synthetic"], key=int)
    series = {
        "deep-sort-realtime (nn_budget=100)": ("dsr", "#888888", "s"),
        "deepsort-edge, gallery (nn_budget=100)": ("gallery", "#1f77b4", "o"),
        "deepsort-edge, EMA": ("ema", "#2ca02c", "^"),
    }
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    for label, (key, color, marker) in series.items():
        x = [data["synthetic"][n][key]["detections_per_frame"] for n in sizes]
        y = [data["synthetic"][n][key]["median_ms"] for n in sizes]
        ax.plot(x, y, marker=marker, color=color, label=label)
    ax.axhline(1000 / 30, color="#d62728", linestyle=":", linewidth=1)
    ax.text(11, 1000 / 30 * 1.15, "one frame at 30 fps", color="#d62728", fontsize=8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("detections per frame (synthetic scene, 512-d embeddings)")
    ax.set_ylabel("median ms per update (one thread)")
    machine = data.get("machine", {})
    ax.set_title(f"Tracker-only update time, {machine.get('cpu', 'CPU')}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
