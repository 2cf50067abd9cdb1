"""The Ray actors of the distributed tracker: tracker actors and embedder actors.

Started by :class:`~deepsort_edge.streams.distributed.RayMultiStreamTracker`. A
:class:`TrackerWorker` holds the trackers of the streams placed on it (a
:class:`~deepsort_edge.streams.group.StreamGroup`) and applies each stream's
frames in order, each exactly once; it sees frame shapes (:class:`FrameShape`),
never pixels. An :class:`EmbedderWorker` holds one feature extractor and embeds
the crops of many streams in one batch. :class:`LoggedFrame` is what the
driver keeps of each applied frame to replay it on a restored actor.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ..tracking.tracker import DeepSORTTracker, load_extractor
from .identities import tracker_observation
from .multistream import (
    EmbedRequest,
    StreamGroup,
    StreamInput,
    embed_requests,
)

__all__ = [
    "EmbedderWorker",
    "FrameShape",
    "LoggedFrame",
    "TrackerWorker",
    "frame_shape",
    "input_digest",
    "remote_class",
    "stand_in",
]


class FrameShape(NamedTuple):
    """What a tracker actor needs to know of a frame: its shape and dtype, not its pixels."""

    shape: tuple[int, ...]
    dtype: str


def frame_shape(frame: Any) -> Any:
    """A frame as the tracker actors get it: its :class:`FrameShape` (other values pass through)."""
    return FrameShape(tuple(frame.shape), frame.dtype.str) if isinstance(frame, np.ndarray) else frame


def stand_in(frame: Any) -> Any:
    """A zero-memory array with the frame's shape and dtype: validation sees the same frame."""
    if isinstance(frame, FrameShape):
        return np.broadcast_to(np.zeros((), dtype=np.dtype(frame.dtype)), frame.shape)
    return frame


@dataclass
class LoggedFrame:
    """One successful update of one stream, enough to replay it exactly."""

    args: StreamInput  # frame replaced by its FrameShape
    features: np.ndarray | None  # raw features its crops got, None if it had none


def input_digest(args: StreamInput) -> str:
    """A fingerprint of one stream's frame input: tells a retried frame from a new one."""
    h = hashlib.blake2b(digest_size=16)
    for value in args:
        if isinstance(value, np.ndarray):
            h.update(f"{value.dtype.str}{value.shape}".encode())
            h.update(np.ascontiguousarray(value).tobytes())
        else:
            h.update(repr(value).encode())
    return h.hexdigest()


class TrackerWorker:
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
                local[sid] = (*args[:3], stand_in(args[3]), *args[4:])
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

    def restore(self, states: dict[str, dict[str, Any]], logs: dict[str, list[LoggedFrame]], seqs: dict[str, int]) -> None:
        """Load snapshots, then replay each stream's logged frames (fresh trackers where no snapshot)."""
        self.load(states, {sid: seqs[sid] - len(logs.get(sid, [])) for sid in states})
        for sid, records in logs.items():
            for record in records:
                _, requests, errors, _ = self.group.begin(
                    {sid: (*record.args[:3], stand_in(record.args[3]), *record.args[4:])}
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


class EmbedderWorker:
    """Ray actor: one feature extractor; embeds the crops of many streams in one batch."""

    def __init__(self, feature_extractor: Any, device: str | None) -> None:
        self.extractor = load_extractor(feature_extractor, device)

    def ready(self) -> bool:
        return True

    def embed(self, requests: dict[str, EmbedRequest]) -> tuple[dict, dict, float]:
        start = time.perf_counter()
        features, errors = embed_requests(self.extractor, requests)
        return features, errors, time.perf_counter() - start


REMOTE_CLASSES: dict[str, Any] = {}


def remote_class(ray: Any, cls: type) -> Any:
    """``ray.remote(cls)``, made once per class and process."""
    if cls.__name__ not in REMOTE_CLASSES:
        REMOTE_CLASSES[cls.__name__] = ray.remote(cls)
    return REMOTE_CLASSES[cls.__name__]
