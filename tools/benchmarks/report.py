"""The one report writer: markdown lines, targets, JSON, and the generated blocks of the docs.

A benchmark prints markdown as it goes (:class:`Report`), checks its targets,
and writes every number as JSON. Numbers quoted in README.md and docs/ are
rendered from such a JSON (committed under ``docs/bench/``) into blocks marked
``<!-- NAME:start -->`` ... ``<!-- NAME:end -->``; a test keeps each block
equal to its rendering, so a number cannot drift from the run that made it.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import REPO


def fmt(x: float | None, digits: int = 2) -> str:
    """``x`` with ``digits`` decimals, ``n/a`` for None or non-finite."""
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:.{digits}f}"


def check(name: str, value: float | None, threshold: float, better: str) -> dict:
    """One target: PASS/FAIL against ``threshold`` (``better`` is ``"higher"`` or ``"lower"``), SKIP without a value."""
    if better not in ("higher", "lower"):
        raise ValueError(f"better must be 'higher' or 'lower', got {better!r}")
    if value is None or not math.isfinite(value):
        status = "SKIP"
    elif better == "higher":
        status = "PASS" if value >= threshold else "FAIL"
    else:
        status = "PASS" if value <= threshold else "FAIL"
    sign = ">=" if better == "higher" else "<="
    return {"target": name, "value": value, "threshold": f"{sign} {threshold}", "status": status}


def json_default(o: object) -> object:
    """JSON for numpy scalars and arrays."""
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


class Report:
    """Markdown lines (printed as they come), the JSON results and the target checks."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.results: dict[str, Any] = {}
        self.targets: list[dict] = []
        self.started = time.perf_counter()

    def emit(self, line: str = "") -> None:
        self.lines.append(line)
        print(line, flush=True)

    def table(self, header: list[str], rows: list[list[str]], align: str | None = None) -> None:
        """Emit a markdown table; ``align`` has one ``l``/``r`` per column (default: first left, rest right)."""
        for line in md_table(header, rows, align).splitlines():
            self.emit(line)
        self.emit()

    def target(self, name: str, value: float | None, threshold: float, better: str) -> None:
        self.targets.append(check(name, value, threshold, better))

    def finish(self, json_path: Path | None, digits: int = 2) -> None:
        """Emit the targets table and the total time; write every number as JSON if asked."""
        self.emit("## Targets")
        self.emit()
        self.table(["target", "value", "threshold", "result"],
                   [[t["target"], fmt(t["value"], digits), t["threshold"], t["status"]] for t in self.targets],
                   "lrrl")
        elapsed = time.perf_counter() - self.started
        self.emit(f"Total time {elapsed:.0f} s.")
        self.results.update(targets=self.targets, elapsed_s=elapsed)
        if json_path:
            write_json(json_path, self.results)

    @property
    def failed(self) -> bool:
        return any(t["status"] == "FAIL" for t in self.targets)


def md_table(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    """A markdown table; ``align`` has one ``l``/``r`` per column (default: first left, rest right)."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = "|" + "|".join("---" if a == "l" else "---:" for a in align) + "|"
    return "\n".join(["| " + " | ".join(header) + " |", rule, *("| " + " | ".join(r) + " |" for r in rows)])


def write_json(path: Path, results: dict) -> None:
    """Write ``results`` as indented JSON (numpy values converted), creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, default=json_default) + "\n", encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)


def _markers(marker: str) -> tuple[str, str]:
    return f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"


def read_block(path: Path, marker: str) -> str | None:
    """The text between ``<!-- marker:start -->`` and ``<!-- marker:end -->`` in ``path`` (None: no markers)."""
    start, end = _markers(marker)
    found = re.search(re.escape(start) + r"\n(.*?)" + re.escape(end), path.read_text(encoding="utf-8"), re.S)
    return found.group(1) if found else None


def replace_block(path: Path, marker: str, text: str) -> bool:
    """Put ``text`` between ``<!-- marker:start -->`` and ``<!-- marker:end -->`` in ``path``.

    Returns False (and says so on stderr) when ``path`` has no such markers.
    ``text`` should end with a newline; one is added otherwise.
    """
    start, end = _markers(marker)
    content = path.read_text(encoding="utf-8")
    if start not in content or end not in content:
        print(f"{path.name} has no {marker} markers; not rewritten", file=sys.stderr)
        return False
    text = text if text.endswith("\n") else text + "\n"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    path.write_text(pattern.sub(lambda _: f"{start}\n{text}{end}", content), encoding="utf-8")
    return True


def publish(data: dict, json_path: Path | None, docs: bool, marker: str, render: Callable[[dict], str],
            file: str = "docs/benchmarks.md") -> None:
    """A section's ``--json`` and ``--docs``: write ``data`` to ``json_path``, re-render block ``marker`` of ``file``.

    The block is rendered from ``data`` as it will be from the JSON later
    (``python tools/bench.py docs``), so the two cannot differ.
    """
    if json_path is not None:
        write_json(json_path, data)
    if docs:
        replace_block(REPO / file, marker, render(data))


def run_host() -> dict[str, Any]:
    """This machine as :func:`generated_by` names it (kept in a section's JSON to render its line later)."""
    return {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version()}


def generated_by(command: str, seconds: float, what: str, values: dict[str, Any],
                 host: dict[str, Any] | None = None) -> str:
    """The closing line of a generated report: command, machine (``host``, default this one), run time, settings."""
    host = host or run_host()
    return (
        f"Generated by `{command}` on {host['machine']} ({host['cpus']} CPUs), "
        f"Python {host['python']}, in {seconds:.0f} s. {what}: "
        f"{', '.join(f'{k}={v!r}' for k, v in values.items())}."
    )
