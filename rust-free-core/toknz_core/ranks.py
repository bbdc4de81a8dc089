"""Kernels over a vocabulary of byte strings held as one flat array plus offsets.

:func:`splits_into_tokens` lists every way each token splits into two tokens:
the pair table of tiktoken's merge rule (a pair merges iff its concatenation
is a token, at that token's rank).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from toknz_core.hashing import fnv1a


@njit(cache=True, nogil=True)
def build_bytes_table(data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Open-addressing table (int64 slots holding token indices, -1 empty) over tokens' bytes."""
    n = offsets.shape[0] - 1
    cap = 16
    while cap < 2 * n + 16:
        cap *= 2
    table = np.full(cap, -1, dtype=np.int64)
    mask = np.uint64(cap - 1)
    for t in range(n):
        slot = np.int64(fnv1a(data, offsets[t], offsets[t + 1]) & mask)
        while table[slot] >= 0:
            slot = (slot + 1) & np.int64(cap - 1)
        table[slot] = t
    return table


@njit(cache=True, nogil=True, inline="always")
def find_bytes_in(
    data: np.ndarray, offsets: np.ndarray, table: np.ndarray, q: np.ndarray, q0: int, q1: int
) -> int:
    """Index of the token whose bytes equal ``q[q0:q1]`` in a :func:`build_bytes_table` table, or -1."""
    cap = table.shape[0]
    slot = np.int64(fnv1a(q, q0, q1) & np.uint64(cap - 1))
    length = q1 - q0
    while True:
        t = table[slot]
        if t < 0:
            return -1
        s = offsets[t]
        if offsets[t + 1] - s == length:
            same = True
            for i in range(length):
                if data[s + i] != q[q0 + i]:
                    same = False
                    break
            if same:
                return t
        slot = (slot + 1) & np.int64(cap - 1)


@njit(cache=True, nogil=True)
def find_bytes(data: np.ndarray, offsets: np.ndarray, table: np.ndarray, q0: int, q1: int) -> int:
    """Index of the token whose bytes equal ``data[q0:q1]``, or -1."""
    return find_bytes_in(data, offsets, table, data, q0, q1)


@njit(cache=True, nogil=True)
def splits_into_tokens(
    data: np.ndarray, offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For tokens given as ``data[offsets[t]:offsets[t + 1]]`` (distinct byte strings):
    every ``(left, right, whole)`` triple of token indices with bytes(left) + bytes(right) == bytes(whole).
    """
    table = build_bytes_table(data, offsets)
    n = offsets.shape[0] - 1
    cap = n * 4 + 16
    left = np.empty(cap, dtype=np.int32)
    right = np.empty(cap, dtype=np.int32)
    whole = np.empty(cap, dtype=np.int32)
    m = 0
    for t in range(n):
        s, e = offsets[t], offsets[t + 1]
        for k in range(s + 1, e):
            a = find_bytes(data, offsets, table, s, k)
            if a < 0:
                continue
            b = find_bytes(data, offsets, table, k, e)
            if b < 0:
                continue
            if m == left.shape[0]:
                left = np.concatenate((left, np.empty(m, dtype=np.int32)))
                right = np.concatenate((right, np.empty(m, dtype=np.int32)))
                whole = np.concatenate((whole, np.empty(m, dtype=np.int32)))
            left[m] = a
            right[m] = b
            whole[m] = t
            m += 1
    return left[:m], right[:m], whole[:m]
