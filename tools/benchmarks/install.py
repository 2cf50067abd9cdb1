"""Installed size of each install route, measured in fresh virtual environments.

    python tools/bench.py install --json docs/bench/install.json --docs

For each route this makes a new venv, asks pip what it would install
(``pip install --dry-run --report``: the packages, the download size of their
files, how many ``nvidia-*`` CUDA wheels), then installs it for real and
measures the venv's growth on disk (apparent sizes of the venv minus an empty
one). pip's output of each real install is kept (``--logs``), and every line
of it naming a CUDA wheel (``nvidia-*``, a ``+cu`` build) is stored, so "no
CUDA wheels" is read from what pip did, not only from what it planned. Routes
marked dry-run (the CUDA torch, about 3 GB) and ``--dry-run-only`` install
nothing. The package is built once (``pip wheel``; ``--wheel`` reuses one).
``--docs`` renders the results into README.md's ``install-sizes`` block.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
import urllib.request
import venv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from .common import REPO
from .report import md_table, publish, run_host

DOCS_FILE, DOCS_BLOCK = "README.md", "install-sizes"
#: A line of pip's output that names a CUDA wheel.
CUDA_LINE = re.compile(r"\bnvidia[-_]\w|\+cu\d", re.I)


@dataclass(frozen=True)
class Route:
    """One way to install: pip steps (``{wheel}`` is the built wheel), how README names it, dry run only."""

    label: str
    steps: tuple[tuple[str, ...], ...]
    dry_run: bool = False


ROUTES: dict[str, Route] = {
    "base": Route("`pip install .` (motion only)", (("{wheel}",),)),
    "cpu": Route('`pip install ".[cpu]"`', (("{wheel}[cpu]",),)),
    "cpu,eval": Route('`pip install ".[cpu,eval]"` (the demo command)', (("{wheel}[cpu,eval]",),)),
    "cpu,test": Route('`pip install ".[cpu,test]"` (the test command)', (("{wheel}[cpu,test]",),)),
    "export-cpu-torch": Route(
        "the export tests' route: CPU torch and torchvision from PyTorch's index, then "
        '`pip install ".[cpu,export,test]"`',
        (("torch", "torchvision", "--index-url", "https://download.pytorch.org/whl/cpu"),
         ("{wheel}[cpu,export,test]",))),
    "export-cuda-torch": Route(
        '`pip install ".[cpu,export,test]"` alone (the test command before: CUDA torch from the package index)',
        (("{wheel}[cpu,export,test]",),), dry_run=True),
}


def build_wheel(folder: Path, compiled: bool = True) -> Path:
    """Build this checkout's wheel into ``folder`` (``pip wheel --no-deps``, as a user's ``pip install .`` does).

    ``compiled=False`` builds the pure-Python wheel (``DEEPSORT_EDGE_AOT=0``): same
    dependencies, installable on any platform, for resolving another platform's routes.
    """
    env = {**os.environ, **({} if compiled else {"DEEPSORT_EDGE_AOT": "0"})}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(REPO), "-w", str(folder)],
                   check=True, env=env)
    return next(folder.glob("deepsort_edge-*.whl"))


def du(path: Path) -> int:
    """Bytes on disk under ``path`` (apparent sizes, as ``du -sb``; links not followed)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            p = Path(root, name)
            if not p.is_symlink():
                total += p.stat().st_size
    return total


def file_size(url: str) -> int | None:
    """Size of a wheel or sdist pip would download (local file or HTTP HEAD)."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        path = Path(unquote(parsed.path))
        return path.stat().st_size if path.exists() else None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=30) as response:
            length = response.headers.get("Content-Length")
            return int(length) if length else None
    except OSError:
        return None


def measure(name: str, wheel: Path, dry_run_only: bool, workdir: Path, logs: Path) -> dict:
    """One route in a fresh venv under ``workdir``: packages, download, installed size, CUDA lines of pip's log."""
    route = ROUTES[name]
    target = workdir / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(target)
    pip = target / "bin" / "pip"
    empty = du(target)
    install = not (dry_run_only or route.dry_run)
    packages, download, unknown, cuda_lines = {}, 0, [], []
    log = logs / f"{name}.log"
    for step in route.steps:
        args = [a.replace("{wheel}", str(wheel)) for a in step]
        report = workdir / "report.json"
        # Resolve this step on top of the earlier ones (in a dry run they are not installed,
        # so a later step's sizes may count a package twice).
        dry = subprocess.run([str(pip), "install", "-q", "--dry-run", "--report", str(report), *args],
                             capture_output=True, text=True)
        if dry.returncode:
            return {"route": name, "error": dry.stderr.strip().splitlines()[-1:]}
        for item in json.loads(report.read_text())["install"]:
            package = item["metadata"]["name"].lower()
            packages[package] = item["metadata"]["version"]
            size = file_size(item["download_info"]["url"])
            if size is None:
                unknown.append(package)
            else:
                download += size
        if install:
            done = subprocess.run([str(pip), "install", *args], capture_output=True, text=True)
            with log.open("a", encoding="utf-8") as f:
                f.write(f"$ pip install {shlex.join(step)}\n{done.stdout}{done.stderr}")
            cuda_lines += [line for line in (done.stdout + done.stderr).splitlines() if CUDA_LINE.search(line)]
            if done.returncode:
                return {"route": name, "error": done.stderr.strip().splitlines()[-3:]}
    result = {
        "route": name,
        "steps": [shlex.join(s) for s in route.steps],
        "packages": len(packages),
        "nvidia_wheels": sorted(n for n in packages if n.startswith("nvidia-")),
        "torch": packages.get("torch"),
        "download_mb": round(download / 1e6, 1),
        "download_unknown": unknown,
        "installed": install,
    }
    if install:
        result["installed_mb"] = round((du(target) - empty) / 1e6, 1)
        result["pip_log_cuda_lines"] = cuda_lines
    return result


def render(data: dict) -> str:
    """README's size table: one row per route, and the command, machine and pip that measured it."""
    rows = []
    for r in data["routes"]:
        label = ROUTES[r["route"]].label
        if "error" in r:
            rows.append([label, f"error: {' '.join(r['error'])}", "", "", ""])
            continue
        installed = f"{r['installed_mb']:.0f}" if r["installed"] else "(dry run)"
        rows.append([label, str(r["packages"]), f"{r['download_mb']:.0f}", installed, str(len(r["nvidia_wheels"]))])
    host = data["host"]
    checked = [r for r in data["routes"] if r.get("installed")]
    clean = [ROUTES[r["route"]].label for r in checked if not r["pip_log_cuda_lines"]]
    return "\n".join([
        md_table(["route", "packages", "download MB", "installed MB", "CUDA wheels"], rows), "",
        f"Measured by `{data['command']}` on {host['machine']} ({host['cpus']} CPUs), CPython {host['python']}, "
        f"{data['pip']} in each fresh venv, {data['date']}, in {data['elapsed_s']:.0f} s. Installed routes "
        f"whose pip output names no CUDA wheel (`nvidia-*`, `+cu`): {len(clean)} of {len(checked)}.", ""])


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="bench.py install", description=__doc__.split("\n\n")[0])
    parser.add_argument("--route", action="append", choices=list(ROUTES), help="routes (default: all)")
    parser.add_argument("--wheel", type=Path, help="a built deepsort-edge wheel (default: build one now)")
    parser.add_argument("--dry-run-only", action="store_true", help="resolve and size downloads, install nothing")
    parser.add_argument("--logs", type=Path, help="keep pip's output of each install here (ROUTE.log)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--docs", action="store_true", help=f"rewrite {DOCS_FILE}'s {DOCS_BLOCK} block")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        logs = args.logs or tmp / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        wheel = args.wheel or build_wheel(tmp)
        results = []
        for name in args.route or ROUTES:
            work = tmp / "work"
            work.mkdir(exist_ok=True)
            results.append(measure(name, wheel.resolve(), args.dry_run_only, work, logs))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
        pip = subprocess.run([str(work / "venv" / "bin" / "pip"), "--version"], capture_output=True, text=True)
    data = {"command": shlex.join(["python", "tools/bench.py", "install", *argv]), "host": run_host(),
            "pip": " ".join(pip.stdout.split()[:2]), "date": time.strftime("%Y-%m-%d", time.gmtime()),
            "elapsed_s": time.perf_counter() - started, "routes": results}
    print(render(data))
    publish(data, args.json, args.docs, DOCS_BLOCK, render, DOCS_FILE)
    return 1 if any("error" in r for r in results) else 0
