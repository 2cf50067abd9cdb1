"""Numba kernels: plain functions over contiguous arrays, nothing else.

Modules are named for their math: ``kalman`` (constant-velocity filter in
xyah space), ``gating`` (Mahalanobis distances), ``distance`` (appearance and
IoU costs), ``lap`` (Jonker-Volgenant linear assignment).
"""
