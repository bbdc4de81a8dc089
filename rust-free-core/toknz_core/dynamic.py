"""Dynamic tokenization kernels: batch-level BPE over token-id sequences, and its boundaries.

:func:`merge_batch` does the whole merge of a batch in one call, in three
phases that are also callable on their own (for profiling and tests):

- :func:`segment_words`: cut the flat ids at the segment starts and
  deduplicate the segments of two or more ids into CSR "words" with counts
  (a one-id segment cannot merge and is left where it is);
- :func:`merge_words`: repeatedly merge, in every word, the pair of adjacent
  ids with the largest count (words weighted by their counts; ties to the
  smaller ``(left, right)``), left to right, until ``budget`` new ids exist or
  no pair occurs ``min_count`` times. Pair counts are kept exactly and
  incrementally (only pairs next to a merged occurrence change), each pair
  knows the words that may hold it, and a lazy max-heap holds only pairs that
  reach ``min_count``: a batch with no repeated pair stops at once;
- :func:`expand`: write the merged words back in place of their segments,
  with each new position's span of original positions.

:func:`boundary_cuts` flags the positions where a merged token may not
continue (the validity rule of :mod:`toknz.dynamic`) from per-token flags.

Ids: base ids are the batch's own (``0..top``); while merging, new token ``k``
is ``top + 1 + k`` (so new ids sort after base ids, in order of creation, as
the caller's ``first_new_id + k`` do). Pairs are keyed ``left << 32 | right``
as ``uint64``, which orders them as ``(left, right)``; ids stay below ``2**32``
(the caller keeps base ids below ``2**31``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from toknz_core import pretok
from toknz_core.hashing import fibonacci_slot, mix64

_EMPTY = np.uint64(0xFFFFFFFFFFFFFFFF)
#: Multiplier of the polynomial hash of a token's base ids (odd).
_POLY = np.uint64(0x100000001B3)

# Flags of :func:`boundary_cuts`, one bit each in the per-token flag byte.
HAS_WS = 1  # holds a whitespace byte
ALL_WS = 2  # non-empty and only whitespace
WS_INSIDE = 4  # whitespace after its first byte
PUNCT = 8  # punctuation and no digit (rule word+hyphen)
HYPHEN = 16  # exactly "-"
ADDED = 32  # an added / special token

RULE_PRETOKEN = 0
RULE_WORD = 1
RULE_WORD_HYPHEN = 2


# ----------------------------------------------------------------------------- segments


@njit(cache=True, nogil=True)
def segment_words(
    ids: np.ndarray, cut: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Deduplicate the segments of ``ids`` (a segment starts where ``cut`` is non-zero).

    ``cut[0]`` must be set when ``ids`` is not empty. Returns ``(seg_start,
    seg_word, words, word_off, counts)``: each segment's first position
    (plus ``len(ids)`` at the end), its word index (-1 for a one-id segment),
    and the distinct segments of two or more ids in CSR (``words`` int64) with
    the int64 count of each.

    >>> import numpy as np
    >>> s, w, words, off, c = segment_words(np.array([5, 6, 7, 5, 6]), np.array([1, 0, 1, 1, 0]))
    >>> s.tolist(), w.tolist(), words.tolist(), off.tolist(), c.tolist()
    ([0, 2, 3, 5], [0, -1, 0], [5, 6], [0, 2], [2])
    """
    n = ids.shape[0]
    n_seg = 0
    for i in range(n):
        if cut[i]:
            n_seg += 1
    seg_start = np.empty(n_seg + 1, dtype=np.int64)
    k = 0
    for i in range(n):
        if cut[i]:
            seg_start[k] = i
            k += 1
    seg_start[n_seg] = n
    seg_word = np.full(n_seg, -1, dtype=np.int64)
    n_multi = 0
    for g in range(n_seg):
        if seg_start[g + 1] - seg_start[g] > 1:
            n_multi += 1
    cap = 16
    while cap < 2 * n_multi + 2:
        cap *= 2
    mask = np.uint64(cap - 1)
    slots = np.full(cap, -1, dtype=np.int64)
    words = np.empty(n, dtype=np.int64)
    word_off = np.zeros(n_multi + 1, dtype=np.int64)
    counts = np.zeros(n_multi, dtype=np.int64)
    n_words = 0
    for g in range(n_seg):
        s = seg_start[g]
        e = seg_start[g + 1]
        if e - s < 2:
            continue
        h = np.uint64(e - s)
        for i in range(s, e):
            h = mix64(np.int64(h ^ (np.uint64(ids[i]) + np.uint64(0x9E3779B97F4A7C15))))
        slot = np.int64(h & mask)
        while True:
            w = slots[slot]
            if w < 0:
                at = word_off[n_words]
                for i in range(e - s):
                    words[at + i] = ids[s + i]
                word_off[n_words + 1] = at + e - s
                counts[n_words] = 1
                slots[slot] = n_words
                seg_word[g] = n_words
                n_words += 1
                break
            ws = word_off[w]
            if word_off[w + 1] - ws == e - s:
                same = True
                for i in range(e - s):
                    if words[ws + i] != ids[s + i]:
                        same = False
                        break
                if same:
                    counts[w] += 1
                    seg_word[g] = w
                    break
            slot = np.int64((np.uint64(slot) + np.uint64(1)) & mask)
    return (
        seg_start,
        seg_word,
        words[: word_off[n_words]].copy(),
        word_off[: n_words + 1].copy(),
        counts[:n_words].copy(),
    )


# ----------------------------------------------------------------------------- merging


@njit(cache=True, nogil=True, inline="always")
def _before(h: np.ndarray, i: int, j: int) -> bool:
    """Does heap entry ``i`` pop before ``j``? Larger count, then smaller (left, right)."""
    if h[3 * i] != h[3 * j]:
        return h[3 * i] > h[3 * j]
    return np.uint64(h[3 * i + 1]) < np.uint64(h[3 * j + 1])


@njit(cache=True, nogil=True, inline="always")
def _swap(h: np.ndarray, i: int, j: int) -> None:
    for f in range(3):
        h[3 * i + f], h[3 * j + f] = h[3 * j + f], h[3 * i + f]


@njit(cache=True, nogil=True, inline="always")
def _push(h: np.ndarray, size: int, c: np.int64, key: np.int64, p: int) -> int:
    """Add entry (count ``c``, pair ``key``, pair ``p``) to the heap ``h`` of ``size`` entries
    (three int64 each); return the new size."""
    i = size
    h[3 * i] = c
    h[3 * i + 1] = key
    h[3 * i + 2] = p
    while i > 0:
        parent = (i - 1) >> 1
        if not _before(h, i, parent):
            break
        _swap(h, i, parent)
        i = parent
    return size + 1


@njit(cache=True, nogil=True, inline="always")
def _pop(h: np.ndarray, size: int) -> int:
    """Remove the top entry; return the new size."""
    size -= 1
    for f in range(3):
        h[f] = h[3 * size + f]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and _before(h, child + 1, child):
            child += 1
        if not _before(h, child, i):
            break
        _swap(h, i, child)
        i = child
    return size


@njit(cache=True, nogil=True)
def _spell(z: int, top: int, t_left: np.ndarray, t_right: np.ndarray, out: np.ndarray) -> int:
    """Write the base ids of (internal) token ``z`` into ``out``; return how many."""
    stack = np.empty(64, dtype=np.int64)
    stack[0] = z
    depth = 1
    n = 0
    while depth > 0:
        depth -= 1
        t = stack[depth]
        if t <= top:
            out[n] = t
            n += 1
            continue
        if depth + 2 > stack.shape[0]:
            bigger = np.empty(2 * stack.shape[0], dtype=np.int64)
            bigger[:depth] = stack[:depth]
            stack = bigger
        stack[depth] = t_right[t - top - 1]
        stack[depth + 1] = t_left[t - top - 1]
        depth += 2
    return n


@njit(cache=True, nogil=True)
def _same_spelling(
    x: int, y: int, n: int, top: int, t_left: np.ndarray, t_right: np.ndarray
) -> bool:
    """Do internal tokens ``x`` and ``y`` (both ``n`` base ids long) spell the same base ids?"""
    bx = np.empty(n, dtype=np.int64)
    by = np.empty(n, dtype=np.int64)
    _spell(x, top, t_left, t_right, bx)
    _spell(y, top, t_left, t_right, by)
    for i in range(n):
        if bx[i] != by[i]:
            return False
    return True


class PairStore(NamedTuple):
    """The pairs of :func:`merge_words`, with the positions where each may occur.

    ``table``: the ``left << 32 | right`` -> pair hash table, two int64 per slot
    (key, -1 when empty, and pair), ``sizes[3]`` slots in use (doubled when
    half full); per pair its ``key`` (int64 bits of the uint64 key),
    ``counts``, the first ``head`` node of its list of positions and the step
    it ``gained_at`` last; ``nodes``: two int32 per list node (a position,
    which may no longer hold the pair, and the next node); ``gained``: the
    pairs that gained in this step; ``sizes``: pairs, list nodes and gained
    pairs in use, and the table's slots.
    """

    table: np.ndarray
    key: np.ndarray
    counts: np.ndarray
    head: np.ndarray
    gained_at: np.ndarray
    nodes: np.ndarray
    gained: np.ndarray
    sizes: np.ndarray


class NewTokens(NamedTuple):
    """The new tokens of :func:`merge_words`: token ``k`` (id ``top + 1 + k``) is
    ``left[k]`` then ``right[k]``, ``length[k]`` base ids whose polynomial hash is
    ``hash[k]`` (``power[k]`` = ``_POLY ** length[k]``); ``keys``/``vals``: the
    hash -> token table."""

    left: np.ndarray
    right: np.ndarray
    length: np.ndarray
    hash: np.ndarray
    power: np.ndarray
    keys: np.ndarray
    vals: np.ndarray


@njit(cache=True, nogil=True)
def _new_pair_store(n_cap: int) -> PairStore:
    """Room for ``n_cap`` pairs and list nodes (the table's room is only filled as it grows)."""
    cap = 16
    while cap < 2 * n_cap:
        cap *= 2
    table = np.empty(2 * cap, dtype=np.int64)
    start = min(cap, 1024)
    table[: 2 * start] = -1
    sizes = np.zeros(4, dtype=np.int64)
    sizes[3] = start
    return PairStore(
        table,
        np.empty(n_cap, dtype=np.int64),
        np.empty(n_cap, dtype=np.int64),
        np.empty(n_cap, dtype=np.int32),
        np.empty(n_cap, dtype=np.int32),
        np.empty(2 * n_cap, dtype=np.int32),
        np.empty(n_cap, dtype=np.int32),
        sizes,
    )


@njit(cache=True, nogil=True, inline="always")
def _slot(table: np.ndarray, n_slots: np.int64, key: np.int64) -> np.int64:
    """Slot of ``key`` in the first ``n_slots`` slots of ``table``, or the empty slot for it."""
    mask = n_slots - 1
    slot = fibonacci_slot(key, mask)
    while table[2 * slot] != -1 and table[2 * slot] != key:
        slot = (slot + 1) & mask
    return slot


@njit(cache=True, nogil=True)
def _grow_table(ps: PairStore) -> None:
    """Double the slots in use and put every pair back."""
    n_slots = 2 * ps.sizes[3]
    ps.table[: 2 * n_slots] = -1
    ps.sizes[3] = n_slots
    for q in range(ps.sizes[0]):
        slot = _slot(ps.table, n_slots, ps.key[q])
        ps.table[2 * slot] = ps.key[q]
        ps.table[2 * slot + 1] = q


@njit(cache=True, nogil=True, inline="always")
def _add(ps: PairStore, x: np.int64, y: np.int64, d: np.int64, at: int, step: int) -> None:
    """Add ``d`` to the count of pair ``(x, y)`` (made if new), a change at position ``at``.

    A gain lists ``at`` under the pair and, once per ``step``, the pair as
    gained (never for ``step`` -1).
    """
    key = np.int64((np.uint64(x) << np.uint64(32)) | np.uint64(y))
    slot = _slot(ps.table, ps.sizes[3], key)
    if ps.table[2 * slot] == -1:
        q = ps.sizes[0]
        ps.sizes[0] += 1
        ps.table[2 * slot] = key
        ps.table[2 * slot + 1] = q
        ps.key[q] = key
        ps.counts[q] = 0
        ps.head[q] = -1
        ps.gained_at[q] = -1
        if 2 * ps.sizes[0] > ps.sizes[3]:
            _grow_table(ps)
    else:
        q = ps.table[2 * slot + 1]
    ps.counts[q] += d
    if d > 0:
        node = ps.sizes[1]
        ps.sizes[1] += 1
        ps.nodes[2 * node] = at
        ps.nodes[2 * node + 1] = ps.head[q]
        ps.head[q] = node
        if ps.gained_at[q] != step:
            ps.gained_at[q] = step
            ps.gained[ps.sizes[2]] = q
            ps.sizes[2] += 1


@njit(cache=True, nogil=True, inline="always")
def _token_of(
    tk: NewTokens, a: np.int64, b: np.int64, top: int, n_new: int
) -> tuple[np.int64, int]:
    """The id of ``a`` then ``b``: the new token with the same base ids, or a new one.

    Returns ``(id, n_new)`` (``n_new`` one more when the token is new).
    """
    if a <= top:
        ha, la, pa = np.uint64(a) + np.uint64(1), np.int64(1), _POLY
    else:
        ha, la, pa = tk.hash[a - top - 1], tk.length[a - top - 1], tk.power[a - top - 1]
    if b <= top:
        hb, lb, pb = np.uint64(b) + np.uint64(1), np.int64(1), _POLY
    else:
        hb, lb, pb = tk.hash[b - top - 1], tk.length[b - top - 1], tk.power[b - top - 1]
    h = ha * pb + hb
    mask = np.int64(tk.keys.shape[0] - 1)
    slot = fibonacci_slot(np.int64(h), mask)
    tk.left[n_new] = a  # the candidate, spelled in the next free slot
    tk.right[n_new] = b
    while tk.keys[slot] != _EMPTY:
        k = tk.vals[slot]
        if tk.keys[slot] == h and tk.length[k] == la + lb:
            if _same_spelling(top + 1 + k, top + 1 + n_new, la + lb, top, tk.left, tk.right):
                return np.int64(top + 1 + k), n_new
        slot = (slot + 1) & mask
    tk.length[n_new] = la + lb
    tk.hash[n_new] = h
    tk.power[n_new] = pa * pb
    tk.keys[slot] = h
    tk.vals[slot] = n_new
    return np.int64(top + 1 + n_new), n_new + 1


@njit(cache=True, nogil=True)
def merge_words(
    words: np.ndarray,
    word_off: np.ndarray,
    counts: np.ndarray,
    top: int,
    budget: int,
    min_count: int,
) -> tuple[
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
]:
    """Merge the most frequent adjacent pair across ``words``, repeatedly, in place.

    ``words``/``word_off``: the distinct segments (int64 ids, all <= ``top``;
    merged in place); ``counts``: how often each occurs. Stops when ``budget``
    new ids exist (-1: no limit) or no pair occurs ``min_count`` (>= 1) times.
    A merge whose base ids are those of an existing new token reuses its id
    (and spends no budget). Returns ``(word_len, m_left, m_right, m_new,
    m_count, m_removed, t_left, t_right, t_len)``: each word's merged length
    (word ``w`` is ``words[word_off[w]:word_off[w] + word_len[w]]``), the
    merges in order (internal ids; ``m_count`` the pair's count when chosen,
    ``m_removed`` the positions it removed, fewer for overlapping
    ``(a, a)``), and each new token's two parts and number of base ids.

    >>> import numpy as np
    >>> words = np.array([1, 2, 3, 1, 2])
    >>> out = merge_words(words, np.array([0, 3, 5]), np.array([1, 1]), 3, -1, 2)
    >>> out[0].tolist(), words[0:2].tolist(), words[3:4].tolist()
    ([2, 1], [4, 3], [4])
    >>> [m.tolist() for m in out[1:]]  # merge (1, 2) -> 4 seen twice; token 4 = (1, 2)
    [[1], [2], [4], [2], [2], [1], [2], [2]]
    """
    n_words = word_off.shape[0] - 1
    wlen = np.empty(n_words, dtype=np.int64)
    total = 0
    for w in range(n_words):
        wlen[w] = word_off[w + 1] - word_off[w]
        total += wlen[w]
    # Every merged occurrence removes a position and makes at most two new pairs.
    most = max(total - n_words, 0)
    ps = _new_pair_store(max(3 * most, 16))
    # Per position, four int64: its symbol, the next and previous positions of its word
    # (-1: none; a merge unlinks its right symbol, whose previous becomes -2) and its word.
    at = np.empty(4 * max(total, 1), dtype=np.int64)
    for w in range(n_words):
        s = word_off[w]
        e = word_off[w + 1]
        for i in range(s, e):
            at[4 * i] = words[i]
            at[4 * i + 1] = i + 1 if i + 1 < e else -1
            at[4 * i + 2] = i - 1 if i > s else -1
            at[4 * i + 3] = w
        for i in range(s, e - 1):
            _add(ps, words[i], words[i + 1], counts[w], i, -1)

    # The heap: (count, key, pair) of pairs that reach min_count; an entry whose count is
    # not the pair's any more is re-filed when it comes up.
    heap = np.empty(3 * (ps.key.shape[0] + 1), dtype=np.int64)
    hsize = 0
    for p in range(ps.sizes[0]):
        if ps.counts[p] >= min_count:
            hsize = _push(heap, hsize, ps.counts[p], ps.key[p], p)

    n_m = most + 1 if hsize > 0 else 1
    m_left = np.empty(n_m, dtype=np.int64)
    m_right = np.empty(n_m, dtype=np.int64)
    m_new = np.empty(n_m, dtype=np.int64)
    m_count = np.empty(n_m, dtype=np.int64)
    m_removed = np.empty(n_m, dtype=np.int64)
    n_t = min(n_m, budget + 1) if budget >= 0 else n_m
    tcap = 16
    while tcap < 2 * n_t:
        tcap *= 2
    tk = NewTokens(
        np.empty(n_t, dtype=np.int64),
        np.empty(n_t, dtype=np.int64),
        np.empty(n_t, dtype=np.int64),
        np.empty(n_t, dtype=np.uint64),
        np.empty(n_t, dtype=np.uint64),
        np.full(tcap, _EMPTY, dtype=np.uint64),
        np.empty(tcap, dtype=np.int64),
    )
    occ = np.empty(ps.key.shape[0], dtype=np.int64)
    n_new = 0
    n_merges = 0
    while hsize > 0 and (budget < 0 or n_new < budget):
        filed = heap[0]
        p = heap[2]
        hsize = _pop(heap, hsize)
        if filed != ps.counts[p]:  # stale: re-file under the current count, or drop
            if ps.counts[p] >= min_count:
                hsize = _push(heap, hsize, ps.counts[p], ps.key[p], p)
            continue
        a = np.int64(np.uint64(ps.key[p]) >> np.uint64(32))
        b = np.int64(np.uint64(ps.key[p]) & np.uint64(0xFFFFFFFF))
        z, n_new = _token_of(tk, a, b, top, n_new)
        m_left[n_merges] = a
        m_right[n_merges] = b
        m_new[n_merges] = z
        m_count[n_merges] = ps.counts[p]

        # Merge (a, b) -> z at every position listed under the pair that still holds it.
        # The counts change next to each occurrence only: (x, a) -> (x, z) and
        # (b, y) -> (z, y), and none is left of (a, b). Occurrences of (a, b) with
        # a != b never overlap, so their order does not matter; those of (a, a) are
        # taken left to right.
        step = n_merges
        ps.sizes[2] = 0
        n_occ = 0
        node = ps.head[p]
        while node >= 0:
            occ[n_occ] = ps.nodes[2 * node]
            n_occ += 1
            node = ps.nodes[2 * node + 1]
        if a == b:
            occ[:n_occ].sort()
        removed = np.int64(0)
        for o in range(n_occ):
            i = occ[o]
            j = at[4 * i + 1]
            if at[4 * i + 2] == -2 or j < 0 or at[4 * i] != a or at[4 * j] != b:
                continue
            c = counts[at[4 * i + 3]]
            removed += c
            h = at[4 * i + 2]
            if h >= 0:
                _add(ps, at[4 * h], a, -c, h, step)
                _add(ps, at[4 * h], z, c, h, step)
            k = at[4 * j + 1]
            if k >= 0:
                _add(ps, b, at[4 * k], -c, i, step)
                _add(ps, z, at[4 * k], c, i, step)
                at[4 * k + 2] = i
            at[4 * i] = z
            at[4 * i + 1] = k
            at[4 * j + 2] = -2
        ps.counts[p] = 0  # no position holds (a, b) any more
        ps.head[p] = -1
        for g in range(ps.sizes[2]):
            q = ps.gained[g]
            if ps.counts[q] >= min_count:
                hsize = _push(heap, hsize, ps.counts[q], ps.key[q], q)
        m_removed[n_merges] = removed
        n_merges += 1
    for w in range(n_words):  # each word's symbols back to the front of its place
        i = word_off[w]
        n = 0
        while i >= 0:
            words[word_off[w] + n] = at[4 * i]
            n += 1
            i = at[4 * i + 1]
        wlen[w] = n
    return (
        wlen,
        m_left[:n_merges].copy(),
        m_right[:n_merges].copy(),
        m_new[:n_merges].copy(),
        m_count[:n_merges].copy(),
        m_removed[:n_merges].copy(),
        tk.left[:n_new].copy(),
        tk.right[:n_new].copy(),
        tk.length[:n_new].copy(),
    )


@njit(cache=True, nogil=True)
def definitions(
    t_left: np.ndarray, t_right: np.ndarray, t_len: np.ndarray, top: int
) -> tuple[np.ndarray, np.ndarray]:
    """The base ids of every new token, flat: ``(def_ids, def_off)`` (int64).

    New token ``k`` (internal id ``top + 1 + k``, made of ``t_left[k]`` then
    ``t_right[k]``) spans ``def_ids[def_off[k]:def_off[k + 1]]``.

    >>> import numpy as np
    >>> ids, off = definitions(np.array([1, 4]), np.array([2, 1]), np.array([2, 3]), 3)
    >>> ids.tolist(), off.tolist()
    ([1, 2, 1, 2, 1], [0, 2, 5])
    """
    n_new = t_left.shape[0]
    def_off = np.zeros(n_new + 1, dtype=np.int64)
    for k in range(n_new):
        def_off[k + 1] = def_off[k] + t_len[k]
    def_ids = np.empty(def_off[n_new], dtype=np.int64)
    for k in range(n_new):
        at = def_off[k]
        for t in (t_left[k], t_right[k]):
            if t <= top:
                def_ids[at] = t
                at += 1
            else:
                j = t - top - 1
                for i in range(def_off[j], def_off[j + 1]):
                    def_ids[at] = def_ids[i]
                    at += 1
    return def_ids, def_off


@njit(cache=True, nogil=True)
def expand(
    ids: np.ndarray,
    seq_off: np.ndarray,
    seg_start: np.ndarray,
    seg_word: np.ndarray,
    words: np.ndarray,
    word_off: np.ndarray,
    word_len: np.ndarray,
    t_len: np.ndarray,
    top: int,
    first_new_id: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lay the merged words back out, one per segment, in the caller's ids.

    ``ids``/``seq_off``: the original flat ids and sequence offsets;
    ``seg_start``/``seg_word``: from :func:`segment_words`; ``words``,
    ``word_off``, ``word_len``: the merged words; ``t_len``: base ids per new
    token. Internal new id ``top + 1 + k`` becomes ``first_new_id + k``.
    Returns ``(new_ids, new_seq_off, spans)``: the new flat ids (int64), the
    new sequence offsets, and per new position its original ``[start, stop)``
    counted from the start of its sequence (an ``(n, 2)`` int64 array).
    """
    n_seg = seg_word.shape[0]
    total = 0
    for g in range(n_seg):
        w = seg_word[g]
        total += 1 if w < 0 else word_len[w]
    out = np.empty(total, dtype=np.int64)
    spans = np.empty((total, 2), dtype=np.int64)
    n_seq = seq_off.shape[0] - 1
    new_off = np.zeros(n_seq + 1, dtype=np.int64)
    shift = first_new_id - top - 1
    q = 0  # the sequence of the current segment
    at = 0
    for g in range(n_seg):
        p = seg_start[g]
        while seq_off[q + 1] <= p:
            new_off[q + 1] = at
            q += 1
        base = p - seq_off[q]
        w = seg_word[g]
        if w < 0:
            out[at] = ids[p]
            spans[at, 0] = base
            spans[at, 1] = base + 1
            at += 1
            continue
        s = word_off[w]
        for i in range(word_len[w]):
            t = words[s + i]
            spans[at, 0] = base
            if t <= top:
                out[at] = t
                base += 1
            else:
                out[at] = t + shift
                base += t_len[t - top - 1]
            spans[at, 1] = base
            at += 1
    while q < n_seq:
        new_off[q + 1] = at
        q += 1
    return out, new_off, spans


class Merged(NamedTuple):
    """What :func:`merge_batch` returns: ``new_ids``/``new_off``/``spans`` of
    :func:`expand`, the ``merges`` as an ``(n, 3)`` array of ``(left, right,
    new)`` in the caller's ids with each one's ``counts`` and ``removed``
    positions, and :func:`definitions` of the new ids (``def_ids``, ``def_off``)."""

    new_ids: np.ndarray
    new_off: np.ndarray
    spans: np.ndarray
    merges: np.ndarray
    counts: np.ndarray
    removed: np.ndarray
    def_ids: np.ndarray
    def_off: np.ndarray


#: :func:`merge_batch` status: merged; an id outside ``0..2**31 - 2``; ``first_new_id`` not
#: above every id.
OK = 0
BAD_ID = 1
BAD_FIRST = 2


@njit(cache=True, nogil=True)
def merge_batch(
    ids: np.ndarray,
    seq_off: np.ndarray,
    cut: np.ndarray,
    first_new_id: int,
    budget: int,
    min_count: int,
) -> tuple[int, int, Merged]:
    """Merge a batch in one call: :func:`segment_words`, :func:`merge_words`, :func:`expand`.

    ``ids``: the sequences back to back, ``seq_off`` their int64 offsets,
    ``cut``: non-zero where a segment starts (every non-empty sequence's
    first position included). ``first_new_id``: -1 for one more than the
    largest id; ``budget`` (-1: none) and ``min_count`` as in
    :func:`merge_words`. Returns ``(status, top, merged)``: ``OK``, ``BAD_ID``
    or ``BAD_FIRST`` (then ``merged`` is empty), the largest id (-1 for no
    ids), and the :class:`Merged` arrays.

    >>> import numpy as np
    >>> status, top, out = merge_batch(np.array([1, 2, 3, 1, 2]), np.array([0, 3, 5]),
    ...                                np.array([1, 0, 0, 1, 0]), 10, -1, 2)
    >>> status, top, out.new_ids.tolist(), out.new_off.tolist(), out.merges.tolist()
    (0, 3, [10, 3, 10], [0, 2, 3], [[1, 2, 10]])
    """
    top = -1
    for i in range(ids.shape[0]):
        t = ids[i]
        if t < 0 or t >= 2**31 - 1:
            return BAD_ID, top, _no_merge()
        top = max(top, t)
    first = top + 1 if first_new_id < 0 else first_new_id
    if first <= top:
        return BAD_FIRST, top, _no_merge()
    seg_start, seg_word, words, word_off, counts = segment_words(ids, cut)
    word_len, m_left, m_right, m_new, m_count, m_removed, t_left, t_right, t_len = merge_words(
        words, word_off, counts, top, budget, min_count
    )
    new_ids, new_off, spans = expand(
        ids, seq_off, seg_start, seg_word, words, word_off, word_len, t_len, top, first
    )
    shift = first - top - 1
    merges = np.empty((m_left.shape[0], 3), dtype=np.int64)
    for j in range(m_left.shape[0]):
        merges[j, 0] = m_left[j] if m_left[j] <= top else m_left[j] + shift
        merges[j, 1] = m_right[j] if m_right[j] <= top else m_right[j] + shift
        merges[j, 2] = m_new[j] + shift
    def_ids, def_off = definitions(t_left, t_right, t_len, top)
    return OK, top, Merged(new_ids, new_off, spans, merges, m_count, m_removed, def_ids, def_off)


@njit(cache=True, nogil=True)
def _no_merge() -> Merged:
    none = np.empty(0, dtype=np.int64)
    return Merged(
        none,
        np.zeros(1, np.int64),
        np.empty((0, 2), np.int64),
        np.empty((0, 3), np.int64),
        none,
        none,
        none,
        np.zeros(1, np.int64),
    )


@njit(cache=True, nogil=True)
def merge_spelled(
    kind: int,
    arena: np.ndarray,
    arena_off: np.ndarray,
    table: np.ndarray,
    props: np.ndarray,
    ids: np.ndarray,
    seq_off: np.ndarray,
    first_new_id: int,
    budget: int,
    min_count: int,
) -> tuple[int, int, int, Merged]:
    """:func:`spelled_cuts` then :func:`merge_batch`, in one call (``encode_batch(dynamic=...)``).

    Returns ``(bad_id, status, top, merged)``: ``bad_id`` the first position
    whose id is outside the vocabulary tables (-1: none; then nothing is
    merged), and :func:`merge_batch`'s result.
    """
    cut, bad_id, _ = spelled_cuts(kind, arena, arena_off, table, ids, seq_off, props)
    if bad_id >= 0:
        return bad_id, OK, -1, _no_merge()
    status, top, merged = merge_batch(ids, seq_off, cut, first_new_id, budget, min_count)
    return -1, status, top, merged


@njit(cache=True, nogil=True)
def merge_marked(
    props: np.ndarray,
    ids: np.ndarray,
    seq_off: np.ndarray,
    starts: np.ndarray,
    first_new_id: int,
    budget: int,
    min_count: int,
) -> tuple[int, int, int, Merged]:
    """:func:`marked_cuts` then :func:`merge_batch`, in one call: ``encode_batch(dynamic=...)``
    when the encoder reported where its pre-tokens start. Returns :func:`merge_spelled`'s
    ``(bad_id, status, top, merged)``."""
    cut, bad_id = marked_cuts(ids, seq_off, props, starts)
    if bad_id >= 0:
        return bad_id, OK, -1, _no_merge()
    status, top, merged = merge_batch(ids, seq_off, cut, first_new_id, budget, min_count)
    return -1, status, top, merged


# ----------------------------------------------------------------------------- boundaries


@njit(cache=True, nogil=True)
def boundary_cuts(
    ids: np.ndarray,
    seq_off: np.ndarray,
    props: np.ndarray,
    piece_ends: np.ndarray,
    doc_off: np.ndarray,
    rule: int,
) -> tuple[np.ndarray, int, int]:
    """Where a merged token may not continue: one uint8 per position of ``ids``.

    ``ids``/``seq_off``: the sequences back to back; ``props`` (int32): per
    token id its byte length ``<< 8`` or its flag bits (``HAS_WS`` ... ``ADDED``);
    ``rule``: ``RULE_PRETOKEN``, ``RULE_WORD`` or ``RULE_WORD_HYPHEN``. For
    ``RULE_PRETOKEN``, ``piece_ends`` (sorted) are the byte offsets where the
    pre-tokens of the texts end, the texts back to back at ``doc_off``; a
    token starting at one is cut. Returns ``(cut, bad_id, bad_text)``:
    ``bad_id`` the first position whose id is outside ``props`` (else -1),
    ``bad_text`` the first entry of ``seq_off`` whose byte offset is not
    ``doc_off``'s (pre-token rule only; else -1). The rules, position ``i``
    against ``i - 1`` in the same sequence: cut at a sequence start; at a
    token holding whitespace unless both are all whitespace; after a token
    with whitespace inside, unless both are all whitespace; at and after an
    added token; at punctuation other than ``-`` after non-punctuation
    (word+hyphen); and a lone whitespace token joins the next one only when
    it starts its segment.

    >>> import numpy as np
    >>> props = np.array([1 << 8, (1 << 8) | HAS_WS | ALL_WS], dtype=np.int32)  # "a", " "
    >>> cut, _, _ = boundary_cuts(np.array([0, 0, 1, 0]), np.array([0, 4]), props,
    ...                           np.zeros(1, np.int64), np.zeros(2, np.int64), RULE_WORD)
    >>> cut.tolist()
    [1, 0, 1, 0]
    """
    n = ids.shape[0]
    cut = np.zeros(n, dtype=np.uint8)
    n_seq = seq_off.shape[0] - 1
    n_tok = props.shape[0]
    pretoken = rule == RULE_PRETOKEN
    hyphen_rule = rule == RULE_WORD_HYPHEN
    m = piece_ends.shape[0]
    q = 0  # the next sequence start
    at = np.int64(0)  # byte offset of position i (pre-token rule)
    e = 0  # the first piece end not below it
    prev_f = 0
    prev_c = 0
    for i in range(n + 1):
        c = 0
        while q <= n_seq and seq_off[q] == i:
            if pretoken and at != doc_off[q]:
                return cut, -1, q
            q += 1
            c = 1
        if i == n:
            break
        t = ids[i]
        if t < 0 or t >= n_tok:
            return cut, i, -1
        pr = props[t]
        f = pr & 0xFF
        if pretoken:
            while e < m and piece_ends[e] < at:
                e += 1
            if e < m and piece_ends[e] == at:
                c = 1
            at += pr >> 8
        cut[i], c = _rule(f, prev_f, c, prev_c, hyphen_rule)
        prev_f = f
        prev_c = c
    return cut, -1, -1


@njit(cache=True, nogil=True, inline="always")
def _rule(f: int, prev_f: int, c: int, prev_c: int, hyphen_rule: bool) -> tuple[int, int]:
    """The validity rule at one position: ``(cut, c)`` from the token's flags ``f``, the
    previous token's ``prev_f``, ``c`` (1: a segment must start here, at a sequence or
    pre-token start) and the previous position's ``c`` (see :func:`boundary_cuts`)."""
    both_ws = (f & ALL_WS) != 0 and (prev_f & ALL_WS) != 0
    if not both_ws and ((f & HAS_WS) != 0 or (prev_f & WS_INSIDE) != 0):
        c = 1
    if ((f | prev_f) & ADDED) != 0:
        c = 1
    if hyphen_rule and (f & PUNCT) != 0 and (f & HYPHEN) == 0 and (prev_f & PUNCT) == 0:
        c = 1
    final = c
    if (prev_f & ALL_WS) != 0 and (f & HAS_WS) == 0:
        if (prev_f & WS_INSIDE) != 0 or prev_c == 0:
            final = 1
    return final, c


@njit(cache=True, nogil=True)
def marked_cuts(
    ids: np.ndarray, seq_off: np.ndarray, props: np.ndarray, starts: np.ndarray
) -> tuple[np.ndarray, int]:
    """:func:`boundary_cuts` under the pre-token rule, the pre-tokens given as flags.

    ``starts`` (uint8, one per position of ``ids``) is non-zero at the first id of
    every pre-token, as the encoder reports it
    (:func:`toknz_core.docencode.encode_documents_marked`): no text is split
    again. Returns ``(cut, bad_id)``, ``bad_id`` the first position whose id
    is outside ``props`` (else -1).

    >>> import numpy as np
    >>> props = np.array([1 << 8, (1 << 8) | HAS_WS | ALL_WS], dtype=np.int32)  # "a", " "
    >>> cut, bad = marked_cuts(np.array([0, 0, 0, 1]), np.array([0, 4]), props,
    ...                        np.array([1, 0, 1, 0], dtype=np.uint8))
    >>> cut.tolist(), bad
    ([1, 0, 1, 1], -1)
    """
    n = ids.shape[0]
    cut = np.zeros(n, dtype=np.uint8)
    n_seq = seq_off.shape[0] - 1
    n_tok = props.shape[0]
    q = 0  # the next sequence start
    prev_f = 0
    prev_c = 0
    for i in range(n):
        c = 1 if starts[i] != 0 else 0
        while q <= n_seq and seq_off[q] == i:
            q += 1
            c = 1
        t = ids[i]
        if t < 0 or t >= n_tok:
            return cut, i
        f = props[t] & 0xFF
        cut[i], c = _rule(f, prev_f, c, prev_c, False)
        prev_f = f
        prev_c = c
    return cut, -1


@njit(cache=True, nogil=True)
def pretoken_cuts(
    kind: int,
    data: np.ndarray,
    char_off: np.ndarray,
    table: np.ndarray,
    ids: np.ndarray,
    seq_off: np.ndarray,
    props: np.ndarray,
) -> tuple[np.ndarray, int, int]:
    """:func:`boundary_cuts` under the pre-token rule, splitting the texts here.

    ``data``: the texts' UTF-8 back to back (uint8); ``char_off``: int64
    offsets of the texts in characters (code points), from which their byte
    offsets are found; ``kind``/``table``: the split scanner and character
    class table of :func:`toknz_core.pretok.split_batch`. Returns
    :func:`boundary_cuts`'s ``(cut, bad_id, bad_text)``; ``bad_text`` is also
    set when ``char_off`` does not count ``data``'s characters.
    """
    n_docs = char_off.shape[0] - 1
    doc_off = np.empty(n_docs + 1, dtype=np.int64)
    d = 0
    chars = 0
    for i in range(data.shape[0]):
        if (data[i] & 0xC0) != 0x80:  # a character starts here
            while d <= n_docs and char_off[d] == chars:
                doc_off[d] = i
                d += 1
            chars += 1
    while d <= n_docs and char_off[d] == chars:
        doc_off[d] = data.shape[0]
        d += 1
    if d <= n_docs:
        return np.zeros(ids.shape[0], dtype=np.uint8), -1, d
    ends, _ = pretok.split_batch(kind, data, doc_off, table)
    return boundary_cuts(ids, seq_off, props, ends, doc_off, RULE_PRETOKEN)


@njit(cache=True, nogil=True)
def spelled_cuts(
    kind: int,
    arena: np.ndarray,
    arena_off: np.ndarray,
    table: np.ndarray,
    ids: np.ndarray,
    seq_off: np.ndarray,
    props: np.ndarray,
) -> tuple[np.ndarray, int, int]:
    """:func:`boundary_cuts` under the pre-token rule, splitting the bytes the ids spell.

    Token ``t``'s bytes are ``arena[arena_off[t]:arena_off[t + 1]]``; each
    sequence's bytes are split as one text (by ``kind``/``table``, as
    :func:`toknz_core.pretok.split_batch`). For a tokenizer's own ids of
    some texts these are the normalized texts' bytes, so no text is needed.
    Returns :func:`boundary_cuts`'s ``(cut, bad_id, -1)``.
    """
    n = ids.shape[0]
    n_tok = min(props.shape[0], arena_off.shape[0] - 1)
    total = 0
    for i in range(n):
        t = ids[i]
        if t < 0 or t >= n_tok:
            return np.zeros(n, dtype=np.uint8), i, -1
        total += arena_off[t + 1] - arena_off[t]
    data = np.empty(total, dtype=np.uint8)
    n_seq = seq_off.shape[0] - 1
    doc_off = np.empty(n_seq + 1, dtype=np.int64)
    at = 0
    q = 0
    for i in range(n + 1):
        while q <= n_seq and seq_off[q] == i:
            doc_off[q] = at
            q += 1
        if i == n:
            break
        t = ids[i]
        for j in range(arena_off[t], arena_off[t + 1]):
            data[at] = arena[j]
            at += 1
    ends, _ = pretok.split_batch(kind, data, doc_off, table)
    return boundary_cuts(ids, seq_off, props, ends, doc_off, RULE_PRETOKEN)
