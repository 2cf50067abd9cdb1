"""solve_assignment against scipy.optimize.linear_sum_assignment and brute force.

Totals are compared, not assignments: ties allow several optimal assignments.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from deepsort_edge.kernels.lap import solve_assignment

INF = np.inf


# ----------------------------------------------------------------------------- helpers


def check_valid(cost: np.ndarray, cost_limit: float, row_to_col: np.ndarray, col_to_row: np.ndarray) -> None:
    """Shapes, dtype, consistency of both maps, one-to-one, only allowed pairs assigned."""
    n_rows, n_cols = cost.shape
    assert row_to_col.shape == (n_rows,) and col_to_row.shape == (n_cols,)
    assert row_to_col.dtype == np.intp and col_to_row.dtype == np.intp
    assert np.all((row_to_col >= -1) & (row_to_col < n_cols))
    assert np.all((col_to_row >= -1) & (col_to_row < n_rows))
    rows = np.flatnonzero(row_to_col >= 0)
    cols = row_to_col[rows]
    assert np.array_equal(col_to_row[cols], rows)
    assert np.count_nonzero(col_to_row >= 0) == rows.size  # so the maps are inverse one-to-one
    pair_costs = cost[rows, cols]
    assert np.all(np.isfinite(pair_costs))
    assert np.all(pair_costs <= cost_limit)


def objective(cost: np.ndarray, cost_limit: float, row_to_col: np.ndarray, col_to_row: np.ndarray) -> float:
    rows = np.flatnonzero(row_to_col >= 0)
    unassigned = cost.shape[0] - rows.size + np.count_nonzero(col_to_row < 0)
    return float(cost[rows, row_to_col[rows]].sum() + cost_limit / 2 * unassigned)


def augmented_reference(cost: np.ndarray, cost_limit: float) -> float:
    """Objective optimum via scipy on the (n_rows + n_cols) square augmented matrix.

    Rows: real rows, then one dummy row per real column. Columns: real columns,
    then one dummy column per real row. Leaving row i unassigned = taking its
    dummy column (cost_limit / 2); leaving column j unassigned = its dummy row
    taking it (cost_limit / 2); dummy rows and dummy columns pair up for free.
    """
    n_rows, n_cols = cost.shape
    size = n_rows + n_cols
    if size == 0:
        return 0.0
    big = np.full((size, size), INF)
    with np.errstate(invalid="ignore"):
        allowed = cost <= cost_limit  # NaN compares False
    big[:n_rows, :n_cols] = np.where(allowed, cost, INF)
    big[np.arange(n_rows), n_cols + np.arange(n_rows)] = cost_limit / 2
    big[n_rows + np.arange(n_cols), np.arange(n_cols)] = cost_limit / 2
    big[n_rows:, n_cols:] = 0.0
    rows, cols = linear_sum_assignment(big)
    return float(big[rows, cols].sum())


def brute_force(cost: np.ndarray, cost_limit: float) -> tuple[int, float]:
    """Best (cardinality, total cost) over all partial matchings of a tiny matrix.

    Finite limit: minimum objective. Infinite limit: maximum cardinality, then minimum cost.
    """
    n_rows, n_cols = cost.shape
    best: list[tuple[float, float, int, float]] = []

    def visit(i: int, used: frozenset[int], card: int, total: float) -> None:
        if i == n_rows:
            if cost_limit == INF:
                key = (-card, total)
            else:
                key = (total + cost_limit / 2 * (n_rows + n_cols - 2 * card), 0.0)
            if not best or key < best[0][:2]:
                best[:] = [(*key, card, total)]
            return
        visit(i + 1, used, card, total)
        for j in range(n_cols):
            c = cost[i, j]
            if j not in used and c <= cost_limit and np.isfinite(c):
                visit(i + 1, used | {j}, card + 1, total + c)

    visit(0, frozenset(), 0, 0.0)
    return best[0][2], best[0][3]


def random_shape(rng: np.random.Generator, max_side: int) -> tuple[int, int]:
    kind = rng.integers(3)
    a = int(rng.integers(0, max_side + 1))
    b = int(rng.integers(0, max_side + 1))
    if kind == 0:
        return a, a
    return (min(a, b), max(a, b)) if kind == 1 else (max(a, b), min(a, b))


def random_costs(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Integer costs (many ties) or floats, both occasionally negative."""
    if rng.random() < 0.5:
        cost = rng.integers(0, 5, size=shape).astype(np.float64)
    else:
        cost = rng.random(shape) * 10.0
    if rng.random() < 0.2:
        cost -= 3.0
    return cost


def close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * (1.0 + abs(a) + abs(b))


# ----------------------------------------------------------------------------- random vs scipy


def test_random_limited_matches_augmented_scipy() -> None:
    rng = np.random.default_rng(12345)
    for _ in range(2000):
        shape = random_shape(rng, 40 if rng.random() < 0.3 else 12)
        cost = random_costs(rng, shape)
        # Sprinkle forbidden entries: +inf, NaN, or plainly above the limit.
        if rng.random() < 0.6:
            mask = rng.random(shape) < rng.random()
            cost[mask] = rng.choice([INF, np.nan, 1e9], size=int(mask.sum()))
        # Integer limits make cost == limit ties; the limit may even be negative.
        limit = float(rng.integers(-2, 8)) if rng.random() < 0.5 else float(rng.uniform(-1.0, 12.0))
        before = cost.copy()
        row_to_col, col_to_row = solve_assignment(cost, limit)
        assert np.array_equal(before, cost, equal_nan=True)
        check_valid(cost, limit, row_to_col, col_to_row)
        got = objective(cost, limit, row_to_col, col_to_row)
        want = augmented_reference(cost, limit)
        assert close(got, want), (shape, limit, got, want)


def test_random_unlimited_matches_scipy_rectangular() -> None:
    rng = np.random.default_rng(777)
    for _ in range(1500):
        shape = random_shape(rng, 40 if rng.random() < 0.3 else 12)
        cost = random_costs(rng, shape)
        row_to_col, col_to_row = solve_assignment(cost, INF)
        check_valid(cost, INF, row_to_col, col_to_row)
        rows, cols = linear_sum_assignment(cost)
        assert np.count_nonzero(row_to_col >= 0) == min(shape)
        got = cost[row_to_col >= 0, row_to_col[row_to_col >= 0]].sum()
        assert close(got, cost[rows, cols].sum())


def test_unlimited_with_forbidden_entries_vs_scipy_big_m() -> None:
    """Some rows cannot all be matched: maximum cardinality, then minimum cost.

    Reference: scipy on the matrix with forbidden entries replaced by a cost M
    that exceeds any difference of finite totals, so each M pair is a missing pair.
    """
    rng = np.random.default_rng(2024)
    for _ in range(800):
        shape = random_shape(rng, 25)
        cost = rng.integers(0, 20, size=shape).astype(np.float64)
        cost[rng.random(shape) < rng.uniform(0.3, 0.95)] = INF
        row_to_col, col_to_row = solve_assignment(cost, INF)
        check_valid(cost, INF, row_to_col, col_to_row)
        big_m = 1.0 + 20.0 * (min(shape) + 1)
        dense = np.where(np.isfinite(cost), cost, big_m)
        rows, cols = linear_sum_assignment(dense)
        finite = np.isfinite(cost[rows, cols])
        assert np.count_nonzero(row_to_col >= 0) == np.count_nonzero(finite)
        got = cost[row_to_col >= 0, row_to_col[row_to_col >= 0]].sum()
        assert got == cost[rows[finite], cols[finite]].sum()


def test_tiny_matrices_vs_brute_force() -> None:
    """Both modes against enumeration of every partial matching (float costs, forbidden entries)."""
    rng = np.random.default_rng(99)
    for _ in range(400):
        shape = (int(rng.integers(0, 5)), int(rng.integers(0, 5)))
        cost = rng.random(shape) * 4.0 - 1.0
        cost[rng.random(shape) < 0.4] = rng.choice([INF, np.nan])
        for limit in (INF, float(rng.uniform(-0.5, 3.0))):
            row_to_col, col_to_row = solve_assignment(cost, limit)
            check_valid(cost, limit, row_to_col, col_to_row)
            card, total = brute_force(cost, limit)
            got_total = cost[row_to_col >= 0, row_to_col[row_to_col >= 0]].sum()
            if limit == INF:
                assert np.count_nonzero(row_to_col >= 0) == card
                assert close(got_total, total)
            else:
                want = total + limit / 2 * (shape[0] + shape[1] - 2 * card)
                assert close(objective(cost, limit, row_to_col, col_to_row), want)


# ----------------------------------------------------------------------------- structured / large


def block_matrix(rng: np.random.Generator, n_blocks: int, max_block: int, limit: float) -> tuple[np.ndarray, list]:
    """Forbidden everywhere except random rectangular blocks; rows and columns shuffled."""
    sizes = [(int(rng.integers(1, max_block + 1)), int(rng.integers(1, max_block + 1))) for _ in range(n_blocks)]
    n_rows = sum(s[0] for s in sizes)
    n_cols = sum(s[1] for s in sizes)
    cost = np.full((n_rows, n_cols), INF)
    row_perm = rng.permutation(n_rows)
    col_perm = rng.permutation(n_cols)
    blocks = []
    r0 = c0 = 0
    for r, c in sizes:
        rows, cols = row_perm[r0 : r0 + r], col_perm[c0 : c0 + c]
        block = rng.uniform(0.0, 1.5 * limit, size=(r, c))
        block[rng.random((r, c)) < 0.3] = INF
        cost[np.ix_(rows, cols)] = block
        blocks.append(block)
        r0 += r
        c0 += c
    return cost, blocks


def test_many_components_match_blockwise_reference() -> None:
    rng = np.random.default_rng(31)
    limit = 1.0
    for n_blocks, max_block in [(1, 30), (5, 12), (40, 6), (150, 3)]:
        cost, blocks = block_matrix(rng, n_blocks, max_block, limit)
        row_to_col, col_to_row = solve_assignment(cost, limit)
        check_valid(cost, limit, row_to_col, col_to_row)
        want = sum(augmented_reference(b, limit) for b in blocks)
        assert close(objective(cost, limit, row_to_col, col_to_row), want)
        # The whole matrix through scipy gives the same optimum as the blockwise sum.
        if cost.shape[0] + cost.shape[1] <= 400:
            assert close(augmented_reference(cost, limit), want)


def test_large_gated_matrix_vs_augmented_scipy() -> None:
    """1000 x 1000, 1-5 feasible columns per row at random places (one giant component)."""
    rng = np.random.default_rng(8)
    n = 1000
    limit = 1.0
    cost = np.full((n, n), INF)
    for i in range(n):
        k = int(rng.integers(1, 6))
        cost[i, rng.choice(n, size=k, replace=False)] = rng.uniform(0.0, 1.5, size=k)
    row_to_col, col_to_row = solve_assignment(cost, limit)
    check_valid(cost, limit, row_to_col, col_to_row)
    assert close(objective(cost, limit, row_to_col, col_to_row), augmented_reference(cost, limit))


def test_large_local_matrix_vs_blockwise_reference() -> None:
    """1000 x 1200 with many small components, as after spatial gating."""
    rng = np.random.default_rng(9)
    limit = 5.0
    cost, blocks = block_matrix(rng, 300, 6, limit)
    row_to_col, col_to_row = solve_assignment(cost, limit)
    check_valid(cost, limit, row_to_col, col_to_row)
    want = sum(augmented_reference(b, limit) for b in blocks)
    assert close(objective(cost, limit, row_to_col, col_to_row), want)
    # Transposed input is the same problem.
    t_row, t_col = solve_assignment(np.ascontiguousarray(cost.T), limit)
    assert close(objective(cost.T, limit, t_row, t_col), want)


def test_one_to_one_fast_path_assigns_every_feasible_pair() -> None:
    rng = np.random.default_rng(3)
    n_rows, n_cols = 60, 80
    cost = np.full((n_rows, n_cols), INF)
    rows = rng.choice(n_rows, 40, replace=False)
    cols = rng.choice(n_cols, 40, replace=False)
    cost[rows, cols] = rng.uniform(0.0, 1.0, 40)
    cost[rows[:5], (cols[:5] + 1) % n_cols] = 2.0  # above the limit: still one-to-one among feasible pairs
    row_to_col, col_to_row = solve_assignment(cost, 1.0)
    check_valid(cost, 1.0, row_to_col, col_to_row)
    expected = np.full(n_rows, -1)
    expected[rows] = cols
    assert np.array_equal(row_to_col, expected)


# ----------------------------------------------------------------------------- degenerate inputs


@pytest.mark.parametrize("shape", [(0, 0), (0, 5), (5, 0)])
@pytest.mark.parametrize("limit", [1.0, INF])
def test_empty_shapes(shape: tuple[int, int], limit: float) -> None:
    row_to_col, col_to_row = solve_assignment(np.zeros(shape), limit)
    assert row_to_col.shape == (shape[0],) and col_to_row.shape == (shape[1],)
    assert np.all(row_to_col == -1) and np.all(col_to_row == -1)


@pytest.mark.parametrize("limit", [1.0, INF])
def test_one_by_one(limit: float) -> None:
    assert solve_assignment(np.array([[0.5]]), limit)[0].tolist() == [0]
    assert solve_assignment(np.array([[INF]]), limit)[0].tolist() == [-1]
    assert solve_assignment(np.array([[np.nan]]), limit)[0].tolist() == [-1]


@pytest.mark.parametrize("shape", [(7, 7), (3, 9), (9, 3)])
def test_all_forbidden(shape: tuple[int, int]) -> None:
    for fill, limit in [(INF, INF), (np.nan, INF), (5.0, 1.0), (np.nan, 1.0)]:
        row_to_col, col_to_row = solve_assignment(np.full(shape, fill), limit)
        assert np.all(row_to_col == -1) and np.all(col_to_row == -1)


@pytest.mark.parametrize("shape", [(1, 1), (8, 8), (4, 11), (11, 4), (40, 40)])
def test_all_equal_costs(shape: tuple[int, int]) -> None:
    cost = np.full(shape, 0.3)
    for limit, pairs in [(1.0, min(shape)), (INF, min(shape)), (0.2, 0)]:
        row_to_col, col_to_row = solve_assignment(cost, limit)
        check_valid(cost, limit, row_to_col, col_to_row)
        assert np.count_nonzero(row_to_col >= 0) == pairs


def test_single_feasible_pair() -> None:
    cost = np.full((6, 4), INF)
    cost[4, 2] = 0.7
    for limit in (1.0, INF):
        row_to_col, col_to_row = solve_assignment(cost, limit)
        assert row_to_col.tolist() == [-1, -1, -1, -1, 2, -1]
        assert col_to_row.tolist() == [-1, -1, 4, -1]
    assert np.all(solve_assignment(cost, 0.5)[0] == -1)


def test_nan_entries_are_forbidden() -> None:
    cost = np.array([[np.nan, 0.2, 0.9], [0.1, np.nan, np.nan], [np.nan, np.nan, np.nan]])
    for limit in (1.0, INF):
        row_to_col, col_to_row = solve_assignment(cost, limit)
        check_valid(cost, limit, row_to_col, col_to_row)
        assert row_to_col.tolist() == [1, 0, -1]


def test_pair_is_used_only_when_it_lowers_the_total() -> None:
    cost = np.array([[0.4, 0.0], [1.1, 0.4]])
    # limit 1.0: both 0.4 pairs (0.8) beat the 0.0 pair plus two unassigned ends (0.0 + 1.0).
    assert solve_assignment(cost, 1.0)[0].tolist() == [0, 1]
    # limit 0.5: the 0.0 pair plus two unassigned ends (0.5) beats 0.8.
    assert solve_assignment(cost, 0.5)[0].tolist() == [1, -1]
    # limit inf: classic assignment, the 1.1 pair is allowed but 0.8 is still cheapest.
    assert solve_assignment(cost, INF)[0].tolist() == [0, 1]


def test_invalid_inputs_raise() -> None:
    with pytest.raises(ValueError, match="-inf"):
        solve_assignment(np.array([[1.0, -INF]]), 2.0)
    with pytest.raises(ValueError, match="cost_limit"):
        solve_assignment(np.zeros((2, 2)), np.nan)
    with pytest.raises(TypeError):  # float64, C-contiguous only
        solve_assignment(np.zeros((2, 2), dtype=np.float32), 1.0)
    with pytest.raises(TypeError):
        solve_assignment(np.zeros((3, 2)).T, 1.0)


def test_sparse_rows_match_augmented_scipy() -> None:
    """solve_sparse on CSR rows (infeasible entries kept in, spare capacity past indptr[-1])."""
    from deepsort_edge.kernels.lap import solve_sparse

    rng = np.random.default_rng(77)
    for _ in range(500):
        shape = random_shape(rng, 15)
        cost = random_costs(rng, shape)
        present = rng.random(shape) < rng.uniform(0.2, 1.0)
        stored = cost.copy()
        odd = present & (rng.random(shape) < 0.2)  # stored but forbidden: inf, NaN, above the limit
        stored[odd] = rng.choice([INF, np.nan, 1e9], size=int(odd.sum()))
        limit = float(rng.uniform(0.5, 12.0))
        indptr = np.r_[0, np.cumsum(present.sum(axis=1))].astype(np.intp)
        rows, cols = np.nonzero(present)  # row-major: columns ascending within a row
        spare = int(rng.integers(0, 4))
        indices = np.r_[cols, np.zeros(spare, np.intp)].astype(np.intp)
        values = np.r_[stored[rows, cols], np.zeros(spare)]
        row_to_col, col_to_row = solve_sparse(indptr, indices, values, shape[1], limit)
        dense = np.where(present, stored, INF)
        check_valid(dense, limit, row_to_col, col_to_row)
        assert close(objective(dense, limit, row_to_col, col_to_row), augmented_reference(dense, limit))
