"""The data-mixture linear program, solved with HiGHS and lazy constraint generation.

Variables: category weights ``alpha_i >= 0`` with ``sum alpha_i = 1`` (in
pair units: each category's counts are divided by its number of pairs
before the first merge), a slack ``v_t >= 0`` per merge step and a slack
``v_p >= 0`` per competing pair. For every active step ``t`` and pair
``p`` other than the merged one ``m(t)``::

    sum_i alpha_i (c_i[m(t), t] - c_i[p, t]) / pairs_i + v_t + v_p >= 0

and the objective is ``min sum v_t + sum v_p`` (Hayase et al., 2024).

There are |pairs| x T such constraints, so they are generated lazily:
the LP starts from the strongest competitor of each step under the
uniform mixture; each round walks the steps once
(:func:`toknz_core.lpscan.find_violations`, which keeps every pair's mixed
count up to date from the per-step changes), adds the most violated
constraints (at most ``per_step`` per step and ``max_add`` per round) and
re-solves, warm-started, until no constraint is violated by more than the
tolerance. After each solve the rows whose slack variable is basic are
deleted (each at most ``max_drops`` times, so the rounds cannot cycle):
the current solution stays optimal without them, and the LP keeps about
one row per tight constraint. HiGHS's dual simplex costs about (rows) x
(categories) per iteration, since every row holds every category's
weight, so this is what bounds the solve: on a 10,000-merge x 30-category
case the LP ended with 15,321 rows instead of 151,304 and solved in 85 s
instead of 480 s, to the same optimum (``benchmarks/mixture_scale.py``;
docs/mixture.md, "Scale"). The
earlier rule, rows with activity above the tolerance for two solves, kept
the many rows that are tight only by degeneracy (pairs with equal counts).
The last scan checks every constraint, so the optimum is still that of the
full LP. Counts are scaled to "per million pairs" inside the solver so its
tolerances fit the numbers.

``method="stabilized"`` scans at a point between each LP optimum and a
centre that satisfies every constraint (in-out separation), so that the
rows of one round do not zig-zag. It reaches the same optimum with about
10 % fewer simplex iterations on the benchmark cases, far from the factor
the 30,000-merge x 112-category case needs: the rounds churn because of the
slacks (the strongest competitor of a step changes with small changes of
the weights), not because the weights jump (docs/mixture.md, "Scale").
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from toknz.analysis.replay import PairCounts
from toknz.errors import UsageError

#: Counts are given to the solver per this many pairs.
SCALE = 1e6


@dataclass
class LPInputs:
    """Every category's replay in one global pair index (see :mod:`toknz_core.lpscan`)."""

    init_offsets: np.ndarray
    init_pairs: np.ndarray
    init_counts: np.ndarray
    step_offsets: np.ndarray
    delta_pairs: np.ndarray
    delta_values: np.ndarray
    merge_counts: np.ndarray
    merge_pairs: np.ndarray
    n_pairs: int
    denominators: np.ndarray

    def replayed(self) -> Any:
        """The replay arrays as the kernels of :mod:`toknz_core.lpscan` take them (one bundle)."""
        from toknz_core.lpscan import Replayed

        return Replayed(
            self.init_offsets,
            self.init_pairs,
            self.init_counts,
            self.step_offsets,
            self.delta_pairs,
            self.delta_values,
            self.merge_counts,
            self.merge_pairs,
        )

    @property
    def n_categories(self) -> int:
        return int(self.merge_counts.shape[0])

    @property
    def steps(self) -> int:
        return int(self.merge_pairs.shape[0])


@dataclass
class LPSolution:
    """The optimum: weights in pair units, total slack (pair-fraction units), and how it was found."""

    pair_weights: np.ndarray
    slack: float
    merge_slack: np.ndarray
    constraints: int
    pair_slacks: int
    rounds: int
    converged: bool
    largest_violation: float
    seconds: float
    #: Seconds spent in the violation scans, building rows, HiGHS and pruning.
    timings: dict[str, float] = field(default_factory=dict)
    #: Simplex iterations over all solves.
    iterations: int = 0
    #: The rows in the LP at the end, as (steps, pairs) arrays (``initial_rows`` of another solve).
    final_rows: tuple[np.ndarray, np.ndarray] = field(
        default_factory=lambda: (np.zeros(0, np.int32), np.zeros(0, np.int32))
    )


def build_inputs(counts: Sequence[PairCounts], merge_keys: np.ndarray) -> LPInputs:
    """Map every category's pair keys (and the merged pairs' keys) to one global index."""
    if not counts:
        raise UsageError("no categories to solve for")
    steps = counts[0].steps
    if any(c.steps != steps for c in counts) or merge_keys.shape[0] != steps:
        raise UsageError("every category must be replayed over the same merges")
    keys = np.unique(
        np.concatenate(
            [merge_keys.astype(np.int64)]
            + [c.init_keys for c in counts]
            + [np.unique(c.delta_keys) for c in counts]
        )
    )

    def index(k: np.ndarray) -> np.ndarray:
        return np.searchsorted(keys, k).astype(np.int32)

    n = len(counts)
    init_offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum([c.init_keys.shape[0] for c in counts], out=init_offsets[1:])
    step_offsets = np.empty((n, steps + 1), dtype=np.int64)
    base = 0
    for i, c in enumerate(counts):
        step_offsets[i] = c.delta_offsets + base
        base += int(c.delta_offsets[-1])
    denominators = np.array([max(c.total_pairs, 1) for c in counts], dtype=np.float64)
    return LPInputs(
        init_offsets,
        np.concatenate([index(c.init_keys) for c in counts]),
        np.concatenate([c.init_counts for c in counts]),
        step_offsets,
        np.concatenate([index(c.delta_keys) for c in counts]),
        np.concatenate([c.delta_values for c in counts]),
        np.stack([c.merge_counts for c in counts]),
        index(merge_keys.astype(np.int64)),
        int(keys.shape[0]),
        denominators,
    )


_BANNER_SHOWN = False


def _new_highs(highspy: Any) -> Any:
    """``highspy.Highs()`` without the banner the first one in a process writes to stdout.

    The banner comes from C++ before any option can be set, so the process's file
    descriptor 1 points at /dev/null while the first instance is made: a command that
    prints results or JSON on stdout (``toknz mixture``) must not get it mixed in.
    """
    global _BANNER_SHOWN
    if _BANNER_SHOWN:
        return highspy.Highs()
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
            h = highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    _BANNER_SHOWN = True
    return h


def _highs(options: Mapping[str, Any] | None = None) -> Any:
    try:
        import highspy
    except ImportError:  # pragma: no cover - a dependency
        raise UsageError("mixture inference needs highspy (pip install highspy)") from None
    h = _new_highs(highspy)
    h.setOptionValue("output_flag", False)
    h.setOptionValue("random_seed", 0)
    for name, value in (options or {}).items():
        if h.setOptionValue(name, value) != highspy.HighsStatus.kOk:
            raise UsageError(f"HiGHS refused option {name}={value!r}")
    return h


class _Model:
    """The growing LP in HiGHS: columns alpha (n), v_t (T), then v_p as pairs are first used."""

    def __init__(self, n: int, steps: int, options: Mapping[str, Any] | None = None) -> None:
        import highspy

        self.n = n
        self.steps = steps
        self.h = _highs(options)
        self.inf = highspy.kHighsInf
        cols = n + steps
        costs = np.concatenate([np.zeros(n), np.ones(steps)])
        lower = np.zeros(cols)
        upper = np.concatenate([np.ones(n), np.full(steps, self.inf)])
        self.h.addCols(cols, costs, lower, upper, 0, np.zeros(0, np.int32), [], [])
        self.h.addRows(
            1,
            np.ones(1),
            np.ones(1),
            n,
            np.zeros(1, dtype=np.int32),
            np.arange(n, dtype=np.int32),
            np.ones(n),
        )
        self.pair_col: dict[int, int] = {}
        self.rows = 0
        self.seen: set[tuple[int, int]] = set()
        # Per LP row after the first (sum alpha = 1): its key and rounds it has been slack.
        self.keys: list[tuple[int, int]] = []
        self.idle = np.zeros(0, dtype=np.int64)
        self.drops: dict[tuple[int, int], int] = {}
        self.dropped = 0
        self.peak = 0
        self.iterations = 0

    def add(self, steps: np.ndarray, pairs: np.ndarray, coef: np.ndarray) -> int:
        """Add rows ``coef[r] . alpha + v_steps[r] + v_pairs[r] >= 0``; returns how many were new."""
        new_pairs = [int(p) for p in dict.fromkeys(pairs.tolist()) if int(p) not in self.pair_col]
        if new_pairs:
            first = self.n + self.steps + len(self.pair_col)
            for j, p in enumerate(new_pairs):
                self.pair_col[p] = first + j
            k = len(new_pairs)
            self.h.addCols(
                k, np.ones(k), np.zeros(k), np.full(k, self.inf), 0, np.zeros(0, np.int32), [], []
            )
        m = steps.shape[0]
        # Row r: its category coefficients that are not zero, then v_t and v_p.
        mask = coef != 0
        width = mask.sum(axis=1) + 2
        starts = np.zeros(m, dtype=np.int64)
        np.cumsum(width[:-1], out=starts[1:])
        index = np.empty(int(width.sum()), dtype=np.int32)
        value = np.empty(index.shape[0], dtype=np.float64)
        rows_nz, cats_nz = np.nonzero(mask)
        # Position of each nonzero: its row's start plus its rank within the row.
        first_nz = np.zeros(m, dtype=np.int64)
        np.cumsum(mask.sum(axis=1)[:-1], out=first_nz[1:])
        rank = np.arange(rows_nz.shape[0]) - first_nz[rows_nz]
        at = starts[rows_nz] + rank
        index[at] = cats_nz
        value[at] = coef[rows_nz, cats_nz]
        ends = starts + width
        index[ends - 2] = self.n + steps
        value[ends - 2] = 1.0
        index[ends - 1] = [self.pair_col[p] for p in pairs.tolist()]
        value[ends - 1] = 1.0
        self.keys.extend(zip(steps.tolist(), pairs.tolist(), strict=True))
        self.idle = np.concatenate([self.idle, np.zeros(m, dtype=np.int64)])
        if m:
            self.h.addRows(
                m,
                np.zeros(m),
                np.full(m, self.inf),
                index.shape[0],
                starts.astype(np.int32),
                index,
                value,
            )
        self.rows += m
        self.peak = max(self.peak, self.rows)
        return m

    def prune(self, after: int, eps: float, rule: str = "slack", max_drops: int = 1) -> int:
        """Delete rows idle after each of the last ``after`` solves.

        Idle: activity above ``eps`` (``rule="slack"``), or the row's slack
        variable basic (``rule="basic"``: also the rows that are tight only by
        degeneracy; the current solution stays optimal without them). A
        deleted row is forgotten (the scan may find it violated again and
        re-add it); a row is deleted at most ``max_drops`` times, so the rounds
        cannot cycle. Returns how many rows were deleted.
        """
        if after <= 0 or self.rows == 0:
            return 0
        if rule == "basic":
            status = self.h.getBasis().row_status
            slack = np.fromiter((int(x) == 1 for x in status), dtype=np.bool_, count=len(status))[
                1:
            ]
        else:
            activity = np.asarray(self.h.getSolution().row_value, dtype=np.float64)[1:]
            slack = activity > eps
        self.idle = np.where(slack, self.idle + 1, 0)
        drop = np.nonzero(self.idle >= after)[0]
        if drop.shape[0] == 0:
            return 0
        keep_mask = np.ones(self.rows, dtype=np.bool_)
        for r in drop.tolist():
            key = self.keys[r]
            if self.drops.get(key, 0) >= max_drops:
                continue
            keep_mask[r] = False
            self.drops[key] = self.drops.get(key, 0) + 1
            self.seen.discard(key)
        gone = np.nonzero(~keep_mask)[0]
        if gone.shape[0] == 0:
            return 0
        self.h.deleteRows(gone.shape[0], (gone + 1).astype(np.int32))
        self.keys = [k for k, keep in zip(self.keys, keep_mask.tolist(), strict=True) if keep]
        self.idle = self.idle[keep_mask]
        self.rows -= int(gone.shape[0])
        self.dropped += int(gone.shape[0])
        return int(gone.shape[0])

    def solve(self) -> tuple[np.ndarray, float]:
        import highspy

        self.h.run()
        status = self.h.getModelStatus()
        if status != highspy.HighsModelStatus.kOptimal:
            raise UsageError(f"the LP solver stopped without an optimum ({status})")
        self.iterations += int(self.h.getInfo().simplex_iteration_count)
        x = np.asarray(self.h.getSolution().col_value, dtype=np.float64)
        return x, float(self.h.getInfo().objective_function_value)


def solve_mixture_lp(
    data: LPInputs,
    *,
    active: np.ndarray | None = None,
    per_step: int = 3,
    max_add: int = 10_000,
    initial_per_step: int = 1,
    tolerance: float = 1e-9,
    max_rounds: int = 5000,
    drop_after: int = 1,
    on_round: Callable[[int, int], None] | None = None,
    time_limit: float | None = None,
    highs_options: Mapping[str, Any] | None = None,
    drop_rule: str = "basic",
    max_drops: int = 5,
    method: str = "lazy",
    smoothing: float = 0.5,
    initial_rows: tuple[np.ndarray, np.ndarray] | None = None,
) -> LPSolution:
    """Solve the mixture LP over ``data`` with lazy constraint generation.

    ``active[t]`` (bool, default all) says which steps get constraints;
    ``tolerance`` is the violation (in pair-fraction units) below which a
    constraint counts as satisfied; ``drop_after`` deletes rows idle for
    that many consecutive solves (0: never). ``on_round(round, constraints)`` is
    called after each solve. Returns weights in pair units (summing to 1)
    and the total slack; ``converged`` is False only when ``max_rounds``
    ran out, or ``time_limit`` seconds passed, with constraints still violated
    (the weights are then those of the last round). ``timings`` says where the
    time went (``scan``, ``rows``, ``highs``, ``prune`` seconds).
    ``drop_rule``: ``"slack"`` (activity above the tolerance) or
    ``"basic"`` (slack variable basic) says which rows count as idle;
    ``max_drops``: how often one row may be deleted. ``highs_options``:
    HiGHS option name -> value, set before the first solve (e.g.
    ``{"simplex_strategy": 1}``); an unknown one raises
    :class:`~toknz.errors.UsageError`.

    ``method``: ``"lazy"`` scans for violated constraints at each LP
    optimum; ``"stabilized"`` scans first at a point between the LP
    optimum and a centre that satisfies every constraint (in-out
    separation with Wentges smoothing: ``smoothing`` is the centre's share,
    0 <= smoothing < 1), so that one round's rows do not zig-zag; a cut
    there also cuts off the LP optimum. The centre starts at the first LP
    weights with the smallest step slacks that satisfy every constraint, and
    moves to the smoothed point's weights and pair slacks (with such step
    slacks) whenever that costs less; when the smoothed point violates
    nothing, the LP optimum itself is scanned. Both methods end only when a
    scan at the LP optimum finds nothing, so both give the optimum of the
    full LP. ``initial_rows``: ``(steps, pairs)`` of the constraints the LP
    starts from (e.g. ``final_rows`` of an earlier solve) instead of each
    step's strongest competitor under the uniform mixture.

    >>> import numpy as np
    >>> from toknz.analysis.replay import replay_arrays
    >>> class Merges:  # one merge: symbols 0 + 1 -> 2
    ...     left, right, new = (np.array([v], dtype=np.int32) for v in (0, 1, 2))
    >>> def counts(word):
    ...     symbols = np.array(word, dtype=np.int32)
    ...     offsets = np.array([0, len(word)], dtype=np.int64)
    ...     return replay_arrays(symbols, offsets, np.array([5], dtype=np.int64), Merges)
    >>> data = build_inputs([counts([0, 1, 0, 1]), counts([1, 1, 1])], np.array([1], dtype=np.int64))
    >>> for method in ("lazy", "stabilized"):
    ...     sol = solve_mixture_lp(data, method=method)
    ...     print(method, sol.converged, round(sol.slack, 9), sol.pair_weights.round(3).tolist())
    lazy True 0.0 [1.0, 0.0]
    stabilized True 0.0 [1.0, 0.0]
    """
    from toknz_core.lpscan import constraint_counts, find_violations

    replayed = data.replayed()

    if method not in ("lazy", "stabilized") or not 0.0 <= smoothing < 1.0:
        raise UsageError(
            f"method must be 'lazy' or 'stabilized' and 0 <= smoothing < 1, got {method!r}, {smoothing}"
        )
    if drop_rule not in ("slack", "basic") or max_drops < 1:
        raise UsageError(
            f"drop_rule must be 'slack' or 'basic' and max_drops >= 1, got {drop_rule!r}, {max_drops}"
        )
    start = time.perf_counter()
    n, steps = data.n_categories, data.steps
    act = (
        np.ones(steps, dtype=np.bool_)
        if active is None
        else np.ascontiguousarray(active, dtype=np.bool_)
    )
    scale = SCALE / data.denominators
    tol = tolerance * SCALE
    model = _Model(n, steps, highs_options)
    alpha = np.full(n, 1.0 / n)
    merge_slack = np.zeros(steps)
    pair_slack = np.zeros(data.n_pairs)

    timings = dict.fromkeys(("scan", "rows", "highs", "prune"), 0.0)

    def timed(part: str, since: float) -> None:
        timings[part] += time.perf_counter() - since

    def scan(
        strongest: bool,
        k: int,
        limit: int,
        at: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, float]:
        a, vt, vp = (alpha, merge_slack, pair_slack) if at is None else at
        t0 = time.perf_counter()
        found = find_violations(a * scale, vt, vp, act, replayed, tol, k, limit, strongest)
        timed("scan", t0)
        return found

    def feasible(a: np.ndarray, vp: np.ndarray) -> tuple[np.ndarray, float]:
        """The smallest step slacks that satisfy every constraint at ``a, vp``, and the cost."""
        t0 = time.perf_counter()
        vt = np.zeros(steps)
        top_t, top_p, _ = find_violations(a * scale, vt, vp, act, replayed, 0.0, 1, 2**62, False)
        if top_t.shape[0]:
            diff = constraint_counts(top_t, top_p, data.n_pairs, replayed)
            vt[top_t] = np.maximum(-(diff @ (a * scale)) - vp[top_p], 0.0)
        timed("scan", t0)
        return vt, float(vt.sum() + vp.sum())

    def add(found_t: np.ndarray, found_p: np.ndarray) -> int:
        t0 = time.perf_counter()
        try:
            return add_rows(found_t, found_p)
        finally:
            timed("rows", t0)

    def add_rows(found_t: np.ndarray, found_p: np.ndarray) -> int:
        keep = [
            r
            for r, key in enumerate(zip(found_t.tolist(), found_p.tolist(), strict=True))
            if key not in model.seen
        ]
        if not keep:
            return 0
        t_new = found_t[keep]
        p_new = found_p[keep]
        order = np.argsort(t_new, kind="stable")
        t_new, p_new = t_new[order], p_new[order]
        model.seen.update(zip(t_new.tolist(), p_new.tolist(), strict=True))
        diff = constraint_counts(
            t_new,
            p_new,
            data.n_pairs,
            replayed,
        )
        return model.add(t_new, p_new, diff * scale[None, :])

    if initial_rows is None:
        seed_t, seed_p, _ = scan(True, initial_per_step, 2**62)
    else:
        seed_t, seed_p = (np.asarray(r, dtype=np.int64).ravel() for r in initial_rows)
        if (
            seed_t.shape != seed_p.shape
            or np.any((seed_t < 0) | (seed_t >= steps))
            or np.any((seed_p < 0) | (seed_p >= data.n_pairs))
        ):
            raise UsageError(
                f"initial_rows must be (steps, pairs) of equal length with steps < {steps} "
                f"and pairs < {data.n_pairs}"
            )
        seed_t, seed_p = seed_t.astype(np.int32), seed_p.astype(np.int32)
    add(seed_t, seed_p)
    rounds = 0
    objective = 0.0
    worst = 0.0
    converged = False
    centre: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    centre_cost = np.inf
    while True:
        t0 = time.perf_counter()
        x, objective = model.solve()
        timed("highs", t0)
        rounds += 1
        alpha = np.clip(x[:n], 0.0, None)
        alpha /= alpha.sum() or 1.0
        merge_slack = x[n : n + steps].copy()
        pair_slack[:] = 0.0
        for p, col in model.pair_col.items():
            pair_slack[p] = x[col]
        if on_round is not None:
            on_round(rounds, model.rows)
        found_t = found_p = np.zeros(0, dtype=np.int32)
        from_point = False
        if method == "stabilized":
            if centre is None:
                centre_vt, centre_cost = feasible(alpha, pair_slack)
                centre = (alpha.copy(), centre_vt, pair_slack.copy())
            mix = (smoothing, 1.0 - smoothing)
            point = (
                mix[0] * centre[0] + mix[1] * alpha,
                mix[0] * centre[1] + mix[1] * merge_slack,
                mix[0] * centre[2] + mix[1] * pair_slack,
            )
            found_t, found_p, _ = scan(False, per_step, max_add, point)
            # A better centre: the smoothed point's weights with their own step slacks.
            vt_new, cost_new = feasible(point[0], point[2])
            if cost_new < centre_cost:
                centre, centre_cost = (point[0], vt_new, point[2]), cost_new
            from_point = found_t.shape[0] > 0
        if not from_point:
            # A cut at the smoothed point also cuts off the LP optimum; without one, scan there.
            found_t, found_p, worst = scan(False, per_step, max_add)
            if found_t.shape[0] == 0:
                converged = True
                break
        t0 = time.perf_counter()
        model.prune(drop_after, tol * 1e-3, drop_rule, max_drops)
        timed("prune", t0)
        if add(found_t, found_p) == 0:
            if from_point:
                found_t, found_p, worst = scan(False, per_step, max_add)
                if found_t.shape[0] == 0 or add(found_t, found_p) == 0:
                    converged = True
                    break
            else:
                # Only constraints already in the LP: violated within the solver's own tolerance.
                converged = True
                break
        if rounds >= max_rounds or (
            time_limit is not None and time.perf_counter() - start > time_limit
        ):
            break
    if not converged and from_point:
        # This round scanned the smoothed point only: measure the LP optimum's violation.
        _, _, worst = scan(False, per_step, max_add)
    return LPSolution(
        alpha,
        objective / SCALE,
        merge_slack / SCALE,
        model.rows,
        len(model.pair_col),
        rounds,
        converged,
        worst / SCALE,
        time.perf_counter() - start,
        timings,
        model.iterations,
        (
            np.array([k[0] for k in model.keys], dtype=np.int32),
            np.array([k[1] for k in model.keys], dtype=np.int32),
        ),
    )


__all__ = ["SCALE", "LPInputs", "LPSolution", "build_inputs", "solve_mixture_lp"]
