"""The BPE merge engine: one pair table and one merge kernel for every caller.

A BPE model reaches the kernels as a *pair table* (:func:`build_pair_table`): for every
mergeable pair of symbol ids ``(left, right)`` the rank of the merge (lower merges
first), and for every rank the id it produces. Two arrays:

- ``pairs``: open addressing (Fibonacci hashing of the pair, linear probing), one
  ``uint64`` per slot: ``left << 44 | right << 24 | rank`` (all ones: empty). A probe
  reads one 8-byte word, so ids must be at most :data:`MAX_ID` and ranks at most
  :data:`MAX_RANK`. After the slots (a power of two of them, at most half full) comes a
  one-hash Bloom filter of the pairs, 4 bits per slot (:func:`table_slots`): most pairs a
  merge asks about are not in the table (two thirds of them in CJK and Cyrillic text), and
  the filter's 128-256 KB stay in the L2 cache where the slots' megabytes do not;
- ``rank_ids``: ``rank_ids[rank]`` is the id a merge of that rank produces (one id per
  rank: true of every BPE model, tiktoken's ranks and ``tokenizers``' merge lists).

Within a word, the pair of lowest rank is merged first; equal ranks go to the leftmost
pair. This is the rule of both tiktoken (whose "rank of a pair" is the rank of the
concatenated token) and the ``tokenizers`` BPE model (rank of the pair in the merge
list), so one kernel serves both; only the pair table differs. A *limit* keeps only the
merges of rank below it (deriving a merge list from ranks, canonicality checks).

:func:`merge_symbols` is the kernel: short words are merged by repeated scanning
(quadratic, tiny constant, :func:`merge_scan`), long ones with a binary heap over a
linked list (:func:`merge_heap`), so a 100,000-symbol word costs O(n log n). Both take
the ranks of the first pairs from the caller (:func:`first_ranks`, or the byte-pair table
of :mod:`toknz_core.docencode`). :func:`merge_words` and :func:`merge_words_below` merge a
batch of words in CSR layout: ``symbols[offsets[i]:offsets[i + 1]]`` are word ``i``'s
initial ids. The pure-Python twin is ``toknz/pipeline/bpe_reference.py``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from toknz_core.hashing import fibonacci_slot

NO_RANK = np.int32(2**31 - 1)
#: Words longer than this use the heap-based merge.
HEAP_THRESHOLD = 24
#: Largest id and rank the pair table holds.
MAX_ID = (1 << 20) - 2
MAX_RANK = (1 << 24) - 2

_EMPTY = np.uint64(0xFFFFFFFFFFFFFFFF)
_FILTER_MUL = np.uint64(0xD6E8FEB86659FD93)
_RANK_MASK = np.uint64((1 << 24) - 1)
_ID_MASK = np.uint64((1 << 20) - 1)
_NO_RANK64 = np.int64(NO_RANK)


@njit(cache=True, nogil=True, inline="always")
def _pair_key(a: np.int64, b: np.int64) -> np.uint64:
    """The key bits of pair ``(a, b)`` in a slot (the rank bits zero). -1 becomes the id
    ``2**20 - 1``, which no pair holds: a symbol -1 never merges."""
    return np.uint64(a) << np.uint64(44) | (np.uint64(b) & _ID_MASK) << np.uint64(24)


@njit(cache=True, nogil=True, inline="always")
def _first_slot(key: np.uint64, mask: np.int64) -> np.int64:
    return fibonacci_slot(np.int64(key >> np.uint64(24)), mask)


@njit(cache=True, nogil=True, inline="always")
def table_slots(pairs: np.ndarray) -> np.int64:
    """The number of slots of a pair table (a power of two): the array holds them and then
    a filter of one word per 16 slots."""
    return np.int64((pairs.shape[0] // 17) * 16)


@njit(cache=True, nogil=True, inline="always")
def _filter_bit(key: np.uint64, slots: np.int64) -> np.int64:
    """The filter bit of a pair key: one of ``4 * slots``."""
    return np.int64(((key * _FILTER_MUL) >> np.uint64(32)) & np.uint64(4 * slots - 1))


@njit(cache=True, nogil=True)
def build_pair_table(
    left: np.ndarray, right: np.ndarray, rank: np.ndarray, new_id: np.ndarray
) -> tuple[np.ndarray, np.ndarray, bool]:
    """The pair table ``(pairs, rank_ids, ok)`` of a model's pairs (int32 arrays of one length).

    When a pair is listed twice, the later entry wins (the behaviour of the ``tokenizers``
    BPE model on duplicate merges). ``ok`` is False when an id or rank is negative or
    above :data:`MAX_ID` / :data:`MAX_RANK`, or one rank produces two different ids: the
    tables must not be used then.

    >>> import numpy as np
    >>> cols = [np.array(c, dtype=np.int32) for c in ([1, 3], [2, 4], [0, 1], [5, 6])]
    >>> pairs, rank_ids, ok = build_pair_table(*cols)
    >>> ok, rank_ids.tolist(), pair_lookup(pairs, rank_ids, 3, 4), pair_lookup(pairs, rank_ids, 2, 1)
    (True, [5, 6], (1, 6), (2147483647, -1))
    """
    n = left.shape[0]
    cap = 16
    while cap < 2 * n + 16:
        cap *= 2
    table = np.zeros(cap + cap // 16, dtype=np.uint64)
    table[:cap] = _EMPTY
    mask = np.int64(cap - 1)
    top = 0
    for i in range(n):
        top = max(top, rank[i])
    rank_ids = np.full(top + 1, -1, dtype=np.int32)
    ok = True
    for i in range(n):
        a, b, r, t = left[i], right[i], rank[i], new_id[i]
        if min(a, b, t, r) < 0 or max(a, b, t) > MAX_ID or r > MAX_RANK:
            ok = False
            continue
        key = _pair_key(np.int64(a), np.int64(b))
        slot = _first_slot(key, mask)
        while table[slot] != _EMPTY and (table[slot] & ~_RANK_MASK) != key:
            slot = (slot + np.int64(1)) & mask
        table[slot] = key | np.uint64(r)
        bit = _filter_bit(key, np.int64(cap))
        table[cap + (bit >> 6)] |= np.uint64(1) << np.uint64(bit & 63)
    # Ranks -> ids from the entries that won.
    for i in range(n):
        if not ok:
            break
        a, b, r, t = left[i], right[i], rank[i], new_id[i]
        if pair_rank(table, np.int64(a), np.int64(b)) != r:
            continue  # overwritten by a later entry of the same pair
        if rank_ids[r] >= 0 and rank_ids[r] != t:
            ok = False
        rank_ids[r] = t
    return table, rank_ids, ok


@njit(cache=True, nogil=True, inline="always")
def pair_rank(pairs: np.ndarray, a: np.int64, b: np.int64) -> np.int64:
    """Rank of the merge of symbols ``(a, b)``, or ``NO_RANK`` (int64). Symbols are ids
    in ``0..MAX_ID`` or -1 (no symbol: never merges)."""
    slots = table_slots(pairs)
    key = _pair_key(a, b)
    bit = _filter_bit(key, slots)
    if (pairs[slots + (bit >> 6)] >> np.uint64(bit & 63)) & np.uint64(1) == np.uint64(0):
        return _NO_RANK64
    mask = slots - np.int64(1)
    slot = _first_slot(key, mask)
    while True:
        e = pairs[slot]
        if e == _EMPTY:
            return _NO_RANK64
        if (e & ~_RANK_MASK) == key:
            return np.int64(e & _RANK_MASK)
        slot = (slot + np.int64(1)) & mask


@njit(cache=True, nogil=True, inline="always")
def slot_pair(pairs: np.ndarray, slot: np.int64) -> tuple[np.int64, np.int64]:
    """``(left, right)`` of the pair in ``pairs[slot]`` (``slot < table_slots(pairs)``), or
    ``(-1, -1)`` for an empty slot."""
    e = pairs[slot]
    if e == _EMPTY:
        return np.int64(-1), np.int64(-1)
    return np.int64(e >> np.uint64(44)), np.int64((e >> np.uint64(24)) & _ID_MASK)


@njit(cache=True, nogil=True)
def pair_lookup(pairs: np.ndarray, rank_ids: np.ndarray, a: int, b: int) -> tuple[int, int]:
    """``(rank, new_id)`` of pair ``(a, b)``, or ``(NO_RANK, -1)``."""
    if min(a, b) < 0 or max(a, b) > MAX_ID:
        return int(NO_RANK), -1
    r = pair_rank(pairs, np.int64(a), np.int64(b))
    if r == _NO_RANK64:
        return int(NO_RANK), -1
    return int(r), int(rank_ids[r])


def pair_entries(pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of the table as int64 arrays ``(left, right, rank)``, in slot order.

    >>> import numpy as np
    >>> cols = [np.array(c, dtype=np.int32) for c in ([1], [2], [0], [5])]
    >>> [a.tolist() for a in pair_entries(build_pair_table(*cols)[0])]
    [[1], [2], [0]]
    """
    slots = pairs[: table_slots(pairs)]
    used = slots[slots != _EMPTY]
    left = (used >> np.uint64(44)).astype(np.int64)
    right = ((used >> np.uint64(24)) & _ID_MASK).astype(np.int64)
    return left, right, (used & _RANK_MASK).astype(np.int64)


# --------------------------------------------------------------------------- #
# The merge kernel


@njit(cache=True, nogil=True, inline="always")
def first_ranks(sym: np.ndarray, n: int, pairs: np.ndarray, prank: np.ndarray) -> None:
    """``prank[i]``: the rank of pair ``(sym[i], sym[i + 1])`` for ``i < n - 1``."""
    for i in range(n - 1):
        prank[i] = pair_rank(pairs, np.int64(sym[i]), np.int64(sym[i + 1]))


@njit(cache=True, nogil=True, inline="always")
def merge_scan(
    sym: np.ndarray,
    n: int,
    pairs: np.ndarray,
    rank_ids: np.ndarray,
    prank: np.ndarray,
    limit: np.int64,
) -> int:
    """Merge ``sym[:n]`` in place by repeated scanning; return the new length.

    ``prank[:n - 1]`` holds the ranks of the first pairs (:func:`first_ranks`) and is
    scratch afterwards; only merges of rank below ``limit`` are made.
    """
    while n > 1:
        best = limit
        at = -1
        for i in range(n - 1):
            if prank[i] < best:  # strict: equal ranks go to the leftmost pair
                best = prank[i]
                at = i
        if at < 0:
            break
        sym[at] = rank_ids[best]
        for j in range(at + 1, n - 1):
            sym[j] = sym[j + 1]
        for j in range(at + 1, n - 2):
            prank[j] = prank[j + 1]
        n -= 1
        if at > 0:
            prank[at - 1] = pair_rank(pairs, np.int64(sym[at - 1]), np.int64(sym[at]))
        if at < n - 1:
            prank[at] = pair_rank(pairs, np.int64(sym[at]), np.int64(sym[at + 1]))
    return n


@njit(cache=True, nogil=True, inline="always")
def heap_push(heap: np.ndarray, size: int, item: np.int64) -> int:
    """Push ``item`` on the binary min-heap ``heap[:size]``; return the new size."""
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
    """Pop the smallest item of ``heap[:size]``; return it and the new size.

    The hole left at the root sinks to a leaf along the smaller children (chosen without
    a branch), then the last item rises from there: a random heap's pop mispredicts a
    branch per level when the last item is sifted down instead.
    """
    top = heap[0]
    size -= 1
    last = heap[size]
    i = 0
    child = 1
    while child + 1 < size:
        child += np.int64(heap[child + 1] < heap[child])
        heap[i] = heap[child]
        i = child
        child = 2 * i + 1
    if child < size:
        heap[i] = heap[child]
        i = child
    while i > 0:
        parent = (i - 1) >> 1
        if heap[parent] <= last:
            break
        heap[i] = heap[parent]
        i = parent
    heap[i] = last
    return top, size


@njit(cache=True, nogil=True, inline="always")
def heapify(heap: np.ndarray, size: int) -> None:
    """Order ``heap[:size]`` as a binary min-heap in place, in O(size)."""
    for start in range(size // 2 - 1, -1, -1):
        i = start
        item = heap[i]
        while True:
            child = 2 * i + 1
            if child >= size:
                break
            if child + 1 < size and heap[child + 1] < heap[child]:
                child += 1
            if item <= heap[child]:
                break
            heap[i] = heap[child]
            i = child
        heap[i] = item


@njit(cache=True, nogil=True)
def merge_heap(
    sym: np.ndarray,
    n: int,
    pairs: np.ndarray,
    rank_ids: np.ndarray,
    prank: np.ndarray,
    limit: np.int64,
) -> int:
    """:func:`merge_scan` with a heap of (rank, position) over a linked list; same
    arguments, same result, O(n log n).

    Positions are the original indices of the left symbols, so ordering the heap by
    ``(rank, position)`` picks the lowest rank, then the leftmost pair, exactly as the
    scan does. ``prank[i]`` stays the rank of the pair that starts at ``i`` now (-1 once
    ``i`` is merged away), so a popped entry is stale exactly when it disagrees with
    ``prank``: no table lookup to check it. Every pair whose rank is below ``limit`` has
    an entry, so the first entry that agrees is the pair to merge.
    """
    # int32 links (the heap packs positions into 32 bits anyway) and a heap of 2n
    # entries: at most n - 1 up front, then each merge pushes at most two and pops
    # one, and there are at most n - 1 merges. About 24 bytes per symbol in all.
    nxt = np.empty(n, dtype=np.int32)
    prv = np.empty(n, dtype=np.int32)
    heap = np.empty(2 * n + 4, dtype=np.int64)
    size = 0
    for i in range(n):
        nxt[i] = i + 1 if i + 1 < n else -1
        prv[i] = i - 1
    for i in range(n - 1):
        r = prank[i]
        if r < limit:
            heap[size] = (r << np.int64(32)) | np.int64(i)
            size += 1
    heapify(heap, size)
    while size > 0:
        item, size = heap_pop(heap, size)
        rank = item >> np.int64(32)
        pos = item & np.int64(0xFFFFFFFF)
        if prank[pos] != rank:
            continue
        right = np.int64(nxt[pos])
        sym[pos] = rank_ids[rank]
        if right < n - 1:
            prank[right] = -1
        after = np.int64(nxt[right])
        nxt[pos] = after
        if after >= 0:
            prv[after] = pos
            r = pair_rank(pairs, np.int64(sym[pos]), np.int64(sym[after]))
            prank[pos] = r
            if r < limit:
                size = heap_push(heap, size, (r << np.int64(32)) | pos)
        else:
            prank[pos] = _NO_RANK64
        before = np.int64(prv[pos])
        if before >= 0:
            r = pair_rank(pairs, np.int64(sym[before]), np.int64(sym[pos]))
            prank[before] = r
            if r < limit:
                size = heap_push(heap, size, (r << np.int64(32)) | before)
    m = 0
    i = 0
    while i >= 0:
        sym[m] = sym[i]
        m += 1
        i = np.int64(nxt[i])
    return m


@njit(cache=True, nogil=True, inline="always")
def merge_symbols(
    sym: np.ndarray,
    n: int,
    pairs: np.ndarray,
    rank_ids: np.ndarray,
    prank: np.ndarray,
    limit: np.int64,
) -> int:
    """Merge ``sym[:n]`` in place (``prank`` as in :func:`merge_scan`); return the new
    length. Words of more than :data:`HEAP_THRESHOLD` symbols take the heap."""
    if n > HEAP_THRESHOLD:
        return merge_heap(sym, n, pairs, rank_ids, prank, limit)
    if n > 1:
        return merge_scan(sym, n, pairs, rank_ids, prank, limit)
    return n


@njit(cache=True, nogil=True)
def merge_word(word: np.ndarray, pairs: np.ndarray, rank_ids: np.ndarray) -> np.ndarray:
    """Merge one word's symbol ids (int32) and return the merged ids (a new array).

    >>> import numpy as np
    >>> cols = [np.array(c, dtype=np.int32) for c in ([1, 5], [2, 3], [0, 1], [5, 6])]
    >>> pairs, rank_ids, _ = build_pair_table(*cols)
    >>> merge_word(np.array([1, 2, 3, 1], dtype=np.int32), pairs, rank_ids).tolist()
    [6, 1]
    """
    sym = word.copy()
    n = sym.shape[0]
    prank = np.empty(max(n, 1), dtype=np.int64)
    first_ranks(sym, n, pairs, prank)
    return sym[: merge_symbols(sym, n, pairs, rank_ids, prank, _NO_RANK64)]


@njit(cache=True, nogil=True)
def _merge_csr(
    symbols: np.ndarray,
    offsets: np.ndarray,
    limits: np.ndarray,
    pairs: np.ndarray,
    rank_ids: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Merge every word of a CSR batch, word ``w`` with the merges of rank below ``limits[w]``."""
    n_words = offsets.shape[0] - 1
    out = np.empty(symbols.shape[0], dtype=np.int32)
    out_offsets = np.empty(n_words + 1, dtype=np.int64)
    out_offsets[0] = 0
    longest = 1
    for w in range(n_words):
        longest = max(longest, offsets[w + 1] - offsets[w])
    prank = np.empty(longest, dtype=np.int64)
    pos = np.int64(0)
    for w in range(n_words):
        start = offsets[w]
        n = offsets[w + 1] - start
        sym = out[pos : pos + n]
        sym[:] = symbols[start : start + n]
        first_ranks(sym, n, pairs, prank)
        pos += merge_symbols(sym, n, pairs, rank_ids, prank, np.int64(limits[w]))
        out_offsets[w + 1] = pos
    return out[:pos], out_offsets


def _check_symbols(symbols: np.ndarray, offsets: np.ndarray) -> None:
    if offsets.shape[0] < 1 or offsets[0] < 0 or offsets[-1] > symbols.shape[0]:
        raise ValueError(f"offsets must lie within 0..{symbols.shape[0]}")
    used = symbols[offsets[0] : offsets[-1]]
    if used.size and (used.min() < -1 or used.max() > MAX_ID):
        raise ValueError(f"symbol ids must be in 0..{MAX_ID}, or -1 (no symbol: never merges)")


def merge_words(
    symbols: np.ndarray, offsets: np.ndarray, pairs: np.ndarray, rank_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Merge every word of a CSR batch.

    ``symbols`` (int32, ids in ``0..MAX_ID``, or -1: a symbol that never merges) holds
    the initial ids of all words back to back; ``offsets`` (int64, length words + 1,
    non-decreasing, within ``len(symbols)``) delimits them.
    Returns ``(out_ids, out_offsets)`` in the same layout, merged. Raises ValueError for
    ids or offsets out of range.

    >>> import numpy as np
    >>> cols = [np.array(c, dtype=np.int32) for c in ([1, 5], [2, 3], [0, 1], [5, 6])]
    >>> pairs, rank_ids, _ = build_pair_table(*cols)
    >>> ids, offsets = merge_words(np.array([1, 2, 3, 2, 1], dtype=np.int32),
    ...                            np.array([0, 3, 5], dtype=np.int64), pairs, rank_ids)
    >>> ids.tolist(), offsets.tolist()
    ([6, 2, 1], [0, 1, 3])
    """
    _check_symbols(symbols, offsets)
    limits = np.full(offsets.shape[0] - 1, NO_RANK, dtype=np.int32)
    return _merge_csr(symbols, offsets, limits, pairs, rank_ids)  # type: ignore[no-any-return]


def merge_words_below(
    symbols: np.ndarray,
    offsets: np.ndarray,
    limits: np.ndarray,
    pairs: np.ndarray,
    rank_ids: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`merge_words`, but word ``i`` only applies merges of rank < ``limits[i]``
    (int32, one per word).

    Used to derive a merge list from tiktoken ranks: a token split by the merges below
    its own rank must come out as exactly two parts.

    >>> import numpy as np
    >>> cols = [np.array(c, dtype=np.int32) for c in ([1, 5], [2, 3], [0, 1], [5, 6])]
    >>> pairs, rank_ids, _ = build_pair_table(*cols)
    >>> ids, _ = merge_words_below(np.array([1, 2, 3, 1, 2, 3], dtype=np.int32),
    ...     np.array([0, 3, 6], dtype=np.int64), np.array([1, 0], dtype=np.int32),
    ...     pairs, rank_ids)
    >>> ids.tolist()
    [5, 3, 1, 2, 3]
    """
    _check_symbols(symbols, offsets)
    if limits.shape[0] != offsets.shape[0] - 1:
        raise ValueError(f"{limits.shape[0]} limits for {offsets.shape[0] - 1} words")
    return _merge_csr(symbols, offsets, limits, pairs, rank_ids)  # type: ignore[no-any-return]
