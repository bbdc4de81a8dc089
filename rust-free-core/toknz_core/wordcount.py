"""Counting distinct words (byte strings) in flat arrays: the trainer's counting hot path.

A word table is four arrays plus a size, passed in and returned by the
kernels (so it can grow):

- ``arena`` (uint8): the bytes of all distinct words back to back;
- ``offsets`` (int64, ``n_words + 1`` used): word ``i`` is ``arena[offsets[i]:offsets[i + 1]]``;
- ``counts`` (int64): the count of each word;
- ``slots`` (int64, power-of-two length): open-addressing hash table of word indices, -1 empty.

Words are hashed with FNV-1a. :func:`count_pieces` adds the pieces of one
text (given as its bytes and the end offset of each piece), cutting pieces
longer than ``max_word`` bytes at UTF-8 boundaries; :func:`merge_tables` adds
one table into another (for counts made in worker processes).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from toknz_core.hashing import fnv1a


def new_table(
    capacity: int = 1 << 16, arena_bytes: int = 1 << 20
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """An empty word table: ``(arena, offsets, counts, slots, n_words)``."""
    cap = 16
    while cap < 2 * capacity:
        cap *= 2
    offsets = np.zeros(capacity + 1, dtype=np.int64)
    return (
        np.empty(arena_bytes, dtype=np.uint8),
        offsets,
        np.zeros(capacity, dtype=np.int64),
        np.full(cap, -1, dtype=np.int64),
        0,
    )


@njit(cache=True, nogil=True)
def _rehash(arena: np.ndarray, offsets: np.ndarray, n_words: int, cap: int) -> np.ndarray:
    slots = np.full(cap, -1, dtype=np.int64)
    mask = np.uint64(cap - 1)
    for t in range(n_words):
        slot = np.int64(fnv1a(arena, offsets[t], offsets[t + 1]) & mask)
        while slots[slot] >= 0:
            slot = np.int64((np.uint64(slot) + np.uint64(1)) & mask)
        slots[slot] = t
    return slots


@njit(cache=True, nogil=True)
def _reserve(
    arena: np.ndarray,
    offsets: np.ndarray,
    counts: np.ndarray,
    slots: np.ndarray,
    n_words: int,
    more_words: int,
    more_bytes: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Grow the table so ``more_words`` words of ``more_bytes`` bytes in all fit without reallocation."""
    need = n_words + more_words + 1
    if need > counts.shape[0]:
        cap = max(need, 2 * counts.shape[0])
        grown = np.zeros(cap, dtype=np.int64)
        grown[:n_words] = counts[:n_words]
        counts = grown
        grown_off = np.zeros(cap + 1, dtype=np.int64)
        grown_off[: n_words + 1] = offsets[: n_words + 1]
        offsets = grown_off
    used = offsets[n_words]
    if used + more_bytes > arena.shape[0]:
        grown_arena = np.empty(max(2 * arena.shape[0], used + more_bytes), dtype=np.uint8)
        grown_arena[:used] = arena[:used]
        arena = grown_arena
    if 2 * need > slots.shape[0]:
        cap = slots.shape[0]
        while 2 * need > cap:
            cap *= 2
        slots = _rehash(arena, offsets, n_words, cap)
    return arena, offsets, counts, slots


@njit(cache=True, nogil=True, inline="always")
def _add(
    arena: np.ndarray,
    offsets: np.ndarray,
    counts: np.ndarray,
    slots: np.ndarray,
    n_words: int,
    data: np.ndarray,
    start: int,
    end: int,
    weight: np.int64,
) -> int:
    """Add ``weight`` to word ``data[start:end]`` (room reserved by the caller); return the new word count."""
    mask = np.uint64(slots.shape[0] - 1)
    length = end - start
    slot = np.int64(fnv1a(data, start, end) & mask)
    while True:
        t = slots[slot]
        if t < 0:
            break
        s = offsets[t]
        if offsets[t + 1] - s == length:
            same = True
            for i in range(length):
                if arena[s + i] != data[start + i]:
                    same = False
                    break
            if same:
                counts[t] += weight
                return n_words
        slot = np.int64((np.uint64(slot) + np.uint64(1)) & mask)
    at = offsets[n_words]
    arena[at : at + length] = data[start:end]
    offsets[n_words + 1] = at + length
    counts[n_words] = weight
    slots[slot] = n_words
    return n_words + 1


@njit(cache=True, nogil=True)
def _count_into(
    arena: np.ndarray,
    offsets: np.ndarray,
    counts: np.ndarray,
    slots: np.ndarray,
    n_words: int,
    data: np.ndarray,
    ends: np.ndarray,
    max_word: int,
) -> tuple[int, int]:
    start = 0
    cut = 0
    for i in range(ends.shape[0]):
        end = ends[i]
        if end - start > max_word:
            cut += 1
            s = start
            while end - s > max_word:
                e = s + max_word
                while e > s and (data[e] & 0xC0) == 0x80:
                    e -= 1
                if e == s:
                    e = s + max_word
                    while e < end and (data[e] & 0xC0) == 0x80:
                        e += 1
                n_words = _add(arena, offsets, counts, slots, n_words, data, s, e, np.int64(1))
                s = e
            if s < end:
                n_words = _add(arena, offsets, counts, slots, n_words, data, s, end, np.int64(1))
        elif end > start:
            n_words = _add(arena, offsets, counts, slots, n_words, data, start, end, np.int64(1))
        start = end
    return n_words, cut


@njit(cache=True, nogil=True)
def count_pieces(
    arena: np.ndarray,
    offsets: np.ndarray,
    counts: np.ndarray,
    slots: np.ndarray,
    n_words: int,
    data: np.ndarray,
    ends: np.ndarray,
    max_word: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Count the pieces ``data[ends[i - 1]:ends[i]]`` (the first starts at 0) into the table.

    Pieces longer than ``max_word`` bytes (at least 4) are cut into pieces of
    at most that many bytes at UTF-8 character boundaries. Returns the table
    and the number of pieces that were cut.
    """
    more = ends.shape[0] + data.shape[0] // max(max_word, 1) + 1
    arena, offsets, counts, slots = _reserve(
        arena, offsets, counts, slots, n_words, more, data.shape[0]
    )
    n_words, cut = _count_into(arena, offsets, counts, slots, n_words, data, ends, max_word)
    return arena, offsets, counts, slots, n_words, cut


@njit(cache=True, nogil=True)
def _merge_into(
    arena: np.ndarray,
    offsets: np.ndarray,
    counts: np.ndarray,
    slots: np.ndarray,
    n_words: int,
    other_arena: np.ndarray,
    other_offsets: np.ndarray,
    other_counts: np.ndarray,
    other_n: int,
) -> int:
    for t in range(other_n):
        n_words = _add(
            arena,
            offsets,
            counts,
            slots,
            n_words,
            other_arena,
            other_offsets[t],
            other_offsets[t + 1],
            other_counts[t],
        )
    return n_words


@njit(cache=True, nogil=True)
def merge_tables(
    arena: np.ndarray,
    offsets: np.ndarray,
    counts: np.ndarray,
    slots: np.ndarray,
    n_words: int,
    other_arena: np.ndarray,
    other_offsets: np.ndarray,
    other_counts: np.ndarray,
    other_n: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Add every word of another table (``other_*``, ``other_n`` words) with its count."""
    arena, offsets, counts, slots = _reserve(
        arena, offsets, counts, slots, n_words, other_n, other_offsets[other_n]
    )
    n_words = _merge_into(
        arena, offsets, counts, slots, n_words, other_arena, other_offsets, other_counts, other_n
    )
    return arena, offsets, counts, slots, n_words
