"""The whole-document kernel (`toknz_core.docencode`) against the reference twins of test_kernel.

Documents are random bytes over a small alphabet cut into random pieces; each
piece is merged by the twin (merge-list rule) or by tiktoken's byte rule. The
kernel runs with a one-slot word cache (every piece misses) and with the real
cache, twice over the same document (the second pass is answered from it).
"""

from __future__ import annotations

import numpy as np
import pytest
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
    byte_pairs = kernels.byte_pair_ranks(byte_ids, pairs)
    return (
        byte_ids,
        pairs,
        rank_ids,
        byte_pairs,
        kernels.byte_bridges(
            byte_ids, pairs, rank_ids, byte_pairs, shortcut, tok_data, tok_offsets, tok_ids
        ),
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
    tables[4] = kernels.byte_bridges(byte_ids, *tables[1:4], tables[5], *tables[8:10], tables[11])
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
    tables[4] = kernels.byte_bridges(byte_ids, *tables[1:4], tables[5], *tables[8:10], tables[11])
    for cache in caches():
        assert run(pieces, tuple(tables), cache) == want
        assert run(pieces, tuple(tables), cache) == want


def _tiktoken_tables(
    ranks: dict[bytes, int], shortcut: bool = True
) -> tuple[list, dict[bytes, int]]:
    """Kernel tables of a random tiktoken vocabulary over bytes 0..2 (letters a, b, c); the
    other bytes get ids of their own (1000 + byte), so no id has two spellings."""
    letters = {ord("a"): 0, ord("b"): 1, ord("c"): 2}
    shifted = {bytes(letters[c] for c in tok): r for tok, r in ranks.items()}
    tables = list(tables_for(pairs_from_ranks(ranks), shifted, shortcut=shortcut))
    byte_ids = 1000 + np.arange(256, dtype=np.int32)
    for tok, r in shifted.items():
        if len(tok) == 1:
            byte_ids[tok[0]] = r
    tables[0] = byte_ids
    tables[3] = kernels.byte_pair_ranks(byte_ids, tables[1])
    tables[4] = kernels.byte_bridges(byte_ids, *tables[1:4], tables[5], *tables[8:10], tables[11])
    return tables, shifted


@SETTINGS
@given(tiktoken_vocab(), documents(), st.booleans())
def test_bridges_keep_every_joint_a_merge_may_cross(
    ranks: dict[bytes, int], raw: list[bytes], shortcut: bool
) -> None:
    """Wherever some merge (l, r) has l ending just before a joint and r starting at it, the
    bridge table keeps the joint (or, with the whole-token shortcut, has every bit set when
    some short token is not its own bytes' BPE); cutting the others is exact: cut, uncut and
    the twin agree."""
    tables, shifted = _tiktoken_tables(ranks, shortcut)
    spelled = {r: tok for tok, r in shifted.items()}
    merges = [(spelled[a], spelled[b]) for a, b, _, _ in pairs_from_ranks(ranks)]
    reachable = all(twin_tiktoken(t, ranks) == [ranks[t]] for t in ranks if len(t) > 1)
    bridges = tables[4]
    assert bool((bridges == np.uint64(2**64 - 1)).all()) == (shortcut and not reachable)

    pieces = [bytes(p[i] % 3 for i in range(len(p))) for p in raw]
    for piece in pieces:
        data = np.frombuffer(piece, dtype=np.uint8)
        for i in range(1, len(piece)):
            crossed = any(
                piece[:i].endswith(left) and right[0] == piece[i] for left, right in merges
            )
            if crossed:
                assert kernels._joinable(bridges, data, 0, i)
    spelled_pieces = [bytes(b"abc"[x] for x in p) for p in pieces]
    want = [
        i
        for p in spelled_pieces
        for i in ([ranks[p]] if shortcut and p in ranks else twin_tiktoken(p, ranks))
    ]
    uncut = list(tables)
    uncut[4] = np.full(kernels.BRIDGE_WORDS, np.uint64(2**64 - 1), dtype=np.uint64)
    for cache in caches():
        assert run(pieces, tuple(tables), cache) == want
        assert run(pieces, tuple(tables), cache) == want
        assert run(pieces, tuple(uncut), kernels.new_word_cache()) == want


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_bridges_cut_cjk_text(name: str) -> None:
    """No merge joins many CJK characters to the next, so a long CJK piece is encoded part
    by part (and still equals tiktoken in the equality tests)."""
    import toknz

    bridges = toknz.load(name).model._fast_tables[4]
    text = "这是一个用于测试的中文句子，它很长".encode()
    data = np.frombuffer(text, dtype=np.uint8)
    cuts = [i for i in range(1, len(text)) if not kernels._joinable(bridges, data, 0, i)]
    assert len(cuts) >= 4
