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

Pair ranks come from the pair hash table of :mod:`toknz_core.encode`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from toknz_core.encode import _lookup

#: ``crank`` of a token whose merge tree cannot be walked (unreachable, non-monotone ranks).
IRREGULAR = np.int64(-2)
#: Answers of :func:`pair_ok`.
INVALID = np.int8(0)
VALID = np.int8(1)
UNDECIDED = np.int8(-1)

_INF = np.int64(2**62)
_MAX_DEPTH = 1024


@njit(cache=True, nogil=True)
def pair_ok(
    left: np.int64,
    right: np.int64,
    left_child: np.ndarray,
    right_child: np.ndarray,
    crank: np.ndarray,
    keys: np.ndarray,
    ranks: np.ndarray,
) -> np.int8:
    """Whether tokens ``left`` then ``right`` survive BPE side by side within one word.

    ``left_child``/``right_child`` (int32, -1 for base symbols) and ``crank``
    (int64) describe the merge trees; ``keys``/``ranks`` are the pair table.
    Returns ``VALID`` (1), ``INVALID`` (0), or ``UNDECIDED`` (-1) when a token
    on either edge is irregular. Ids must be in range (not checked here).
    """
    xs = np.empty(_MAX_DEPTH, dtype=np.int64)
    ys = np.empty(_MAX_DEPTH, dtype=np.int64)
    # Right edge of `left`, top down, then reversed to bottom up.
    m = 0
    t = np.int64(left)
    while True:
        if crank[t] == IRREGULAR or m >= _MAX_DEPTH:
            return UNDECIDED
        xs[m] = t
        m += 1
        c = right_child[t]
        if c < 0:
            break
        t = np.int64(c)
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
    i = m - 1  # index into xs: m-1 is the bottom (a base symbol), 0 is `left`
    j = n - 1
    while True:
        slot = _lookup(keys, np.int32(xs[i]), np.int32(ys[j]))
        nl = np.int64(crank[xs[i - 1]]) if i > 0 else _INF
        nr = np.int64(crank[ys[j - 1]]) if j > 0 else _INF
        if slot >= 0:
            c = np.int64(ranks[slot])
            if c < nl and c <= nr:
                return INVALID
        if i == 0 and j == 0:
            return VALID
        if nl <= nr:
            i -= 1
        else:
            j -= 1


@njit(cache=True, nogil=True)
def pairs_ok(
    lefts: np.ndarray,
    rights: np.ndarray,
    left_child: np.ndarray,
    right_child: np.ndarray,
    crank: np.ndarray,
    keys: np.ndarray,
    ranks: np.ndarray,
) -> np.ndarray:
    """:func:`pair_ok` for each ``(lefts[k], rights[k])``; int8 array of the answers."""
    out = np.empty(lefts.shape[0], dtype=np.int8)
    for k in range(lefts.shape[0]):
        out[k] = pair_ok(
            np.int64(lefts[k]), np.int64(rights[k]), left_child, right_child, crank, keys, ranks
        )
    return out


@njit(cache=True, nogil=True)
def row_ok(
    left: np.int64,
    rights: np.ndarray,
    left_child: np.ndarray,
    right_child: np.ndarray,
    crank: np.ndarray,
    keys: np.ndarray,
    ranks: np.ndarray,
) -> np.ndarray:
    """:func:`pair_ok` of one left token against many right tokens (int8 answers)."""
    out = np.empty(rights.shape[0], dtype=np.int8)
    for k in range(rights.shape[0]):
        out[k] = pair_ok(
            np.int64(left), np.int64(rights[k]), left_child, right_child, crank, keys, ranks
        )
    return out
