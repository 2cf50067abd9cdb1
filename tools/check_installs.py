"""Resolve every install route with pip's own resolver and count the ONNX Runtime and OpenCV builds.

Each ONNX Runtime distribution (onnxruntime, onnxruntime-gpu, -rocm,
-migraphx, ...) installs the same ``onnxruntime`` module, and each OpenCV one
the same ``cv2``: two of either overwrite each other. This builds the wheel,
then runs ``pip install --dry-run --report`` for each route (a set of extras)
on each target platform, in a fresh virtual environment so nothing installed
here counts, and prints which builds each route would install. Nothing is
installed; it needs the package index.

Example:
    python tools/check_installs.py                       # this machine + Linux aarch64
    python tools/check_installs.py --platform linux-armv7l --python-version 3.12
    python tools/check_installs.py --json routes.json

Exit status 1 when a route that resolves does not end with exactly one ONNX
Runtime build (none for the runtime-less base install).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

from benchmarks.install import build_wheel

#: Route name -> extras. "base" is the runtime-less install (motion-only tracking).
ROUTES: dict[str, str] = {
    "base": "",
    "cpu": "cpu",
    "cuda": "cuda",
    "rocm": "rocm",
    "migraphx": "migraphx",
    "cpu+eval (README demo)": "cpu,eval",
    "cpu+test (README tests)": "cpu,test",
    "cpu+export+test (export tests, after the CPU torch)": "cpu,export,test",
    "cuda+export+test": "cuda,export,test",
}
#: Target platforms: None = this machine; else linux-ARCH or one pip --platform tag (binary wheels only).
DEFAULT_PLATFORMS = [None, "linux-aarch64"]
GLIBC_MINOR = 36  # Debian 12 / Raspberry Pi OS bookworm


def platform_tags(platform: str) -> list[str]:
    """pip --platform tags for a target: linux-ARCH means every manylinux tag up to glibc 2.36.

    pip does not widen a given manylinux tag to older ones, so a wheel tagged
    only manylinux2014 would be missed by a lone manylinux_2_28 tag.
    """
    if not platform.startswith("linux-"):
        return [platform]
    arch = platform.removeprefix("linux-")
    return [f"manylinux_2_{m}_{arch}" for m in range(GLIBC_MINOR, 16, -1)] + [f"manylinux2014_{arch}", f"linux_{arch}"]


def resolve(pip: Path, wheel: Path, extras: str, platform: str | None, python_version: str) -> dict:
    """One ``pip install --dry-run --report``; returns the report or the error's last line."""
    target = f"{wheel}[{extras}]" if extras else str(wheel)
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [str(pip), "install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(report), target]
        if platform:  # pip takes a foreign platform only with --target (nothing is written: --dry-run)
            cmd += ["--target", str(Path(tmp) / "target"), *(f"--platform={t}" for t in platform_tags(platform)),
                    "--python-version", python_version,
                    "--implementation", "cp", "--only-binary=:all:"]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            lines = out.stderr.splitlines()
            errors = [ln for ln in lines if ln.startswith("ERROR")] or lines or [f"pip exited {out.returncode}"]
            if "The conflict is caused by:" in lines:  # name the package behind a ResolutionImpossible
                errors[0] += " (" + lines[lines.index("The conflict is caused by:") + 1].strip() + ")"
            return {"error": errors[0]}
        return json.loads(report.read_text())


def builds(report: dict, prefix: str) -> list[str]:
    """``name==version`` of the distributions in a report whose name starts with prefix."""
    return sorted(
        f"{item['metadata']['name']}=={item['metadata']['version']}"
        for item in report["install"]
        if item["metadata"]["name"].lower().startswith(prefix)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--platform", action="append", help="linux-ARCH (e.g. linux-aarch64, linux-armv7l) or a pip platform tag (repeatable); "
                             "default: this machine and linux-aarch64")
    parser.add_argument("--python-version", default=f"{sys.version_info.major}.{sys.version_info.minor}",
                        help="Python version for --platform targets (default: this one)")
    parser.add_argument("--route", action="append", choices=list(ROUTES), help="routes to check (default: all)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    platforms = args.platform or DEFAULT_PLATFORMS

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wheel = build_wheel(tmp, compiled=False)  # the compiled wheel would fit this platform only
        venv.create(tmp / "venv", with_pip=True)
        python = tmp / "venv" / ("Scripts" if sys.platform == "win32" else "bin") / "python"
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
        pip = python.with_name("pip")
        version = subprocess.run([str(pip), "--version"], capture_output=True, text=True).stdout.split()[1]
        print(f"{wheel.name}, pip {version} in a fresh venv; Python {args.python_version} for platform targets\n")
        rows, bad = [], 0
        print(f"{'route':32} {'platform':26} {'onnxruntime builds':34} opencv builds")
        for platform in platforms:
            for name in args.route or ROUTES:
                report = resolve(pip, wheel, ROUTES[name], platform, args.python_version)
                where = platform or "this machine"
                if "error" in report:
                    rows.append({"route": name, "platform": where, "error": report["error"]})
                    print(f"{name:32} {where:26} does not resolve: {report['error']}")
                    continue
                ort, cv = builds(report, "onnxruntime"), builds(report, "opencv")
                ok = len(ort) == (0 if name == "base" else 1)
                bad += not ok
                rows.append({"route": name, "platform": where, "onnxruntime": ort, "opencv": cv, "ok": ok})
                print(f"{name:32} {where:26} {', '.join(ort) or '-':34} {', '.join(cv) or '-'}{'' if ok else '   <- WRONG'}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
