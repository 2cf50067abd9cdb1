"""The JIT kernels' Numba cache (``kernels/cache.py``): relocatable, and read when read-only.

The reference is Numba's own bookkeeping in a fresh process: each dispatcher's
``stats`` counts the signatures it loaded from the cache (hits) and those it
had to compile (misses). A cache baked by ``deepsort-edge warmup --jit`` must
give hits and no misses to a copy of the package at another path, and to the
original when the cache folder is read-only, without writing a byte there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from deepsort_edge.kernels import cache as kernel_cache
from deepsort_edge.kernels import stale
from deepsort_edge.kernels.frame import track_frame

from .conftest import PACKAGE_PARENT, subprocess_env

# A first tracked frame in a fresh process, then Numba's per-dispatcher cache stats of every kernel.
_PROBE = r"""
import json, sys
import numpy as np
from numba.core.dispatcher import Dispatcher
from deepsort_edge import DeepSORTTracker
import deepsort_edge.kernels as kernels
tracker = DeepSORTTracker()
tracker.update_arrays(np.array([[0.0, 0.0, 10.0, 20.0]]), np.array([0.9]), np.ones((1, 4), np.float32))
hits = misses = 0
for name, module in list(sys.modules.items()):
    if name.startswith("deepsort_edge.kernels."):
        for value in vars(module).values():
            if isinstance(value, Dispatcher) and value.py_func.__module__ == name:
                hits += sum(value.stats.cache_hits.values())
                misses += sum(value.stats.cache_misses.values())
from deepsort_edge.kernels.frame import track_frame
print(json.dumps({"hits": hits, "misses": misses, "path": track_frame.stats.cache_path,
                  "package": kernels.__file__}))
"""


def _probe(pythonpath: Path, cache: Path, read_only: bool = False) -> dict:
    """Run the probe with ``cache`` as ``NUMBA_CACHE_DIR``; ``read_only``: on a read-only mount of it."""
    env = subprocess_env(PYTHONPATH=str(pythonpath), NUMBA_CACHE_DIR=str(cache), DEEPSORT_EDGE_KERNELS="jit")
    command = [sys.executable, "-c", _PROBE]
    if read_only and os.geteuid() == 0:  # root writes through permissions: a read-only bind mount instead
        command = ["unshare", "--mount", "sh", "-c", _READ_ONLY_MOUNT, "sh", str(cache), *command]
    out = subprocess.run(command, env=env, cwd=tempfile.gettempdir(), capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


# In a private mount namespace: $1 bound over itself read-only, then the rest of the command.
_READ_ONLY_MOUNT = 'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" && shift && exec "$@"'
# The same for every folder before "--".
_READ_ONLY_MOUNTS = ('while [ "$1" != -- ]; do mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" || exit 97; '
                     'shift; done; shift; exec "$@"')


def _can_mount_read_only() -> bool:
    try:
        return subprocess.run(["unshare", "--mount", "true"], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _files(folder: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def baked_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache filled by ``deepsort-edge warmup --jit`` (float32 galleries), as an image build would."""
    cache = tmp_path_factory.mktemp("baked") / "numba-cache"
    out = subprocess.run([sys.executable, "-m", "deepsort_edge.cli", "warmup", "--jit", "--cache-dir", str(cache),
                          "--gallery-dtype", "float32"], env=subprocess_env(), cwd=tempfile.gettempdir(),
                         capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stderr
    assert f"Numba cache: {cache / kernel_cache.FOLDER}" in out.stdout
    return cache


def test_kernels_use_the_package_cache_folder(monkeypatch, tmp_path):
    assert isinstance(track_frame._cache, kernel_cache.KernelCache)
    monkeypatch.setattr(kernel_cache.config, "CACHE_DIR", str(tmp_path))
    here = Path(stale.__file__)
    assert kernel_cache.cache_folder(here) == tmp_path / kernel_cache.FOLDER
    assert kernel_cache.cache_folder("/elsewhere/deepsort_edge/kernels/frame.py") == tmp_path / kernel_cache.FOLDER
    monkeypatch.setattr(kernel_cache.config, "CACHE_DIR", "")
    assert kernel_cache.cache_folder(here) == here.parent / "__pycache__"


def test_every_cached_kernel_module_hands_its_kernels_the_package_cache():
    import importlib
    import pkgutil

    import deepsort_edge.kernels as kernels
    from numba.core.dispatcher import Dispatcher

    plain = []
    for info in pkgutil.iter_modules(kernels.__path__):
        module = importlib.import_module(f"{kernels.__name__}.{info.name}")
        for name, value in vars(module).items():
            cache = getattr(value, "_cache", None)  # cache=True: a FunctionCache; else a NullCache
            if (isinstance(value, Dispatcher) and value.py_func.__module__ == module.__name__
                    and isinstance(cache, kernel_cache.caching.FunctionCache)
                    and not isinstance(cache, kernel_cache.KernelCache)):
                plain.append(f"{module.__name__}.{name}")
    assert not plain, f"call use_kernel_cache() at the end of these kernels' modules: {plain}"


def test_locator_reads_a_read_only_folder_only_when_it_holds_kernels(monkeypatch, tmp_path):
    monkeypatch.setattr(kernel_cache.config, "CACHE_DIR", str(tmp_path))
    py_file = track_frame.py_func.__code__.co_filename
    monkeypatch.setattr(kernel_cache.KernelLocator, "ensure_cache_path", _raise_read_only)
    assert kernel_cache.KernelLocator.from_function(track_frame.py_func, py_file) is None  # nothing there
    # Nowhere to write at all: the last resort still gives a locator (compiled in memory, no import error).
    last = kernel_cache.LastResortLocator.from_function(track_frame.py_func, py_file)
    assert last is not None and last.get_cache_path() == str(tmp_path / kernel_cache.FOLDER)
    folder = tmp_path / kernel_cache.FOLDER
    folder.mkdir()
    (folder / "kalman.kalman_predict-40.py311.nbi").write_bytes(b"")  # a baked cache (of another kernel)
    locator = kernel_cache.KernelLocator.from_function(track_frame.py_func, py_file)
    assert locator is not None and locator.get_cache_path() == str(folder)
    assert locator.get_source_stamp() == stale.source_digest()
    assert locator.get_disambiguator() == str(track_frame.py_func.__code__.co_firstlineno)
    # A function outside the package: Numba's own locators, first and last.
    for cls in (kernel_cache.KernelLocator, kernel_cache.LastResortLocator):
        assert cls.from_function(shutil.copyfile, shutil.__file__) is None


def test_locators_are_registered_once_around_numbas_own():
    classes = kernel_cache.caching.CacheImpl._locator_classes
    assert classes[0] is kernel_cache.KernelLocator and classes[-1] is kernel_cache.LastResortLocator
    kernel_cache.register()
    assert kernel_cache.caching.CacheImpl._locator_classes == classes


def _raise_read_only(self: object) -> None:
    raise PermissionError(30, "Read-only file system")


def test_a_failed_save_is_skipped_not_raised(monkeypatch):
    cache = kernel_cache.KernelCache(track_frame.py_func)

    def read_only(*args: object) -> None:
        raise PermissionError(30, "Read-only file system")

    monkeypatch.setattr(kernel_cache.caching.FunctionCache, "save_overload", read_only)
    assert cache.save_overload(None, None) is None


@pytest.mark.slow
def test_a_baked_cache_serves_a_relocated_copy_of_the_package(baked_cache, tmp_path):
    before = _files(baked_cache)
    elsewhere = tmp_path / "site" / "deepsort_edge"
    # Fresh modification times (copyfile), another absolute path: what Numba's own keys changed on.
    shutil.copytree(PACKAGE_PARENT / "deepsort_edge", elsewhere, copy_function=shutil.copyfile,
                    ignore=shutil.ignore_patterns("__pycache__", "_frame_aot*"))
    result = _probe(elsewhere.parent, baked_cache)
    assert Path(result["package"]).resolve().is_relative_to(elsewhere)
    assert result["path"] == str(baked_cache / kernel_cache.FOLDER)
    assert result["hits"] >= 1 and result["misses"] == 0, result
    assert _files(baked_cache) == before


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
def test_a_read_only_baked_cache_loads_without_compiling(baked_cache, tmp_path):
    if os.geteuid() == 0 and not _can_mount_read_only():
        pytest.skip("as root, a read-only cache needs a read-only bind mount (unshare --mount) here")
    cache = tmp_path / "read-only" / "numba-cache"  # the cache moves too: its folder names no path
    shutil.copytree(baked_cache, cache)
    for path in [cache, *cache.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    before = _files(cache)
    try:
        result = _probe(PACKAGE_PARENT, cache, read_only=True)
    finally:
        for path in [cache, *cache.rglob("*")]:
            path.chmod(0o755)
    assert result["path"] == str(cache / kernel_cache.FOLDER)
    assert result["hits"] >= 1 and result["misses"] == 0, result
    assert _files(cache) == before


def test_nothing_writable_still_imports_and_keeps_kernels_in_memory(tmp_path):
    """Numba raised "no locator available" at import when no cache folder could be written."""
    if os.geteuid() != 0 or not _can_mount_read_only():
        pytest.skip("needs root and unshare --mount to make the package, HOME and the cache folder read-only")
    cache, home = tmp_path / "cache", tmp_path / "home"
    cache.mkdir()
    home.mkdir()
    probe = ("from deepsort_edge.kernels.frame import track_frame\n"
             "print(type(track_frame._cache._impl.locator).__name__, track_frame._cache.cache_path)")
    env = subprocess_env(NUMBA_CACHE_DIR=str(cache), HOME=str(home), XDG_CACHE_HOME=str(home))
    out = subprocess.run(["unshare", "--mount", "sh", "-c", _READ_ONLY_MOUNTS, "sh", str(PACKAGE_PARENT),
                          str(cache), str(home), "--", sys.executable, "-c", probe],
                         env=env, cwd=tempfile.gettempdir(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["LastResortLocator", str(cache / kernel_cache.FOLDER)]
