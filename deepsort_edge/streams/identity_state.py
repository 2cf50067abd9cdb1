"""The identity registry's state: a plain-data ``state_dict``, checked on the way back, and ``.npz`` files.

``state_dict(reg)`` gives ``{"meta": JSON-ready dict, "arrays": {name: array}}``
(the live tracklets and identities, slots renumbered); :func:`from_state`
rebuilds a registry from one, checking every field (it trusts nothing: shapes,
dtypes, ranges, cross references); :func:`write_npz` / :func:`read_npz` store it
without pickle.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ..tracking.settings import IdentitySettings
from .identity_store import FINAL, IDENTITY_FIELDS, NEVER, PENDING, TRACKLET_FIELDS

__all__ = ["IDENTITY_STATE_FORMAT", "IDENTITY_STATE_VERSION", "from_state", "read_npz", "state_dict", "write_npz"]

IDENTITY_STATE_FORMAT = "deepsort-edge.identity-state"
IDENTITY_STATE_VERSION = 1

T = TypeVar("T")


def state_dict(reg: Any) -> dict[str, Any]:
    """Everything needed to resume: settings, streams, identities and tracklets (plain data)."""
    t_live = np.flatnonzero(reg.t_used)
    i_live = np.flatnonzero(reg.i_gid > 0)
    reg._refresh_samples()
    i_index = np.full(max(reg._i_cap, 1), -1, dtype=np.int64)
    i_index[i_live] = np.arange(i_live.size)
    t_index = np.full(max(reg._t_cap, 1), -1, dtype=np.int64)
    t_index[t_live] = np.arange(t_live.size)
    arrays = {name: getattr(reg, name)[t_live].copy() for name in TRACKLET_FIELDS}
    arrays.update({name: getattr(reg, name)[i_live].copy() for name in IDENTITY_FIELDS})
    # Slots become positions in the saved arrays.
    arrays["t_ident"] = np.where(arrays["t_ident"] >= 0, i_index[np.maximum(arrays["t_ident"], 0)], -1)
    arrays["i_owner"] = np.where(arrays["i_owner"] >= 0, t_index[np.maximum(arrays["i_owner"], 0)], -1)
    meta = {
        "format": IDENTITY_STATE_FORMAT, "version": IDENTITY_STATE_VERSION,
        "settings": reg.settings.to_dict(), "overlaps": sorted([list(p) for p in reg.overlaps]),
        "topology": None if reg.topology is None else [[a, b, lo, hi] for (a, b), (lo, hi)
                                                        in sorted(reg.topology.items())],
        "streams": list(reg.streams), "stream_time": [None if t == NEVER else t for t in reg._stream_time],
        "dim": reg._dim, "next_gid": reg._next_gid, "now": None if reg._now == NEVER else reg._now,
    }
    return {"meta": meta, "arrays": arrays}


def write_npz(state: Mapping[str, Any], path: Path) -> Path:
    """Write a :func:`state_dict` to ``path`` as a pickle-free ``.npz``, atomically (temporary file, rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with tmp.open("xb") as fh:
            np.savez(fh, meta=np.array(json.dumps(state["meta"], allow_nan=False)), **state["arrays"])
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def read_npz(path: Path) -> dict[str, Any]:
    """The state in a :func:`write_npz` file (read without unpickling; checked later by :func:`from_state`)."""
    if not path.is_file():
        raise FileNotFoundError(f"identity state file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (ValueError, OSError) as exc:
        raise ValueError(f"{path} is not an identity state file ({exc})") from None
    meta = arrays.pop("meta", None)
    if meta is None or meta.dtype.kind != "U" or meta.ndim != 0:
        raise ValueError(f"{path} is not an identity state file (no JSON 'meta' member)")
    return {"meta": json.loads(str(meta)), "arrays": arrays}


def from_state(cls: type[T], state: Mapping[str, Any]) -> T:
    """A registry rebuilt from a state dict, checking every field (trusts nothing)."""
    try:
        return _rebuild(cls, state)
    except (TypeError, KeyError, IndexError, AttributeError) as exc:  # a field of the wrong kind or shape
        raise ValueError(f"identity state is malformed ({type(exc).__name__}: {exc})") from None


def _rebuild(cls: type[T], state: Mapping[str, Any]) -> T:
    if not isinstance(state, Mapping) or not isinstance(state.get("meta"), Mapping) or \
            not isinstance(state.get("arrays"), Mapping):
        raise ValueError("identity state must be a mapping with 'meta' and 'arrays'")
    meta, arrays = state["meta"], state["arrays"]
    if meta.get("format") != IDENTITY_STATE_FORMAT or meta.get("version") != IDENTITY_STATE_VERSION:
        raise ValueError(f"not an identity state (format {meta.get('format')!r}, version {meta.get('version')!r})")
    topology = meta.get("topology")
    if topology is not None:
        topology = {(a, b): (lo, hi) for a, b, lo, hi in topology}
    reg = cls(IdentitySettings.from_dict(meta.get("settings", {})),
                           overlaps=[tuple(p) for p in meta.get("overlaps", [])], topology=topology)
    streams = meta.get("streams")
    if not isinstance(streams, list) or not all(isinstance(s, str) for s in streams) or \
            len(set(streams)) != len(streams):
        raise ValueError("identity state field 'streams' must be a list of distinct str")
    for sid in streams:
        reg._add_stream(sid)
    times = meta.get("stream_time")
    if not isinstance(times, list) or len(times) != len(streams):
        raise ValueError("identity state field 'stream_time' must have one entry per stream")
    reg._stream_time = [NEVER if t is None else float(t) for t in times]
    dim, next_gid = meta.get("dim"), meta.get("next_gid")
    if not isinstance(dim, int) or dim < 0 or not isinstance(next_gid, int) or next_gid < 1:
        raise ValueError("identity state fields 'dim' and 'next_gid' must be integers (>= 0, >= 1)")
    reg._now = NEVER if meta.get("now") is None else float(meta["now"])
    reg._next_gid = next_gid
    if dim:
        reg._set_dim(dim)
    n_t = _rows(arrays, "t_stream")
    n_i = _rows(arrays, "i_gid")
    for fields, count in ((TRACKLET_FIELDS, n_t), (IDENTITY_FIELDS, n_i)):
        for name, (dtype, shape) in fields.items():
            if name not in arrays:
                raise ValueError(f"identity state lacks array {name!r}")
            value = np.asarray(arrays[name])
            expected = (count, *reg._shape(shape))
            if value.shape != expected or value.dtype != np.dtype(dtype):
                raise ValueError(f"identity state array {name!r} has {value.dtype} {value.shape}, expected {expected}")
            if value.dtype.kind == "f" and name not in ("t_first", "t_last", "t_cost", "i_last", "i_seen") and \
                    not np.isfinite(value).all():
                raise ValueError(f"identity state array {name!r} holds non-finite values")
    a = {name: np.asarray(arrays[name]) for name in (*TRACKLET_FIELDS, *IDENTITY_FIELDS)}
    gids = a["i_gid"]
    if ((gids < 1) | (gids >= next_gid)).any() or len(np.unique(gids)) != n_i:
        raise ValueError("identity state array 'i_gid' must hold distinct ids in [1, next_gid)")
    if ((a["t_stream"] < 0) | (a["t_stream"] >= len(streams))).any() or (a["t_local"] < 0).any():
        raise ValueError("identity state array 't_stream' or 't_local' out of range")
    if ((a["t_ident"] < -1) | (a["t_ident"] >= n_i)).any() or ((a["i_owner"] < -1) | (a["i_owner"] >= n_t)).any():
        raise ValueError("identity state arrays 't_ident' / 'i_owner' must index saved rows (or be -1)")
    if ((a["t_sample"] < -1) | (a["t_sample"] > reg.settings.samples)).any() or \
            ((a["t_phase"] < PENDING) | (a["t_phase"] > FINAL)).any() or (a["t_count"] < 0).any():
        raise ValueError("identity state arrays 't_sample', 't_phase' or 't_count' out of range")
    keys = list(zip(a["t_stream"].tolist(), a["t_local"].tolist()))
    if len(set(keys)) != n_t:
        raise ValueError("identity state repeats a (stream, track id) pair")
    for fields, count, free, cap in ((TRACKLET_FIELDS, n_t, reg._t_free, "_t_cap"),
                                     (IDENTITY_FIELDS, n_i, reg._i_free, "_i_cap")):
        while getattr(reg, cap) < count:
            reg._grow(fields, cap, free)
        for name in fields:
            getattr(reg, name)[:count] = a[name]
        free[:] = range(getattr(reg, cap) - 1, count - 1, -1)  # slots 0..count-1 taken, the lowest free on top
    reg.t_used[:n_t] = True
    reg._stale[:] = True
    reg._keys = {k: t for t, k in enumerate(keys)}
    reg._members = {g: [] for g in range(n_i)}
    for t in range(n_t):
        if a["t_ident"][t] >= 0:
            reg._members[int(a["t_ident"][t])].append(t)
    return reg


def _rows(arrays: Mapping[str, Any], name: str) -> int:
    if name not in arrays:
        raise ValueError(f"identity state lacks array {name!r}")
    value = np.asarray(arrays[name])
    if value.ndim < 1:
        raise ValueError(f"identity state array {name!r} must be at least 1-d")
    return int(value.shape[0])
