"""The lazy mixture LP against the same LP written out in full, on small random instances."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toknz.analysis.lp import LPInputs, build_inputs, solve_mixture_lp
from toknz.analysis.replay import PairCounts, replay_arrays
from toknz.errors import UsageError

linprog = pytest.importorskip("scipy.optimize").linprog


class _Merges:
    def __init__(self, merges: list[tuple[int, int, int]]) -> None:
        self.left = np.array([m[0] for m in merges], dtype=np.int32)
        self.right = np.array([m[1] for m in merges], dtype=np.int32)
        self.new = np.array([m[2] for m in merges], dtype=np.int32)


def random_instance(seed: int, n: int, alphabet: int, steps: int) -> tuple[list[PairCounts], list]:
    """``n`` categories of random words (each its own letter frequencies), one merge list."""
    rng = np.random.default_rng(seed)
    merges: list[tuple[int, int, int]] = []
    next_id = alphabet
    for _ in range(steps):
        a, b = (int(x) for x in rng.integers(0, next_id, 2))
        merges.append((a, b, next_id))
        next_id += 1
    counts = []
    for _ in range(n):
        freq = rng.dirichlet(np.full(alphabet, 0.7))
        words = [
            rng.choice(alphabet, size=int(rng.integers(1, 9)), p=freq).tolist() for _ in range(40)
        ]
        symbols = np.array([s for w in words for s in w], dtype=np.int32)
        offsets = np.zeros(len(words) + 1, dtype=np.int64)
        np.cumsum([len(w) for w in words], out=offsets[1:])
        occurrences = rng.integers(1, 50, len(words)).astype(np.int64)
        counts.append(replay_arrays(symbols, offsets, occurrences, _Merges(merges)))  # type: ignore[arg-type]
    return counts, merges


def full_lp(
    counts: list[PairCounts], keys: np.ndarray, fixed: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Every constraint written out as a dense matrix, solved by scipy: ``(objective, weights)``.

    ``fixed``: solve with the category weights held at these values instead.
    """
    n, steps = len(counts), keys.shape[0]
    denominators = np.array([max(c.total_pairs, 1) for c in counts], dtype=np.float64)
    pair_ids: dict[int, int] = {}
    blocks = []  # per step: (merged-minus-pair counts per category, pair ids)
    for t in range(steps):
        at = [c.counts_at(t) for c in counts]
        merged = int(keys[t])
        others = sorted(set().union(*at) - {merged})
        table = np.array([[a.get(k, 0) for a in at] for k in others], dtype=np.float64)
        mine = np.array([a.get(merged, 0) for a in at], dtype=np.float64)
        blocks.append(((mine - table.reshape(len(others), n)) / denominators, others))
        for k in others:
            pair_ids.setdefault(k, len(pair_ids))
    n_rows = sum(len(o) for _d, o in blocks)
    width = n + steps + len(pair_ids)
    # Dense A_ub x <= 0, i.e. -(diff . alpha + v_t + v_p) <= 0.
    a_ub = np.zeros((n_rows, width))
    r = 0
    for t, (diff, others) in enumerate(blocks):
        end = r + len(others)
        a_ub[r:end, :n] = -diff
        a_ub[r:end, n + t] = -1.0
        a_ub[np.arange(r, end), [n + steps + pair_ids[k] for k in others]] = -1.0
        r = end
    cost = np.concatenate([np.zeros(n), np.ones(width - n)])
    eq = np.zeros((1, width))
    eq[0, :n] = 1.0
    bounds = [(0, 1)] * n if fixed is None else [(float(w), float(w)) for w in fixed]
    res = linprog(
        cost,
        A_ub=a_ub,
        b_ub=np.zeros(n_rows),
        A_eq=None if fixed is not None else eq,
        b_eq=None if fixed is not None else [1.0],
        bounds=bounds + [(0, None)] * (len(cost) - n),
        method="highs",
    )
    assert res.status == 0
    return float(res.fun), res.x[:n]


@settings(max_examples=24, deadline=None)
@given(
    st.integers(0, 10**6),
    st.integers(2, 5),
    st.integers(4, 7),
    st.integers(3, 25),
    st.sampled_from([(1, 3), (2, 10), (3, 10_000)]),
    st.sampled_from([0, 1, 2]),
    st.sampled_from([("basic", 5), ("basic", 1), ("slack", 1)]),
    st.sampled_from([("lazy", 0.5), ("stabilized", 0.0), ("stabilized", 0.5), ("stabilized", 0.9)]),
)
def test_lazy_lp_equals_the_full_lp(
    seed, n, alphabet, steps, batch, drop_after, rule, method
) -> None:
    counts, merges = random_instance(seed, n, alphabet, steps)
    keys = np.array([(a << 32) | b for a, b, _ in merges], dtype=np.int64)
    data: LPInputs = build_inputs(counts, keys)
    per_step, max_add = batch
    lazy = solve_mixture_lp(
        data,
        per_step=per_step,
        max_add=max_add,
        drop_after=drop_after,
        drop_rule=rule[0],
        max_drops=rule[1],
        method=method[0],
        smoothing=method[1],
    )
    assert lazy.converged
    best, _ = full_lp(counts, keys)
    assert lazy.slack == pytest.approx(best, rel=1e-6, abs=1e-9)
    # The lazy weights are optimal for the full LP (its optimum need not be unique).
    at_lazy, _ = full_lp(counts, keys, fixed=lazy.pair_weights)
    assert at_lazy == pytest.approx(best, rel=1e-6, abs=1e-9)
    assert lazy.pair_weights.sum() == pytest.approx(1.0)
    assert set(lazy.timings) == {"scan", "rows", "highs", "prune"}


def test_bad_drop_rule_is_refused() -> None:
    counts, merges = random_instance(1, 2, 5, 5)
    data = build_inputs(counts, np.array([(a << 32) | b for a, b, _ in merges], dtype=np.int64))
    with pytest.raises(UsageError, match="drop_rule"):
        solve_mixture_lp(data, drop_rule="never")
    with pytest.raises(UsageError, match="method"):
        solve_mixture_lp(data, method="simplex")
    with pytest.raises(UsageError, match="smoothing"):
        solve_mixture_lp(data, method="stabilized", smoothing=1.0)
    with pytest.raises(UsageError, match="initial_rows"):
        solve_mixture_lp(data, initial_rows=(np.array([5]), np.array([0])))
    with pytest.raises(UsageError, match="initial_rows"):
        solve_mixture_lp(data, initial_rows=(np.array([0, 1]), np.array([0])))
    with pytest.raises(UsageError, match="HiGHS refused"):
        solve_mixture_lp(data, highs_options={"no_such_option": 1})


@pytest.mark.parametrize("method", ["lazy", "stabilized"])
def test_time_limit_stops_after_a_round(method: str) -> None:
    counts, merges = random_instance(7, 4, 6, 25)
    keys = np.array([(a << 32) | b for a, b, _ in merges], dtype=np.int64)
    data = build_inputs(counts, keys)
    full = solve_mixture_lp(data, per_step=1, max_add=2, method=method)
    assert full.rounds > 1
    cut = solve_mixture_lp(data, per_step=1, max_add=2, time_limit=0.0, method=method)
    assert cut.rounds == 1 and not cut.converged
    # The violation reported is that of the weights returned, measured at the LP optimum.
    assert cut.largest_violation > 0


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 10**6), st.sampled_from(["lazy", "stabilized"]))
def test_a_solve_seeded_with_final_rows_finds_the_same_optimum(seed, method) -> None:
    counts, merges = random_instance(seed, 4, 6, 20)
    keys = np.array([(a << 32) | b for a, b, _ in merges], dtype=np.int64)
    data = build_inputs(counts, keys)
    first = solve_mixture_lp(data, per_step=1, max_add=3, method=method)
    steps, pairs = first.final_rows
    assert steps.shape == pairs.shape == (first.constraints,)
    again = solve_mixture_lp(data, initial_rows=first.final_rows, method=method)
    assert again.converged
    best, _ = full_lp(counts, keys)
    assert first.slack == pytest.approx(best, rel=1e-6, abs=1e-9)
    assert again.slack == pytest.approx(best, rel=1e-6, abs=1e-9)
    # Seeded with rows that are not the optimum's, it still ends at the optimum.
    wrong = solve_mixture_lp(data, initial_rows=(np.zeros(1, np.int32), np.zeros(1, np.int32)))
    assert wrong.converged and wrong.slack == pytest.approx(best, rel=1e-6, abs=1e-9)
