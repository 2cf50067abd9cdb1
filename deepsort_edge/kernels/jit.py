"""The kernels' one JIT configuration: every kernel is compiled through :func:`kernel`.

Options shared by all kernels: ``cache=True`` (compiled code is kept in
``__pycache__``; ``stale.py`` drops it when any kernel source changes),
``nogil=True`` (stream threads run kernels side by side) and
``error_model="numpy"`` (a division by zero gives inf or NaN instead of
raising, so loops carry no exception checks).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba

#: LLVM fast-math flags for the float32 appearance sums: reassociation lets them vectorise.
#: No ``nnan``/``ninf``: with those, LLVM may drop the NaN and infinity checks.
FASTMATH = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})

OPTIONS: dict[str, Any] = {"cache": True, "nogil": True, "error_model": "numpy"}


def kernel(function: Callable | None = None, *, fastmath: bool = False, inline: bool = False) -> Any:
    """Compile ``function`` with the kernels' options: ``@kernel``, or ``@kernel(fastmath=True)``.

    ``fastmath`` applies :data:`FASTMATH`. ``inline`` inlines the function
    into every caller at Numba's IR level: for small helpers called per pair,
    where a call would cost more than the work, and for the frame kernel's
    stages, which then compile as one function (a compiled callee is
    optimised again inside each caller, so every level of calls adds compile
    time).

    Example:
        >>> @kernel(fastmath=True)
        ... def total(values):
        ...     return values.sum()
    """
    options = dict(OPTIONS)
    if fastmath:
        options["fastmath"] = set(FASTMATH)  # numba takes a set, not a frozenset
    if inline:
        options["inline"] = "always"
    decorate = numba.njit(**options)
    return decorate if function is None else decorate(function)
