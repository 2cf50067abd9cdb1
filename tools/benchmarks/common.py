"""What every benchmark shares: the shared data and its layout, user errors, one-thread runs, the machine.

Nothing here imports numpy or deepsort_edge at module level, so the runner can
set the thread variables before either loads.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

#: The repository (for default output paths only: nothing imports from it).
REPO = Path(__file__).resolve().parents[2]

#: Thread-pool variables set to 1 for one-thread timings (before numpy loads).
THREAD_VARIABLES = (
    "NUMBA_NUM_THREADS",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


#: The variable naming the shared data folder (default ``../shared/data`` beside the repository).
DATA_VARIABLE = "DEEPSORT_EDGE_DATA"

# The shared data's layout (its README.md), relative to shared_data_dir().
MOT15_TRAIN = Path("MOT15/train")
SORT_FRCNN = Path("MOT15/train-sort-frcnn-det")  # the SORT paper's Faster R-CNN detections, SEQUENCE/det.txt
MOT17_TRAIN = Path("MOT17/train")
PETS09_NAME = "PETS09-S2L1"
PETS09 = MOT15_TRAIN / PETS09_NAME
PETS09_FRCNN_DETS = SORT_FRCNN / PETS09_NAME / "det.txt"
PETS09_VIDEO = Path("video/pets09-s2l1-480x360.avi")  # 480x360, 10 fps
MOT17_04_NAME = "MOT17-04-FRCNN"
MOT17_04 = MOT17_TRAIN / MOT17_04_NAME
OSNET = Path("models/osnet_x0_25_msmt17.onnx")
#: OSNet-x0.25's input contract, from the data README (the file carries no deepsort-edge metadata).
OSNET_KWARGS = {"input_size": (256, 128), "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225),
                "color_order": "rgb"}


class UsageError(Exception):
    """A user error: ``tools/bench.py`` prints ``bench.py SECTION: error: MESSAGE`` and exits with status 2."""


def shared_data_dir() -> Path:
    """The shared data folder: ``$DEEPSORT_EDGE_DATA``, default ``../shared/data`` beside the repository."""
    return Path(os.environ.get(DATA_VARIABLE, REPO.parent / "shared" / "data"))


def require_shared_data() -> Path:
    """The shared data folder; :class:`UsageError` naming the variable and the path when it is not there."""
    data = shared_data_dir()
    if not (data / "README.md").is_file():
        raise UsageError(f"shared data not found at {data} (set {DATA_VARIABLE} to its folder)")
    return data


def require_shared_file(relative: Path) -> Path:
    """``relative`` (a path of the layout above) in the shared data; :class:`UsageError` when it is not there."""
    path = require_shared_data() / relative
    if not path.exists():
        raise UsageError(f"{path} not found in the shared data (set {DATA_VARIABLE} to a complete copy)")
    return path


def one_thread() -> None:
    """Set every thread-pool variable to 1; call before numpy or numba is imported."""
    if "numpy" in sys.modules:
        raise RuntimeError("one_thread() must run before numpy is imported")
    for name in THREAD_VARIABLES:
        os.environ[name] = "1"


def default_threads_env() -> dict[str, str]:
    """``os.environ`` without the thread variables: a child process with each library's default threads."""
    return {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}


def progress(iterable: Iterable, total: int | None, desc: str, enabled: bool) -> Iterable:
    """``iterable`` with a tqdm bar on stderr when ``enabled`` (and tqdm is installed)."""
    if not enabled:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, total=total, desc=desc, file=sys.stderr, leave=False, mininterval=0.5)


def version(dist: str) -> str:
    """The installed version of distribution ``dist``, or ``"not installed"``."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def cpu_name() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict:
    """The machine and the versions that matter for a timing, as JSON-ready values."""
    import deepsort_edge

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu_name(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable,
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        **{name.replace("-", "_"): version(name) for name in ("numpy", "numba", "scipy", "deep-sort-realtime")},
        "deepsort_edge": deepsort_edge.__version__,
        "deepsort_edge_path": str(Path(deepsort_edge.__file__).resolve().parent),
        "threads": {name: os.environ.get(name) for name in THREAD_VARIABLES},
    }


def add_dataset_arguments(parser, *, name: str, sets: str | None) -> None:
    """The options of the benchmarks that score data sets: report path, embedding cache, sets.

    ``name`` names the default report (``runs/bench/NAME.md``); ``sets`` is the
    default of ``--sets`` (None: all).
    """
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench" / f"{name}.md",
                        help="where to write the markdown report (and a .json beside it)")
    parser.add_argument("--cache-dir", type=Path, default=REPO / "runs" / "bench" / "cache",
                        help="embedding cache (reused between runs)")
    parser.add_argument("--sets", default=sets, help=f"comma-separated sets to run (default: {sets or 'all'})")


def package_env(**overrides: str) -> dict[str, str]:
    """``os.environ`` for a child Python that must import the same ``deepsort_edge`` as this one."""
    import deepsort_edge

    parent = str(Path(deepsort_edge.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [parent, os.environ.get("PYTHONPATH")])),
            **overrides}
