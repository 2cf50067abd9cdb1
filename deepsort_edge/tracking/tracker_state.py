"""A tracker's state seen from outside: track views, state dicts, state files, pickles.

Mixed into :class:`~deepsort_edge.tracking.tracker.DeepSORTTracker`. The state's checks
are :mod:`deepsort_edge.tracking.state`'s and its file :mod:`deepsort_edge.tracking.state_file`'s;
this mixin fills and restores a tracker with them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .extractor import FeatureExtractor
from .score_calibration import ScoreCalibration
from .score_split import threshold_in_force
from .single_caller import tracker_guard
from .state import STATE_FORMAT, STATE_VERSION, check_state
from .state_file import DEFAULT_MAX_BYTES, read_state_file, write_state_file
from .tracks import TrackStore, TrackView

if TYPE_CHECKING:  # typing.Self is Python 3.11+; annotations are strings here (PEP 563)
    from typing import Self

__all__ = ["TrackerState"]


class TrackerState:
    """A tracker's live tracks as views, and its whole state as a dict, a file or a pickle."""

    # ------------------------------------------------------------------ state
    @property
    def tracks(self) -> list[TrackView]:
        """Snapshots of the live tracks (tentative and confirmed), in birth order."""
        return self._store.views()

    def track_embeddings(self, track_ids: Any) -> np.ndarray | None:
        """``(N, D)`` float32 unit appearance embeddings of live confirmed tracks, by id; None when
        the tracker holds no embeddings (motion only). What global ids are matched on
        (:meth:`deepsort_edge.streams.identities.IdentityRegistry.update`).

        Raises:
            KeyError: An id is not a live confirmed track.
        """
        if not self._store.embedding_dim:
            return None
        return self._store.latest_embeddings(np.asarray(track_ids, dtype=np.int64).reshape(-1))

    @property
    def trackers(self) -> list[TrackView]:
        """roboflow trackers 2.0.1's name for :attr:`tracks`.

        Each item has ``tracker_id`` (-1 while tentative),
        ``number_of_successful_updates`` and ``get_state_bbox()``.
        """
        return self._store.views()

    @property
    def tracked_objects(self) -> list[TrackView]:
        """The confirmed live tracks (those that give ids), in birth order (roboflow trackers 2.6's name)."""
        return [track for track in self._store.views() if track.confirmed]

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: settings, counters, tracks, galleries and the score window.

        The feature extractor is not included (pass it again when resuming).
        See :mod:`deepsort_edge.tracking.state` for the fields.
        """
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "settings": self.settings.to_dict(),
            "frame_count": self.frame_count,
            "next_id": self._store.next_id,
            "embedding_dim": self._store.embedding_dim,
            "tracks": self._store.to_arrays(),
            "score_window": self._scores.to_array().tolist(),  # a plain list, as the header is JSON
            "activation_threshold": self._activation,  # in force until the next median (score_split)
            **({} if self._adapter is None else {"adaptation": self._adapter.state_dict()}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`, after checking every field of it.

        Settings go through the same checks as the constructor's (unknown
        names are an error, missing ones take their defaults); ids, counters,
        gallery indices, state codes, means, covariances and gallery rows are
        checked against the invariants the tracker keeps (see
        :func:`deepsort_edge.tracking.state.check_state`), so a state from an
        untrusted source cannot make the kernels read or write out of bounds.

        Raises:
            ValueError: Naming the first bad field; the tracker is unchanged.
        """
        checked = check_state(state)
        store = TrackStore.from_arrays(
            checked.tracks, checked.tracks["gallery"].shape[1], checked.embedding_dim,
            checked.settings.gallery_dtype,
        )
        self._apply_settings(checked.settings)
        self.reset()
        self._store = store
        store.next_id = checked.next_id
        self.frame_count = checked.frame_count
        self._scores = ScoreCalibration.from_array(checked.score_window)
        self._set_activation(threshold_in_force(checked.settings, self._scores)
                             if checked.activation_threshold is None else checked.activation_threshold)
        if checked.adaptation is not None:
            self._adapter.load_state_dict(checked.adaptation)  # type: ignore[union-attr]

    def save(self, path: str | Path) -> Path:
        """Write the tracker's state to a file (pickle-free ``.npz``, versioned).

        Safe to share: :meth:`load` reads it without unpickling and checks
        every field. The feature extractor is not saved. The file is written
        under a temporary name and then renamed, so it is never half-written.

        Example:
            >>> import tempfile
            >>> from deepsort_edge import DeepSORTTracker
            >>> tracker = DeepSORTTracker(minimum_consecutive_frames=1)
            >>> _ = tracker.update_arrays(np.array([[0., 0., 10., 30.]]))
            >>> with tempfile.TemporaryDirectory() as folder:
            ...     path = tracker.save(Path(folder) / "tracker.npz")
            ...     DeepSORTTracker.load(path).tracks[0].track_id
            1
        """
        return write_state_file(self.state_dict(), path)

    @classmethod
    def load(
        cls,
        path: str | Path,
        feature_extractor: FeatureExtractor | str | Path | None = None,
        device: str | None = None,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> Self:
        """A tracker resumed from a :meth:`save` file (settings come from the file).

        Args:
            path: The state file.
            feature_extractor: As in the constructor (the file holds none).
            device: As in the constructor.
            max_bytes: Refuse files whose arrays are larger than this.

        Raises:
            FileNotFoundError: No such file.
            ValueError: Not a state file, or a field fails its checks.
        """
        tracker = cls(feature_extractor=feature_extractor, device=device)
        tracker.load_state_dict(read_state_file(path, max_bytes=max_bytes))
        return tracker

    # Pickle is for trusted use only (unpickling runs code); share save() files instead.
    def __getstate__(self) -> dict[str, Any]:
        return {"state": self.state_dict(), "feature_extractor": self.feature_extractor}

    def __setstate__(self, pickled: dict[str, Any]) -> None:
        self.feature_extractor = pickled["feature_extractor"]
        self.preset = None
        self._epoch = 0
        self._busy = tracker_guard(self)  # locks do not pickle: a fresh one
        self.load_state_dict(pickled["state"])
