"""What the peer runs share: each sequence's frames, decoded once, and a result cache per tracker and set.

``bench.py peers`` hands the peers real frames where the shared data has them (PETS09-S2L1),
so each runs its own camera-motion compensation on them; :func:`frames_of` decodes a
sequence once per process and every tracker and set of that sequence reuses the arrays.
:class:`ResultCache` keeps one JSON file per (tracker, set), stamped with the peer
packages' versions and :data:`PROTOCOL`, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

#: Bumped whenever what a peer is given changes (frames, camera-motion policy, scores).
PROTOCOL = "frames-ecc-1"
#: Where a sequence's frames may live, relative to the shared data folder.
FRAME_ROOTS = (("MOT15", "train"), ("MOT17", "train"))


@functools.cache
def frames_of(data: Path, name: str) -> tuple[np.ndarray, ...] | None:
    """Every frame of sequence ``name`` (BGR, in order), or None when the shared data has none.

    Cached per process: the PETS09 sets all share one decode (about 1 GB).
    """
    import cv2

    for parts in FRAME_ROOTS:
        folder = data.joinpath(*parts, name, "img1")
        files = sorted(folder.glob("*.jpg")) if folder.is_dir() else []
        if files:
            frames = []
            for path in files:
                image = cv2.imread(str(path))
                if image is None:
                    raise ValueError(f"cannot decode frame {path}")
                frames.append(image)
            return tuple(frames)
    return None


def has_frames(data: Path, name: str) -> bool:
    """Whether the shared data has frames for sequence ``name`` (nothing decoded)."""
    return any(next(data.joinpath(*parts, name, "img1").glob("*.jpg"), None) is not None
               for parts in FRAME_ROOTS if data.joinpath(*parts, name, "img1").is_dir())


def peer_versions() -> str:
    """The versions that decide a peer's result: boxmot, trackers, supervision, :data:`PROTOCOL`."""
    parts = []
    for dist in ("boxmot", "trackers", "supervision"):
        try:
            parts.append(f"{dist}={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{dist}=none")
    return ";".join([*parts, PROTOCOL])


class ResultCache:
    """One JSON file per (tracker, set) under ``folder``, valid while ``stamp`` matches.

    Example::

        cache = ResultCache(Path("runs/bench/cache/peers"), peer_versions())
        hit, value = cache.get("boxmot ByteTrack", "tud")
        if not hit:
            cache.put("boxmot ByteTrack", "tud", {"HOTA": 40.0})
    """

    def __init__(self, folder: Path, stamp: str) -> None:
        self.folder, self.stamp = folder, stamp

    def _path(self, label: str, set_name: str) -> Path:
        slug = re.sub(r"[^A-Za-z0-9.-]+", "_", f"{label}--{set_name}")
        return self.folder / f"{slug}.json"

    def get(self, label: str, set_name: str) -> tuple[bool, Any]:
        """``(True, value)`` when a run with this stamp stored one (``value`` may be None), else ``(False, None)``."""
        path = self._path(label, set_name)
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False, None
        if stored.get("stamp") != self.stamp or stored.get("label") != label or stored.get("set") != set_name:
            return False, None
        return True, stored["value"]

    def put(self, label: str, set_name: str, value: Any) -> None:
        """Store ``value`` (written to a temporary file first, so a killed run leaves no half file)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(label, set_name)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"stamp": self.stamp, "label": label, "set": set_name, "value": value},
                                  default=float) + "\n", encoding="utf-8")
        tmp.replace(path)
        print(f"cached {path}", file=sys.stderr)
