"""Numba kernels: plain functions over contiguous arrays, nothing else.

Modules are named for their math:

- ``kalman``: constant-velocity filter in xyah space (predict, update, warp);
- ``gating``: Mahalanobis distances and the chi-square gate;
- ``costs``: the association costs as sparse rows (gated appearance + motion, IoU);
- ``gallery``: per-track appearance (ring buffer, EMA, nearest entry);
- ``boxes``: IoU of two boxes, state rows to xyxy;
- ``rows``: per-row checks of a frame's detections;
- ``overlap``: how much of each detection other detections cover (occluded crops);
- ``cascade`` and ``lap``: the matching cascade and Jonker-Volgenant assignment;
- ``half``: float16 gallery entries (as uint16 bits);
- ``frame``: one whole tracker update in one call, built from the above;
- ``registry``: the identity registry's per-frame work and decisions (global ids);
- ``stale``: dropping cached kernels when any kernel source changed.

Beside them, no kernels of their own: ``aot`` (loading the frame kernel
compiled ahead of time into the wheel, else the JIT) and ``build_aot``
(compiling it, run by ``hatch_build.py``).
"""
