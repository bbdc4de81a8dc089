"""Kernels for the data-mixture LP: find violated constraints and build constraint rows.

The LP (see :mod:`toknz.analysis.lp`) says: at every merge step ``t`` the
mixture-weighted count of the merged pair is at least that of every other
pair ``p``, up to slacks ``v[t]`` and ``v_p``. Writing every constraint out
would take |pairs| x T rows, so the solver adds them lazily; these kernels
walk the merge steps once per round, keeping each pair's mixed count
up to date with the per-step changes of every category (the output of
:func:`toknz_core.replay.replay_merges`, with keys mapped to global pair
indices), and never hold more than one number per pair.

Shared layout, for ``n`` categories, ``T`` steps and ``P`` global pairs:

- ``init_offsets`` (n + 1), ``init_pairs`` (int32), ``init_counts`` (int64):
  category ``i``'s pairs before the first merge are
  ``init_pairs[init_offsets[i]:init_offsets[i + 1]]``;
- ``step_offsets`` (n, T + 1) int64 into ``delta_pairs`` (int32) and
  ``delta_values`` (int64): category ``i``'s changes at step ``t`` are
  ``[step_offsets[i, t], step_offsets[i, t + 1])``;
- ``merge_counts`` (n, T) int64: the count of step ``t``'s merged pair in
  category ``i`` before the merge; ``merge_pairs`` (T) int32 its global index.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit


class Replayed(NamedTuple):
    """Every category's replay in one global pair index (``toknz.analysis.lp.LPInputs``).

    Category ``i``'s pairs before the first merge are
    ``init_pairs/init_counts[init_offsets[i]:init_offsets[i + 1]]``; merge ``t`` changes
    them by ``delta_pairs/delta_values[step_offsets[i, t]:step_offsets[i, t + 1]]``;
    ``merge_counts[i, t]`` is the count of the merged pair ``merge_pairs[t]`` just before.
    """

    init_offsets: np.ndarray
    init_pairs: np.ndarray
    init_counts: np.ndarray
    step_offsets: np.ndarray
    delta_pairs: np.ndarray
    delta_values: np.ndarray
    merge_counts: np.ndarray
    merge_pairs: np.ndarray


@njit(cache=True, nogil=True, inline="always")
def _sift_up(heap: np.ndarray, where: np.ndarray, pr: np.ndarray, i: int) -> None:
    x = heap[i]
    while i > 0:
        parent = (i - 1) >> 1
        y = heap[parent]
        if pr[y] >= pr[x]:
            break
        heap[i] = y
        where[y] = i
        i = parent
    heap[i] = x
    where[x] = i


@njit(cache=True, nogil=True, inline="always")
def _sift_down(heap: np.ndarray, where: np.ndarray, pr: np.ndarray, i: int, size: int) -> None:
    x = heap[i]
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and pr[heap[child + 1]] > pr[heap[child]]:
            child += 1
        y = heap[child]
        if pr[y] <= pr[x]:
            break
        heap[i] = y
        where[y] = i
        i = child
    heap[i] = x
    where[x] = i


@njit(cache=True, nogil=True)
def _mixed_initial(
    weights: np.ndarray,
    n_pairs: int,
    init_offsets: np.ndarray,
    init_pairs: np.ndarray,
    init_counts: np.ndarray,
) -> np.ndarray:
    mixed = np.zeros(n_pairs, dtype=np.float64)
    for i in range(weights.shape[0]):
        w = weights[i]
        for k in range(init_offsets[i], init_offsets[i + 1]):
            mixed[init_pairs[k]] += w * init_counts[k]
    return mixed


@njit(cache=True, nogil=True)
def find_violations(
    weights: np.ndarray,
    merge_slack: np.ndarray,
    pair_slack: np.ndarray,
    active: np.ndarray,
    replayed: Replayed,
    tolerance: float,
    per_step: int,
    max_total: int,
    strongest: bool,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Walk the steps and return violated constraints ``(steps, pairs, largest violation)``.

    ``weights[i]``: the LP weight of category ``i`` times its count scale
    (so ``sum_i weights[i] * count_i`` is the mixed count). At an active step
    ``t`` the pairs ``p != merge_pairs[t]`` with
    ``mixed[p] - pair_slack[p] > mixed merge count + merge_slack[t] + tolerance``
    are violated; the largest ``per_step`` of them are returned, and the walk
    stops once ``max_total`` are found. With ``strongest`` the test is
    ``mixed[p] > 0`` instead (the strongest competitors, to seed the LP).
    The largest violation is that of all steps walked.
    """
    (
        init_offsets,
        init_pairs,
        init_counts,
        step_offsets,
        delta_pairs,
        delta_values,
        merge_counts,
        merge_pairs,
    ) = replayed
    n = weights.shape[0]
    n_pairs = pair_slack.shape[0]
    n_steps = merge_pairs.shape[0]
    mixed = _mixed_initial(weights, n_pairs, init_offsets, init_pairs, init_counts)
    pr = mixed - pair_slack
    heap = np.arange(n_pairs).astype(np.int32)
    where = np.arange(n_pairs).astype(np.int32)
    for i in range(n_pairs // 2 - 1, -1, -1):
        _sift_down(heap, where, pr, i, n_pairs)

    cap = max(16, min(max_total, n_steps * per_step))
    out_t = np.empty(cap, dtype=np.int32)
    out_p = np.empty(cap, dtype=np.int32)
    n_out = 0
    worst = 0.0
    popped = np.empty(per_step + 1, dtype=np.int32)
    stamp = np.full(n_pairs, -1, dtype=np.int64)
    changed = np.empty(1024, dtype=np.int32)

    for t in range(n_steps):
        if active[t] and n_pairs > 0:
            m = merge_pairs[t]
            mval = 0.0
            for i in range(n):
                mval += weights[i] * merge_counts[i, t]
            threshold = 0.0 if strongest else mval + merge_slack[t] + tolerance
            n_pop = 0
            size = n_pairs
            found = 0
            while size > 0 and found < per_step and n_out + found < cap:
                top = heap[0]
                if pr[top] <= threshold:
                    break
                if top != m:
                    excess = pr[top] - (mval + merge_slack[t])
                    if not strongest and excess > worst:
                        worst = excess
                    out_t[n_out + found] = t
                    out_p[n_out + found] = top
                    found += 1
                # Pop: move it past the end of the heap, restored below.
                size -= 1
                heap[0] = heap[size]
                where[heap[0]] = 0
                heap[size] = top
                where[top] = size
                popped[n_pop] = top
                n_pop += 1
                if size > 0:
                    _sift_down(heap, where, pr, 0, size)
                if n_pop == popped.shape[0]:
                    break
            # Push the popped entries back (they sit at heap[size:size + n_pop]).
            for j in range(n_pop):
                _sift_up(heap, where, pr, size + j)
            n_out += found
            if n_out >= max_total or n_out >= cap:
                break
        # Apply this step's changes of every category.
        n_changed = 0
        for i in range(n):
            s = step_offsets[i, t]
            e = step_offsets[i, t + 1]
            if e == s:
                continue
            w = weights[i]
            if n_changed + (e - s) > changed.shape[0]:
                bigger = np.empty(max(2 * changed.shape[0], n_changed + (e - s)), dtype=np.int32)
                bigger[:n_changed] = changed[:n_changed]
                changed = bigger
            for k in range(s, e):
                g = delta_pairs[k]
                mixed[g] += w * delta_values[k]
                if stamp[g] != t:
                    stamp[g] = t
                    changed[n_changed] = g
                    n_changed += 1
        for j in range(n_changed):
            g = changed[j]
            old = pr[g]
            pr[g] = mixed[g] - pair_slack[g]
            if pr[g] > old:
                _sift_up(heap, where, pr, where[g])
            elif pr[g] < old:
                _sift_down(heap, where, pr, where[g], n_pairs)
    return out_t[:n_out].copy(), out_p[:n_out].copy(), worst


@njit(cache=True, nogil=True)
def constraint_counts(
    req_steps: np.ndarray,
    req_pairs: np.ndarray,
    n_pairs: int,
    replayed: Replayed,
) -> np.ndarray:
    """Per-category counts for constraint rows: ``out[r, i] = merge count - count of pair``.

    Request ``r`` is the pair ``req_pairs[r]`` at step ``req_steps[r]``
    (requests sorted by step). ``out[r, i]`` is category ``i``'s count of
    the merged pair at that step minus its count of the requested pair, both
    just before the merge (int64).
    """
    init_offsets, init_pairs, init_counts = replayed[0], replayed[1], replayed[2]
    step_offsets, delta_pairs, delta_values = replayed[3], replayed[4], replayed[5]
    merge_counts = replayed[6]
    n = step_offsets.shape[0]
    n_req = req_steps.shape[0]
    out = np.zeros((n_req, n), dtype=np.int64)
    if n_req == 0:
        return out
    last = req_steps[n_req - 1]
    cur = np.zeros(n_pairs, dtype=np.int64)
    for i in range(n):
        cur[:] = 0
        for k in range(init_offsets[i], init_offsets[i + 1]):
            cur[init_pairs[k]] += init_counts[k]
        r = 0
        for t in range(last + 1):
            while r < n_req and req_steps[r] == t:
                out[r, i] = merge_counts[i, t] - cur[req_pairs[r]]
                r += 1
            for k in range(step_offsets[i, t], step_offsets[i, t + 1]):
                cur[delta_pairs[k]] += delta_values[k]
    return out
