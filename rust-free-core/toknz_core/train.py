"""BPE training kernel: learn merges from distinct words and their counts.

Input: words in CSR layout (``symbols`` int32 initial ids, ``offsets`` int64)
with ``counts`` (int64), the byte length of each initial id, and the bytes of
each initial id. Output: the ordered merges ``(left, right, new)`` and the
bytes of every token created.

The procedure reproduces the ``tokenizers`` ``BpeTrainer`` step for step, so
merges and ids are identical:

- pair counts are kept incrementally: a merge visits only the words listed in
  the popped queue entry and updates only the pairs it changes;
- the queue is a max-heap of entries ``(count, pair, word list)`` ordered by
  count, then by the smaller ``(left id, right id)``; an entry whose count is
  stale is re-pushed with the current count (lazy invalidation);
- after a step, every pair that gained occurrences is pushed as a new entry
  listing the words where it gained them;
- a merge whose token already exists (same bytes by another path) reuses its
  id; the merge is recorded and the vocabulary does not grow.

Unlike ``tokenizers`` (32-bit pair counts), every count is 64-bit.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


@njit(cache=True, nogil=True)
def _grow_i32(a: np.ndarray, need: int) -> np.ndarray:
    if need <= a.shape[0]:
        return a
    cap = max(2 * a.shape[0], need, 16)
    out = np.empty(cap, dtype=np.int32)
    out[: a.shape[0]] = a
    return out


@njit(cache=True, nogil=True)
def _grow_i64(a: np.ndarray, need: int) -> np.ndarray:
    if need <= a.shape[0]:
        return a
    cap = max(2 * a.shape[0], need, 16)
    out = np.empty(cap, dtype=np.int64)
    out[: a.shape[0]] = a
    return out


@njit(cache=True, nogil=True)
def _grow_u8(a: np.ndarray, need: int) -> np.ndarray:
    if need <= a.shape[0]:
        return a
    cap = max(2 * a.shape[0], need, 16)
    out = np.empty(cap, dtype=np.uint8)
    out[: a.shape[0]] = a
    return out


@njit(cache=True, nogil=True, inline="always")
def _mix(key: np.int64) -> np.uint64:
    h = np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)
    return h ^ (h >> np.uint64(31))


@njit(cache=True, nogil=True)
def _pair_slot(keys: np.ndarray, key: np.int64) -> np.int64:
    """Slot holding ``key`` or the empty slot where it would go."""
    mask = np.uint64(keys.shape[0] - 1)
    slot = np.int64(_mix(key) & mask)
    while keys[slot] != -1 and keys[slot] != key:
        slot = np.int64((np.uint64(slot) + np.uint64(1)) & mask)
    return slot


@njit(cache=True, nogil=True)
def _rehash_pairs(
    pa: np.ndarray, pb: np.ndarray, n_pairs: int, cap: int
) -> tuple[np.ndarray, np.ndarray]:
    keys = np.full(cap, -1, dtype=np.int64)
    vals = np.empty(cap, dtype=np.int32)
    for p in range(n_pairs):
        key = (np.int64(pa[p]) << np.int64(32)) | np.int64(pb[p])
        slot = _pair_slot(keys, key)
        keys[slot] = key
        vals[slot] = p
    return keys, vals


@njit(cache=True, nogil=True)
def _fnv(data: np.ndarray, start: int, end: int) -> np.uint64:
    h = _FNV_OFFSET
    for i in range(start, end):
        h ^= np.uint64(data[i])
        h *= _FNV_PRIME
    return h


@njit(cache=True, nogil=True)
def _find_token(
    table: np.ndarray, tok_bytes: np.ndarray, tok_off: np.ndarray, q: np.ndarray, qlen: int
) -> tuple[np.int64, np.int64]:
    """Return ``(slot, id)``: the id of the token whose bytes are ``q[:qlen]`` (or -1) and its slot."""
    mask = np.uint64(table.shape[0] - 1)
    slot = np.int64(_fnv(q, 0, qlen) & mask)
    while True:
        t = table[slot]
        if t < 0:
            return slot, np.int64(-1)
        s = tok_off[t]
        e = tok_off[t + 1]
        if e - s == qlen:
            same = True
            for i in range(qlen):
                if tok_bytes[s + i] != q[i]:
                    same = False
                    break
            if same:
                return slot, np.int64(t)
        slot = np.int64((np.uint64(slot) + np.uint64(1)) & mask)


@njit(cache=True, nogil=True)
def _token_table(tok_bytes: np.ndarray, tok_off: np.ndarray, n_tokens: int, cap: int) -> np.ndarray:
    table = np.full(cap, -1, dtype=np.int64)
    mask = np.uint64(cap - 1)
    for t in range(n_tokens):
        s = tok_off[t]
        e = tok_off[t + 1]
        if e == s:
            continue  # special tokens have no bytes here and are never merged
        slot = np.int64(_fnv(tok_bytes, s, e) & mask)
        while table[slot] >= 0:
            slot = np.int64((np.uint64(slot) + np.uint64(1)) & mask)
        table[slot] = t
    return table


@njit(cache=True, nogil=True, inline="always")
def _before(
    e1: np.int64,
    e2: np.int64,
    ecount: np.ndarray,
    epair: np.ndarray,
    pa: np.ndarray,
    pb: np.ndarray,
) -> bool:
    """True when entry e1 pops before e2: larger count, then smaller (left, right)."""
    c1 = ecount[e1]
    c2 = ecount[e2]
    if c1 != c2:
        return c1 > c2
    p1 = epair[e1]
    p2 = epair[e2]
    if pa[p1] != pa[p2]:
        return pa[p1] < pa[p2]
    return pb[p1] < pb[p2]


@njit(cache=True, nogil=True)
def _heap_push(
    heap: np.ndarray,
    size: int,
    e: np.int64,
    ecount: np.ndarray,
    epair: np.ndarray,
    pa: np.ndarray,
    pb: np.ndarray,
) -> int:
    i = size
    heap[i] = e
    while i > 0:
        parent = (i - 1) >> 1
        if not _before(heap[i], heap[parent], ecount, epair, pa, pb):
            break
        tmp = heap[parent]
        heap[parent] = heap[i]
        heap[i] = tmp
        i = parent
    return size + 1


@njit(cache=True, nogil=True)
def _heap_pop(
    heap: np.ndarray,
    size: int,
    ecount: np.ndarray,
    epair: np.ndarray,
    pa: np.ndarray,
    pb: np.ndarray,
) -> int:
    """Remove the top (``heap[0]``); return the new size."""
    size -= 1
    heap[0] = heap[size]
    i = 0
    while True:
        lo = 2 * i + 1
        if lo >= size:
            break
        child = lo
        if lo + 1 < size and _before(heap[lo + 1], heap[lo], ecount, epair, pa, pb):
            child = lo + 1
        if not _before(heap[child], heap[i], ecount, epair, pa, pb):
            break
        tmp = heap[child]
        heap[child] = heap[i]
        heap[i] = tmp
        i = child
    return size


@njit(cache=True, nogil=True)
def train_bpe(
    symbols: np.ndarray,
    offsets: np.ndarray,
    counts: np.ndarray,
    init_bytes: np.ndarray,
    init_offsets: np.ndarray,
    vocab_size: int,
    min_frequency: int,
    max_token_length: int,
    progress: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Learn BPE merges.

    ``symbols``/``offsets``: words as initial token ids (int32 / int64 CSR);
    ``counts``: int64 count of each word. ``init_bytes``/``init_offsets``: the
    bytes of the initial tokens (specials have empty bytes). Training stops at
    ``vocab_size`` tokens, when no pair is left, or when the best count is
    below ``max(1, min_frequency)``. A pair is counted only when its token
    would be at most ``max_token_length`` bytes long. ``progress[0]`` is set
    to the number of merges done so far (read by another thread).

    Returns ``(left, right, new, count, tok_bytes, tok_offsets, n_tokens)``:
    the merges in order with the count of each when it was chosen, and the
    bytes of all ``n_tokens`` tokens.
    """
    n_words = offsets.shape[0] - 1
    sym = symbols.copy()
    wlen = np.empty(n_words, dtype=np.int64)
    for w in range(n_words):
        wlen[w] = offsets[w + 1] - offsets[w]

    # Tokens: bytes arena, lengths and a bytes -> id table.
    n_tokens = init_offsets.shape[0] - 1
    tok_off = np.empty(max(vocab_size, n_tokens) + 1, dtype=np.int64)
    tok_off[: n_tokens + 1] = init_offsets
    tok_bytes = init_bytes.copy()
    tcap = 16
    while tcap < 2 * (max(vocab_size, n_tokens) + 1):
        tcap *= 2
    ttable = _token_table(tok_bytes, tok_off, n_tokens, tcap)
    tlen = np.empty(max(vocab_size, n_tokens), dtype=np.int64)
    for t in range(n_tokens):
        tlen[t] = tok_off[t + 1] - tok_off[t]

    # Pairs: ids, counts and a (left, right) -> pair table.
    pa = np.empty(1024, dtype=np.int32)
    pb = np.empty(1024, dtype=np.int32)
    pcount = np.zeros(1024, dtype=np.int64)
    pstamp = np.full(1024, -1, dtype=np.int64)
    n_pairs = 0
    pcap = 2048
    pkeys = np.full(pcap, -1, dtype=np.int64)
    pvals = np.empty(pcap, dtype=np.int32)

    # Pass 1: count pairs and the number of distinct words holding each.
    pnw = np.zeros(1024, dtype=np.int64)
    for w in range(n_words):
        s = offsets[w]
        for i in range(s, offsets[w + 1] - 1):
            key = (np.int64(sym[i]) << np.int64(32)) | np.int64(sym[i + 1])
            slot = _pair_slot(pkeys, key)
            if pkeys[slot] == -1:
                if n_pairs == pa.shape[0]:
                    pa = _grow_i32(pa, n_pairs + 1)
                    pb = _grow_i32(pb, n_pairs + 1)
                    old = pcount.shape[0]
                    pcount = _grow_i64(pcount, n_pairs + 1)
                    pcount[old:] = 0
                    pstamp = _grow_i64(pstamp, n_pairs + 1)
                    pstamp[old:] = -1
                    pnw = _grow_i64(pnw, n_pairs + 1)
                    pnw[old:] = 0
                pa[n_pairs] = sym[i]
                pb[n_pairs] = sym[i + 1]
                pkeys[slot] = key
                pvals[slot] = n_pairs
                p = n_pairs
                n_pairs += 1
                if 2 * n_pairs > pcap:
                    pcap *= 2
                    pkeys, pvals = _rehash_pairs(pa, pb, n_pairs, pcap)
            else:
                p = pvals[slot]
            pcount[p] += counts[w]
            if pstamp[p] != w:
                pstamp[p] = w
                pnw[p] += 1

    # Pass 2: the word list of each pair, back to back in one arena.
    pos = np.empty(max(16, int(pnw[:n_pairs].sum())), dtype=np.int32)
    pstart = np.empty(n_pairs + 1, dtype=np.int64)
    pstart[0] = 0
    for p in range(n_pairs):
        pstart[p + 1] = pstart[p] + pnw[p]
    fill = pstart[:n_pairs].copy()
    pstamp[:] = -1
    for w in range(n_words):
        for i in range(offsets[w], offsets[w + 1] - 1):
            key = (np.int64(sym[i]) << np.int64(32)) | np.int64(sym[i + 1])
            p = pvals[_pair_slot(pkeys, key)]
            if pstamp[p] != w:
                pstamp[p] = w
                pos[fill[p]] = w
                fill[p] += 1
    n_pos = pstart[n_pairs]

    # Queue entries: (count, pair, word list [estart, estart + elen)).
    ecount = np.empty(max(16, n_pairs), dtype=np.int64)
    epair = np.empty(max(16, n_pairs), dtype=np.int32)
    estart = np.empty(max(16, n_pairs), dtype=np.int64)
    elen = np.empty(max(16, n_pairs), dtype=np.int64)
    n_entries = 0
    heap = np.empty(max(16, n_pairs), dtype=np.int64)
    hsize = 0
    for p in range(n_pairs):
        if pcount[p] > 0:
            ecount[n_entries] = pcount[p]
            epair[n_entries] = p
            estart[n_entries] = pstart[p]
            elen[n_entries] = pnw[p]
            hsize = _heap_push(heap, hsize, np.int64(n_entries), ecount, epair, pa, pb)
            n_entries += 1

    m_left = np.empty(max(16, vocab_size), dtype=np.int32)
    m_right = np.empty(max(16, vocab_size), dtype=np.int32)
    m_new = np.empty(max(16, vocab_size), dtype=np.int32)
    m_count = np.empty(max(16, vocab_size), dtype=np.int64)
    n_merges = 0

    # Per-step buffers: pairs that gained occurrences, and (pair, word) gains.
    gained_pairs = np.empty(64, dtype=np.int32)
    gain_pair = np.empty(256, dtype=np.int32)
    gain_word = np.empty(256, dtype=np.int32)
    pgain = np.zeros(pcount.shape[0], dtype=np.int64)
    pstamp[:] = -1
    stamp = np.int64(0)
    qbuf = np.empty(64, dtype=np.uint8)
    min_count = max(np.int64(1), np.int64(min_frequency))

    while n_tokens < vocab_size and hsize > 0:
        top = heap[0]
        p = epair[top]
        if ecount[top] != pcount[p]:
            ecount[top] = pcount[p]
            hsize = _heap_pop(heap, hsize, ecount, epair, pa, pb)
            hsize = _heap_push(heap, hsize, top, ecount, epair, pa, pb)
            continue
        if ecount[top] < min_count:
            break
        hsize = _heap_pop(heap, hsize, ecount, epair, pa, pb)
        a = pa[p]
        b = pb[p]

        # The new token's bytes, and its id (an existing token's, or a new one).
        la = tok_off[a + 1] - tok_off[a]
        lb = tok_off[b + 1] - tok_off[b]
        qbuf = _grow_u8(qbuf, la + lb)
        qbuf[:la] = tok_bytes[tok_off[a] : tok_off[a] + la]
        qbuf[la : la + lb] = tok_bytes[tok_off[b] : tok_off[b] + lb]
        slot, z = _find_token(ttable, tok_bytes, tok_off, qbuf, la + lb)
        if z < 0:
            z = np.int64(n_tokens)
            end = tok_off[n_tokens]
            tok_bytes = _grow_u8(tok_bytes, end + la + lb)
            tok_bytes[end : end + la + lb] = qbuf[: la + lb]
            tok_off[n_tokens + 1] = end + la + lb
            tlen[n_tokens] = la + lb
            ttable[slot] = z
            n_tokens += 1
        m_left[n_merges] = a
        m_right[n_merges] = b
        m_new[n_merges] = z
        m_count[n_merges] = ecount[top]
        n_merges += 1
        progress[0] = n_merges
        zl = tlen[z]

        n_gained = 0
        n_gain = 0
        for k in range(estart[top], estart[top] + elen[top]):
            w = pos[k]
            s = offsets[w]
            n = wlen[w]
            wc = counts[w]
            stamp += 1
            r = 0
            out = 0
            while r < n:
                if sym[s + r] == a and r + 1 < n and sym[s + r + 1] == b:
                    # Up to four changes, as tokenizers' Word::merge lists them.
                    for side in range(2):
                        if side == 0:
                            if out == 0:
                                continue
                            x = sym[s + out - 1]
                            dec_l, dec_r, inc_l, inc_r = x, a, x, np.int32(z)
                            ok = tlen[x] + zl <= max_token_length
                        else:
                            if r + 2 >= n:
                                continue
                            y = sym[s + r + 2]
                            dec_l, dec_r, inc_l, inc_r = b, y, np.int32(z), y
                            ok = tlen[y] + zl <= max_token_length
                        for change in range(2):
                            if change == 0:
                                ql, qr, delta = dec_l, dec_r, -wc
                            else:
                                if not ok:
                                    continue
                                ql, qr, delta = inc_l, inc_r, wc
                            key = (np.int64(ql) << np.int64(32)) | np.int64(qr)
                            pslot = _pair_slot(pkeys, key)
                            if pkeys[pslot] == -1:
                                if n_pairs == pa.shape[0]:
                                    pa = _grow_i32(pa, n_pairs + 1)
                                    pb = _grow_i32(pb, n_pairs + 1)
                                    old = pcount.shape[0]
                                    pcount = _grow_i64(pcount, n_pairs + 1)
                                    pcount[old:] = 0
                                    pstamp = _grow_i64(pstamp, n_pairs + 1)
                                    pstamp[old:] = -1
                                    pgain = _grow_i64(pgain, n_pairs + 1)
                                    pgain[old:] = 0
                                pa[n_pairs] = ql
                                pb[n_pairs] = qr
                                pkeys[pslot] = key
                                pvals[pslot] = n_pairs
                                q = n_pairs
                                n_pairs += 1
                                if 2 * n_pairs > pcap:
                                    pcap *= 2
                                    pkeys, pvals = _rehash_pairs(pa, pb, n_pairs, pcap)
                            else:
                                q = pvals[pslot]
                            pcount[q] += delta
                            if delta > 0 and pstamp[q] != stamp:
                                pstamp[q] = stamp
                                if pgain[q] == 0:
                                    gained_pairs = _grow_i32(gained_pairs, n_gained + 1)
                                    gained_pairs[n_gained] = q
                                    n_gained += 1
                                pgain[q] += 1
                                gain_pair = _grow_i32(gain_pair, n_gain + 1)
                                gain_word = _grow_i32(gain_word, n_gain + 1)
                                gain_pair[n_gain] = q
                                gain_word[n_gain] = w
                                n_gain += 1
                    sym[s + out] = z
                    out += 1
                    r += 2
                else:
                    sym[s + out] = sym[s + r]
                    out += 1
                    r += 1
            wlen[w] = out

        # New entries: one per pair that gained occurrences and has a positive count.
        if n_gained > 0:
            starts = np.empty(n_gained, dtype=np.int64)
            need = n_pos + n_gain
            pos = _grow_i32(pos, need)
            at = n_pos
            for g in range(n_gained):
                q = gained_pairs[g]
                starts[g] = at
                at += pgain[q]
                pgain[q] = starts[g]  # now the fill cursor
            for k in range(n_gain):
                q = gain_pair[k]
                pos[pgain[q]] = gain_word[k]
                pgain[q] += 1
            for g in range(n_gained):
                q = gained_pairs[g]
                length = pgain[q] - starts[g]
                pgain[q] = 0
                if pcount[q] > 0:
                    if n_entries == ecount.shape[0]:
                        ecount = _grow_i64(ecount, n_entries + 1)
                        epair = _grow_i32(epair, n_entries + 1)
                        estart = _grow_i64(estart, n_entries + 1)
                        elen = _grow_i64(elen, n_entries + 1)
                    ecount[n_entries] = pcount[q]
                    epair[n_entries] = q
                    estart[n_entries] = starts[g]
                    elen[n_entries] = length
                    heap = _grow_i64(heap, hsize + 1)
                    hsize = _heap_push(heap, hsize, np.int64(n_entries), ecount, epair, pa, pb)
                    n_entries += 1
            n_pos = need

    return (
        m_left[:n_merges].copy(),
        m_right[:n_merges].copy(),
        m_new[:n_merges].copy(),
        m_count[:n_merges].copy(),
        tok_bytes[: tok_off[n_tokens]].copy(),
        tok_off[: n_tokens + 1].copy(),
        n_tokens,
    )
