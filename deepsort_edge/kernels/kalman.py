"""Constant-velocity Kalman filter in xyah space, batched over tracks.

State per track: ``(cx, cy, a, h, vcx, vcy, va, vh)`` (float64). Measurement:
``(cx, cy, a, h)``. As in the DeepSORT paper, process and measurement noise
scale with the box height, so the filter is invariant to object size; the
aspect ratio gets small fixed noise because it changes slowly. Its process
noise is an argument (``aspect_std`` and ``aspect_velocity_std``: the
tracker's ``aspect_noise`` and ``aspect_velocity_noise``); DeepSORT's 0.01
and 1e-5 hold the width almost fixed to the height, more lets it follow the
detector.

Track state lives in structure-of-arrays form: ``means (capacity, 8)``,
``covariances (capacity, 8, 8)``; kernels receive the ``slots`` (row indices)
of the tracks to work on and update those rows in place.
"""

from __future__ import annotations

import numpy as np

from .jit import kernel

# Noise weights relative to the box height (DeepSORT paper, section 2.1).
STD_WEIGHT_POSITION = 1.0 / 20.0
STD_WEIGHT_VELOCITY = 1.0 / 160.0
# Aspect-ratio noise is absolute: the ratio is unitless. Its process noise is the caller's
# (TrackerSettings.aspect_noise, aspect_velocity_noise; DeepSORT's are in the presets).
STD_ASPECT_MEASUREMENT = 1e-1


@kernel
def kalman_initiate(
    measurements: np.ndarray, slots: np.ndarray, means: np.ndarray, covariances: np.ndarray,
    aspect_std: float, aspect_velocity_std: float,
) -> None:
    """Start tracks at ``slots`` from ``measurements (M, 4)`` xyah; zero velocity.

    The aspect's starting uncertainty is its process noise, as in DeepSORT.
    """
    for m in range(slots.shape[0]):
        s = slots[m]
        h = measurements[m, 3]
        for k in range(8):
            means[s, k] = 0.0
            for j in range(8):
                covariances[s, k, j] = 0.0
        for k in range(4):
            means[s, k] = measurements[m, k]
        pos = 2.0 * STD_WEIGHT_POSITION * h
        vel = 10.0 * STD_WEIGHT_VELOCITY * h
        std = (pos, pos, aspect_std, pos, vel, vel, aspect_velocity_std, vel)
        for k in range(8):
            covariances[s, k, k] = std[k] * std[k]


@kernel
def kalman_predict(
    means: np.ndarray, covariances: np.ndarray, slots: np.ndarray, aspect_std: float, aspect_velocity_std: float
) -> None:
    """One time step for the tracks at ``slots``: x = F x, P = F P F' + Q."""
    for i in range(slots.shape[0]):
        s = slots[i]
        h = means[s, 3]
        pos = STD_WEIGHT_POSITION * h
        vel = STD_WEIGHT_VELOCITY * h
        q = (pos * pos, pos * pos, aspect_std * aspect_std, pos * pos,
             vel * vel, vel * vel, aspect_velocity_std * aspect_velocity_std, vel * vel)
        for k in range(4):
            means[s, k] += means[s, k + 4]
        P = covariances[s]
        # F = [[I, I], [0, I]]: add velocity rows into position rows, then
        # velocity columns into position columns.
        for r in range(4):
            for c in range(8):
                P[r, c] += P[r + 4, c]
        for r in range(8):
            for c in range(4):
                P[r, c] += P[r, c + 4]
        for k in range(8):
            P[k, k] += q[k]


@kernel(inline=True)
def innovation_covariance(mean: np.ndarray, P: np.ndarray, S: np.ndarray, noise_scale: float) -> None:
    """S = H P H' + c R for one track (R scales with the predicted height, c with confidence)."""
    pos = STD_WEIGHT_POSITION * mean[3]
    r = (pos * pos, pos * pos, STD_ASPECT_MEASUREMENT * STD_ASPECT_MEASUREMENT, pos * pos)
    for a in range(4):
        for b in range(4):
            S[a, b] = P[a, b]
        S[a, a] += noise_scale * r[a]


@kernel(inline=True)
def cholesky4(S: np.ndarray, L: np.ndarray) -> None:
    """Lower Cholesky factor of a 4x4 SPD matrix, written into ``L``."""
    for i in range(4):
        for j in range(4):
            L[i, j] = 0.0
    for j in range(4):
        acc = S[j, j]
        for k in range(j):
            acc -= L[j, k] * L[j, k]
        # Guards a covariance that lost definiteness to round-off.
        L[j, j] = np.sqrt(acc if acc > 1e-12 else 1e-12)
        for i in range(j + 1, 4):
            acc = S[i, j]
            for k in range(j):
                acc -= L[i, k] * L[j, k]
            L[i, j] = acc / L[j, j]


@kernel
def confidence_noise_scales(scores: np.ndarray) -> np.ndarray:
    """Measurement-noise factor per detection: ``1 + 2 (1 - score)``, score clipped to [0, 1].

    The NSA Kalman idea (less trust in less confident detections) applied
    one way only: a confident detection keeps the paper's noise, a score of
    0 triples it. Scaling R *down* for confident detections, as NSA does
    (``1 - score``), made the filter follow Faster R-CNN's jitter and cost
    4 HOTA on PETS09 (``python tools/bench.py quality`` measured both).
    """
    out = np.empty(scores.shape[0])
    for m in range(scores.shape[0]):
        c = scores[m]
        c = 0.0 if not c > 0.0 else (1.0 if c > 1.0 else c)
        out[m] = 1.0 + 2.0 * (1.0 - c)
    return out


@kernel
def kalman_update_scaled(
    means: np.ndarray, covariances: np.ndarray, slots: np.ndarray, measurements: np.ndarray,
    noise_scales: np.ndarray,
) -> None:
    """Correct the tracks at ``slots`` with ``measurements (M, 4)`` xyah, R times ``noise_scales (M,)``.

    With X = S^-1 H P (solved through the Cholesky factor, never an explicit
    inverse) the gain is K = X', so x += X' y and P -= X' H P.
    """
    S = np.empty((4, 4))
    L = np.empty((4, 4))
    X = np.empty((4, 8))
    HP = np.empty((4, 8))
    y = np.empty(4)
    for m in range(slots.shape[0]):
        s = slots[m]
        P = covariances[s]
        innovation_covariance(means[s], P, S, noise_scales[m])
        cholesky4(S, L)
        for c in range(8):
            # Forward then back substitution on column c of H P (= P[:4, c]).
            for i in range(4):
                acc = P[i, c]
                for k in range(i):
                    acc -= L[i, k] * X[k, c]
                X[i, c] = acc / L[i, i]
            for i in range(3, -1, -1):
                acc = X[i, c]
                for k in range(i + 1, 4):
                    acc -= L[k, i] * X[k, c]
                X[i, c] = acc / L[i, i]
        for k in range(4):
            y[k] = measurements[m, k] - means[s, k]
        for r in range(8):
            acc = 0.0
            for k in range(4):
                acc += X[k, r] * y[k]
            means[s, r] += acc
        for k in range(4):
            for c in range(8):
                HP[k, c] = P[k, c]
        for r in range(8):
            for c in range(8):
                acc = 0.0
                for k in range(4):
                    acc += X[k, r] * HP[k, c]
                P[r, c] -= acc
        # Keep P exactly symmetric so round-off cannot accumulate over long runs.
        for r in range(8):
            for c in range(r + 1, 8):
                v = 0.5 * (P[r, c] + P[c, r])
                P[r, c] = v
                P[c, r] = v


@kernel
def damp_velocity(means: np.ndarray, slots: np.ndarray, factor: float) -> None:
    """Multiply the velocity of the tracks at ``slots`` by ``factor`` (coasting lost tracks slow down)."""
    for i in range(slots.shape[0]):
        for k in range(4, 8):
            means[slots[i], k] *= factor


@kernel
def kalman_warp(means: np.ndarray, covariances: np.ndarray, slots: np.ndarray, affine: np.ndarray) -> None:
    """Apply a camera motion ``affine (2, 3)`` (image of the previous frame -> this one) to tracks.

    Centre and centre velocity go through the linear part and the centre
    also through the translation; height and its velocity scale by
    ``sqrt(|det|)``; the aspect ratio is unchanged. The covariance becomes
    J P J' for that linear map J.
    """
    scale = np.sqrt(abs(affine[0, 0] * affine[1, 1] - affine[0, 1] * affine[1, 0]))
    J = np.zeros((8, 8))
    for b in range(0, 8, 4):
        J[b, b] = affine[0, 0]
        J[b, b + 1] = affine[0, 1]
        J[b + 1, b] = affine[1, 0]
        J[b + 1, b + 1] = affine[1, 1]
        J[b + 2, b + 2] = 1.0
        J[b + 3, b + 3] = scale
    x = np.empty(8)
    JP = np.empty((8, 8))
    for i in range(slots.shape[0]):
        s = slots[i]
        for r in range(8):
            acc = 0.0
            for k in range(8):
                acc += J[r, k] * means[s, k]
            x[r] = acc
        x[0] += affine[0, 2]
        x[1] += affine[1, 2]
        for r in range(8):
            means[s, r] = x[r]
        P = covariances[s]
        for r in range(8):
            for c in range(8):
                acc = 0.0
                for k in range(8):
                    acc += J[r, k] * P[k, c]
                JP[r, c] = acc
        for r in range(8):
            for c in range(8):
                acc = 0.0
                for k in range(8):
                    acc += JP[r, k] * J[c, k]
                P[r, c] = acc
