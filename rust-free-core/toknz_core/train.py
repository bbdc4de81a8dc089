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

:func:`train_bpe_chars` adds character-level rules (toknz's own, not in
``tokenizers``): a pair is counted, at the start and when a merge forms it,
only if it passes :func:`chars_ok`, the same place ``max_token_length`` is
enforced. :func:`train_bpe` runs with the rules off.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from toknz_core.hashing import fnv1a, mix64

#: Pair changes buffered before they are applied (20 bytes each).
CHANGE_BUFFER = 1 << 18


class Words(NamedTuple):
    """The words being merged: symbols (int32, CSR by ``offsets``), current lengths, counts."""

    sym: np.ndarray
    offsets: np.ndarray
    length: np.ndarray
    counts: np.ndarray


class TokenFacts(NamedTuple):
    """Per token id: byte length, and for the character rules its class, characters and
    whether it starts inside a character (:func:`char_props`)."""

    length: np.ndarray
    cls: np.ndarray
    nchars: np.ndarray
    cont: np.ndarray


class Changes(NamedTuple):
    """Pair changes of one merge step: ``(left, right)`` gained ``delta`` in ``word``."""

    left: np.ndarray
    right: np.ndarray
    delta: np.ndarray
    word: np.ndarray


class Pairs(NamedTuple):
    """The pair store: ids, counts, per-step stamps and gains, and the ``(left, right)`` ->
    pair hash table (``keys`` packed ``left << 32 | right``, ``slots`` the pair index)."""

    left: np.ndarray
    right: np.ndarray
    counts: np.ndarray
    stamp: np.ndarray
    gain: np.ndarray
    keys: np.ndarray
    slots: np.ndarray


class Gains(NamedTuple):
    """Pairs that gained occurrences in a step, and each ``(pair, word)`` gain."""

    pairs: np.ndarray
    pair: np.ndarray
    word: np.ndarray


class Entries(NamedTuple):
    """Queue entries: a pair's count when pushed and its word list ``pos[start:start + length]``."""

    counts: np.ndarray
    pair: np.ndarray
    start: np.ndarray
    length: np.ndarray


@njit(cache=True, nogil=True, inline="always")
def _grow_i32(a: np.ndarray, need: int) -> np.ndarray:
    if need <= a.shape[0]:
        return a
    cap = max(2 * a.shape[0], need, 16)
    out = np.empty(cap, dtype=np.int32)
    out[: a.shape[0]] = a
    return out


@njit(cache=True, nogil=True, inline="always")
def _grow_i64(a: np.ndarray, need: int) -> np.ndarray:
    if need <= a.shape[0]:
        return a
    cap = max(2 * a.shape[0], need, 16)
    out = np.empty(cap, dtype=np.int64)
    out[: a.shape[0]] = a
    return out


@njit(cache=True, nogil=True, inline="always")
def _grow_u8(a: np.ndarray, need: int) -> np.ndarray:
    if need <= a.shape[0]:
        return a
    cap = max(2 * a.shape[0], need, 16)
    out = np.empty(cap, dtype=np.uint8)
    out[: a.shape[0]] = a
    return out


#: Character classes of :func:`train_bpe_chars` (``cp_class`` values and token classes).
FRAGMENT = 0  # a token holding part of one character (or bytes that are not UTF-8)
LETTER = 1  # \p{L} and \p{M}
NUMBER = 2  # \p{N}
PUNCT = 3  # \p{P} and \p{S}
SPACE = 4  # \s
OTHER = 5  # anything else (controls, format, private use, unassigned): never merged
MIXED = 6  # whole characters of several classes (only a special token spelled so)


@njit(cache=True, nogil=True)
def char_props(
    data: np.ndarray, s: int, e: int, cp_class: np.ndarray
) -> tuple[np.int8, np.int64, np.int8]:
    """``(class, characters, starts inside a character)`` of the token ``data[s:e]``.

    A token of whole UTF-8 characters gets their common class (``MIXED`` if
    they differ) and their number; anything else (part of one character,
    invalid bytes, no bytes) is ``FRAGMENT`` with 0 characters.
    """
    cont = np.int8(1) if e > s and (data[s] & 0xC0) == 0x80 else np.int8(0)
    if e <= s:
        return np.int8(FRAGMENT), np.int64(0), cont
    cls = np.int8(-1)
    n = np.int64(0)
    i = s
    while i < e:
        b = np.int64(data[i])
        if b < 0x80:
            cp = b
            k = 1
        elif 0xC2 <= b <= 0xDF:
            cp = b & 0x1F
            k = 2
        elif 0xE0 <= b <= 0xEF:
            cp = b & 0x0F
            k = 3
        elif 0xF0 <= b <= 0xF4:
            cp = b & 0x07
            k = 4
        else:
            return np.int8(FRAGMENT), np.int64(0), cont
        if i + k > e:
            return np.int8(FRAGMENT), np.int64(0), cont
        for j in range(1, k):
            c = np.int64(data[i + j])
            if (c & 0xC0) != 0x80:
                return np.int8(FRAGMENT), np.int64(0), cont
            cp = (cp << 6) | (c & 0x3F)
        if (
            (k == 3 and cp < 0x800)
            or (k == 4 and (cp < 0x10000 or cp > 0x10FFFF))
            or (0xD800 <= cp <= 0xDFFF)
        ):
            return np.int8(FRAGMENT), np.int64(0), cont
        c_cls = cp_class[cp]
        if cls < 0:
            cls = c_cls
        elif cls != c_cls:
            cls = np.int8(MIXED)
        n += 1
        i += k
    return cls, n, cont


@njit(cache=True, nogil=True, inline="always")
def chars_ok(
    x: int | np.int32,
    z: int | np.int32,
    tcls: np.ndarray,
    tnch: np.ndarray,
    tcont: np.ndarray,
    max_chars: int,
) -> bool:
    """May tokens ``x`` and ``z`` (``x`` first) merge under the character rules?

    Always when ``z`` starts inside a character (then it continues ``x``'s
    last character: the merge stays inside it); otherwise only two tokens of
    whole characters of the same class (letter, number, punctuation/symbol or
    whitespace) with at most ``max_chars`` characters together. ``max_chars``
    <= 0 turns the rules off.
    """
    if max_chars <= 0:
        return True
    if tcont[z] != 0:
        return True
    c = tcls[x]
    return LETTER <= c <= SPACE and tcls[z] == c and tnch[x] + tnch[z] <= max_chars


@njit(cache=True, nogil=True, inline="always")
def _pair_slot(keys: np.ndarray, key: np.int64) -> np.int64:
    """Slot holding ``key`` or the empty slot where it would go."""
    mask = np.uint64(keys.shape[0] - 1)
    slot = np.int64(mix64(key) & mask)
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


@njit(cache=True, nogil=True, inline="always")
def _find_token(
    table: np.ndarray, tok_bytes: np.ndarray, tok_off: np.ndarray, q: np.ndarray, qlen: int
) -> tuple[np.int64, np.int64]:
    """Return ``(slot, id)``: the id of the token whose bytes are ``q[:qlen]`` (or -1) and its slot."""
    mask = np.uint64(table.shape[0] - 1)
    slot = np.int64(fnv1a(q, 0, qlen) & mask)
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
        slot = np.int64(fnv1a(tok_bytes, s, e) & mask)
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


@njit(cache=True, nogil=True, inline="always")
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


@njit(cache=True, nogil=True, inline="always")
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
def _merge_in_words(
    words: Words,
    pos: np.ndarray,
    k0: int,
    k1: int,
    a: np.int32,
    b: np.int32,
    z: np.int32,
    facts: TokenFacts,
    max_token_length: int,
    max_chars: int,
    changes: Changes,
    progress: np.ndarray,
) -> tuple[int, int]:
    """Merge (a, b) -> z in the words ``pos[k0:k1]``, left to right, as ``Word::merge`` does.

    Appends each pair change (left, right, delta = +-count, word) to
    ``changes`` and stops before a word whose changes might not fit
    (a word of n symbols makes at most 2n). A gained pair is recorded only
    when its token would be at most ``max_token_length`` bytes and the two
    tokens pass :func:`chars_ok` (``max_chars``). Returns
    ``(number of changes, index of the first word not done)``.
    """
    sym = words.sym
    wlen = words.length
    tlen = facts.length
    ch_l, ch_r, ch_d, ch_w = changes.left, changes.right, changes.delta, changes.word
    n_ch = 0
    zl = tlen[z]
    visited = 0
    scanned = 0
    cap = ch_l.shape[0]
    k = k0
    while k < k1:
        w = pos[k]
        s = words.offsets[w]
        n = wlen[w]
        if n_ch + 2 * n + 4 > cap:
            break
        k += 1
        wc = words.counts[w]
        visited += 1
        scanned += n
        r = 0
        out = 0
        while r < n:
            if sym[s + r] == a and r + 1 < n and sym[s + r + 1] == b:
                if out > 0:
                    x = sym[s + out - 1]
                    ch_l[n_ch] = x
                    ch_r[n_ch] = a
                    ch_d[n_ch] = -wc
                    ch_w[n_ch] = w
                    n_ch += 1
                    if tlen[x] + zl <= max_token_length and chars_ok(
                        x, z, facts.cls, facts.nchars, facts.cont, max_chars
                    ):
                        ch_l[n_ch] = x
                        ch_r[n_ch] = z
                        ch_d[n_ch] = wc
                        ch_w[n_ch] = w
                        n_ch += 1
                if r + 2 < n:
                    y = sym[s + r + 2]
                    ch_l[n_ch] = b
                    ch_r[n_ch] = y
                    ch_d[n_ch] = -wc
                    ch_w[n_ch] = w
                    n_ch += 1
                    if tlen[y] + zl <= max_token_length and chars_ok(
                        z, y, facts.cls, facts.nchars, facts.cont, max_chars
                    ):
                        ch_l[n_ch] = z
                        ch_r[n_ch] = y
                        ch_d[n_ch] = wc
                        ch_w[n_ch] = w
                        n_ch += 1
                sym[s + out] = z
                out += 1
                r += 2
            else:
                sym[s + out] = sym[s + r]
                out += 1
                r += 1
        wlen[w] = out
    progress[2] += visited
    progress[3] += scanned
    return n_ch, k


@njit(cache=True, nogil=True)
def _apply_changes(
    changes: Changes,
    n_ch: int,
    pairs: Pairs,
    n_pairs: int,
    gains: Gains,
    n_gained: int,
    n_gain: int,
    stamp_base: np.int64,
) -> tuple[int, int, int]:
    """Add the first ``n_ch`` changes to the pair counts (creating pairs as needed; room is
    ensured by the caller).

    Records, once per (pair, word), where a pair gained occurrences, after
    the ``n_gained``/``n_gain`` already recorded in this step. Returns
    ``(n_pairs, n_gained_pairs, n_gains)``.
    """
    for i in range(n_ch):
        left = changes.left[i]
        right = changes.right[i]
        key = (np.int64(left) << np.int64(32)) | np.int64(right)
        slot = _pair_slot(pairs.keys, key)
        if pairs.keys[slot] == -1:
            q = n_pairs
            pairs.left[q] = left
            pairs.right[q] = right
            pairs.keys[slot] = key
            pairs.slots[slot] = q
            n_pairs += 1
        else:
            q = pairs.slots[slot]
        d = changes.delta[i]
        pairs.counts[q] += d
        if d > 0:
            stamp = stamp_base + np.int64(changes.word[i])
            if pairs.stamp[q] != stamp:
                pairs.stamp[q] = stamp
                if pairs.gain[q] == 0:
                    gains.pairs[n_gained] = q
                    n_gained += 1
                pairs.gain[q] += 1
                gains.pair[n_gain] = q
                gains.word[n_gain] = changes.word[i]
                n_gain += 1
    return n_pairs, n_gained, n_gain


@njit(cache=True, nogil=True)
def _push_gains(
    gains: Gains,
    n_gained: int,
    n_gain: int,
    pairs: Pairs,
    pos: np.ndarray,
    n_pos: int,
    entries: Entries,
    n_entries: int,
    heap: np.ndarray,
    hsize: int,
) -> tuple[int, int]:
    """Lay out the word list of each gained pair in ``pos`` and push an entry for each with a
    positive count.

    Room in ``pos``, the entry arrays and the heap is ensured by the caller.
    Returns ``(n_entries, hsize)``.
    """
    pgain = pairs.gain
    at = n_pos
    for g in range(n_gained):
        q = gains.pairs[g]
        c = pgain[q]
        pgain[q] = at  # now the fill cursor of q's list
        at += c
    for k in range(n_gain):
        q = gains.pair[k]
        pos[pgain[q]] = gains.word[k]
        pgain[q] += 1
    # Lists are back to back in gained order: each starts where the previous ended.
    start = np.int64(n_pos)
    for g in range(n_gained):
        q = gains.pairs[g]
        stop = pgain[q]
        pgain[q] = 0
        if pairs.counts[q] > 0:
            entries.counts[n_entries] = pairs.counts[q]
            entries.pair[n_entries] = q
            entries.start[n_entries] = start
            entries.length[n_entries] = stop - start
            hsize = _heap_push(
                heap,
                hsize,
                np.int64(n_entries),
                entries.counts,
                entries.pair,
                pairs.left,
                pairs.right,
            )
            n_entries += 1
        start = stop
    return n_entries, hsize


@njit(cache=True, nogil=True)
def _count_pairs(
    sym: np.ndarray,
    offsets: np.ndarray,
    counts: np.ndarray,
    tcls: np.ndarray,
    tnch: np.ndarray,
    tcont: np.ndarray,
    max_chars: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Phase 1 of :func:`_train`: every adjacent pair of the words, with its count.

    Returns ``(pa, pb, pcount, pstamp, pnw, pkeys, pvals, n_pairs)``: each
    pair's left and right ids, its count (words weighted by ``counts``), a
    stamp buffer (-1 after), how many distinct words hold it, and the
    ``(left, right)`` -> pair hash table. Pairs the character rules refuse
    are not counted.
    """
    n_words = offsets.shape[0] - 1
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
            if not chars_ok(sym[i], sym[i + 1], tcls, tnch, tcont, max_chars):
                continue
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
    return pa, pb, pcount, pstamp, pnw, pkeys, pvals, n_pairs


@njit(cache=True, nogil=True)
def _word_lists(
    sym: np.ndarray,
    offsets: np.ndarray,
    pkeys: np.ndarray,
    pvals: np.ndarray,
    pnw: np.ndarray,
    pstamp: np.ndarray,
    n_pairs: int,
    tcls: np.ndarray,
    tnch: np.ndarray,
    tcont: np.ndarray,
    max_chars: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Phase 2 of :func:`_train`: the words holding each pair, back to back in one arena.

    Returns ``(pos, pstart)``: pair ``p``'s words are
    ``pos[pstart[p]:pstart[p + 1]]``, each once, in word order.
    """
    n_words = offsets.shape[0] - 1
    pos = np.empty(max(16, int(pnw[:n_pairs].sum())), dtype=np.int32)
    pstart = np.empty(n_pairs + 1, dtype=np.int64)
    pstart[0] = 0
    for p in range(n_pairs):
        pstart[p + 1] = pstart[p] + pnw[p]
    fill = pstart[:n_pairs].copy()
    pstamp[:] = -1
    for w in range(n_words):
        for i in range(offsets[w], offsets[w + 1] - 1):
            if not chars_ok(sym[i], sym[i + 1], tcls, tnch, tcont, max_chars):
                continue
            key = (np.int64(sym[i]) << np.int64(32)) | np.int64(sym[i + 1])
            p = pvals[_pair_slot(pkeys, key)]
            if pstamp[p] != w:
                pstamp[p] = w
                pos[fill[p]] = w
                fill[p] += 1
    return pos, pstart


@njit(cache=True, nogil=True)
def _initial_queue(
    pcount: np.ndarray,
    pnw: np.ndarray,
    pstart: np.ndarray,
    n_pairs: int,
    pa: np.ndarray,
    pb: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Phase 3 of :func:`_train`: one queue entry per counted pair, in a heap by count.

    Returns ``(ecount, epair, estart, elen, heap, n_entries, hsize)``: entry
    ``e`` says pair ``epair[e]`` had ``ecount[e]`` occurrences in the words
    ``pos[estart[e]:estart[e] + elen[e]]``; ``heap`` orders entries as
    ``tokenizers`` does (:func:`_before`).
    """
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

    return ecount, epair, estart, elen, heap, n_entries, hsize


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
    word_lengths: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Learn BPE merges as ``tokenizers``' ``BpeTrainer`` does; see :func:`_train`."""
    return _train(
        symbols,
        offsets,
        counts,
        init_bytes,
        init_offsets,
        vocab_size,
        min_frequency,
        max_token_length,
        progress,
        word_lengths,
        0,
        np.zeros(1, dtype=np.int8),
    )


@njit(cache=True, nogil=True)
def train_bpe_chars(
    symbols: np.ndarray,
    offsets: np.ndarray,
    counts: np.ndarray,
    init_bytes: np.ndarray,
    init_offsets: np.ndarray,
    vocab_size: int,
    min_frequency: int,
    max_token_length: int,
    progress: np.ndarray,
    word_lengths: np.ndarray,
    max_token_chars: int,
    cp_class: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Character-level BPE: :func:`train_bpe` with a pair counted only when it passes :func:`chars_ok`.

    ``max_token_chars`` (>= 1) caps merged tokens in Unicode characters;
    ``cp_class`` (int8, one per code point U+0000..U+10FFFF) gives each
    character's class (``LETTER`` ... ``OTHER``). Merges that build a
    character out of its bytes are always allowed; merges of whole
    characters only within one class and up to the cap.
    """
    return _train(
        symbols,
        offsets,
        counts,
        init_bytes,
        init_offsets,
        vocab_size,
        min_frequency,
        max_token_length,
        progress,
        word_lengths,
        max_token_chars,
        cp_class,
    )


@njit(cache=True, nogil=True)
def _train(
    symbols: np.ndarray,
    offsets: np.ndarray,
    counts: np.ndarray,
    init_bytes: np.ndarray,
    init_offsets: np.ndarray,
    vocab_size: int,
    min_frequency: int,
    max_token_length: int,
    progress: np.ndarray,
    word_lengths: np.ndarray,
    max_chars: int,
    cp_class: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Learn BPE merges.

    ``symbols``/``offsets``: words as initial token ids (int32 / int64 CSR;
    ``symbols`` is merged in place and left holding the merged words);
    ``counts``: int64 count of each word. ``init_bytes``/``init_offsets``: the
    bytes of the initial tokens (specials have empty bytes). Training stops at
    ``vocab_size`` tokens, when no pair is left, or when the best count is
    below ``max(1, min_frequency)``. A pair is counted only when its token
    would be at most ``max_token_length`` bytes long. ``progress[0]`` is set
    to the number of merges done so far (read by another thread); ``progress[1:4]``
    count stale queue entries re-pushed, words visited and symbols scanned.
    ``word_lengths`` (int64, one per word) is filled with the length of each
    merged word: word ``w`` ends as ``symbols[offsets[w]:offsets[w] + word_lengths[w]]``.

    ``max_chars`` > 0 adds the character rules of :func:`chars_ok` (classes
    from ``cp_class``) to every pair counted; 0 leaves them off.

    Returns ``(left, right, new, count, tok_bytes, tok_offsets, n_tokens)``:
    the merges in order with the count of each when it was chosen, and the
    bytes of all ``n_tokens`` tokens.
    """
    n_words = offsets.shape[0] - 1
    sym = symbols  # merged in place
    wlen = word_lengths  # filled here, kept up to date by every merge
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
    # Character class, number of characters and "starts inside a character" of each token.
    tcls = np.zeros(max(vocab_size, n_tokens), dtype=np.int8)
    tnch = np.zeros(max(vocab_size, n_tokens), dtype=np.int64)
    tcont = np.zeros(max(vocab_size, n_tokens), dtype=np.int8)
    if max_chars > 0:
        for t in range(n_tokens):
            tcls[t], tnch[t], tcont[t] = char_props(tok_bytes, tok_off[t], tok_off[t + 1], cp_class)

    # Phases 1-3: pair counts, the words of each pair, the queue.
    pa, pb, pcount, pstamp, pnw, pkeys, pvals, n_pairs = _count_pairs(
        sym, offsets, counts, tcls, tnch, tcont, max_chars
    )
    pcap = pkeys.shape[0]
    pos, pstart = _word_lists(
        sym, offsets, pkeys, pvals, pnw, pstamp, n_pairs, tcls, tnch, tcont, max_chars
    )
    n_pos = pstart[n_pairs]
    ecount, epair, estart, elen, heap, n_entries, hsize = _initial_queue(
        pcount, pnw, pstart, n_pairs, pa, pb
    )

    m_left = np.empty(max(16, vocab_size), dtype=np.int32)
    m_right = np.empty(max(16, vocab_size), dtype=np.int32)
    m_new = np.empty(max(16, vocab_size), dtype=np.int32)
    m_count = np.empty(max(16, vocab_size), dtype=np.int64)
    n_merges = 0

    # Per-step buffers: the changes a merge makes, pairs that gained occurrences
    # and (pair, word) gains. Sized before each step, so that the helpers
    # below never reallocate: arrays reassigned inside a hot loop make Numba
    # count references on every access, which costs more than the work.
    ch_l = np.empty(CHANGE_BUFFER, dtype=np.int32)
    ch_r = np.empty(CHANGE_BUFFER, dtype=np.int32)
    ch_d = np.empty(CHANGE_BUFFER, dtype=np.int64)
    ch_w = np.empty(CHANGE_BUFFER, dtype=np.int32)
    gained_pairs = np.empty(1024, dtype=np.int32)
    gain_pair = np.empty(1024, dtype=np.int32)
    gain_word = np.empty(1024, dtype=np.int32)
    pgain = np.zeros(pcount.shape[0], dtype=np.int64)
    pstamp[:] = -1
    step = np.int64(0)
    qbuf = np.empty(64, dtype=np.uint8)
    min_count = max(np.int64(1), np.int64(min_frequency))

    while n_tokens < vocab_size and hsize > 0:
        top = heap[0]
        p = epair[top]
        if ecount[top] != pcount[p]:
            progress[1] += 1
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
            if max_chars > 0:
                tcls[n_tokens], tnch[n_tokens], tcont[n_tokens] = char_props(
                    tok_bytes, end, end + la + lb, cp_class
                )
            ttable[slot] = z
            n_tokens += 1
        m_left[n_merges] = a
        m_right[n_merges] = b
        m_new[n_merges] = z
        m_count[n_merges] = ecount[top]
        n_merges += 1
        progress[0] = n_merges

        # 1-2. Merge in the entry's words, a batch of words at a time so the
        # change buffers stay small, and apply the changes to the pair counts.
        k = estart[top]
        k_end = k + elen[top]
        step += 1
        n_gained = 0
        n_gain = 0
        while k < k_end:
            first = 2 * wlen[pos[k]] + 4
            if first > ch_l.shape[0]:
                cap = max(first, 2 * ch_l.shape[0])
                ch_l = np.empty(cap, dtype=np.int32)
                ch_r = np.empty(cap, dtype=np.int32)
                ch_d = np.empty(cap, dtype=np.int64)
                ch_w = np.empty(cap, dtype=np.int32)
            n_ch, k = _merge_in_words(
                Words(sym, offsets, wlen, counts),
                pos,
                k,
                k_end,
                a,
                b,
                np.int32(z),
                TokenFacts(tlen, tcls, tnch, tcont),
                max_token_length,
                max_chars,
                Changes(ch_l, ch_r, ch_d, ch_w),
                progress,
            )
            if n_pairs + n_ch > pa.shape[0]:
                need = n_pairs + n_ch
                old = pcount.shape[0]
                pa = _grow_i32(pa, need)
                pb = _grow_i32(pb, need)
                pcount = _grow_i64(pcount, need)
                pcount[old:] = 0
                pstamp = _grow_i64(pstamp, need)
                pstamp[old:] = -1
                pgain = _grow_i64(pgain, need)
                pgain[old:] = 0
            if 2 * (n_pairs + n_ch) > pcap:
                while 2 * (n_pairs + n_ch) > pcap:
                    pcap *= 2
                pkeys, pvals = _rehash_pairs(pa, pb, n_pairs, pcap)
            gained_pairs = _grow_i32(gained_pairs, n_gained + n_ch)
            gain_pair = _grow_i32(gain_pair, n_gain + n_ch)
            gain_word = _grow_i32(gain_word, n_gain + n_ch)
            counters = _apply_changes(
                Changes(ch_l, ch_r, ch_d, ch_w),
                n_ch,
                Pairs(pa, pb, pcount, pstamp, pgain, pkeys, pvals),
                n_pairs,
                Gains(gained_pairs, gain_pair, gain_word),
                n_gained,
                n_gain,
                step * np.int64(n_words + 1),
            )
            n_pairs = counters[0]
            n_gained = counters[1]
            n_gain = counters[2]

        # 3. One new queue entry per pair that gained occurrences.
        if n_gained > 0:
            pos = _grow_i32(pos, n_pos + n_gain)
            if n_entries + n_gained > ecount.shape[0]:
                need = n_entries + n_gained
                ecount = _grow_i64(ecount, need)
                epair = _grow_i32(epair, need)
                estart = _grow_i64(estart, need)
                elen = _grow_i64(elen, need)
            heap = _grow_i64(heap, hsize + n_gained)
            out2 = _push_gains(
                Gains(gained_pairs, gain_pair, gain_word),
                n_gained,
                n_gain,
                Pairs(pa, pb, pcount, pstamp, pgain, pkeys, pvals),
                pos,
                n_pos,
                Entries(ecount, epair, estart, elen),
                n_entries,
                heap,
                hsize,
            )
            n_entries = out2[0]
            hsize = out2[1]
            n_pos += n_gain

    return (
        m_left[:n_merges].copy(),
        m_right[:n_merges].copy(),
        m_new[:n_merges].copy(),
        m_count[:n_merges].copy(),
        tok_bytes[: tok_off[n_tokens]].copy(),
        tok_off[: n_tokens + 1].copy(),
        n_tokens,
    )
