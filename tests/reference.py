"""Plain, slow numpy references for the kernels (written independently of them)."""

from __future__ import annotations

import numpy as np

WP, WV = 1.0 / 20.0, 1.0 / 160.0


def kf_initiate(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h = z[3]
    mean = np.r_[z, np.zeros(4)]
    std = np.array([2 * WP * h, 2 * WP * h, 1e-2, 2 * WP * h, 10 * WV * h, 10 * WV * h, 1e-5, 10 * WV * h])
    return mean, np.diag(std**2)


def kf_matrices() -> tuple[np.ndarray, np.ndarray]:
    F = np.eye(8)
    F[:4, 4:] = np.eye(4)
    H = np.eye(4, 8)
    return F, H


def kf_predict(mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    F, _ = kf_matrices()
    h = mean[3]
    std = np.array([WP * h, WP * h, 1e-2, WP * h, WV * h, WV * h, 1e-5, WV * h])
    return F @ mean, F @ cov @ F.T + np.diag(std**2)


def kf_project(mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    _, H = kf_matrices()
    h = mean[3]
    R = np.diag(np.array([WP * h, WP * h, 1e-1, WP * h]) ** 2)
    return H @ mean, H @ cov @ H.T + R


def kf_update(mean: np.ndarray, cov: np.ndarray, z: np.ndarray, noise_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    _, H = kf_matrices()
    h = mean[3]
    projected = H @ mean
    S = H @ cov @ H.T + noise_scale * np.diag(np.array([WP * h, WP * h, 1e-1, WP * h]) ** 2)
    K = cov @ H.T @ np.linalg.inv(S)
    return mean + K @ (z - projected), cov - K @ S @ K.T


def squared_mahalanobis(mean: np.ndarray, cov: np.ndarray, z: np.ndarray, dims: int = 4) -> np.ndarray:
    projected, S = kf_project(mean, cov)
    d = z[:, :dims] - projected[:dims]
    return np.einsum("ni,ij,nj->n", d, np.linalg.inv(S[:dims, :dims]), d)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.zeros((len(a), len(b)))
    for i, p in enumerate(a):
        for j, q in enumerate(b):
            w = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
            h = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
            inter = w * h
            union = (p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - inter
            out[i, j] = inter / union if union > 0 else 0.0
    return out


def warp_state(mean: np.ndarray, cov: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Camera motion on an xyah state: centre and its velocity by the linear part, height by sqrt|det|."""
    A = affine[:, :2]
    scale = np.sqrt(abs(np.linalg.det(A)))
    block = np.eye(4)
    block[:2, :2] = A
    block[3, 3] = scale
    J = np.kron(np.eye(2), block)
    out = J @ mean
    out[:2] += affine[:, 2]
    return out, J @ cov @ J.T
