"""Camera-motion compensation: the image motion between two frames as an affine map.

As BoT-SORT does: corners in the previous (downscaled, grey) frame are
followed into the current one with pyramidal Lucas-Kanade optical flow, and a
4-dof similarity (rotation, uniform scale, translation) is fitted to the
pairs with RANSAC. The tracker applies it to every track's Kalman state
before association, so a panning camera does not look like every person
moving at once. Opt-in (``camera_motion="affine"``); costs a few
milliseconds a frame (``tools/bench_quality.py`` measures it).
"""

from __future__ import annotations

import numpy as np

_IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
# Smallest side (after downscaling) in which corners are followed; smaller frames give the identity.
_MIN_SIDE = 8


class CameraMotionEstimator:
    """Affine image motion from the previous frame to the current one.

    Args:
        downscale: frames are shrunk by this factor before tracking corners.
        max_corners: corners followed per frame.

    Example:
        >>> est = CameraMotionEstimator()
        >>> frame = np.zeros((120, 160, 3), np.uint8)
        >>> est.estimate(frame).shape  # the first frame has no predecessor: identity
        (2, 3)
    """

    def __init__(self, downscale: float = 2.0, max_corners: int = 400) -> None:
        self.downscale = float(downscale)
        self.max_corners = int(max_corners)
        self._previous: np.ndarray | None = None
        self._corners: np.ndarray | None = None

    def reset(self) -> None:
        self._previous = None
        self._corners = None

    def estimate(self, frame: np.ndarray) -> np.ndarray:
        """``(2, 3)`` float64 map of previous-frame pixels to this frame's.

        The identity when unknown: the first frame, a frame of another size
        than the last, too few corners, or a frame whose shorter side is under
        8 pixels after downscaling (no corners to follow there).
        """
        import cv2

        if min(frame.shape[:2]) < _MIN_SIDE * self.downscale:  # too small to follow corners in (or to shrink)
            self.reset()
            return _IDENTITY.copy()
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        if self.downscale != 1.0:
            grey = cv2.resize(grey, None, fx=1.0 / self.downscale, fy=1.0 / self.downscale,
                              interpolation=cv2.INTER_AREA)
        affine = _IDENTITY.copy()
        previous, corners = self._previous, self._corners
        if previous is not None and previous.shape == grey.shape and corners is not None and len(corners) >= 4:
            moved, status, _ = cv2.calcOpticalFlowPyrLK(previous, grey, corners, None)
            good = status.reshape(-1) == 1
            if good.sum() >= 4:
                fitted, _ = cv2.estimateAffinePartial2D(corners[good], moved[good], method=cv2.RANSAC)
                if fitted is not None and np.all(np.isfinite(fitted)):
                    affine = fitted.astype(np.float64)
                    affine[:, 2] *= self.downscale  # translation back to full-resolution pixels
        self._previous = grey
        self._corners = cv2.goodFeaturesToTrack(grey, self.max_corners, 0.01, 1.0 * 8, blockSize=3)
        return affine

    @staticmethod
    def warmup() -> None:
        """Import OpenCV now (the first import costs a moment)."""
        import cv2  # noqa: F401

    def __repr__(self) -> str:
        return f"CameraMotionEstimator(downscale={self.downscale:g}, max_corners={self.max_corners})"
