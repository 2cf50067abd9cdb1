"""The identity registry's decisions: which identity a tracklet joins, and undoing links that clash.

Decision rule (see :mod:`deepsort_edge.streams.identities` for how ids change):
all due tracklets of one stream in a frame are decided together by one optimal
assignment against the live identities (the costs and the solve are
:func:`deepsort_edge.kernels.registry.decision_costs` and
:func:`~deepsort_edge.kernels.registry.decide`), where staying without a link
costs ``link_threshold``; a tracklet's own identity counts ``margin`` less, and
a founder's links ``margin`` more (hysteresis). Pairs that put one person in two
places at once, or break the topology, are forbidden
(:mod:`deepsort_edge.streams.identity_topology`).
"""

from __future__ import annotations

import numpy as np

from ..kernels.registry import decide, decision_costs
from .identity_store import FINAL, PENDING, IdentityStore

__all__ = ["IdentityDecisions"]


class IdentityDecisions(IdentityStore):
    """:class:`~deepsort_edge.streams.identity_store.IdentityStore` plus the decisions on its tracklets."""

    def _clashes(self, slots: np.ndarray, previous: np.ndarray, s: int) -> np.ndarray:
        """Undo links that now put one identity in two places at once; True for rows to decide again.

        A link is made when the identity was not seen elsewhere since the
        tracklet began, but a tracklet that was only hidden may come back: then
        two rows of one stream in one frame, or a tracklet seen again after its
        identity was seen in a non-overlapping stream, share an identity. Of two
        such tracklets the one that began later leaves the identity and is
        decided again (now, or at its next frame).
        """
        out = np.zeros(slots.size, dtype=bool)
        ident = self.t_ident[slots]
        bound = np.flatnonzero(ident >= 0)
        if bound.size < 1:
            return out
        first = self.t_first[slots]
        # Same frame, same stream: all but the earliest-begun row of each identity leave.
        order = bound[np.lexsort((first[bound], ident[bound]))]
        repeat = order[1:][ident[order[1:]] == ident[order[:-1]]]
        elsewhere = self._busy[s].copy()
        elsewhere[s] = False
        if elsewhere.any():
            seen = self.i_seen[ident[bound]][:, elsewhere]
            moved = bound[(seen > previous[bound, None]).any(axis=1)]
        else:
            moved = bound[:0]
        for r in np.union1d(repeat, moved):
            t = int(slots[r])
            g = int(self.t_ident[t])
            if g < 0:
                continue
            others = [m for m in self._members[g] if m != t and self._busy[s, self.t_stream[m]]
                      and (self.t_stream[m] != s or r in repeat) and self.t_last[m] > previous[r]]
            if r in repeat or any(self.t_first[m] <= self.t_first[t] for m in others):
                self._undecide(t)
                out[r] = True
            else:
                for m in others:
                    self._undecide(m)
        return out

    def _undecide(self, t: int) -> None:
        """Take ``t`` out of its identity; it is decided again at its next frame."""
        self._leave(t)
        self.t_phase[t] = PENDING
        self.t_next[t] = self.t_count[t]

    def _decide(self, rows: np.ndarray, s: int) -> None:
        """One assignment of stream ``s``'s due tracklets to the live identities (see the module docstring)."""
        st = self.settings
        self._refresh_samples()
        live, raw, cost = decision_costs(
            rows, s, st.margin, self._busy, self._gap_lo, self._gap_hi, self.t_sum, self.t_first,
            self.t_last, self.t_stream, self.t_ident, self.t_founder, self.t_used, self.i_gid, self.i_seen,
            self.i_bank, self.i_valid)
        row_to_col = decide(cost, st.link_threshold)
        # Links first, then new identities: a new identity may take a slot freed by a retired one.
        chosen = row_to_col.tolist()
        for r, (t, j) in enumerate(zip(rows.tolist(), chosen)):
            if j < 0:
                continue
            g = int(live[j])
            if g != self.t_ident[t]:
                if self.t_ident[t] >= 0:
                    self._leave(t)
                self._join(t, g, founder=False, cost=float(raw[r, j]))
            else:
                self.t_cost[t] = raw[r, j]
        for t, j in zip(rows.tolist(), chosen):
            if j < 0 and (self.t_ident[t] < 0 or not self.t_founder[t]):
                if self.t_ident[t] >= 0:
                    self._leave(t)
                self._new_identity(t)
        self.t_next[rows] = 2 * self.t_count[rows]
        for t in rows[self.t_next[rows] > st.revise_frames].tolist():
            self._finalise(t)

    def _finalise(self, t: int) -> None:
        """The tracklet's id is final; from now on it updates its identity's model."""
        self.t_phase[t] = FINAL
        if not self.t_founder[t]:
            self._offer_sample(t, int(self.t_ident[t]))
