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
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..tracking.tracker import DeepSORTTracker, detached_result, load_extractor
from .identities import IdentityRegistry
from .identity_actor import IdentityActor, IdentityWorker
from .multistream import (
    StreamError,
    StreamInput,
    registry_for,
    show_warnings,
    unpack_detections,
)
from .ray_actors import (
    EmbedderWorker,
    LoggedFrame,
    TrackerWorker,
    frame_shape,
    input_digest,
    remote_class,
)
from .ray_calls import ActorCalls
from .ray_streams import RayStreams, stable_worker_index

__all__ = ["RayMultiStreamTracker", "default_num_cpus", "stable_worker_index"]


def _require_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ImportError(
            f'RayMultiStreamTracker needs Ray: pip install ".[cpu,ray]" in a clone ({exc})'
        ) from exc
    return ray


def _copy(value: Any) -> Any:
    return value.copy() if isinstance(value, np.ndarray) else copy.deepcopy(value)


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


class RayMultiStreamTracker(ActorCalls, RayStreams):
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
        self._logs: dict[str, list[LoggedFrame]] = {}
        self._unfinished: dict[str, tuple[str, Any]] = {}  # stream -> (digest, result) applied in a failed update
        self._dead: set[int] = set()  # workers to restore before their next use
        self._updates = 0
        self._workers = [self._new_worker() for _ in range(num_workers)]
        self._embedders = [self._new_embedder() for _ in range(num_embedders)] if self._embeds else []
        # The registry lives in its own actor, fed after every update (same ids as in-process).
        if registry is not None:
            self._identities = IdentityActor(
                ray, lambda state, log: remote_class(ray, IdentityWorker).options(num_cpus=num_cpus).remote(state, log),
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


    def _new_worker(self) -> Any:
        cls = remote_class(self._ray, TrackerWorker)
        return cls.options(**self._worker_options).remote(self._tracker_kwargs, self._embeds)

    def _new_embedder(self) -> Any:
        cls = remote_class(self._ray, EmbedderWorker)
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
            args = (_copy(xyxy), _copy(scores), _copy(embeddings), frame_shape(frame), _copy(class_id))
            digests[sid] = input_digest(args)
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
        results = {sid: detached_result(detections[sid], ids[sid]) for sid in detections if sid in ids}
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
                self._logs.setdefault(sid, []).append(LoggedFrame(args, features.get(sid)))
        self._dead |= failed
        return failed


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
