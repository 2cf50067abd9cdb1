"""Numba kernels: plain functions over contiguous arrays, nothing else.

Modules are named for their math:

- ``kalman``: constant-velocity filter in xyah space (predict, update, warp);
- ``gating``: Mahalanobis distances and the chi-square gate;
- ``costs``: the association costs as sparse rows (gated appearance + motion, IoU);
- ``gallery``: per-track appearance (ring buffer, EMA, nearest entry);
- ``boxes``: IoU of two boxes, xyxy rows to xyah;
- ``rows``: per-row checks of a frame's detections;
- ``scores``: the score calibration's window of recent scores (kept, and read for the "unit" fast path);
- ``overlap``: how much of each detection other detections cover (occluded crops);
- ``cascade`` and ``lap``: the matching cascade and Jonker-Volgenant assignment;
- ``half``: float16 gallery entries (as uint16 bits);
- ``frame``: one whole tracker update in one call, built from the above, in named stages;
- ``arguments``: the named tuples the frame kernel and its stages pass (store, detections, settings);
- ``constants``: track states and the entries of the store's ``counts``;
- ``gather``: rows and entries by index or mask;
- ``jit``: the one JIT configuration (options, fastmath flags) every kernel compiles with;
- ``registry``: the identity registry's per-frame work and decisions (global ids);
- ``stale``: dropping cached kernels when any kernel source changed;
- ``cache``: the kernels' Numba cache folder, relocatable and readable when read-only.

Beside them, no kernels of their own: ``aot`` (loading the frame kernel
compiled ahead of time into the wheel, else the JIT) and ``build_aot``
(compiling it, run by ``hatch_build.py``).
"""

from .cache import register

register()  # before any kernel module is decorated: see cache.py
