"""Whole-document BPE encoding: UTF-8 bytes in, token ids out, in one compiled call.

:func:`encode_text_bytes` splits a document with a compiled pattern
(:mod:`toknz_core.pretok`) and encodes every piece without returning to Python.
Encoding is bound by memory latency, not arithmetic: a piece seen before costs
one cache line, a new one costs a few probes of the model's tables. So the
tables here are compact (one 8-byte word per pair, tokens' bytes inline) and
the word cache keeps one 64-byte record per piece.

Tables (built once per model by ``toknz/pipeline/bpe.py``):

- *pairs* and *rank_ids*: the pair table of :mod:`toknz_core.encode` (one 8-byte word
  per pair), merged by its kernel :func:`toknz_core.encode.merge_symbols`;
- *byte_pairs*: the rank of the pair of every two bytes (65,536 ``int64``), so
  the first ranks of a word come from a table that stays in cache
  (:func:`byte_pair_ranks`);
- *short tokens*: for the shortcut rule (a piece that is a token encodes to it),
  tokens of 2-8 bytes as rows ``(bytes, length | id << 8)`` and of 9-24 bytes
  as rows ``(bytes0, bytes1, bytes2, length | id << 8)``; longer pieces use the
  byte-string table of :mod:`toknz_core.ranks`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import carray, njit

from toknz_core.encode import (
    NO_RANK,
    first_ranks,
    merge_symbols,
    pair_rank,
    slot_pair,
    table_slots,
)
from toknz_core.memory import borrowed, load_u64, pointer, prefetch, store_u64
from toknz_core.pretok import split, split_into
from toknz_core.ranks import find_bytes_in

#: Word cache: slots (a power of two); pieces up to CACHE_WORD bytes giving up to CACHE_IDS ids.
CACHE_SLOTS = 1 << 15
CACHE_WORD = 24
CACHE_IDS = 8
#: Merge scratch entries the kernels start with: pieces of up to half as many bytes are
#: merged without allocating (:func:`_encode_parts` keeps its cuts in the second half).
MERGE_SCRATCH = 4096
_NO_RANK64 = np.int64(NO_RANK)


def new_word_cache() -> np.ndarray:
    """An empty word cache for :func:`encode_pieces`: one 64-byte record per slot, 2 MiB.

    Record ``s`` is ``cache[s]`` (8 ``uint64``): the piece's bytes packed
    little-endian into words 0-2 (zero-padded), its length and id count in
    word 3 (0: empty slot), and up to 8 int32 ids packed two per word in 4-7.
    """
    return np.zeros((CACHE_SLOTS, 8), dtype=np.uint64)


@njit(cache=True, nogil=True, inline="always")
def _slot(h: np.uint64, cap: int) -> int:
    """Map a 32-bit hash onto ``range(cap)`` (multiply-shift, no power of two needed)."""
    return np.int64((h * np.uint64(cap)) >> np.uint64(32))  # type: ignore[return-value]


@njit(cache=True, nogil=True)
def byte_pair_ranks(byte_ids: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Rank (or ``NO_RANK``) of the merge of the symbols of bytes ``x`` and ``y`` at ``x * 256 + y``
    (``table``: the pair table of :func:`toknz_core.encode.build_pair_table`)."""
    out = np.full(65536, _NO_RANK64, dtype=np.int64)
    for x in range(256):
        for y in range(256):
            if byte_ids[x] >= 0 and byte_ids[y] >= 0:
                out[x * 256 + y] = pair_rank(table, np.int64(byte_ids[x]), np.int64(byte_ids[y]))
    return out


#: Bits of the bridge table's second part (:func:`byte_bridges`), a power of two.
BRIDGE_CONTEXT_BITS = 1 << 20
#: Words of a bridge table: 65,536 bits for pairs of bytes, then the second part.
BRIDGE_WORDS = 1024 + BRIDGE_CONTEXT_BITS // 64
_ALL_BITS = np.uint64(0xFFFFFFFFFFFFFFFF)


@njit(cache=True, nogil=True, inline="always")
def _bit(bridges: np.ndarray, k: np.int64) -> bool:
    return (bridges[k >> 6] >> np.uint64(k & 63)) & np.uint64(1) != np.uint64(0)


@njit(cache=True, nogil=True, inline="always")
def _context_bit(x1: np.int64, x2: np.int64, y: np.int64) -> np.int64:
    """Bit of the bridge table's second part for the bytes ``x1 x2 | y``."""
    h = np.uint64((x1 << 16) | (x2 << 8) | y) * np.uint64(0x9E3779B97F4A7C15)
    return 65536 + np.int64((h >> np.uint64(40)) & np.uint64(BRIDGE_CONTEXT_BITS - 1))


@njit(cache=True, nogil=True, inline="always")
def _joinable(bridges: np.ndarray, data: np.ndarray, start: int, i: int) -> bool:
    """Whether a merge may join the symbols on both sides of ``data[i - 1] | data[i]`` in a
    piece that starts at ``start`` (``start < i``)."""
    x2 = np.int64(data[i - 1])
    y = np.int64(data[i])
    if _bit(bridges, x2 * 256 + y):
        return True
    return i - 1 > start and _bit(bridges, _context_bit(np.int64(data[i - 2]), x2, y))


@njit(cache=True, nogil=True)
def byte_bridges(
    byte_ids: np.ndarray,
    pairs: np.ndarray,
    rank_ids: np.ndarray,
    byte_pairs: np.ndarray,
    shortcut: bool,
    tok_data: np.ndarray,
    tok_offsets: np.ndarray,
    tok_ids: np.ndarray,
) -> np.ndarray:
    """The bridge table of a model (``uint64[BRIDGE_WORDS]``): where a merge may join two
    symbols of a piece, judged from the two bytes before the joint and the one after.

    A merge ``(l, r)`` joins a symbol ``l`` that ends just before the joint to a symbol
    ``r`` that starts at it, so ``r``'s first byte is the byte after the joint, and ``l``
    is the byte before it (one-byte ``l``) or ends with the two bytes before it. The table
    has bit ``x * 256 + y`` set for every merge of a one-byte ``l = x`` with ``r``
    starting with ``y``, and for every merge of a longer ``l`` ending in ``x1 x2`` a bit
    for ``(x1, x2, y)`` in its second part (hashed: a collision only keeps a joint).

    Where no bit allows it, no merge ever joins, so a piece's BPE is the BPE of its parts
    between such joints, each on its own: :func:`encode_pieces` encodes a piece it has not
    seen as those parts, most of them in its word cache. (CJK text falls into parts of two
    or three characters with ``cl100k_base`` and ``o200k_base``.)

    Every bit is set (no piece is ever cut) when that would not be exact: a byte has no
    token (its neighbours may merge across it), a symbol of the pair table has no known
    bytes, an id has two spellings, or, with ``shortcut``, a token of 2 to ``CACHE_WORD``
    bytes does not come out of its own bytes' BPE as itself (then a cached part could
    differ from the part's BPE). Tokens are ``tok_data[tok_offsets[t]:tok_offsets[t + 1]]``
    with ids ``tok_ids``.
    """
    bridges = np.zeros(BRIDGE_WORDS, dtype=np.uint64)
    every = np.full(BRIDGE_WORDS, _ALL_BITS, dtype=np.uint64)
    top = np.int64(0)
    for b in range(256):
        if byte_ids[b] < 0:
            return every
        top = max(top, np.int64(byte_ids[b]))
    for t in range(tok_ids.shape[0]):
        top = max(top, np.int64(tok_ids[t]))
    first = np.full(top + 1, -1, dtype=np.int64)
    last = np.full(top + 1, -1, dtype=np.int64)
    before_last = np.full(top + 1, -1, dtype=np.int64)  # -1 for a one-byte symbol
    for b in range(256):
        if first[byte_ids[b]] >= 0:
            return every  # two bytes share an id
        first[byte_ids[b]] = b
        last[byte_ids[b]] = b
    for t in range(tok_ids.shape[0]):
        s, e = tok_offsets[t], tok_offsets[t + 1]
        i = tok_ids[t]
        if e - s >= 2:
            if first[i] >= 0 and (first[i] != tok_data[s] or last[i] != tok_data[e - 1]):
                return every  # an id with two spellings
            first[i] = tok_data[s]
            last[i] = tok_data[e - 1]
            before_last[i] = tok_data[e - 2]
    for slot in range(table_slots(pairs)):
        left, right = slot_pair(pairs, np.int64(slot))
        if left < 0:
            continue
        if left > top or right > top or last[left] < 0 or first[right] < 0:
            return every
        if before_last[left] < 0:
            k = last[left] * 256 + first[right]
        else:
            k = _context_bit(before_last[left], last[left], first[right])
        bridges[k >> 6] |= np.uint64(1) << np.uint64(k & 63)
    if shortcut:
        made = self_encoding_tokens(
            tok_data, tok_offsets, tok_ids, byte_ids, pairs, rank_ids, byte_pairs
        )
        for t in range(tok_ids.shape[0]):
            if 2 <= tok_offsets[t + 1] - tok_offsets[t] <= CACHE_WORD and made[t] == 0:
                return every
    return bridges


@njit(cache=True, nogil=True, inline="always")
def _pack_bytes(data: np.ndarray, start: int, stop: int) -> np.uint64:
    """``data[start:stop]`` (at most 8 bytes) as a little-endian integer, zero-padded."""
    w = np.uint64(0)
    for i in range(start, stop):
        w |= np.uint64(data[i]) << np.uint64(8 * (i - start))
    return w


#: ``_LOW_BYTES[k]``: the mask of the low ``k`` bytes of a word (0 <= k <= 8).
_LOW_BYTES = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)


@njit(cache=True, nogil=True, inline="always")
def _pack_word(data: np.ndarray, start: int, end: int) -> tuple[np.uint64, np.uint64, np.uint64]:
    """``data[start:end]`` (at most ``CACHE_WORD`` bytes) as three little-endian words,
    zero-padded: three 8-byte loads and masks when ``data`` has ``CACHE_WORD`` bytes from
    ``start`` (no loop whose length changes with the piece), else byte by byte."""
    n = end - start
    if start + CACHE_WORD <= data.shape[0]:
        w0 = load_u64(data, start) & _LOW_BYTES[min(n, 8)]  # type: ignore[call-arg]
        w1 = load_u64(data, start + 8) & _LOW_BYTES[min(max(n - 8, 0), 8)]  # type: ignore[call-arg]
        w2 = load_u64(data, start + 16) & _LOW_BYTES[max(n - 16, 0)]  # type: ignore[call-arg]
        return w0, w1, w2
    w0 = _pack_bytes(data, start, min(end, start + 8))
    w1 = np.uint64(0)
    w2 = np.uint64(0)
    if end - start > 8:
        w1 = _pack_bytes(data, start + 8, min(end, start + 16))
        if end - start > 16:
            w2 = _pack_bytes(data, start + 16, end)
    return w0, w1, w2


@njit(cache=True, nogil=True, inline="always")
def _word_hash(w0: np.uint64, w1: np.uint64, w2: np.uint64, n: int) -> np.uint64:
    """A 32-bit hash of a packed piece."""
    h = (w0 ^ np.uint64(n)) * np.uint64(0x9E3779B97F4A7C15)
    h = (h ^ w1) * np.uint64(0xC2B2AE3D27D4EB4F)
    h = (h ^ w2) * np.uint64(0x165667B19E3779F9)
    return h >> np.uint64(32)


@njit(cache=True, nogil=True)
def build_short_tokens(
    tok_data: np.ndarray, tok_offsets: np.ndarray, tok_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The short-token tables ``(short8, short24)`` of the tokens ``tok_data[tok_offsets[t]:tok_offsets[t + 1]]``.

    ``short8`` rows (2 ``uint64``) hold tokens of 2-8 bytes, ``short24`` rows
    (4 ``uint64``) tokens of 9-24 bytes; the last word of a row is
    ``length | id << 8`` (0: empty). Ids come from ``tok_ids``.
    """
    n_tok = tok_offsets.shape[0] - 1
    n8 = 0
    n24 = 0
    for t in range(n_tok):
        n = tok_offsets[t + 1] - tok_offsets[t]
        if 2 <= n <= 8:
            n8 += 1
        elif 8 < n <= CACHE_WORD:
            n24 += 1
    # Load 0.4: a piece the word cache misses is looked up here, and most of those of
    # text in other scripts are no token (a miss probes ~1.9 slots, against ~6 at 0.7).
    cap8 = int(n8 / 0.4) + 16
    cap24 = int(n24 / 0.4) + 16
    short8 = np.zeros((cap8, 2), dtype=np.uint64)
    short24 = np.zeros((cap24, 4), dtype=np.uint64)
    for t in range(n_tok):
        s, e = tok_offsets[t], tok_offsets[t + 1]
        n = e - s
        if n < 2 or n > CACHE_WORD:
            continue
        w0, w1, w2 = _pack_word(tok_data, s, e)
        meta = np.uint64(n) | (np.uint64(tok_ids[t]) << np.uint64(8))
        h = _word_hash(w0, w1, w2, n)
        if n <= 8:
            slot = _slot(h, cap8)
            while short8[slot, 1] != np.uint64(0):
                slot = slot + 1 if slot + 1 < cap8 else 0
            short8[slot, 0] = w0
            short8[slot, 1] = meta
        else:
            slot = _slot(h, cap24)
            while short24[slot, 3] != np.uint64(0):
                slot = slot + 1 if slot + 1 < cap24 else 0
            short24[slot, 0] = w0
            short24[slot, 1] = w1
            short24[slot, 2] = w2
            short24[slot, 3] = meta
    return short8, short24


@njit(cache=True, nogil=True, inline="always")
def _find_short_token(
    short8: np.ndarray,
    short24: np.ndarray,
    w0: np.uint64,
    w1: np.uint64,
    w2: np.uint64,
    n: int,
    h: np.uint64,
) -> np.int64:
    """Id of the token of ``n`` (2-24) bytes packed as ``w0, w1, w2`` (hash ``h``), or -1."""
    if n <= 8:
        cap = short8.shape[0]
        slot = _slot(h, cap)
        while True:
            meta = short8[slot, 1]
            if meta == np.uint64(0):
                return np.int64(-1)
            if (meta & np.uint64(0xFF)) == np.uint64(n) and short8[slot, 0] == w0:
                return np.int64(meta >> np.uint64(8))
            slot = slot + 1 if slot + 1 < cap else 0
    cap = short24.shape[0]
    slot = _slot(h, cap)
    while True:
        meta = short24[slot, 3]
        if meta == np.uint64(0):
            return np.int64(-1)
        if (
            (meta & np.uint64(0xFF)) == np.uint64(n)
            and short24[slot, 0] == w0
            and short24[slot, 1] == w1
            and short24[slot, 2] == w2
        ):
            return np.int64(meta >> np.uint64(8))
        slot = slot + 1 if slot + 1 < cap else 0


@njit(cache=True, nogil=True, inline="always")
def _cache_get(
    cache: np.ndarray,
    slot: np.int64,
    w0: np.uint64,
    w1: np.uint64,
    w2: np.uint64,
    n: int,
    out: np.ndarray,
    n_out: int,
) -> int:
    """Write the ids cached for the piece packed as ``w0, w1, w2`` (``n`` bytes) in record
    ``slot`` to ``out[n_out:]``; return how many, or -1 when the record holds another piece.

    The record's four id words are copied whole, whatever the number of ids (no loop whose
    length changes from piece to piece), so ``out`` (int32) must have room for
    ``CACHE_IDS`` ids from ``n_out``: the callers give it that much beyond one id per byte.
    """
    meta = cache[slot, 3]
    if (
        (meta & np.uint64(0xFF)) != np.uint64(n)
        or cache[slot, 0] != w0
        or cache[slot, 1] != w1
        or cache[slot, 2] != w2
    ):
        return -1
    for j in range(CACHE_IDS // 2):
        store_u64(out, n_out + 2 * j, cache[slot, 4 + j])  # type: ignore[call-arg]
    return np.int64(meta >> np.uint64(8))


@njit(cache=True, nogil=True, inline="always")
def _cache_put(
    cache: np.ndarray,
    slot: np.int64,
    w0: np.uint64,
    w1: np.uint64,
    w2: np.uint64,
    n: int,
    ids: np.ndarray,
    start: int,
    m: int,
) -> None:
    """Store ``ids[start:start + m]`` (at most ``CACHE_IDS``) for the packed piece in record ``slot``."""
    cache[slot, 0] = w0
    cache[slot, 1] = w1
    cache[slot, 2] = w2
    cache[slot, 3] = np.uint64(n) | (np.uint64(m) << np.uint64(8))
    for j in range(4):
        cache[slot, 4 + j] = np.uint64(0)
    for i in range(m):
        cache[slot, 4 + (i >> 1)] |= np.uint64(np.uint32(ids[start + i])) << np.uint64(32 * (i & 1))


@njit(cache=True, nogil=True, inline="always")
def _merge_bytes(
    data: np.ndarray,
    start: int,
    end: int,
    byte_ids: np.ndarray,
    pairs: np.ndarray,
    rank_ids: np.ndarray,
    byte_pairs: np.ndarray,
    scratch: np.ndarray,
    prank: np.ndarray,
    out: np.ndarray,
    n_out: int,
) -> int:
    """BPE of ``data[start:end]`` (``scratch`` and ``prank`` at least that long) written to
    ``out[n_out:]``; return the number of ids."""
    n = end - start
    k = 0
    for i in range(n):
        b = byte_ids[data[start + i]]
        if b >= 0:  # a byte with no token is dropped; its neighbours may merge
            scratch[k] = b
            k += 1
    if k == n:  # every byte a symbol: the first ranks from the byte-pair table
        for i in range(n - 1):
            prank[i] = byte_pairs[np.int64(data[start + i]) * 256 + data[start + i + 1]]
    else:
        first_ranks(scratch, k, pairs, prank)
    m = merge_symbols(scratch, k, pairs, rank_ids, prank, _NO_RANK64)
    for i in range(m):
        out[n_out + i] = scratch[i]
    return m


@njit(cache=True, nogil=True)
def self_encoding_tokens(
    tok_data: np.ndarray,
    tok_offsets: np.ndarray,
    tok_ids: np.ndarray,
    byte_ids: np.ndarray,
    pairs: np.ndarray,
    rank_ids: np.ndarray,
    byte_pairs: np.ndarray,
) -> np.ndarray:
    """Which tokens the merge list makes out of their own bytes: uint8, 1 for token ``t``
    (``tok_data[tok_offsets[t]:tok_offsets[t + 1]]``, id ``tok_ids[t]``) when the BPE of
    its bytes is the one id ``tok_ids[t]``.

    A piece equal to such a token encodes to it under the merge list too, so these tokens
    give models without tiktoken's whole-piece rule the same shortcut: a fresh word found
    in the vocabulary needs one table look-up instead of its merges.
    """
    n_tok = tok_ids.shape[0]
    longest = 1
    for t in range(n_tok):
        longest = max(longest, tok_offsets[t + 1] - tok_offsets[t])
    sym = np.empty(longest, dtype=np.int32)
    prank = np.empty(longest, dtype=np.int64)
    ids = np.empty(longest, dtype=np.int32)
    keep = np.zeros(n_tok, dtype=np.uint8)
    for t in range(n_tok):
        got = _merge_bytes(
            tok_data,
            tok_offsets[t],
            tok_offsets[t + 1],
            byte_ids,
            pairs,
            rank_ids,
            byte_pairs,
            sym,
            prank,
            ids,
            0,
        )
        if got == 1 and ids[0] == tok_ids[t]:
            keep[t] = 1
    return keep


@njit(cache=True, nogil=True, inline="always")
def _encode_parts(
    data: np.ndarray,
    start: int,
    end: int,
    bridges: np.ndarray,
    byte_ids: np.ndarray,
    pairs: np.ndarray,
    rank_ids: np.ndarray,
    byte_pairs: np.ndarray,
    scratch: np.ndarray,
    prank: np.ndarray,
    cache: np.ndarray,
    records: np.ndarray,
    out: np.ndarray,
    n_out: int,
) -> int:
    """BPE of ``data[start:end]`` as the BPE of its parts between bytes no merge joins
    (:func:`byte_bridges`), short parts through the word cache; ids to ``out[n_out:]``,
    their number returned.

    A first pass finds the cuts (kept in ``prank[n:2n]`` for a piece of ``n`` bytes: the
    caller gives ``prank`` twice the piece's length) and asks for each short part's cache
    record (``records``: the cache as one row), so that the records load together instead
    of one after the other; the second pass looks the parts up and merges the others."""
    cmask = np.uint64(cache.shape[0] - 1)
    n_piece = end - start
    cuts = 0
    s = start
    while s < end:
        e = s + 1
        while e < end and _joinable(bridges, data, start, e):
            e += 1
        if e - s == n_piece:  # no cut: the caller found the piece in no cache
            return _merge_bytes(
                data, s, e, byte_ids, pairs, rank_ids, byte_pairs, scratch, prank, out, n_out
            )
        if 2 <= e - s <= CACHE_WORD:
            w0, w1, w2 = _pack_word(data, s, e)
            prefetch(records, np.int64(_word_hash(w0, w1, w2, e - s) & cmask) * 8)  # type: ignore[call-arg]
        prank[n_piece + cuts] = e
        cuts += 1
        s = e
    m = 0
    s = start
    for c in range(cuts):
        e = prank[n_piece + c]
        n = e - s
        if n == 1:
            b = byte_ids[data[s]]
            if b >= 0:
                out[n_out + m] = b
                m += 1
        elif n <= CACHE_WORD:
            w0, w1, w2 = _pack_word(data, s, e)
            slot = np.int64(_word_hash(w0, w1, w2, n) & cmask)
            got = _cache_get(cache, slot, w0, w1, w2, n, out, n_out + m)
            if got < 0:
                got = _merge_bytes(
                    data,
                    s,
                    e,
                    byte_ids,
                    pairs,
                    rank_ids,
                    byte_pairs,
                    scratch,
                    prank,
                    out,
                    n_out + m,
                )
                if got <= CACHE_IDS:
                    _cache_put(cache, slot, w0, w1, w2, n, out, n_out + m, got)
            m += got
        else:
            m += _merge_bytes(
                data, s, e, byte_ids, pairs, rank_ids, byte_pairs, scratch, prank, out, n_out + m
            )
        s = e
    return m


@njit(cache=True, nogil=True)
def encode_pieces(
    data: np.ndarray,
    ends: np.ndarray,
    byte_ids: np.ndarray,
    pairs: np.ndarray,
    rank_ids: np.ndarray,
    byte_pairs: np.ndarray,
    bridges: np.ndarray,
    shortcut: bool,
    short8: np.ndarray,
    short24: np.ndarray,
    tok_data: np.ndarray,
    tok_offsets: np.ndarray,
    tok_slots: np.ndarray,
    tok_ids: np.ndarray,
    cache: np.ndarray,
) -> np.ndarray:
    """Encode a whole pre-split document: no Python between pieces.

    ``data`` (uint8) is the document's bytes and ``ends`` (int64) the end
    offset of each piece (the first starts at 0). Each piece becomes symbols
    through ``byte_ids`` (int32, 256 entries; -1 for a byte with no token, which is
    dropped as the ``tokenizers`` BPE model does without an unknown token) and is merged by
    :func:`toknz_core.encode.merge_symbols` with the pair table ``(pairs, rank_ids)``,
    the first ranks from ``byte_pairs`` (:func:`byte_pair_ranks`). With ``shortcut``,
    a piece that is itself a token encodes to that token (tiktoken's rule and
    ``ignore_merges``), looked up in ``short8``/``short24`` when it has at most
    ``CACHE_WORD`` bytes, else in the byte-string table ``tok_*`` of
    :mod:`toknz_core.ranks` (``tok_ids``: its entries' ids).

    ``cache`` is a direct-mapped word cache (:func:`new_word_cache`) kept by
    the caller across calls: short pieces seen before are answered from one
    cache line. A piece not in it is encoded as its parts between bytes no merge
    joins (``bridges``, :func:`byte_bridges`), each part through the cache. The
    cache only ever holds exact results, so it never changes the output; one cache
    must not be shared by concurrent calls. Returns int32 ids.
    """
    out = np.empty(data.shape[0] + CACHE_IDS, dtype=np.int32)  # room for _cache_get's copy
    n_out = _encode_into(
        data,
        ends,
        byte_ids,
        pairs,
        rank_ids,
        byte_pairs,
        bridges,
        shortcut,
        short8,
        short24,
        tok_data,
        tok_offsets,
        tok_slots,
        tok_ids,
        cache,
        out,
        np.empty((ends.shape[0], 4), dtype=np.uint64),
        np.empty(MERGE_SCRATCH, dtype=np.int32),
        np.empty(MERGE_SCRATCH, dtype=np.int64),
        cache.reshape(cache.shape[0] * 8),
    )
    return out[:n_out]


@njit(cache=True, nogil=True)
def _encode_into(
    data: np.ndarray,
    ends: np.ndarray,
    byte_ids: np.ndarray,
    pairs: np.ndarray,
    rank_ids: np.ndarray,
    byte_pairs: np.ndarray,
    bridges: np.ndarray,
    shortcut: bool,
    short8: np.ndarray,
    short24: np.ndarray,
    tok_data: np.ndarray,
    tok_offsets: np.ndarray,
    tok_slots: np.ndarray,
    tok_ids: np.ndarray,
    cache: np.ndarray,
    out: np.ndarray,
    keys: np.ndarray,
    scratch: np.ndarray,
    prank: np.ndarray,
    records: np.ndarray,
    marks: np.ndarray | None = None,
    marks_at: int = 0,
) -> int:
    """:func:`encode_pieces` into the caller's arrays: ``out`` (int32, room for one id per
    byte of ``data`` and ``CACHE_IDS`` more, :func:`_cache_get`), ``keys`` (uint64, a row
    of 4 per piece), the merge scratch ``scratch``/``prank`` (replaced here by arrays of
    twice a piece's length when it is longer than half of them) and ``records``, the word
    cache's memory as one row (the caller makes it: a reshape here would cost more than
    encoding a short text). Returns the number of ids.

    Every array is used through a :func:`~toknz_core.memory.borrowed` view: the slices and
    helper calls of the miss path then touch no shared reference count (an atomic
    operation each, and a cache line bouncing between threads that share the tables).

    ``marks`` (uint8, zeros), when given, gets a 1 at ``marks_at`` plus the position in
    ``out`` of the first id of every piece: where each pre-token's ids start (:func:`encode_documents_marked`).
    Without it (``None``) the store is compiled out."""
    data = borrowed(data)
    ends = borrowed(ends)
    byte_ids = borrowed(byte_ids)
    pairs = borrowed(pairs)
    rank_ids = borrowed(rank_ids)
    byte_pairs = borrowed(byte_pairs)
    bridges = borrowed(bridges)
    short8 = borrowed(short8)
    short24 = borrowed(short24)
    tok_data = borrowed(tok_data)
    tok_offsets = borrowed(tok_offsets)
    tok_slots = borrowed(tok_slots)
    tok_ids = borrowed(tok_ids)
    cache = borrowed(cache)
    out = borrowed(out)
    keys = borrowed(keys)
    scratch = borrowed(scratch)
    prank = borrowed(prank)
    records = borrowed(records)
    n_out = 0
    cmask = np.uint64(cache.shape[0] - 1)
    # First pass: every short piece's key, and a request for its cache record, so that
    # the records load while the second pass works.
    start = 0
    for p in range(ends.shape[0]):
        end = ends[p]
        n = end - start
        if 1 <= n <= CACHE_WORD:  # one-byte pieces too: one hit path, no branch on length
            w0, w1, w2 = _pack_word(data, start, end)
            h = _word_hash(w0, w1, w2, n)
            keys[p, 0] = w0
            keys[p, 1] = w1
            keys[p, 2] = w2
            keys[p, 3] = h
            prefetch(records, np.int64(h & cmask) * 8)  # type: ignore[call-arg]
        start = end
    start = 0
    for p in range(ends.shape[0]):
        end = ends[p]
        n = end - start
        if n <= 0:
            continue
        if marks is not None:
            marks[marks_at + n_out] = 1
        cacheable = n <= CACHE_WORD
        slot = np.int64(0)
        w0 = np.uint64(0)
        w1 = np.uint64(0)
        w2 = np.uint64(0)
        h = np.uint64(0)
        if cacheable:
            w0, w1, w2, h = keys[p, 0], keys[p, 1], keys[p, 2], keys[p, 3]
            slot = np.int64(h & cmask)
            m = _cache_get(cache, slot, w0, w1, w2, n, out, n_out)
            if m >= 0:
                n_out += m
                start = end
                continue
        m = 0
        if shortcut:
            if cacheable:
                t = _find_short_token(short8, short24, w0, w1, w2, n, h)
                if t >= 0:
                    out[n_out] = np.int32(t)
                    m = 1
            else:
                k = find_bytes_in(tok_data, tok_offsets, tok_slots, data, start, end)
                if k >= 0:
                    out[n_out] = tok_ids[k]
                    m = 1
        if m == 0:
            if 2 * n > prank.shape[0]:  # _encode_parts keeps its cuts in prank[n:2n]
                scratch = np.empty(2 * n, dtype=np.int32)
                prank = np.empty(2 * n, dtype=np.int64)
            m = _encode_parts(
                data,
                start,
                end,
                bridges,
                byte_ids,
                pairs,
                rank_ids,
                byte_pairs,
                scratch,
                prank,
                cache,
                records,
                out,
                n_out,
            )
        if cacheable and m <= CACHE_IDS:
            _cache_put(cache, slot, w0, w1, w2, n, out, n_out, m)
        n_out += m
        start = end
    return n_out


@njit(cache=True, nogil=True)
def encode_text_bytes(
    kind: int,
    data: np.ndarray,
    class_table: np.ndarray,
    byte_ids: np.ndarray,
    pairs: np.ndarray,
    rank_ids: np.ndarray,
    byte_pairs: np.ndarray,
    bridges: np.ndarray,
    shortcut: bool,
    short8: np.ndarray,
    short24: np.ndarray,
    tok_data: np.ndarray,
    tok_offsets: np.ndarray,
    tok_slots: np.ndarray,
    tok_ids: np.ndarray,
    cache: np.ndarray,
) -> np.ndarray:
    """Split ``data`` (one document's UTF-8 bytes) with the compiled pattern ``kind``
    (:mod:`toknz_core.pretok`; ``class_table`` its Unicode class table) and encode
    it with :func:`encode_pieces`: text bytes to ids in one call."""
    return encode_pieces(
        data,
        split(kind, data, class_table),
        byte_ids,
        pairs,
        rank_ids,
        byte_pairs,
        bridges,
        shortcut,
        short8,
        short24,
        tok_data,
        tok_offsets,
        tok_slots,
        tok_ids,
        cache,
    )


@njit(cache=True, nogil=True)
def _documents(
    kind: int,
    data: np.ndarray,
    doc_offsets: np.ndarray,
    class_table: np.ndarray,
    byte_ids: np.ndarray,
    pairs: np.ndarray,
    rank_ids: np.ndarray,
    byte_pairs: np.ndarray,
    bridges: np.ndarray,
    shortcut: bool,
    short8: np.ndarray,
    short24: np.ndarray,
    tok_data: np.ndarray,
    tok_offsets: np.ndarray,
    tok_slots: np.ndarray,
    tok_ids: np.ndarray,
    cache: np.ndarray,
    out: np.ndarray,
    marks: np.ndarray | None,
) -> np.ndarray:
    """The loop of :func:`encode_documents` into ``out`` (and ``marks``, if given, as long
    as ``out``); returns the ``n_docs + 1`` offsets of each document's ids."""
    n_docs = doc_offsets.shape[0] - 1
    id_offsets = np.zeros(max(n_docs, 0) + 1, dtype=np.int64)
    # One buffer of each kind for the whole call, reused from document to document: piece
    # ends, keys, scratch.
    ends = np.empty(1024, dtype=np.int64)
    keys = np.empty((1024, 4), dtype=np.uint64)
    scratch = np.empty(MERGE_SCRATCH, dtype=np.int32)
    prank = np.empty(MERGE_SCRATCH, dtype=np.int64)
    records = cache.reshape(cache.shape[0] * 8)
    k = 0
    for d in range(n_docs):
        doc = data[doc_offsets[d] : doc_offsets[d + 1]]
        ends, n_pieces = split_into(
            kind, doc, np.int64(0), np.int64(doc.shape[0]), class_table, ends, np.int64(0)
        )
        if n_pieces > keys.shape[0]:
            keys = np.empty((2 * n_pieces, 4), dtype=np.uint64)
        k += _encode_into(
            doc,
            ends[:n_pieces],
            byte_ids,
            pairs,
            rank_ids,
            byte_pairs,
            bridges,
            shortcut,
            short8,
            short24,
            tok_data,
            tok_offsets,
            tok_slots,
            tok_ids,
            cache,
            out[k:],
            keys,
            scratch,
            prank,
            records,
            marks,
            k,
        )
        id_offsets[d + 1] = k
    return id_offsets


@njit(cache=True, nogil=True)
def encode_documents(
    kind: int, data: np.ndarray, doc_offsets: np.ndarray, *tables: Any
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`encode_text_bytes` over many documents in CSR layout, in one call.

    Document ``d`` is ``data[doc_offsets[d]:doc_offsets[d + 1]]`` (``int64``
    offsets, non-decreasing); each is split and encoded on its own. ``tables``
    are :func:`_documents`' arguments from ``class_table`` to ``cache`` (those of
    :func:`encode_text_bytes` after ``data``). Returns ``(ids, id_offsets)``: the
    int32 ids of all documents back to back and the ``n_docs + 1`` offsets of
    each document's ids.
    """
    n_docs = doc_offsets.shape[0] - 1
    total = doc_offsets[n_docs] - doc_offsets[0] if n_docs > 0 else np.int64(0)
    out = np.empty(total + CACHE_IDS, dtype=np.int32)  # one id per byte, and _cache_get's room
    id_offsets = _documents(kind, data, doc_offsets, *tables, out, None)  # type: ignore[call-arg]
    return out[: id_offsets[-1]], id_offsets


@njit(cache=True, nogil=True)
def encode_documents_marked(
    kind: int, data: np.ndarray, doc_offsets: np.ndarray, *tables: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`encode_documents` (the same arguments: ``tables`` are the class table to the
    word cache), and where each pre-token's ids start.

    Returns ``(ids, id_offsets, starts)``: ``starts`` (uint8, one per id) is 1 at
    the first id of every piece of the split (a pre-token; a long piece encoded
    part by part is still one piece), 0 elsewhere. Dynamic merging
    (:mod:`toknz_core.dynamic`) reads its pre-token boundaries from it instead
    of splitting the texts again.
    """
    n_docs = doc_offsets.shape[0] - 1
    total = doc_offsets[n_docs] - doc_offsets[0] if n_docs > 0 else np.int64(0)
    out = np.empty(total + CACHE_IDS, dtype=np.int32)
    marks = np.zeros(total + CACHE_IDS, dtype=np.uint8)
    id_offsets = _documents(kind, data, doc_offsets, *tables, out, marks)  # type: ignore[call-arg]
    n = id_offsets[-1]
    return out[:n], id_offsets, marks[:n]


# --------------------------------------------------------------------------- #
# One table blob: a short text in a call with few arguments

#: The arrays :func:`pack_tables` lays out, in order, with their dtypes: the Unicode class
#: table of the split, then the tables of :func:`encode_pieces`. The blob's header (int64)
#: holds the split ``kind``, ``shortcut``, then ``(byte offset, byte length, columns)`` per
#: array (columns 0: one-dimensional).
PACKED_DTYPES = (
    np.uint16,  # class_table
    np.int32,  # byte_ids
    np.uint64,  # pairs
    np.int32,  # rank_ids
    np.int64,  # byte_pairs
    np.uint64,  # bridges
    np.uint64,  # short8
    np.uint64,  # short24
    np.uint8,  # tok_data
    np.int64,  # tok_offsets
    np.int64,  # tok_slots
    np.int32,  # tok_ids
)
_HEADER_WORDS = 2 + 3 * len(PACKED_DTYPES)
_ALIGN = 64
#: ``uint64`` words of a work array (:func:`new_work`): the word cache, then the output.
CACHE_WORDS = CACHE_SLOTS * 8
#: Most ids :func:`encode_short` writes: a text of at most this many bytes always fits.
SHORT_OUT = 1 << 16
#: Pieces :func:`encode_short` splits and keys in its work array (more: arrays of their own).
SHORT_PIECES = 1 << 12
_OUT_AT = CACHE_WORDS
_ENDS_AT = _OUT_AT + (SHORT_OUT + CACHE_IDS) // 2  # room for _cache_get's copy after the ids
_KEYS_AT = _ENDS_AT + SHORT_PIECES
_SCRATCH_AT = _KEYS_AT + 4 * SHORT_PIECES
_PRANK_AT = _SCRATCH_AT + MERGE_SCRATCH // 2
_WORK_WORDS = _PRANK_AT + MERGE_SCRATCH


def new_work() -> np.ndarray:
    """The scratch of one :func:`encode_short` call at a time: a word cache
    (:func:`new_word_cache`, a view of the first :data:`CACHE_WORDS` words), room for
    :data:`SHORT_OUT` uint32 ids (:func:`work_parts`), then the piece ends, piece keys and
    merge scratch of a text of up to :data:`SHORT_PIECES` pieces, so that a short text
    allocates nothing."""
    return np.zeros(_WORK_WORDS, dtype=np.uint64)


def work_parts(work: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(word cache, ids out)`` of a :func:`new_work` array, as views.

    >>> cache, out = work_parts(new_work())
    >>> cache.shape == (CACHE_SLOTS, 8), out.dtype, out.shape[0] == SHORT_OUT
    (True, dtype('uint32'), True)
    """
    return work[:CACHE_WORDS].reshape(CACHE_SLOTS, 8), work[
        _OUT_AT : _OUT_AT + SHORT_OUT // 2
    ].view(np.uint32)


def pack_tables(kind: int, class_table: np.ndarray, *tables: object) -> tuple[np.ndarray, tuple]:
    """The split ``kind``, its class table and ``tables`` (the arguments of
    :func:`encode_pieces` from ``byte_ids`` to ``tok_ids``) in one uint8 blob (64-byte
    aligned parts), for :func:`encode_short`.

    Returns ``(blob, tables)``: ``tables`` are the arguments after ``kind`` as views into
    ``blob`` (same dtypes and shapes: the other kernels take them as before, and the blob
    costs no second copy once the originals are dropped). A Numba call pays a fraction of
    a microsecond per array argument; :func:`encode_short` takes three.

    >>> import numpy as np
    >>> parts = [np.arange(3, dtype=d) for d in PACKED_DTYPES]
    >>> parts[6] = parts[7] = np.zeros((2, 2), dtype=np.uint64)
    >>> blob, views = pack_tables(1, *parts[:6], True, *parts[6:])
    >>> views[1].tolist(), views[6], views[7].shape, np.shares_memory(blob, views[2])
    ([0, 1, 2], True, (2, 2), True)
    """
    if len(tables) != 12:
        raise ValueError(f"pack_tables takes the 12 tables of encode_pieces, got {len(tables)}")
    shortcut = bool(tables[5])
    arrays: list[np.ndarray] = [class_table]
    arrays += [np.asarray(t) for i, t in enumerate(tables) if i != 5]
    header = np.zeros(_HEADER_WORDS, dtype=np.int64)
    header[0] = kind
    header[1] = 1 if shortcut else 0
    pos = -(-header.nbytes // _ALIGN) * _ALIGN
    for i, (a, dtype) in enumerate(zip(arrays, PACKED_DTYPES, strict=True)):
        if a.dtype != dtype or a.ndim not in (1, 2):
            raise ValueError(f"table {i}: {a.dtype} {a.ndim}-d, expected {np.dtype(dtype)}")
        header[2 + 3 * i : 5 + 3 * i] = (pos, a.nbytes, a.shape[1] if a.ndim == 2 else 0)
        pos = -(-(pos + a.nbytes) // _ALIGN) * _ALIGN
    blob = np.zeros(pos, dtype=np.uint8)
    blob[: header.nbytes] = header.view(np.uint8)
    views = []
    for i, a in enumerate(arrays):
        start, size = int(header[2 + 3 * i]), int(header[3 + 3 * i])
        view = blob[start : start + size].view(a.dtype).reshape(a.shape)
        view[...] = a
        views.append(view)
    tables = (*views[:6], bool(shortcut), *views[6:])
    return blob, tables


@njit(cache=True, nogil=True, inline="always")
def _table(blob_at: np.int64, header: np.ndarray, i: int, dtype: Any, itemsize: int) -> np.ndarray:
    """Part ``i`` of the :func:`pack_tables` blob at address ``blob_at``, one-dimensional."""
    start = header[2 + 3 * i]
    return carray(pointer(blob_at + start), (header[3 + 3 * i] // itemsize,), dtype)  # type: ignore[call-arg]


@njit(cache=True, nogil=True, inline="always")
def _table_rows(blob_at: np.int64, header: np.ndarray, i: int) -> np.ndarray:
    """Part ``i`` of the blob (uint64) as rows of its recorded column count."""
    start = header[2 + 3 * i]
    cols = header[4 + 3 * i]
    return carray(pointer(blob_at + start), (header[3 + 3 * i] // 8 // cols, cols), np.uint64)  # type: ignore[call-arg]


@njit(cache=True, nogil=True, inline="always")
def _work_part(work_at: np.int64, word: int, n: int, dtype: Any) -> np.ndarray:
    """``n`` items of ``dtype`` from uint64 word ``word`` of the work array at ``work_at``."""
    return carray(pointer(work_at + 8 * word), (n,), dtype)  # type: ignore[call-arg]


@njit(cache=True, nogil=True)
def encode_short(text: bytes, blob_at: np.int64, work_at: np.int64) -> int:
    """:func:`encode_text_bytes` of ``text`` (UTF-8 ``bytes``) with the split and tables of
    the :func:`pack_tables` blob at address ``blob_at``, the ids written after the word
    cache of the :func:`new_work` array at ``work_at`` (one call at a time per work array).

    The addresses are ``array.ctypes.data``: the caller keeps both arrays alive during the
    call (:func:`toknz_core.memory.pointer`). Tables and work parts are viewed by address
    instead of sliced, viewed and reshaped from array arguments: those steps cost more than
    encoding a short text. Returns the number of ids, or -1 when there are more than
    :data:`SHORT_OUT` (the output part then holds nothing useful). For a text of at most
    :data:`SHORT_OUT` bytes and :data:`SHORT_PIECES` pieces no array is allocated.

    >>> import numpy as np
    >>> import toknz
    >>> tok = toknz.load("cl100k_base")
    >>> _ = tok.encode_ordinary("warm " * 1000)  # a long text: builds the packed tables
    >>> blob = tok.model._packed[tok._scanner_kind][0]
    >>> work = new_work()
    >>> n = encode_short(b"hello world", blob.ctypes.data, work.ctypes.data)
    >>> work_parts(work)[1][:n].tolist() == tok.encode("hello world")
    True
    """
    data = np.frombuffer(text, dtype=np.uint8)
    header = carray(pointer(blob_at), (_HEADER_WORDS,), np.int64)  # type: ignore[call-arg]
    n = data.shape[0]
    ends, k = split_into(
        header[0],
        data,
        np.int64(0),
        np.int64(n),
        _table(blob_at, header, 0, np.uint16, 2),
        _work_part(work_at, _ENDS_AT, _KEYS_AT - _ENDS_AT, np.int64),
        np.int64(0),
    )
    if k <= SHORT_PIECES:
        keys = carray(pointer(work_at + 8 * _KEYS_AT), (SHORT_PIECES, 4), np.uint64)
    else:
        keys = np.empty((k, 4), dtype=np.uint64)
    if n <= SHORT_OUT:
        out = _work_part(work_at, _OUT_AT, SHORT_OUT + CACHE_IDS, np.int32)
    else:
        out = np.empty(n + CACHE_IDS, dtype=np.int32)
    m = _encode_into(
        data,
        ends[:k],
        _table(blob_at, header, 1, np.int32, 4),
        _table(blob_at, header, 2, np.uint64, 8),
        _table(blob_at, header, 3, np.int32, 4),
        _table(blob_at, header, 4, np.int64, 8),
        _table(blob_at, header, 5, np.uint64, 8),
        header[1] != 0,
        _table_rows(blob_at, header, 6),
        _table_rows(blob_at, header, 7),
        _table(blob_at, header, 8, np.uint8, 1),
        _table(blob_at, header, 9, np.int64, 8),
        _table(blob_at, header, 10, np.int64, 8),
        _table(blob_at, header, 11, np.int32, 4),
        carray(pointer(work_at), (CACHE_SLOTS, 8), np.uint64),
        out,
        keys,
        _work_part(work_at, _SCRATCH_AT, 2 * (_PRANK_AT - _SCRATCH_AT), np.int32),
        _work_part(work_at, _PRANK_AT, _WORK_WORDS - _PRANK_AT, np.int64),
        _work_part(work_at, 0, CACHE_WORDS, np.uint64),
    )
    if m > SHORT_OUT:
        return -1
    if n > SHORT_OUT:
        ids = _work_part(work_at, _OUT_AT, SHORT_OUT, np.int32)
        for i in range(m):
            ids[i] = out[i]
    return m
