"""The whole-document kernel (`toknz_core.docencode`) against the reference twins of test_kernel.

Documents are random bytes over a small alphabet cut into random pieces; each
piece is merged by the twin (merge-list rule) or by tiktoken's byte rule. The
kernel runs with a one-slot word cache (every piece misses) and with the real
cache, twice over the same document (the second pass is answered from it).
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from test_kernel import (
    SETTINGS,
    THRESHOLD,
    pairs_from_ranks,
    tiktoken_vocab,
    twin_merge,
    twin_tiktoken,
)
from toknz_core import docencode as kernels
from toknz_core.encode import build_pair_table
from toknz_core.ranks import build_bytes_table

ALPHABET = 4  # document bytes 0..3; merged ids from 256 up


@st.composite
def merge_tables(draw: st.DrawFn) -> list[tuple[int, int, int, int]]:
    """Random merges over ids 0..3 and 256..259; each rank produces one id (ties across pairs)."""
    syms = st.sampled_from([0, 1, 2, 3, 256, 257, 258, 259])
    rank_to_id = draw(st.lists(st.sampled_from([256, 257, 258, 259]), min_size=8, max_size=8))
    entries = draw(st.lists(st.tuples(syms, syms, st.integers(0, 7)), max_size=30))
    return [(a, b, r, rank_to_id[r]) for a, b, r in entries]


def documents(max_pieces: int = 8) -> st.SearchStrategy[list[bytes]]:
    piece = st.one_of(
        st.binary(min_size=1, max_size=30),
        st.binary(min_size=THRESHOLD - 2, max_size=3 * THRESHOLD),
    ).map(lambda b: bytes(x % ALPHABET for x in b))
    return st.lists(piece, max_size=max_pieces)


def tables_for(
    entries: list[tuple[int, int, int, int]], tokens: dict[bytes, int], shortcut: bool
) -> tuple:
    cols = [np.array([e[k] for e in entries], dtype=np.int32) for k in range(4)]
    pairs, rank_ids, ok = build_pair_table(*cols)
    assert ok
    byte_ids = np.arange(256, dtype=np.int32)
    raws = [t for t in tokens if len(t) > 1]
    tok_data = np.frombuffer(b"".join(raws) or b"\0", dtype=np.uint8)[: sum(map(len, raws))]
    tok_offsets = np.zeros(len(raws) + 1, dtype=np.int64)
    np.cumsum([len(t) for t in raws], out=tok_offsets[1:])
    tok_ids = np.array([tokens[t] for t in raws], dtype=np.int32)
    short8, short24 = kernels.build_short_tokens(tok_data, tok_offsets, tok_ids)
    return (
        byte_ids,
        pairs,
        rank_ids,
        kernels.byte_pair_ranks(byte_ids, pairs),
        shortcut,
        short8,
        short24,
        tok_data,
        tok_offsets,
        build_bytes_table(tok_data, tok_offsets),
        tok_ids,
    )


def run(pieces: list[bytes], tables: tuple, cache: np.ndarray) -> list[int]:
    data = np.frombuffer(b"".join(pieces), dtype=np.uint8)
    ends = np.cumsum([len(p) for p in pieces]).astype(np.int64)
    return kernels.encode_pieces(data, ends, *tables, cache).tolist()


def caches() -> list[np.ndarray]:
    return [np.zeros((1, 8), dtype=np.uint64), kernels.new_word_cache()]


@SETTINGS
@given(merge_tables(), documents())
def test_merge_rule_matches_twin(
    entries: list[tuple[int, int, int, int]], pieces: list[bytes]
) -> None:
    twin = {(a, b): (r, n) for a, b, r, n in entries}
    want = [i for p in pieces for i in twin_merge(list(p), twin)]
    tables = tables_for(entries, {}, shortcut=False)
    for cache in caches():
        assert run(pieces, tables, cache) == want
        assert run(pieces, tables, cache) == want


@SETTINGS
@given(tiktoken_vocab(), documents())
def test_tiktoken_rule_matches_twin(ranks: dict[bytes, int], raw: list[bytes]) -> None:
    # Bytes 0..2 play a, b, c; ids are ranks (single bytes keep ids 0..2 via byte_ids).
    letters = {ord("a"): 0, ord("b"): 1, ord("c"): 2}
    pieces = [bytes(b"abc"[x % 3] for x in p) for p in raw]
    # tiktoken's shortcut: a piece that is a token encodes to it, reachable by merges or not
    want = [i for p in pieces for i in ([ranks[p]] if p in ranks else twin_tiktoken(p, ranks))]
    shifted = {bytes(letters[c] for c in tok): r for tok, r in ranks.items()}
    entries = pairs_from_ranks(ranks)
    tables = list(tables_for(entries, shifted, shortcut=True))
    byte_ids = np.arange(256, dtype=np.int32)
    for tok, r in ranks.items():
        if len(tok) == 1:
            byte_ids[letters[tok[0]]] = r
    tables[0] = byte_ids
    tables[3] = kernels.byte_pair_ranks(byte_ids, tables[1])
    encoded = [bytes(letters[c] for c in p) for p in pieces]
    for cache in caches():
        assert run(encoded, tuple(tables), cache) == want
        assert run(encoded, tuple(tables), cache) == want


@SETTINGS
@given(merge_tables(), documents(), st.sets(st.integers(0, ALPHABET - 1), max_size=2))
def test_bytes_without_a_token_are_dropped(
    entries: list[tuple[int, int, int, int]], pieces: list[bytes], missing: set[int]
) -> None:
    """A byte with no token vanishes and its neighbours may merge (the `tokenizers` BPE model)."""
    entries = [e for e in entries if e[0] not in missing and e[1] not in missing]
    twin = {(a, b): (r, n) for a, b, r, n in entries}
    want = [i for p in pieces for i in twin_merge([b for b in p if b not in missing], twin)]
    tables = list(tables_for(entries, {}, shortcut=False))
    byte_ids = np.arange(256, dtype=np.int32)
    for b in missing:
        byte_ids[b] = -1
    tables[0] = byte_ids
    tables[3] = kernels.byte_pair_ranks(byte_ids, tables[1])
    for cache in caches():
        assert run(pieces, tuple(tables), cache) == want
        assert run(pieces, tuple(tables), cache) == want
