"""Dropping compiled kernels whose sources changed.

Numba checks a cached function against its own source file only, so a
cached kernel that calls a kernel from another module (``frame`` calls them
all) would keep running the old code after that module is edited or
upgraded. A digest of every kernel source is kept beside the cache; when it
differs, every cached kernel of this package is dropped and compiles again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_STAMP = "deepsort_edge-kernels.sha256"
# Modules here that load or build the compiled kernels but hold no kernel source.
_NOT_KERNELS = frozenset({"aot.py", "build_aot.py"})


def kernel_sources() -> list[Path]:
    """The kernel source files, in name order."""
    return sorted(path for path in _HERE.glob("*.py") if path.name not in _NOT_KERNELS)


def source_digest() -> str:
    """SHA-256 over the kernel sources (names and contents), in name order."""
    digest = hashlib.sha256()
    for path in kernel_sources():
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def drop_stale(dispatcher: object) -> bool:
    """Delete this package's cached kernels in ``dispatcher``'s cache folder if the sources changed.

    Returns True when something was dropped. Does nothing without the JIT
    (``NUMBA_DISABLE_JIT``) or where the folder cannot be written (numba
    then cannot cache there either).
    """
    cache = getattr(dispatcher, "_cache", None)
    folder = getattr(cache, "cache_path", None)
    if folder is None:
        return False
    folder = Path(folder)
    stamp = folder / _STAMP
    digest = source_digest()
    try:
        if stamp.read_text() == digest:
            return False
    except OSError:
        pass  # no stamp yet: caches written before it are of unknown sources
    modules = {path.stem for path in kernel_sources()}
    dropped = False
    try:
        for entry in folder.glob("*.nb[ic]"):
            if entry.name.split(".", 1)[0] in modules:
                entry.unlink(missing_ok=True)
                dropped = True
        folder.mkdir(parents=True, exist_ok=True)
        stamp.write_text(digest)
    except OSError:
        pass
    return dropped
