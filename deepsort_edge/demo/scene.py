"""Render a synthetic scene as video frames of people-like figures, for the demo.

Each ground-truth identity is drawn as a small walking figure (head, patterned
shirt, trousers, swinging legs) whose colours and shirt pattern are fixed by
``(seed, id)``, so an appearance model sees a consistent, distinct look per
identity. Figures are drawn far-to-near (by the bottom edge of their box), so
nearer figures hide farther ones; :func:`box_visibility` gives the visible
fraction of each box under that order, which the demo uses to drop the
detections of mostly hidden people, as a real detector would.

Example:
    >>> from deepsort_edge.demo.synthetic import SceneConfig, iter_scene
    >>> renderer = SceneRenderer(640, 360, seed=0)
    >>> frame = next(iter_scene(SceneConfig(num_objects=5, width=640, height=360), 1))
    >>> renderer.render(frame.index, frame.gt_ids, frame.gt_xyxy).shape
    (360, 640, 3)
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

__all__ = ["DEMO_SIZE", "FIGURE_SCALE", "Appearance", "CameraView", "SceneRenderer", "box_visibility",
           "scale_boxes"]

# The demo's frame (width, height) in pixels.
DEMO_SIZE = (640, 360)
# The generator draws people 6-19 % of the frame height; the demo draws them
# 1.6x larger so that the figures (and their crops) are easier to see.
FIGURE_SCALE = 1.6

_PATTERNS = ("plain", "hstripes", "vstripes", "checker", "diagonal")
_SKIN = ((189, 224, 255), (141, 184, 232), (99, 134, 198), (60, 90, 141), (40, 60, 95))  # BGR
_HAIR = ((20, 20, 20), (30, 50, 90), (40, 80, 150), (160, 170, 180), (10, 30, 60))


def _hsv_to_bgr(h: float, s: float, v: float) -> tuple[int, int, int]:
    """One HSV colour (h in [0, 360), s and v in [0, 1]) as a BGR uint8 triple."""
    r, g, b = colorsys.hsv_to_rgb(h / 360.0, s, v)
    return (int(255 * b), int(255 * g), int(255 * r))


@dataclass(frozen=True)
class Appearance:
    """How one identity looks (colours BGR)."""

    shirt: tuple[int, int, int]
    pattern_color: tuple[int, int, int]
    pattern: str
    period: float  # pattern period as a fraction of the torso width
    trousers: tuple[int, int, int]
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]

    @classmethod
    def for_identity(cls, seed: int, identity: int) -> Appearance:
        """The fixed look of ``identity`` in a scene seeded with ``seed``."""
        rng = np.random.default_rng([int(seed), int(identity), 7919])
        hue = float(rng.uniform(0, 360))
        shirt = _hsv_to_bgr(hue, float(rng.uniform(0.55, 1.0)), float(rng.uniform(0.55, 1.0)))
        # A contrasting pattern: the opposite hue, or near-white / near-black.
        kind = int(rng.integers(3))
        if kind == 0:
            pattern_color = _hsv_to_bgr((hue + 180) % 360, 0.8, 0.9)
        else:
            pattern_color = (235, 235, 235) if kind == 1 else (25, 25, 25)
        trousers = _hsv_to_bgr(float(rng.uniform(0, 360)), float(rng.uniform(0.2, 0.8)),
                               float(rng.uniform(0.15, 0.55)))
        return cls(
            shirt=shirt,
            pattern_color=pattern_color,
            pattern=_PATTERNS[int(rng.integers(len(_PATTERNS)))],
            period=float(rng.uniform(0.25, 0.5)),
            trousers=trousers,
            skin=_SKIN[int(rng.integers(len(_SKIN)))],
            hair=_HAIR[int(rng.integers(len(_HAIR)))],
        )


def scale_boxes(xyxy: np.ndarray, factor: float) -> np.ndarray:
    """Scale ``(N, 4)`` xyxy boxes about their centres by ``factor``."""
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    centre = (xyxy[:, :2] + xyxy[:, 2:]) / 2
    half = (xyxy[:, 2:] - xyxy[:, :2]) / 2 * factor
    return np.concatenate([centre - half, centre + half], axis=1)


def drawing_order(xyxy: np.ndarray) -> np.ndarray:
    """Far-to-near order: boxes with a higher bottom edge are farther away."""
    return np.argsort(np.asarray(xyxy)[:, 3], kind="stable")


def box_visibility(
    xyxy: np.ndarray,
    width: int,
    height: int,
    occluders: np.ndarray | None = None,
    cell: int = 4,
) -> np.ndarray:
    """Visible fraction of each box when nearer boxes are drawn over farther ones.

    Computed on a ``cell``-pixel grid; the part of a box outside the image
    counts as hidden.

    Args:
        xyxy: ``(N, 4)`` boxes.
        width: Image width.
        height: Image height.
        occluders: ``(K, 4)`` boxes in front of everything (pillars), or None.
        cell: Grid cell size in pixels.

    Returns:
        ``(N,)`` float64 in [0, 1].

    Example:
        >>> box_visibility(np.array([[0, 0, 40, 80], [20, 0, 60, 100.]]), 100, 100).round(2)
        array([0.5, 1. ])
    """
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    n = xyxy.shape[0]
    owner = np.full((-(-height // cell), -(-width // cell)), -1, dtype=np.int64)
    cells = np.round(xyxy / cell).astype(np.int64)
    gw, gh = owner.shape[1], owner.shape[0]
    for i in drawing_order(xyxy):
        x1, y1, x2, y2 = cells[i]
        owner[max(y1, 0):max(min(y2, gh), 0), max(x1, 0):max(min(x2, gw), 0)] = i
    if occluders is not None:
        for x1, y1, x2, y2 in np.round(np.asarray(occluders, dtype=np.float64).reshape(-1, 4) / cell):
            x1, y1, x2, y2 = int(x1), int(y1), int(x2), int(y2)
            owner[max(y1, 0):max(min(y2, gh), 0), max(x1, 0):max(min(x2, gw), 0)] = -1
    area = np.maximum((cells[:, 2] - cells[:, 0]) * (cells[:, 3] - cells[:, 1]), 1)
    seen = np.bincount(owner[owner >= 0], minlength=n)[:n]
    return np.clip(seen / area, 0.0, 1.0)


@dataclass(frozen=True)
class CameraView:
    """A camera that sees the columns ``[left, right)`` of a wider rendered scene.

    Two views whose column ranges meet overlap: a person in the shared part
    is seen by both cameras at once (used by ``python tools/bench.py identities``).

    Example:
        >>> view = CameraView(100, 300)
        >>> view.boxes(np.array([[150., 0., 190., 80.]])).tolist()
        [[50.0, 0.0, 90.0, 80.0]]
        >>> view.visibility(np.array([[280., 0., 320., 80.]]), height=100).round(2)
        array([0.5])
    """

    left: int
    right: int

    def crop(self, image: np.ndarray) -> np.ndarray:
        """The camera's image: a contiguous copy of the view's columns of ``image``."""
        return np.ascontiguousarray(image[:, self.left:self.right])

    def boxes(self, xyxy: np.ndarray) -> np.ndarray:
        """``(N, 4)`` scene boxes in the camera's pixel coordinates."""
        return np.asarray(xyxy, dtype=np.float64).reshape(-1, 4) - [self.left, 0, self.left, 0]

    def visibility(self, xyxy: np.ndarray, height: int, occluders: np.ndarray | None = None) -> np.ndarray:
        """:func:`box_visibility` inside the view (the part of a box outside it counts as hidden)."""
        shifted = None if occluders is None else self.boxes(occluders)
        return box_visibility(self.boxes(xyxy), self.right - self.left, height, occluders=shifted)


class SceneRenderer:
    """Draws frames: a fixed textured background plus one figure per identity.

    Args:
        width: Frame width in pixels.
        height: Frame height in pixels.
        seed: Fixes the background and every identity's look.
        occluders: ``(K, 4)`` xyxy pillars drawn in front of every figure, or None.
    """

    def __init__(self, width: int, height: int, seed: int = 0,
                 occluders: np.ndarray | None = None) -> None:
        if width < 16 or height < 16:
            raise ValueError(f"frame size must be at least 16x16, got {width}x{height}")
        self.width, self.height, self.seed = int(width), int(height), int(seed)
        self.occluders = (np.zeros((0, 4)) if occluders is None
                          else np.asarray(occluders, dtype=np.float64).reshape(-1, 4))
        self._looks: dict[int, Appearance] = {}
        self.background = self._background()
        self._pillars = self._pillar_layer()

    def appearance(self, identity: int) -> Appearance:
        """The look of ``identity`` (cached)."""
        look = self._looks.get(identity)
        if look is None:
            look = self._looks[identity] = Appearance.for_identity(self.seed, identity)
        return look

    def _background(self) -> np.ndarray:
        import cv2  # noqa: PLC0415

        rng = np.random.default_rng([self.seed, 104729])
        h, w = self.height, self.width
        y = np.linspace(0.0, 1.0, h)[:, None, None]
        top = np.array([150, 140, 120], dtype=np.float64)  # cool grey wall (BGR)
        floor = np.array([95, 120, 135], dtype=np.float64)  # warm paving
        image = (1 - y) * top + y * floor + np.zeros((1, w, 1))
        # Low-frequency blotches and fine grain, so the ground is not flat colour.
        blotch = cv2.resize(rng.normal(0, 14, (h // 40 + 2, w // 40 + 2, 1)).astype(np.float32),
                            (w, h), interpolation=cv2.INTER_CUBIC)
        image += blotch[..., None] if blotch.ndim == 2 else blotch
        image += rng.normal(0, 5, (h, w, 1))
        image = np.clip(image, 0, 255).astype(np.uint8)
        tile = max(16, w // 16)
        for x in range(0, w, tile):
            cv2.line(image, (x, 0), (x, h), (80, 95, 105), 1)
        for yy in range(0, h, tile):
            cv2.line(image, (0, yy), (w, yy), (80, 95, 105), 1)
        return image

    def _pillar_layer(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The occluders as an image and a mask, pasted over each rendered frame."""
        import cv2  # noqa: PLC0415

        if self.occluders.shape[0] == 0:
            return None
        layer = np.zeros((self.height, self.width, 3), dtype=np.uint8)
        mask = np.zeros((self.height, self.width), dtype=np.uint8)
        for x1, y1, x2, y2 in np.round(self.occluders).astype(int):
            cv2.rectangle(layer, (x1, y1), (x2, y2), (70, 80, 95), -1)
            # Vertical shading so the pillar reads as a column, not a hole.
            width = max(x2 - x1, 1)
            for k, x in enumerate(range(x1, x2 + 1)):
                shade = int(40 * np.sin(np.pi * k / width))
                cv2.line(layer, (x, y1), (x, y2), (70 + shade, 80 + shade, 95 + shade), 1)
            cv2.rectangle(mask, (x1, y1), (x2, y2), 255, -1)
        return layer, mask.astype(bool)

    def _pattern_patch(self, look: Appearance, pw: int, ph: int) -> np.ndarray:
        patch = np.empty((ph, pw, 3), dtype=np.uint8)
        patch[:] = look.shirt
        period = max(2.0, look.period * pw)
        yy, xx = np.mgrid[0:ph, 0:pw]
        if look.pattern == "hstripes":
            mask = (yy // (period / 2)) % 2 == 1
        elif look.pattern == "vstripes":
            mask = (xx // (period / 2)) % 2 == 1
        elif look.pattern == "checker":
            mask = ((xx // (period / 2)) + (yy // (period / 2))) % 2 == 1
        elif look.pattern == "diagonal":
            mask = ((xx + yy) // (period / 2)) % 2 == 1
        else:
            mask = np.zeros((ph, pw), dtype=bool)
        patch[mask] = look.pattern_color
        return patch

    def _paste(self, image: np.ndarray, patch: np.ndarray, x: int, y: int) -> None:
        ph, pw = patch.shape[:2]
        x1, y1 = max(x, 0), max(y, 0)
        x2, y2 = min(x + pw, self.width), min(y + ph, self.height)
        if x2 > x1 and y2 > y1:
            image[y1:y2, x1:x2] = patch[y1 - y:y2 - y, x1 - x:x2 - x]

    def _figure(self, image: np.ndarray, identity: int, box: np.ndarray, frame: int) -> None:
        import cv2  # noqa: PLC0415

        look = self.appearance(identity)
        x1, y1, x2, y2 = box
        w, h = x2 - x1, y2 - y1
        if w < 2 or h < 4:
            return
        cx = (x1 + x2) / 2
        head_r = max(1, int(round(min(w * 0.32, h * 0.09))))
        head_cy = int(round(y1 + h * 0.02 + head_r))
        torso_top = head_cy + head_r
        torso_bot = int(round(y1 + h * 0.55))
        torso_w = max(2, int(round(w * 0.8)))
        # Legs swing while walking; the phase differs per identity.
        swing = np.sin(0.5 * frame + identity) * w * 0.12
        leg_w = max(1, int(round(w * 0.3)))
        for side, sign in ((-1, 1.0), (1, -1.0)):
            lx = int(round(cx + side * w * 0.18 - leg_w / 2 + sign * swing))
            cv2.rectangle(image, (lx, torso_bot), (lx + leg_w, int(round(y2))), look.trousers, -1)
        # Arms in the shirt colour, then the patterned torso over them.
        arm_w = max(1, int(round(w * 0.14)))
        for side in (-1, 1):
            ax = int(round(cx + side * (torso_w / 2 + arm_w / 2 - 1)))
            cv2.line(image, (ax, torso_top + arm_w), (int(round(ax - side * swing * 0.5)),
                     int(round(y1 + h * 0.58))), look.shirt, arm_w)
        patch = self._pattern_patch(look, torso_w, max(2, torso_bot - torso_top))
        self._paste(image, patch, int(round(cx - torso_w / 2)), torso_top)
        centre = (int(round(cx)), head_cy)
        cv2.circle(image, centre, head_r, look.skin, -1, lineType=cv2.LINE_AA)
        cv2.ellipse(image, centre, (head_r, head_r), 0, 180, 360, look.hair, -1, lineType=cv2.LINE_AA)

    def render(self, frame: int, ids: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
        """Draw one frame.

        Args:
            frame: 1-based frame number (drives the walking animation).
            ids: ``(N,)`` identities.
            xyxy: ``(N, 4)`` boxes of the figures, in pixels.

        Returns:
            ``(height, width, 3)`` uint8 BGR image.
        """
        image = self.background.copy()
        xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
        for i in drawing_order(xyxy):
            self._figure(image, int(ids[i]), xyxy[i], frame)
        if self._pillars is not None:
            layer, mask = self._pillars
            image[mask] = layer[mask]
        return image
