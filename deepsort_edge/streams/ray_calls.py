"""Calling the Ray actors with deadlines, and replacing the ones that die.

Waits, restarts, snapshots and the embedding step of
:class:`~deepsort_edge.streams.distributed.RayMultiStreamTracker`, as a mixin.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from .multistream import (
    EmbedRequest,
)

__all__ = ["ActorCalls"]


class ActorCalls:
    """How :class:`~deepsort_edge.streams.distributed.RayMultiStreamTracker` calls its actors.

    Every wait has a deadline (``timeout_s``); an actor that died, was lost
    with its node or did not answer is replaced: a tracker actor from its
    streams' snapshots plus the frames logged since, an embedder actor as
    it was (it holds no state) with its batch retried.
    """

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
