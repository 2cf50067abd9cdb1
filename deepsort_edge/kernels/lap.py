"""Linear assignment with a cost limit: Jonker-Volgenant shortest augmenting paths.

Problem. For an ``(n_rows, n_cols)`` cost matrix ``C`` and a limit ``L``, find a
partial one-to-one matching ``M`` that minimises::

    sum_{(i, j) in M} C[i, j] + L / 2 * (#unmatched rows + #unmatched cols)

Matching ``(i, j)`` replaces two unmatched ends (together ``L``) by ``C[i, j]``,
so a pair is used only when it does not raise the total. Entries above ``L``,
``+inf`` and ``NaN`` are forbidden and never assigned.

Augmented problem. Up to a constant, the objective equals a rectangular
assignment in which every row *must* be assigned, either to a real column
(cost ``C[i, j]``) or to its own private dummy column (cost ``L``, meaning
"unassigned"). That problem is solved exactly by shortest augmenting paths
(Jonker & Volgenant 1987; rectangular form in Crouse 2016): rows enter one at a
time, each along the cheapest alternating path to a free column, found by a
Dijkstra search over reduced costs ``C[i, j] - u[i] - v[j] >= 0``; the duals
``u, v`` are then shifted so the reduced costs stay non-negative. The dummy
columns are never materialised: a dummy is reachable only from its own row, so
it is one comparison per scanned row, and its dual stays 0.

Components. After gating, tracking cost matrices are block-sparse: most pairs
are forbidden and the feasible pairs fall into many small connected components
of the track/detection bipartite graph, which are independent problems.
Feasible pairs are stored row-wise (CSR) and the Dijkstra frontier holds only
columns reached so far, so a search never leaves its row's component and its
work grows with the part of the component it explores, not with the matrix
size: each component is solved on its own rows and columns without being
copied out. When the feasible pairs are already one-to-one, they are assigned
directly.

``cost_limit = inf`` is the classic rectangular assignment (``+inf`` entries
forbidden): maximum cardinality first, then minimum total cost. It uses the
finite dummy cost ``|c_max| + (k + 1) (c_max - c_min) + 1`` (``k = min(n_rows,
n_cols)``), which exceeds the cost change of any augmenting path, so a larger
matching always wins. When a matching of size ``k`` exists no row takes its
dummy and the result is exact; otherwise it is exact up to the rounding of
numbers of that size.
"""

from __future__ import annotations

import numpy as np

from .jit import kernel


@kernel
def _is_feasible(c: float, cost_limit: float) -> bool:
    # NaN fails both comparisons, so NaN entries are forbidden like +inf.
    return c <= cost_limit and c < np.inf


@kernel
def dense_to_csr(cost: np.ndarray, cost_limit: float):
    """Feasible entries of a dense cost as CSR ``(indptr, indices, values)``, columns ascending."""
    n_rows, n_cols = cost.shape
    indptr = np.zeros(n_rows + 1, np.intp)
    for i in range(n_rows):
        count = 0
        for j in range(n_cols):
            if _is_feasible(cost[i, j], cost_limit):
                count += 1
        indptr[i + 1] = indptr[i] + count
    indices = np.empty(indptr[n_rows], np.intp)
    values = np.empty(indptr[n_rows], np.float64)
    k = 0
    for i in range(n_rows):
        for j in range(n_cols):
            c = cost[i, j]
            if _is_feasible(c, cost_limit):
                indices[k] = j
                values[k] = c
                k += 1
    return indptr, indices, values


@kernel(inline=True)
def _flip_path(
    root: int, sink: int, dummy_row: int, pred: np.ndarray, row_to_col: np.ndarray, col_to_row: np.ndarray
) -> None:
    """Assign along the path found from ``root``, walking back from its free column ``sink`` (or, with
    ``sink`` -1, from ``dummy_row``, which gives up its column for its dummy)."""
    if sink < 0:
        j = row_to_col[dummy_row]
        row_to_col[dummy_row] = -1
        done = dummy_row == root
    else:
        j = sink
        done = False
    while not done:
        i = pred[j]
        col_to_row[j] = i
        next_j = row_to_col[i]
        row_to_col[i] = j
        done = i == root
        j = next_j


@kernel
def _shortest_augmenting_paths(
    indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, n_cols: int, unassigned_cost: float,
    row_to_col: np.ndarray, col_to_row: np.ndarray,
) -> None:
    """Assign each CSR row along a shortest augmenting path (see the module docstring).

    ``unassigned_cost`` is the cost of a row's private dummy column; with ``inf`` a row that reaches
    no free column is left unassigned. Writes ``row_to_col`` and ``col_to_row`` (both must start at -1).
    """
    n_rows = indptr.shape[0] - 1
    u = np.zeros(n_rows)
    v = np.zeros(n_cols)
    dist = np.empty(n_cols)
    pred = np.empty(n_cols, np.intp)
    # Per-search column state: 0 unseen, 1 on the frontier, 2 settled.
    state = np.zeros(n_cols, np.uint8)
    frontier = np.empty(n_cols, np.intp)
    where = np.empty(n_cols, np.intp)  # position of a column in ``frontier``
    touched = np.empty(n_cols, np.intp)
    settled = np.empty(n_cols, np.intp)
    visited = np.empty(n_rows, np.intp)

    for root in range(n_rows):
        # A row without feasible columns can only take its dummy; it is never reached again.
        if indptr[root] == indptr[root + 1]:
            continue
        i = root
        d_i = 0.0
        n_front = 0
        n_touched = 0
        n_settled = 0
        n_visited = 0
        best_dummy = np.inf
        dummy_row = -1
        sink = -1
        total = np.inf
        found = False
        while True:
            visited[n_visited] = i
            n_visited += 1
            u_i = u[i]
            candidate = d_i + unassigned_cost - u_i
            if candidate < best_dummy:
                best_dummy = candidate
                dummy_row = i
            start = indptr[i]
            stop = indptr[i + 1]
            # A fully feasible row reaches every unsettled column, so it can pick the closest one
            # while relaxing (one pass, as dense JV does) instead of a second pass over the frontier.
            full = stop - start == n_cols
            pos = -1
            best_j = -1
            lowest = np.inf
            for k in range(start, stop):
                j = indices[k]
                s = state[j]
                if s == 2:
                    continue
                r = d_i + values[k] - u_i - v[j]
                if s == 0:
                    state[j] = 1
                    dist[j] = r
                    pred[j] = i
                    where[j] = n_front
                    frontier[n_front] = j
                    n_front += 1
                    touched[n_touched] = j
                    n_touched += 1
                elif r < dist[j]:
                    dist[j] = r
                    pred[j] = i
                if full:
                    d_j = dist[j]
                    if d_j < lowest or (d_j == lowest and col_to_row[j] < 0):
                        lowest = d_j
                        best_j = j
            if full:
                if best_j >= 0:
                    pos = where[best_j]
            else:
                # Closest frontier column; on ties prefer a free one, which ends the search sooner.
                for p in range(n_front):
                    j = frontier[p]
                    d_j = dist[j]
                    if d_j < lowest or (d_j == lowest and col_to_row[j] < 0):
                        lowest = d_j
                        pos = p
            if pos < 0 or best_dummy < lowest or (best_dummy == lowest and col_to_row[frontier[pos]] >= 0):
                if best_dummy < np.inf:
                    total = best_dummy
                    found = True
                break
            j = frontier[pos]
            n_front -= 1
            moved = frontier[n_front]
            frontier[pos] = moved
            where[moved] = pos
            state[j] = 2
            settled[n_settled] = j
            n_settled += 1
            if col_to_row[j] < 0:
                sink = j
                total = lowest
                found = True
                break
            i = col_to_row[j]
            d_i = lowest

        if found:
            # Dual shift: reduced costs stay >= 0 everywhere and become 0 along the new path.
            u[root] += total
            for t in range(1, n_visited):
                r_t = visited[t]
                u[r_t] += total - dist[row_to_col[r_t]]
            for t in range(n_settled):
                j = settled[t]
                v[j] -= total - dist[j]
            _flip_path(root, sink, dummy_row, pred, row_to_col, col_to_row)
        for t in range(n_touched):
            state[touched[t]] = 0


@kernel
def _transpose_csr(indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, n_cols: int):
    """The same entries with rows and columns swapped; each new row lists its columns in ascending order."""
    n_rows = indptr.shape[0] - 1
    t_indptr = np.zeros(n_cols + 1, np.intp)
    for k in range(indptr[n_rows]):
        t_indptr[indices[k] + 1] += 1
    for j in range(n_cols):
        t_indptr[j + 1] += t_indptr[j]
    fill = np.empty(n_cols, np.intp)
    for j in range(n_cols):
        fill[j] = t_indptr[j]
    t_indices = np.empty(indptr[n_rows], np.intp)
    t_values = np.empty(indptr[n_rows], np.float64)
    for i in range(n_rows):
        for k in range(indptr[i], indptr[i + 1]):
            j = indices[k]
            p = fill[j]
            t_indices[p] = i
            t_values[p] = values[k]
            fill[j] = p + 1
    return t_indptr, t_indices, t_values


@kernel
def solve_sparse(
    indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, n_cols: int, cost_limit: float
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`solve_assignment` for a cost given as CSR rows; absent entries are forbidden.

    ``indices``/``values`` are read up to ``indptr[-1]`` (they may be longer).

    Each row lists its columns in ascending order. Entries that are not
    feasible (above ``cost_limit``, ``inf``, ``NaN``) are ignored like absent
    ones, so the result equals ``solve_assignment`` on the dense matrix.
    """
    n_rows = indptr.shape[0] - 1
    row_to_col = np.full(n_rows, -1, np.intp)
    col_to_row = np.full(n_cols, -1, np.intp)
    if n_rows == 0 or n_cols == 0:
        return row_to_col, col_to_row
    # Keep only feasible entries (a no-op copy-free pass when all are) and take degrees and range.
    row_deg = np.zeros(n_rows, np.intp)
    col_deg = np.zeros(n_cols, np.intp)
    last_col = np.full(n_rows, -1, np.intp)
    lo = np.inf
    hi = -np.inf
    dropped = False
    for i in range(n_rows):
        for k in range(indptr[i], indptr[i + 1]):
            c = values[k]
            if _is_feasible(c, cost_limit):
                if c == -np.inf:
                    raise ValueError("cost must not contain -inf")
                j = indices[k]
                row_deg[i] += 1
                col_deg[j] += 1
                last_col[i] = j
                lo = min(lo, c)
                hi = max(hi, c)
            else:
                dropped = True
    if dropped:
        kept_ptr = np.zeros(n_rows + 1, np.intp)
        for i in range(n_rows):
            kept_ptr[i + 1] = kept_ptr[i] + row_deg[i]
        kept_idx = np.empty(kept_ptr[n_rows], np.intp)
        kept_val = np.empty(kept_ptr[n_rows], np.float64)
        p = 0
        for i in range(n_rows):
            for k in range(indptr[i], indptr[i + 1]):
                if _is_feasible(values[k], cost_limit):
                    kept_idx[p] = indices[k]
                    kept_val[p] = values[k]
                    p += 1
        indptr, indices, values = kept_ptr, kept_idx, kept_val

    # Fast path: each row and column has at most one feasible partner, so every such pair is optimal.
    one_to_one = True
    for i in range(n_rows):
        if row_deg[i] > 1:
            one_to_one = False
            break
    if one_to_one:
        for j in range(n_cols):
            if col_deg[j] > 1:
                one_to_one = False
                break
    if one_to_one:
        for i in range(n_rows):
            j = last_col[i]
            if j >= 0:
                row_to_col[i] = j
                col_to_row[j] = i
        return row_to_col, col_to_row

    if cost_limit < np.inf:
        unassigned_cost = cost_limit
    else:
        k = min(n_rows, n_cols)
        unassigned_cost = abs(hi) + (k + 1) * (hi - lo) + 1.0
    # One search per row: put the shorter side on the rows.
    if n_rows <= n_cols:
        _shortest_augmenting_paths(indptr, indices, values, n_cols, unassigned_cost, row_to_col, col_to_row)
    else:
        t_indptr, t_indices, t_values = _transpose_csr(indptr, indices, values, n_cols)
        _shortest_augmenting_paths(t_indptr, t_indices, t_values, n_rows, unassigned_cost, col_to_row, row_to_col)
    return row_to_col, col_to_row


def solve_assignment(cost: np.ndarray, cost_limit: float) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost partial assignment where leaving an end unassigned costs ``cost_limit / 2``.

    Minimises ``sum cost[i, j]`` over assigned pairs plus ``cost_limit / 2`` per
    unassigned row and per unassigned column. Pairs with ``cost > cost_limit``,
    ``+inf`` or ``NaN`` are never assigned; a pair with ``cost == cost_limit``
    changes nothing and may go either way. ``cost_limit = inf`` gives the
    classic rectangular assignment: as many pairs as possible among finite
    entries (``min(n_rows, n_cols)`` when such a matching exists), then the
    minimum total cost.

    Args:
        cost: ``(n_rows, n_cols)`` float64, C-contiguous; not modified. Any
            shape, including empty. ``-inf`` entries raise ``ValueError``.
        cost_limit: Largest cost a pair may have; not NaN.

    Returns:
        ``(row_to_col, col_to_row)``: intp arrays of shapes ``(n_rows,)`` and
        ``(n_cols,)``; ``-1`` marks an unassigned row or column.

    Example:
        >>> cost = np.array([[0.1, 0.9], [0.2, np.inf]])
        >>> row_to_col, col_to_row = solve_assignment(cost, 0.5)
        >>> row_to_col.tolist(), col_to_row.tolist()
        ([0, -1], [0, -1])
    """
    if not (isinstance(cost, np.ndarray) and cost.dtype == np.float64 and cost.ndim == 2
            and cost.flags.c_contiguous):
        raise TypeError("cost must be a C-contiguous (n_rows, n_cols) float64 array")
    cost_limit = float(cost_limit)
    if np.isnan(cost_limit):
        raise ValueError("cost_limit must not be NaN")
    indptr, indices, values = dense_to_csr(cost, cost_limit)
    return solve_sparse(indptr, indices, values, cost.shape[1], cost_limit)
