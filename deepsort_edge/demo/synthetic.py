"""Seeded synthetic tracking scenes: ground truth, noisy detections and embeddings.

A scene is a set of people-like boxes (aspect ``w / h`` about 0.35-0.5) that
move with smooth, bounded velocities, cross each other and bounce off the image
borders. With ``turnover > 0`` objects also leave through a border and new ones
(with new, never reused ground-truth ids) enter, so that ``num_objects`` are
present at all times. Each frame carries the true boxes and a detector-like
view of them: box noise, missed objects, false positives, confidence scores
and, optionally, appearance embeddings (a fixed random identity vector per
object plus per-detection noise).

The generator keeps only the objects present now, so memory is
``O(num_objects)`` whatever the number of frames (a 100,000-frame soak run is
fine). All randomness comes from one ``numpy.random.Generator`` seeded by
``SceneConfig.seed``, so a configuration always yields the same scene.

Example:
    >>> from deepsort_edge.demo.synthetic import SceneConfig, iter_scene
    >>> cfg = SceneConfig(num_objects=5, seed=1, embedding_dim=16)
    >>> for frame in iter_scene(cfg, 3):
    ...     frame.xyxy.shape[1], frame.embeddings.shape[1]
    (4, 16)
    (4, 16)
    (4, 16)
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

# Box heights at a 1080-pixel-high image; scaled linearly for other heights.
_REFERENCE_HEIGHT = 1080.0
_MIN_HEIGHT_1080 = 60.0
_MAX_HEIGHT_1080 = 200.0
_MIN_ASPECT = 0.35
_MAX_ASPECT = 0.5
# Fraction of an entering object's box that is inside the image when it appears.
_ENTRY_VISIBLE_FRACTION = 0.2


@dataclass(frozen=True)
class SceneConfig:
    """Parameters of a synthetic scene.

    Attributes:
        num_objects: Objects present at any time (>= 0).
        width: Image width in pixels (> 0).
        height: Image height in pixels (> 0).
        seed: Seed of the scene's random generator (int >= 0).
        turnover: Per-object, per-frame probability of starting to leave the
            scene (in ``[0, 1]``). A leaving object heads for the nearest
            border; when it is fully outside it is replaced by a new object
            (new id) entering from a random border. 0 keeps the same objects
            for the whole scene (they bounce off the borders).
        miss_rate: Probability that a visible object gets no detection in a
            frame (in ``[0, 1]``).
        box_noise: Standard deviation in pixels of the gaussian noise added to
            each detection box coordinate (>= 0).
        false_positive_rate: Expected false positives per frame divided by
            ``num_objects`` (>= 0); the count is Poisson distributed.
        embedding_dim: Length of the appearance embeddings; 0 for none.
        embedding_noise: Expected norm of the gaussian noise added to an
            object's unit identity embedding before renormalising (>= 0); the
            cosine similarity of two detections of one object is then about
            ``1 / (1 + embedding_noise**2)``.
        occlusion_rate: Per-object, per-frame probability of becoming hidden
            (in ``[0, 1]``); a hidden object stays in the ground truth but has
            no detection.
        max_occlusion_frames: Longest occlusion, in frames (>= 1); each
            occlusion lasts a uniform 1..max_occlusion_frames frames.
        max_speed: Largest speed in pixels per frame at a 1080-pixel-high
            image (> 0), scaled with ``height``.
        acceleration: Standard deviation of the per-frame velocity change in
            pixels per frame at a 1080-pixel-high image (>= 0).

    Example:
        >>> SceneConfig(num_objects=20, turnover=0.01).num_objects
        20
    """

    num_objects: int = 50
    width: int = 1920
    height: int = 1080
    seed: int = 0
    turnover: float = 0.0
    miss_rate: float = 0.05
    box_noise: float = 2.0
    false_positive_rate: float = 0.0
    embedding_dim: int = 0
    embedding_noise: float = 0.1
    occlusion_rate: float = 0.0
    max_occlusion_frames: int = 10
    max_speed: float = 6.0
    acceleration: float = 0.3

    def __post_init__(self) -> None:
        _check_int("num_objects", self.num_objects, minimum=0)
        _check_int("width", self.width, minimum=1)
        _check_int("height", self.height, minimum=1)
        _check_int("seed", self.seed, minimum=0)
        _check_int("embedding_dim", self.embedding_dim, minimum=0)
        _check_int("max_occlusion_frames", self.max_occlusion_frames, minimum=1)
        for name in ("turnover", "miss_rate", "occlusion_rate"):
            _check_float(name, getattr(self, name), minimum=0.0, maximum=1.0)
        for name in ("box_noise", "false_positive_rate", "embedding_noise", "acceleration"):
            _check_float(name, getattr(self, name), minimum=0.0)
        _check_float("max_speed", self.max_speed, minimum=0.0, exclusive_minimum=True)


@dataclass(frozen=True, eq=False)
class SceneFrame:
    """One frame of a synthetic scene.

    Attributes:
        index: Frame number, 1-based.
        gt_ids: ``(G,)`` int64 ground-truth ids of the objects in the image.
        gt_xyxy: ``(G, 4)`` float64 true boxes (xyxy); a box may lie partly
            outside the image while its object enters or leaves.
        xyxy: ``(N, 4)`` float64 detection boxes (xyxy), in random order.
        scores: ``(N,)`` float32 detection confidences in ``[0, 1]``.
        embeddings: ``(N, D)`` float32 L2-normalised embeddings, or None when
            the scene has ``embedding_dim == 0``.
        det_gt_ids: ``(N,)`` int64 ground-truth id of each detection, -1 for
            false positives.
    """

    index: int
    gt_ids: np.ndarray
    gt_xyxy: np.ndarray
    xyxy: np.ndarray
    scores: np.ndarray
    embeddings: np.ndarray | None
    det_gt_ids: np.ndarray

    def __repr__(self) -> str:
        return (
            f"SceneFrame(index={self.index}, objects={len(self.gt_ids)}, "
            f"detections={len(self.xyxy)})"
        )


def iter_scene(cfg: SceneConfig, num_frames: int) -> Iterator[SceneFrame]:
    """Yield the frames of a synthetic scene one at a time.

    Memory stays ``O(cfg.num_objects)`` however many frames are asked for.

    Args:
        cfg: The scene parameters.
        num_frames: Number of frames to generate (>= 0).

    Yields:
        SceneFrame objects with ``index`` 1, 2, ..., ``num_frames``.

    Raises:
        TypeError: If ``cfg`` is not a SceneConfig or ``num_frames`` not an int.
        ValueError: If ``num_frames`` is negative.

    Example:
        >>> cfg = SceneConfig(num_objects=3, miss_rate=0.0, seed=7)
        >>> [len(f.xyxy) for f in iter_scene(cfg, 4)]
        [3, 3, 3, 3]
    """
    if not isinstance(cfg, SceneConfig):
        raise TypeError(f"cfg: expected a SceneConfig, got {type(cfg).__name__}")
    _check_int("num_frames", num_frames, minimum=0)
    return _SceneState(cfg).frames(int(num_frames))


def generate_scene(cfg: SceneConfig, num_frames: int) -> list[SceneFrame]:
    """Generate a whole synthetic scene as a list of frames.

    Args:
        cfg: The scene parameters.
        num_frames: Number of frames to generate (>= 0).

    Returns:
        The same frames ``iter_scene(cfg, num_frames)`` yields.

    Example:
        >>> scene = generate_scene(SceneConfig(num_objects=4, seed=3), 10)
        >>> len(scene), scene[0].index, scene[-1].index
        (10, 1, 10)
    """
    return list(iter_scene(cfg, num_frames))


class _SceneState:
    """Objects present now, stored as parallel arrays (row i is one object)."""

    def __init__(self, cfg: SceneConfig) -> None:
        self.cfg = cfg
        self.rng = np.random.default_rng(cfg.seed)
        scale = cfg.height / _REFERENCE_HEIGHT
        self.min_h = _MIN_HEIGHT_1080 * scale
        self.max_h = _MAX_HEIGHT_1080 * scale
        self.max_speed = cfg.max_speed * scale
        self.accel = cfg.acceleration * scale
        self.next_id = 1
        n = cfg.num_objects
        self.ids = np.zeros(0, dtype=np.int64)
        self.center = np.zeros((0, 2))
        self.velocity = np.zeros((0, 2))
        self.box_h = np.zeros(0)
        self.aspect = np.zeros(0)
        self.leaving = np.zeros(0, dtype=bool)
        self.hidden_for = np.zeros(0, dtype=np.int64)
        self.identity = np.zeros((0, cfg.embedding_dim))
        self._add(n, entering=False)

    # ------------------------------------------------------------------ objects
    def _add(self, count: int, *, entering: bool) -> None:
        """Create ``count`` new objects, inside the image or entering at a border."""
        if count == 0:
            return
        cfg, rng = self.cfg, self.rng
        box_h = rng.uniform(self.min_h, self.max_h, count)
        aspect = rng.uniform(_MIN_ASPECT, _MAX_ASPECT, count)
        box_w = box_h * aspect
        speed = rng.uniform(0.15, 1.0, count) * self.max_speed
        if entering:
            side = rng.integers(0, 4, count)  # 0 left, 1 right, 2 top, 3 bottom
            # The box starts mostly outside; only a thin slice shows.
            inset_x = box_w * (0.5 - _ENTRY_VISIBLE_FRACTION)
            inset_y = box_h * (0.5 - _ENTRY_VISIBLE_FRACTION)
            cx = rng.uniform(0.0, cfg.width, count)
            cy = rng.uniform(0.0, cfg.height, count)
            cx = np.where(side == 0, -inset_x, np.where(side == 1, cfg.width + inset_x, cx))
            cy = np.where(side == 2, -inset_y, np.where(side == 3, cfg.height + inset_y, cy))
            # Head inwards, within 60 degrees of the border's normal.
            normal = np.choose(side, [0.0, math.pi, math.pi / 2, -math.pi / 2])
            angle = normal + rng.uniform(-math.pi / 3, math.pi / 3, count)
        else:
            cx = rng.uniform(box_w / 2, np.maximum(cfg.width - box_w / 2, box_w / 2))
            cy = rng.uniform(box_h / 2, np.maximum(cfg.height - box_h / 2, box_h / 2))
            angle = rng.uniform(-math.pi, math.pi, count)
        velocity = np.stack([np.cos(angle), np.sin(angle)], axis=1) * speed[:, None]
        identity = rng.standard_normal((count, cfg.embedding_dim))
        identity /= np.maximum(np.linalg.norm(identity, axis=1, keepdims=True), 1e-12)

        self.ids = np.concatenate([self.ids, np.arange(self.next_id, self.next_id + count)])
        self.next_id += count
        self.center = np.concatenate([self.center, np.stack([cx, cy], axis=1)])
        self.velocity = np.concatenate([self.velocity, velocity])
        self.box_h = np.concatenate([self.box_h, box_h])
        self.aspect = np.concatenate([self.aspect, aspect])
        self.leaving = np.concatenate([self.leaving, np.zeros(count, dtype=bool)])
        self.hidden_for = np.concatenate([self.hidden_for, np.zeros(count, dtype=np.int64)])
        self.identity = np.concatenate([self.identity, identity])

    def _keep(self, keep: np.ndarray) -> None:
        for name in (
            "ids", "center", "velocity", "box_h", "aspect", "leaving", "hidden_for", "identity"
        ):
            setattr(self, name, getattr(self, name)[keep])

    def _boxes(self) -> np.ndarray:
        half_w = self.box_h * self.aspect / 2
        half_h = self.box_h / 2
        cx, cy = self.center[:, 0], self.center[:, 1]
        return np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)

    def _step(self) -> None:
        """Advance every object by one frame."""
        cfg, rng = self.cfg, self.rng
        n = len(self.ids)
        if n == 0:
            return
        # Smooth motion: a small random acceleration, speed capped.
        self.velocity += rng.normal(0.0, self.accel, (n, 2)) * (~self.leaving)[:, None]
        speed = np.linalg.norm(self.velocity, axis=1)
        too_fast = speed > self.max_speed
        self.velocity[too_fast] *= (self.max_speed / speed[too_fast])[:, None]
        # Sizes drift slowly (walking towards or away from the camera).
        self.box_h = np.clip(self.box_h * np.exp(rng.normal(0.0, 0.003, n)), self.min_h, self.max_h)

        if cfg.turnover > 0.0:
            start = (~self.leaving) & (rng.random(n) < cfg.turnover)
            if start.any():
                self._head_out(np.flatnonzero(start))

        # Objects that are not leaving bounce off the borders.
        boxes = self._boxes()
        staying = ~self.leaving
        vx, vy = self.velocity[:, 0], self.velocity[:, 1]
        flip_x = staying & (
            ((boxes[:, 0] < 0) & (vx < 0)) | ((boxes[:, 2] > cfg.width) & (vx > 0))
        )
        flip_y = staying & (
            ((boxes[:, 1] < 0) & (vy < 0)) | ((boxes[:, 3] > cfg.height) & (vy > 0))
        )
        vx[flip_x] = -vx[flip_x]
        vy[flip_y] = -vy[flip_y]
        self.center += self.velocity

        if cfg.turnover > 0.0:
            boxes = self._boxes()
            outside = (
                (boxes[:, 2] <= 0)
                | (boxes[:, 0] >= cfg.width)
                | (boxes[:, 3] <= 0)
                | (boxes[:, 1] >= cfg.height)
            )
            gone = self.leaving & outside
            if gone.any():
                self._keep(~gone)
                self._add(int(gone.sum()), entering=True)

    def _head_out(self, rows: np.ndarray) -> None:
        """Send the objects in ``rows`` towards their nearest border."""
        cfg = self.cfg
        cx, cy = self.center[rows, 0], self.center[rows, 1]
        distances = np.stack([cx, cfg.width - cx, cy, cfg.height - cy], axis=1)
        side = np.argmin(distances, axis=1)
        direction = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])[side]
        speed = np.maximum(np.linalg.norm(self.velocity[rows], axis=1), 0.5 * self.max_speed)
        # Keep the sideways component so the exit looks like a turn, not a jump.
        along = direction * speed[:, None]
        sideways = self.velocity[rows] * (1.0 - np.abs(direction))
        self.velocity[rows] = along + 0.5 * sideways
        self.leaving[rows] = True

    # ------------------------------------------------------------------- frames
    def frames(self, num_frames: int) -> Iterator[SceneFrame]:
        for index in range(1, num_frames + 1):
            if index > 1:
                self._step()
            yield self._observe(index)

    def _observe(self, index: int) -> SceneFrame:
        cfg, rng = self.cfg, self.rng
        n = len(self.ids)
        gt_xyxy = self._boxes()

        if cfg.occlusion_rate > 0.0:
            # An object whose occlusion just ended shows for at least one frame.
            was_hidden = self.hidden_for > 0
            self.hidden_for = np.maximum(self.hidden_for - 1, 0)
            start = ~was_hidden & (rng.random(n) < cfg.occlusion_rate)
            self.hidden_for[start] = rng.integers(1, cfg.max_occlusion_frames + 1, int(start.sum()))
        detected = (self.hidden_for == 0) & (rng.random(n) >= cfg.miss_rate)
        rows = np.flatnonzero(detected)

        true_xyxy = gt_xyxy[rows] + rng.normal(0.0, cfg.box_noise, (len(rows), 4))
        true_scores = rng.uniform(0.5, 1.0, len(rows))

        num_fp = int(rng.poisson(cfg.false_positive_rate * cfg.num_objects))
        fp_h = rng.uniform(self.min_h, self.max_h, num_fp)
        fp_w = fp_h * rng.uniform(_MIN_ASPECT, _MAX_ASPECT, num_fp)
        fp_left = rng.uniform(0.0, 1.0, num_fp) * np.maximum(cfg.width - fp_w, 0.0)
        fp_top = rng.uniform(0.0, 1.0, num_fp) * np.maximum(cfg.height - fp_h, 0.0)
        fp_xyxy = np.stack([fp_left, fp_top, fp_left + fp_w, fp_top + fp_h], axis=1)
        fp_scores = rng.uniform(0.1, 0.6, num_fp)

        xyxy = np.concatenate([true_xyxy, fp_xyxy.reshape(-1, 4)])
        # Noise must not flip a box inside out.
        xyxy[:, 2] = np.maximum(xyxy[:, 2], xyxy[:, 0] + 1.0)
        xyxy[:, 3] = np.maximum(xyxy[:, 3], xyxy[:, 1] + 1.0)
        scores = np.concatenate([true_scores, fp_scores]).astype(np.float32)
        det_gt_ids = np.concatenate([self.ids[rows], np.full(num_fp, -1, dtype=np.int64)])

        embeddings = None
        if cfg.embedding_dim > 0:
            dim = cfg.embedding_dim
            base = np.concatenate([self.identity[rows], rng.standard_normal((num_fp, dim))])
            base /= np.maximum(np.linalg.norm(base, axis=1, keepdims=True), 1e-12)
            noisy = base + rng.standard_normal(base.shape) * (cfg.embedding_noise / math.sqrt(dim))
            noisy /= np.maximum(np.linalg.norm(noisy, axis=1, keepdims=True), 1e-12)
            embeddings = noisy.astype(np.float32)

        # Detectors give no particular order; neither should we.
        order = rng.permutation(len(xyxy))
        return SceneFrame(
            index=index,
            gt_ids=self.ids.copy(),
            gt_xyxy=gt_xyxy,
            xyxy=xyxy[order],
            scores=scores[order],
            embeddings=None if embeddings is None else np.ascontiguousarray(embeddings[order]),
            det_gt_ids=det_gt_ids[order],
        )


def _check_int(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__} ({value!r})")
    if value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value}")


def _check_float(
    name: str,
    value: object,
    *,
    minimum: float,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__} ({value!r})")
    value = float(value)
    low_ok = value > minimum if exclusive_minimum else value >= minimum
    if not math.isfinite(value) or not low_ok or (maximum is not None and value > maximum):
        bound = f"> {minimum}" if exclusive_minimum else f">= {minimum}"
        if maximum is not None:
            bound = f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name}: expected a finite number {bound}, got {value}")


__all__ = ["SceneConfig", "SceneFrame", "generate_scene", "iter_scene"]
