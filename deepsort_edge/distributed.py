"""Many streams on Ray: tracker state in actors, one embedder pool for all streams.

:class:`RayMultiStreamTracker` has the :class:`~deepsort_edge.MultiStreamTracker`
API. Inside, each update runs in three steps, driven from the calling process:

1. every tracker actor prepares its streams (``DeepSORTTracker.prepare``:
   validation; motion-only or given-embedding streams commit here) and sends
   back the boxes it needs embedded; the actors get frame *shapes* only, never
   pixels, so ``camera_motion="affine"`` is refused;
2. the embedder actors (``num_embedders``, CPU, or one GPU each when the
   cluster has GPUs) embed every stream's crops, all streams batched together
   (split across the embedders by crop count);
3. the tracker actors commit those streams with those features.

Streams are placed on tracker actors by a stable hash of the stream id
(CRC-32, so the same id lands on the same actor in every run) unless
:meth:`RayMultiStreamTracker.move` put them elsewhere; a stream moves
between actors through its ``state_dict``.

Fault tolerance: every ``snapshot_every`` frames of a stream the driver
takes its state (a ``state_dict``), and in between it keeps the stream's
inputs (boxes, scores, given embeddings, frame shape and the raw features
its crops got). When a tracker actor dies, the next call that reaches it
starts a new actor, loads the snapshots of its streams and replays the
logged frames, then runs the frame that failed. **No frame is lost** and the
ids are the same as without the failure, as long as the driver (which owns
the snapshots and logs) lives; recovery replays at most
``snapshot_every - 1`` frames per stream, and the log costs up to
``snapshot_every`` frames of boxes and features per stream
(``snapshot_every x detections x D x 4`` bytes, about 1.5 MB for 30 frames
of 10 detections with 1280-d features). An embedder actor that dies is
replaced and its batch retried (embedders hold no state).

Example:
    >>> from deepsort_edge.distributed import RayMultiStreamTracker  # doctest: +SKIP
    >>> with RayMultiStreamTracker(fx, num_workers=2) as multi:      # doctest: +SKIP
    ...     out = multi.update({"cam0": dets0, "cam1": dets1}, {"cam0": f0, "cam1": f1})
"""

from __future__ import annotations

import copy
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .multistream import (
    EmbedRequest,
    StreamError,
    StreamInput,
    _StreamGroup,
    check_stream_id,
    embed_requests,
    show_warnings,
    unpack_detections,
    with_ids,
)
from .tracker import DeepSORTTracker, _load_extractor

__all__ = ["RayMultiStreamTracker", "stable_worker_index"]


def _require_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ImportError(
            f'RayMultiStreamTracker needs Ray: pip install ".[cpu,ray]" in a clone ({exc})'
        ) from exc
    return ray


def stable_worker_index(stream_id: str, num_workers: int) -> int:
    """The tracker actor a stream lives on: CRC-32 of its UTF-8 id, modulo ``num_workers``.

    Stable across processes and runs (unlike Python's salted ``hash``).

    Example:
        >>> stable_worker_index("cam0", 4)
        0
    """
    return zlib.crc32(check_stream_id(stream_id).encode("utf-8")) % num_workers


class _FrameShape(NamedTuple):
    """What a tracker actor needs to know of a frame: its shape and dtype, not its pixels."""

    shape: tuple[int, ...]
    dtype: str


def _frame_shape(frame: Any) -> Any:
    return _FrameShape(tuple(frame.shape), frame.dtype.str) if isinstance(frame, np.ndarray) else frame


def _stand_in(frame: Any) -> Any:
    """A zero-memory array with the frame's shape and dtype: validation sees the same frame."""
    if isinstance(frame, _FrameShape):
        return np.broadcast_to(np.zeros((), dtype=np.dtype(frame.dtype)), frame.shape)
    return frame


def _copy(value: Any) -> Any:
    return value.copy() if isinstance(value, np.ndarray) else copy.deepcopy(value)


@dataclass
class _Logged:
    """One successful update of one stream, enough to replay it exactly."""

    args: StreamInput  # frame replaced by its _FrameShape
    features: np.ndarray | None  # raw features its crops got, None if it had none


class _TrackerWorker:
    """Ray actor: the trackers of the streams placed on it."""

    def __init__(self, tracker_kwargs: dict[str, Any], embeds: bool) -> None:
        self.group = _StreamGroup(tracker_kwargs, embeds)
        DeepSORTTracker(**tracker_kwargs).warmup()

    def ready(self) -> bool:
        return True

    def begin(self, inputs: dict[str, StreamInput]) -> tuple[dict, dict, dict, list, float]:
        start = time.perf_counter()
        local = {sid: (*args[:3], _stand_in(args[3]), *args[4:]) for sid, args in inputs.items()}
        ids, requests, errors, caught = self.group.begin(local)
        boxes = {sid: request[1] for sid, request in requests.items()}
        return ids, boxes, errors, caught, time.perf_counter() - start

    def finish(self, features: dict[str, np.ndarray], failed: dict[str, BaseException]) -> tuple[dict, dict, list, float]:
        start = time.perf_counter()
        ids, errors, caught = self.group.finish(features, failed)
        return ids, errors, caught, time.perf_counter() - start

    def state_dicts(self, stream_ids: list[str]) -> dict[str, dict[str, Any]]:
        return {sid: self.group.get(sid).state_dict() for sid in stream_ids}

    def load(self, states: dict[str, dict[str, Any]]) -> None:
        for sid, state in states.items():
            self.group.load(sid, state)

    def restore(self, states: dict[str, dict[str, Any]], logs: dict[str, list[_Logged]]) -> None:
        """Load snapshots, then replay each stream's logged frames (fresh trackers where no snapshot)."""
        self.load(states)
        for sid, records in logs.items():
            for record in records:
                _, requests, errors, _ = self.group.begin(
                    {sid: (*record.args[:3], _stand_in(record.args[3]), *record.args[4:])}
                )
                if requests:
                    _, errors, _ = self.group.finish({sid: record.features})
                if errors:
                    raise RuntimeError(f"replaying stream {sid!r} failed: {errors[sid]!r}")

    def pop(self, stream_id: str) -> dict[str, Any]:
        state = self.group.get(stream_id).state_dict()
        self.group.remove(stream_id)
        return state

    def remove(self, stream_id: str) -> None:
        self.group.remove(stream_id)

    def reset(self, stream_id: str) -> dict[str, Any]:
        tracker = self.group.get(stream_id)
        tracker.reset()
        return tracker.state_dict()


class _EmbedderWorker:
    """Ray actor: one feature extractor; embeds the crops of many streams in one batch."""

    def __init__(self, feature_extractor: Any, device: str | None) -> None:
        self.extractor = _load_extractor(feature_extractor, device)

    def ready(self) -> bool:
        return True

    def embed(self, requests: dict[str, EmbedRequest]) -> tuple[dict, dict, float]:
        start = time.perf_counter()
        features, errors = embed_requests(self.extractor, requests)
        return features, errors, time.perf_counter() - start


_REMOTE: dict[str, Any] = {}


def _remote(ray: Any, cls: type) -> Any:
    if cls.__name__ not in _REMOTE:
        _REMOTE[cls.__name__] = ray.remote(cls)
    return _REMOTE[cls.__name__]


class RayMultiStreamTracker:
    """:class:`~deepsort_edge.MultiStreamTracker` spread over Ray actors.

    Args:
        feature_extractor: as for ``MultiStreamTracker``; an object is
            pickled to each embedder actor (a ``DeepSORTFeatureExtractor``
            rebuilds its ONNX session there), a path is loaded there.
        device: where an extractor given as a path runs.
        num_workers: tracker actors; streams are placed by
            :func:`stable_worker_index`.
        num_embedders: embedder actors; each update's crops are split
            between them by count (1: one batch for every stream).
        address: a Ray cluster to join (``"auto"``, ``"ray://host:10001"``,
            ...); None starts a local Ray, unless this process is already
            connected, in which case that connection is used.
        snapshot_every: frames of a stream between state snapshots (>= 1);
            see the module docstring for what this trades.
        max_restarts: how often one update may restart a dead tracker actor
            before giving up.
        num_cpus: CPUs reserved per actor; default 1, or less when the
            cluster has fewer CPUs than actors (so that every actor starts).
        embedder_num_gpus: GPUs per embedder actor; default 1 when the
            cluster has a GPU per embedder, a share when fewer, else 0.
        **tracker_kwargs: ``DeepSORTTracker`` settings for every stream.

    Call :meth:`close` (or use it as a context manager) to stop the actors,
    and Ray itself if this object started it.
    """

    def __init__(
        self,
        feature_extractor: Any = None,
        device: str | None = None,
        *,
        num_workers: int = 2,
        num_embedders: int = 1,
        address: str | None = None,
        snapshot_every: int = 30,
        max_restarts: int = 3,
        num_cpus: float | None = None,
        embedder_num_gpus: float | None = None,
        **tracker_kwargs: Any,
    ) -> None:
        ray = _require_ray()
        for name, value, low in (
            ("num_workers", num_workers, 1), ("num_embedders", num_embedders, 1),
            ("snapshot_every", snapshot_every, 1), ("max_restarts", max_restarts, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        probe = DeepSORTTracker(**tracker_kwargs)  # bad settings fail here, before any actor starts
        if probe.camera_motion == "affine":
            # Tracker actors get frame shapes, never pixels: they cannot see the camera move.
            raise ValueError(
                "camera_motion='affine' is not supported by RayMultiStreamTracker (its tracker actors "
                "never see the frames); use MultiStreamTracker, or camera_motion='none'"
            )
        if feature_extractor is not None and not isinstance(feature_extractor, (str, Path)):
            _load_extractor(feature_extractor, device)  # type check only
        self._ray = ray
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            options: dict[str, Any] = {"address": address}
            if address is None:
                options["include_dashboard"] = False
            ray.init(**options)
        resources = ray.cluster_resources()
        actors = num_workers + (num_embedders if feature_extractor is not None else 0)
        cpus = num_cpus if num_cpus is not None else min(1.0, float(resources.get("CPU", 1.0)) / actors)
        gpus = float(resources.get("GPU", 0.0))
        if embedder_num_gpus is None:
            embedder_num_gpus = min(1.0, gpus / num_embedders) if gpus > 0 else 0.0
        self._tracker_kwargs = dict(tracker_kwargs)
        self._embeds = feature_extractor is not None
        self._extractor = (str(feature_extractor) if isinstance(feature_extractor, Path) else feature_extractor, device)
        self._worker_options = {"num_cpus": cpus}
        self._embedder_options = {"num_cpus": cpus, "num_gpus": embedder_num_gpus}
        self.num_workers = num_workers
        self.snapshot_every = snapshot_every
        self.max_restarts = max_restarts
        self.restarts = 0
        self._placement: dict[str, int] = {}  # streams moved off their hashed worker
        self._streams: dict[str, int] = {}  # live stream -> worker
        self._snapshots: dict[str, dict[str, Any]] = {}
        self._logs: dict[str, list[_Logged]] = {}
        self._updates = 0
        self._workers = [self._new_worker() for _ in range(num_workers)]
        self._embedders = [self._new_embedder() for _ in range(num_embedders)] if self._embeds else []
        self._busy = {"workers": [0.0] * num_workers, "embedders": [0.0] * len(self._embedders)}
        self._crops = [0] * len(self._embedders)
        ray.get([a.ready.remote() for a in [*self._workers, *self._embedders]])

    def _new_worker(self) -> Any:
        cls = _remote(self._ray, _TrackerWorker)
        return cls.options(**self._worker_options).remote(self._tracker_kwargs, self._embeds)

    def _new_embedder(self) -> Any:
        cls = _remote(self._ray, _EmbedderWorker)
        return cls.options(**self._embedder_options).remote(*self._extractor)

    # ------------------------------------------------------------------ update
    def update(
        self, detections: Mapping[str, Any], frames: Mapping[str, np.ndarray] | None = None
    ) -> dict[str, Any]:
        """Track one frame of every stream in ``detections``; as ``MultiStreamTracker.update``."""
        inputs, errors = unpack_detections(detections, frames)
        pending: dict[int, dict[str, StreamInput]] = {}
        for sid, (xyxy, scores, embeddings, frame, class_id) in inputs.items():
            # Copies: the replay log must not change if the caller reuses its buffers.
            args = (_copy(xyxy), _copy(scores), _copy(embeddings), _frame_shape(frame), _copy(class_id))
            pending.setdefault(self.worker_of(sid), {})[sid] = args
        real_frames = {sid: args[3] for sid, args in inputs.items()}
        ids: dict[str, np.ndarray] = {}
        caught: list = []
        for _ in range(self.max_restarts + 1):
            failed = self._step(pending, real_frames, ids, errors, caught)
            if not failed:
                break
            for worker in sorted(failed):
                self._restart(worker)
            pending = {w: pending[w] for w in failed}
        else:
            raise RuntimeError(
                f"tracker actor(s) {sorted(failed)} died {self.max_restarts + 1} times in one update; "
                "their streams keep their last good state"
            )
        self._updates += 1
        self._snapshot_due()
        show_warnings(caught)
        results = {sid: with_ids(detections[sid], ids[sid]) for sid in detections if sid in ids}
        if errors:
            raise StreamError({sid: errors[sid] for sid in detections if sid in errors}, results)
        return results

    def _gather(self, refs: Mapping[int, Any]) -> tuple[dict[int, Any], set[int]]:
        done, failed = {}, set()
        for worker, ref in refs.items():
            try:
                done[worker] = self._ray.get(ref)
            except self._ray.exceptions.RayActorError:
                failed.add(worker)
        return done, failed

    def _step(
        self, pending: dict[int, dict[str, StreamInput]], real_frames: dict[str, Any],
        ids: dict, errors: dict, caught: list,
    ) -> set[int]:
        """One frame on the given workers; returns the workers that died (their streams unchanged)."""
        begun, failed = self._gather({w: self._workers[w].begin.remote(batch) for w, batch in pending.items()})
        requests = {
            sid: (real_frames[sid], boxes) for w in sorted(begun) for sid, boxes in begun[w][1].items()
        }
        features, embed_failed = self._embed(requests)
        refs = {}
        for w, (_, boxes, _, _, busy) in begun.items():
            self._busy["workers"][w] += busy
            if boxes:
                refs[w] = self._workers[w].finish.remote(
                    {sid: features[sid] for sid in boxes if sid in features},
                    {sid: embed_failed[sid] for sid in boxes if sid in embed_failed},
                )
        finished, died = self._gather(refs)
        failed |= died
        for w, (first_ids, boxes, first_errors, first_caught, _) in begun.items():
            if w in died:
                continue
            later_ids, later_errors, later_caught = {}, {}, []
            if w in finished:
                later_ids, later_errors, later_caught, busy = finished[w]
                self._busy["workers"][w] += busy
            ids.update(first_ids)
            ids.update(later_ids)
            errors.update(first_errors)
            errors.update(later_errors)
            caught.extend(first_caught)
            caught.extend(later_caught)
            for sid, args in pending[w].items():
                if sid in first_ids or sid in later_ids:
                    self._streams[sid] = w
                    self._logs.setdefault(sid, []).append(_Logged(args, features.get(sid)))
        return failed

    def _embed(self, requests: dict[str, EmbedRequest]) -> tuple[dict, dict]:
        """Split the crops over the embedder actors (by count) and embed them."""
        features: dict[str, np.ndarray] = {}
        errors: dict[str, BaseException] = {}
        if not requests:
            return features, errors
        shares: list[dict[str, EmbedRequest]] = [{} for _ in self._embedders]
        load = [0] * len(self._embedders)
        for sid in sorted(requests, key=lambda s: -len(requests[s][1])):
            least = load.index(min(load))
            shares[least][sid] = requests[sid]
            load[least] += len(requests[sid][1])
        for _ in range(self.max_restarts + 1):
            refs = {i: self._embedders[i].embed.remote(share) for i, share in enumerate(shares) if share}
            done, failed = self._gather(refs)
            for i, (got, bad, busy) in done.items():
                features.update(got)
                errors.update(bad)
                self._busy["embedders"][i] += busy
                self._crops[i] += load[i]
                shares[i] = {}
            if not failed:
                return features, errors
            for i in failed:
                self._embedders[i] = self._new_embedder()
                self.restarts += 1
        raise RuntimeError(f"embedder actor(s) {sorted(failed)} died {self.max_restarts + 1} times in one update")

    def _snapshot_due(self) -> None:
        due: dict[int, list[str]] = {}
        for sid, log in self._logs.items():
            if len(log) >= self.snapshot_every and sid in self._streams:
                due.setdefault(self._streams[sid], []).append(sid)
        if not due:
            return
        got, _ = self._gather({w: self._workers[w].state_dicts.remote(sids) for w, sids in due.items()})
        for states in got.values():  # a worker that died keeps its log: the restart replays it
            for sid, state in states.items():
                self._snapshots[sid] = state
                self._logs[sid] = []

    def _restart(self, worker: int) -> None:
        """Replace a dead tracker actor and restore its streams from snapshots plus logs."""
        ray = self._ray
        try:
            ray.kill(self._workers[worker])
        except Exception:  # noqa: BLE001  (it is already gone)
            pass
        self._workers[worker] = self._new_worker()
        sids = [sid for sid, w in self._streams.items() if w == worker]
        states = {sid: self._snapshots[sid] for sid in sids if sid in self._snapshots}
        logs = {sid: self._logs.get(sid, []) for sid in sids}
        ray.get(self._workers[worker].restore.remote(states, logs))
        self.restarts += 1

    # ------------------------------------------------------------------ streams
    def worker_of(self, stream_id: str) -> int:
        """Index of the tracker actor holding (or that will hold) ``stream_id``."""
        check_stream_id(stream_id)
        if stream_id in self._placement:
            return self._placement[stream_id]
        return stable_worker_index(stream_id, self.num_workers)

    @property
    def workers(self) -> tuple[Any, ...]:
        """The tracker actor handles, by index (see :meth:`worker_of`)."""
        return tuple(self._workers)

    @property
    def embedders(self) -> tuple[Any, ...]:
        """The embedder actor handles (empty without a feature extractor)."""
        return tuple(self._embedders)

    @property
    def streams(self) -> tuple[str, ...]:
        """Stream ids, in the order they first appeared."""
        return tuple(self._streams)

    def __len__(self) -> int:
        return len(self._streams)

    def __contains__(self, stream_id: object) -> bool:
        return stream_id in self._streams

    def __iter__(self) -> Iterator[str]:
        return iter(self.streams)

    def _known(self, stream_id: str) -> int:
        if stream_id not in self._streams:
            raise KeyError(f"no stream {stream_id!r} (known: {sorted(self._streams)})")
        return self._streams[stream_id]

    def _set_state(self, stream_id: str, state: dict[str, Any]) -> None:
        self._snapshots[stream_id] = state
        self._logs[stream_id] = []

    def remove(self, stream_id: str) -> None:
        """Forget a stream and its tracks (KeyError if unknown)."""
        worker = self._known(stream_id)
        self._ray.get(self._workers[worker].remove.remote(stream_id))
        for table in (self._streams, self._placement, self._snapshots, self._logs):
            table.pop(stream_id, None)

    def reset(self, stream_id: str | None = None) -> None:
        """Forget the tracks of one stream, or of every stream when None."""
        for sid in self.streams if stream_id is None else (stream_id,):
            worker = self._known(sid)
            self._set_state(sid, self._ray.get(self._workers[worker].reset.remote(sid)))

    def state_dict(self, stream_id: str) -> dict[str, Any]:
        """One stream's ``DeepSORTTracker.state_dict()``."""
        worker = self._known(stream_id)
        return self._ray.get(self._workers[worker].state_dicts.remote([stream_id]))[stream_id]

    def load_state_dict(self, stream_id: str, state: dict[str, Any]) -> None:
        """Restore one stream from a ``state_dict`` (creating it if new); unchanged if it fails."""
        worker = self.worker_of(stream_id)
        self._ray.get(self._workers[worker].load.remote({stream_id: state}))
        self._streams[stream_id] = worker
        self._set_state(stream_id, state)

    def move(self, stream_id: str, worker: int) -> None:
        """Move a stream to tracker actor ``worker`` through its state; its ids continue."""
        if isinstance(worker, bool) or not isinstance(worker, int) or not 0 <= worker < self.num_workers:
            raise ValueError(f"worker must be an int in [0, {self.num_workers}), got {worker!r}")
        old = self._known(stream_id)
        if old == worker:
            return
        state = self._ray.get(self._workers[old].pop.remote(stream_id))
        self._ray.get(self._workers[worker].load.remote({stream_id: state}))
        self._placement[stream_id] = worker
        self._streams[stream_id] = worker
        self._set_state(stream_id, state)

    def stats(self) -> dict[str, Any]:
        """Busy seconds per actor (time inside its methods), crops per embedder, updates, restarts."""
        return {
            "updates": self._updates,
            "restarts": self.restarts,
            "worker_busy_s": list(self._busy["workers"]),
            "embedder_busy_s": list(self._busy["embedders"]),
            "embedder_crops": list(self._crops),
            "streams_per_worker": [sum(1 for w in self._streams.values() if w == i) for i in range(self.num_workers)],
        }

    def close(self) -> None:
        """Stop the actors, and Ray if this object started it."""
        for actor in [*self._workers, *self._embedders]:
            try:
                self._ray.kill(actor)
            except Exception:  # noqa: BLE001
                pass
        self._workers, self._embedders = [], []
        if self._owns_ray and self._ray.is_initialized():
            self._ray.shutdown()

    def __enter__(self) -> RayMultiStreamTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"RayMultiStreamTracker(streams={len(self._streams)}, workers={self.num_workers}, "
            f"embedders={len(self._embedders)}, snapshot_every={self.snapshot_every}, restarts={self.restarts})"
        )
