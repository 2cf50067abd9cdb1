"""Crops for calibrating and verifying exported models.

:func:`load_mot_crops` cuts real people out of a MOTChallenge sequence;
:func:`synthetic_crops` makes seeded textured crops; :func:`scene_crops` mixes
figures from the built-in demo scene with those textures, for calibrating int8
with no data at all (what the shipped model is calibrated on). Needs numpy and
OpenCV only.

Example:
    >>> crops = synthetic_crops(2, size=(32, 16))
    >>> [c.shape for c in crops]
    [(32, 16, 3), (32, 16, 3)]
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from deepsort_edge.appearance.preprocess import clip_boxes

__all__ = ["load_mot_crops", "scene_crops", "synthetic_crops"]

# The built-in scene scene_crops renders (drawn at the demo's frame size and figure scale).
_SCENE_FRAMES = 300
_SCENE_PEOPLE = 12
# Scene seeds apart from the ones the demo and the benchmarks show (0, 1, ...), so a model
# calibrated here is never shown on the figures it was calibrated on.
_SCENE_SEED = 7919


def synthetic_crops(
    count: int, seed: int = 0, size: tuple[int, int] = (160, 64)
) -> list[np.ndarray]:
    """Seeded textured BGR crops (smooth colour blobs plus fine noise).

    Used to verify numerical agreement when no real crops are given, and as
    half of :func:`scene_crops`.
    """
    rng = np.random.default_rng(seed)
    crops = []
    for _ in range(count):
        coarse = rng.integers(
            0, 256, size=(rng.integers(2, 9), rng.integers(2, 5), 3), dtype=np.uint8
        )
        crop = cv2.resize(coarse, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
        noise = rng.normal(0.0, 12.0, size=crop.shape)
        crops.append(np.clip(crop + noise, 0, 255).astype(np.uint8))
    return crops


def scene_crops(count: int, seed: int = 0) -> list[np.ndarray]:
    """Seeded BGR crops that need no data: half people from the demo scene, half textures.

    The figures of :mod:`deepsort_edge.demo` (head, patterned shirt, trousers,
    background around them, cut by neighbours) give int8 calibration
    person-shaped inputs; :func:`synthetic_crops` adds the colours and fine
    detail the drawn figures lack. For the shipped EfficientNet-Lite0 this
    calibrates as well as real PETS09 crops: on 400 held-out PETS09 people the
    int8 features' cosine to float32 is 0.994 on average either way
    (``models/PROVENANCE.md``).

    Raises:
        ValueError: ``count`` is not an integer >= 0.

    Example:
        >>> [c.dtype for c in scene_crops(2)]
        [dtype('uint8'), dtype('uint8')]
    """
    from deepsort_edge.demo.scene import DEMO_SIZE, FIGURE_SCALE, SceneRenderer, scale_boxes
    from deepsort_edge.demo.synthetic import SceneConfig, iter_scene

    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise ValueError(f"count must be an integer >= 0, got {count!r}")
    width, height = DEMO_SIZE
    scene_seed = _SCENE_SEED + seed
    rng = np.random.default_rng(scene_seed)
    picked = set(rng.choice(np.arange(1, _SCENE_FRAMES + 1), 64, replace=False).tolist())
    renderer = SceneRenderer(width, height, seed=scene_seed)
    scene = iter_scene(SceneConfig(num_objects=_SCENE_PEOPLE, width=width, height=height, seed=scene_seed,
                                   turnover=0.004), _SCENE_FRAMES)
    figures = []
    for frame in scene:
        if frame.index not in picked:
            continue
        xyxy = scale_boxes(frame.gt_xyxy, FIGURE_SCALE)
        image = renderer.render(frame.index, frame.gt_ids, xyxy)
        for x1, y1, x2, y2 in clip_boxes(xyxy, height, width):
            if y2 - y1 >= 16 and x2 - x1 >= 8:
                figures.append(image[y1:y2, x1:x2].copy())
    half = count // 2
    take = rng.choice(len(figures), min(half, len(figures)), replace=False)
    return [figures[i] for i in np.sort(take)] + synthetic_crops(count - len(take), seed=seed)


def load_mot_crops(
    sequence: str | os.PathLike[str],
    max_crops: int = 256,
    *,
    frames: tuple[int, int] | None = None,
    min_height: float = 32.0,
    seed: int = 0,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Crops of people from a MOTChallenge sequence folder (``img1/`` and ``gt/gt.txt``).

    Falls back to ``det/det.txt`` when there is no ground truth (identities
    are then all -1). Boxes are sampled uniformly at random (seeded).

    Args:
        sequence: folder holding ``img1/`` and ``gt/gt.txt`` or ``det/det.txt``.
        max_crops: most crops to return.
        frames: inclusive ``(first, last)`` frame range, 1-based; None for all.
        min_height: skip boxes shorter than this many pixels.
        seed: sampling seed.

    Returns:
        ``(crops, ids)``: BGR uint8 crops and their ``(N,)`` int64 identities.

    Raises:
        FileNotFoundError: if the folder lacks frames or annotations.
    """
    root = Path(sequence).expanduser()
    table_path = root / "gt" / "gt.txt"
    if not table_path.is_file():
        table_path = root / "det" / "det.txt"
    if not table_path.is_file() or not (root / "img1").is_dir():
        raise FileNotFoundError(f"{root} needs img1/ and gt/gt.txt or det/det.txt")
    table = np.loadtxt(table_path, delimiter=",", ndmin=2)
    keep = table[:, 5] >= min_height
    if table_path.parent.name == "gt" and table.shape[1] > 6:
        keep &= table[:, 6] != 0  # MOTChallenge "consider" flag
    if frames is not None:
        keep &= (table[:, 0] >= frames[0]) & (table[:, 0] <= frames[1])
    table = table[keep]
    rng = np.random.default_rng(seed)
    if len(table) > max_crops:
        table = table[np.sort(rng.choice(len(table), max_crops, replace=False))]
    crops, ids = [], []
    for frame_no in np.unique(table[:, 0]).astype(int):
        image = cv2.imread(str(root / "img1" / f"{frame_no:06d}.jpg"))
        if image is None:
            continue
        rows = table[table[:, 0] == frame_no]
        xyxy = np.concatenate([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]], axis=1)
        for (x1, y1, x2, y2), identity in zip(
            clip_boxes(xyxy, *image.shape[:2]), rows[:, 1], strict=True
        ):
            crops.append(image[y1:y2, x1:x2].copy())
            ids.append(int(identity))
    return crops, np.asarray(ids, dtype=np.int64)
