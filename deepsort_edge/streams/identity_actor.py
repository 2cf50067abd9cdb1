"""The identity registry of :class:`~deepsort_edge.streams.distributed.RayMultiStreamTracker` as its own Ray actor.

Fault tolerance as for the tracker actors: the driver keeps a snapshot of
the registry (its ``state_dict``, taken every ``snapshot_every`` updates)
and, in between, every batch of observations it sent. When the actor dies
or does not answer, a new one is started from the snapshot, replays the
logged batches (the registry is deterministic: the same calls give the same
ids) and then answers the batch that failed. So a restored registry gives
the same global ids as one that never died.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .identities import IdentityRegistry

__all__ = ["IdentityActor"]

Batch = list[tuple[str, Any, "float | None"]]  # (stream id, TrackerObservation, time or None)


class IdentityWorker:
    """Ray actor: the one ``IdentityRegistry`` of all streams, rebuilt from a state plus the batches since."""

    def __init__(self, state: dict[str, Any], log: list[Batch]) -> None:
        # Rebuilt through its state: arrays Ray hands over are read-only views.
        self.registry = IdentityRegistry()
        self.registry.load_state_dict(state)
        for batch in log:
            self.observe(batch)

    def ready(self) -> bool:
        return True

    def observe(self, batch: Batch) -> dict[str, Any]:
        return {sid: self.registry.observe_tracker(sid, observation, t) for sid, observation, t in batch}

    def state_dict(self) -> dict[str, Any]:
        return self.registry.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.registry.load_state_dict(state)


class IdentityActor:
    """Driver side of the registry actor: calls it, and restores it (snapshot + replay) when it is lost.

    Args:
        ray: the ``ray`` module.
        start: ``start(state, log)`` -> a new ``IdentityWorker`` actor handle.
        registry: the registry to start from.
        snapshot_every: batches between snapshots (the log is at most this long).
        max_restarts: restarts one call may make before it gives up (``RuntimeError``).
        kill: ``kill(handle)``, stops an actor that may already be gone.
    """

    def __init__(self, ray: Any, start: Callable[[dict[str, Any], list[Batch]], Any], registry: IdentityRegistry,
                 snapshot_every: int, max_restarts: int, kill: Callable[[Any], None]) -> None:
        self._ray, self._start, self._kill = ray, start, kill
        self.snapshot_every, self.max_restarts = snapshot_every, max_restarts
        self._snapshot = registry.state_dict()
        self._log: list[Batch] = []
        self.restarts = 0
        self.handle = start(self._snapshot, [])

    def _get(self, ref: Any, deadline: float) -> Any:
        return self._ray.get(ref, timeout=max(0.0, deadline - time.monotonic()))

    def _call(self, method: str, args: tuple, deadline: float) -> Any:
        """One method call; a lost actor (died, or no answer by the deadline) is restored and asked again."""
        errors = self._ray.exceptions
        for attempt in range(self.max_restarts + 1):
            try:
                return self._get(getattr(self.handle, method).remote(*args), deadline)
            except errors.RayTaskError as exc:
                raise exc.as_instanceof_cause() from None  # raised inside the registry: not a lost actor
            except errors.RayError as exc:
                if attempt == self.max_restarts or time.monotonic() >= deadline:
                    kind = "did not answer" if isinstance(exc, errors.GetTimeoutError) else "died"
                    raise RuntimeError(
                        f"the identity registry actor {kind} ({type(exc).__name__}) and could not be restored "
                        f"within {self.max_restarts} restarts before the deadline; the global ids stay as of "
                        "its last good batch"
                    ) from None
                self._restore(deadline)
        raise AssertionError("unreachable")

    def _restore(self, deadline: float) -> None:
        """A new actor from the snapshot, with the logged batches replayed."""
        self._kill(self.handle)
        self.restarts += 1
        self.handle = self._start(self._snapshot, self._log)
        try:
            self._get(self.handle.ready.remote(), deadline)
        except self._ray.exceptions.RayTaskError as exc:
            raise exc.as_instanceof_cause() from None
        except self._ray.exceptions.RayError:
            pass  # lost again: the next attempt of the call restores once more

    def observe(self, batch: Batch, deadline: float) -> dict[str, Any]:
        """Global ids for one update's observations (logged once answered; a snapshot when due)."""
        out = self._call("observe", (batch,), deadline)
        self._log.append(batch)
        if len(self._log) >= self.snapshot_every:
            self._snapshot = self._call("state_dict", (), max(deadline, time.monotonic() + 1.0))
            self._log = []
        return out

    def state_dict(self, deadline: float) -> dict[str, Any]:
        """The registry's ``state_dict()``."""
        return self._call("state_dict", (), deadline)

    def load_state_dict(self, state: dict[str, Any], deadline: float) -> None:
        """Restore the registry (checked by it; unchanged if bad); the new recovery snapshot."""
        self._call("load_state_dict", (state,), deadline)
        self._snapshot = self._call("state_dict", (), deadline)  # the registry's own copy, not the caller's
        self._log = []
