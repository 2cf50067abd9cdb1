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
its crops got). When a tracker actor dies, with its node or alone, or does
not answer, the call that finds it starts a new actor (on a live node: actors
are placed with Ray's ``SPREAD`` strategy, and by default each needs so few
CPUs that all of them fit on any one node), loads the snapshots of its
streams and replays the logged frames, then runs the frame that failed.

Each stream applies each frame exactly once: the driver numbers every
stream's frames, an actor applies frame ``n`` only after ``n - 1`` and
answers a repeat of its last frame with the result it gave, and the frames
of a failed update that some streams did apply are not applied again when
``update`` is called again with the same input. **No frame is lost** and
the ids are the same as without the failure, as long as the driver (which
owns the snapshots and logs) lives. What a lost node costs: the time Ray
takes to declare it dead (its health checks: tens of seconds), then one
actor start and a replay of at most ``snapshot_every - 1`` frames per
stream of each actor it held; the log costs up to ``snapshot_every``
frames of boxes and features per stream (``snapshot_every x detections x D
x 4`` bytes, about 1.5 MB for 30 frames of 10 detections with 1280-d
features). An embedder actor that dies is replaced and its batch retried
(embedders hold no state). No wait is unbounded: the constructor, each
``update`` and each other call give up after ``timeout_s`` with a
``TimeoutError`` (the usual cause: no node has room for an actor).

Example:
    >>> from deepsort_edge.streams.distributed import RayMultiStreamTracker  # doctest: +SKIP
    >>> with RayMultiStreamTracker(fx, num_workers=2) as multi:      # doctest: +SKIP
    ...     out = multi.update({"cam0": dets0, "cam1": dets1}, {"cam0": f0, "cam1": f1})
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .identities import IdentityRegistry, tracker_observation
from .identity_actor import IdentityActor, IdentityWorker
from .multistream import (
    EmbedRequest,
    StreamError,
    StreamGroup,
    StreamInput,
    check_stream_id,
    embed_requests,
    registry_for,
    show_warnings,
    unpack_detections,
    with_ids,
)
from ..tracking.tracker import DeepSORTTracker, load_extractor

__all__ = ["RayMultiStreamTracker", "default_num_cpus", "stable_worker_index"]


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


def _digest(args: StreamInput) -> str:
    """A fingerprint of one stream's frame input: tells a retried frame from a new one."""
    h = hashlib.blake2b(digest_size=16)
    for value in args:
        if isinstance(value, np.ndarray):
            h.update(f"{value.dtype.str}{value.shape}".encode())
            h.update(np.ascontiguousarray(value).tobytes())
        else:
            h.update(repr(value).encode())
    return h.hexdigest()


class _TrackerWorker:
    """Ray actor: the trackers of the streams placed on it.

    Each stream's frames are numbered by the driver (1, 2, ...); the actor
    applies frame ``n`` only after ``n - 1``, and answers a second request for
    the frame it applied last (same number, same input) with the result it
    gave, without applying it again.
    """

    def __init__(self, tracker_kwargs: dict[str, Any], embeds: bool) -> None:
        self.group = StreamGroup(tracker_kwargs, embeds)
        self.seq: dict[str, int] = {}  # stream -> frames applied
        self.last: dict[str, tuple[int, str, Any]] = {}  # stream -> (seq, digest, result) of its last frame
        self._begun: dict[str, tuple[int, str]] = {}
        DeepSORTTracker(**tracker_kwargs).warmup()

    def ready(self) -> bool:
        return True

    def node(self) -> str:
        """The id of the Ray node this actor runs on."""
        import ray

        return ray.get_runtime_context().get_node_id()

    def _applied(self, stream_id: str, seq: int, digest: str, result: Any) -> None:
        self.seq[stream_id] = seq
        self.last[stream_id] = (seq, digest, result)

    def begin(
        self, inputs: dict[str, StreamInput], frames: dict[str, tuple[int, str]]
    ) -> tuple[dict, dict, dict, list, float]:
        """First phase; ``frames``: stream id -> (this frame's number, its input digest)."""
        start = time.perf_counter()
        local, repeated, out_of_step = {}, {}, {}
        for sid, args in inputs.items():
            seq, digest = frames[sid]
            have = self.seq.get(sid, 0)
            if seq == have and self.last.get(sid, (0, ""))[:2] == (seq, digest):
                repeated[sid] = self.last[sid][2]  # applied already: a retry, not a new frame
            elif seq == have + 1:
                local[sid] = (*args[:3], _stand_in(args[3]), *args[4:])
            else:
                out_of_step[sid] = RuntimeError(f"stream {sid!r} has applied {have} frames; asked for frame {seq}")
        ids, requests, errors, caught = self.group.begin(local)
        for sid, result in ids.items():
            self._applied(sid, *frames[sid], result)
        self._begun = {sid: frames[sid] for sid in requests}
        ids.update(repeated)
        errors.update(out_of_step)
        boxes = {sid: request[1] for sid, request in requests.items()}
        return ids, boxes, errors, caught, time.perf_counter() - start

    def finish(self, features: dict[str, np.ndarray], failed: dict[str, BaseException]) -> tuple[dict, dict, list, float]:
        start = time.perf_counter()
        ids, errors, caught = self.group.finish(features, failed)
        for sid, result in ids.items():
            self._applied(sid, *self._begun[sid], result)
        self._begun = {}
        return ids, errors, caught, time.perf_counter() - start

    def state_dicts(self, stream_ids: list[str]) -> dict[str, dict[str, Any]]:
        return {sid: self.group.get(sid).state_dict() for sid in stream_ids}

    def load(self, states: dict[str, dict[str, Any]], seqs: dict[str, int]) -> None:
        for sid, state in states.items():
            self.group.load(sid, state)
            self.seq[sid] = seqs.get(sid, 0)
            self.last.pop(sid, None)

    def restore(self, states: dict[str, dict[str, Any]], logs: dict[str, list[_Logged]], seqs: dict[str, int]) -> None:
        """Load snapshots, then replay each stream's logged frames (fresh trackers where no snapshot)."""
        self.load(states, {sid: seqs[sid] - len(logs.get(sid, [])) for sid in states})
        for sid, records in logs.items():
            for record in records:
                _, requests, errors, _ = self.group.begin(
                    {sid: (*record.args[:3], _stand_in(record.args[3]), *record.args[4:])}
                )
                if requests:
                    _, errors, _ = self.group.finish({sid: record.features})
                if errors:
                    raise RuntimeError(f"replaying stream {sid!r} failed: {errors[sid]!r}")
        for sid in {*states, *logs}:
            self.seq[sid] = seqs[sid]

    def pop(self, stream_id: str) -> dict[str, Any]:
        state = self.group.get(stream_id).state_dict()
        self.remove(stream_id)
        return state

    def remove(self, stream_id: str) -> None:
        self.group.remove(stream_id)
        self.seq.pop(stream_id, None)
        self.last.pop(stream_id, None)

    def reset(self, stream_id: str) -> dict[str, Any]:
        tracker = self.group.get(stream_id)
        tracker.reset()
        self.seq[stream_id] = 0
        self.last.pop(stream_id, None)
        return tracker.state_dict()

    def observations(self, requests: dict[str, tuple[np.ndarray, np.ndarray | None]]) -> dict[str, Any]:
        """What the identity registry needs of each stream's last update (see ``tracker_observation``)."""
        return {sid: tracker_observation(self.group.get(sid), ids, given) for sid, (ids, given) in requests.items()}


class _EmbedderWorker:
    """Ray actor: one feature extractor; embeds the crops of many streams in one batch."""

    def __init__(self, feature_extractor: Any, device: str | None) -> None:
        self.extractor = load_extractor(feature_extractor, device)

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


def default_num_cpus(node_cpus: list[float], actors: int) -> float:
    """CPUs per actor by default: 1, or less so that every actor fits on any one node.

    Then the nodes left after one is lost can host its actors again. Nodes
    without CPUs (a head that only coordinates) are not counted; Ray counts
    resources in steps of 1e-4.

    Example:
        >>> default_num_cpus([1.0, 1.0], 3)  # two 1-CPU nodes, three actors
        0.3333
    """
    usable = [c for c in node_cpus if c > 0]
    share = min(usable) / actors if usable else 1.0
    return max(1e-4, min(1.0, math.floor(share * 1e4) / 1e4))


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
        num_cpus: CPUs reserved per actor; default :func:`default_num_cpus`
            (1, or less so that every actor fits on any one node).
        embedder_num_gpus: GPUs per embedder actor; default 1 when the
            cluster has a GPU per embedder, a share when fewer, else 0.
        timeout_s: the longest the constructor, one ``update`` or one other
            call waits for its actors (starting, restoring, answering);
            past it a ``TimeoutError`` says which actors did not answer (the
            usual cause: no live node has their ``num_cpus`` free).
        global_ids: as for ``MultiStreamTracker``: the registry runs in
            its own actor and gives the same ids as in-process; its state is
            :meth:`identity_state_dict`. When that actor dies it is restored
            like a tracker actor (a snapshot every ``snapshot_every`` updates,
            the batches since replayed): the ids stay the same.
        **tracker_kwargs: ``DeepSORTTracker`` settings for every stream.

    Actors are spread over the nodes (Ray's ``SPREAD`` strategy), so a lost
    node takes as few as it can. Call :meth:`close` (or use it as a context
    manager) to stop the actors, and Ray itself if this object started it;
    any call after ``close`` raises ``RuntimeError``.
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
        timeout_s: float = 120.0,
        global_ids: bool | IdentityRegistry = False,
        **tracker_kwargs: Any,
    ) -> None:
        ray = _require_ray()
        registry = registry_for(global_ids)
        for name, value, low in (
            ("num_workers", num_workers, 1), ("num_embedders", num_embedders, 1),
            ("snapshot_every", snapshot_every, 1), ("max_restarts", max_restarts, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not 0 < timeout_s < math.inf:
            raise ValueError(f"timeout_s must be a positive finite number of seconds, got {timeout_s!r}")
        probe = DeepSORTTracker(**tracker_kwargs)  # bad settings fail here, before any actor starts
        if probe.camera_motion == "affine":
            # Tracker actors get frame shapes, never pixels: they cannot see the camera move.
            raise ValueError(
                "camera_motion='affine' is not supported by RayMultiStreamTracker (its tracker actors "
                "never see the frames); use MultiStreamTracker, or camera_motion='none'"
            )
        if feature_extractor is not None and not isinstance(feature_extractor, (str, Path)):
            load_extractor(feature_extractor, device)  # type check only
        self._ray = ray
        self._closed = False
        self._workers: list[Any] = []
        self._embedders: list[Any] = []
        self._identities: Any = None
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            options: dict[str, Any] = {"address": address}
            if address is None:
                options["include_dashboard"] = False
            ray.init(**options)
        resources = ray.cluster_resources()
        actors = num_workers + (num_embedders if feature_extractor is not None else 0)
        if num_cpus is None:
            node_cpus = [float(n["Resources"].get("CPU", 0.0)) for n in ray.nodes() if n.get("Alive")]
            num_cpus = default_num_cpus(node_cpus, actors)
        gpus = float(resources.get("GPU", 0.0))
        if embedder_num_gpus is None:
            embedder_num_gpus = min(1.0, gpus / num_embedders) if gpus > 0 else 0.0
        self._tracker_kwargs = dict(tracker_kwargs)
        self._embeds = feature_extractor is not None
        self._extractor = (str(feature_extractor) if isinstance(feature_extractor, Path) else feature_extractor, device)
        self._worker_options = {"num_cpus": num_cpus, "scheduling_strategy": "SPREAD"}
        self._embedder_options = {"num_cpus": num_cpus, "num_gpus": embedder_num_gpus, "scheduling_strategy": "SPREAD"}
        self.num_workers = num_workers
        self.snapshot_every = snapshot_every
        self.max_restarts = max_restarts
        self.timeout_s = float(timeout_s)
        self.restarts = 0
        self._placement: dict[str, int] = {}  # streams moved off their hashed worker
        self._streams: dict[str, int] = {}  # live stream -> worker
        self._seq: dict[str, int] = {}  # live stream -> frames applied
        self._snapshots: dict[str, dict[str, Any]] = {}
        self._logs: dict[str, list[_Logged]] = {}
        self._unfinished: dict[str, tuple[str, Any]] = {}  # stream -> (digest, result) applied in a failed update
        self._dead: set[int] = set()  # workers to restore before their next use
        self._updates = 0
        self._workers = [self._new_worker() for _ in range(num_workers)]
        self._embedders = [self._new_embedder() for _ in range(num_embedders)] if self._embeds else []
        # The registry lives in its own actor, fed after every update (same ids as in-process).
        if registry is not None:
            self._identities = IdentityActor(
                ray, lambda state, log: _remote(ray, IdentityWorker).options(num_cpus=num_cpus).remote(state, log),
                registry, snapshot_every, max_restarts, self._kill)
        self._busy = {"workers": [0.0] * num_workers, "embedders": [0.0] * len(self._embedders)}
        self._crops = [0] * len(self._embedders)
        try:
            self._wait([a.ready.remote() for a in [*self._workers, *self._embedders, *self._identity_actor()]],
                       time.monotonic() + self.timeout_s, f"{actors} actors of {num_cpus:g} CPU each to start")
        except BaseException:
            self.close()
            raise

    def _identity_actor(self) -> list[Any]:
        return [self._identities.handle] if self._identities is not None else []

    def _wait(self, refs: Any, deadline: float, what: str) -> Any:
        """``ray.get(refs)`` until ``deadline``; past it a TimeoutError naming ``what``."""
        try:
            return self._ray.get(refs, timeout=max(0.0, deadline - time.monotonic()))
        except self._ray.exceptions.GetTimeoutError:
            raise TimeoutError(
                f"RayMultiStreamTracker waited {self.timeout_s:g} s (timeout_s) for {what}; "
                f"no live node may have {self._worker_options['num_cpus']:g} CPU free for an actor "
                f"(ray.cluster_resources(): {self._ray.cluster_resources()})"
            ) from None

    def _new_worker(self) -> Any:
        cls = _remote(self._ray, _TrackerWorker)
        return cls.options(**self._worker_options).remote(self._tracker_kwargs, self._embeds)

    def _new_embedder(self) -> Any:
        cls = _remote(self._ray, _EmbedderWorker)
        return cls.options(**self._embedder_options).remote(*self._extractor)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this RayMultiStreamTracker is closed; make a new one")

    # ------------------------------------------------------------------ update
    def update(
        self, detections: Mapping[str, Any], frames: Mapping[str, np.ndarray] | None = None,
        *, timestamps: Mapping[str, float] | None = None,
    ) -> dict[str, Any]:
        """Track one frame of every stream in ``detections``; as ``MultiStreamTracker.update``.

        Each stream applies each frame exactly once. A tracker actor that
        dies (or does not answer) is replaced, on a live node, by one
        restored from its streams' snapshots and logs, and the frame goes on
        there. If the update still fails (``TimeoutError``: nothing could be
        placed within ``timeout_s``; ``RuntimeError``: more than
        ``max_restarts`` deaths), the streams that applied the frame keep it,
        and calling ``update`` again with the same input completes the frame:
        those streams return their result without applying it twice.
        """
        self._check_open()
        inputs, errors = unpack_detections(detections, frames)
        pending: dict[int, dict[str, StreamInput]] = {}
        digests: dict[str, str] = {}
        ids: dict[str, Any] = {}
        for sid, (xyxy, scores, embeddings, frame, class_id) in inputs.items():
            # Copies: the replay log must not change if the caller reuses its buffers.
            args = (_copy(xyxy), _copy(scores), _copy(embeddings), _frame_shape(frame), _copy(class_id))
            digests[sid] = _digest(args)
            done = self._unfinished.get(sid)
            if done is not None and done[0] == digests[sid]:
                ids[sid] = done[1]  # applied by the update that failed: not again
                continue
            pending.setdefault(self.worker_of(sid), {})[sid] = args
        unfinished, self._unfinished = self._unfinished, {}
        real_frames = {sid: args[3] for sid, args in inputs.items()}
        caught: list = []
        deadline = time.monotonic() + self.timeout_s
        try:
            for _ in range(self.max_restarts + 1):
                failed = self._step(pending, real_frames, digests, ids, errors, caught, deadline)
                if not failed:
                    break
                for worker in sorted(failed):
                    self._restart(worker, deadline)
                pending = {w: {s: a for s, a in pending[w].items() if s not in ids and s not in errors} for w in failed}
            else:
                raise RuntimeError(
                    f"tracker actor(s) {sorted(failed)} died {self.max_restarts + 1} times in one update; "
                    "their streams keep their last good state"
                )
        except BaseException:
            # What this call applied stays applied; the same input again completes the frame.
            self._unfinished = {sid: (digests[sid], ids[sid]) for sid in ids}
            for sid, done in unfinished.items():
                self._unfinished.setdefault(sid, done)
            raise
        self._updates += 1
        self._snapshot_due(deadline)
        show_warnings(caught)
        results = {sid: with_ids(detections[sid], ids[sid]) for sid in detections if sid in ids}
        if self._identities is not None and results:
            try:
                self._global_ids(results, timestamps, deadline)
            except BaseException:
                # The trackers applied this frame: the same input again completes it (ids from the registry).
                self._unfinished = {sid: (digests[sid], ids[sid]) for sid in ids}
                raise
        if errors:
            raise StreamError({sid: errors[sid] for sid in detections if sid in errors}, results)
        return results

    def _global_ids(self, results: dict[str, Any], timestamps: Mapping[str, float] | None, deadline: float) -> None:
        """``data["global_id"]`` for every result: observations from the tracker actors, then the registry."""
        asks: dict[int, dict[str, tuple]] = {}
        for sid, result in results.items():
            asks.setdefault(self._streams[sid], {})[sid] = (result.tracker_id, result.data.get("embeddings"))
        seen = {}
        refs = [self._workers[w].observations.remote(a) for w, a in asks.items()]
        for part in self._wait(refs, max(deadline, time.monotonic() + 1.0), "tracker actors' observations"):
            seen.update(part)
        batch = [(sid, seen[sid], timestamps.get(sid) if timestamps is not None else None) for sid in results]
        observed = self._identities.observe(batch, max(deadline, time.monotonic() + 1.0))
        for sid, gids in observed.items():
            results[sid].data["global_id"] = gids

    def identity_state_dict(self) -> dict[str, Any]:
        """The registry's ``state_dict()`` (with ``global_ids``): save it beside the streams' states."""
        self._check_open()
        if self._identities is None:
            raise ValueError("this RayMultiStreamTracker has no global ids (global_ids=False)")
        return self._identities.state_dict(time.monotonic() + self.timeout_s)

    def load_identity_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the registry from :meth:`identity_state_dict` output (checked; unchanged if bad)."""
        self._check_open()
        if self._identities is None:
            raise ValueError("this RayMultiStreamTracker has no global ids (global_ids=False)")
        self._identities.load_state_dict(state, time.monotonic() + self.timeout_s)

    def _gather(self, refs: Mapping[int, Any], deadline: float) -> tuple[dict[int, Any], set[int]]:
        """Results by actor index; the actors that died or did not answer by ``deadline`` in the set."""
        exceptions = self._ray.exceptions
        done, failed = {}, set()
        for index, ref in refs.items():
            try:
                done[index] = self._ray.get(ref, timeout=max(0.0, deadline - time.monotonic()))
            except exceptions.RayTaskError:
                raise  # an exception inside the actor's method: a bug, not a lost actor
            except exceptions.RayError:  # died, lost with its node, or no answer in time
                failed.add(index)
        return done, failed

    def _step(
        self, pending: dict[int, dict[str, StreamInput]], real_frames: dict[str, Any], digests: dict[str, str],
        ids: dict, errors: dict, caught: list, deadline: float,
    ) -> set[int]:
        """One frame on the given workers; returns the workers that failed (their streams unchanged)."""
        for worker in sorted(self._dead & set(pending)):
            self._restart(worker, deadline)
        refs = {}
        for w, batch in pending.items():
            numbered = {sid: (self._seq.get(sid, 0) + 1, digests[sid]) for sid in batch}
            refs[w] = self._workers[w].begin.remote(batch, numbered)
        begun, failed = self._gather(refs, deadline)
        requests = {
            sid: (real_frames[sid], boxes) for w in sorted(begun) for sid, boxes in begun[w][1].items()
        }
        features, embed_failed = self._embed(requests, deadline)
        refs = {}
        for w, (_, boxes, _, _, busy) in begun.items():
            self._busy["workers"][w] += busy
            if boxes:
                refs[w] = self._workers[w].finish.remote(
                    {sid: features[sid] for sid in boxes if sid in features},
                    {sid: embed_failed[sid] for sid in boxes if sid in embed_failed},
                )
        finished, died = self._gather(refs, deadline)
        failed |= died
        for w, (first_ids, boxes, first_errors, first_caught, _) in begun.items():
            # A worker that died in the second phase had applied its first-phase streams: they are
            # logged like the others (its restore replays them); its waiting streams go again.
            later_ids, later_errors, later_caught = {}, {}, []
            if w in finished:
                later_ids, later_errors, later_caught, busy = finished[w]
                self._busy["workers"][w] += busy
            errors.update(first_errors)
            errors.update(later_errors)
            caught.extend(first_caught)
            caught.extend(later_caught)
            for sid, args in pending[w].items():
                result = first_ids.get(sid, later_ids.get(sid))
                if result is None:
                    continue
                ids[sid] = result
                self._streams[sid] = w
                self._seq[sid] = self._seq.get(sid, 0) + 1
                self._logs.setdefault(sid, []).append(_Logged(args, features.get(sid)))
        self._dead |= failed
        return failed

    def _embed(self, requests: dict[str, EmbedRequest], deadline: float) -> tuple[dict, dict]:
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
            done, failed = self._gather(refs, deadline)
            for i, (got, bad, busy) in done.items():
                features.update(got)
                errors.update(bad)
                self._busy["embedders"][i] += busy
                self._crops[i] += load[i]
                shares[i] = {}
            if not failed:
                return features, errors
            for i in failed:
                self._kill(self._embedders[i])
                self._embedders[i] = self._new_embedder()
                self.restarts += 1
            if time.monotonic() >= deadline:
                break
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))  # let Ray notice a lost node
        raise TimeoutError(
            f"embedder actor(s) {sorted(failed)} failed {self.max_restarts + 1} times or did not answer "
            f"within timeout_s={self.timeout_s:g} s in one update"
        )

    def _snapshot_due(self, deadline: float) -> None:
        due: dict[int, list[str]] = {}
        for sid, log in self._logs.items():
            if len(log) >= self.snapshot_every and sid in self._streams:
                due.setdefault(self._streams[sid], []).append(sid)
        due = {w: sids for w, sids in due.items() if w not in self._dead}
        if not due:
            return
        got, _ = self._gather({w: self._workers[w].state_dicts.remote(sids) for w, sids in due.items()},
                              max(deadline, time.monotonic() + 1.0))
        for states in got.values():  # a worker that failed keeps its log: the restore replays it
            for sid, state in states.items():
                self._snapshots[sid] = state
                self._logs[sid] = []

    def _kill(self, actor: Any) -> None:
        try:
            self._ray.kill(actor)
        except Exception:  # noqa: BLE001  (it is already gone)
            pass

    def _restart(self, worker: int, deadline: float) -> None:
        """Replace a dead tracker actor (on a live node) and restore its streams from snapshots plus logs.

        A replacement can die too: placed on a node that is lost but not yet
        declared dead, say. Then another is started, until ``deadline``.
        """
        sids = [sid for sid, w in self._streams.items() if w == worker]
        states = {sid: self._snapshots[sid] for sid in sids if sid in self._snapshots}
        logs = {sid: self._logs.get(sid, []) for sid in sids}
        seqs = {sid: self._seq.get(sid, 0) for sid in sids}
        self._dead.add(worker)
        while True:
            self._kill(self._workers[worker])
            self._workers[worker] = self._new_worker()
            self.restarts += 1
            try:
                self._wait(self._workers[worker].restore.remote(states, logs, seqs), deadline,
                           f"tracker actor {worker} to be restored ({len(sids)} streams)")
                break
            except self._ray.exceptions.RayTaskError:
                raise
            except self._ray.exceptions.RayError as exc:  # the replacement died as well
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"tracker actor {worker} could not be restored within timeout_s={self.timeout_s:g} s "
                        f"(the last replacement: {type(exc).__name__})"
                    ) from None
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))  # let Ray notice the lost node
        self._dead.discard(worker)

    def _call(self, worker: int, method: str, *args: Any) -> Any:
        """One call on tracker actor ``worker``; a dead one is restored first (or on failure, once)."""
        self._check_open()
        deadline = time.monotonic() + self.timeout_s
        for attempt in range(2):
            if worker in self._dead:
                self._restart(worker, deadline)
            try:
                return self._wait(getattr(self._workers[worker], method).remote(*args), deadline,
                                  f"tracker actor {worker} to answer {method}()")
            except self._ray.exceptions.RayTaskError as exc:
                raise exc.as_instanceof_cause() from None
            except self._ray.exceptions.RayError:
                if attempt:
                    raise
                self._dead.add(worker)
        raise AssertionError("unreachable")

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

    def remove(self, stream_id: str) -> None:
        """Forget a stream and its tracks (KeyError if unknown)."""
        self._check_open()
        self._call(self._known(stream_id), "remove", stream_id)
        for table in (self._streams, self._placement, self._snapshots, self._logs, self._seq, self._unfinished):
            table.pop(stream_id, None)

    def reset(self, stream_id: str | None = None) -> None:
        """Forget the tracks of one stream, or of every stream when None."""
        self._check_open()
        for sid in self.streams if stream_id is None else (stream_id,):
            self._set_state(sid, self._call(self._known(sid), "reset", sid), 0)

    def _set_state(self, stream_id: str, state: dict[str, Any], seq: int) -> None:
        """The driver's record of a stream whose state was just set: the recovery snapshot, no log."""
        self._snapshots[stream_id] = state
        self._logs[stream_id] = []
        self._seq[stream_id] = seq
        self._unfinished.pop(stream_id, None)

    def state_dict(self, stream_id: str) -> dict[str, Any]:
        """One stream's ``DeepSORTTracker.state_dict()``."""
        self._check_open()
        return self._call(self._known(stream_id), "state_dicts", [stream_id])[stream_id]

    def load_state_dict(self, stream_id: str, state: dict[str, Any]) -> None:
        """Restore one stream from a ``state_dict`` (creating it if new); unchanged if it fails.

        The recovery snapshot is a copy: changing ``state`` afterwards changes nothing here.
        """
        self._check_open()
        worker = self.worker_of(stream_id)
        state = copy.deepcopy(state)
        seq = self._seq.get(stream_id, 0) + 1  # a new number: an earlier frame's retry is no repeat of this
        self._call(worker, "load", {stream_id: state}, {stream_id: seq})
        self._streams[stream_id] = worker
        self._set_state(stream_id, state, seq)

    def move(self, stream_id: str, worker: int) -> None:
        """Move a stream to tracker actor ``worker`` through its state; its ids continue."""
        self._check_open()
        if isinstance(worker, bool) or not isinstance(worker, int) or not 0 <= worker < self.num_workers:
            raise ValueError(f"worker must be an int in [0, {self.num_workers}), got {worker!r}")
        old = self._known(stream_id)
        if old == worker:
            return
        state = self._call(old, "pop", stream_id)
        seq = self._seq.get(stream_id, 0)
        self._call(worker, "load", {stream_id: state}, {stream_id: seq})
        self._placement[stream_id] = worker
        self._streams[stream_id] = worker
        self._set_state(stream_id, state, seq)

    def stats(self) -> dict[str, Any]:
        """Busy seconds per actor (time inside its methods), crops per embedder, updates, restarts (tracker
        and embedder actors; the registry actor's apart)."""
        return {
            "updates": self._updates,
            "restarts": self.restarts,
            "identity_restarts": self._identities.restarts if self._identities is not None else 0,
            "worker_busy_s": list(self._busy["workers"]),
            "embedder_busy_s": list(self._busy["embedders"]),
            "embedder_crops": list(self._crops),
            "streams_per_worker": [sum(1 for w in self._streams.values() if w == i) for i in range(self.num_workers)],
        }

    def close(self) -> None:
        """Stop the actors, and Ray if this object started it (idempotent; later calls raise RuntimeError)."""
        self._closed = True
        for actor in [*self._workers, *self._embedders, *self._identity_actor()]:
            self._kill(actor)
        self._workers, self._embedders, self._identities = [], [], None
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
