"""Dynamic tokenization glue: batch-level BPE over token-id sequences.

The merging itself is the trainer's kernel (:func:`toknz_core.train.train_bpe`);
this module only lays a batch out for it and maps its result back:

- :func:`segment_words` cuts the batch (flat ids + sequence offsets) at the
  allowed boundaries into segments and deduplicates them into CSR "words"
  with counts, remembering which word each segment is;
- :func:`expand` writes every segment's merged word back in place, giving the
  new flat sequence and, per new position, the span ``[start, stop)`` of
  original positions (within its sequence);
- :func:`replay_curve` replays the merge list on each distinct word to count,
  per merge, how many positions it removed (the merges -> length curve).

All ids here are *local*: ``0..n_base - 1`` for the batch's distinct base ids
(in increasing order of the real id) and ``n_base..`` for merged tokens.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from toknz_core.hashing import mix64


@njit(cache=True, nogil=True)
def segment_words(
    sym: np.ndarray, cut: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Deduplicate the segments of ``sym`` (int32 local ids); a segment starts where ``cut`` is 1.

    ``cut[0]`` must be 1 when ``sym`` is not empty. Returns ``(words, word_offsets,
    counts, seg_word, seg_start, longest)``: the distinct segments in CSR (int32
    / int64), the int64 count of each, for every segment (in order) its word
    index and its first position, and the longest segment (in ids).
    """
    n = sym.shape[0]
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
    cap = 16
    while cap < 2 * n_seg + 2:
        cap *= 2
    mask = np.uint64(cap - 1)
    slots = np.full(cap, -1, dtype=np.int64)
    words = np.empty(n, dtype=np.int32)
    word_off = np.zeros(n_seg + 1, dtype=np.int64)
    counts = np.zeros(n_seg, dtype=np.int64)
    seg_word = np.empty(n_seg, dtype=np.int64)
    n_words = 0
    longest = 0
    for g in range(n_seg):
        s = seg_start[g]
        e = seg_start[g + 1]
        longest = max(longest, e - s)
        h = np.uint64(e - s)
        for i in range(s, e):
            h = mix64(np.int64(h ^ (np.uint64(sym[i]) + np.uint64(0x9E3779B97F4A7C15))))
        slot = np.int64(h & mask)
        while True:
            w = slots[slot]
            if w < 0:
                at = word_off[n_words]
                words[at : at + e - s] = sym[s:e]
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
                    if words[ws + i] != sym[s + i]:
                        same = False
                        break
                if same:
                    counts[w] += 1
                    seg_word[g] = w
                    break
            slot = np.int64((np.uint64(slot) + np.uint64(1)) & mask)
    return (
        words[: word_off[n_words]].copy(),
        word_off[: n_words + 1].copy(),
        counts[:n_words].copy(),
        seg_word,
        seg_start[:n_seg].copy(),
        longest,
    )


@njit(cache=True, nogil=True)
def expand(
    merged: np.ndarray,
    word_off: np.ndarray,
    word_len: np.ndarray,
    seg_word: np.ndarray,
    seg_start: np.ndarray,
    seq_off: np.ndarray,
    tok_span: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Lay the merged words back out, one per segment occurrence.

    ``merged``/``word_off``/``word_len``: the merged words (word ``w`` is
    ``merged[word_off[w]:word_off[w] + word_len[w]]``); ``seg_word``/``seg_start``:
    each segment's word and first original position (flat); ``seq_off``: the
    original sequence offsets; ``tok_span``: the number of base ids each local
    id spans. Returns ``(ids, new_seq_off, start, stop)``: the new flat local
    ids, the new sequence offsets, and per new position its original span
    ``[start, stop)`` counted from the start of its sequence.
    """
    n_seg = seg_word.shape[0]
    total = 0
    for g in range(n_seg):
        total += word_len[seg_word[g]]
    ids = np.empty(total, dtype=np.int32)
    start = np.empty(total, dtype=np.int64)
    stop = np.empty(total, dtype=np.int64)
    n_seq = seq_off.shape[0] - 1
    new_off = np.zeros(n_seq + 1, dtype=np.int64)
    q = 0  # the sequence of the current segment
    at = 0
    for g in range(n_seg):
        p = seg_start[g]
        while seq_off[q + 1] <= p:
            new_off[q + 1] = at
            q += 1
        w = seg_word[g]
        base = p - seq_off[q]
        s = word_off[w]
        for i in range(word_len[w]):
            t = merged[s + i]
            ids[at] = t
            start[at] = base
            base += tok_span[t]
            stop[at] = base
            at += 1
    while q < n_seq:
        new_off[q + 1] = at
        q += 1
    return ids, new_off, start, stop


@njit(cache=True, nogil=True)
def replay_curve(
    words: np.ndarray,
    word_off: np.ndarray,
    counts: np.ndarray,
    m_left: np.ndarray,
    m_right: np.ndarray,
    m_new: np.ndarray,
) -> np.ndarray:
    """Positions removed by each merge (int64, one per merge), replaying the merges word by word.

    Merge ``j`` merges every occurrence (left to right) of its pair present in
    a word after merges ``0..j-1``; so a word's next change is the smallest
    ``j`` above the last one whose pair it holds. ``words`` is not modified.
    """
    n_m = m_left.shape[0]
    removed = np.zeros(n_m, dtype=np.int64)
    if n_m == 0:
        return removed
    keys = np.empty(n_m, dtype=np.int64)
    for j in range(n_m):
        keys[j] = (np.int64(m_left[j]) << np.int64(32)) | np.int64(m_right[j])
    order = np.argsort(keys, kind="mergesort")  # ranks ascending within a key
    skeys = keys[order]
    buf = np.empty(max(1, words.shape[0]), dtype=np.int32)
    for w in range(word_off.shape[0] - 1):
        s = word_off[w]
        n = word_off[w + 1] - s
        buf[:n] = words[s : s + n]
        last = -1
        while n > 1:
            best = n_m
            for i in range(n - 1):
                key = (np.int64(buf[i]) << np.int64(32)) | np.int64(buf[i + 1])
                k = np.searchsorted(skeys, key)
                while k < n_m and skeys[k] == key and order[k] <= last:
                    k += 1
                if k < n_m and skeys[k] == key and order[k] < best:
                    best = order[k]
            if best == n_m:
                break
            a = m_left[best]
            b = m_right[best]
            out = 0
            r = 0
            while r < n:
                if buf[r] == a and r + 1 < n and buf[r + 1] == b:
                    buf[out] = m_new[best]
                    r += 2
                    removed[best] += counts[w]
                else:
                    buf[out] = buf[r]
                    r += 1
                out += 1
            n = out
            last = best
    return removed


@njit(cache=True, nogil=True)
def local_ids(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(uniq, local)``: the distinct ids of ``flat`` (int64) in increasing order, and each id's index there (int32).

    What ``np.unique(flat, return_inverse=True)`` gives, by hashing: sorting
    only the distinct ids.
    """
    n = flat.shape[0]
    cap = 16
    while cap < 2 * n + 2:
        cap *= 2
    mask = np.uint64(cap - 1)
    keys = np.full(cap, -1, dtype=np.int64)
    vals = np.empty(cap, dtype=np.int32)
    seen = np.empty(n, dtype=np.int64)
    first = np.empty(n, dtype=np.int32)
    u = 0
    for i in range(n):
        k = flat[i]
        slot = np.int64(mix64(k) & mask)
        while keys[slot] != -1 and keys[slot] != k:
            slot = np.int64((np.uint64(slot) + np.uint64(1)) & mask)
        if keys[slot] == -1:
            keys[slot] = k
            vals[slot] = u
            seen[u] = k
            u += 1
        first[i] = vals[slot]
    order = np.argsort(seen[:u])
    rank = np.empty(u, dtype=np.int32)
    for r in range(u):
        rank[order[r]] = r
    local = np.empty(n, dtype=np.int32)
    for i in range(n):
        local[i] = rank[first[i]]
    return seen[:u][order], local
