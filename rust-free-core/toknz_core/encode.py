"""BPE encoding kernels: merge-rank lookup on integer ids, lowest rank first.

A BPE model is given to the kernels as a *pair table*: for every mergeable
pair of symbol ids ``(left, right)`` the rank of the merge (lower merges first)
and the id of the symbol it produces. The table is an open-addressing hash map
held in three flat arrays (see :func:`build_pair_table`).

Words arrive in CSR layout: ``symbols[offsets[i]:offsets[i + 1]]`` are the
initial symbol ids of word ``i``. :func:`merge_words` merges each word in
place of a copy and returns the merged ids in the same layout.

Within a word, the pair of lowest rank is merged first; equal ranks go to the
leftmost pair. This is the rule of both tiktoken (whose "rank of a pair" is the
rank of the concatenated token) and the ``tokenizers`` BPE model (rank of the
pair in the merge list), so one kernel serves both; only the pair table differs.

Short words are merged by repeated scanning (quadratic, tiny constant); long
words use a binary heap with lazy invalidation over a linked list, so a
pathological 100,000-symbol word costs O(n log n), not O(n^2).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from toknz_core.hashing import fibonacci_slot

NO_RANK = np.int32(2**31 - 1)
EMPTY_KEY = np.int64(-1)
# Words longer than this use the heap-based merge.
HEAP_THRESHOLD = 48


@njit(cache=True, nogil=True)
def build_pair_table(
    left: np.ndarray, right: np.ndarray, rank: np.ndarray, new_id: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Build the pair -> (rank, new id) hash table.

    ``left``, ``right``, ``rank`` and ``new_id`` are int32 arrays of one length;
    ids must be non-negative. When a pair occurs twice, the later entry wins
    (the behaviour of the ``tokenizers`` BPE model on duplicate merges).
    Returns ``(keys, ranks, ids)``: int64 keys (``left << 32 | right``, -1 for
    an empty slot), int32 ranks and int32 new ids, of a power-of-two length at
    least twice the number of pairs.
    """
    n = left.shape[0]
    cap = 16
    while cap < 2 * n + 16:
        cap *= 2
    keys = np.full(cap, EMPTY_KEY, dtype=np.int64)
    ranks = np.full(cap, NO_RANK, dtype=np.int32)
    ids = np.full(cap, -1, dtype=np.int32)
    mask = np.int64(cap - 1)
    for i in range(n):
        key = (np.int64(left[i]) << np.int64(32)) | np.int64(right[i])
        slot = fibonacci_slot(key, mask)
        while keys[slot] != EMPTY_KEY and keys[slot] != key:
            slot = (slot + np.int64(1)) & mask
        keys[slot] = key
        ranks[slot] = rank[i]
        ids[slot] = new_id[i]
    return keys, ranks, ids


@njit(cache=True, nogil=True, inline="always")
def lookup_slot(keys: np.ndarray, a: np.int32, b: np.int32) -> np.int64:
    """Slot of pair (a, b) in the table, or -1 when the pair does not merge."""
    mask = np.int64(keys.shape[0] - 1)
    key = (np.int64(a) << np.int64(32)) | np.int64(b)
    slot = fibonacci_slot(key, mask)
    while True:
        k = keys[slot]
        if k == key:
            return slot
        if k == EMPTY_KEY:
            return np.int64(-1)
        slot = (slot + np.int64(1)) & mask


@njit(cache=True, nogil=True)
def pair_lookup(
    keys: np.ndarray, ranks: np.ndarray, ids: np.ndarray, a: int, b: int
) -> tuple[int, int]:
    """Return ``(rank, new_id)`` of pair ``(a, b)``, or ``(NO_RANK, -1)``."""
    slot = lookup_slot(keys, np.int32(a), np.int32(b))
    if slot < 0:
        return NO_RANK, -1
    return ranks[slot], ids[slot]


@njit(cache=True, nogil=True, inline="always")
def _merge_scan(
    sym: np.ndarray, n: int, keys: np.ndarray, ranks: np.ndarray, ids: np.ndarray
) -> int:
    """Merge ``sym[:n]`` in place by repeated scanning; return the new length."""
    prank = np.empty(max(n - 1, 1), dtype=np.int32)
    for i in range(n - 1):
        slot = lookup_slot(keys, sym[i], sym[i + 1])
        prank[i] = ranks[slot] if slot >= 0 else NO_RANK
    while n > 1:
        best = NO_RANK
        at = -1
        for i in range(n - 1):
            if prank[i] < best:
                best = prank[i]
                at = i
        if at < 0:
            break
        slot = lookup_slot(keys, sym[at], sym[at + 1])
        sym[at] = ids[slot]
        for j in range(at + 1, n - 1):
            sym[j] = sym[j + 1]
        for j in range(at + 1, n - 2):
            prank[j] = prank[j + 1]
        n -= 1
        if at > 0:
            s = lookup_slot(keys, sym[at - 1], sym[at])
            prank[at - 1] = ranks[s] if s >= 0 else NO_RANK
        if at < n - 1:
            s = lookup_slot(keys, sym[at], sym[at + 1])
            prank[at] = ranks[s] if s >= 0 else NO_RANK
    return n


@njit(cache=True, nogil=True, inline="always")
def heap_push(heap: np.ndarray, size: int, item: np.int64) -> int:
    i = size
    heap[i] = item
    while i > 0:
        parent = (i - 1) >> 1
        if heap[parent] <= heap[i]:
            break
        tmp = heap[parent]
        heap[parent] = heap[i]
        heap[i] = tmp
        i = parent
    return size + 1


@njit(cache=True, nogil=True, inline="always")
def heap_pop(heap: np.ndarray, size: int) -> tuple[np.int64, int]:
    top = heap[0]
    size -= 1
    heap[0] = heap[size]
    i = 0
    while True:
        lo = 2 * i + 1
        if lo >= size:
            break
        child = lo
        if lo + 1 < size and heap[lo + 1] < heap[lo]:
            child = lo + 1
        if heap[i] <= heap[child]:
            break
        tmp = heap[child]
        heap[child] = heap[i]
        heap[i] = tmp
        i = child
    return top, size


@njit(cache=True, nogil=True)
def _merge_heap(
    sym: np.ndarray, n: int, keys: np.ndarray, ranks: np.ndarray, ids: np.ndarray
) -> int:
    """Merge ``sym[:n]`` with a heap of (rank, position); return the new length.

    Positions are the original indices of the left symbols, so ordering the
    heap by ``(rank, position)`` picks the lowest rank, then the leftmost pair,
    exactly as the scanning merge does. Stale entries are skipped on pop by
    checking that the pair now at that position still has that rank.
    """
    # int32 links (the heap packs positions into 32 bits anyway) and a heap of 2n
    # entries: n - 1 pushes up front, then each pop pushes at most two, so the size
    # grows by at most one per merge, and there are at most n - 1 merges. About 21
    # bytes per symbol in all, for pieces of any length.
    nxt = np.empty(n, dtype=np.int32)
    prv = np.empty(n, dtype=np.int32)
    alive = np.ones(n, dtype=np.bool_)
    for i in range(n):
        nxt[i] = i + 1 if i + 1 < n else -1
        prv[i] = i - 1
    heap = np.empty(2 * n + 4, dtype=np.int64)
    size = 0
    for i in range(n - 1):
        slot = lookup_slot(keys, sym[i], sym[i + 1])
        if slot >= 0:
            size = heap_push(heap, size, (np.int64(ranks[slot]) << np.int64(32)) | np.int64(i))
    while size > 0:
        item, size = heap_pop(heap, size)
        rank = np.int32(item >> np.int64(32))
        pos = item & np.int64(0xFFFFFFFF)
        if not alive[pos]:
            continue
        right = np.int64(nxt[pos])
        if right < 0:
            continue
        slot = lookup_slot(keys, sym[pos], sym[right])
        if slot < 0 or ranks[slot] != rank:
            continue
        sym[pos] = ids[slot]
        alive[right] = False
        after = np.int64(nxt[right])
        nxt[pos] = after
        if after >= 0:
            prv[after] = pos
        before = np.int64(prv[pos])
        if before >= 0:
            s = lookup_slot(keys, sym[before], sym[pos])
            if s >= 0:
                size = heap_push(heap, size, (np.int64(ranks[s]) << np.int64(32)) | before)
        if after >= 0:
            s = lookup_slot(keys, sym[pos], sym[after])
            if s >= 0:
                size = heap_push(heap, size, (np.int64(ranks[s]) << np.int64(32)) | pos)
    m = 0
    i = 0
    while i >= 0:
        sym[m] = sym[i]
        m += 1
        i = np.int64(nxt[i])
    return m


@njit(cache=True, nogil=True)
def merge_word(
    word: np.ndarray, keys: np.ndarray, ranks: np.ndarray, ids: np.ndarray
) -> np.ndarray:
    """Merge one word's symbol ids (int32) and return the merged ids (a new array)."""
    sym = word.copy()
    n = sym.shape[0]
    if n > HEAP_THRESHOLD:
        n = _merge_heap(sym, n, keys, ranks, ids)
    else:
        n = _merge_scan(sym, n, keys, ranks, ids)
    return sym[:n]


@njit(cache=True, nogil=True)
def merge_words(
    symbols: np.ndarray,
    offsets: np.ndarray,
    keys: np.ndarray,
    ranks: np.ndarray,
    ids: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Merge every word of a CSR batch.

    ``symbols`` (int32) holds the initial ids of all words back to back;
    ``offsets`` (int64, length words + 1) delimits them. Returns
    ``(out_ids, out_offsets)`` in the same layout, merged.
    """
    n_words = offsets.shape[0] - 1
    out = np.empty(symbols.shape[0], dtype=np.int32)
    out_offsets = np.empty(n_words + 1, dtype=np.int64)
    out_offsets[0] = 0
    pos = np.int64(0)
    for w in range(n_words):
        start = offsets[w]
        n = offsets[w + 1] - start
        sym = out[pos : pos + n]
        sym[:] = symbols[start : start + n]
        if n > HEAP_THRESHOLD:
            m = _merge_heap(sym, n, keys, ranks, ids)
        elif n > 1:
            m = _merge_scan(sym, n, keys, ranks, ids)
        else:
            m = n
        pos += m
        out_offsets[w + 1] = pos
    return out[:pos], out_offsets


@njit(cache=True, nogil=True)
def merge_words_below(
    symbols: np.ndarray,
    offsets: np.ndarray,
    limits: np.ndarray,
    keys: np.ndarray,
    ranks: np.ndarray,
    ids: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`merge_words`, but word ``i`` only applies merges of rank < ``limits[i]``.

    Used to derive a merge list from tiktoken ranks: a token split by the
    merges below its own rank must come out as exactly two parts.
    """
    n_words = offsets.shape[0] - 1
    out = np.empty(symbols.shape[0], dtype=np.int32)
    out_offsets = np.empty(n_words + 1, dtype=np.int64)
    out_offsets[0] = 0
    pos = np.int64(0)
    for w in range(n_words):
        start = offsets[w]
        n = offsets[w + 1] - start
        limit = limits[w]
        sym = out[pos : pos + n]
        sym[:] = symbols[start : start + n]
        while n > 1:
            best = limit
            at = -1
            for i in range(n - 1):
                slot = lookup_slot(keys, sym[i], sym[i + 1])
                if slot >= 0 and ranks[slot] < best:
                    best = ranks[slot]
                    at = i
            if at < 0:
                break
            slot = lookup_slot(keys, sym[at], sym[at + 1])
            sym[at] = ids[slot]
            for j in range(at + 1, n - 1):
                sym[j] = sym[j + 1]
            n -= 1
        pos += n
        out_offsets[w + 1] = pos
    return out[:pos], out_offsets
