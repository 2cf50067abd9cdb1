"""Hostile state files cost bounded memory: refused from their headers, under an address-space limit.

Each file is small on disk and declares something huge (a setting, the
uncompressed size of a member, the shape of a member). The loader must refuse
it with a ValueError before allocating what it declares; the test proves it by
loading inside a child whose address space is capped at its size after
imports plus 384 MiB (``RLIMIT_AS``): allocating what any of these files
declares would raise MemoryError there instead (or be killed).
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from deepsort_edge import DeepSORTTracker
from deepsort_edge.tracking.state import STATE_FORMAT, check_state
from deepsort_edge.tracking.state_file import DEFAULT_MAX_BYTES, read_state_file
from deepsort_edge.tracking.state_tracks import MAX_TRACKS
from deepsort_edge.tracking.tracks import TRACK_FIELDS
from tests.conftest import subprocess_env

resource = pytest.importorskip("resource", reason="RLIMIT_AS needs the POSIX resource module")

_CHUNK = 1 << 20


def _npy_header(dtype: str, shape: tuple[int, ...]) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _meta(**changes) -> dict:
    meta = {"format": STATE_FORMAT, "version": 2, "settings": {"appearance_mode": "gallery", "nn_budget": 4},
            "frame_count": 10, "next_id": 1, "embedding_dim": 8}
    meta.update(changes)
    return meta


def _write(path: Path, meta: dict | str, tracks: int, gallery: tuple[int, int], override: dict | None = None) -> Path:
    """A state file of ``tracks`` all-zero tracks (zeros compress ~1000:1); ``override``: name -> (dtype, shape)."""
    shapes = {name: (np.dtype(dtype).str, (tracks, *shape)) for name, (dtype, shape) in TRACK_FIELDS.items()}
    shapes["gallery"] = ("<f4", (tracks, *gallery))
    shapes.update(override or {})
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        text = np.array(meta if isinstance(meta, str) else json.dumps(meta))
        archive.writestr("meta.npy", _npy_header(text.dtype.str, ()) + text.tobytes())
        for name, (dtype, shape) in shapes.items():
            nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
            with archive.open(f"{name}.npy", "w", force_zip64=True) as fh:
                fh.write(_npy_header(dtype, shape))
                zeros = bytes(_CHUNK)
                for start in range(0, nbytes, _CHUNK):
                    fh.write(zeros[: min(_CHUNK, nbytes - start)])
    return path


def hostile_files(folder: Path) -> dict[str, tuple[Path, int, str]]:
    """name -> (file, max_bytes to load it with, the refusal expected)."""
    return {
        # The 2.6 KB file: nn_budget 1e9 and no embeddings (the check made a range that long).
        "nn_budget 1e9": (_write(folder / "budget.npz", _meta(settings={"appearance_mode": "gallery",
                          "nn_budget": 10**9}, embedding_dim=0), 0, (10**9, 0)),
                          DEFAULT_MAX_BYTES, "nn_budget must be <= 65536"),
        # A zip bomb: 512 MiB of gallery in about half a MiB.
        "zip bomb": (_write(folder / "bomb.npz", _meta(settings={"appearance_mode": "gallery", "nn_budget": 128},
                     embedding_dim=1024), 1024, (128, 1024)),
                     DEFAULT_MAX_BYTES, "declare 5.* bytes uncompressed, more than max_bytes"),
        # A 1 GiB member of the wrong shape, with max_bytes raised so that only its header can stop it.
        "wrong shape": (_write(folder / "shape.npz", _meta(), 2, (4, 8),
                        override={"covariance": ("<f8", (2**27, 1))}),
                        2**31, r"has shape \(134217728, 1\), expected \(2, 8, 8\)"),
        "too many tracks": (_write(folder / "tracks.npz", _meta(), 2, (4, 8),
                            override={"mean": ("<f8", (MAX_TRACKS + 1, 8))}),
                            2**31, "at most 1048576 tracks"),
        "wrong dtype": (_write(folder / "dtype.npz", _meta(), 2, (4, 8), override={"hits": ("<f8", (2,))}),
                        DEFAULT_MAX_BYTES, "must hold integers of at most 8 bytes, got dtype float64"),
        "deep meta": (_write(folder / "deep.npz", json.dumps(_meta(settings=0)).replace('"settings": 0', '"settings": ' + "[" * 5000 + "]" * 5000),
                      0, (4, 8)),
                      DEFAULT_MAX_BYTES, "member 'meta' nests too deeply"),
        # Within Python's recursion limit, but deeper than MAX_JSON_DEPTH (the header object + 9 lists).
        "meta 10 deep": (_write(folder / "deep10.npz", json.dumps(_meta(settings=0)).replace('"settings": 0', '"settings": ' + "[" * 9 + "]" * 9),
                         0, (4, 8)),
                         DEFAULT_MAX_BYTES, r"member 'meta' nests too deeply \(more than 8 levels\)"),
        # Deeper than a recursive walk could go, still accepted by json.loads.
        "meta 990 deep": (_write(folder / "deep990.npz", json.dumps(_meta(settings=0)).replace('"settings": 0', '"settings": ' + "[" * 989 + "]" * 989),
                          0, (4, 8)),
                          DEFAULT_MAX_BYTES, r"member 'meta' nests too deeply \(more than 8 levels\)"),
        "version true": (_write(folder / "true.npz", _meta(version=True), 0, (4, 8)),
                         DEFAULT_MAX_BYTES, "version True is not supported"),
    }


_CHILD = r"""
import json, resource, sys
from deepsort_edge import DeepSORTTracker
def vm_size():
    for line in open("/proc/self/status"):
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
limit = vm_size() + (384 << 20)
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
results = {}
for name, (path, max_bytes) in json.loads(sys.argv[1]).items():
    try:
        DeepSORTTracker.load(path, max_bytes=max_bytes)
        results[name] = "loaded"
    except ValueError as exc:
        results[name] = "ValueError: " + str(exc)
    except BaseException as exc:
        results[name] = type(exc).__name__ + ": " + str(exc)
print(json.dumps(results))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmSize from /proc")
def test_hostile_files_are_refused_from_their_headers_within_an_address_space_limit(tmp_path):
    files = hostile_files(tmp_path)
    sizes = {name: path.stat().st_size for name, (path, _, _) in files.items()}
    assert sizes["nn_budget 1e9"] < 4096 and sizes["zip bomb"] < 1 << 20 and sizes["wrong shape"] < 2 << 20
    good = tmp_path / "good.npz"
    tracker = DeepSORTTracker(minimum_consecutive_frames=1, appearance_mode="gallery", nn_budget=4)
    tracker.update_arrays(np.array([[0.0, 0.0, 10.0, 30.0]]), embeddings=np.eye(1, 8))
    tracker.save(good)
    jobs = {name: (str(path), max_bytes) for name, (path, max_bytes, _) in files.items()}
    jobs["good"] = (str(good), DEFAULT_MAX_BYTES)
    child = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(jobs)], capture_output=True, text=True,
                           env=subprocess_env(), timeout=600)
    assert child.returncode == 0, child.stderr[-3000:]
    results = json.loads(child.stdout.strip().splitlines()[-1])
    assert results.pop("good") == "loaded"  # the limit leaves room for a real load
    for name, (_, _, message) in files.items():
        assert results[name].startswith("ValueError: "), (name, results[name])
        assert re.search(message, results[name]), (name, results[name])


def test_a_large_gallery_of_one_track_allocates_one_slot(tmp_path):
    """One 64 MiB gallery must not become 64 slots of it (4 GiB) when loaded."""
    meta = _meta(settings={"appearance_mode": "gallery", "nn_budget": 2**16}, embedding_dim=256)
    path = _write(tmp_path / "one.npz", meta, 1, (2**16, 256))
    # All-zero rows fail the state's own checks; the point is what loading allocates first.
    state = read_state_file(path)
    assert state["tracks"]["gallery"].nbytes == 2**26
    with pytest.raises(ValueError):
        check_state(state)


@pytest.mark.parametrize("fault, message", [
    ("encrypted", "not an .npz archive"),
    ("bzip2 truncated", "not an .npz archive"),
])
def test_unreadable_archives_raise_value_error(tmp_path, fault, message):
    good = DeepSORTTracker().save(tmp_path / "good.npz")
    data = bytearray(good.read_bytes())
    bad = tmp_path / "bad.npz"
    if fault == "encrypted":
        # The general-purpose flag's bit 0 marks a member encrypted (zipfile raises RuntimeError).
        offset = data.index(b"PK\x03\x04")
        data[offset + 6] |= 1
        central = data.index(b"PK\x01\x02")
        data[central + 8] |= 1
    else:
        # Compression method 12 (bzip2) on a stored member: the stream does not decode.
        central = data.index(b"PK\x01\x02")
        data[central + 10:central + 12] = (12).to_bytes(2, "little")
        offset = data.index(b"PK\x03\x04")
        data[offset + 8:offset + 10] = (12).to_bytes(2, "little")
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=message):
        DeepSORTTracker.load(bad)


def test_version_true_is_not_version_1():
    state = DeepSORTTracker().state_dict()
    state["version"] = True
    with pytest.raises(ValueError, match="version True is not supported"):
        check_state(state)


def test_save_never_replaces_a_device_and_writes_through_a_symlink(tmp_path):
    import stat

    tracker = DeepSORTTracker()
    with pytest.raises(ValueError, match="/dev/null exists and is not a regular file"):
        tracker.save("/dev/null")
    assert stat.S_ISCHR(Path("/dev/null").stat().st_mode)
    link = tmp_path / "link.npz"
    link.symlink_to(tmp_path / "real.npz")
    tracker.save(link)
    assert link.is_symlink() and DeepSORTTracker.load(link).frame_count == 0


def test_the_state_file_names_still_import_from_the_state_module():
    from deepsort_edge.tracking import state, state_file, state_tracks
    from deepsort_edge.tracking.state import DEFAULT_MAX_BYTES as moved_limit
    from deepsort_edge.tracking.state import read_state_file as moved_reader

    assert moved_reader is state_file.read_state_file and moved_limit == state_file.DEFAULT_MAX_BYTES
    assert state.write_state_file is state_file.write_state_file and state.MAX_TRACKS == state_tracks.MAX_TRACKS
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        state.no_such_name  # noqa: B018
