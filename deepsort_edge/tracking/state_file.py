"""The tracker state file: an ``.npz`` archive written atomically and read without unpickling.

File format (:func:`write_state_file` / :func:`read_state_file`), version 2
(version 1, before track classes and the newer settings, is still read):
an ``.npz`` archive (a zip of ``.npy`` arrays, readable by ``numpy.load(path,
allow_pickle=False)``) holding

- ``meta``: a 0-d unicode array with a JSON object: ``format``
  (``"deepsort-edge.tracker-state"``), ``version`` (2), ``settings`` (every
  tracker setting by name), ``frame_count``, ``next_id``, ``embedding_dim``
  and ``written_by`` (the library version, informational); optionally
  ``score_window``, the scores the live score calibration ranks against
  (at most :data:`~deepsort_edge.tracking.score_calibration.WINDOW` finite numbers, oldest first), and
  ``activation_threshold``, the activation threshold in force (``typical_score``,
  :mod:`~deepsort_edge.tracking.score_split`; absent: taken from the window);
- one array per track field, live tracks in birth order: ``mean (T, 8)``
  float64, ``covariance (T, 8, 8)`` float64, ``track_id (T,)`` int64 (0 while
  tentative), ``state (T,)`` int8 (0 tentative, 1 confirmed), ``hits``,
  ``age``, ``time_since_update``, ``gallery_count``, ``gallery_head`` ``(T,)``
  int32, ``class_id (T,)`` int64, and ``gallery (T, G, D)`` float32 (``G`` = ``nn_budget`` in gallery
  mode, 1 in EMA mode; ``D`` = ``embedding_dim``).

Reading never unpickles, and its cost is bounded before anything is
allocated: the uncompressed sizes the zip headers declare must add up to at
most ``max_bytes`` (default :data:`DEFAULT_MAX_BYTES`, 256 MiB; a zip bomb is
refused from its headers, and no member is ever read past its declared size);
``meta`` is at most :data:`MAX_META_BYTES` of JSON nested at most
:data:`MAX_JSON_DEPTH` deep; its declared sizes (settings such as
``nn_budget``, ``embedding_dim``) are checked against their limits first; then
every array's ``.npy`` header is checked (dtype kind, exact shape: ``T`` rows,
``T`` at most :data:`~deepsort_edge.tracking.state_tracks.MAX_TRACKS`) before its data is read. Peak memory while
loading is a small multiple (about 3x) of the arrays' size. Every refusal is a
``ValueError``.
"""

from __future__ import annotations

import json
import os
import uuid
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..appearance.adaptation_state import INTEGER_ARRAYS, STATE_ARRAYS
from ..appearance.evidence_pairs import PAIR_CAPACITY
from .state import ARRAY_NAMES, REQUIRED_FIELDS, check_header
from .state_tracks import MAX_TRACKS
from .tracks import TRACK_FIELDS

# Default cap on the uncompressed size of a state file's arrays (1,000 tracks
# of 100 x 512-d float32 galleries are 205 MB).
DEFAULT_MAX_BYTES = 2**28
# The JSON header: its size and how deep it may nest (a real one is 2 deep).
MAX_META_BYTES = 2**20
MAX_JSON_DEPTH = 8


def write_state_file(state: Mapping[str, Any], path: str | Path) -> Path:
    """Write a state dict as a state file of the current version (atomically: all or nothing).

    Args:
        state: ``DeepSORTTracker.state_dict()``.
        path: Where to write; the name is used as given (``.npz`` is customary).

    Returns:
        The path written.

    Raises:
        ValueError: ``path`` exists and is no regular file (a device, a folder).
    """
    path = Path(path)
    target = Path(os.path.realpath(path))  # through a symlink: the file it names is replaced
    if target.exists() and not target.is_file():
        raise ValueError(f"{path} exists and is not a regular file; a state file replaces a file")
    meta = {k: state[k] for k in REQUIRED_FIELDS if k != "tracks"}
    if "score_window" in state:  # a JSON list: exact for float64, at most 2048 numbers
        meta["score_window"] = np.asarray(state["score_window"], dtype=np.float64).tolist()
    if state.get("activation_threshold") is not None:
        meta["activation_threshold"] = float(state["activation_threshold"])
    meta["written_by"] = f"deepsort-edge {__version__}"
    arrays = {name: np.ascontiguousarray(state["tracks"][name]) for name in ARRAY_NAMES}
    if "adaptation" in state:  # the scene adapter: its numbers in the header, its arrays as members
        meta["adaptation"] = state["adaptation"]["numbers"]
        arrays.update({_ADAPTATION_MEMBER + name: np.ascontiguousarray(value)
                       for name, value in state["adaptation"]["arrays"].items()})
    text = json.dumps(meta, allow_nan=False, sort_keys=True)
    # A fresh name beside the target, then a rename: readers never see half a file.
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with tmp.open("xb") as fh:
            np.savez(fh, meta=np.array(text), **arrays)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def read_state_file(path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, Any]:
    """Read a state file written by :func:`write_state_file`, without unpickling.

    Its cost is bounded before anything is allocated (see the module
    docstring): the declared uncompressed sizes against ``max_bytes``, the
    header's settings and sizes against their limits, each array's ``.npy``
    header (dtype, exact shape) against what the header implies. The result
    still has to pass :func:`check_state` (``load_state_dict`` does that).

    Args:
        path: The file.
        max_bytes: Refuse files whose members declare more than this many
            uncompressed bytes in all.

    Raises:
        FileNotFoundError: No such file.
        ValueError: Not a state file, a member is malformed, or a size is
            beyond its limit.

    Example:
        >>> read_state_file("no-such-file.npz")
        Traceback (most recent call last):
        ...
        FileNotFoundError: tracker state file not found: no-such-file.npz
    """
    path = Path(path)
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise ValueError(f"max_bytes must be an int >= 1, got {max_bytes!r}")
    if not path.is_file():
        raise FileNotFoundError(f"tracker state file not found: {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            members = _members(archive, path, max_bytes)
            header = _read_meta(archive, members["meta"], path)
            _, gallery_size, embedding_dim = check_header({**header, "tracks": None})
            arrays: dict[str, np.ndarray] = {}
            for name in ARRAY_NAMES:  # "mean" first: it fixes the track count
                count = arrays["mean"].shape[0] if arrays else None
                shape = (gallery_size, embedding_dim) if name == "gallery" else TRACK_FIELDS[name][1]
                integer = name != "gallery" and np.issubdtype(TRACK_FIELDS[name][0], np.integer)
                arrays[name] = _read_member(archive, members[name], path, count, shape, integer)
            if "adaptation" in header:
                header["adaptation"] = _read_adaptation(archive, members, path, header["adaptation"], embedding_dim)
            elif any(name.startswith(_ADAPTATION_MEMBER) for name in members):
                raise ValueError("holds scene-adaptation arrays but no 'adaptation' header")
    except ValueError as exc:
        message = str(exc)
        raise ValueError(message if message.startswith(str(path)) else f"{path}: {message}") from None
    except PermissionError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError, OSError,
            zlib.error) as exc:  # corrupt, encrypted, unsupported compression, truncated
        raise ValueError(f"{path} is not a deepsort-edge state file (not an .npz archive: {type(exc).__name__}: {exc})") from None
    return {**header, "tracks": arrays}


_ADAPTATION_MEMBER = "adaptation_"


def _read_adaptation(
    archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], path: Path, numbers: object, embedding_dim: int
) -> dict[str, Any]:
    """The scene adapter's arrays, their shapes fixed by its header numbers (checked first)."""
    if not isinstance(numbers, dict):
        raise ValueError("header field 'adaptation' must be a JSON object")
    sizes = {"C": PAIR_CAPACITY}
    for axis, name in (("W", "width"), ("K", "dims"), ("P", "basis_dims")):
        value = numbers.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= max(embedding_dim, 0):
            raise ValueError(f"header field 'adaptation.{name}' must be an integer in [0, {embedding_dim}]")
        sizes[axis] = value
    arrays: dict[str, np.ndarray] = {}
    for name, axes in STATE_ARRAYS.items():  # "average_ids" before "averages": it fixes N
        info = members.get(_ADAPTATION_MEMBER + name)
        if info is None:
            raise ValueError(f"lacks member {_ADAPTATION_MEMBER + name!r}")
        count = None if axes[0] == "N" and "N" not in sizes else sizes[axes[0]]
        arrays[name] = _read_member(archive, info, path, count, tuple(sizes[a] for a in axes[1:]),
                                    name in INTEGER_ARRAYS)
        if name == "average_ids":
            sizes["N"] = arrays[name].shape[0]
    return {"numbers": numbers, "arrays": arrays}


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed")


def _members(archive: zipfile.ZipFile, path: Path, max_bytes: int) -> dict[str, zipfile.ZipInfo]:
    """The members by name, their declared uncompressed sizes within ``max_bytes`` (nothing read yet)."""
    members: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        known = name in ("meta", *ARRAY_NAMES) or (
            name.startswith(_ADAPTATION_MEMBER) and name[len(_ADAPTATION_MEMBER):] in STATE_ARRAYS
        )
        if not known or name in members:
            raise ValueError(f"{path}: unexpected member {info.filename!r} in a tracker state file")
        members[name] = info
    missing = [n for n in ("meta", *ARRAY_NAMES) if n not in members]
    if missing:
        raise ValueError(f"{path} is not a deepsort-edge state file (lacks {missing})")
    total = sum(info.file_size for info in members.values())
    if total > max_bytes:
        raise ValueError(f"{path}: members declare {total} bytes uncompressed, more than max_bytes={max_bytes}")
    if members["meta"].file_size > MAX_META_BYTES:
        raise ValueError(f"{path}: member 'meta' declares {members['meta'].file_size} bytes, "
                         f"more than the limit of {MAX_META_BYTES}")
    return members


def _read_meta(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> dict[str, Any]:
    """The JSON header held by member ``meta`` (a 0-d unicode array)."""
    meta = _read_member(archive, info, path, None, None, False)
    try:
        header = json.loads(str(meta), parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError(f"{path}: member 'meta' nests too deeply") from None
    except ValueError as exc:
        raise ValueError(f"{path}: member 'meta' is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: member 'meta' must hold a JSON object")
    if _depth(header) > MAX_JSON_DEPTH:
        raise ValueError(f"{path}: member 'meta' nests too deeply (more than {MAX_JSON_DEPTH} levels)")
    header.pop("written_by", None)
    return header


def _depth(value: object) -> int:
    """How deep a parsed JSON value nests (a number or string: 0).

    A walk with an explicit stack: ``json.loads`` accepts headers nested
    deeper than Python's recursion limit allows a recursive walk.
    """
    deepest = 0
    stack = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level + 1)
            stack.extend((child, level + 1) for child in item)
    return deepest


def _read_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path,
    count: int | None, shape: tuple[int, ...] | None, integer: bool,
) -> np.ndarray:
    """One ``.npy`` member; its header checked before its data is read.

    ``shape`` None: ``meta`` (a unicode scalar). Otherwise the array must hold
    integers (``integer``) or real numbers of at most 8 bytes, with shape
    ``(count, *shape)`` (``count`` None: any count up to :data:`MAX_TRACKS`).
    """
    fmt = np.lib.format
    name = info.filename
    try:
        with archive.open(info) as fh:
            version = fmt.read_magic(fh)
            if version not in ((1, 0), (2, 0)):
                raise ValueError(f"unsupported .npy format version {version}")
            reader = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            found, fortran, dtype = reader(fh, max_header_size=10_000)
            if dtype.hasobject:
                raise ValueError("object arrays are not allowed")
            if shape is None:
                if dtype.kind != "U" or found != ():
                    raise ValueError(f"must be a JSON string (a unicode scalar), got dtype {dtype} shape {found}")
            else:
                if dtype.kind not in ("iu" if integer else "iuf") or dtype.itemsize > 8:
                    wanted = "integers" if integer else "real numbers"
                    raise ValueError(f"must hold {wanted} of at most 8 bytes, got dtype {dtype}")
                rows = found[0] if len(found) == len(shape) + 1 else -1
                expected = (rows if count is None else count, *shape)
                if found != expected or not 0 <= expected[0] <= MAX_TRACKS:
                    raise ValueError(f"has shape {found}, expected {expected} (at most {MAX_TRACKS} tracks)")
            nbytes = int(np.prod(found, dtype=np.float64)) * dtype.itemsize
            if nbytes > info.file_size:
                raise ValueError(f"header claims shape {found}, more data than the member holds")
            data = bytearray(nbytes)
            if fh.readinto(data) != nbytes:
                raise ValueError("member is truncated")
    except (ValueError, EOFError) as exc:
        raise ValueError(f"{path}: member {name!r} is not a valid array ({exc})") from None
    return np.frombuffer(data, dtype=dtype).reshape(found, order="F" if fortran else "C")
