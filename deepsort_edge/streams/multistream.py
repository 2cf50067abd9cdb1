"""MultiStreamTracker: one DeepSORT tracker per camera, one batched embedder call per frame.

Each stream keeps its own :class:`~deepsort_edge.tracking.tracker.DeepSORTTracker`
(the tracking logic is not repeated here); only the appearance embedding is
centralised: the crops of every stream in one :meth:`MultiStreamTracker.update`
go through a single ``embed_batch`` call of the extractor.

How the crops are collected without duplicating the tracker's logic: each
update runs in two phases of the tracker's own API. ``prepare`` validates
every stream's input (once) and names the rows whose features it needs;
the crops of every stream then go through one batched extractor call;
``commit`` tracks each stream with its rows' features. Nothing in a tracker
changes before its ``commit``, so a stream whose input or crops fail is left
exactly as it was, and each stream gets the ids a standalone tracker with
the same extractor would give.

Memory: every stream holds its own track store. In ``"gallery"`` mode (not the default) its
galleries take ``capacity x nn_budget x D x 4`` bytes, where ``capacity``
starts at 64 track slots and doubles when needed: 64 x 100 x 1280 x 4 B =
33 MB per stream with the shipped 1280-d model (13 MB with a 512-d ReID
model), so 8 streams take about 260 MB. ``appearance_mode="ema"`` keeps one
embedding per track: 0.33 MB per stream. :meth:`MultiStreamTracker.nbytes`
reports the real figure.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .group import EmbedRequest, StreamGroup, StreamInput, check_stream_id
from .identities import IdentityRegistry
from ..optional import import_supervision
from ..tracking.tracker import (
    DeepSORTTracker,
    FeatureExtractor,
    SingleCaller,
    detached_result,
    detection_arguments,
    load_extractor,
)
from ..tracking.tracks import TrackView

__all__ = ["MultiStreamTracker", "StreamError", "embed_requests"]



class StreamError(ValueError):
    """Some streams' input was rejected; every other stream was updated.

    Each rejected stream's tracker is unchanged (a stream seen for the first
    time is not created). The message names every rejected stream.

    Attributes:
        errors: stream id -> the exception its input raised.
        results: stream id -> the result of each stream that was updated,
            as :meth:`MultiStreamTracker.update` would have returned it.
    """

    def __init__(self, errors: Mapping[str, BaseException], results: Mapping[str, Any]) -> None:
        self.errors = dict(errors)
        self.results = dict(results)
        details = "; ".join(f"stream {sid!r}: {type(e).__name__}: {e}" for sid, e in self.errors.items())
        super().__init__(
            f"{len(self.errors)} stream(s) rejected (their trackers are unchanged; the "
            f"{len(self.results)} other stream(s) were updated, see .results): {details}"
        )

    def __reduce__(self) -> tuple[Any, ...]:  # keep both mappings when pickled (Ray, processes)
        return (type(self), (self.errors, self.results))


def embed_requests(
    extractor: FeatureExtractor, requests: Mapping[str, EmbedRequest]
) -> tuple[dict[str, np.ndarray], dict[str, BaseException]]:
    """Embed every stream's crops, in one ``embed_batch`` call when the extractor has one.

    Args:
        extractor: a ``DeepSORTFeatureExtractor`` or anything with
            ``preprocess(frame, boxes)`` and ``embed_batch(batch)``; an object
            with only ``extract_features`` is called once per stream.
        requests: stream id -> ``(frame, rows)``: ``sv.Detections`` rows or
            ``(M, 4)`` boxes (``extract_features`` gets them as they are,
            ``preprocess`` gets their boxes).

    Returns:
        ``(features, errors)``: stream id -> ``(N, D)`` features, and stream
        id -> exception for streams whose crops failed (a failed batched call
        fails every stream in it).
    """
    features: dict[str, np.ndarray] = {}
    errors: dict[str, BaseException] = {}
    if not requests:
        return features, errors
    if not (callable(getattr(extractor, "preprocess", None)) and callable(getattr(extractor, "embed_batch", None))):
        for stream_id, (frame, boxes) in requests.items():
            try:
                features[stream_id] = np.asarray(extractor.extract_features(frame, boxes))
            except Exception as exc:  # noqa: BLE001
                errors[stream_id] = exc
        return features, errors
    batches: dict[str, np.ndarray] = {}
    for stream_id, (frame, rows) in requests.items():
        try:
            boxes = rows.xyxy if hasattr(rows, "xyxy") else rows  # preprocess(frame, boxes) takes boxes
            batches[stream_id] = np.asarray(extractor.preprocess(frame, boxes))
        except Exception as exc:  # noqa: BLE001
            errors[stream_id] = exc
    if not batches:
        return features, errors
    try:
        joined = np.concatenate(list(batches.values())) if len(batches) > 1 else next(iter(batches.values()))
        rows = np.asarray(extractor.embed_batch(joined))
        if rows.ndim != 2 or rows.shape[0] != joined.shape[0]:
            raise ValueError(f"embed_batch returned shape {rows.shape} for {joined.shape[0]} crops")
    except Exception as exc:  # noqa: BLE001
        failure = RuntimeError(f"the batched feature extractor call failed: {type(exc).__name__}: {exc}")
        failure.__cause__ = exc
        errors.update({stream_id: failure for stream_id in batches})
        return features, errors
    start = 0
    for stream_id, batch in batches.items():
        features[stream_id] = rows[start : start + len(batch)]
        start += len(batch)
    return features, errors


def unpack_detections(
    detections: Mapping[str, Any], frames: Mapping[str, Any] | None
) -> tuple[dict[str, StreamInput], dict[str, BaseException]]:
    """``update`` arguments as per-stream ``update_arrays`` arguments, plus per-stream type errors."""
    sv = import_supervision("MultiStreamTracker.update")
    if not isinstance(detections, Mapping):
        raise TypeError(f"detections must be a mapping of stream id -> sv.Detections, got {type(detections).__name__}")
    if frames is not None and not isinstance(frames, Mapping):
        raise TypeError(f"frames must be a mapping of stream id -> frame, or None; got {type(frames).__name__}")
    for stream_id in detections:
        check_stream_id(stream_id)
    inputs: dict[str, StreamInput] = {}
    errors: dict[str, BaseException] = {}
    for stream_id, dets in detections.items():
        if not isinstance(dets, sv.Detections):
            errors[stream_id] = TypeError(f"detections must be supervision.Detections, got {type(dets).__name__}")
            continue
        inputs[stream_id] = detection_arguments(dets, frames.get(stream_id) if frames is not None else None)
    return inputs, errors


def registry_for(global_ids: object) -> IdentityRegistry | None:
    """The registry a ``global_ids`` argument asks for (None for False)."""
    if isinstance(global_ids, IdentityRegistry):
        return global_ids
    if not isinstance(global_ids, (bool, np.bool_)):
        raise TypeError(f"global_ids must be True, False or an IdentityRegistry, got {type(global_ids).__name__}")
    return IdentityRegistry() if global_ids else None


def add_global_ids(
    registry: IdentityRegistry, trackers: Mapping[str, DeepSORTTracker], results: dict[str, Any],
    timestamps: Mapping[str, float] | None,
) -> None:
    """Put ``data["global_id"]`` into each stream's (fresh) result, streams in the results' order."""
    for sid, result in results.items():
        time = timestamps.get(sid) if timestamps is not None else None
        result.data["global_id"] = registry.global_ids(sid, trackers[sid], result, time)


def show_warnings(caught: list) -> None:
    """Show warnings recorded during an update, prefixed with their stream id."""
    for stream_id, message, category in caught:
        warnings.warn(f"stream {stream_id!r}: {message}", category, stacklevel=3)


class MultiStreamTracker:
    """Track many video streams at once; one batched embedder call per update.

    Each stream (camera) gets its own ``DeepSORTTracker`` with the same
    settings, created on its first update. Per stream the contract and the
    ids are exactly those of a separate ``DeepSORTTracker`` fed the same
    input; what changes is that the crops of all streams in one
    :meth:`update` go through one ``embed_batch`` call.

    Args:
        feature_extractor: a ``DeepSORTFeatureExtractor``, a path to an ONNX
            model, any object with ``preprocess(frame, boxes)`` and
            ``embed_batch(batch)`` (batched across streams) or with only
            ``extract_features(frame, detections)`` (called per stream with
            the ``sv.Detections`` rows to embed), or None
            (embeddings from ``detections.data["embeddings"]``, or motion only).
        device: where an extractor given as a path runs (as for ``DeepSORTTracker``).
        global_ids: True (an ``IdentityRegistry`` with default settings) or an
            ``IdentityRegistry``: every result also gets ``data["global_id"]``
            (int64, -1 while undecided), one id per person across streams and
            re-entries (see :mod:`deepsort_edge.streams.identities`; the registry is
            :attr:`identities`). False (default): nothing changes.
        **tracker_kwargs: ``DeepSORTTracker`` settings for every stream.

    Memory per stream is that of one ``DeepSORTTracker``: with the shipped
    1280-d model about 0.33 MB in the default ``"ema"`` mode (64 slots x one
    float32 embedding), 33 MB in ``"gallery"`` mode (64 slots x 100 x 1280-d
    float32); see :meth:`nbytes` and the module docstring.

    Example:
        >>> import numpy as np, supervision as sv
        >>> from deepsort_edge import MultiStreamTracker
        >>> multi = MultiStreamTracker(minimum_consecutive_frames=1)
        >>> dets = sv.Detections(xyxy=np.array([[10., 20., 50., 120.]]), confidence=np.array([0.9]))
        >>> out = multi.update({"cam0": dets, "cam1": dets})
        >>> out["cam0"].tracker_id, out["cam1"].tracker_id
        (array([1]), array([1]))
        >>> multi.streams
        ('cam0', 'cam1')
    """

    def __init__(
        self,
        feature_extractor: FeatureExtractor | str | Path | None = None,
        device: str | None = None,
        *,
        global_ids: bool | IdentityRegistry = False,
        **tracker_kwargs: Any,
    ) -> None:
        self.identities = registry_for(global_ids)
        self.feature_extractor = load_extractor(feature_extractor, device)
        self._group = StreamGroup(tracker_kwargs, embeds=self.feature_extractor is not None)
        self._busy = SingleCaller(  # one update at a time
            f"MultiStreamTracker at {id(self):#x}",
            "it updates its streams together: use one MultiStreamTracker per thread (or a lock)",
        )

    def update(
        self,
        detections: Mapping[str, Any],
        frames: Mapping[str, np.ndarray] | None = None,
        *,
        timestamps: Mapping[str, float] | None = None,
    ) -> dict[str, Any]:
        """Track one frame of every stream in ``detections``.

        Args:
            detections: stream id -> this frame's ``sv.Detections``. Streams
                not listed are not advanced (pass ``sv.Detections.empty()``
                for a frame without detections).
            frames: stream id -> BGR frame ``(H, W, 3)`` uint8; needed for the
                streams whose crops are embedded.
            timestamps: with ``global_ids``, stream id -> the frame's time in
                seconds on one clock for all streams; streams left out use
                their frame count over their frame rate.

        Returns:
            stream id -> a new ``sv.Detections`` with ``tracker_id`` set, as
            ``DeepSORTTracker.update`` returns it, in the order of ``detections``.

        Raises:
            StreamError: some streams' input was rejected; the message names
                them, their trackers are unchanged and the results of the
                other (updated) streams are in ``.results``.
            TypeError: ``detections`` is not a mapping or a stream id is not
                a str (nothing was updated).
            RuntimeError: another thread is inside ``update`` of this object
                (its streams are updated together, so one thread at a time;
                use one ``MultiStreamTracker`` per thread, or a lock).
        """
        inputs, errors = unpack_detections(detections, frames)
        with self._busy:
            sources = {sid: detections[sid] for sid in inputs}
            ids, requests, more, caught = self._group.begin(inputs, sources)
            errors.update(more)
            if requests:
                features, failed = embed_requests(self.feature_extractor, requests)  # type: ignore[arg-type]
                later, more, caught_later = self._group.finish(features, failed)
                ids.update(later)
                errors.update(more)
                caught.extend(caught_later)
        show_warnings(caught)
        results = {sid: detached_result(detections[sid], ids[sid]) for sid in detections if sid in ids}
        if self.identities is not None:
            with self._busy:  # the registry is shared by the streams: one caller at a time
                add_global_ids(self.identities, self._group.trackers, results, timestamps)
        if errors:
            raise StreamError({sid: errors[sid] for sid in detections if sid in errors}, results)
        return results

    # ------------------------------------------------------------------ streams
    @property
    def streams(self) -> tuple[str, ...]:
        """Stream ids, in the order they first appeared."""
        return tuple(self._group.trackers)

    def __len__(self) -> int:
        return len(self._group.trackers)

    def __contains__(self, stream_id: object) -> bool:
        return stream_id in self._group.trackers

    def __iter__(self) -> Iterator[str]:
        return iter(self.streams)

    def remove(self, stream_id: str) -> None:
        """Forget a stream and its tracks (KeyError if unknown)."""
        with self._busy:
            self._group.remove(stream_id)

    def reset(self, stream_id: str | None = None) -> None:
        """Forget the tracks of one stream (ids restart at 1), or of every stream when None."""
        with self._busy:
            for sid in self.streams if stream_id is None else (stream_id,):
                self._group.get(sid).reset()

    def tracks(self, stream_id: str) -> list[TrackView]:
        """Snapshots of one stream's live tracks, in birth order."""
        return self._group.get(stream_id).tracks

    def frame_count(self, stream_id: str) -> int:
        """Frames one stream has been updated with."""
        return self._group.get(stream_id).frame_count

    def warmup(self) -> MultiStreamTracker:
        """Compile the tracker kernels now rather than on the first frame."""
        DeepSORTTracker(**self._group.tracker_kwargs).warmup()
        return self

    def nbytes(self, stream_id: str | None = None) -> int:
        """Bytes held by one stream's track store (galleries included), or by all streams."""
        total = 0
        for sid in self.streams if stream_id is None else (check_stream_id(stream_id),):
            store = self._group.get(sid)._store  # capacity counts, which state_dict() leaves out
            total += sum(a.nbytes for a in vars(store).values() if isinstance(a, np.ndarray))
        return total

    # ------------------------------------------------------------------ state
    def state_dict(self, stream_id: str) -> dict[str, Any]:
        """One stream's ``DeepSORTTracker.state_dict()`` (resume it here, elsewhere, or alone)."""
        return self._group.get(stream_id).state_dict()

    def load_state_dict(self, stream_id: str, state: dict[str, Any]) -> None:
        """Restore one stream from a ``state_dict`` (creating it if new); unchanged if it fails."""
        with self._busy:
            self._group.load(stream_id, state)

    def __repr__(self) -> str:
        extractor = type(self.feature_extractor).__name__ if self.feature_extractor is not None else None
        frames = sum(self._group.trackers[s].frame_count for s in self.streams)
        return f"MultiStreamTracker(streams={len(self)}, frames={frames}, feature_extractor={extractor})"
