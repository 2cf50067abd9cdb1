"""Track storage as parallel arrays (structure of arrays).

Each track owns one *slot*: a row in every array. Kernels get the arrays and
the slots to work on, so per-frame work never builds Python objects per
track. ``order`` lists live slots by birth, which fixes the iteration order
of association (and so makes results independent of slot numbering).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .boxes import xyah_to_xyxy
from ..kernels.arguments import TrackArrays
from ..kernels.constants import CONFIRMED, FREE, LIVE, NEXT_ID, TENTATIVE

__all__ = ["CONFIRMED", "TENTATIVE", "TRACK_FIELDS", "TrackStore", "TrackView"]

# Per-track arrays other than the gallery, with their dtypes and trailing shapes.
TRACK_FIELDS: dict[str, tuple[type, tuple[int, ...]]] = {
    "mean": (np.float64, (8,)),
    "covariance": (np.float64, (8, 8)),
    "track_id": (np.int64, ()),
    "state": (np.int8, ()),
    "hits": (np.int32, ()),
    "age": (np.int32, ()),
    "time_since_update": (np.int32, ()),
    "gallery_count": (np.int32, ()),
    "gallery_head": (np.int32, ()),
    "class_id": (np.int64, ()),
}


@dataclass(frozen=True)
class TrackView:
    """A read-only snapshot of one track, for inspection and debugging.

    Also answers to roboflow trackers' names: ``tracker_id``,
    ``number_of_successful_updates`` and ``get_state_bbox()``.
    """

    track_id: int
    confirmed: bool
    xyxy: np.ndarray
    velocity_xyah: np.ndarray
    hits: int
    age: int
    time_since_update: int
    gallery_size: int
    class_id: int

    @property
    def tracker_id(self) -> int:
        """The id reported for this track: ``track_id`` once confirmed, -1 while tentative."""
        return self.track_id if self.confirmed else -1

    @property
    def number_of_successful_updates(self) -> int:
        """Frames this track was matched in, its first included (``hits``)."""
        return self.hits

    def get_state_bbox(self) -> np.ndarray:
        """The filter's current box ``(4,)`` xyxy (a copy)."""
        return self.xyxy.copy()


class TrackStore:
    """Growable arrays holding every live track's filter state and gallery.

    ``order`` is a view of the live slots in birth order; unused slots wait
    on a stack (``free``). ``counts`` holds the live and free counts and the
    next track id, so the frame kernel can change all of them in place.
    ``arrays`` bundles every array as a plain tuple in the order of
    ``kernels.arguments.TrackArrays``, for the frame kernel.
    """

    def __init__(self, gallery_size: int, capacity: int = 64, gallery_dtype: str = "float32") -> None:
        self.gallery_size = gallery_size
        # float16 entries live as their uint16 bits (numba has no float16; see kernels/half.py).
        self.gallery_storage = np.uint16 if gallery_dtype == "float16" else np.float32
        self.embedding_dim = 0
        self.capacity = 0
        self.counts = np.array([0, 0, 1], dtype=np.int64)  # live, free, next id (LIVE/FREE/NEXT_ID)
        self.order_buffer = np.empty(0, dtype=np.intp)
        self.free = np.empty(0, dtype=np.intp)
        self.gallery = np.zeros((0, gallery_size, 0), dtype=self.gallery_storage)
        for name, (dtype, shape) in TRACK_FIELDS.items():
            setattr(self, name, np.zeros((0, *shape), dtype=dtype))
        self._grow(capacity)

    def __len__(self) -> int:
        return int(self.counts[LIVE])

    @property
    def order(self) -> np.ndarray:
        """Live slots in birth order (a view: copy it to keep it past the next frame)."""
        return self.order_buffer[: self.counts[LIVE]]

    @property
    def next_id(self) -> int:
        return int(self.counts[NEXT_ID])

    @next_id.setter
    def next_id(self, value: int) -> None:
        self.counts[NEXT_ID] = value

    def _grow(self, capacity: int) -> None:
        """Enlarge every array to ``capacity`` rows, keeping their contents."""
        old = self.capacity
        for name, (dtype, shape) in TRACK_FIELDS.items():
            grown = np.zeros((capacity, *shape), dtype=dtype)
            grown[:old] = getattr(self, name)
            setattr(self, name, grown)
        gallery = np.zeros((capacity, self.gallery_size, self.embedding_dim), dtype=self.gallery_storage)
        gallery[:old] = self.gallery
        self.gallery = gallery
        order = np.empty(capacity, dtype=np.intp)
        order[:old] = self.order_buffer
        self.order_buffer = order
        n_free = int(self.counts[FREE])
        free = np.empty(capacity, dtype=np.intp)
        free[:n_free] = self.free[:n_free]
        free[n_free : n_free + capacity - old] = np.arange(capacity - 1, old - 1, -1)  # low slots on top
        self.free = free
        self.counts[FREE] = n_free + capacity - old
        self.capacity = capacity
        self._pack()

    def _pack(self) -> None:
        """Bundle the arrays for the frame kernel, after any of them was replaced."""
        self.arrays = tuple(TrackArrays(
            means=self.mean, covariances=self.covariance, track_ids=self.track_id, states=self.state,
            hits=self.hits, ages=self.age, time_since_update=self.time_since_update, galleries=self.gallery,
            gallery_counts=self.gallery_count, gallery_heads=self.gallery_head, track_classes=self.class_id,
            order=self.order_buffer, free=self.free, counts=self.counts,
        ))

    def reserve(self, count: int) -> None:
        """Make sure at least ``count`` slots are free (the frame kernel never grows arrays)."""
        if count > self.counts[FREE]:
            self._grow(max(2 * self.capacity, self.capacity + count))

    def set_embedding_dim(self, dim: int) -> None:
        """Fix the embedding dimension (allocates galleries on first use)."""
        if dim == self.embedding_dim:
            return
        if self.embedding_dim != 0:
            raise ValueError(
                f"embeddings have dimension {dim}, but this tracker holds "
                f"{self.embedding_dim}-d embeddings; call reset() to change models"
            )
        self.embedding_dim = dim
        self.gallery = np.zeros((self.capacity, self.gallery_size, dim), dtype=self.gallery_storage)
        self._pack()

    def clear_embedding_dim(self) -> None:
        """Undo the first :meth:`set_embedding_dim` (its frame was rejected)."""
        self.embedding_dim = 0
        self.gallery = np.zeros((self.capacity, self.gallery_size, 0), dtype=self.gallery_storage)
        self._pack()

    def allocate(self, count: int) -> np.ndarray:
        """Take ``count`` fresh slots off the free stack, appended to ``order`` (birth order)."""
        self.reserve(count)
        n_free, n_live = int(self.counts[FREE]), int(self.counts[LIVE])
        slots = self.free[n_free - count : n_free][::-1].copy()
        for name in ("track_id", "state", "hits", "age", "time_since_update", "gallery_count", "gallery_head",
                     "class_id"):
            getattr(self, name)[slots] = 0
        self.order_buffer[n_live : n_live + count] = slots
        self.counts[FREE] -= count
        self.counts[LIVE] += count
        return slots

    def views(self) -> list[TrackView]:
        """Snapshots of the live tracks, in birth order."""
        order = self.order
        boxes = xyah_to_xyxy(self.mean[order, :4])
        return [
            TrackView(
                track_id=int(self.track_id[s]),
                confirmed=bool(self.state[s] == CONFIRMED),
                xyxy=boxes[i],
                velocity_xyah=self.mean[s, 4:].copy(),
                hits=int(self.hits[s]),
                age=int(self.age[s]),
                time_since_update=int(self.time_since_update[s]),
                gallery_size=int(self.gallery_count[s]),
                class_id=int(self.class_id[s]),
            )
            for i, s in enumerate(order)
        ]

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Live tracks in birth order, as compact copies (for saving state)."""
        order = self.order
        arrays = {name: getattr(self, name)[order].copy() for name in TRACK_FIELDS}
        gallery = self.gallery_float32(order)
        # Rows past gallery_count are never read; a slot's earlier owner may have left them.
        gallery[np.arange(self.gallery_size)[None, :] >= arrays["gallery_count"][:, None]] = 0.0
        arrays["gallery"] = gallery
        return arrays

    def latest_embeddings(self, track_ids: np.ndarray) -> np.ndarray:
        """``(N, D)`` float32: each live track's current embedding (the EMA vector in EMA mode, the
        newest gallery entry in gallery mode: row 0 and ``gallery_head - 1`` are the same slot there).

        Raises:
            KeyError: An id is not a live confirmed track.
        """
        order = self.order
        slot_of = dict(zip(self.track_id[order].tolist(), order.tolist()))
        slot_of.pop(0, None)  # tentative tracks have no id yet
        try:
            slots = np.array([slot_of[int(i)] for i in track_ids], dtype=np.intp)
        except KeyError as exc:
            raise KeyError(f"no live confirmed track with id {exc.args[0]}") from None
        newest = (self.gallery_head[slots] - 1) % self.gallery_size
        return self.gallery_float32(slots)[np.arange(slots.size), newest]

    def gallery_float32(self, slots: np.ndarray) -> np.ndarray:
        """The galleries of ``slots`` as float32 (a copy)."""
        gallery = self.gallery[slots]
        return gallery.view(np.float16).astype(np.float32) if self.gallery_storage == np.uint16 else gallery

    @classmethod
    def from_arrays(
        cls, arrays: dict[str, np.ndarray], gallery_size: int, embedding_dim: int, gallery_dtype: str = "float32"
    ) -> TrackStore:
        """Rebuild a store from :meth:`to_arrays` output (slots 0..n-1 in order).

        Only shapes are checked here: values must already have passed
        ``deepsort_edge.tracking.state.check_state``.
        """
        count = int(arrays["mean"].shape[0])
        # Exactly the loaded tracks: a spare 64 slots of a large gallery would be gigabytes.
        store = cls(gallery_size, capacity=max(count, 1), gallery_dtype=gallery_dtype)
        if embedding_dim:
            store.set_embedding_dim(embedding_dim)
        slots = store.allocate(count)
        for name, (dtype, shape) in TRACK_FIELDS.items():
            value = np.asarray(arrays[name], dtype=dtype)
            if value.shape != (count, *shape):
                raise ValueError(f"state field {name!r} has shape {value.shape}, expected {(count, *shape)}")
            getattr(store, name)[slots] = value
        gallery = np.asarray(arrays["gallery"], dtype=np.float32)
        if gallery.shape != (count, gallery_size, embedding_dim):
            raise ValueError(
                f"state field 'gallery' has shape {gallery.shape}, "
                f"expected {(count, gallery_size, embedding_dim)}"
            )
        store.gallery[slots] = gallery.astype(np.float16).view(np.uint16) if gallery_dtype == "float16" else gallery
        return store
