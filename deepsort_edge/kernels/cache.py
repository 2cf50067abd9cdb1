"""Where the JIT kernels' Numba cache lives: relocatable, and readable when read-only.

Numba files a cached function under ``NUMBA_CACHE_DIR`` in a folder named after
the hash of its source folder's absolute path, and never uses a folder it
cannot write. So a cache baked into an image at one path missed at any other,
and a read-only cache was skipped (compiled again, into the next writable
place). For this package's kernels:

- the folder is ``$NUMBA_CACHE_DIR/deepsort_edge-kernels`` (else the kernels'
  ``__pycache__``, as before): the same wherever the package is installed;
- a cache entry is valid for the digest of all kernel sources
  (``stale.source_digest``), not one file's path or time: a moved or copied
  package loads it, an edited kernel of any module misses it;
- a folder that cannot be written is still read when it holds cached kernels
  (one baked by ``deepsort-edge warmup --jit``); what misses there is compiled
  and kept in memory only, never an error. Where nothing at all can be
  written (``docker run --read-only`` without a baked cache) the kernels
  compile in memory instead of failing to import.

Numba's own choices stay for every other function, and for these kernels when
their folder neither is writable nor holds kernels (Numba's user-wide cache).
:func:`register` puts the locators in Numba's list (they answer only for this
package's kernel files) before the kernel modules are decorated;
:func:`use_kernel_cache` gives the decorated kernels a cache whose failed
saves are skipped. What a cache entry fits is still Numba's key: the
signature, the CPU name and features (``NUMBA_CPU_NAME=generic`` for one
image on many CPUs), the bytecode and the Numba and Python versions.

Example:
    >>> from deepsort_edge.kernels.frame import track_frame
    >>> track_frame._cache.cache_path.endswith(("deepsort_edge-kernels", "__pycache__"))
    True
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from numba.core import caching, config
from numba.core.dispatcher import Dispatcher

from .stale import source_digest

#: The folder under ``NUMBA_CACHE_DIR`` that holds this package's kernels.
FOLDER = "deepsort_edge-kernels"
_HERE = Path(__file__).resolve().parent


def cache_folder(py_file: str | os.PathLike[str]) -> Path:
    """The cache folder of the kernels in ``py_file``: under ``NUMBA_CACHE_DIR`` when set, else ``__pycache__``."""
    return Path(config.CACHE_DIR, FOLDER) if config.CACHE_DIR else Path(py_file).parent / "__pycache__"


class KernelLocator(caching._CacheLocator):
    """Numba cache locator for this package's kernel modules (every other file: None, Numba's own)."""

    def __init__(self, py_func: object, py_file: str) -> None:
        self._lineno = py_func.__code__.co_firstlineno
        self._path = str(cache_folder(py_file))

    def get_cache_path(self) -> str:
        return self._path

    def get_source_stamp(self) -> str:
        return source_digest()  # every kernel source: frame's cache depends on all it calls

    def get_disambiguator(self) -> str:
        return str(self._lineno)

    @classmethod
    def from_function(cls, py_func: object, py_file: str) -> KernelLocator | None:
        if Path(py_file).resolve().parent != _HERE:
            return None
        self = cls(py_func, py_file)
        try:
            self.ensure_cache_path()  # writable: load and save here
            return self
        except OSError:
            pass
        # Read-only: used when it holds cached kernels (baked), else Numba's next choice.
        return self if any(Path(self._path).glob("*.nbi")) else None


class LastResortLocator(KernelLocator):
    """After Numba's own locators: no writable place anywhere, so the kernels compile in memory (no import error)."""

    @classmethod
    def from_function(cls, py_func: object, py_file: str) -> KernelLocator | None:
        return cls(py_func, py_file) if Path(py_file).resolve().parent == _HERE else None


def register() -> None:
    """Put :class:`KernelLocator` first and :class:`LastResortLocator` last in Numba's locator list (once).

    Both answer only for this package's kernel files. Called by
    ``kernels/__init__.py``, before any kernel module is decorated.
    """
    classes = caching.CacheImpl._locator_classes
    if KernelLocator not in classes:
        caching.CacheImpl._locator_classes = [KernelLocator, *classes, LastResortLocator]


class KernelCache(caching.FunctionCache):
    """Numba's function cache through :class:`KernelLocator`; a failed save (read-only) is skipped."""

    _impl_class = caching.CompileResultCacheImpl

    def save_overload(self, sig: object, data: object) -> None:
        try:
            super().save_overload(sig, data)
        except OSError:
            pass  # a read-only cache: the compiled kernel stays in this process's memory


def use_kernel_cache() -> int:
    """Give every cached kernel of this package's imported modules a :class:`KernelCache`; returns how many.

    Called at the end of ``frame`` (which imports every kernel the tracker uses) and of
    ``registry`` (loaded on its own), before any of them runs. A user's
    ``NUMBA_CACHE_LOCATOR_CLASSES`` wins.
    """
    if config.CACHE_LOCATOR_CLASSES:
        return 0
    count = 0
    prefix = f"{__package__}."
    for name, module in list(sys.modules.items()):
        if not name.startswith(prefix) or module is None:
            continue
        for value in vars(module).values():
            cache = getattr(value, "_cache", None)
            if (isinstance(value, Dispatcher) and value.py_func.__module__ == name
                    and isinstance(cache, caching.FunctionCache) and not isinstance(cache, KernelCache)):
                value._cache = KernelCache(value.py_func)
                count += 1
    return count
