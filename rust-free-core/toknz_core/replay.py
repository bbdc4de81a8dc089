"""Merge replay kernel: apply an ordered merge list to counted words and record pair-count changes.

This is the sibling of :mod:`toknz_core.train`: instead of choosing the most
frequent pair at each step, it applies a given merge list in order (as a
tokenizer's training did) to one category's sample, and records what the
training would have seen there:

- the count of every adjacent pair before the first merge;
- for every step ``t``, the count of the merged pair just before merge ``t``
  (0 when its parts never occur side by side), and the pairs whose counts
  merge ``t`` changes, with the change (only those: counts are incremental).

Input words are CSR: ``symbols`` (int32 ids), ``offsets`` (int64, n + 1) and
``counts`` (int64). Merges are three int32 arrays ``left``, ``right``,
``new``. A pair ``(a, b)`` is keyed as ``a << 32 | b`` (int64); ids must be
non-negative and below 2**31. A merge is applied left to right without
overlap, as ``tokenizers``' ``Word::merge`` does, and pairs are counted with
overlaps (``a a a`` holds two ``(a, a)``), as its trainer counts them. Every
count is 64-bit.

A pair -> words occurrence index (linked lists of word ids in flat arrays)
makes a merge visit only the words that may hold its pair; lists only grow,
so a visited word is checked and skipped when it no longer holds the pair.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from toknz_core.hashing import mix64


@njit(cache=True, nogil=True, inline="always")
def _slot(table: np.ndarray, keys: np.ndarray, key: np.int64) -> np.int64:
    """Slot of ``table`` holding the pair whose key is ``key``, or the empty slot (-1) where it goes."""
    mask = np.uint64(table.shape[0] - 1)
    s = np.int64(mix64(key) & mask)
    while table[s] >= 0 and keys[table[s]] != key:
        s = np.int64((np.uint64(s) + np.uint64(1)) & mask)
    return s


@njit(cache=True, nogil=True)
def _rehash(keys: np.ndarray, n_pairs: int, cap: int) -> np.ndarray:
    table = np.full(cap, -1, dtype=np.int32)
    for p in range(n_pairs):
        table[_slot(table, keys, keys[p])] = p
    return table


@njit(cache=True, nogil=True)
def _grow_i64(a: np.ndarray, need: int) -> np.ndarray:
    if need <= a.shape[0]:
        return a
    out = np.empty(max(2 * a.shape[0], need, 16), dtype=np.int64)
    out[: a.shape[0]] = a
    return out


@njit(cache=True, nogil=True)
def _grow_i32(a: np.ndarray, need: int) -> np.ndarray:
    if need <= a.shape[0]:
        return a
    out = np.empty(max(2 * a.shape[0], need, 16), dtype=np.int32)
    out[: a.shape[0]] = a
    return out


class PairStore(NamedTuple):
    """The replay's pairs: key (``left << 32 | right``), count, head of the list of words
    holding it, last word listed / step touched, the step's change, the key -> pair
    table, and the word-list nodes (word id, next node)."""

    key: np.ndarray
    counts: np.ndarray
    head: np.ndarray
    last: np.ndarray
    delta: np.ndarray
    table: np.ndarray
    node_word: np.ndarray
    node_next: np.ndarray


@njit(cache=True, nogil=True)
def _initial_pairs(
    sym: np.ndarray, offsets: np.ndarray, counts: np.ndarray
) -> tuple[PairStore, int, int]:
    """Every adjacent pair of the words with its count, and the words that hold it.

    Returns ``(store, n_pairs, n_nodes)``: pair ``p`` has key ``store.key[p]`` and
    count ``store.counts[p]``; its words are the linked list of nodes from
    ``store.head[p]`` (``node_word``/``node_next``), each word once.
    """
    n_words = offsets.shape[0] - 1
    # Pairs: key, count, head of the word list, per-step change accumulator.
    pkey = np.empty(1024, dtype=np.int64)
    pcount = np.zeros(1024, dtype=np.int64)
    phead = np.full(1024, -1, dtype=np.int32)
    plast = np.full(1024, -1, dtype=np.int64)  # last word listed (init) / last step touched
    pdelta = np.zeros(1024, dtype=np.int64)
    n_pairs = 0
    table = np.full(2048, -1, dtype=np.int32)
    # Word-list nodes: word id and next node.
    node_word = np.empty(1024, dtype=np.int32)
    node_next = np.empty(1024, dtype=np.int32)
    n_nodes = 0

    for w in range(n_words):
        s = offsets[w]
        e = offsets[w + 1]
        need = n_pairs + (e - s)
        if need > pkey.shape[0]:
            old = pkey.shape[0]
            pkey = _grow_i64(pkey, need)
            pcount = _grow_i64(pcount, need)
            pcount[old:] = 0
            phead = _grow_i32(phead, need)
            phead[old:] = -1
            plast = _grow_i64(plast, need)
            plast[old:] = -1
            pdelta = _grow_i64(pdelta, need)
            pdelta[old:] = 0
        if 2 * need > table.shape[0]:
            cap = table.shape[0]
            while 2 * need > cap:
                cap *= 2
            table = _rehash(pkey, n_pairs, cap)
        node_word = _grow_i32(node_word, n_nodes + (e - s))
        node_next = _grow_i32(node_next, n_nodes + (e - s))
        c = counts[w]
        for i in range(s, e - 1):
            key = (np.int64(sym[i]) << np.int64(32)) | np.int64(sym[i + 1])
            slot = _slot(table, pkey, key)
            p = table[slot]
            if p < 0:
                p = n_pairs
                pkey[p] = key
                table[slot] = p
                n_pairs += 1
            pcount[p] += c
            if plast[p] != w:
                plast[p] = w
                node_word[n_nodes] = w
                node_next[n_nodes] = phead[p]
                phead[p] = n_nodes
                n_nodes += 1

    store = PairStore(pkey, pcount, phead, plast, pdelta, table, node_word, node_next)
    return store, n_pairs, n_nodes


@njit(cache=True, nogil=True, inline="always")
def _merge_word(
    store: PairStore,
    sym: np.ndarray,
    s: int,
    n: int,
    c: np.int64,
    w: int,
    t: int,
    a: np.int32,
    b: np.int32,
    z: np.int32,
    touched: np.ndarray,
    n_touched: int,
    n_pairs: int,
    n_nodes: int,
) -> tuple[int, int, int, int]:
    """Merge ``(a, b) -> z`` in word ``w`` (``sym[s:s + n]``, count ``c``) at step ``t``.

    Takes the word's pairs out of the step's change accumulator, merges, puts the
    new pairs back (creating pairs and listing the word under pairs with ``z``), so
    only pairs that changed keep a delta; every pair touched at this step is
    listed once in ``touched``. Room for ``n`` new pairs and nodes and ``2 n``
    touched pairs is ensured by the caller. Returns ``(new length, n_touched,
    n_pairs, n_nodes)``.
    """
    pkey, pcount, phead, plast, pdelta, table = (
        store.key,
        store.counts,
        store.head,
        store.last,
        store.delta,
        store.table,
    )
    node_word, node_next = store.node_word, store.node_next
    # Remove the word's pairs, merge, add them back: only changed pairs keep a delta.
    for i in range(s, s + n - 1):
        k2 = (np.int64(sym[i]) << np.int64(32)) | np.int64(sym[i + 1])
        q = table[_slot(table, pkey, k2)]
        if plast[q] != t:
            plast[q] = t
            pdelta[q] = 0
            touched[n_touched] = q
            n_touched += 1
        pdelta[q] -= c
    r = 0
    out = 0
    while r < n:
        if r + 1 < n and sym[s + r] == a and sym[s + r + 1] == b:
            sym[s + out] = z
            r += 2
        else:
            sym[s + out] = sym[s + r]
            r += 1
        out += 1
    for i in range(s, s + out - 1):
        x = sym[i]
        y = sym[i + 1]
        k2 = (np.int64(x) << np.int64(32)) | np.int64(y)
        slot = _slot(table, pkey, k2)
        q = table[slot]
        if q < 0:
            q = n_pairs
            pkey[q] = k2
            pcount[q] = 0
            phead[q] = -1
            table[slot] = q
            n_pairs += 1
        if plast[q] != t:
            plast[q] = t
            pdelta[q] = 0
            touched[n_touched] = q
            n_touched += 1
        pdelta[q] += c
        if x == z or y == z:
            # A pair with the new token may be new to this word: list the word.
            node_word[n_nodes] = w
            node_next[n_nodes] = phead[q]
            phead[q] = n_nodes
            n_nodes += 1
    return out, n_touched, n_pairs, n_nodes


@njit(cache=True, nogil=True)
def replay_merges(
    symbols: np.ndarray,
    offsets: np.ndarray,
    counts: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    new: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Replay merges ``(left[t], right[t]) -> new[t]`` in order over the words.

    Inputs are left untouched (the words are merged in a copy). Returns
    ``(init_keys, init_counts, merge_counts, delta_offsets, delta_keys,
    delta_values)``: every pair present before the first merge with its
    count (int64 keys ``left << 32 | right``, in order of first occurrence);
    ``merge_counts[t]`` the count of pair ``(left[t], right[t])`` just
    before merge ``t``; and the changes merge ``t`` makes,
    ``delta_keys/delta_values[delta_offsets[t]:delta_offsets[t + 1]]``
    (each changed pair once, in order of first change, no zero changes).
    The merged pair's own loss is among them.
    """
    n_words = offsets.shape[0] - 1
    n_steps = left.shape[0]
    sym = symbols.copy()
    wlen = np.empty(n_words, dtype=np.int64)
    for w in range(n_words):
        wlen[w] = offsets[w + 1] - offsets[w]
    wstamp = np.full(n_words, -1, dtype=np.int64)

    store, n_pairs, n_nodes = _initial_pairs(sym, offsets, counts)
    pkey, pcount, phead, plast, pdelta, table = (
        store.key,
        store.counts,
        store.head,
        store.last,
        store.delta,
        store.table,
    )
    node_word, node_next = store.node_word, store.node_next

    init_keys = pkey[:n_pairs].copy()
    init_counts = pcount[:n_pairs].copy()
    plast[:n_pairs] = -1

    merge_counts = np.zeros(n_steps, dtype=np.int64)
    delta_offsets = np.zeros(n_steps + 1, dtype=np.int64)
    delta_keys = np.empty(1024, dtype=np.int64)
    delta_values = np.empty(1024, dtype=np.int64)
    n_deltas = 0
    touched = np.empty(1024, dtype=np.int32)

    for t in range(n_steps):
        a = np.int32(left[t])
        b = np.int32(right[t])
        z = np.int32(new[t])
        key = (np.int64(a) << np.int64(32)) | np.int64(b)
        p0 = table[_slot(table, pkey, key)]
        n_touched = 0
        if p0 >= 0 and pcount[p0] > 0:
            merge_counts[t] = pcount[p0]
            node = phead[p0]
            while node >= 0:
                w = node_word[node]
                node = node_next[node]
                if wstamp[w] == t:
                    continue
                wstamp[w] = t
                s = offsets[w]
                n = wlen[w]
                found = False
                for i in range(s, s + n - 1):
                    if sym[i] == a and sym[i + 1] == b:
                        found = True
                        break
                if not found:
                    continue
                # Room for this word's changes: at most 2n pairs touched, n new pairs and nodes.
                need = n_pairs + n
                if need > pkey.shape[0]:
                    old = pkey.shape[0]
                    pkey = _grow_i64(pkey, need)
                    pcount = _grow_i64(pcount, need)
                    pcount[old:] = 0
                    phead = _grow_i32(phead, need)
                    phead[old:] = -1
                    plast = _grow_i64(plast, need)
                    plast[old:] = -1
                    pdelta = _grow_i64(pdelta, need)
                    pdelta[old:] = 0
                if 2 * need > table.shape[0]:
                    cap = table.shape[0]
                    while 2 * need > cap:
                        cap *= 2
                    table = _rehash(pkey, n_pairs, cap)
                node_word = _grow_i32(node_word, n_nodes + n)
                node_next = _grow_i32(node_next, n_nodes + n)
                touched = _grow_i32(touched, n_touched + 2 * n)
                out, n_touched, n_pairs, n_nodes = _merge_word(
                    PairStore(pkey, pcount, phead, plast, pdelta, table, node_word, node_next),
                    sym,
                    s,
                    n,
                    counts[w],
                    w,
                    t,
                    a,
                    b,
                    z,
                    touched,
                    n_touched,
                    n_pairs,
                    n_nodes,
                )
                wlen[w] = out
        need = n_deltas + n_touched
        if need > delta_keys.shape[0]:
            delta_keys = _grow_i64(delta_keys, need)
            delta_values = _grow_i64(delta_values, need)
        for j in range(n_touched):
            q = touched[j]
            d = pdelta[q]
            if d != 0:
                delta_keys[n_deltas] = pkey[q]
                delta_values[n_deltas] = d
                n_deltas += 1
                pcount[q] += d
        delta_offsets[t + 1] = n_deltas

    return (
        init_keys,
        init_counts,
        merge_counts,
        delta_offsets,
        delta_keys[:n_deltas].copy(),
        delta_values[:n_deltas].copy(),
    )
