"""Installed size of each install route, measured in fresh virtual environments.

For each route this makes a new venv, asks pip what it would install
(``pip install --dry-run --report``: the packages, the download size of their
files, how many ``nvidia-*`` CUDA wheels), then installs it for real and
measures the venv's growth on disk (``du`` of the venv minus an empty one).
``--dry-run-only`` skips the real installs (big routes: the CUDA torch).
The package is built once (``pip wheel``; ``--wheel`` reuses one).

    python tools/measure_install.py                          # the default routes
    python tools/measure_install.py --route cpu --route test --json sizes.json
    python tools/measure_install.py --route "export (CUDA torch from the index)" --dry-run-only

Routes install ``<wheel>[extras]``, in steps where a route has several: the
export route is the one README gives (the CPU builds of torch and torchvision
from PyTorch's index first; it fails where that index is out of reach).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import venv
from pathlib import Path
from urllib.parse import unquote, urlparse

REPO = Path(__file__).resolve().parents[1]

#: Route -> list of pip install steps; "{wheel}" is the built wheel.
ROUTES: dict[str, list[list[str]]] = {
    "base (motion only)": [["{wheel}"]],
    "cpu": [["{wheel}[cpu]"]],
    "cpu,eval (README demo)": [["{wheel}[cpu,eval]"]],
    "cpu,test (README tests)": [["{wheel}[cpu,test]"]],
    "cpu,export,test on CPU torch (README export tests)": [
        ["torch", "torchvision", "--index-url", "https://download.pytorch.org/whl/cpu"],
        ["{wheel}[cpu,export,test]"],
    ],
    "cpu,export,test (the old test command: CUDA torch from the index)": [["{wheel}[cpu,export,test]"]],
}
DEFAULT_ROUTES = list(ROUTES)[:5]


def du(path: Path) -> int:
    """Bytes on disk under ``path`` (apparent sizes, as ``du -sb``)."""
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


def fresh_venv(where: Path) -> Path:
    venv.EnvBuilder(with_pip=True, clear=True).create(where)
    return where / "bin" / "pip"


def measure(route: str, wheel: Path, dry_run_only: bool, workdir: Path) -> dict:
    target = workdir / "venv"
    pip = fresh_venv(target)
    empty = du(target)
    packages, download, unknown = {}, 0, []
    for step in ROUTES[route]:
        args = [a.replace("{wheel}", str(wheel)) for a in step]
        report = workdir / "report.json"
        # Resolve this step on top of the earlier ones (with --dry-run-only they are not installed,
        # so a later step's sizes may count a package twice).
        dry = subprocess.run([str(pip), "install", "-q", "--dry-run", "--report", str(report), *args],
                             capture_output=True, text=True)
        if dry.returncode:
            return {"route": route, "error": dry.stderr.strip().splitlines()[-1:]}
        for item in json.loads(report.read_text())["install"]:
            name = item["metadata"]["name"].lower()
            packages[name] = item["metadata"]["version"]
            size = file_size(item["download_info"]["url"])
            if size is None:
                unknown.append(name)
            else:
                download += size
        if not dry_run_only:
            done = subprocess.run([str(pip), "install", "-q", *args], capture_output=True, text=True)
            if done.returncode:
                return {"route": route, "error": done.stderr.strip().splitlines()[-3:]}
    result = {
        "route": route,
        "steps": [" ".join(s) for s in ROUTES[route]],
        "packages": len(packages),
        "nvidia_wheels": sorted(n for n in packages if n.startswith("nvidia-")),
        "torch": packages.get("torch"),
        "download_mb": round(download / 1e6, 1),
        "download_unknown": unknown,
    }
    if not dry_run_only:
        result["installed_mb"] = round((du(target) - empty) / 1e6, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--route", action="append", choices=list(ROUTES), help="routes (default: the first five)")
    parser.add_argument("--wheel", type=Path, help="a built deepsort-edge wheel (default: build one now)")
    parser.add_argument("--dry-run-only", action="store_true", help="resolve and size downloads, install nothing")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wheel = args.wheel
        if wheel is None:
            subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(REPO), "-w", str(tmp)],
                           check=True)
            wheel = next(tmp.glob("deepsort_edge-*.whl"))
        results = []
        for route in args.route or DEFAULT_ROUTES:
            work = tmp / "work"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir()
            results.append(measure(route, wheel.resolve(), args.dry_run_only, work))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    print("| route | packages | download MB | installed MB | CUDA wheels | torch |")
    print("|---|---:|---:|---:|---:|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['route']} | error: {' '.join(r['error'])} | | | | |")
            continue
        print(f"| {r['route']} | {r['packages']} | {r['download_mb']} | {r.get('installed_mb', '-')} | "
              f"{len(r['nvidia_wheels'])} | {r['torch'] or '-'} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
