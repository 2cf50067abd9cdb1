"""OpenCV's HOG people detector on PETS09-S2L1: a classic detector nobody tuned this tracker for.

Needs OpenCV with ``cv2.HOGDescriptor`` (``opencv-python-headless<5``; OpenCV 5
dropped it). Frames are upscaled by ``UPSCALE`` (PETS09's people are about
30 x 80 px, below HOG's 64 x 128 window), boxes mapped back; the SVM margins
are min-max mapped to [0, 1] over the sequence, as a user would to feed a
tracker expecting [0, 1] scores. HOG's window has a margin around the person,
so boxes are shrunk as OpenCV's ``peopledetect`` sample does (15 % off each
side, 5 % off top and bottom) when read. Raw detections are cached by frame
count and settings.

Used by ``bench.py quality`` (the ``hog-pets`` set); :func:`cached` runs it on a sequence.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepsort_edge.io.mot import MOTData, MOTSequence, read_mot, write_mot

UPSCALE = 1.25
WIN_STRIDE, PADDING, SCALE = (8, 8), (8, 8), 1.05
VERSION = f"hog-{UPSCALE}-{WIN_STRIDE[0]}-{PADDING[0]}-{SCALE}"


def unavailable() -> str | None:
    """Why HOG cannot run here (None when it can)."""
    try:
        import cv2
    except ImportError:
        return "OpenCV is not installed"
    if not hasattr(cv2, "HOGDescriptor"):
        return f"OpenCV {cv2.__version__} has no HOGDescriptor (install opencv-python-headless<5)"
    return None


def detect(seq: MOTSequence) -> MOTData:
    """HOG detections of every frame of ``seq`` (scores min-max mapped to [0, 1])."""
    import cv2

    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    frames, boxes, scores = [], [], []
    for frame in range(1, seq.info.length + 1):
        image = cv2.imread(str(seq.image_path(frame)))
        image = cv2.resize(image, None, fx=UPSCALE, fy=UPSCALE)
        found, weights = hog.detectMultiScale(image, winStride=WIN_STRIDE, padding=PADDING, scale=SCALE)
        for (x, y, w, h), s in zip(np.asarray(found).reshape(-1, 4), np.asarray(weights).reshape(-1)):
            frames.append(frame)
            boxes.append(np.array([x, y, x + w, y + h], dtype=np.float64) / UPSCALE)
            scores.append(float(s))
    scores_arr = np.asarray(scores)
    if scores_arr.size:
        scores_arr = (scores_arr - scores_arr.min()) / max(np.ptp(scores_arr), 1e-12)
    return MOTData.from_arrays(frames, np.full(len(frames), -1), np.asarray(boxes).reshape(-1, 4), scores_arr)


def cached(seq: MOTSequence, cache_dir: Path) -> MOTData | str:
    """The cached detections, computed when OpenCV allows; else the reason they are missing."""
    path = cache_dir / f"{VERSION}-{seq.name}-{seq.info.length}.txt"
    if path.is_file():
        return shrink(read_mot(path))
    reason = unavailable()
    if reason is not None:
        return reason
    det = detect(seq)
    cache_dir.mkdir(parents=True, exist_ok=True)
    write_mot(path, det)
    return shrink(det)


def shrink(det: MOTData) -> MOTData:
    """HOG window boxes -> person boxes (15 % off the sides, 5 % off top and bottom)."""
    table = det.table.copy()
    table[:, 2] += 0.15 * table[:, 4]
    table[:, 3] += 0.05 * table[:, 5]
    table[:, 4] *= 0.70
    table[:, 5] *= 0.90
    return MOTData(table, det.num_columns)

