"""Many streams' trackers and their two-phase update, with no extractor of their own.

:class:`StreamGroup` keeps one :class:`~deepsort_edge.tracking.tracker.DeepSORTTracker`
per stream id and updates them all in the tracker's two phases: :meth:`StreamGroup.begin`
prepares every stream and names the crops each still needs embedded,
:meth:`StreamGroup.finish` commits them with their features. Whoever holds the
group embeds the crops in between, in one batch: the in-process
:class:`~deepsort_edge.streams.multistream.MultiStreamTracker` and each Ray
tracker actor of :mod:`deepsort_edge.streams.distributed`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..tracking.tracker import DeepSORTTracker, FrameResult, PreparedFrame

__all__ = ["EmbedRequest", "StreamGroup", "StreamInput", "check_stream_id"]

# stream id -> (xyxy, scores, embeddings, frame, class_id), the arguments of update_arrays.
StreamInput = tuple[Any, Any, Any, Any, Any]
# stream id -> (frame, rows): crops one stream needs embedded this frame; rows are the
# sv.Detections rows to embed where the stream was given sv.Detections, else (M, 4) boxes.
EmbedRequest = tuple[np.ndarray, Any]


def check_stream_id(stream_id: object) -> str:
    """Stream ids are strings (they are hashed to place streams on Ray actors)."""
    if not isinstance(stream_id, str):
        raise TypeError(f"stream ids must be str, got {type(stream_id).__name__} {stream_id!r}")
    return stream_id


class StreamGroup:
    """Per-stream trackers and the two-phase update; no extractor of its own.

    Used in-process by :class:`~deepsort_edge.streams.multistream.MultiStreamTracker` and inside each Ray
    tracker actor of :mod:`deepsort_edge.streams.distributed`, which embed the
    requested crops in between :meth:`begin` and :meth:`finish`.

    Args:
        tracker_kwargs: settings for every stream's ``DeepSORTTracker``.
        embeds: whether crops are embedded between the phases (else every
            stream tracks on given embeddings or on motion alone).
    """

    def __init__(self, tracker_kwargs: Mapping[str, Any], embeds: bool) -> None:
        self.tracker_kwargs = dict(tracker_kwargs)
        self.embeds = embeds
        self.trackers: dict[str, DeepSORTTracker] = {}
        self._pending: dict[str, PreparedFrame] = {}
        self._new: set[str] = set()
        DeepSORTTracker(**self.tracker_kwargs)  # bad settings fail here, not on the first frame

    def get(self, stream_id: str, *, create: bool = False) -> DeepSORTTracker:
        tracker = self.trackers.get(stream_id)
        if tracker is None:
            if not create:
                raise KeyError(f"no stream {stream_id!r} (known: {sorted(self.trackers)})")
            # The stand-in extractor is never called: it only makes prepare() ask for crops.
            tracker = DeepSORTTracker(feature_extractor=_BATCHED if self.embeds else None, **self.tracker_kwargs)
            self.trackers[stream_id] = tracker
            self._new.add(stream_id)
        return tracker

    def remove(self, stream_id: str) -> None:
        self.get(stream_id)
        del self.trackers[stream_id]
        self._pending.pop(stream_id, None)
        self._new.discard(stream_id)

    def load(self, stream_id: str, state: dict[str, Any]) -> None:
        """Restore one stream from a state dict, creating it if new; unchanged if that fails."""
        tracker = self.get(check_stream_id(stream_id), create=True)
        try:
            tracker.load_state_dict(state)
        except BaseException:
            if stream_id in self._new:
                self.remove(stream_id)
            raise
        self._new.discard(stream_id)

    def _phase(self, stream_id: str, run: Any, errors: dict, caught: list) -> Any:
        """``run(tracker)`` for one stream; its exception goes to ``errors`` (a new stream is dropped)."""
        tracker = self.get(stream_id, create=True)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            try:
                return run(tracker)
            except Exception as exc:  # noqa: BLE001  (reported per stream)
                errors[stream_id] = exc
                if stream_id in self._new:
                    self.remove(stream_id)  # a rejected first frame creates no stream
                return None
            finally:
                caught.extend((stream_id, str(w.message), w.category) for w in seen)

    def _done(self, stream_id: str, result: FrameResult | None, ids: dict) -> None:
        if result is not None:
            ids[stream_id] = result
            self._new.discard(stream_id)

    def begin(
        self, inputs: Mapping[str, StreamInput], sources: Mapping[str, Any] | None = None
    ) -> tuple[dict, dict, dict, list]:
        """Prepare every stream; commit those that need no features.

        Args:
            inputs: stream id -> ``update_arrays`` arguments.
            sources: stream id -> the ``sv.Detections`` the arguments came
                from (an extractor then gets their rows), where known.

        Returns:
            ``(ids, requests, errors, warnings)``: a ``FrameResult`` per
            stream that is done, the crops the others wait for (stream id ->
            ``(frame, rows)``, rows as ``sv.Detections`` where a source was
            given, else ``(M, 4)`` boxes), the rejected streams' exceptions,
            and ``(stream id, message, category)`` warnings to show (plain
            data, so that a Ray actor can send them back).
        """
        ids: dict[str, FrameResult] = {}
        errors: dict[str, BaseException] = {}
        requests: dict[str, EmbedRequest] = {}
        caught: list = []
        self._pending.clear()
        for stream_id, args in inputs.items():
            source = sources.get(stream_id) if sources is not None else None
            prepared = self._phase(stream_id, _preparer(args, source), errors, caught)
            if prepared is None:
                continue
            if prepared.embed_rows.size:
                requests[stream_id] = (prepared.frame, prepared.embed_input)
                self._pending[stream_id] = prepared
            else:
                self._done(stream_id, self._phase(stream_id, lambda t: t.commit(prepared), errors, caught), ids)
        return ids, requests, errors, caught

    def finish(
        self, features: Mapping[str, np.ndarray], failed: Mapping[str, BaseException] | None = None
    ) -> tuple[dict, dict, list]:
        """Commit the streams :meth:`begin` left waiting.

        Args:
            features: stream id -> raw ``(M, D)`` features of its requested crops.
            failed: stream id -> why its crops could not be embedded; those
                streams stay unchanged and are reported as errors.

        Returns:
            ``(ids, errors, warnings)`` as for :meth:`begin`.
        """
        ids: dict[str, FrameResult] = {}
        errors: dict[str, BaseException] = dict(failed or {})
        caught: list = []
        pending, self._pending = self._pending, {}
        for stream_id, prepared in pending.items():
            if stream_id in errors:
                if stream_id in self._new:
                    self.remove(stream_id)
                continue
            rows = features[stream_id]
            self._done(stream_id, self._phase(stream_id, lambda t: t.commit(prepared, rows), errors, caught), ids)
        return ids, errors, caught


class _Batched:
    """The extractor a stream's tracker holds in a group: the group embeds its crops, batched."""

    def extract_features(self, frame: np.ndarray, detections: Any) -> np.ndarray:
        raise RuntimeError("a stream's crops are embedded by its MultiStreamTracker, in one batch per update")


_BATCHED = _Batched()


def _preparer(args: StreamInput, source: Any) -> Any:
    if source is not None:
        return lambda tracker: tracker.prepare(source, args[3])
    return lambda tracker: tracker.prepare_arrays(*args)
