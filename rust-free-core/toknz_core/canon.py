"""Canonicality kernels: can two BPE tokens stand side by side inside one pre-token?

A token ``t`` that BPE builds from its own bytes has a merge tree: the last
merge joined ``left_child[t]`` and ``right_child[t]`` at rank ``crank[t]``
(its *creation rank*; -1 for a base symbol such as a byte). Its right edge is
the chain ``t, right_child[t], right_child[right_child[t]], ...`` down to a
base symbol, and its left edge likewise through ``left_child``.

When the bytes of ``l`` and ``r`` are merged as one word, both sides rebuild
their tokens independently unless a merge across the boundary fires first.
At any moment the symbols touching the boundary are one node ``x`` of ``l``'s
right edge and one node ``y`` of ``r``'s left edge. The pair ``(x, y)`` fires
if its rank is lower than the rank of the next merge that would replace ``x``
(a tie goes to that merge, which lies to the left) and not higher than the one
that would replace ``y`` (a tie goes to the cross pair, which lies to the
left). :func:`pair_ok` walks both edges bottom up in rank order; the cost is
the sum of the two edge lengths, at most the two tokens' lengths.

The argument needs creation ranks that grow up each tree (the merge that makes
a token comes after the merges that make its parts); tokens for which that or
reachability fails are marked ``crank = IRREGULAR`` by the caller and the
kernels answer ``UNDECIDED`` for pairs that involve them.

Pair ranks come from the pair table of :mod:`toknz_core.encode` (``pairs``), the one
every merge kernel uses.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from toknz_core.encode import NO_RANK, pair_entries, pair_rank

#: ``crank`` of a token whose merge tree cannot be walked (unreachable, non-monotone ranks).
IRREGULAR = np.int64(-2)
#: Answers of :func:`pair_ok`.
INVALID = np.int8(0)
VALID = np.int8(1)
UNDECIDED = np.int8(-1)

_INF = np.int64(2**62)
_NO_RANK = np.int64(NO_RANK)
_MAX_DEPTH = 1024


@njit(cache=True, nogil=True)
def _right_edge(left: np.int64, right_child: np.ndarray, crank: np.ndarray, xs: np.ndarray) -> int:
    """Fill ``xs`` with ``left``'s right edge, top down; its length, or -1 if irregular."""
    m = 0
    t = np.int64(left)
    while True:
        if crank[t] == IRREGULAR or m >= _MAX_DEPTH:
            return -1
        xs[m] = t
        m += 1
        c = right_child[t]
        if c < 0:
            return m
        t = np.int64(c)


@njit(cache=True, nogil=True)
def _climb(
    xs: np.ndarray, i: int, y: np.int64, limit: np.int64, crank: np.ndarray, pairs: np.ndarray
) -> int:
    """Walk ``left``'s right edge up from ``xs[i]`` beside the node ``y`` of a left edge.

    ``limit``: the creation rank of the node above ``y`` (``_INF`` at the
    top). Returns the edge index at which the walk moves above ``y``, -1 if
    a merge across the boundary fires first, or -2 when the top is reached
    with nothing firing (valid).
    """
    while True:
        c = pair_rank(pairs, np.int64(xs[i]), y)
        nl = np.int64(crank[xs[i - 1]]) if i > 0 else _INF
        if c != _NO_RANK and c < nl and c <= limit:
            return -1
        if i == 0 and limit == _INF:
            return -2
        if nl <= limit:
            i -= 1
        else:
            return i


@njit(cache=True, nogil=True)
def _pair_ok_edge(
    xs: np.ndarray,
    m: int,
    right: np.int64,
    ys: np.ndarray,
    left_child: np.ndarray,
    crank: np.ndarray,
    pairs: np.ndarray,
) -> np.int8:
    """:func:`pair_ok` given the left token's right edge ``xs[:m]`` (``ys``: scratch space)."""
    n = 0
    t = np.int64(right)
    while True:
        if crank[t] == IRREGULAR or n >= _MAX_DEPTH:
            return UNDECIDED
        ys[n] = t
        n += 1
        c = left_child[t]
        if c < 0:
            break
        t = np.int64(c)
    # Up both edges in creation order: for each node of `right`'s left edge, bottom
    # (a base symbol) first, climb `left`'s right edge (index m-1 is its bottom).
    i = m - 1
    for j in range(n - 1, -1, -1):
        limit = np.int64(crank[ys[j - 1]]) if j > 0 else _INF
        i = _climb(xs, i, np.int64(ys[j]), limit, crank, pairs)
        if i == -1:
            return INVALID
        if i == -2:
            return VALID
    return VALID  # not reached: the top step (limit _INF) returns -1 or -2


@njit(cache=True, nogil=True)
def pair_ok(
    left: np.int64,
    right: np.int64,
    left_child: np.ndarray,
    right_child: np.ndarray,
    crank: np.ndarray,
    pairs: np.ndarray,
) -> np.int8:
    """Whether tokens ``left`` then ``right`` survive BPE side by side within one word.

    ``left_child``/``right_child`` (int32, -1 for base symbols) and ``crank``
    (int64) describe the merge trees; ``pairs`` is the pair table.
    Returns ``VALID`` (1), ``INVALID`` (0), or ``UNDECIDED`` (-1) when a token
    on either edge is irregular. Ids must be in range (not checked here).
    """
    xs = np.empty(_MAX_DEPTH, dtype=np.int64)
    ys = np.empty(_MAX_DEPTH, dtype=np.int64)
    m = _right_edge(left, right_child, crank, xs)
    if m < 0:
        return UNDECIDED
    return _pair_ok_edge(xs, m, right, ys, left_child, crank, pairs)


@njit(cache=True, nogil=True)
def pairs_ok(
    lefts: np.ndarray,
    rights: np.ndarray,
    left_child: np.ndarray,
    right_child: np.ndarray,
    crank: np.ndarray,
    pairs: np.ndarray,
) -> np.ndarray:
    """:func:`pair_ok` for each ``(lefts[k], rights[k])``; int8 array of the answers."""
    out = np.empty(lefts.shape[0], dtype=np.int8)
    for k in range(lefts.shape[0]):
        out[k] = pair_ok(
            np.int64(lefts[k]), np.int64(rights[k]), left_child, right_child, crank, pairs
        )
    return out


@njit(cache=True, nogil=True)
def row_ok(
    left: np.int64,
    rights: np.ndarray,
    left_child: np.ndarray,
    right_child: np.ndarray,
    crank: np.ndarray,
    pairs: np.ndarray,
) -> np.ndarray:
    """:func:`pair_ok` of one left token against many right tokens (int8 answers).

    The left token's right edge is walked once, and scratch space is shared.
    """
    out = np.empty(rights.shape[0], dtype=np.int8)
    xs = np.empty(_MAX_DEPTH, dtype=np.int64)
    ys = np.empty(_MAX_DEPTH, dtype=np.int64)
    m = _right_edge(left, right_child, crank, xs)
    if m < 0:
        out[:] = UNDECIDED
        return out
    for k in range(rights.shape[0]):
        out[k] = _pair_ok_edge(xs, m, np.int64(rights[k]), ys, left_child, crank, pairs)
    return out


def pairs_by_left(pairs: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pair table as CSR by left symbol: ``(starts [n+1], rights, ranks)``."""
    lefts, rights, r = pair_entries(pairs)
    keep = (lefts >= 0) & (lefts < n) & (rights >= 0) & (rights < n)
    lefts, rights, r = lefts[keep], rights[keep], r[keep]
    order = np.argsort(lefts, kind="stable")
    starts = np.searchsorted(lefts[order], np.arange(n + 1)).astype(np.int64)
    return starts, rights[order], r[order]


@njit(cache=True, nogil=True)
def row_ok_all(
    left: np.int64,
    order: np.ndarray,
    left_child: np.ndarray,
    right_child: np.ndarray,
    crank: np.ndarray,
    pairs: np.ndarray,
    by_left_starts: np.ndarray,
    by_left_rights: np.ndarray,
    by_left_ranks: np.ndarray,
) -> np.ndarray:
    """:func:`pair_ok` of ``left`` against every model token (int8 answers, indexed by id).

    ``order``: the token ids sorted by ``crank`` (irregular, then base
    symbols, then by creation rank), so a token comes after its left child;
    ``by_left_*``: the pair table by left symbol (:func:`pairs_by_left`).
    The walk of :func:`pair_ok` up a right token's left edge is the walk up
    its left child's edge followed by one more step, so each token's state
    is computed once from its left child's. The last step (the right token
    itself beside the rest of ``left``'s edge) is one comparison: the lowest
    edge index whose node merges with the token early enough is found once
    for all tokens from the merges of the edge's nodes.
    """
    n = crank.shape[0]
    out = np.empty(n, dtype=np.int8)
    xs = np.empty(_MAX_DEPTH, dtype=np.int64)
    m = _right_edge(left, right_child, crank, xs)
    if m < 0:
        out[:] = UNDECIDED
        return out
    # first_bad[y]: the lowest edge index i whose node x_i merges with y at a rank
    # below the creation rank of x_{i-1} (the node above it on the edge).
    first_bad = np.full(n, _MAX_DEPTH, dtype=np.int64)
    for i in range(m - 1, -1, -1):
        x = xs[i]
        nl = np.int64(crank[xs[i - 1]]) if i > 0 else _INF
        for k in range(by_left_starts[x], by_left_starts[x + 1]):
            if by_left_ranks[k] < nl:
                first_bad[by_left_rights[k]] = i
    # arrival[t]: the right-edge index the walk is at when it reaches t going up
    # (-1: invalid below t; -3: irregular).
    arrival = np.empty(n, dtype=np.int64)
    for k in range(order.shape[0]):
        t = order[k]
        ct = crank[t]
        if ct == IRREGULAR:
            arrival[t] = -3
            out[t] = UNDECIDED
            continue
        if ct == -1:
            a = m - 1
        else:
            y = np.int64(left_child[t])
            a = arrival[y]
            if a >= 0:
                a = _climb(xs, a, y, ct, crank, pairs)
        arrival[t] = a
        if a == -3:
            out[t] = UNDECIDED
        elif a == -1:
            out[t] = INVALID
        else:
            out[t] = INVALID if first_bad[t] <= a else VALID
    return out
