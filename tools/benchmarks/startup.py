"""Start-up: ``tools/measure_start.py`` (fresh processes, import and first frame), with a JSON and a docs block.

    python tools/bench.py startup --runs 3 --jit-runs 1 --json docs/bench/startup.json --docs

Every option but ``--json`` and ``--docs`` goes to ``measure_start.py``; its
rows are stored with the command and the machine, and ``--docs`` renders them
into docs/benchmarks.md's ``startup`` block.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .common import machine_info
from .report import md_table, publish

DOCS_BLOCK = "startup"


def render(data: dict) -> str:
    """docs/benchmarks.md's start-up block: one row per kind of start, ranges over runs."""
    m, rows = data["machine"], data["rows"]

    def span(sel: list[dict], key: str) -> str:
        values = [f"{v:.2f}" if v >= 0.1 else f"{v:.4f}" for v in sorted(r[key] for r in sel)]  # AOT: under 1 ms
        return values[0] if len(values) == 1 else f"{values[0]}-{values[-1]}"

    table = []
    for kind in dict.fromkeys(r["kind"] for r in rows):
        sel = [r for r in rows if r["kind"] == kind]
        compiled = sorted({r["compilations"] for r in sel if "compilations" in r})
        table.append([kind, str(len(sel)), span(sel, "import_s"), span(sel, "first_frame_s"), span(sel, "wall_s"),
                      "/".join(map(str, compiled)) or "0"])
    lines = [f"`{data['command']}` on {m['cpu']} ({m['usable_cpus']} usable CPUs, load average "
             f"{m['load_average']:.1f} at the start), Python {m['python']}, numba {m['numba']}, deepsort-edge "
             f"{m['deepsort_edge']}:", "",
             md_table(["start", "runs", "import s", "first frame s", "process wall s", "Numba compilations"], table),
             ""]
    jit = [r for r in rows if r.get("compile_self_s")]
    if jit:
        lines += [f"JIT with an empty cache: Numba's compile self time {jit[0]['compile_self_s']:.1f} s in all.", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[2:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="bench.py startup", description=__doc__.split("\n\n")[0], add_help=False)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--docs", action="store_true")
    args, rest = parser.parse_known_args(argv)
    import measure_start

    with tempfile.TemporaryDirectory() as tmp:
        rows_path = Path(tmp) / "rows.json"
        status = measure_start.main([*rest, "--json", str(rows_path)])
        if status or not rows_path.is_file():
            return status or 1
        rows = json.loads(rows_path.read_text(encoding="utf-8"))
    data = {"command": ("python tools/bench.py startup " + shlex.join(argv)).strip(), "machine": machine_info(),
            "rows": rows}
    publish(data, args.json, args.docs, DOCS_BLOCK, render)
    return 0
